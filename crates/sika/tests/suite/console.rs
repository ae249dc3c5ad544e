//! The console's security controls, end to end over HTTPS: cookies, fixation,
//! timeouts, logout, one session per user, lockout, TOTP replay, CSRF, roles.

use crate::support;

use std::time::Duration;

use crate::support::browser::{Browser, code};
use sika::audit::Actor;
use sika::auth::Role;
use sika::store::AuditFilter;

use crate::support::people::{PASSWORD, Person as User};

async fn user(app: &support::TestApp, role: Role, tag: &str) -> User {
    app.person(role, &format!("{tag}@example.com")).await
}

fn browser(app: &support::TestApp) -> Browser {
    app.browser()
}

async fn actions(app: &support::TestApp, action: &str) -> Vec<sika::store::AuditEntry> {
    let f = AuditFilter { action: Some(action.into()), ..Default::default() };
    app.db.store.audit_search(&f, 1000).await.unwrap()
}

#[tokio::test]
async fn session_cookie_attributes_fixation_and_logout() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "cookie").await;
    let mut b = browser(&app);
    // An attacker-planted session id is never adopted.
    b.cookies.insert("__Host-sika".into(), "A".repeat(43));
    let res = b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await;
    assert_eq!((res.status, res.location.as_deref()), (303, Some("/")));
    let set = b.set_cookies.iter().find(|c| c.starts_with("__Host-sika=")).expect("session cookie");
    for attr in ["Path=/", "Secure", "HttpOnly", "SameSite=Strict"] {
        assert!(set.contains(attr), "{set} lacks {attr}");
    }
    assert!(!set.contains("Max-Age") && !set.contains("Expires") && !set.contains("Domain"), "{set}");
    let token = b.session().unwrap();
    assert_ne!(token, "A".repeat(43), "fixation: the token changes at login");
    assert_eq!(token.len(), 43, "256 bits, base64url");
    assert!(!res.body.contains(&token), "the token travels only in the cookie");

    let home = b.get("/").await;
    assert_eq!(home.status, 200);
    assert!(home.body.contains("id=\"logout\""), "a visible logout button");
    assert!(home.body.contains(&u.email));

    let csrf = home.csrf();
    let out = b.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.status, 303);
    assert_eq!(out.headers["clear-site-data"], "\"cache\", \"cookies\", \"storage\"");
    assert!(b.set_cookies.last().unwrap().contains("Max-Age=0"));
    assert!(b.session().is_none());
    // The old token is useless afterwards.
    b.cookies.insert("__Host-sika".into(), token.clone());
    let replay = b.get("/").await;
    assert_eq!((replay.status, replay.location.as_deref()), (303, Some("/login")));
    let login = b.get("/login").await;
    assert!(login.body.contains("You have signed out."));
    assert!(!actions(&app, "logout").await.is_empty());
}

#[tokio::test]
async fn a_thousand_sessions_have_distinct_256_bit_tokens_stored_only_as_hashes() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "many").await;
    let row = app.db.store.user_by_email_index(&app.auth.email_indexes(&u.email)).await.unwrap().unwrap();
    let mut seen = std::collections::HashSet::new();
    for _ in 0..1000 {
        let t = app.auth.start_session(&row.id, "full", "127.0.0.1", "test").await.unwrap();
        assert_eq!(t.len(), 43);
        assert!(t.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_'));
        assert!(seen.insert(t));
    }
    // And through the real login form, a few more, each new.
    let mut b = browser(&app);
    let res = b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await;
    assert_eq!(res.status, 303);
    let token = b.session().unwrap();
    assert!(seen.insert(token.clone()));
    let raw = std::fs::read(app.db.url.trim_start_matches("sqlite://")).unwrap();
    let wal = std::fs::read(format!("{}-wal", app.db.url.trim_start_matches("sqlite://"))).unwrap_or_default();
    for bytes in [raw, wal] {
        assert!(!bytes.windows(token.len()).any(|w| w == token.as_bytes()), "the raw token is never stored");
    }
}

/// The real limits (15 minutes idle, 10 hours in all), on Sika's clock moved
/// by the test: the 16th idle minute and the 11th hour of an active session
/// both end it, on the server.
#[tokio::test]
async fn idle_and_absolute_timeouts_are_enforced_on_the_server() {
    let clock = sika::clock::install_manual();
    let app = support::spawn_on(
        support::sqlite().await,
        axum::Router::new(),
        Duration::from_secs(15 * 60),
        Duration::from_secs(10 * 3600),
    )
    .await;
    let u = user(&app, Role::Viewer, "idle").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    assert_eq!(b.get("/").await.status, 200);
    clock.advance(Duration::from_secs(14 * 60));
    assert_eq!(b.get("/").await.status, 200, "14 idle minutes: still signed in");
    clock.advance(Duration::from_secs(15 * 60 + 1));
    assert_eq!(b.get("/").await.location.as_deref(), Some("/login"), "idle for longer than the idle timeout");
    assert!(b.get("/login").await.body.contains("inactivity"));

    // Active all along (every 10 minutes), the session still ends in its 11th hour.
    clock.advance(Duration::from_secs(60));
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    for _ in 0..59 {
        clock.advance(Duration::from_secs(10 * 60));
        assert_eq!(b.get("/").await.status, 200, "active within the idle timeout, before the 10 hours");
    }
    clock.advance(Duration::from_secs(10 * 60));
    assert_eq!(b.get("/").await.location.as_deref(), Some("/login"), "the 11th hour");
    assert!(b.get("/login").await.body.contains("maximum length"));
}

#[tokio::test]
async fn a_second_login_ends_the_first_and_the_first_is_told_why() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "twice").await;
    let mut first = browser(&app);
    let mut second = browser(&app);
    assert_eq!(first.login(&u.email, PASSWORD, &code(&u.secret, -1)).await.status, 303);
    assert_eq!(second.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    assert_eq!(second.get("/").await.status, 200);
    assert_eq!(first.get("/").await.location.as_deref(), Some("/login"));
    assert!(first.get("/login").await.body.contains("signed in somewhere else"));
}

#[tokio::test]
async fn totp_codes_are_single_use_and_wrong_codes_fail() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "totp").await;
    let c = code(&u.secret, 0);
    let mut b = browser(&app);
    let wrong = if c == "000000" { "111111" } else { "000000" };
    let res = b.login(&u.email, PASSWORD, wrong).await;
    assert_eq!(res.status, 200);
    assert!(res.body.contains("Sign-in failed."));
    let res = b.login(&u.email, PASSWORD, "").await;
    assert!(res.body.contains("Sign-in failed."), "an enrolled user needs the code");
    assert_eq!(b.login(&u.email, PASSWORD, &c).await.status, 303);
    let mut again = browser(&app);
    let res = again.login(&u.email, PASSWORD, &c).await;
    assert!(res.body.contains("Sign-in failed."), "a used code is refused");
    let older = code(&u.secret, -1);
    assert!(again.login(&u.email, PASSWORD, &older).await.body.contains("Sign-in failed."), "an older step too");
    // Every failure looks the same as an unknown user's.
    let unknown = again.login("nobody@example.com", PASSWORD, &c).await;
    assert_eq!(unknown.status, 200);
    assert!(unknown.body.contains("Sign-in failed. Check your e-mail, password and code, then try again."));
}

#[tokio::test]
async fn five_failures_lock_the_account_until_an_admin_unlocks_it() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Operator, "lock").await;
    let admin = user(&app, Role::Admin, "lockadmin").await;
    let mut b = browser(&app);
    for _ in 0..5 {
        assert!(b.login(&u.email, "Wrong-Passw0rd!x", "").await.body.contains("Sign-in failed."));
    }
    let res = b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await;
    assert!(res.body.contains("Sign-in failed."), "locked even with the right credentials");
    assert_eq!(actions(&app, "account.lockout").await.len(), 1);

    let mut a = browser(&app);
    assert_eq!(a.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let page = a.get("/admin/users").await;
    assert!(page.body.contains("locked"), "admins see the lockout");
    let row = app.db.store.user_by_email_index(&app.auth.email_indexes(&u.email)).await.unwrap().unwrap();
    let csrf = page.csrf();
    assert_eq!(a.post(&format!("/admin/users/{}/unlock", row.id), &[("csrf_token", &csrf)]).await.status, 303);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 1)).await.status, 303, "unlocked");
    assert_eq!(actions(&app, "user.unlock").await.len(), 1);
}

#[tokio::test]
async fn csrf_missing_wrong_cross_session_and_foreign_origin_are_refused() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Admin, "csrf").await;
    let v = user(&app, Role::Viewer, "csrf2").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    let mut other = browser(&app);
    assert_eq!(other.login(&v.email, PASSWORD, &code(&v.secret, 0)).await.status, 303);
    let theirs = other.get("/").await.csrf();
    let mine = b.get("/").await.csrf();
    let form = |t: &str| {
        vec![
            ("name".to_string(), "k".to_string()),
            ("scope_read".into(), "on".into()),
            ("csrf_token".into(), t.to_string()),
        ]
    };
    let wrong = "x".repeat(43);
    for (what, token, origin) in [
        ("missing", "", Some(app.base.as_str())),
        ("wrong", wrong.as_str(), Some(app.base.as_str())),
        ("cross-session", theirs.as_str(), Some(app.base.as_str())),
        ("foreign origin", mine.as_str(), Some("https://evil.example")),
        ("no origin", mine.as_str(), None),
    ] {
        let f = form(token);
        let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
        let res = b.post_with_origin("/admin/api-keys", &pairs, origin).await;
        assert_eq!(res.status, 403, "{what}");
    }
    assert!(app.db.store.api_keys().await.unwrap().is_empty(), "nothing was created");
    let f = form(&mine);
    let pairs: Vec<(&str, &str)> = f.iter().map(|(k, v)| (k.as_str(), v.as_str())).collect();
    let ok = b.post("/admin/api-keys", &pairs).await;
    assert_eq!(ok.status, 200);
    assert!(ok.body.contains("sk_"));
    // The login form has its own token: without it, no sign-in is even tried.
    let mut c = browser(&app);
    let res = c
        .post("/login", &[("email", &u.email), ("password", PASSWORD), ("totp", "123456"), ("csrf_token", "forged")])
        .await;
    assert_eq!(res.status, 403);
    assert!(actions(&app, "csrf").await.len() >= 6);
}

#[tokio::test]
async fn every_role_against_every_route() {
    let app = support::spawn_app().await;
    // route, method, roles allowed (written here independently of the code under test)
    let victim =
        app.auth.create_user(&Actor::cli(), "victim@example.com", None, Role::Viewer, PASSWORD, true).await.unwrap().id;
    let (key_id, _) = app.auth.create_api_key(&Actor::cli(), "matrix", "read").await.unwrap();
    let on_victim = |a: &str| format!("/admin/users/{victim}/{a}");
    let revoke = format!("/admin/api-keys/{key_id}/revoke");
    // route, method, roles allowed (written here independently of the code under test)
    let matrix: Vec<(String, &str, &[Role])> = vec![
        ("/".into(), "GET", &Role::ALL),
        ("/account/password".into(), "GET", &Role::ALL),
        ("/account/password".into(), "POST", &Role::ALL),
        ("/account/mail".into(), "GET", &Role::ALL),
        ("/account/mail".into(), "POST", &Role::ALL),
        ("/admin/mail".into(), "GET", &[Role::Admin]),
        ("/admin/mail/none".into(), "GET", &[Role::Admin]),
        ("/admin/users".into(), "GET", &[Role::Admin]),
        ("/admin/users".into(), "POST", &[Role::Admin]),
        (on_victim("role"), "POST", &[Role::Admin]),
        (on_victim("unlock"), "POST", &[Role::Admin]),
        (on_victim("reenrol"), "POST", &[Role::Admin]),
        (on_victim("enable"), "POST", &[Role::Admin]),
        (on_victim("disable"), "POST", &[Role::Admin]),
        ("/admin/throttle/clear".into(), "POST", &[Role::Admin]),
        ("/admin/api-keys".into(), "GET", &[Role::Admin]),
        ("/admin/api-keys".into(), "POST", &[Role::Admin]),
        (revoke, "POST", &[Role::Admin]),
        ("/audit".into(), "GET", &[Role::Admin, Role::Auditor]),
        ("/audit/export.csv".into(), "GET", &[Role::Admin, Role::Auditor]),
        ("/audit/export.jsonl".into(), "GET", &[Role::Admin, Role::Auditor]),
        ("/payments/export.csv".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payments/new".into(), "GET", &[Role::Operator]),
        ("/admin/notifications/test".into(), "POST", &[Role::Admin]),
        ("/admin/settings/merchant".into(), "POST", &[Role::Admin]),
        ("/admin/settings/time-zone".into(), "POST", &[Role::Admin]),
        ("/payments".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payments".into(), "POST", &[Role::Operator]),
        ("/payments/none".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/admin/settings".into(), "GET", &[Role::Admin]),
        ("/admin/settings".into(), "POST", &[Role::Admin]),
        ("/admin/settings/secret".into(), "POST", &[Role::Admin]),
        ("/admin/settings/thresholds".into(), "POST", &[Role::Admin]),
        ("/admin/notifications/none/replay".into(), "POST", &[Role::Admin]),
        ("/admin/webhooks".into(), "GET", &[Role::Admin]),
        ("/payments/none/refund".into(), "POST", &[Role::Approver]),
        ("/payments/none/refund/confirm".into(), "POST", &[Role::Approver]),
        ("/admin/webhooks/none/replay".into(), "POST", &[Role::Admin]),
        ("/payouts".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payouts".into(), "POST", &[Role::Operator]),
        ("/payouts/new".into(), "GET", &[Role::Operator]),
        ("/payouts/none".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payouts/none/approve".into(), "POST", &[Role::Approver]),
        ("/payouts/none/reject".into(), "POST", &[Role::Approver]),
        ("/payouts/none/cancel".into(), "POST", &[Role::Operator]),
        ("/payouts/none/reveal".into(), "POST", &[Role::Operator, Role::Approver]),
        ("/payouts/none/retry".into(), "POST", &[Role::Operator]),
        ("/payouts/batches".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payouts/batches/none".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payouts/batches/none/approve".into(), "POST", &[Role::Approver]),
        ("/payouts/batches/none/reject".into(), "POST", &[Role::Approver]),
        ("/payouts/export.csv".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payouts/beneficiaries".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/payouts/beneficiaries/none/delete".into(), "POST", &[Role::Operator]),
        ("/settlements".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/settlements/none".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/settlements/export.csv".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/settlements/discrepancies".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/settlements/discrepancies.csv".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
        ("/reports/money".into(), "GET", &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer]),
    ];
    for role in Role::ALL {
        let u = user(&app, role, &format!("matrix-{role}")).await;
        let mut b = browser(&app);
        assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303, "{role} signs in");
        let csrf = b.get("/").await.csrf();
        for (path, method, allowed) in &matrix {
            let res = if *method == "GET" { b.get(path).await } else { b.post(path, &[("csrf_token", &csrf)]).await };
            if allowed.contains(&role) {
                assert_ne!(res.status, 403, "{role} {method} {path} should be allowed");
            } else {
                assert_eq!(res.status, 403, "{role} {method} {path} should be refused");
            }
        }
    }
    // Signed out, every console route sends you to sign in.
    let mut anon = browser(&app);
    for (path, method, _) in &matrix {
        let res = if *method == "GET" { anon.get(path).await } else { anon.post(path, &[("csrf_token", "x")]).await };
        let to = res.location.unwrap_or_default();
        let expected = if *method == "GET" && path != "/" {
            format!("/login?next={}", path.replace('/', "%2F"))
        } else {
            "/login".to_string()
        };
        assert_eq!(to, expected, "{method} {path}: a page asked for is offered again after sign-in");
    }
    assert!(!actions(&app, "access").await.is_empty(), "refusals are audited");
    // An auditor filters the log.
    let auditor = user(&app, Role::Auditor, "filterer").await;
    let mut au = browser(&app);
    assert_eq!(au.login(&auditor.email, PASSWORD, &code(&auditor.secret, 1)).await.status, 303);
    let page = au.get("/audit?action=apikey.create").await;
    assert!(page.body.contains("apikey.create") && !page.body.contains(">login<"), "only the filtered action");
}

#[tokio::test]
async fn first_login_enrols_totp_with_a_qr_code_and_recovery_codes() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "enroladmin").await;
    let mut a = browser(&app);
    assert_eq!(a.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let csrf = a.get("/admin/users").await.csrf();
    let res = a
        .post(
            "/admin/users",
            &[
                ("email", "new@example.com"),
                ("name", "New Person"),
                ("role", "operator"),
                ("password", PASSWORD),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!(res.status, 303);
    let weak = a
        .post(
            "/admin/users",
            &[("email", "weak@example.com"), ("role", "viewer"), ("password", "password1234"), ("csrf_token", &csrf)],
        )
        .await;
    assert!(weak.body.contains("upper-case") || weak.body.contains("common"), "the reason is shown");

    let mut n = browser(&app);
    let res = n.login("new@example.com", PASSWORD, "").await;
    assert_eq!(res.location.as_deref(), Some("/enrol"));
    assert_eq!(n.get("/").await.location.as_deref(), Some("/enrol"), "nothing else before enrolment");
    let page = n.get("/enrol").await;
    assert!(page.body.contains("<svg"), "the QR code is drawn by Sika");
    assert!(!page.body.contains("<script"));
    let marker = "id=\"totp-secret\">";
    let i = page.body.find(marker).unwrap() + marker.len();
    let secret = page.body[i..].split('<').next().unwrap().to_string();
    let enrol_token = n.session().unwrap();
    let res = n.post("/enrol", &[("code", &code(&secret, 0)), ("csrf_token", &page.csrf())]).await;
    assert_eq!(res.status, 200);
    assert_eq!(res.body.matches("<li><code>").count(), 10, "ten recovery codes");
    assert_ne!(n.session().unwrap(), enrol_token, "a new token at the privilege change");
    assert_eq!(n.get("/").await.status, 200);

    // A recovery code signs in once.
    let i = res.body.find("<li><code>").unwrap() + 10;
    let recovery = res.body[i..].split('<').next().unwrap().to_string();
    let mut r = browser(&app);
    assert_eq!(r.login("new@example.com", PASSWORD, &recovery).await.status, 303);
    let mut r2 = browser(&app);
    assert!(r2.login("new@example.com", PASSWORD, &recovery).await.body.contains("Sign-in failed."));
}

#[tokio::test]
async fn role_change_ends_the_users_sessions_and_is_audited_with_before_and_after() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "roleadmin").await;
    let op = user(&app, Role::Operator, "roleop").await;
    let mut a = browser(&app);
    let mut o = browser(&app);
    assert_eq!(a.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    assert_eq!(o.login(&op.email, PASSWORD, &code(&op.secret, 0)).await.status, 303);
    let row = app.db.store.user_by_email_index(&app.auth.email_indexes(&op.email)).await.unwrap().unwrap();
    let csrf = a.get("/admin/users").await.csrf();
    assert_eq!(
        a.post(&format!("/admin/users/{}/role", row.id), &[("role", "approver"), ("csrf_token", &csrf)]).await.status,
        303
    );
    assert_eq!(o.get("/").await.location.as_deref(), Some("/login"));
    let e = actions(&app, "user.role").await;
    assert_eq!(e.len(), 1);
    assert!(
        e[0].details.contains("\"before\":\"operator\"") && e[0].details.contains("\"after\":\"approver\""),
        "{}",
        e[0].details
    );
    assert_eq!(
        e[0].actor,
        app.db.store.user_by_email_index(&app.auth.email_indexes(&admin.email)).await.unwrap().unwrap().id
    );
}

#[tokio::test]
async fn an_ip_address_is_throttled_after_repeated_failures_until_an_admin_clears_it() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "throttle").await;
    let admin = user(&app, Role::Admin, "throttleadmin").await;
    // The admin signs in first, from the same address (all tests come from 127.0.0.1).
    let mut a = browser(&app);
    assert_eq!(a.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let mut b = browser(&app);
    for _ in 0..20 {
        b.login("nobody@example.com", "Wrong-Passw0rd!x", "").await;
    }
    let res = b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await;
    assert!(res.body.contains("Sign-in failed."), "throttled even with the right credentials");
    let denied = actions(&app, "login").await;
    assert!(denied.iter().any(|e| e.outcome == "denied" && e.details.contains("ip throttled")));
    let page = a.get("/admin/users").await;
    assert!(page.body.contains("id=\"throttled\"") && page.body.contains("127.0.0.1"), "admins see it");
    let csrf = page.csrf();
    assert_eq!(a.post("/admin/throttle/clear", &[("ip", "127.0.0.1"), ("csrf_token", &csrf)]).await.status, 303);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 1)).await.status, 303, "cleared");
    assert_eq!(actions(&app, "login_throttle.clear").await.len(), 1);
}

#[tokio::test]
async fn changing_the_password_needs_the_current_one_and_ends_other_sessions() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Operator, "pw").await;
    let mut here = browser(&app);
    assert_eq!(here.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    let csrf = here.get("/account/password").await.csrf();
    let wrong = here
        .post(
            "/account/password",
            &[("current", "Not-The-Pass1!"), ("new_password", "N3w-Secret!Phrase"), ("csrf_token", &csrf)],
        )
        .await;
    assert!(wrong.body.contains("current password is not right"));
    let weak = here
        .post("/account/password", &[("current", PASSWORD), ("new_password", "short"), ("csrf_token", &csrf)])
        .await;
    assert!(weak.body.contains("at least 12"));
    // One session per user means a second one exists only in a race; plant one to see it end.
    let row = app.db.store.user_by_email_index(&app.auth.email_indexes(&u.email)).await.unwrap().unwrap();
    let (other, other_hash) = sika::auth::session::new_token();
    {
        use sqlx::Connection as _;
        let mut c = sqlx::SqliteConnection::connect(&app.db.url).await.unwrap();
        let now = sika::store::now_ms();
        sqlx::query("INSERT INTO sessions (token_hash, user_id, stage, csrf_token, created_at, last_seen_at, ip, user_agent) VALUES ($1, $2, 'full', 'x', $3, $3, '127.0.0.1', 'other')")
            .bind(&other_hash)
            .bind(&row.id)
            .bind(now)
            .execute(&mut c)
            .await
            .unwrap();
    }
    let mut elsewhere = browser(&app);
    elsewhere.cookies.insert("__Host-sika".into(), other);
    assert_eq!(elsewhere.get("/").await.status, 200, "the planted session works before the change");
    let ok = here
        .post(
            "/account/password",
            &[("current", PASSWORD), ("new_password", "N3w-Secret!Phrase"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!((ok.status, ok.location.as_deref()), (303, Some("/")));
    assert_eq!(here.get("/").await.status, 200, "this session stays");
    assert_eq!(elsewhere.get("/").await.location.as_deref(), Some("/login"), "the other session ended");
    assert!(elsewhere.get("/login").await.body.contains("password was changed"));
    let mut again = browser(&app);
    assert!(
        again.login(&u.email, PASSWORD, &code(&u.secret, 1)).await.body.contains("Sign-in failed."),
        "the old password is gone"
    );
    assert_eq!(actions(&app, "password.change").await.iter().filter(|e| e.outcome == "success").count(), 1);
}
