//! Test helpers: an emulator on port 0 with secrets made at run time, a client
//! for it, and a webhook receiver that records what it gets.
#![allow(dead_code)]

pub mod corpus;

use std::sync::{Arc, Mutex};
use std::time::Duration;

use flutterwave::{Client, Config, SecretKey};
use flutterwave_emulator::{Emulator, EmulatorConfig};
use serde_json::Value;

pub fn random_hex(n: usize) -> String {
    let mut b = vec![0u8; n.div_ceil(2)];
    getrandom::fill(&mut b).expect("os rng");
    b.iter().map(|x| format!("{x:02x}")).collect::<String>()[..n].to_string()
}

pub struct Env {
    pub emulator: Emulator,
    pub key: String,
    pub hash: String,
    pub http: reqwest::Client,
}

impl Env {
    pub async fn start() -> Self {
        Self::start_with_webhooks(None).await
    }

    pub async fn start_with_webhooks(webhook_url: Option<String>) -> Self {
        let key = format!("FLWSECK_TEST-{}-X", random_hex(32));
        let hash = random_hex(24);
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
        let config = EmulatorConfig {
            secret_key: key.clone(),
            secret_hash: hash.clone(),
            webhook_url,
            webhook_root_pem: None,
            seed: 42,
        };
        let emulator = Emulator::start(config, listener).await.unwrap();
        Env { emulator, key, hash, http: reqwest::Client::new() }
    }

    pub fn config(&self) -> Config {
        let mut c = Config::new(url::Url::parse(&self.emulator.base_url()).unwrap(), SecretKey::new(self.key.clone()));
        c.rate_per_second = 1000;
        c.burst = 1000;
        c.request_timeout = Duration::from_secs(10);
        c
    }

    pub fn client(&self) -> Client {
        Client::new(self.config()).unwrap()
    }

    pub async fn control(&self, path: &str, body: Value) -> Value {
        let res = self.http.post(format!("{}{path}", self.emulator.url())).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    pub async fn faults(&self, body: Value) {
        self.control("/_emulator/faults", body).await;
    }

    pub async fn stats(&self) -> Value {
        self.http.get(format!("{}/_emulator/stats", self.emulator.url())).send().await.unwrap().json().await.unwrap()
    }

    /// Creates a checkout and pays it through the control surface; returns the transaction id.
    pub async fn paid_checkout(&self, tx_ref: &str, amount: &str, currency: &str) -> i64 {
        let client = self.client();
        let req = flutterwave::payments::PaymentRequest {
            tx_ref: tx_ref.into(),
            amount: amount.parse().unwrap(),
            currency: currency.into(),
            redirect_url: "https://shop.example/return".into(),
            customer: flutterwave::payments::PaymentCustomer {
                email: "buyer@example.com".into(),
                name: Some("Ada Buyer".into()),
                phone_number: None,
            },
            customizations: None,
            payment_options: None,
            meta: None,
            session_duration: None,
            max_retry_attempt: None,
        };
        client.create_payment(&req).await.ok().expect("payment link");
        let v = self.control("/_emulator/charges", serde_json::json!({"tx_ref": tx_ref, "status": "successful"})).await;
        v["transaction_id"].as_i64().unwrap()
    }
}

/// What a webhook receiver got: headers of interest and the raw body.
#[derive(Debug, Clone)]
pub struct Delivery {
    pub verif_hash: Option<String>,
    pub signature: Option<String>,
    pub body: Vec<u8>,
}

/// A local HTTP server that records deliveries and answers with the statuses
/// in `replies` in turn (then 200).
pub struct Receiver {
    pub url: String,
    pub got: Arc<Mutex<Vec<Delivery>>>,
}

pub async fn receiver(replies: Vec<u16>) -> Receiver {
    use axum::routing::post;
    let got = Arc::new(Mutex::new(Vec::<Delivery>::new()));
    let replies = Arc::new(Mutex::new(replies.into_iter()));
    let app = axum::Router::new().route(
        "/hook",
        post({
            let got = got.clone();
            move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
                let got = got.clone();
                let replies = replies.clone();
                async move {
                    let h = |n: &str| headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_string);
                    got.lock().unwrap().push(Delivery {
                        verif_hash: h("verif-hash"),
                        signature: h("flutterwave-signature"),
                        body: body.to_vec(),
                    });
                    let code = replies.lock().unwrap().next().unwrap_or(200);
                    axum::http::StatusCode::from_u16(code).unwrap()
                }
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Receiver { url, got }
}

impl Receiver {
    /// Waits until at least `n` deliveries arrived (10 s at most).
    pub async fn wait_for(&self, n: usize) -> Vec<Delivery> {
        for _ in 0..200 {
            if self.got.lock().unwrap().len() >= n {
                break;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        self.got.lock().unwrap().clone()
    }
}
