//! The console as a payments team uses it, over HTTPS: coming back to the
//! page asked for after sign-in (never to another site), the signed-out
//! message, error pages that keep the navigation, the current page marked,
//! and a confirmation after each change, shown once.

mod support;

use sika::audit::Actor;
use sika::auth::Role;
use support::browser::{Browser, code};

const PASSWORD: &str = "Corr3ct-Horse!Battery";

struct User {
    email: String,
    secret: String,
}

async fn user(app: &support::TestApp, role: Role, tag: &str) -> User {
    let email = format!("{tag}@example.com");
    let created = app.auth.create_user(&Actor::cli(), &email, Some("Test Person"), role, PASSWORD, true).await.unwrap();
    User { email, secret: created.totp_secret }
}

fn browser(app: &support::TestApp) -> Browser {
    Browser::new(&app.base, app.client.clone())
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
    let created = b.post("/admin/api-keys", &[("name", "shop"), ("scopes", "checkouts"), ("csrf_token", &csrf)]).await;
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
    app.auth.store.audit_search(&f, 1000).await.unwrap()
}
