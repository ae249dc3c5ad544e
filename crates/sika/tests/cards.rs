//! Virtual cards against the emulator over real HTTP: off by default (every
//! card route refuses), created once and followed until active, blocked,
//! unblocked and terminated at Flutterwave first; an indefinite creation is
//! looked up, never sent again; the card number and CVV are never stored.

mod support;

use serde_json::{Value, json};
use sika::audit::Actor;
use support::emulated::{Env, env_with};

async fn env_cards(on: bool) -> (Env, String) {
    let options = support::Options { cards: on, ..Default::default() };
    let e = env_with(support::sqlite().await, options, |_| {}).await;
    let (_, key) = e.app.auth.create_api_key(&Actor::cli(), "card-shop", "cards").await.unwrap();
    (e, key)
}

fn card(reference: &str) -> Value {
    json!({"reference": reference, "currency": "USD", "amount": "5.00",
        "cardholder": {"first_name": "Ada", "last_name": "Obi", "date_of_birth": "1990-04-21",
            "email": "ada@example.com", "phone": "+2348012345678", "title": "MRS", "gender": "F"},
        "billing": {"address": "333 Fremont Street", "city": "Lagos", "state": "LA", "country": "NG"}})
}

async fn call(e: &Env, key: &str, method: &str, path: &str, body: Option<Value>) -> (u16, Value) {
    let url = e.app.url(path);
    let req = match method {
        "GET" => e.app.client.get(url),
        _ => e.app.client.post(url),
    };
    let req = match body {
        Some(b) => req.json(&b),
        None => req,
    };
    let res = req.bearer_auth(key).send().await.unwrap();
    (res.status().as_u16(), res.json().await.unwrap_or(Value::Null))
}

/// Flutterwave's own view of its cards (the emulator, with the secret key).
async fn flutterwave_cards(e: &Env) -> Vec<Value> {
    let res = e.http.get(format!("{}/virtual-cards", e.emu.base_url())).bearer_auth(&e.flw_key).send().await.unwrap();
    res.json::<Value>().await.unwrap()["data"].as_array().cloned().unwrap_or_default()
}

#[tokio::test]
async fn with_cards_off_every_card_route_refuses() {
    let (e, key) = env_cards(false).await;
    for (method, path) in [
        ("POST", "/api/v1/cards"),
        ("GET", "/api/v1/cards"),
        ("GET", "/api/v1/cards/card-1"),
        ("GET", "/api/v1/cards/card-1/transactions"),
        ("POST", "/api/v1/cards/card-1/block"),
        ("POST", "/api/v1/cards/card-1/unblock"),
        ("POST", "/api/v1/cards/card-1/terminate"),
    ] {
        let body = (method == "POST").then(|| card("card-1"));
        let (status, v) = call(&e, &key, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "cards_disabled", "{method} {path}: {v}");
    }
    assert!(flutterwave_cards(&e).await.is_empty(), "nothing reached Flutterwave");
}

#[tokio::test]
async fn a_card_is_created_once_followed_until_active_and_its_number_never_stored() {
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 50})).await;
    let (status, v) = call(&e, &key, "POST", "/api/v1/cards", Some(card("card-1"))).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["status"], "creating", "inactive at Flutterwave for a minute: {v}");
    assert!(v["masked_pan"].as_str().unwrap().contains('*'));
    // The same request again is the same card; another body is a conflict.
    let (again, same) = call(&e, &key, "POST", "/api/v1/cards", Some(card("card-1"))).await;
    assert_eq!((again, &same["masked_pan"]), (202, &v["masked_pan"]));
    let mut other = card("card-1");
    other["amount"] = json!("6.00");
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(other)).await.0, 409);
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "one card at Flutterwave");

    let cards = e.app.cards.clone().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    sqlx::query("UPDATE cards SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
    cards.follow(sika::store::now_ms()).await.unwrap();
    let (_, got) = call(&e, &key, "GET", "/api/v1/cards/card-1", None).await;
    assert_eq!(got["status"], "active", "{got}");

    for (action, status) in [("block", "blocked"), ("unblock", "active"), ("terminate", "terminated")] {
        let (code, v) = call(&e, &key, "POST", &format!("/api/v1/cards/card-1/{action}"), None).await;
        assert_eq!((code, v["status"].as_str()), (200, Some(status)), "{action}: {v}");
    }
    let (code, v) = call(&e, &key, "POST", "/api/v1/cards/card-1/block", None).await;
    assert_eq!(code, 409, "a terminated card stays terminated: {v}");
    let (code, list) = call(&e, &key, "GET", "/api/v1/cards", None).await;
    assert_eq!((code, list["cards"].as_array().unwrap().len()), (200, 1));
    let (code, txns) = call(&e, &key, "GET", "/api/v1/cards/card-1/transactions", None).await;
    assert_eq!(code, 200, "{txns}");

    // The number and CVV Flutterwave answered with are nowhere in the database files or the answers.
    let at_flw = &flutterwave_cards(&e).await[0];
    let (pan, cvv) = (at_flw["card_pan"].as_str().unwrap().to_string(), at_flw["cvv"].as_str().unwrap().to_string());
    assert_eq!(pan.len(), 16);
    let dir = e.app.db.url.trim_start_matches("sqlite://").to_string();
    sqlx::query("PRAGMA wal_checkpoint(PASSIVE)").execute(e.app.db.store.pool_for_tests()).await.unwrap();
    assert!(std::fs::metadata(&dir).is_ok(), "the database file is where the test looks: {dir}");
    for suffix in ["", "-wal", "-shm"] {
        if let Ok(bytes) = std::fs::read(format!("{dir}{suffix}")) {
            assert!(!bytes.windows(pan.len()).any(|w| w == pan.as_bytes()), "the card number is in sika.db{suffix}");
        }
    }
    let answers = format!("{v}{got}{list}{txns}{same}");
    assert!(!answers.contains(&pan) && !answers.contains(&format!("\"{cvv}\"")), "{answers}");
    let audit = e.app.auth.store.audit_search(&sika::store::AuditFilter::default(), 1000).await.unwrap();
    assert!(!format!("{audit:?}").contains(&pan));
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in ["card.create", "card.block", "card.unblock", "card.terminate"] {
        assert!(actions.contains(&action), "{action} is audited: {actions:?}");
    }
}

#[tokio::test]
async fn an_indefinite_creation_is_looked_up_and_never_makes_two_cards() {
    let (e, key) = env_cards(true).await;
    // Flutterwave creates the card, then the answer is lost.
    e.faults(json!({"error_after_commit_rate": 1.0, "minute_ms": 50})).await;
    let (status, v) = call(&e, &key, "POST", "/api/v1/cards", Some(card("lost-1"))).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["status"], "unknown", "{v}");
    assert!(v["masked_pan"].is_null());
    // Asking again with the same reference does not ask Flutterwave again.
    let (_, again) = call(&e, &key, "POST", "/api/v1/cards", Some(card("lost-1"))).await;
    assert_eq!(again["status"], "unknown");
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "created once at Flutterwave");

    let cards = e.app.cards.clone().unwrap();
    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    for _ in 0..2 {
        sqlx::query("UPDATE cards SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
        cards.follow(sika::store::now_ms()).await.unwrap();
    }
    let (_, got) = call(&e, &key, "GET", "/api/v1/cards/lost-1", None).await;
    assert_eq!(got["status"], "active", "found by lookup: {got}");
    assert!(got["masked_pan"].as_str().unwrap().contains('*'));
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "still one card");
}

/// A card event changes nothing until the card's own transactions, read from
/// Flutterwave, show it: a real debit is recorded in the card's timeline; a
/// forged one (a made-up transaction, a wrong amount) never is.
#[tokio::test]
async fn card_events_count_only_once_flutterwave_shows_the_transaction() {
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(card("evt-1"))).await.0, 202);
    tokio::time::sleep(std::time::Duration::from_millis(60)).await;
    let cards = e.app.cards.clone().unwrap();
    sqlx::query("UPDATE cards SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
    cards.follow(sika::store::now_ms()).await.unwrap();
    let flw_id = flutterwave_cards(&e).await[0]["id"].as_str().unwrap().to_string();

    // A real purchase at Flutterwave: the emulator answers with the flat event it sends.
    let hook: Value = e
        .http
        .post(format!("{}/_emulator/cards/{flw_id}/debit", e.emu.url()))
        .json(&json!({"amount": "2.50", "description": "COFFEE"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    let mut forged = hook.clone();
    forged["TransactionId"] = json!("999999999");
    let mut inflated = hook.clone();
    inflated["Amount"] = json!(250);
    let deliver = |body: Value| {
        e.app.client.post(e.app.url("/webhooks/flutterwave")).header("verif-hash", &e.hash).json(&body).send()
    };
    for body in [hook.clone(), forged, inflated] {
        assert_eq!(deliver(body).await.unwrap().status(), 200, "stored for processing");
    }
    // An event without the secret hash is refused at the door.
    let unsigned = e.app.client.post(e.app.url("/webhooks/flutterwave")).json(&hook).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    e.app.payments.process_inbox(10).await.unwrap();
    let timeline = cards.events("evt-1").await.unwrap();
    let debits: Vec<&(i64, String, String)> = timeline.iter().filter(|(_, kind, _)| kind == "debit").collect();
    assert_eq!(debits.len(), 1, "only the real purchase: {timeline:?}");
    assert!(debits[0].2.contains("USD 2.5") && debits[0].2.contains("COFFEE"), "{timeline:?}");
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_inbox WHERE state = 'retry'")
        .fetch_one(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(pending, 2, "the forged and inflated events wait, changing nothing, until dead-lettered");
}
