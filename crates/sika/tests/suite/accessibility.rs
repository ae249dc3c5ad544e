//! Every console page and the customer's return page in headless Chromium:
//! axe-core (the npm package, loaded from a local file by this test and
//! never served by Sika) finds no serious or critical violation; a skip link
//! leads to the content; markup stored in every text field a person can
//! fill stays text; and each page is saved as a screenshot under
//! `target/tmp/screenshots/` for people to look at.

use crate::support;

use std::path::PathBuf;

use crate::support::browser::code;
use crate::support::emulated::Env;
use crate::support::webdriver::{Browser, Driver};
use serde_json::{Value, json};
use sika::audit::Actor;
use sika::auth::Role;

use crate::support::people::PASSWORD;
/// Stored as text in every field that takes free text. If any of it ran,
/// `window.pwned` would be set.
const PAYLOAD: &str = "<script>window.pwned=1</script><img src=x onerror=\"window.pwned=1\">";

/// axe-core's script: `SIKA_AXE_JS`, or where `scripts/test` installs it.
fn axe_source() -> Option<String> {
    let path = std::env::var_os("SIKA_AXE_JS").map(PathBuf::from).unwrap_or_else(|| {
        PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../../target/axe/node_modules/axe-core/axe.min.js")
    });
    match std::fs::read_to_string(&path) {
        Ok(s) => Some(s),
        Err(_) => {
            assert!(
                std::env::var_os("CI").is_none(),
                "CI must install axe-core (scripts/test does): the accessibility checks cannot be skipped"
            );
            eprintln!("NOTE: {} is missing: the accessibility checks did NOT run.", path.display());
            None
        }
    }
}

struct Checker {
    axe: String,
    shots: PathBuf,
    checked: Vec<String>,
}

impl Checker {
    /// axe's serious and critical violations on the current page.
    async fn violations(&self, b: &Browser<'_>) -> Value {
        let script = format!(
            "{}\n;const done = arguments[arguments.length - 1];\
             axe.run(document, {{resultTypes: ['violations']}}).then(r => done(r.violations\
               .filter(v => v.impact === 'serious' || v.impact === 'critical')\
               .map(v => ({{id: v.id, impact: v.impact, help: v.help, nodes: v.nodes.slice(0, 5).map(n => n.target.join(' '))}}))))\
             .catch(e => done([{{id: 'axe-error', help: String(e)}}]));",
            self.axe
        );
        b.execute_async(&script).await
    }

    /// axe on the current page (serious and critical only), the payload
    /// inert, the skip link first, and a screenshot named `name`.
    async fn check(&mut self, b: &Browser<'_>, name: &str) {
        assert!(b.wait_ready().await, "{name}: the page loaded");
        let violations = self.violations(b).await;
        assert_eq!(violations, json!([]), "{name}: axe found serious or critical violations");
        let pwned = b.execute("return window.pwned === undefined").await;
        assert_eq!(pwned, json!(true), "{name}: stored markup ran");
        let source = b.source().await;
        assert!(!source.contains("<script>window.pwned"), "{name}: stored markup reached the page as markup");
        let first = b.execute("const f = document.querySelector('a, button, input, select, textarea'); return f ? f.className + '|' + f.getAttribute('href') : ''").await;
        assert_eq!(first, json!("skip|#main"), "{name}: the first control is the skip link");
        let png = b.screenshot().await;
        assert!(png.starts_with(b"\x89PNG"), "{name}: a screenshot");
        std::fs::write(self.shots.join(format!("{name}.png")), png).unwrap();
        self.checked.push(name.to_string());
    }
}

async fn sign_in(b: &Browser<'_>, base: &str, email: &str, secret: &str, offset: i64) {
    b.goto(&format!("{base}/login")).await;
    b.fill("#email", email).await;
    b.fill("#password", PASSWORD).await;
    b.fill("#totp", &code(secret, offset)).await;
    b.click("#sign-in").await;
    assert!(b.wait_url("/").await.ends_with('/'), "{email} signed in");
}

async fn api(e: &Env, key: &str, path: &str, body: Value) -> Value {
    let r = e.app.client.post(e.app.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = r.status();
    let v: Value = r.json().await.unwrap();
    assert!(status.is_success(), "{path}: {v}");
    v
}

#[tokio::test]
async fn every_page_passes_axe_and_stored_markup_stays_inert() {
    let Some(driver) = Driver::start().await else { return };
    let Some(axe) = axe_source() else { return };
    let shots = PathBuf::from(env!("CARGO_TARGET_TMPDIR")).join("screenshots");
    std::fs::create_dir_all(&shots).unwrap();
    let mut checker = Checker { axe, shots, checked: Vec::new() };

    // Data with the payload in every free-text field.
    let options = support::Options { cards: true, ..Default::default() };
    let e = support::emulated::env_with(support::sqlite().await, options, |_| {}).await;
    let store = &e.app.db.store;
    store.set_setting("merchant.name", PAYLOAD).await.unwrap();
    let (_, all) = e.app.auth.create_api_key(&Actor::cli(), "shop", "checkouts,payouts").await.unwrap();
    api(
        &e,
        &all,
        "/api/v1/checkouts",
        json!({"reference": "a11y-1", "amount": "15000.5", "currency": "NGN",
        "customer": {"email": "buyer@example.com", "name": "Ada Buyer"}, "description": PAYLOAD,
        "redirect_url": "https://shop.example/back"}),
    )
    .await;
    let id = e.pay("a11y-1", "successful", json!({})).await;
    e.app.payments.verify_and_apply(id).await.unwrap();
    api(
        &e,
        &all,
        "/api/v1/checkouts",
        json!({"reference": "a11y-2", "amount": "700", "currency": "KES",
        "customer": {"email": "other@example.com"}}),
    )
    .await;
    api(&e, &all, "/api/v1/payouts", json!({"reference": "a11y-po-1", "amount": "2500", "currency": "NGN",
        "bank_code": "044", "account_number": "0690000032", "beneficiary_name": "Pastor Bright", "narration": "Invoice 12 & co"}))
    .await;

    // A virtual card, issued (its first load approved), with a funding waiting for approval.
    e.faults(json!({"minute_ms": 20})).await;
    let (_, card_key) = e.app.auth.create_api_key(&Actor::cli(), "cards", "cards").await.unwrap();
    api(
        &e,
        &card_key,
        "/api/v1/cards",
        json!({"reference": "a11y-card", "currency": "USD", "amount": "5.00",
        "cardholder": {"first_name": "Ada", "last_name": "Obi", "date_of_birth": "1990-04-21",
            "email": "ada@example.com", "phone": "+2348012345678", "title": "MRS", "gender": "F"}}),
    )
    .await;
    let cards = e.app.cards.clone().unwrap();
    let checker_id = support::checker("u-a11y");
    cards.approve_funding(&support::cli(), "a11y-card.load", &checker_id).await.unwrap();
    cards.dispatch_fundings(5).await.unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    sqlx::query("UPDATE cards SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
    cards.follow(sika::store::now_ms()).await.unwrap();
    api(&e, &card_key, "/api/v1/cards/a11y-card/fund", json!({"reference": "a11y-fund", "amount": "3"})).await;

    // A settlement with a foreign line, so its page shows a discrepancy.
    let r =
        e.http.post(format!("{}/_emulator/settlements", e.emu.url())).json(&json!({"drill": "foreign_line"})).send();
    let settled: Value = r.await.unwrap().json().await.unwrap();
    let settlement = settled["settlements"][0]["id"].as_i64().expect("a settlement");
    e.app.settlements.poll(sika::store::now_ms(), 5).await.unwrap();

    let admin = e
        .app
        .auth
        .create_user(&Actor::cli(), "admin@example.com", Some("Ada Admin"), Role::Admin, PASSWORD, true)
        .await
        .unwrap();
    let op =
        e.app.auth.create_user(&Actor::cli(), "op@example.com", None, Role::Operator, PASSWORD, true).await.unwrap();
    let ap =
        e.app.auth.create_user(&Actor::cli(), "ap@example.com", None, Role::Approver, PASSWORD, true).await.unwrap();
    let base = e.app.base.clone();

    // Signed out: the sign-in page, and the customer's return page.
    let b = driver.browser().await;
    b.set_window(1280, 900).await;
    b.goto(&format!("{base}/login")).await;
    checker.check(&b, "login").await;
    // The check can fail: an unlabelled field is caught.
    b.execute("document.querySelector('main').insertAdjacentHTML('beforeend', '<input id=bad>'); return true").await;
    let caught = checker.violations(&b).await.to_string();
    assert!(caught.contains("\"label\""), "{caught}");
    b.goto(&format!("{base}/checkout/return?tx_ref=a11y-1")).await;
    checker.check(&b, "return-paid").await;
    b.set_window(390, 844).await;
    b.goto(&format!("{base}/checkout/return?tx_ref=a11y-2&status=cancelled")).await;
    checker.check(&b, "return-left-mobile").await;
    b.set_window(1280, 900).await;

    // The admin's pages.
    sign_in(&b, &base, "admin@example.com", &admin.totp_secret, 0).await;
    for (path, name) in [
        ("/", "overview"),
        ("/?period=30d", "overview-30d"),
        ("/payments", "payments"),
        ("/payments?q=a11y&status=paid", "payments-filtered"),
        ("/payments/a11y-1", "payment"),
        ("/disputes", "disputes"),
        ("/settlements", "settlements"),
        ("/settlements/discrepancies", "settlement-discrepancies"),
        ("/reports/money", "money-report"),
        ("/payouts", "payouts"),
        ("/payouts/a11y-po-1", "payout"),
        ("/payouts/batches", "batches"),
        ("/payouts/beneficiaries", "beneficiaries"),
        ("/admin/users", "users"),
        ("/admin/api-keys", "api-keys"),
        ("/admin/settings", "settings"),
        ("/admin/webhooks", "webhooks"),
        ("/audit", "audit"),
        ("/account/password", "password"),
        ("/account/mail", "mail-choices"),
        ("/admin/mail", "mail-outbox"),
        ("/no-such-page", "not-found"),
    ] {
        b.goto(&format!("{base}{path}")).await;
        checker.check(&b, name).await;
    }
    b.goto(&format!("{base}/settlements/{settlement}")).await;
    checker.check(&b, "settlement").await;
    // A refused form keeps its input and says why beside the field.
    b.goto(&format!("{base}/admin/users")).await;
    b.fill("#new-email", "not-an-email").await;
    b.fill("#new-password", "short").await;
    b.execute("document.querySelector('#new-email').type = 'text'; return true").await;
    b.click("#add-user-button").await;
    b.wait_url("/admin/users").await;
    // The URL does not change on a refusal: wait for the refused page itself.
    let refused = b.until(async |b| b.has("#email-error").await || b.has("#password-error").await).await;
    assert!(refused, "the refusal is shown beside the field");
    checker.check(&b, "users-refused").await;
    // A destructive action asks first.
    let victim = e.app.auth.users().await.unwrap().into_iter().find(|u| u.email == "op@example.com").unwrap();
    b.goto(&format!("{base}/admin/users")).await;
    b.click(&format!("form[action='/admin/users/{}/disable'] button", victim.id)).await;
    b.wait_url("/disable").await;
    assert!(b.has("#confirm-action").await);
    checker.check(&b, "confirm-disable").await;
    b.click("#cancel-action").await;
    b.wait_url("/admin/users").await;
    b.click("#logout").await;
    b.wait_url("/login?signed_out=1").await;
    checker.check(&b, "signed-out").await;

    // The operator's form for a new payment link.
    sign_in(&b, &base, "op@example.com", &op.totp_secret, 0).await;
    b.goto(&format!("{base}/payments/new")).await;
    checker.check(&b, "payment-new").await;
    b.fill("#amount", "lots").await;
    b.click("#create-link").await;
    // The browser itself refuses the form (its required fields), so the page stays where it is.
    b.wait_ready().await;
    checker.check(&b, "payment-new-refused").await;
    // And for a new payout: refused beside the field, what was typed kept.
    b.goto(&format!("{base}/payouts/new")).await;
    checker.check(&b, "payout-new").await;
    b.fill("#payout-reference", "a11y-po-new").await;
    b.fill("#payout-amount", "lots").await;
    b.fill("#payout-bank", "044").await;
    b.fill("#payout-account", "0690000031").await;
    b.click("#create-payout").await;
    b.wait_url("/payouts").await;
    assert!(b.has("#amount-error").await, "the amount's error beside it");
    checker.check(&b, "payout-new-refused").await;
    b.click("#logout").await;
    b.wait_url("/login?signed_out=1").await;

    // The approver's refund confirmation.
    sign_in(&b, &base, "ap@example.com", &ap.totp_secret, 0).await;
    b.goto(&format!("{base}/payments/a11y-1")).await;
    b.fill("#refund-amount", "100").await;
    b.fill("#refund-comment", PAYLOAD).await;
    b.click("#refund-next").await;
    b.wait_url("/refund/confirm").await;
    checker.check(&b, "refund-confirm").await;
    b.goto(&format!("{base}/payouts/a11y-po-1")).await;
    checker.check(&b, "payout-approve").await;
    b.goto(&format!("{base}/cards")).await;
    checker.check(&b, "cards").await;
    b.goto(&format!("{base}/cards/a11y-card")).await;
    assert!(b.has("button.approve").await, "the approver's approve form");
    checker.check(&b, "card-approve").await;
    b.click("#logout").await;
    b.wait_url("/login?signed_out=1").await;
    // The operator's card page: the reveal and the forms that move money.
    sign_in(&b, &base, "op@example.com", &op.totp_secret, 1).await;
    b.goto(&format!("{base}/cards/a11y-card")).await;
    assert!(b.has("#reveal").await && b.has("#request-funding").await);
    checker.check(&b, "card-operator").await;
    b.goto(&format!("{base}/cards/new")).await;
    checker.check(&b, "card-new").await;
    b.quit().await;
    assert_eq!(checker.checked.len(), 39, "{:?}", checker.checked);
}
