//! The console in a real browser: headless Chromium through chromedriver.
//! TOTP enrolment and login, the visible logout, the back button after
//! logout, idle expiry, and a second login ending the first.

mod support;

use std::time::Duration;

use sika::audit::Actor;
use sika::auth::Role;
use support::browser::code;
use support::webdriver::Driver;

const PASSWORD: &str = "Corr3ct-Horse!Battery";

#[tokio::test]
async fn enrol_sign_in_log_out_and_the_back_button_shows_nothing() {
    let Some(driver) = Driver::start().await else { return };
    let app = support::spawn_app().await;
    app.auth
        .create_user(&Actor::cli(), "newcomer@example.com", Some("New Comer"), Role::Operator, PASSWORD, false)
        .await
        .unwrap();
    let b = driver.browser().await;
    b.goto(&app.url("/")).await;
    assert!(b.wait_url("/login").await.ends_with("/login"), "signed out, the console sends you to sign in");
    b.fill("#email", "newcomer@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.click("#sign-in").await;
    assert!(b.wait_url("/enrol").await.ends_with("/enrol"), "first sign-in: enrolment");
    assert!(b.has(".qr svg").await, "a QR code drawn by Sika");
    let secret = b.text("#totp-secret").await;
    b.fill("#code", &code(&secret, 0)).await;
    b.click("#confirm").await;
    b.wait_url("/enrol").await;
    assert!(b.source().await.contains("recovery-codes"));
    b.click("#continue").await;
    assert!(b.wait_url("/").await.ends_with('/'));
    assert_eq!(b.text("#who-email").await, "newcomer@example.com");
    assert_eq!(b.text("#who-role").await, "operator");
    let cookies = b.cookies().await;
    let session = cookies.iter().find(|c| c["name"] == "__Host-sika").expect("session cookie");
    assert_eq!((session["httpOnly"].as_bool(), session["secure"].as_bool()), (Some(true), Some(true)));
    assert!(session.get("expiry").is_none(), "a session cookie, gone with the browser");

    // The logout button is on the page, visible, and ends the session.
    assert!(b.has("#logout").await);
    b.click("#logout").await;
    assert!(b.wait_url("/login").await.ends_with("/login"));
    assert!(b.cookies().await.iter().all(|c| c["name"] != "__Host-sika"), "the cookie is gone");
    b.back().await;
    b.wait_url("/login").await;
    let page = b.source().await;
    assert!(!page.contains("newcomer@example.com"), "back after logout shows nothing sensitive");
    assert!(b.url().await.ends_with("/login"));

    // Sign in again with a code; a reused code would be refused.
    b.goto(&app.url("/login")).await;
    b.fill("#email", "newcomer@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.fill("#totp", &code(&secret, 1)).await;
    b.click("#sign-in").await;
    assert!(b.wait_url("/").await.ends_with('/'));
    b.quit().await;
}

#[tokio::test]
async fn idle_expiry_and_a_second_login_ending_the_first() {
    let Some(driver) = Driver::start().await else { return };
    let app = support::spawn_on(
        support::sqlite().await,
        axum::Router::new(),
        Duration::from_secs(3),
        Duration::from_secs(3600),
    )
    .await;
    let c = app.auth.create_user(&Actor::cli(), "twice@example.com", None, Role::Viewer, PASSWORD, true).await.unwrap();
    let first = driver.browser().await;
    let second = driver.browser().await;
    sign_in(&first, &app.url("/login"), &c.totp_secret, -1).await;
    sign_in(&second, &app.url("/login"), &c.totp_secret, 0).await;
    first.goto(&app.url("/")).await;
    assert!(first.wait_url("/login").await.ends_with("/login"));
    assert!(first.source().await.contains("signed in somewhere else"), "the first browser is told why");

    second.goto(&app.url("/")).await;
    assert!(second.source().await.contains("twice@example.com"));
    tokio::time::sleep(Duration::from_millis(3500)).await;
    second.goto(&app.url("/")).await;
    assert!(second.wait_url("/login").await.ends_with("/login"));
    assert!(second.source().await.contains("inactivity"));
    first.quit().await;
    second.quit().await;
}

async fn sign_in(b: &support::webdriver::Browser<'_>, url: &str, secret: &str, offset: i64) {
    b.goto(url).await;
    b.fill("#email", "twice@example.com").await;
    b.fill("#password", PASSWORD).await;
    b.fill("#totp", &code(secret, offset)).await;
    b.click("#sign-in").await;
    assert!(b.wait_url("/").await.ends_with('/'), "signed in");
}
