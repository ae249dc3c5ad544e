//! Sign-in limits under concurrency, over HTTPS, on SQLite and PostgreSQL:
//! attempts are reserved before any argon2 work, one TOTP code signs in once,
//! lockouts are capped and start over, step-up codes have a cap too.

use crate::support;

use std::sync::Arc;
use std::time::Duration;

use crate::support::browser::{Browser, code};
use sika::auth::Role;
use sika::store::AuditFilter;
use tokio::sync::Barrier;

use crate::support::people::PASSWORD;

async fn app_on(db: support::TestDb) -> support::TestApp {
    support::spawn_on(db, axum::Router::new(), Duration::from_secs(900), Duration::from_secs(3600)).await
}

async fn user(app: &support::TestApp, role: Role, email: &str) -> String {
    app.person(role, email).await.secret
}

async fn actions(app: &support::TestApp, action: &str) -> Vec<sika::store::AuditEntry> {
    let f = AuditFilter { action: Some(action.into()), ..Default::default() };
    app.db.store.audit_search(&f, 1000).await.unwrap()
}

/// `n` browsers, each with its login form loaded, post at the same moment.
async fn concurrent_logins(app: &support::TestApp, n: usize, email: &str, password: &str, code: &str) -> Vec<u16> {
    let barrier = Arc::new(Barrier::new(n));
    let mut tasks = Vec::new();
    for _ in 0..n {
        let mut b = Browser::new(&app.base, app.client.clone());
        let (barrier, email, password, code) =
            (barrier.clone(), email.to_string(), password.to_string(), code.to_string());
        tasks.push(tokio::spawn(async move {
            let csrf = b.get("/login").await.csrf();
            barrier.wait().await;
            b.post("/login", &[("email", &email), ("password", &password), ("totp", &code), ("csrf_token", &csrf)])
                .await
                .status
        }));
    }
    let mut out = Vec::new();
    for t in tasks {
        out.push(t.await.unwrap());
    }
    out
}

/// Thirty wrong passwords at once for one account: the account's limit is
/// reserved before hashing, so at most five reach argon2.
async fn thirty_wrong_passwords_reach_argon2_at_most_five_times(app: support::TestApp) {
    user(&app, Role::Viewer, "victim@example.com").await;
    let before = app.auth.passwords.verifications();
    let statuses = concurrent_logins(&app, 30, "victim@example.com", "Wrong-Passw0rd!x", "000000").await;
    assert!(statuses.iter().all(|s| *s == 200), "every attempt fails with the form: {statuses:?}");
    let hashed = app.auth.passwords.verifications() - before;
    assert!(hashed <= 5, "{hashed} attempts reached argon2");
    assert_eq!(actions(&app, "account.lockout").await.len(), 1, "locked once");
    let row = app.db.store.user_by_email_index(&app.auth.email_indexes("victim@example.com")).await.unwrap().unwrap();
    let locked_for = row.locked_until - sika::store::now_ms();
    assert!((29 * 60_000..=30 * 60_000).contains(&locked_for), "30 minutes: {locked_for}");
}

#[tokio::test]
async fn thirty_wrong_passwords_reach_argon2_at_most_five_times_on_sqlite() {
    thirty_wrong_passwords_reach_argon2_at_most_five_times(app_on(support::sqlite().await).await).await;
}

#[tokio::test]
async fn thirty_wrong_passwords_reach_argon2_at_most_five_times_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    thirty_wrong_passwords_reach_argon2_at_most_five_times(app_on(db).await).await;
}

/// Thirty unknown e-mails at once from one address with a limit of twenty:
/// the address's window is reserved before hashing too.
async fn an_address_flood_reaches_argon2_at_most_its_limit(mut app: support::TestApp) {
    app.auth.ip_throttle_limit = 20;
    let before = app.auth.passwords.verifications();
    concurrent_logins(&app, 30, "nobody@example.com", "Wrong-Passw0rd!x", "").await;
    let hashed = app.auth.passwords.verifications() - before;
    assert!(hashed <= 20, "{hashed} attempts reached argon2");
    assert!(actions(&app, "login").await.iter().any(|e| e.details.contains("ip throttled")));
}

#[tokio::test]
async fn an_address_flood_reaches_argon2_at_most_its_limit_on_sqlite() {
    an_address_flood_reaches_argon2_at_most_its_limit(app_on(support::sqlite().await).await).await;
}

#[tokio::test]
async fn an_address_flood_reaches_argon2_at_most_its_limit_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    an_address_flood_reaches_argon2_at_most_its_limit(app_on(db).await).await;
}

/// Eight sign-ins at once with the right password and the same code: the
/// code's time step is claimed atomically in the database, so one wins.
async fn one_code_signs_in_once_under_concurrency(app: support::TestApp) {
    let secret = user(&app, Role::Viewer, "twice@example.com").await;
    let statuses = concurrent_logins(&app, 8, "twice@example.com", PASSWORD, &code(&secret, 0)).await;
    let signed_in = statuses.iter().filter(|s| **s == 303).count();
    assert_eq!(signed_in, 1, "{statuses:?}");
    let ok = actions(&app, "login").await.iter().filter(|e| e.outcome == "success").count();
    assert_eq!(ok, 1);
}

#[tokio::test]
async fn one_code_signs_in_once_under_concurrency_on_sqlite() {
    one_code_signs_in_once_under_concurrency(app_on(support::sqlite().await).await).await;
}

#[tokio::test]
async fn one_code_signs_in_once_under_concurrency_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    one_code_signs_in_once_under_concurrency(app_on(db).await).await;
}

/// Whoever knows an e-mail can lock its owner out, but only for a while: the
/// lock doubles at most to its cap, and a successful sign-in starts it over.
#[tokio::test]
async fn lockouts_are_capped_and_start_over_after_a_sign_in() {
    let clock = sika::clock::install_manual();
    let app = support::spawn_app().await;
    let secret = user(&app, Role::Viewer, "capped@example.com").await;
    let id = app.db.store.user_by_email_index(&app.auth.email_indexes("capped@example.com")).await.unwrap().unwrap().id;
    let mut b = Browser::new(&app.base, app.client.clone());
    let mut lengths = Vec::new();
    for _ in 0..4 {
        for _ in 0..5 {
            b.login("capped@example.com", "Wrong-Passw0rd!x", "").await;
        }
        let row = app.db.store.user(&id).await.unwrap().unwrap();
        let locked_for = row.locked_until - sika::store::now_ms();
        lengths.push((locked_for + 30_000) / 60_000);
        // One second before its end the lock still holds; then its time passes
        // (and the address's 15-minute window with it).
        clock.advance(std::time::Duration::from_millis(u64::try_from(locked_for - 1_000).unwrap()));
        assert_eq!(b.login("capped@example.com", PASSWORD, &code(&secret, 0)).await.status, 200, "still locked");
        clock.advance(std::time::Duration::from_secs(2));
    }
    assert_eq!(lengths, [30, 60, 120, 120], "minutes: doubling, capped at two hours");
    assert_eq!(b.login("capped@example.com", PASSWORD, &code(&secret, 0)).await.status, 303);
    for _ in 0..5 {
        Browser::new(&app.base, app.client.clone()).login("capped@example.com", "Wrong-Passw0rd!x", "").await;
    }
    let row = app.db.store.user(&id).await.unwrap().unwrap();
    assert_eq!((row.locked_until - sika::store::now_ms() + 30_000) / 60_000, 30, "back to 30 minutes");
}

/// Five wrong step-up codes end the session (audited); the form keeps its
/// fields until then.
#[tokio::test]
async fn five_wrong_step_up_codes_end_the_session() {
    let e = support::emulated::env().await;
    e.paid("step-1", "1000").await;
    let secret = user(&e.app, Role::Approver, "stepper@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("stepper@example.com", PASSWORD, &code(&secret, 0)).await.status, 303);
    let csrf = b.get("/payments/step-1").await.csrf();
    let form = |totp: &'static str| [("amount", "10"), ("comment", "test"), ("totp", totp), ("csrf_token", "")];
    for left in (1..=4).rev() {
        let mut f = form("000000");
        f[3].1 = &csrf;
        let page = b.post("/payments/step-1/refund", &f).await;
        assert!(page.body.contains(&format!("({left} tries left)")), "{}", page.body);
    }
    let mut f = form("000000");
    f[3].1 = &csrf;
    let last = b.post("/payments/step-1/refund", &f).await;
    assert_eq!(last.location.as_deref(), Some("/login"));
    assert_eq!(b.get("/").await.location.as_deref(), Some("/login"), "the session is gone");
    assert!(b.get("/login").await.body.contains("too many wrong authenticator codes"));
    assert!(actions(&e.app, "session.end").await.iter().any(|a| a.details.contains("step_up_failures")));
    assert!(e.app.db.store.refunds("step-1").await.unwrap().is_empty());
}

/// Setting a user's role to the one they have changes nothing: their
/// sessions stay, no entry claims a change.
#[tokio::test]
async fn a_no_op_role_change_keeps_sessions() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "noop-admin@example.com").await;
    let op = user(&app, Role::Operator, "noop-op@example.com").await;
    let mut a = Browser::new(&app.base, app.client.clone());
    let mut o = Browser::new(&app.base, app.client.clone());
    assert_eq!(a.login("noop-admin@example.com", PASSWORD, &code(&admin, 0)).await.status, 303);
    assert_eq!(o.login("noop-op@example.com", PASSWORD, &code(&op, 0)).await.status, 303);
    let admin_id =
        app.db.store.user_by_email_index(&app.auth.email_indexes("noop-admin@example.com")).await.unwrap().unwrap().id;
    let op_id =
        app.db.store.user_by_email_index(&app.auth.email_indexes("noop-op@example.com")).await.unwrap().unwrap().id;
    let csrf = a.get("/admin/users").await.csrf();
    for (id, role) in [(&admin_id, "admin"), (&op_id, "operator")] {
        let r = a.post(&format!("/admin/users/{id}/role"), &[("role", role), ("csrf_token", &csrf)]).await;
        assert_eq!(r.status, 303);
    }
    assert_eq!(a.get("/").await.status, 200, "the admin is still signed in");
    assert_eq!(o.get("/").await.status, 200, "so is the operator");
    assert!(actions(&app, "user.role").await.is_empty());
}

/// Attempts on a disabled account are failures like any other: they lock it
/// like any other, and once the lock has passed and the account is enabled
/// again, it signs in (no reserved attempt is left hanging).
#[tokio::test]
async fn a_disabled_account_enabled_again_can_sign_in() {
    let app = support::spawn_app().await;
    let secret = user(&app, Role::Viewer, "paused@example.com").await;
    let id = app.db.store.user_by_email_index(&app.auth.email_indexes("paused@example.com")).await.unwrap().unwrap().id;
    app.db.store.set_user_disabled(&id, true).await.unwrap();
    let mut b = Browser::new(&app.base, app.client.clone());
    for _ in 0..6 {
        assert_eq!(b.login("paused@example.com", PASSWORD, &code(&secret, 0)).await.status, 200, "disabled");
    }
    app.db.store.set_user_disabled(&id, false).await.unwrap();
    // The lock's time passes (nothing else is touched).
    sqlx::query("UPDATE users SET locked_until = 0 WHERE id = $1")
        .bind(&id)
        .execute(app.db.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(b.login("paused@example.com", PASSWORD, &code(&secret, 0)).await.status, 303, "enabled again");
}
