//! The demo's first few payments, so that a newcomer has something to look
//! at: made the first time a demo directory starts (not with `--empty`),
//! through the same paths a shop and Flutterwave use — Sika's API for
//! checkouts and payouts, the emulator's hosted-checkout control for the
//! customers' payments (its webhooks reach Sika's `/webhooks/flutterwave`),
//! and Sika's own services for a refund. Nothing is written behind the
//! store's back; a step that fails is logged and the rest go on. The late
//! payment takes real minutes: its link must expire and the checkout close
//! before its money lands.

use std::net::SocketAddr;
use std::time::Duration;

use serde_json::{Value, json};

use crate::audit::Actor;
use crate::domain::CheckoutStatus;

/// What the seed makes, for the console's first screens.
pub struct Seed {
    /// Sika's HTTPS address, and the demo certificate to trust for it.
    pub addr: SocketAddr,
    pub cert_pem: String,
    /// The emulator's base (`http://ADDR`), for its control surface.
    pub emulator: String,
    /// An API key with every scope the seed uses.
    pub api_key: String,
    /// The payments service, over the demo's database, for what only a person does (a refund).
    pub payments: crate::payments::Payments,
    /// Virtual cards are on (`SIKA_CARDS_ENABLED`): one card is asked for, its first load waiting.
    pub cards: bool,
}

/// Payments in every state: (reference, amount, currency, how the customer pays).
const PAYMENTS: [(&str, &str, &str, Pay); 9] = [
    ("demo-1001", "15000", "NGN", Pay::Paid("card")),
    ("demo-1002", "2500", "NGN", Pay::Paid("bank_transfer")),
    ("demo-1003", "120000", "NGN", Pay::Paid("card")),
    ("demo-1004", "45", "USD", Pay::Paid("card")),
    ("demo-1005", "8000", "NGN", Pay::Failed),
    ("demo-1006", "4000", "NGN", Pay::Pending),
    ("demo-1007", "3000", "NGN", Pay::Under("2000")),
    ("demo-1008", "6500", "NGN", Pay::Nobody),
    (LATE_REFERENCE, "9500", "NGN", Pay::Late),
];

/// The payment that lands after its checkout closed (see [`Seed::late_payment`]).
const LATE_REFERENCE: &str = "demo-1009";

/// The late payment's link closes this long after the demo starts (the shortest a link may
/// live); the reconciler closes the checkout, and only then does its customer's transfer land.
const LATE_LINK_MINUTES: i64 = 5;

#[derive(Clone, Copy)]
enum Pay {
    Paid(&'static str),
    Failed,
    /// Started, not finished (the reconciler looks, and closes it in time).
    Pending,
    /// Paid less than asked: a person reviews it.
    Under(&'static str),
    /// Nobody tried (yet).
    Nobody,
    /// Paid by bank transfer after its link expired and the checkout closed: a person reviews
    /// it (see [`Seed::late_payment`]).
    Late,
}

impl Seed {
    fn client(&self) -> Result<reqwest::Client, String> {
        let cert = reqwest::Certificate::from_pem(self.cert_pem.as_bytes()).map_err(|e| e.to_string())?;
        reqwest::Client::builder()
            .use_rustls_tls()
            .add_root_certificate(cert)
            .timeout(Duration::from_secs(30))
            .build()
            .map_err(|e| e.to_string())
    }

    async fn api(&self, http: &reqwest::Client, path: &str, body: Value) -> Result<Value, String> {
        let mut at = self.addr;
        if at.ip().is_unspecified() {
            at.set_ip(std::net::Ipv4Addr::LOCALHOST.into());
        }
        let url = format!("https://{at}{path}");
        let res = http.post(url).bearer_auth(&self.api_key).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("{path} answered {status}: {v}"));
        }
        Ok(v)
    }

    async fn emulator(&self, http: &reqwest::Client, path: &str, body: Value) -> Result<Value, String> {
        let res = http.post(format!("{}{path}", self.emulator)).json(&body).send().await.map_err(|e| e.to_string())?;
        let status = res.status();
        let v: Value = res.json().await.unwrap_or(Value::Null);
        if !status.is_success() {
            return Err(format!("the emulator's {path} answered {status}: {v}"));
        }
        Ok(v)
    }

    /// Whether checkout `reference` reaches a status `done` accepts within `within` (the
    /// webhook's worker and the reconciler move it; the seed only watches).
    async fn reaches(&self, reference: &str, within: Duration, done: impl Fn(CheckoutStatus) -> bool) -> bool {
        let deadline = tokio::time::Instant::now() + within;
        loop {
            if let Ok(Some(c)) = self.payments.checkout(reference).await
                && done(c.status)
            {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(500)).await;
        }
    }

    /// Makes everything but the late payment; returns what it made, in words.
    pub async fn run(&self) -> Vec<String> {
        let mut made = Vec::new();
        let http = match self.client() {
            Ok(h) => h,
            Err(e) => return vec![format!("the demo seed could not start: {e}")],
        };
        for (reference, amount, currency, pay) in PAYMENTS {
            let mut body = json!({"reference": reference, "amount": amount, "currency": currency,
                "customer": {"email": format!("{reference}@customers.sika-demo.test"), "name": "Demo Customer"},
                "redirect_url": "https://shop.sika-demo.test/thanks", "description": "Demo order"});
            if matches!(pay, Pay::Late) {
                body["expires_in_minutes"] = json!(LATE_LINK_MINUTES);
            }
            if let Err(e) = self.api(&http, "/api/v1/checkouts", body).await {
                made.push(format!("checkout {reference}: {e}"));
                continue;
            }
            let charge = match pay {
                Pay::Paid(kind) => Some(json!({"tx_ref": reference, "status": "successful", "payment_type": kind})),
                Pay::Failed => Some(json!({"tx_ref": reference, "status": "failed"})),
                Pay::Pending => Some(json!({"tx_ref": reference, "status": "pending"})),
                Pay::Under(paid) => Some(json!({"tx_ref": reference, "status": "successful", "amount": paid})),
                Pay::Nobody | Pay::Late => None,
            };
            if let Some(c) = charge
                && let Err(e) = self.emulator(&http, "/_emulator/charges", c).await
            {
                made.push(format!("payment of {reference}: {e}"));
            }
        }
        made.push(format!("{} payments", PAYMENTS.len()));
        // A partial refund of a paid order, once its payment is verified (the webhook's worker).
        if self.reaches("demo-1001", Duration::from_secs(30), |s| s == CheckoutStatus::Paid).await {
            let out = self
                .payments
                .refund("demo-1001", 5000.into(), "Customer returned one item", "demo", Some(&Actor::cli()))
                .await;
            made.push(match out {
                Ok(o) => format!("a refund ({})", o.word()["status"].as_str().unwrap_or("?")),
                Err(e) => format!("the refund: {e}"),
            });
        } else {
            made.push("the refund: demo-1001 was not verified in time".into());
        }
        for (reference, amount, account, name) in
            [("demo-po-1", "25000", "0690000032", "Pastor Bright"), ("demo-po-2", "7500", "0690000033", "Bale Gary")]
        {
            let body = json!({"reference": reference, "amount": amount, "currency": "NGN", "bank_code": "044",
                              "account_number": account, "beneficiary_name": name, "narration": "Supplier invoice"});
            if let Err(e) = self.api(&http, "/api/v1/payouts", body).await {
                made.push(format!("payout {reference}: {e}"));
            }
        }
        made.push("2 payouts waiting for approval".into());
        let csv = format!(
            "{}\ndemo-b-1,1200,NGN,NG,044,0690000032,Pastor Bright,,,Rider pay\ndemo-b-2,1800,NGN,NG,044,0690000033,Bale Gary,,,Rider pay\n",
            crate::domain::payout_csv::HEADER.join(",")
        );
        match self.api(&http, "/api/v1/payout-batches", json!({"title": "Riders, week 1", "csv": csv})).await {
            Ok(_) => made.push("a batch of 2 payouts".into()),
            Err(e) => made.push(format!("the batch: {e}")),
        }
        if self.cards {
            let body = json!({"reference": "demo-card-1", "currency": "USD", "amount": "25.00",
                "cardholder": {"first_name": "Demo", "last_name": "Cardholder", "date_of_birth": "1990-04-21",
                    "email": "cardholder@customers.sika-demo.test", "phone": "+2348000000000", "title": "MR", "gender": "M"},
                "billing": {"address": "1 Demo Street", "city": "Lagos", "state": "LA", "postal_code": "100001", "country": "NG"}});
            match self.api(&http, "/api/v1/cards", body).await {
                Ok(_) => made.push("a card waiting for its first load's approval".into()),
                Err(e) => made.push(format!("the card: {e}")),
            }
        }
        made
    }

    /// The late payment, a few minutes on: waits (up to `wait`) for the reconciler to close
    /// `demo-1009` when its link expires, then its customer's bank transfer lands at Flutterwave
    /// and the webhook finds a closed checkout, which goes to review. Returns what happened.
    pub async fn late_payment(&self, wait: Duration) -> String {
        let http = match self.client() {
            Ok(h) => h,
            Err(e) => return format!("the late payment could not start: {e}"),
        };
        if !self.reaches(LATE_REFERENCE, wait, |s| s != CheckoutStatus::Pending).await {
            return format!("the late payment: {LATE_REFERENCE} was not closed in time");
        }
        let charge = json!({"tx_ref": LATE_REFERENCE, "status": "successful", "payment_type": "bank_transfer"});
        if let Err(e) = self.emulator(&http, "/_emulator/charges", charge).await {
            return format!("the late payment: {e}");
        }
        if self.reaches(LATE_REFERENCE, Duration::from_secs(30), |s| s == CheckoutStatus::NeedsReview).await {
            format!("a late payment under review ({LATE_REFERENCE})")
        } else {
            format!("the late payment: {LATE_REFERENCE} did not reach review in time")
        }
    }
}
