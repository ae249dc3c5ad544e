//! The console as a payments team uses it, over HTTPS: coming back to the
//! page asked for after sign-in (never to another site), the signed-out
//! message, error pages that keep the navigation, the current page marked,
//! and a confirmation after each change, shown once.

use crate::support;

use crate::support::browser::{Browser, code};
use sika::audit::Actor;
use sika::auth::Role;

use crate::support::people::{PASSWORD, Person as User};

async fn user(app: &support::TestApp, role: Role, tag: &str) -> User {
    app.person_named(role, &format!("{tag}@example.com"), Some("Test Person")).await
}

fn browser(app: &support::TestApp) -> Browser {
    app.browser()
}

/// Signs in through the form with a `next` field, as the login page sends it.
async fn login_to(b: &mut Browser, u: &User, offset: i64, next: &str) -> support::browser::Page {
    let form = b.get(&format!("/login?next={}", urlencode(next))).await;
    let csrf = form.csrf();
    let c = code(&u.secret, offset);
    b.post(
        "/login",
        &[("email", &u.email), ("password", PASSWORD), ("totp", &c), ("csrf_token", &csrf), ("next", next)],
    )
    .await
}

fn urlencode(s: &str) -> String {
    url::form_urlencoded::byte_serialize(s.as_bytes()).collect()
}

#[tokio::test]
async fn a_deep_link_survives_sign_in_but_never_leads_off_site() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Operator, "deep").await;
    let mut b = browser(&app);
    let first = b.get("/payments?status=paid").await;
    assert_eq!(first.location.as_deref(), Some("/login?next=%2Fpayments%3Fstatus%3Dpaid"));
    let form = b.get(first.location.as_deref().unwrap()).await;
    assert!(form.body.contains(r#"name="next" value="/payments?status=paid""#), "the login form carries it");
    let done = login_to(&mut b, &u, 0, "/payments?status=paid").await;
    assert_eq!(done.location.as_deref(), Some("/payments?status=paid"), "back where they wanted to be");

    for (i, hostile) in
        ["//evil.example/x", "/\\evil.example", "https://evil.example/", "/login", "/%0d%0aSet-Cookie:x"]
            .into_iter()
            .enumerate()
    {
        let mut b = browser(&app);
        let form = b.get(&format!("/login?next={}", urlencode(hostile))).await;
        assert!(!form.body.contains("evil.example"), "{hostile} is not even carried in the form");
        let mut b = browser(&app);
        b.get("/login").await;
        // Sign-in codes are single-use, so each attempt takes a different step.
        let u = user(&app, Role::Viewer, &format!("hostile{i}")).await;
        let done = login_to(&mut b, &u, 0, hostile).await;
        assert_eq!(done.location.as_deref(), Some("/"), "{hostile}: signed in, sent home");
    }
}

#[tokio::test]
async fn signing_out_says_so() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "bye").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    let csrf = b.get("/").await.csrf();
    let out = b.post("/logout", &[("csrf_token", &csrf)]).await;
    assert_eq!(out.location.as_deref(), Some("/login?signed_out=1"));
    let page = b.get("/login?signed_out=1").await;
    assert!(page.body.contains("You have signed out."), "{}", page.body);
    assert!(!browser(&app).get("/login").await.body.contains("signed out"), "only after signing out");
}

#[tokio::test]
async fn forbidden_and_missing_pages_keep_the_navigation() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Viewer, "lost").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    let denied = b.get("/admin/users").await;
    assert_eq!(denied.status, 403);
    assert!(denied.body.contains(r#"id="logout""#) && denied.body.contains(r#"href="/payments""#), "{}", denied.body);
    assert!(denied.body.contains("You are not allowed to do this."));
    for missing in ["/no-such-page", "/payments/NO-SUCH-REF", "/payouts/NO-SUCH-REF"] {
        let page = b.get(missing).await;
        assert_eq!(page.status, 404, "{missing}");
        assert!(page.body.contains(r#"id="logout""#), "{missing} keeps the navigation");
        assert!(page.headers.get("content-security-policy").is_some(), "{missing}: the same strict headers");
    }
    // Signed out, a missing page shows nothing about the console.
    let anon = browser(&app).get("/no-such-page").await;
    assert_eq!(anon.status, 404);
    assert!(!anon.body.contains("logout"));
    // The API's errors stay JSON.
    let api = browser(&app).get("/api/v1/no-such-thing").await;
    assert_eq!(api.status, 404);
    assert!(api.body.starts_with('{'), "{}", api.body);
}

#[tokio::test]
async fn the_current_page_is_marked_and_a_skip_link_leads_to_the_content() {
    let app = support::spawn_app().await;
    let u = user(&app, Role::Operator, "here").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&u.email, PASSWORD, &code(&u.secret, 0)).await.status, 303);
    let page = b.get("/payments").await;
    assert!(page.body.contains(r#"<a href="/payments" aria-current="page">Payments</a>"#), "{}", page.body);
    assert!(!page.body.contains(r#"href="/" aria-current"#), "only one page is current");
    assert!(page.body.contains(r##"<a class="skip" href="#main">"##) && page.body.contains(r#"<main id="main""#));
    let home = b.get("/").await;
    assert!(home.body.contains(r#"<a href="/" aria-current="page">Home</a>"#));
    assert!(!home.body.contains(r#"href="/payments" aria-current"#));
}

#[tokio::test]
async fn times_show_in_the_zone_set_in_settings_with_utc_on_hover() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "zone").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let csrf = b.get("/").await.csrf();
    let created =
        b.post("/admin/api-keys", &[("name", "shop"), ("scope_checkouts", "on"), ("csrf_token", &csrf)]).await;
    assert!(created.status == 200 || created.status == 303, "{}", created.status);
    let before = b.get("/admin/api-keys").await;
    assert!(before.body.contains(" UTC</time>"), "UTC until a zone is chosen");

    let refused = b.post("/admin/settings/time-zone", &[("zone", "Mars/Olympus"), ("csrf_token", &csrf)]).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains("Choose one of the listed time zones."));
    let saved = b.post("/admin/settings/time-zone", &[("zone", "Africa/Lagos"), ("csrf_token", &csrf)]).await;
    assert_eq!(saved.location.as_deref(), Some("/admin/settings"));
    let settings = b.get("/admin/settings").await;
    assert!(settings.body.contains(r#"id="flash""#) && settings.body.contains("Settings saved."), "a confirmation");
    assert!(settings.body.contains(r#"<option value="Africa/Lagos" selected>"#));
    assert!(!b.get("/admin/settings").await.body.contains("Settings saved."), "shown once");

    let after = b.get("/admin/api-keys").await;
    let i = after.body.find("<time datetime=\"").expect("a time element");
    let time = &after.body[i..i + 140];
    assert!(time.contains(" WAT</time>") && time.contains(" UTC\">"), "{time}");
    assert!(!actions_named(&app, "settings.time_zone").await.is_empty(), "the change is audited");
}

async fn actions_named(app: &support::TestApp, action: &str) -> Vec<sika::store::AuditEntry> {
    let f = sika::store::AuditFilter { action: Some(action.into()), ..Default::default() };
    app.db.store.audit_search(&f, 1000).await.unwrap()
}

#[tokio::test]
async fn a_refused_new_user_keeps_what_was_typed_and_says_why_beside_the_field() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "forms").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let empty = b.get("/admin/users").await;
    assert!(empty.body.contains(r#"<option value="viewer" selected>viewer</option>"#), "a new user starts as a viewer");
    let csrf = empty.csrf();
    let typed = [
        ("email", "new.person@example.com"),
        ("name", "New Person"),
        ("role", "approver"),
        ("password", "short"),
        ("csrf_token", csrf.as_str()),
    ];
    let refused = b.post("/admin/users", &typed).await;
    assert_eq!(refused.status, 200);
    assert!(
        refused.body.contains(r#"value="new.person@example.com""#) && refused.body.contains(r#"value="New Person""#)
    );
    assert!(refused.body.contains(r#"<option value="approver" selected>"#), "the chosen role is kept");
    assert!(refused.body.contains(r#"id="password-error""#), "the error sits beside the password");
    assert!(refused.body.contains(r#"aria-describedby="password-error""#));
    assert!(!refused.body.contains(r#"value="short""#), "the password is never sent back");
    assert!(!refused.body.contains('`'), "plain words");

    let mut good = typed[..3].to_vec();
    good.extend([("password", "Corr3ct-Horse!Battery2"), ("csrf_token", csrf.as_str())]);
    let ok = b.post("/admin/users", &good).await;
    assert_eq!(ok.location.as_deref(), Some("/admin/users"));
    let page = b.get("/admin/users").await;
    assert!(page.body.contains("User added."), "a confirmation after adding");
    let dup = b.post("/admin/users", &good).await;
    assert!(dup.body.contains(r#"id="email-error""#) && dup.body.contains("already exists"), "beside the e-mail");
}

#[tokio::test]
async fn destructive_actions_ask_first() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "careful").await;
    let victim =
        app.auth.create_user(&Actor::cli(), "target@example.com", None, Role::Viewer, PASSWORD, true).await.unwrap();
    let (key_id, _) = app.auth.create_api_key(&Actor::cli(), "shop", "checkouts").await.unwrap();
    let mut b = browser(&app);
    assert_eq!(b.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let csrf = b.get("/").await.csrf();
    for (path, what) in [
        (format!("/admin/users/{}/disable", victim.id), "Disable target@example.com?"),
        (format!("/admin/users/{}/reenrol", victim.id), "Reset two-factor sign-in target@example.com?"),
        (format!("/admin/api-keys/{key_id}/revoke"), "Revoke the API key shop"),
        ("/admin/settings/secret".to_string(), "Generate a new notification signing secret?"),
    ] {
        let first = b.post(&path, &[("csrf_token", &csrf)]).await;
        assert_eq!(first.status, 200, "{path}: a second screen, not the change");
        assert!(first.body.contains(what), "{path}: {}", first.body);
        assert!(first.body.contains(r#"name="confirmed" value="yes""#) && first.body.contains(r#"id="cancel-action""#));
    }
    let row = app.auth.user(&victim.id).await.unwrap().unwrap();
    assert!(!row.disabled && row.totp_enrolled, "nothing changed before confirming");
    assert!(app.db.store.api_keys().await.unwrap()[0].revoked_at.is_none());
    assert!(app.db.store.setting("notify.secret").await.unwrap().is_none());

    let done =
        b.post(&format!("/admin/users/{}/disable", victim.id), &[("csrf_token", &csrf), ("confirmed", "yes")]).await;
    assert_eq!(done.location.as_deref(), Some("/admin/users"));
    assert!(b.get("/admin/users").await.body.contains("User disabled"));
    assert!(app.auth.user(&victim.id).await.unwrap().unwrap().disabled);
    let revoked =
        b.post(&format!("/admin/api-keys/{key_id}/revoke"), &[("csrf_token", &csrf), ("confirmed", "yes")]).await;
    assert_eq!(revoked.location.as_deref(), Some("/admin/api-keys"));
    assert!(app.db.store.api_keys().await.unwrap()[0].revoked_at.is_some());
    // A forged confirmation without the CSRF token is still refused.
    let forged = b.post(&format!("/admin/users/{}/reenrol", victim.id), &[("confirmed", "yes")]).await;
    assert_eq!(forged.status, 403);
}

#[tokio::test]
async fn api_key_scopes_are_checkboxes() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "scopes").await;
    let mut b = browser(&app);
    assert_eq!(b.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let page = b.get("/admin/api-keys").await;
    for s in ["checkouts", "payouts", "cards", "read"] {
        assert!(page.body.contains(&format!(r#"type="checkbox" name="scope_{s}""#)), "{s}");
    }
    let csrf = page.csrf();
    let none = b.post("/admin/api-keys", &[("name", "nothing"), ("csrf_token", &csrf)]).await;
    assert!(none.body.contains(r#"id="scopes-error""#) && none.body.contains(r#"value="nothing""#));
    let made = b
        .post(
            "/admin/api-keys",
            &[("name", "both"), ("scope_payouts", "on"), ("scope_read", "on"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(made.status, 200);
    let keys = app.db.store.api_keys().await.unwrap();
    assert_eq!(keys.len(), 1);
    assert_eq!(keys[0].scopes, "payouts,read");
}

/// Two admins demoting (or disabling) each other at the same moment: one wins,
/// and Sika always keeps an active admin.
async fn last_admin_holds(db: support::TestDb) {
    let app = support::spawn_on(
        db,
        axum::Router::new(),
        std::time::Duration::from_secs(900),
        std::time::Duration::from_secs(36000),
    )
    .await;
    for round in 0..4 {
        let a = user(&app, Role::Admin, &format!("a{round}")).await;
        let bb = user(&app, Role::Admin, &format!("b{round}")).await;
        // Everyone else loses admin first, so a and b are the only admins.
        for u in app.auth.users().await.unwrap() {
            if u.role == Role::Admin && u.email != a.email && u.email != bb.email {
                app.db.store.set_user_role(&u.id, "viewer").await.unwrap();
            }
        }
        let id_of = |email: String| {
            let auth = app.auth.clone();
            async move { auth.users().await.unwrap().into_iter().find(|u| u.email == email).unwrap().id }
        };
        let (a_id, b_id) = (id_of(a.email.clone()).await, id_of(bb.email.clone()).await);
        let mut ba = browser(&app);
        let mut bbb = browser(&app);
        assert_eq!(ba.login(&a.email, PASSWORD, &code(&a.secret, 0)).await.status, 303);
        assert_eq!(bbb.login(&bb.email, PASSWORD, &code(&bb.secret, 0)).await.status, 303);
        let (ca, cb) = (ba.get("/").await.csrf(), bbb.get("/").await.csrf());
        let (pa, pb) = if round % 2 == 0 {
            (format!("/admin/users/{b_id}/role"), format!("/admin/users/{a_id}/role"))
        } else {
            (format!("/admin/users/{b_id}/disable"), format!("/admin/users/{a_id}/disable"))
        };
        let form_a = [("role", "viewer"), ("confirmed", "yes"), ("csrf_token", ca.as_str())];
        let form_b = [("role", "viewer"), ("confirmed", "yes"), ("csrf_token", cb.as_str())];
        let (ra, rb) = tokio::join!(ba.post(&pa, &form_a), bbb.post(&pb, &form_b));
        let admins =
            app.auth.users().await.unwrap().into_iter().filter(|u| u.role == Role::Admin && !u.disabled).count();
        assert_eq!(admins, 1, "round {round}: exactly one admin is left ({} / {})", ra.status, rb.status);
        let refused = [&ra, &rb].iter().filter(|r| r.body.contains("at least one active admin")).count();
        assert!(refused <= 1, "round {round}");
    }
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled_sqlite() {
    last_admin_holds(support::sqlite().await).await;
}

#[tokio::test]
async fn the_last_admin_cannot_be_demoted_or_disabled_postgres() {
    let Some(db) = support::postgres().await else { return };
    last_admin_holds(db).await;
}

#[tokio::test]
async fn the_audit_log_names_actors_filters_by_email_and_date_and_exports() {
    let app = support::spawn_app().await;
    let admin = user(&app, Role::Admin, "chief").await;
    let mut a = browser(&app);
    assert_eq!(a.login(&admin.email, PASSWORD, &code(&admin.secret, 0)).await.status, 303);
    let csrf = a.get("/").await.csrf();
    let made =
        a.post("/admin/api-keys", &[("name", "=HYPERLINK(1)"), ("scope_read", "on"), ("csrf_token", &csrf)]).await;
    assert_eq!(made.status, 200, "the name is refused or accepted, never run");
    a.post("/admin/api-keys", &[("name", "shop"), ("scope_read", "on"), ("csrf_token", &csrf)]).await;

    // Admins read the log too (and get a link to it).
    let page = a.get("/audit?actor=CHIEF%40example.com&action=apikey.create").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains(r#"<a href="/audit" aria-current="page">Audit log</a>"#));
    assert!(page.body.contains("Test Person<br><span class=\"muted\">chief@example.com</span>"), "by name and e-mail");
    assert!(page.body.contains("<code>apikey.create</code>") && !page.body.contains("<code>login</code>"));
    assert!(page.body.contains("<dl class=\"details\">") && page.body.contains("<dt>scopes</dt>"), "key and value");
    assert!(!page.body.contains("Object {") && !page.body.contains("\\\""), "no debug text");
    let nobody = a.get("/audit?actor=nobody%40example.com").await;
    assert!(nobody.body.contains(r#"id="empty""#), "an unknown e-mail matches nothing");
    let tomorrow = sika::timefmt::date(sika::store::now_ms() + 2 * 86_400_000);
    assert!(a.get(&format!("/audit?from={tomorrow}")).await.body.contains(r#"id="empty""#));
    let today = sika::timefmt::date(sika::store::now_ms());
    assert!(
        a.get(&format!("/audit?from={today}&action=apikey.create")).await.body.contains("<code>apikey.create</code>")
    );
    assert!(a.get("/audit?to=2026-02-30").await.body.contains("The to date must be a date"));

    let jsonl = a.get("/audit/export.jsonl?action=apikey.create").await;
    assert_eq!(jsonl.status, 200);
    assert!(jsonl.headers["content-disposition"].to_str().unwrap().contains("audit.jsonl"));
    let lines: Vec<serde_json::Value> = jsonl.body.lines().map(|l| serde_json::from_str(l).unwrap()).collect();
    assert!(!lines.is_empty() && lines.iter().all(|l| l["action"] == "apikey.create" && l["hash"].is_string()));
    let csv = a.get("/audit/export.csv?action=audit.view").await;
    assert!(csv.body.starts_with("\"seq\",\"at_utc\",\"actor\",\"actor_email\""));
    assert!(csv.body.contains("\"chief@example.com\""));
    assert!(!csv.body.lines().any(|l| l.split("\",\"").any(|c| c.starts_with('='))), "formula-safe");
    assert!(!actions_named(&app, "audit.export").await.is_empty(), "exports are audited");
    assert!(actions_named(&app, "audit.view").await.len() >= 4, "every read is audited");
    assert_eq!(a.get("/audit/export.xml").await.status, 404);
    // Operators and viewers still cannot read it.
    let op = user(&app, Role::Operator, "curious").await;
    let mut o = browser(&app);
    assert_eq!(o.login(&op.email, PASSWORD, &code(&op.secret, 0)).await.status, 303);
    assert_eq!(o.get("/audit").await.status, 403);
    assert_eq!(o.get("/audit/export.jsonl").await.status, 403);
}
