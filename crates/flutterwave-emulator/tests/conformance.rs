//! The emulator answers like Flutterwave really does. It is driven through
//! every endpoint and event the corpus has (`corpus/flutterwave-v3/`, one
//! folder each), and each folder's answers are compared with the real ones:
//!
//! - every field the real answers have (nested paths, `[]` for array items)
//!   must appear in the emulator's — a missing field fails;
//! - a field's JSON types must be among the real ones (a field sent as a
//!   number in one real sample and a string in another may be either);
//!   `meta` and `meta_data` are the merchant's data and Flutterwave's free
//!   form, so only their presence counts, never their shape;
//! - `status` values must be real ones, in the real casing (the corpus's,
//!   plus the few the fact sheet documents that no sample shows);
//! - success messages must be real ones;
//! - a field only the emulator sends must be listed in the emulator's README
//!   ("Fields only the emulator sends"), and every listed one must still be sent.

#[path = "../../flutterwave/tests/support/corpus.rs"]
mod corpus;

use std::collections::{BTreeMap, BTreeSet};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use flutterwave_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};

/// Fields whose content is the merchant's own data or Flutterwave's free form.
const OPAQUE: [&str; 2] = ["meta", "meta_data"];

/// Statuses Flutterwave documents that no corpus sample shows (fact sheet §2, §4, §13).
fn documented_statuses(folder: &str) -> &'static [&'static str] {
    match folder {
        f if f.starts_with("transactions-") || f.contains("-charge") => &["successful", "failed", "pending"],
        f if f.starts_with("transfers-") || f.contains("-transfer") => &["NEW", "PENDING", "SUCCESSFUL", "FAILED"],
        _ => &[],
    }
}

#[derive(Default, Debug)]
struct Shape {
    /// path → JSON types seen there.
    types: BTreeMap<String, BTreeSet<&'static str>>,
    /// path of a `status` field → values seen.
    statuses: BTreeMap<String, BTreeSet<String>>,
    messages: BTreeSet<String>,
}

fn type_of(v: &Value) -> &'static str {
    match v {
        Value::Null => "null",
        Value::Bool(_) => "bool",
        Value::Number(_) => "number",
        Value::String(_) => "string",
        Value::Array(_) => "array",
        Value::Object(_) => "object",
    }
}

impl Shape {
    fn add(&mut self, v: &Value) {
        if v["status"] == "success"
            && let Some(m) = v["message"].as_str()
        {
            self.messages.insert(m.to_string());
        }
        self.walk(v, "");
    }

    fn walk(&mut self, v: &Value, path: &str) {
        if !path.is_empty() {
            self.types.entry(path.to_string()).or_default().insert(type_of(v));
        }
        let last = path.rsplit(['.', '[']).next().unwrap_or(path);
        if OPAQUE.contains(&last) {
            return;
        }
        match v {
            Value::Object(o) => {
                for (k, child) in o {
                    let p = if path.is_empty() { k.clone() } else { format!("{path}.{k}") };
                    if k == "status"
                        && let Some(s) = child.as_str()
                    {
                        self.statuses.entry(p.clone()).or_default().insert(s.to_string());
                    }
                    self.walk(child, &p);
                }
            }
            Value::Array(items) => {
                for item in items {
                    self.walk(item, &format!("{path}[]"));
                }
            }
            _ => {}
        }
    }
}

// The emulator, driven.

struct Hooks {
    url: String,
    got: Arc<Mutex<Vec<(String, Value)>>>,
}

async fn hooks() -> Hooks {
    let got = Arc::new(Mutex::new(Vec::new()));
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |headers: axum::http::HeaderMap, body: axum::body::Bytes| {
            let g = g.clone();
            async move {
                let ct = headers.get("content-type").and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                g.lock().unwrap().push((ct, serde_json::from_slice(&body).unwrap_or(Value::Null)));
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    Hooks { url, got }
}

struct Driver {
    emu: Emulator,
    key: String,
    http: reqwest::Client,
    answers: BTreeMap<String, Vec<Value>>,
}

fn random_hex(n: usize) -> String {
    use std::hash::{BuildHasher, Hasher};
    let mut out = String::new();
    while out.len() < n {
        let mut h = std::collections::hash_map::RandomState::new().build_hasher();
        h.write_usize(out.len());
        out.push_str(&format!("{:016x}", h.finish()));
    }
    out[..n].to_string()
}

impl Driver {
    /// Calls `/v3{path}` and files the answer under `folder` (when given).
    async fn call(&mut self, folder: Option<&str>, method: reqwest::Method, path: &str, body: Option<Value>) -> Value {
        let mut req = self.http.request(method, format!("{}{path}", self.emu.base_url())).bearer_auth(&self.key);
        if let Some(b) = body {
            req = req.json(&b);
        }
        let v: Value = req.send().await.unwrap().json().await.unwrap_or(Value::Null);
        if let Some(f) = folder {
            self.answers.entry(f.to_string()).or_default().push(v.clone());
        }
        v
    }

    async fn control(&self, path: &str, body: Value) -> Value {
        let res = self.http.post(format!("{}{path}", self.emu.url())).json(&body).send().await.unwrap();
        assert!(res.status().is_success(), "{path}: {}", res.status());
        res.json().await.unwrap()
    }

    async fn checkout(&mut self, tx_ref: &str, amount: &str, currency: &str, meta: Value) {
        let body = json!({"tx_ref": tx_ref, "amount": amount, "currency": currency, "redirect_url": "https://shop.example/back",
                          "customer": {"email": "buyer@example.com", "name": "Ada Buyer", "phonenumber": "08012345678"},
                          "meta": meta});
        self.call(None, reqwest::Method::POST, "/payments", Some(body)).await;
    }

    async fn charge(&mut self, tx_ref: &str, status: &str, payment_type: &str, extra: Value) -> i64 {
        let mut body = json!({"tx_ref": tx_ref, "status": status, "payment_type": payment_type});
        if let (Some(b), Some(e)) = (body.as_object_mut(), extra.as_object()) {
            b.extend(e.clone());
        }
        self.control("/_emulator/charges", body).await["transaction_id"].as_i64().unwrap()
    }
}

async fn wait_for(h: &Hooks, n: usize) {
    for _ in 0..200 {
        if h.got.lock().unwrap().len() >= n {
            return;
        }
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    panic!("expected {n} webhooks, got {}", h.got.lock().unwrap().len());
}

/// Drives every endpoint and event of the corpus; returns the answers by
/// folder and the webhooks with their content types.
async fn drive() -> (BTreeMap<String, Vec<Value>>, Vec<(String, Value)>) {
    let hooks = hooks().await;
    let key = format!("FLWSECK_TEST-{}-X", random_hex(32));
    let config = EmulatorConfig {
        secret_key: key.clone(),
        secret_hash: random_hex(24),
        webhook_url: Some(hooks.url.clone()),
        webhook_root_pem: None,
        seed: 7,
    };
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let emu = Emulator::start(config, listener).await.unwrap();
    let mut d = Driver { emu, key, http: reqwest::Client::new(), answers: BTreeMap::new() };
    d.control("/_emulator/faults", json!({"minute_ms": 10})).await;
    use reqwest::Method as M;

    // Charges of every kind, wrapped webhooks.
    d.checkout("conf-card", "2500", "NGN", Value::Null).await;
    d.checkout("conf-bank", "50000", "NGN", json!({"sideNote": "a note"})).await;
    d.checkout("conf-account", "100000", "NGN", Value::Null).await;
    d.checkout("conf-pending", "1000", "NGN", Value::Null).await;
    d.checkout("conf-momo", "50", "GHS", Value::Null).await;
    let card = d.charge("conf-card", "successful", "card", json!({})).await;
    let bank = d.charge("conf-bank", "successful", "bank_transfer", json!({})).await;
    d.charge("conf-account", "successful", "account", json!({})).await;
    d.charge("conf-pending", "pending", "account", json!({})).await;
    d.charge("conf-momo", "successful", "mobilemoneygh", json!({"customer_bears_fee": true})).await;
    wait_for(&hooks, 4).await;
    // The legacy flat form, for each entity Flutterwave shows.
    d.control("/_emulator/faults", json!({"webhook_format": "legacy"})).await;
    for (r, kind) in [("conf-l-card", "card"), ("conf-l-account", "account"), ("conf-l-momo", "mpesa")] {
        d.checkout(r, "2000", "NGN", Value::Null).await;
        d.charge(r, "successful", kind, json!({})).await;
    }
    wait_for(&hooks, 7).await;
    d.control("/_emulator/faults", json!({"webhook_format": "v3"})).await;

    d.call(Some("transactions-verify"), M::GET, &format!("/transactions/{card}/verify"), None).await;
    d.call(Some("transactions-verify"), M::GET, &format!("/transactions/{bank}/verify"), None).await;
    d.call(
        Some("transactions-verify-by-reference"),
        M::GET,
        "/transactions/verify_by_reference?tx_ref=conf-card",
        None,
    )
    .await;
    d.call(Some("transactions-list"), M::GET, "/transactions?page=1", None).await;
    d.call(Some("transactions-refund"), M::POST, &format!("/transactions/{card}/refund"), Some(json!({"amount": 500})))
        .await;
    d.call(Some("transactions-resend-hook"), M::POST, &format!("/transactions/{card}/resend-hook"), None).await;
    d.call(Some("errors"), M::GET, "/transactions/424242/verify", None).await;

    d.call(
        Some("accounts-resolve"),
        M::POST,
        "/accounts/resolve",
        Some(json!({"account_number": "0690000032", "account_bank": "044"})),
    )
    .await;
    d.call(Some("balances"), M::GET, "/balances", None).await;
    d.call(Some("balances-currency"), M::GET, "/balances/NGN", None).await;
    d.call(Some("banks-list"), M::GET, "/banks/NG", None).await;
    for country in ["GH", "UG"] {
        let banks = d.call(None, M::GET, &format!("/banks/{country}"), None).await;
        let id = banks["data"][0]["id"].as_i64().unwrap();
        d.call(Some("banks-branches"), M::GET, &format!("/banks/{id}/branches"), None).await;
    }

    // Transfers: a bank one that succeeds, one with meta, a wallet one, a
    // mobile-money one that fails later, and the lookups.
    let created = [
        json!({"account_bank": "044", "account_number": "0690000040", "amount": 5500, "currency": "NGN",
               "reference": "conf-t1_PMCKDU_1", "narration": "Supplier"}),
        json!({"account_bank": "058", "account_number": "0690000033", "amount": 150, "currency": "NGN",
               "reference": "conf-t2_PMCK_ST_FDU_1", "narration": "With meta",
               "meta": {"first_name": "Ada", "mobile_number": 234, "sender": "Sika"}}),
        json!({"account_bank": "flutterwave", "account_number": "66667356", "amount": 500, "currency": "NGN",
               "reference": "conf-wallet", "narration": "wallet"}),
        json!({"account_bank": "MPS", "account_number": "254709929220", "amount": 20, "currency": "UGX",
               "reference": "conf-momo-t", "narration": "Mobile money payout", "meta": [{"mobile_number": "0810"}]}),
    ];
    let mut ids = Vec::new();
    for body in created {
        let v = d.call(Some("transfers-create"), M::POST, "/transfers", Some(body)).await;
        ids.push(v["data"]["id"].as_i64().unwrap());
    }
    d.call(Some("transfers-fee"), M::GET, "/transfers/fee?amount=5500&currency=NGN", None).await;
    d.call(
        Some("bulk-transfers-create"),
        M::POST,
        "/bulk-transfers",
        Some(json!({"title": "conf", "bulk_data": [{"bank_code": "044", "account_number": "0690000032", "amount": 100,
                    "currency": "NGN", "narration": "bulk", "reference": "conf-bulk-1"}]})),
    )
    .await;
    tokio::time::sleep(Duration::from_millis(150)).await;
    for id in &ids {
        d.call(Some("transfers-get"), M::GET, &format!("/transfers/{id}"), None).await;
    }
    d.call(Some("transfers-list"), M::GET, "/transfers?page=1", None).await;
    // The legacy transfer webhook.
    d.control("/_emulator/faults", json!({"webhook_format": "legacy"})).await;
    let legacy = d
        .call(
            None,
            M::POST,
            "/transfers",
            Some(json!({"account_bank": "044", "account_number": "0690000040", "amount": 9000, "currency": "NGN",
                   "reference": "conf-legacy-t", "narration": "New transfer"})),
        )
        .await;
    let legacy_id = legacy["data"]["id"].as_i64().unwrap();
    d.control(&format!("/_emulator/transfers/{legacy_id}/complete"), json!({"status": "SUCCESSFUL"})).await;
    let before_cards = hooks.got.lock().unwrap().len();
    assert!(before_cards >= 10, "transfer webhooks arrived: {before_cards}");
    d.control("/_emulator/faults", json!({"webhook_format": "v3"})).await;

    // Cards.
    let card_body = json!({"currency": "USD", "amount": 50, "debit_currency": "USD", "first_name": "Ada", "last_name": "Card",
                           "date_of_birth": "1990/01/01", "email": "ada@example.com", "phone": "08000000000",
                           "title": "MRS", "gender": "F", "callback_url": "https://shop.example/cards"});
    let c = d.call(Some("virtual-cards-create"), M::POST, "/virtual-cards", Some(card_body)).await;
    let cid = c["data"]["id"].as_str().unwrap().to_string();
    // A card asked for without a callback URL reads back with `callback_url: null`, as the real sample does.
    let plain = json!({"currency": "NGN", "amount": 1000, "first_name": "Bo", "last_name": "Card", "date_of_birth": "1991/02/02",
                       "email": "bo@example.com", "phone": "08000000001", "title": "MR", "gender": "M"});
    let p = d.call(None, M::POST, "/virtual-cards", Some(plain)).await;
    let pid = p["data"]["id"].as_str().unwrap().to_string();
    d.call(Some("virtual-cards-get"), M::GET, &format!("/virtual-cards/{pid}"), None).await;
    d.call(Some("virtual-cards-list"), M::GET, "/virtual-cards", None).await;
    let fund = json!({"debit_currency": "USD", "amount": 20});
    d.call(Some("virtual-cards-fund"), M::POST, &format!("/virtual-cards/{cid}/fund"), Some(fund)).await;
    d.call(
        Some("virtual-cards-withdraw"),
        M::POST,
        &format!("/virtual-cards/{cid}/withdraw"),
        Some(json!({"amount": 5})),
    )
    .await;
    d.call(
        Some("virtual-cards-transactions"),
        M::GET,
        &format!("/virtual-cards/{cid}/transactions?from=2020-01-01&to=2099-12-31&index=0&size=10"),
        None,
    )
    .await;
    d.call(Some("virtual-cards-block"), M::PUT, &format!("/virtual-cards/{cid}/status/block"), None).await;
    d.call(Some("virtual-cards-unblock"), M::PUT, &format!("/virtual-cards/{cid}/status/unblock"), None).await;
    d.call(Some("virtual-cards-terminate"), M::PUT, &format!("/virtual-cards/{cid}/terminate"), None).await;

    let webhooks = hooks.got.lock().unwrap().clone();
    for (_, body) in &webhooks {
        let folder = if body["event"] == "charge.completed" {
            "webhook-charge-completed"
        } else if body["event"] == "transfer.completed" {
            "webhook-transfer-completed"
        } else if body.get("txRef").is_some() {
            "webhook-legacy-charge"
        } else if body.get("transfer").is_some() {
            "webhook-legacy-transfer"
        } else {
            continue;
        };
        d.answers.entry(folder.to_string()).or_default().push(body.clone());
    }
    let answers = std::mem::take(&mut d.answers);
    d.emu.shutdown().await;
    (answers, webhooks)
}

/// `(folder, path)` pairs the emulator's README lists as its own additions.
fn documented_additions() -> BTreeSet<(String, String)> {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/README.md")).unwrap();
    let section =
        readme.split("## Fields only the emulator sends").nth(1).expect("the README lists the emulator's additions");
    let section = section.split("\n## ").next().unwrap_or("");
    section
        .lines()
        .filter(|l| l.starts_with("| `"))
        .filter_map(|l| {
            let mut ticks = l.split('`').skip(1).step_by(2);
            Some((ticks.next()?.to_string(), ticks.next()?.to_string()))
        })
        .collect()
}

#[tokio::test]
async fn the_emulator_answers_in_the_shapes_flutterwave_really_sends() {
    let samples = corpus::load();
    assert!(samples.len() >= 46, "the corpus: {} files in {:?}", samples.len(), corpus::roots());
    let mut real: BTreeMap<String, Shape> = BTreeMap::new();
    for s in &samples {
        real.entry(s.folder.clone()).or_default().add(&s.json);
    }
    let (answers, webhooks) = drive().await;
    let additions = documented_additions();
    let mut used_additions = BTreeSet::new();
    let mut problems = Vec::new();
    for (folder, truth) in &real {
        let Some(answers) = answers.get(folder) else {
            problems.push(format!("{folder}: the emulator was not driven through it (add it to this test)"));
            continue;
        };
        let mut ours = Shape::default();
        for a in answers {
            ours.add(a);
        }
        for (path, types) in &truth.types {
            match ours.types.get(path) {
                None => {
                    problems.push(format!("{folder}: the real API sends `{path}` ({types:?}); the emulator does not"))
                }
                Some(_) if OPAQUE.iter().any(|o| path.ends_with(o)) => {}
                Some(t) if !t.is_subset(types) => {
                    problems.push(format!("{folder}: `{path}` is {t:?} from the emulator, {types:?} in reality"));
                }
                Some(_) => {}
            }
        }
        for path in ours.types.keys().filter(|p| !truth.types.contains_key(*p)) {
            let key = (folder.clone(), path.clone());
            if additions.contains(&key) {
                used_additions.insert(key);
            } else {
                problems.push(format!(
                    "{folder}: only the emulator sends `{path}`; list it in the emulator's README or drop it"
                ));
            }
        }
        for (path, values) in &ours.statuses {
            let allowed: BTreeSet<String> = truth
                .statuses
                .get(path)
                .cloned()
                .unwrap_or_default()
                .into_iter()
                .chain(documented_statuses(folder).iter().map(|s| s.to_string()))
                .chain(["success".to_string(), "error".to_string()].into_iter().filter(|_| path == "status"))
                .collect();
            for v in values.difference(&allowed) {
                problems
                    .push(format!("{folder}: `{path}` = {v:?} is not a status Flutterwave sends there ({allowed:?})"));
            }
        }
        for m in ours.messages.difference(&truth.messages) {
            problems.push(format!("{folder}: the message {m:?} is not Flutterwave's ({:?})", truth.messages));
        }
    }
    for stale in additions.difference(&used_additions) {
        problems.push(format!("the README lists {stale:?} as the emulator's own, but it no longer sends it"));
    }
    // Transfer webhooks come as `application/json;charset=utf-8` (the corpus logs the header).
    for (ct, body) in &webhooks {
        if body["event"] == "transfer.completed" && ct != "application/json;charset=utf-8" {
            problems.push(format!("a transfer webhook came as {ct:?}"));
        }
    }
    assert!(problems.is_empty(), "{} differences from the real API:\n{}", problems.len(), problems.join("\n"));
}
