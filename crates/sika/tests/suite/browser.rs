//! The console in a real browser: headless Chromium through chromedriver.
//! TOTP enrolment and login, the visible logout, the back button after
//! logout, idle expiry, and a second login ending the first.

use crate::support;

use std::time::Duration;

use crate::support::browser::code;
use crate::support::webdriver::Driver;
use sika::audit::Actor;
use sika::auth::Role;

use crate::support::people::PASSWORD;

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
    assert!(b.wait_for("#recovery-codes").await, "the code is accepted and recovery codes are shown once");
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
    assert!(b.wait_url("/login?signed_out=1").await.ends_with("/login?signed_out=1"));
    assert_eq!(b.text("#notice").await, "You have signed out.");
    assert!(b.cookies().await.iter().all(|c| c["name"] != "__Host-sika"), "the cookie is gone");
    b.back().await;
    b.wait_url("/login").await;
    let page = b.source().await;
    assert!(!page.contains("newcomer@example.com"), "back after logout shows nothing sensitive");
    assert!(b.url().await.contains("/login"));

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
    // Sika's clock, moved by the test: the codes below and the server agree on the time.
    let clock = sika::clock::install_manual();
    let app = support::spawn_on(
        support::sqlite().await,
        axum::Router::new(),
        Duration::from_secs(15 * 60),
        Duration::from_secs(10 * 3600),
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
    clock.advance(Duration::from_secs(15 * 60 + 1));
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

#[tokio::test]
async fn a_customer_pays_a_link_on_the_emulators_hosted_page() {
    use flutterwave_emulator::{Emulator, EmulatorConfig};
    let Some(driver) = Driver::start().await else { return };
    let secret_key = format!("FLWSECK_TEST-{}-X", sika::crypto::random::hex_id());
    let hash = sika::crypto::random::token();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let config = EmulatorConfig {
        secret_key: secret_key.clone(),
        secret_hash: hash.clone(),
        webhook_url: None,
        webhook_root_pem: None,
        seed: 3,
    };
    let emu = Emulator::start(config, listener).await.unwrap();
    let flw = support::Flw { base_url: emu.base_url(), secret_key, secret_hash: hash };
    let app = support::spawn_full(
        support::sqlite().await,
        axum::Router::new(),
        Duration::from_secs(900),
        Duration::from_secs(3600),
        Some(flw),
    )
    .await;
    let (_, key) = app.auth.create_api_key(&Actor::cli(), "shop", "checkouts").await.unwrap();
    let body = serde_json::json!({"reference": "browser-pay-1", "amount": "7500", "currency": "NGN",
        "customer": {"email": "buyer@example.com"}, "redirect_url": "https://shop.example/thanks"});
    let created: serde_json::Value = app
        .client
        .post(app.url("/api/v1/checkouts"))
        .bearer_auth(&key)
        .json(&body)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let link = created["checkout_url"].as_str().unwrap().to_string();

    let b = driver.browser().await;
    b.goto(&link).await;
    assert!(b.text("#amount").await.contains("7500"));
    // A declined card first: the page stays, the checkout stays open.
    b.click("#card option[value='4']").await;
    b.click("#pay").await;
    assert!(b.wait_for("#notice").await, "the hosted page answers the declined card");
    assert!(b.text("#notice").await.contains("Payment failed"));
    // Then an approving card: back to Sika's return page, which verifies.
    b.click("#card option[value='0']").await;
    b.click("#pay").await;
    b.wait_text("data-status=\"paid\"").await;
    assert!(b.url().await.contains("/checkout/return"), "Flutterwave sends the customer back to Sika");
    assert!(b.source().await.contains("data-status=\"paid\""), "verified, then shown as paid");
    assert!(b.has("#back-to-shop").await);
    assert_eq!(app.db.store.checkout("browser-pay-1").await.unwrap().unwrap().status.as_str(), "paid");
    b.quit().await;
}

/// Two people, two browsers: an operator creates a payout in the console,
/// an approver (not the creator) approves it with a fresh code, and it is sent.
#[tokio::test]
async fn an_operator_creates_a_payout_and_an_approver_approves_it() {
    let Some(driver) = Driver::start().await else { return };
    let e = support::emulated::env().await;
    let op =
        e.app.auth.create_user(&Actor::cli(), "maker@example.com", None, Role::Operator, PASSWORD, true).await.unwrap();
    let ap = e
        .app
        .auth
        .create_user(&Actor::cli(), "checker@example.com", None, Role::Approver, PASSWORD, true)
        .await
        .unwrap();
    let sign_in = |email: &'static str, secret: String, offset: i64| {
        let (driver, base) = (&driver, e.app.base.clone());
        async move {
            let b = driver.browser().await;
            b.goto(&format!("{base}/login")).await;
            b.fill("#email", email).await;
            b.fill("#password", PASSWORD).await;
            b.fill("#totp", &code(&secret, offset)).await;
            b.click("#sign-in").await;
            b.wait_url("/").await;
            b
        }
    };
    let maker = sign_in("maker@example.com", op.totp_secret.clone(), 0).await;
    maker.goto(&e.app.url("/payouts")).await;
    maker.click("#new-payout").await;
    maker.wait_url("/payouts/new").await;
    maker.fill("#payout-reference", "browser-payout-1").await;
    maker.fill("#payout-amount", "12500").await;
    maker.fill("#payout-bank", "044").await;
    maker.fill("#payout-account", "0690000033").await;
    maker.click("#create-payout").await;
    maker.wait_url("/payouts/browser-payout-1").await;
    assert_eq!(maker.text("#payout-status").await, "Awaiting approval");
    assert!(maker.source().await.contains("Payout created; it waits for an approver who is not you."));
    assert!(!maker.has("#approve").await, "the maker has no approve button");
    maker.quit().await;

    let checker = sign_in("checker@example.com", ap.totp_secret.clone(), -1).await;
    assert!(checker.source().await.contains("Approvals (1)"), "the queue's count is in the navigation");
    checker.goto(&e.app.url("/payouts/browser-payout-1")).await;
    assert!(checker.text("#created-by").await.contains("maker@example.com"));
    assert!(checker.text("#account").await.ends_with("0033") && checker.text("#account").await.starts_with('*'));
    checker.fill("#approve-totp", &code(&ap.totp_secret, 0)).await;
    checker.click("#approve").await;
    checker.wait_text("queued for sending").await;
    assert!(checker.text("#notice").await.contains("queued for sending"));
    checker.quit().await;
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 1);
    let p = e.app.payouts.payout("browser-payout-1").await.unwrap().unwrap();
    assert_eq!(p.status.as_str(), "submitted");
}

/// A chargeback answered end to end in two real browsers: the operator declines
/// it with a PDF chosen in the file picker; the approver, who did not prepare it,
/// sends it with a fresh code; Flutterwave (the emulator) gets the decline and
/// the file.
#[tokio::test]
async fn an_operator_prepares_a_chargeback_answer_and_an_approver_sends_it() {
    let Some(driver) = Driver::start().await else { return };
    let e = support::emulated::env().await;
    let tx = e.paid("browser-cb-1", "4000").await;
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks", e.emu.url()))
        .json(&serde_json::json!({"transaction_id": tx, "webhook": false}))
        .send()
        .await
        .unwrap();
    let id = r.json::<serde_json::Value>().await.unwrap()["id"].as_i64().unwrap();
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let op = e.app.person(Role::Operator, "cb-maker@example.com").await;
    let ap = e.app.person(Role::Approver, "cb-checker@example.com").await;
    let dir = tempfile::tempdir().unwrap();
    let pdf_path = dir.path().join("proof-of-delivery.pdf");
    let pdf = b"%PDF-1.4\n% signed for at the door\n".to_vec();
    std::fs::write(&pdf_path, &pdf).unwrap();

    let maker = driver.browser().await;
    sign_in_as(&maker, &e.app.base, "cb-maker@example.com", &op.secret, 0).await;
    maker.goto(&e.app.url("/disputes")).await;
    assert!(maker.source().await.contains(&format!(r#"id="dispute-{id}""#)));
    maker.goto(&e.app.url(&format!("/disputes/{id}"))).await;
    maker.click("#answer-decline").await;
    maker.fill("#answer-comment", "Delivered on 2 December and signed for.").await;
    maker.fill("#answer-evidence", &pdf_path.display().to_string()).await;
    maker.click("#prepare-button").await;
    maker.wait_text("Prepared: an approver must send it").await;
    assert!(maker.text("#notice").await.contains("Prepared"));
    assert!(!maker.has("button.approve").await, "the preparer cannot send it");
    maker.quit().await;

    let checker = driver.browser().await;
    sign_in_as(&checker, &e.app.base, "cb-checker@example.com", &ap.secret, -1).await;
    assert!(checker.source().await.contains("Disputes (1 to send)"));
    checker.goto(&e.app.url(&format!("/disputes/{id}"))).await;
    checker.fill("input[name=totp]", &ap.code(0)).await;
    checker.click("button.approve").await;
    checker.wait_text("being sent to Flutterwave").await;
    assert!(checker.text("#notice").await.contains("being sent"));
    checker.quit().await;
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    let cb = e.app.db.store.chargeback(id).await.unwrap().unwrap();
    assert_eq!(cb.facts.status, "declined", "Flutterwave has the decline");
    let url = format!("{}/chargebacks?flw_ref={}", e.emu.base_url(), cb.facts.flw_ref);
    let listed: serde_json::Value = e.http.get(url).bearer_auth(&e.flw_key).send().await.unwrap().json().await.unwrap();
    let link = listed["data"][0]["meta"]["uploaded_proof"].as_str().unwrap().to_string();
    assert_eq!(e.http.get(link).send().await.unwrap().bytes().await.unwrap().to_vec(), pdf, "and the file");
}

async fn sign_in_as(b: &support::webdriver::Browser<'_>, base: &str, email: &str, secret: &str, offset: i64) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.fill("#totp", &code(secret, offset)).await;
    b.click("#sign-in").await;
    assert!(b.wait_url("/").await.ends_with('/'), "{email} signed in");
}

/// The two console flows of issue 20 in a real browser: an operator asks for a card in the console
/// (its first load then waits for an approver), and an approver refunds a late payment under review
/// through the same confirmation and fresh code as any refund.
#[tokio::test]
async fn an_operator_requests_a_card_and_an_approver_refunds_a_late_payment() {
    let Some(driver) = Driver::start().await else { return };
    let options = support::Options { cards: true, ..Default::default() };
    let e = support::emulated::env_with(support::sqlite().await, options, |_| {}).await;
    let op =
        e.app.auth.create_user(&Actor::cli(), "asker@example.com", None, Role::Operator, PASSWORD, true).await.unwrap();
    let ap = e
        .app
        .auth
        .create_user(&Actor::cli(), "refunder@example.com", None, Role::Approver, PASSWORD, true)
        .await
        .unwrap();

    let b = driver.browser().await;
    sign_in_as(&b, &e.app.base, "asker@example.com", &op.totp_secret, 0).await;
    b.goto(&e.app.url("/cards")).await;
    b.click("#new-card").await;
    b.wait_url("/cards/new").await;
    for (css, value) in [
        ("#reference", "browser-card-1"),
        ("#amount", "12.50"),
        ("#first-name", "Ada"),
        ("#last-name", "Obi"),
        ("#holder-email", "ada@example.com"),
        ("#phone", "+2348012345678"),
        ("#address", "333 Fremont Street"),
        ("#city", "Lagos"),
        ("#state", "LA"),
        ("#country", "NG"),
    ] {
        b.fill(css, value).await;
    }
    // A date input's typing depends on the browser's locale: set its value as a person's picker would.
    b.execute("document.querySelector('#date-of-birth').value = '1990-04-21'; return true").await;
    b.click("#request-card").await;
    assert!(
        b.wait_url("/cards/browser-card-1").await.ends_with("/cards/browser-card-1"),
        "the card has the reference typed"
    );
    assert!(b.source().await.contains("an approver must approve its first load"), "{}", b.source().await);
    b.quit().await;
    assert_eq!(e.app.cards.as_ref().unwrap().fundings_awaiting_count().await.unwrap(), 1, "its first load waits");

    // A payment that arrived after its checkout closed, kept for review, refunded by the approver.
    e.checkout("browser-late-1", "100", "NGN").await;
    sika::payments::reconcile_at(&e.app.payments, sika::store::now_ms() + 2 * 86_400_000).await.unwrap();
    let id = e.pay("browser-late-1", "successful", serde_json::json!({})).await;
    assert_eq!(e.webhook(id, "browser-late-1", e.signed()).await, 200);
    e.process().await;
    assert_eq!(e.status("browser-late-1").await, "needs_review");
    let a = driver.browser().await;
    sign_in_as(&a, &e.app.base, "refunder@example.com", &ap.totp_secret, -1).await;
    a.goto(&e.app.url("/payments/browser-late-1")).await;
    a.fill("#refund-amount", "100").await;
    a.fill("#refund-comment", "Paid after the link expired").await;
    a.click("#refund-next").await;
    a.wait_url("/refund/confirm").await;
    assert!(a.text("#confirm-amount").await.contains("NGN 100.00"));
    a.fill("#refund-totp", &code(&ap.totp_secret, 0)).await;
    a.click("#refund").await;
    a.wait_text("Refund completed.").await;
    assert!(a.source().await.contains("Refund completed."));
    a.quit().await;
    let refunds = e.app.db.store.refunds("browser-late-1").await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!(refunds[0].status.as_str(), "completed");
}
