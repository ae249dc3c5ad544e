//! Virtual cards against the emulator over real HTTP: off by default (every
//! card route refuses); a card's first load, fundings and withdrawals wait for
//! an approver and hold the wallet's money; created once and followed until
//! active; blocked, unblocked and terminated at Flutterwave first; indefinite
//! answers are looked up, never sent again; card events count only when
//! Flutterwave's transactions show them; the card number and CVV are never
//! stored, logged or audited (SQLite file and WAL, `pg_dump`, logs searched).

use crate::support;

use crate::support::emulated::{Env, env_with};
use serde_json::{Value, json};
use sika::audit::Actor;
use sika::domain::FundingStatus;
use sika::domain::approval::Approver;
use sika::store::FundingWrite;

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

/// An approver who passed a fresh code (as the console makes one).
fn checker(id: &str) -> Approver<'static> {
    support::checker(id)
}

fn service(e: &Env) -> sika::cards::Cards {
    e.app.cards.clone().expect("cards are on")
}

/// The card's first load approved and sent, then followed until Flutterwave says it is active.
async fn issued(e: &Env, key: &str, reference: &str) -> Value {
    let cards = service(e);
    let (status, v) = call(e, key, "POST", "/api/v1/cards", Some(card(reference))).await;
    assert_eq!(status, 202, "{v}");
    let load = sika::cards::funding::load_reference(reference);
    assert!(matches!(
        cards.approve_funding(&support::cli(), &load, &checker("u-checker")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    cards.dispatch_fundings(10).await.unwrap();
    for _ in 0..50 {
        sqlx::query("UPDATE cards SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
        cards.follow(sika::store::now_ms()).await.unwrap();
        let (_, got) = call(e, key, "GET", &format!("/api/v1/cards/{reference}"), None).await;
        if got["status"] == "active" {
            return got;
        }
        tokio::time::sleep(std::time::Duration::from_millis(30)).await;
    }
    panic!("{reference} never became active");
}

async fn funding_status(e: &Env, reference: &str) -> FundingStatus {
    service(e).funding(reference).await.unwrap().unwrap().status
}

/// The card's balance as Flutterwave has it.
async fn balance_at_flutterwave(e: &Env, flw_id: &str) -> String {
    let res = e
        .http
        .get(format!("{}/virtual-cards/{flw_id}", e.emu.base_url()))
        .bearer_auth(&e.flw_key)
        .send()
        .await
        .unwrap();
    res.json::<Value>().await.unwrap()["data"]["amount"].as_str().unwrap().to_string()
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
        ("POST", "/api/v1/cards/card-1/fund"),
        ("POST", "/api/v1/cards/card-1/withdraw"),
        ("GET", "/api/v1/cards/card-1/fundings"),
    ] {
        let body = (method == "POST").then(|| card("card-1"));
        let (status, v) = call(&e, &key, method, path, body).await;
        assert_eq!(status, 403, "{method} {path}: {v}");
        assert_eq!(v["error"]["code"], "cards_disabled", "{method} {path}: {v}");
    }
    assert!(flutterwave_cards(&e).await.is_empty(), "nothing reached Flutterwave");
    let console = e.app.client.get(e.app.url("/cards")).send().await.unwrap();
    assert_eq!(console.status(), 404, "no card pages in the console either");
}

/// The whole life of a card on a database: its first load waits for an
/// approver (nothing reaches Flutterwave before), it is created once and
/// followed until active; fundings and withdrawals wait for approval too;
/// block, unblock, terminate; and the number and CVV Flutterwave answered
/// with are in no table, file, dump, answer, log or audit entry.
async fn a_cards_life(db: support::TestDb, postgres: bool) {
    let logs = capture_logs();
    let options = support::Options { cards: true, ..Default::default() };
    let e = env_with(db, options, |_| {}).await;
    let (_, key) = e.app.auth.create_api_key(&Actor::cli(), "card-shop", "cards").await.unwrap();
    e.faults(json!({"minute_ms": 50})).await;
    let cards = service(&e);
    let (status, v) = call(&e, &key, "POST", "/api/v1/cards", Some(card("card-1"))).await;
    assert_eq!(status, 202, "{v}");
    assert_eq!(v["status"], "awaiting_approval", "its first load moves money: {v}");
    cards.dispatch_fundings(10).await.unwrap();
    assert!(flutterwave_cards(&e).await.is_empty(), "nothing is asked of Flutterwave before approval");
    // The same request again is the same card; another body is a conflict.
    let (again, same) = call(&e, &key, "POST", "/api/v1/cards", Some(card("card-1"))).await;
    assert_eq!((again, &same["status"]), (202, &v["status"]));
    let mut other = card("card-1");
    other["amount"] = json!("6.00");
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(other)).await.0, 409);

    let got = issued(&e, &key, "card-1").await;
    assert!(got["masked_pan"].as_str().unwrap().contains('*'));
    assert_eq!(got["balance"], "5.00", "the balance is Flutterwave's, read back: {got}");
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "one card at Flutterwave");
    let flw_id = flutterwave_cards(&e).await[0]["id"].as_str().unwrap().to_string();
    let (_, fundings) = call(&e, &key, "GET", "/api/v1/cards/card-1/fundings", None).await;
    assert_eq!(fundings["fundings"][0]["status"], "succeeded", "the first load: {fundings}");

    // A funding waits for approval; nothing moves before it.
    let (status, f) =
        call(&e, &key, "POST", "/api/v1/cards/card-1/fund", Some(json!({"reference": "fund-1", "amount": "10"}))).await;
    assert_eq!((status, f["status"].as_str()), (202, Some("awaiting_approval")), "{f}");
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "5.00", "not sent unapproved");
    assert!(matches!(
        cards.approve_funding(&support::cli(), "fund-1", &checker("u-checker")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(funding_status(&e, "fund-1").await, FundingStatus::Succeeded);
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "15.00");
    // A withdrawal beyond the card's balance (read from Flutterwave) is not approved; within it, it is.
    for (reference, amount) in [("wd-big", "20"), ("wd-1", "4")] {
        let body = json!({"reference": reference, "amount": amount});
        assert_eq!(call(&e, &key, "POST", "/api/v1/cards/card-1/withdraw", Some(body)).await.0, 202);
    }
    match cards.approve_funding(&support::cli(), "wd-big", &checker("u-checker")).await.unwrap() {
        FundingWrite::Short { available, amount, .. } => {
            assert_eq!((available.to_string(), amount.to_string()), ("15.00".into(), "20".into()))
        }
        other => panic!("more than the card holds: {other:?}"),
    }
    assert_eq!(funding_status(&e, "wd-big").await, FundingStatus::AwaitingApproval, "refused, not lost");
    assert!(cards.reject_funding(&support::cli(), "wd-big", "too much").await.unwrap());
    assert!(matches!(
        cards.approve_funding(&support::cli(), "wd-1", &checker("u-checker")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(funding_status(&e, "wd-1").await, FundingStatus::Succeeded);
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "11.00");

    for (action, status) in [("block", "blocked"), ("unblock", "active"), ("terminate", "terminated")] {
        let (code, v) = call(&e, &key, "POST", &format!("/api/v1/cards/card-1/{action}"), None).await;
        assert_eq!((code, v["status"].as_str()), (200, Some(status)), "{action}: {v}");
    }
    let (code, v) = call(&e, &key, "POST", "/api/v1/cards/card-1/block", None).await;
    assert_eq!(code, 409, "a terminated card stays terminated: {v}");
    let (code, v) =
        call(&e, &key, "POST", "/api/v1/cards/card-1/fund", Some(json!({"reference": "fund-2", "amount": "1"}))).await;
    assert_eq!(code, 409, "a terminated card takes no money: {v}");
    let (code, list) = call(&e, &key, "GET", "/api/v1/cards", None).await;
    assert_eq!((code, list["cards"].as_array().unwrap().len()), (200, 1));
    let (code, txns) = call(&e, &key, "GET", "/api/v1/cards/card-1/transactions", None).await;
    assert_eq!(code, 200, "{txns}");

    // The number and CVV Flutterwave answered with are nowhere Sika keeps or says anything.
    let at_flw = &flutterwave_cards(&e).await[0];
    let (pan, cvv) = (at_flw["card_pan"].as_str().unwrap().to_string(), at_flw["cvv"].as_str().unwrap().to_string());
    assert_eq!(pan.len(), 16);
    let mut kept: Vec<(String, Vec<u8>)> = Vec::new();
    if postgres {
        let out = std::process::Command::new("pg_dump")
            .arg("--dbname")
            .arg(&e.app.db.url)
            .output()
            .expect("pg_dump must be installed where PostgreSQL tests run");
        assert!(out.status.success(), "pg_dump: {}", String::from_utf8_lossy(&out.stderr));
        assert!(String::from_utf8_lossy(&out.stdout).contains("card_fundings"), "the dump holds the card tables");
        kept.push(("pg_dump".into(), out.stdout));
    } else {
        let file = e.app.db.url.trim_start_matches("sqlite://").to_string();
        kept.push(("sika.db-wal".into(), std::fs::read(format!("{file}-wal")).unwrap_or_default()));
        sqlx::query("PRAGMA wal_checkpoint(TRUNCATE)").execute(e.app.db.store.pool_for_tests()).await.unwrap();
        kept.push(("sika.db".into(), std::fs::read(&file).expect("the database file")));
    }
    let audit = e.app.db.store.audit_search(&sika::store::AuditFilter::default(), 1000).await.unwrap();
    kept.push(("the audit log".into(), format!("{audit:?}").into_bytes()));
    kept.push(("the answers".into(), format!("{v}{got}{list}{txns}{same}{fundings}").into_bytes()));
    kept.push(("the logs".into(), logs.lock().unwrap().clone()));
    for (place, bytes) in &kept {
        assert!(!bytes.windows(pan.len()).any(|w| w == pan.as_bytes()), "the card number is in {place}");
        let quoted = format!("\"{cvv}\"");
        assert!(!bytes.windows(quoted.len()).any(|w| w == quoted.as_bytes()), "the CVV is in {place}");
    }
    assert!(!logs.lock().unwrap().is_empty(), "the logs were captured");
    let actions: Vec<&str> = audit.iter().map(|a| a.action.as_str()).collect();
    for action in
        ["card.create", "card.fund.request", "card.withdraw.request", "card.block", "card.unblock", "card.terminate"]
    {
        assert!(actions.contains(&action), "{action} is audited: {actions:?}");
    }
}

/// Every log line of this test process (nextest runs each test in a process of its own), at every level.
fn capture_logs() -> std::sync::Arc<std::sync::Mutex<Vec<u8>>> {
    #[derive(Clone)]
    struct Sink(std::sync::Arc<std::sync::Mutex<Vec<u8>>>);
    impl std::io::Write for Sink {
        fn write(&mut self, b: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(b);
            Ok(b.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let buf = std::sync::Arc::new(std::sync::Mutex::new(Vec::new()));
    let sink = Sink(buf.clone());
    let _ =
        tracing_subscriber::fmt().with_max_level(tracing::Level::TRACE).with_writer(move || sink.clone()).try_init();
    tracing::info!("capturing the logs");
    buf
}

#[tokio::test]
async fn a_cards_life_on_sqlite() {
    a_cards_life(support::sqlite().await, false).await;
}

#[tokio::test]
async fn a_cards_life_on_postgres() {
    if let Some(db) = support::postgres().await {
        a_cards_life(db, true).await;
    }
}

/// Money onto a card needs an approver who did not ask for it, and a fresh
/// code; a funding queued without the recorded approvals is not sent; a
/// refused or expired first load creates nothing; loads and fundings hold
/// the wallet's money with payouts' holds.
#[tokio::test]
async fn funding_needs_approval_and_holds_the_wallet() {
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    let cards = service(&e);
    issued(&e, &key, "hold-1").await;
    // The maker cannot approve, nor anyone without a fresh code.
    let body = json!({"reference": "own-1", "amount": "3"});
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards/hold-1/fund", Some(body)).await.0, 202);
    let maker = cards.funding("own-1").await.unwrap().unwrap().created_by;
    assert!(matches!(
        cards.approve_funding(&support::cli(), "own-1", &checker(&maker)).await.unwrap(),
        FundingWrite::Refused(_)
    ));
    let stale = Approver { may_approve: false, ..checker("u-2") };
    assert!(matches!(cards.approve_funding(&support::cli(), "own-1", &stale).await.unwrap(), FundingWrite::Refused(_)));
    // Queued by hand, without approvals: the dispatcher puts it back, sends nothing.
    sqlx::query("UPDATE card_fundings SET status = 'queued' WHERE reference = 'own-1'")
        .execute(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(funding_status(&e, "own-1").await, FundingStatus::AwaitingApproval);
    let flw_id = flutterwave_cards(&e).await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "5.00", "nothing moved");

    // Two withdrawals of 3 from a card of 5: the second would take more than is left.
    for r in ["w-a", "w-b"] {
        let body = json!({"reference": r, "amount": "3"});
        assert_eq!(call(&e, &key, "POST", "/api/v1/cards/hold-1/withdraw", Some(body)).await.0, 202);
    }
    assert!(matches!(
        cards.approve_funding(&support::cli(), "w-a", &checker("u-2")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    match cards.approve_funding(&support::cli(), "w-b", &checker("u-2")).await.unwrap() {
        FundingWrite::Short { held, .. } => assert_eq!(held.to_string(), "3", "the approved withdrawal counts"),
        other => panic!("the card would be overdrawn: {other:?}"),
    }
    assert!(cards.reject_funding(&support::cli(), "w-b", "one is enough").await.unwrap());
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(funding_status(&e, "w-a").await, FundingStatus::Succeeded);
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "2.00");

    // A wallet of 100: a 60 funding is held; another 60 does not fit, before or after a payout's view.
    e.http
        .post(format!("{}/_emulator/balances", e.emu.url()))
        .json(&json!({"currency": "USD", "available": 100}))
        .send()
        .await
        .unwrap();
    for r in ["h-1", "h-2"] {
        assert_eq!(
            call(&e, &key, "POST", "/api/v1/cards/hold-1/fund", Some(json!({"reference": r, "amount": "60"}))).await.0,
            202
        );
    }
    assert!(matches!(
        cards.approve_funding(&support::cli(), "h-1", &checker("u-2")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    assert_eq!(
        e.app.db.store.payout_holds(sika::domain::Currency::USD).await.unwrap().to_string(),
        "60",
        "one wallet, one set of holds"
    );
    match cards.approve_funding(&support::cli(), "h-2", &checker("u-2")).await.unwrap() {
        FundingWrite::Short { available, held, amount } => {
            assert_eq!(
                (available.to_string(), held.to_string(), amount.to_string()),
                ("100".into(), "60".into(), "60".into())
            );
        }
        other => panic!("the hold would overdraw: {other:?}"),
    }
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(funding_status(&e, "h-1").await, FundingStatus::Succeeded);
    assert!(e.app.db.store.payout_holds(sika::domain::Currency::USD).await.unwrap().is_zero(), "released once sent");

    // A refused first load: no card is ever asked for.
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(card("never-1"))).await.0, 202);
    assert!(
        cards
            .reject_funding(&support::cli(), &sika::cards::funding::load_reference("never-1"), "not this one")
            .await
            .unwrap()
    );
    let (_, never) = call(&e, &key, "GET", "/api/v1/cards/never-1", None).await;
    assert_eq!(never["status"], "failed", "{never}");
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "only the approved card exists");
    // Not approved in time: expired, and its card failed.
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(card("late-1"))).await.0, 202);
    cards.expire_fundings(sika::store::now_ms() + sika::cards::funding::APPROVAL_TTL_MS + 1).await.unwrap();
    assert_eq!(funding_status(&e, &sika::cards::funding::load_reference("late-1")).await, FundingStatus::Expired);
}

#[tokio::test]
async fn an_indefinite_creation_is_looked_up_and_never_makes_two_cards() {
    let (e, key) = env_cards(true).await;
    let cards = service(&e);
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(card("lost-1"))).await.0, 202);
    let load = sika::cards::funding::load_reference("lost-1");
    assert!(matches!(
        cards.approve_funding(&support::cli(), &load, &checker("u-1")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    // Flutterwave creates the card, then the answer is lost.
    e.faults(json!({"error_after_commit_rate": 1.0, "minute_ms": 50})).await;
    cards.dispatch_fundings(10).await.unwrap();
    let (_, v) = call(&e, &key, "GET", "/api/v1/cards/lost-1", None).await;
    assert_eq!(v["status"], "unknown", "{v}");
    assert!(v["masked_pan"].is_null());
    // Dispatching and asking again do not ask Flutterwave again.
    cards.dispatch_fundings(10).await.unwrap();
    let (_, again) = call(&e, &key, "POST", "/api/v1/cards", Some(card("lost-1"))).await;
    assert_eq!(again["status"], "unknown");
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "created once at Flutterwave");

    tokio::time::sleep(std::time::Duration::from_millis(120)).await;
    for _ in 0..2 {
        sqlx::query("UPDATE cards SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
        cards.follow(sika::store::now_ms()).await.unwrap();
    }
    let (_, got) = call(&e, &key, "GET", "/api/v1/cards/lost-1", None).await;
    assert_eq!(got["status"], "active", "found by lookup: {got}");
    assert!(got["masked_pan"].as_str().unwrap().contains('*'));
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "still one card");
    assert_eq!(funding_status(&e, &load).await, FundingStatus::Succeeded, "the load follows its card");
}

/// Two lost creations that Flutterwave's list cannot tell apart (same holder,
/// same load): neither is linked to the wrong card, and neither is ever called
/// failed while a card that may hold its load exists — even past the hour.
#[tokio::test]
async fn lost_creations_that_cannot_be_told_apart_are_never_called_failed() {
    let clock = sika::clock::install_manual();
    let (e, key) = env_cards(true).await;
    let cards = service(&e);
    for r in ["twin-1", "twin-2"] {
        assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(card(r))).await.0, 202);
        let load = sika::cards::funding::load_reference(r);
        assert!(matches!(
            cards.approve_funding(&support::cli(), &load, &checker("u-1")).await.unwrap(),
            FundingWrite::Queued(_)
        ));
    }
    e.faults(json!({"error_after_commit_rate": 1.0, "minute_ms": 20})).await;
    cards.dispatch_fundings(10).await.unwrap();
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    assert_eq!(flutterwave_cards(&e).await.len(), 2);
    clock.advance(std::time::Duration::from_secs(2 * 3600));
    cards.follow(sika::store::now_ms()).await.unwrap();
    for r in ["twin-1", "twin-2"] {
        let (_, v) = call(&e, &key, "GET", &format!("/api/v1/cards/{r}"), None).await;
        assert_eq!(v["status"], "unknown", "{r} stays looked up: {v}");
        let load = sika::cards::funding::load_reference(r);
        assert_eq!(funding_status(&e, &load).await, FundingStatus::Unknown, "{r}'s load is not called failed");
    }
}

/// A funding whose answer is lost is found in the card's transactions, never sent twice.
#[tokio::test]
async fn an_indefinite_funding_is_found_in_the_cards_transactions_and_never_sent_twice() {
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    let cards = service(&e);
    issued(&e, &key, "lostf-1").await;
    let flw_id = flutterwave_cards(&e).await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&e, &key, "POST", "/api/v1/cards/lostf-1/fund", Some(json!({"reference": "lf-1", "amount": "7"}))).await.0,
        202
    );
    assert!(matches!(
        cards.approve_funding(&support::cli(), "lf-1", &checker("u-1")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    e.faults(json!({"error_after_commit_rate": 1.0})).await;
    cards.dispatch_fundings(10).await.unwrap();
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    assert_eq!(funding_status(&e, "lf-1").await, FundingStatus::Unknown);
    cards.dispatch_fundings(10).await.unwrap();
    sqlx::query("UPDATE card_fundings SET next_check_at = 0").execute(e.app.db.store.pool_for_tests()).await.unwrap();
    cards.follow_fundings(sika::store::now_ms()).await.unwrap();
    assert_eq!(funding_status(&e, "lf-1").await, FundingStatus::Succeeded);
    assert!(cards.funding("lf-1").await.unwrap().unwrap().flw_txn_id.is_some(), "with the transaction that shows it");
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "12.00", "funded once");
}

/// Two approvers at once and four dispatchers at once: one queue, one movement.
async fn concurrent_approvals_and_dispatchers_move_money_once(db: support::TestDb) {
    let options = support::Options { cards: true, ..Default::default() };
    let e = env_with(db, options, |_| {}).await;
    let (_, key) = e.app.auth.create_api_key(&Actor::cli(), "card-shop", "cards").await.unwrap();
    e.faults(json!({"minute_ms": 20})).await;
    let cards = service(&e);
    issued(&e, &key, "race-1").await;
    let flw_id = flutterwave_cards(&e).await[0]["id"].as_str().unwrap().to_string();
    assert_eq!(
        call(&e, &key, "POST", "/api/v1/cards/race-1/fund", Some(json!({"reference": "rf-1", "amount": "9"}))).await.0,
        202
    );
    let mut approving = tokio::task::JoinSet::new();
    for i in 0..4 {
        let c = cards.clone();
        approving.spawn(async move {
            c.approve_funding(&support::cli(), "rf-1", &checker(&format!("u-{i}"))).await.unwrap()
        });
    }
    let approvals = approving.join_all().await;
    let queued = approvals.iter().filter(|w| matches!(w, FundingWrite::Queued(_))).count();
    assert_eq!(queued, 1, "one approval completes it: {approvals:?}");
    let mut sending = tokio::task::JoinSet::new();
    for _ in 0..4 {
        let c = cards.clone();
        sending.spawn(async move { c.dispatch_fundings(10).await.unwrap() });
    }
    let sent: usize = sending.join_all().await.into_iter().sum();
    assert_eq!(sent, 1, "one sender");
    assert_eq!(balance_at_flutterwave(&e, &flw_id).await, "14.00", "funded once");
}

#[tokio::test]
async fn concurrent_approvals_and_dispatchers_move_money_once_on_sqlite() {
    concurrent_approvals_and_dispatchers_move_money_once(support::sqlite().await).await;
}

#[tokio::test]
async fn concurrent_approvals_and_dispatchers_move_money_once_on_postgres() {
    if let Some(db) = support::postgres().await {
        concurrent_approvals_and_dispatchers_move_money_once(db).await;
    }
}

/// A card event changes nothing until the card's own transactions, read from
/// Flutterwave, show it: a real debit is recorded in the card's timeline; a
/// forged one (a made-up transaction, a wrong amount) never is.
#[tokio::test]
async fn card_events_count_only_once_flutterwave_shows_the_transaction() {
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    issued(&e, &key, "evt-1").await;
    let cards = service(&e);
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
    // A purchase beyond the card's balance is declined at Flutterwave: recorded as declined.
    let declined: Value = e
        .http
        .post(format!("{}/_emulator/cards/{flw_id}/debit", e.emu.url()))
        .json(&json!({"amount": "500", "description": "TV"}))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!(declined["Status"], "Declined");
    for body in [hook.clone(), forged, inflated, declined] {
        assert_eq!(deliver(body).await.unwrap().status(), 200, "stored for processing");
    }
    // An event without the secret hash is refused at the door.
    let unsigned = e.app.client.post(e.app.url("/webhooks/flutterwave")).json(&hook).send().await.unwrap();
    assert_eq!(unsigned.status(), 401);
    e.app.inbox.process(10).await.unwrap();
    let timeline = cards.events("evt-1").await.unwrap();
    let debits: Vec<&(i64, String, String)> = timeline.iter().filter(|(_, kind, _)| kind == "debit").collect();
    assert_eq!(debits.len(), 1, "only the real purchase: {timeline:?}");
    assert!(debits[0].2.contains("USD 2.5") && debits[0].2.contains("COFFEE"), "{timeline:?}");
    let refused: Vec<&(i64, String, String)> = timeline.iter().filter(|(_, kind, _)| kind == "declined").collect();
    assert_eq!(refused.len(), 1, "{timeline:?}");
    assert!(refused[0].2.contains("Insufficient card balance"), "{timeline:?}");
    let pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM webhook_inbox WHERE state = 'retry'")
        .fetch_one(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(pending, 2, "the forged and inflated events wait, changing nothing, until dead-lettered");
}

use crate::support::people::PASSWORD;

async fn person(e: &Env, role: sika::auth::Role, email: &str) -> (String, String) {
    let u = e.app.person(role, email).await;
    (u.id, u.secret)
}

/// Who may see and do what on the card pages, checked for every role
/// (written here independently of the code under test); signed out, sign in first.
#[tokio::test]
async fn every_role_against_every_card_page() {
    use sika::auth::Role;
    use support::browser::{Browser, code};
    let (e, _) = env_cards(true).await;
    let read: &[Role] = &[Role::Admin, Role::Operator, Role::Approver, Role::Viewer];
    let matrix: Vec<(&str, &str, &[Role])> = vec![
        ("/cards", "GET", read),
        ("/cards/none", "GET", read),
        ("/cards/export.csv", "GET", read),
        ("/cards/new", "GET", &[Role::Operator]),
        ("/cards", "POST", &[Role::Operator]),
        ("/cards/none/reveal", "POST", &[Role::Operator]),
        ("/cards/none/fundings", "POST", &[Role::Operator]),
        ("/cards/none/block", "POST", &[Role::Operator]),
        ("/cards/none/unblock", "POST", &[Role::Operator]),
        ("/cards/none/terminate", "POST", &[Role::Operator]),
        ("/cards/none/fundings/none/approve", "POST", &[Role::Approver]),
        ("/cards/none/fundings/none/reject", "POST", &[Role::Approver]),
    ];
    for role in Role::ALL {
        let (_, secret) = person(&e, role, &format!("{role}@example.com")).await;
        let mut b = Browser::new(&e.app.base, e.app.client.clone());
        assert_eq!(b.login(&format!("{role}@example.com"), PASSWORD, &code(&secret, 0)).await.status, 303);
        let home = b.get("/").await;
        assert_eq!(home.body.contains("href=\"/cards\""), read.contains(&role), "{role}: the Cards link");
        let csrf = home.csrf();
        for (path, method, allowed) in &matrix {
            let res = if *method == "GET" { b.get(path).await } else { b.post(path, &[("csrf_token", &csrf)]).await };
            if allowed.contains(&role) {
                assert_ne!(res.status, 403, "{role} {method} {path} should be allowed");
            } else {
                assert_eq!(res.status, 403, "{role} {method} {path} should be refused");
            }
        }
        // Without the CSRF token, even an allowed form is refused.
        if role == Role::Operator {
            assert_eq!(b.post("/cards/none/block", &[]).await.status, 403, "no CSRF token");
        }
    }
    let mut anon = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(anon.get("/cards").await.location.as_deref(), Some("/login?next=%2Fcards"));
}

/// The console journey: an operator sees the card masked with its live
/// balance, reveals the number only with a fresh code (the sign-in code is
/// refused), the reveal is audited without the number and the page is never
/// cached; the operator asks for a funding, cannot approve it, an approver
/// does with a fresh code; a rejection's reason stays inert text; terminating asks first.
#[tokio::test]
async fn the_console_reveals_only_after_a_fresh_code_and_approves_fundings() {
    use sika::auth::Role;
    use support::browser::{Browser, code};
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    issued(&e, &key, "web-1").await;
    let at_flw = &flutterwave_cards(&e).await[0];
    let (pan, cvv) = (at_flw["card_pan"].as_str().unwrap().to_string(), at_flw["cvv"].as_str().unwrap().to_string());

    let (op_id, op_secret) = person(&e, Role::Operator, "op@example.com").await;
    let mut op = Browser::new(&e.app.base, e.app.client.clone());
    let op_signin = code(&op_secret, 0);
    assert_eq!(op.login("op@example.com", PASSWORD, &op_signin).await.status, 303);
    let page = op.get("/cards/web-1").await;
    assert_eq!(page.status, 200);
    assert!(page.body.contains("*******") && !page.body.contains(&pan), "masked");
    assert!(page.body.contains("USD 5.00"), "the live balance");
    assert!(page.headers["cache-control"].to_str().unwrap().contains("no-store"));
    let csrf = page.csrf();
    let replay = op.post("/cards/web-1/reveal", &[("totp", &op_signin), ("csrf_token", &csrf)]).await;
    assert!(replay.body.contains("already used") && !replay.body.contains(&pan), "the sign-in code is not fresh");
    let shown = op.post("/cards/web-1/reveal", &[("totp", &code(&op_secret, 1)), ("csrf_token", &csrf)]).await;
    assert!(shown.body.contains(&format!("<code id=\"revealed-pan\">{pan}</code>")), "{}", shown.body);
    assert!(shown.body.contains(&format!("<code id=\"revealed-cvv\">{cvv}</code>")));
    assert!(shown.headers["cache-control"].to_str().unwrap().contains("no-store"), "never cached");
    let reveals = e
        .app
        .db
        .store
        .audit_search(&sika::store::AuditFilter { action: Some("card.reveal".into()), ..Default::default() }, 10)
        .await
        .unwrap();
    assert_eq!(reveals.len(), 1, "the reveal is audited (the refused code is not a reveal)");
    assert!(!format!("{reveals:?}").contains(&pan) && reveals[0].target == "card:web-1");
    assert!(!op.get("/cards/web-1").await.body.contains(&pan), "shown once, kept nowhere");

    // The operator asks for a funding; the form refuses nonsense beside nothing lost.
    let bad = op.post("/cards/web-1/fundings", &[("kind", "fund"), ("amount", "lots"), ("csrf_token", &csrf)]).await;
    assert!(bad.body.contains("Enter the amount"));
    let asked = op.post("/cards/web-1/fundings", &[("kind", "fund"), ("amount", "12.50"), ("csrf_token", &csrf)]).await;
    assert!(asked.body.contains("an approver must consent"), "{}", asked.body);
    assert!(!asked.body.contains("class=\"approve\""), "the maker gets no approve button");
    let cards = service(&e);
    let funding =
        cards.fundings("web-1").await.unwrap().into_iter().find(|f| f.kind == sika::domain::FundingKind::Fund).unwrap();
    assert_eq!(funding.created_by, op_id);
    assert!(
        matches!(
            cards.approve_funding(&support::cli(), &funding.reference, &checker(&op_id)).await.unwrap(),
            FundingWrite::Refused(_)
        ),
        "not by its maker"
    );

    let (_, ap_secret) = person(&e, Role::Approver, "ap@example.com").await;
    let mut ap = Browser::new(&e.app.base, e.app.client.clone());
    let ap_signin = code(&ap_secret, 0);
    assert_eq!(ap.login("ap@example.com", PASSWORD, &ap_signin).await.status, 303);
    let list = ap.get("/cards").await;
    assert!(list.body.contains("Cards (1 to approve)"), "the approver's navigation counts what waits");
    assert!(list.body.contains("id=\"fundings-awaiting\"") && list.body.contains("USD 12.50"), "the approvals queue");
    let page = ap.get("/cards/web-1").await;
    assert!(
        page.body.contains("class=\"approve\"") && !page.body.contains("id=\"reveal\""),
        "approvers approve, do not reveal"
    );
    let csrf = page.csrf();
    let path = format!("/cards/web-1/fundings/{}/approve", funding.reference);
    let replay = ap.post(&path, &[("totp", &ap_signin), ("csrf_token", &csrf)]).await;
    assert!(replay.body.contains("already used"));
    assert_eq!(funding_status(&e, &funding.reference).await, FundingStatus::AwaitingApproval);
    let ok = ap.post(&path, &[("totp", &code(&ap_secret, 1)), ("csrf_token", &csrf)]).await;
    assert!(ok.body.contains("queued to be sent"), "{}", ok.body);
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(funding_status(&e, &funding.reference).await, FundingStatus::Succeeded);
    assert!(ap.get("/cards/web-1").await.body.contains("USD 17.50"), "the balance read back after the funding");

    // A rejection's reason is kept as text: stored markup stays inert.
    let csrf = csrf_of(&mut op, "/cards/web-1").await;
    let asked = op.post("/cards/web-1/fundings", &[("kind", "withdraw"), ("amount", "1"), ("csrf_token", &csrf)]).await;
    assert!(asked.body.contains("an approver must consent"));
    let wd = cards
        .fundings("web-1")
        .await
        .unwrap()
        .into_iter()
        .find(|f| f.kind == sika::domain::FundingKind::Withdraw)
        .unwrap();
    let csrf = csrf_of(&mut ap, "/cards/web-1").await;
    let rejected = ap
        .post(
            &format!("/cards/web-1/fundings/{}/reject", wd.reference),
            &[("reason", "<script>alert(1)</script>"), ("csrf_token", &csrf)],
        )
        .await;
    let escaped = rejected.body.contains("&#60;script&#62;") || rejected.body.contains("&lt;script&gt;");
    assert!(escaped && !rejected.body.contains("<script>alert"), "stored markup stays text");
    assert_eq!(funding_status(&e, &wd.reference).await, FundingStatus::Rejected);

    // Terminating asks first, then acts at Flutterwave.
    let csrf = csrf_of(&mut op, "/cards/web-1").await;
    let ask = op.post("/cards/web-1/terminate", &[("csrf_token", &csrf)]).await;
    assert!(ask.body.contains("id=\"confirm-action\"") && ask.body.contains("cannot be undone"));
    let (_, still) = call(&e, &key, "GET", "/api/v1/cards/web-1", None).await;
    assert_eq!(still["status"], "active", "nothing happened before confirming");
    let done = op.post("/cards/web-1/terminate", &[("csrf_token", &csrf), ("confirmed", "yes")]).await;
    assert!(done.body.contains("The card is terminated"), "{}", done.body);
    assert!(!done.body.contains("id=\"reveal\""), "a terminated card is not revealed");
}

async fn csrf_of(b: &mut support::browser::Browser, path: &str) -> String {
    b.get(path).await.csrf()
}

/// The card list as the payments list: a status filter, a search by part of a
/// reference, the total that match, cursor pages that keep the filters, and an
/// audited, formula-safe CSV export with masked numbers only; the API the same.
#[tokio::test]
async fn the_card_list_filters_searches_counts_pages_and_exports() {
    use sika::auth::Role;
    use support::browser::{Browser, code};
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    issued(&e, &key, "-list-active").await;
    for n in 0..52 {
        assert_eq!(call(&e, &key, "POST", "/api/v1/cards", Some(card(&format!("list-{n:02}")))).await.0, 202);
    }
    let (_, viewer_secret) = person(&e, Role::Viewer, "viewer@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("viewer@example.com", PASSWORD, &code(&viewer_secret, 0)).await.status, 303);
    let all = b.get("/cards").await;
    assert!(all.body.contains("53 cards match."), "the total");
    let next = all
        .body
        .split("id=\"next-page\"")
        .next()
        .unwrap()
        .rsplit("href=\"")
        .next()
        .unwrap()
        .split('"')
        .next()
        .unwrap()
        .replace("&amp;", "&");
    let page2 = b.get(&next).await;
    let refs = |body: &str| -> Vec<String> {
        let table = body.split("<table id=\"cards\">").nth(1).unwrap();
        table.split("<tr><td><a href=\"/cards/").skip(1).map(|r| r.split('"').next().unwrap().to_string()).collect()
    };
    let (first, second) = (refs(&all.body), refs(&page2.body));
    assert_eq!((first.len(), second.len()), (50, 3), "fifty a page: {next}");
    let mut every: Vec<String> = first.into_iter().chain(second).collect();
    every.sort();
    every.dedup();
    assert_eq!(every.len(), 53, "every card once across the pages");
    let active = b.get("/cards?status=active").await;
    assert!(active.body.contains("1 card matches.") && active.body.contains(">-list-active<"));
    let found = b.get("/cards?q=st-1").await;
    assert!(
        found.body.contains("10 cards match.") && found.body.contains(">list-13<"),
        "search by a part of the reference"
    );
    let refused = b.get("/cards?status=nonsense").await;
    assert!(refused.body.contains("Choose a status from the list."), "a clear error, nothing lost");
    let export = b.get("/cards/export.csv?status=active").await;
    assert_eq!(export.headers["content-type"], "text/csv; charset=utf-8");
    let lines: Vec<&str> = export.body.lines().collect();
    assert_eq!(lines.len(), 2, "{}", export.body);
    assert!(lines[1].starts_with("\"'-list-active\""), "a leading minus stays text: {}", lines[1]);
    assert!(lines[1].contains("*******"), "masked numbers only");
    let audited = e
        .app
        .db
        .store
        .audit_search(&sika::store::AuditFilter { action: Some("cards.export".into()), ..Default::default() }, 5)
        .await
        .unwrap();
    assert_eq!(audited.len(), 1, "the export is audited");
    let (code, v) = call(&e, &key, "GET", "/api/v1/cards?status=awaiting_approval&limit=50", None).await;
    assert_eq!((code, v["total"].as_i64(), v["cards"].as_array().unwrap().len()), (200, Some(52), 50), "{v}");
    assert!(v["next_cursor"].is_string());
    let (code, _) = call(&e, &key, "GET", "/api/v1/cards?status=nonsense", None).await;
    assert_eq!(code, 400);
}

/// Blocking a card at Flutterwave: the card's new status, its timeline entry and
/// the audit entry commit together. A failure injected between the audit entry
/// and the commit leaves none of them (the card still reads active here); asked
/// again — Flutterwave's block is idempotent — all three are written, once.
async fn a_card_action_commits_with_its_audit_entry(db: support::TestDb) {
    use sika::store::audit_failpoint;
    let options = support::Options { cards: true, ..Default::default() };
    let e = env_with(db, options, |_| {}).await;
    let (_, key) = e.app.auth.create_api_key(&Actor::cli(), "card-shop", "cards").await.unwrap();
    issued(&e, &key, "blk-1").await;
    let cards = service(&e);
    let actor = support::cli();
    let entries = |outcome: &'static str| {
        let store = e.app.db.store.clone();
        async move {
            sqlx::query_scalar::<_, i64>("SELECT COUNT(*) FROM audit_log WHERE action = 'card.block' AND outcome = $1")
                .bind(outcome)
                .fetch_one(store.pool_for_tests())
                .await
                .unwrap()
        }
    };
    let blocked_events = || async {
        e.app.db.store.card_events("blk-1").await.unwrap().iter().filter(|(_, kind, _)| kind == "blocked").count()
    };
    audit_failpoint::fail_after_append("card.block");
    assert!(cards.act(&actor, "blk-1", sika::cards::Action::Block).await.is_err());
    let (_, got) = call(&e, &key, "GET", "/api/v1/cards/blk-1", None).await;
    assert_eq!(got["status"], "active", "the status rolled back with its entry");
    assert_eq!((entries("success").await, blocked_events().await), (0, 0));
    let card = cards.act(&actor, "blk-1", sika::cards::Action::Block).await.unwrap();
    assert_eq!(card.status, sika::domain::CardStatus::Blocked);
    assert_eq!((entries("success").await, blocked_events().await), (1, 1));
    // Not possible now (already blocked): refused, and the attempt is recorded on its own.
    assert!(cards.act(&actor, "blk-1", sika::cards::Action::Block).await.is_err());
    assert_eq!(entries("failure").await, 1);
    let verified = e.app.auth.auditor.verify().await.unwrap();
    assert!(verified.is_ok(), "{verified:?}");
}

#[tokio::test]
async fn a_card_action_commits_with_its_audit_entry_on_sqlite() {
    a_card_action_commits_with_its_audit_entry(support::sqlite().await).await;
}

#[tokio::test]
async fn a_card_action_commits_with_its_audit_entry_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    a_card_action_commits_with_its_audit_entry(db).await;
}

/// Every card event reaches the shop once, as the payments' and payouts' do: created, funded
/// (the first load too), withdrawn, blocked and unblocked (each time), a purchase, a declined
/// one (a webhook delivered twice tells it once), terminated — never with the card's number.
#[tokio::test]
async fn the_shop_hears_each_card_event_once() {
    let (e, key) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    issued(&e, &key, "tell-1").await;
    let cards = service(&e);
    let store = &e.app.db.store;
    let events_of = |reference: String| async move {
        store.outbox_for(&reference).await.unwrap().into_iter().map(|r| r.event).collect::<Vec<_>>()
    };
    assert_eq!(events_of("tell-1".into()).await, ["card.created"]);
    let load = sika::cards::funding::load_reference("tell-1");
    assert_eq!(events_of(load).await, ["card.funded"], "the first load");

    let fund = json!({"reference": "tell-fund", "amount": "10"});
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards/tell-1/fund", Some(fund)).await.0, 202);
    let withdraw = json!({"reference": "tell-wd", "amount": "3"});
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards/tell-1/withdraw", Some(withdraw)).await.0, 202);
    for f in ["tell-fund", "tell-wd"] {
        cards.approve_funding(&support::cli(), f, &checker("u-checker")).await.unwrap();
        cards.dispatch_fundings(10).await.unwrap();
    }
    assert_eq!(events_of("tell-fund".into()).await, ["card.funded"]);
    assert_eq!(events_of("tell-wd".into()).await, ["card.withdrawn"]);

    for action in ["block", "unblock", "block", "unblock"] {
        assert_eq!(call(&e, &key, "POST", &format!("/api/v1/cards/tell-1/{action}"), None).await.0, 200);
    }
    let flw_id = flutterwave_cards(&e).await[0]["id"].as_str().unwrap().to_string();
    let mut hooks = Vec::new();
    for amount in ["2.50", "500"] {
        let r = e
            .http
            .post(format!("{}/_emulator/cards/{flw_id}/debit", e.emu.url()))
            .json(&json!({"amount": amount, "description": "SHOP"}))
            .send();
        hooks.push(r.await.unwrap().json::<Value>().await.unwrap());
    }
    for body in [&hooks[0], &hooks[0], &hooks[1]] {
        let r = e.app.client.post(e.app.url("/webhooks/flutterwave")).header("verif-hash", &e.hash).json(body).send();
        assert_eq!(r.await.unwrap().status(), 200);
        e.app.inbox.process(10).await.unwrap();
    }
    assert_eq!(call(&e, &key, "POST", "/api/v1/cards/tell-1/terminate", None).await.0, 200);

    let keys: Vec<String> = sqlx::query_scalar("SELECT DISTINCT reference FROM outbox WHERE event LIKE 'card.%'")
        .fetch_all(store.pool_for_tests())
        .await
        .unwrap();
    let mut rows = Vec::new();
    for k in &keys {
        rows.extend(store.outbox_for(k).await.unwrap());
    }
    let mut told: Vec<&str> = rows.iter().map(|r| r.event.as_str()).collect();
    told.sort_unstable();
    assert_eq!(
        told,
        [
            "card.blocked",
            "card.blocked",
            "card.created",
            "card.debited",
            "card.declined",
            "card.funded",
            "card.funded",
            "card.terminated",
            "card.unblocked",
            "card.unblocked",
            "card.withdrawn"
        ],
        "each once; the webhook delivered twice told once"
    );
    let debit = rows.iter().find(|r| r.event == "card.debited").unwrap();
    let body: Value = serde_json::from_str(&debit.payload).unwrap();
    assert_eq!(
        (body["reference"].as_str(), body["amount"].as_str(), body["currency"].as_str()),
        (Some("tell-1"), Some("2.5"), Some("USD")),
        "{body}"
    );
    for r in &rows {
        assert!(
            !r.payload.contains("cvv") && !r.payload.contains("card_pan"),
            "never the card's number: {}",
            r.payload
        );
        let v: Value = serde_json::from_str(&r.payload).unwrap();
        assert_eq!(v["id"].as_str(), Some(r.id.as_str()), "an id the shop dedupes on");
    }
}

/// An operator asks for a card in the console, through the API's rules: a refused field keeps
/// what was typed and says why beside it; the card waits for an approver to approve its first
/// load, and nothing reaches Flutterwave before that.
#[tokio::test]
async fn an_operator_requests_a_card_in_the_console() {
    use sika::auth::Role;
    let (e, _) = env_cards(true).await;
    e.faults(json!({"minute_ms": 20})).await;
    let (_, mut b) = e.app.signed_in(Role::Operator, "op@example.com").await;
    let list = b.get("/cards").await;
    assert!(list.body.contains(r#"id="new-card""#), "the way to it");
    let form = b.get("/cards/new").await;
    assert_eq!(form.status, 200);
    let csrf = form.csrf();
    let typed = |dob: &'static str| {
        vec![
            ("reference", "console-card-1"),
            ("currency", "USD"),
            ("amount", "12.50"),
            ("first_name", "Ada"),
            ("last_name", "Obi"),
            ("date_of_birth", dob),
            ("email", "ada@example.com"),
            ("phone", "+2348012345678"),
            ("title", "MRS"),
            ("gender", "F"),
            ("address", "333 Fremont Street"),
            ("city", "Lagos"),
            ("state", "LA"),
            ("postal_code", ""),
            ("country", "NG"),
        ]
    };
    let mut body = typed("2020-13-01");
    body.push(("csrf_token", &csrf));
    let refused = b.post("/cards", &body).await;
    assert_eq!(refused.status, 200, "shown again");
    assert!(refused.body.contains(r#"value="333 Fremont Street""#), "what was typed is kept");
    assert!(
        refused.body.contains(r#"id="date-of-birth" required value="2020-13-01" aria-invalid="true""#),
        "{}",
        refused.body
    );
    assert!(service(&e).card("console-card-1").await.unwrap().is_none(), "nothing made");
    let mut body = typed("1990-04-21");
    body.push(("csrf_token", &csrf));
    let made = b.post("/cards", &body).await;
    assert_eq!((made.status, made.location.as_deref()), (303, Some("/cards/console-card-1")));
    assert!(flutterwave_cards(&e).await.is_empty(), "nothing at Flutterwave before approval");
    let load = sika::cards::funding::load_reference("console-card-1");
    assert_eq!(funding_status(&e, &load).await, FundingStatus::AwaitingApproval);
    let cards = service(&e);
    assert!(matches!(
        cards.approve_funding(&support::cli(), &load, &checker("u-approver")).await.unwrap(),
        FundingWrite::Queued(_)
    ));
    cards.dispatch_fundings(10).await.unwrap();
    assert_eq!(flutterwave_cards(&e).await.len(), 1, "made once approved");
    let f = sika::store::AuditFilter { action: Some("card.create".into()), ..Default::default() };
    assert_eq!(e.app.db.store.audit_search(&f, 10).await.unwrap().len(), 1, "the request is audited");
}
