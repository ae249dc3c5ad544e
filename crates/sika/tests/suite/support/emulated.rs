//! Sika on port 0 in front of the Flutterwave emulator, over real HTTP.
#![allow(dead_code)]

use std::time::Duration;

use flutterwave_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use sika::audit::Actor;

pub struct Env {
    pub app: super::TestApp,
    pub emu: Emulator,
    pub hash: String,
    pub key: String,
    pub http: reqwest::Client,
    /// The Flutterwave secret key the emulator expects.
    pub flw_key: String,
}

pub async fn env_on(db: super::TestDb) -> Env {
    env_tuned(db, |_| {}).await
}

/// An environment whose payments service's settings `tune` changes first.
pub async fn env_tuned(db: super::TestDb, tune: impl FnOnce(&mut sika::payments::Payments)) -> Env {
    env_with(db, super::Options::default(), tune).await
}

/// An environment with every option a test may set.
pub async fn env_with(
    db: super::TestDb,
    options: super::Options,
    tune: impl FnOnce(&mut sika::payments::Payments),
) -> Env {
    let secret_key = format!("FLWSECK_TEST-{}-X", sika::crypto::random::hex_id());
    let hash = sika::crypto::random::token();
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = Emulator::start(
        EmulatorConfig {
            secret_key: secret_key.clone(),
            secret_hash: hash.clone(),
            webhook_url: None,
            webhook_root_pem: None,
            seed: 1,
        },
        listener,
    )
    .await
    .unwrap();
    let flw = super::Flw { base_url: emu.base_url(), secret_key: secret_key.clone(), secret_hash: hash.clone() };
    let app = super::spawn_with(
        db,
        axum::Router::new(),
        Duration::from_secs(900),
        Duration::from_secs(3600),
        Some(flw),
        options,
        tune,
    )
    .await;
    let (_, key) = app.auth.create_api_key(&Actor::cli(), "shop", "checkouts").await.unwrap();
    Env { app, emu, hash, key, http: reqwest::Client::new(), flw_key: secret_key }
}

pub async fn env() -> Env {
    env_on(super::sqlite().await).await
}

impl Env {
    pub async fn create(&self, body: Value) -> reqwest::Response {
        self.app.client.post(self.app.url("/api/v1/checkouts")).bearer_auth(&self.key).json(&body).send().await.unwrap()
    }

    pub async fn checkout(&self, reference: &str, amount: &str, currency: &str) -> Value {
        let res = self
            .create(json!({"reference": reference, "amount": amount, "currency": currency,
                           "customer": {"email": "buyer@example.com", "name": "Ada Buyer"}, "redirect_url": "https://shop.example/done"}))
            .await;
        assert_eq!(res.status(), 201);
        res.json().await.unwrap()
    }

    /// The customer pays on the emulator (no webhook: the tests deliver their own).
    pub async fn pay(&self, tx_ref: &str, status: &str, overrides: Value) -> i64 {
        let mut body = json!({"tx_ref": tx_ref, "status": status, "webhook": false});
        if let (Some(o), Some(b)) = (overrides.as_object(), body.as_object_mut()) {
            b.extend(o.clone());
        }
        let v: Value = self
            .http
            .post(format!("{}/_emulator/charges", self.emu.url()))
            .json(&body)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["transaction_id"].as_i64().expect("a transaction id")
    }

    pub async fn faults(&self, f: Value) {
        let r = self.http.post(format!("{}/_emulator/faults", self.emu.url())).json(&f).send().await.unwrap();
        assert!(r.status().is_success());
    }

    /// Moves the emulator's clock `ms` on: every pending charge, refund or transfer step that
    /// became due is settled (its webhook queued) before this returns — no sleeping for it.
    pub async fn advance_emulator(&self, ms: i64) {
        let r = self
            .http
            .post(format!("{}/_emulator/clock", self.emu.url()))
            .json(&serde_json::json!({"advance_ms": ms}))
            .send()
            .await
            .unwrap();
        assert!(r.status().is_success());
    }

    /// A `charge.completed` webhook as Flutterwave sends it, signed with `header`.
    pub async fn webhook(&self, id: i64, tx_ref: &str, header: Option<(&str, String)>) -> u16 {
        let body = json!({"event": "charge.completed", "data": {"id": id, "tx_ref": tx_ref, "status": "successful", "amount": 1, "currency": "NGN"}});
        self.raw_webhook(body.to_string(), header).await
    }

    pub async fn raw_webhook(&self, body: String, header: Option<(&str, String)>) -> u16 {
        let mut req = self
            .app
            .client
            .post(self.app.url("/webhooks/flutterwave"))
            .header("content-type", "application/json")
            .body(body);
        if let Some((name, value)) = header {
            req = req.header(name, value);
        }
        req.send().await.unwrap().status().as_u16()
    }

    pub fn signed(&self) -> Option<(&'static str, String)> {
        Some(("verif-hash", self.hash.clone()))
    }

    pub async fn status(&self, reference: &str) -> &'static str {
        let c = self.app.db.store.checkout(reference).await.unwrap().unwrap();
        c.status.as_str()
    }

    pub async fn process(&self) {
        while self.app.inbox.process(50).await.unwrap() > 0 {}
    }
}

impl Env {
    /// The emulator's counters.
    pub async fn stats(&self) -> Value {
        self.http.get(format!("{}/_emulator/stats", self.emu.url())).send().await.unwrap().json().await.unwrap()
    }

    pub async fn reset_stats(&self) {
        self.http.post(format!("{}/_emulator/stats/reset", self.emu.url())).send().await.unwrap();
    }

    /// A checkout paid (verified) for `amount` NGN.
    pub async fn paid(&self, reference: &str, amount: &str) -> i64 {
        self.checkout(reference, amount, "NGN").await;
        let id = self.pay(reference, "successful", json!({})).await;
        let applied = self.app.payments.verify_and_apply(id).await.unwrap();
        assert!(matches!(applied, sika::payments::Applied::Settled { moved: true, .. }), "{applied:?}");
        id
    }
}
