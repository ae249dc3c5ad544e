//! Chargebacks, found and followed against the emulator over real HTTP: the
//! poller finds one and links it to its checkout; a webhook hint only triggers a
//! lookup (one record, whatever the hint's body claimed); an unanswered one is
//! lost at its due date on Flutterwave's clock; a won one gives the money back;
//! the shop hears each once; the API shows it and the net. SQLite and PostgreSQL.

use crate::support;

use crate::support::emulated::{Env, env_on};
use serde_json::{Value, json};

async fn raise(e: &Env, transaction_id: i64) -> Value {
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks", e.emu.url()))
        .json(&json!({"transaction_id": transaction_id, "webhook": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn events(e: &Env, chargeback: i64) -> Vec<String> {
    let rows = e.app.db.store.outbox_for(&format!("chargeback-{chargeback}")).await.unwrap();
    rows.into_iter().map(|r| r.event).collect()
}

async fn checkout_api(e: &Env, reference: &str) -> Value {
    let r = e.app.client.get(e.app.url(&format!("/api/v1/checkouts/{reference}"))).bearer_auth(&e.key).send().await;
    r.unwrap().json().await.unwrap()
}

async fn found_followed_and_told_once(db: support::TestDb) {
    let e = env_on(db).await;
    let tx = e.paid("cb-1", "1000").await;
    let cb = raise(&e, tx).await;
    let id = cb["id"].as_i64().unwrap();

    // The poller finds it, links it, and the shop hears it opened.
    let polled = e.app.payments.poll_chargebacks(5).await.unwrap();
    assert_eq!((polled.seen, polled.opened, polled.complete), (1, 1, true), "{polled:?}");
    let rows = e.app.payments.chargebacks_of("cb-1").await.unwrap();
    assert_eq!(rows.len(), 1);
    let row = &rows[0].facts;
    assert_eq!((row.id, row.status.as_str(), row.amount.to_string()), (id, "initiated", "1000".to_string()));
    let due = row.due_at.expect("a due date");
    let in_48h = sika::clock::now_ms() + 48 * 3_600_000;
    assert!((in_48h - due).abs() < 120_000, "due in 48 hours");
    assert_eq!(events(&e, id).await, ["chargeback.opened"]);
    let v = checkout_api(&e, "cb-1").await;
    assert_eq!(v["chargebacks"][0]["id"], id);
    assert_eq!((v["charged_back"].as_str(), v["net_after_chargebacks"].as_str()), (Some("1000"), Some("0")), "{v}");

    // Against the clock: open, due within a day from 25 hours on, overdue after 48.
    let store = &e.app.db.store;
    let now = sika::clock::now_ms();
    let due_at = |t: i64| async move { store.chargebacks_due(t, t + 24 * 3_600_000).await.unwrap() };
    assert_eq!((due_at(now).await.open, due_at(now).await.due_soon, due_at(now).await.overdue), (1, 0, 0));
    assert_eq!(due_at(now + 25 * 3_600_000).await.due_soon, 1);
    assert_eq!(due_at(now + 49 * 3_600_000).await.overdue, 1);
    let text = sika::metrics::scrape(&sika::metrics::Sources {
        store,
        workers: &sika::jobs::Health::default(),
        flutterwave: e.app.payments.flutterwave(),
    })
    .await
    .unwrap();
    assert!(text.contains("sika_chargebacks_open 1"), "{text}");
    assert!(text.contains("sika_chargebacks_overdue 0"));

    // Polling again and a webhook hint change nothing and tell nobody twice.
    assert_eq!(e.app.payments.poll_chargebacks(5).await.unwrap().opened, 0);
    let hint = json!({"event": "chargeback.update", "data": {"flw_ref": cb["flw_ref"], "status": "won", "amount": 1}});
    assert_eq!(e.raw_webhook(hint.to_string(), e.signed()).await, 200);
    e.process().await;
    let rows = e.app.payments.chargebacks_of("cb-1").await.unwrap();
    assert_eq!((rows.len(), rows[0].facts.status.as_str()), (1, "initiated"), "the hint's body decides nothing");
    assert_eq!(events(&e, id).await, ["chargeback.opened"]);
    let note: String = sqlx::query_scalar("SELECT note FROM webhook_inbox ORDER BY received_at DESC LIMIT 1")
        .fetch_one(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    assert!(note.contains("looked up: 1 chargeback"), "{note}");

    // No answer by the due date: lost, on Flutterwave's clock; the shop hears it once.
    e.advance_emulator(48 * 3_600_000 + 1_000).await;
    let polled = e.app.payments.poll_chargebacks(5).await.unwrap();
    assert_eq!(polled.moved, 1, "{polled:?}");
    assert_eq!(e.app.payments.chargebacks_of("cb-1").await.unwrap()[0].facts.status, "lost");
    assert_eq!(events(&e, id).await, ["chargeback.opened", "chargeback.lost"]);
    e.app.payments.poll_chargebacks(5).await.unwrap();
    assert_eq!(events(&e, id).await.len(), 2);

    // A second payment's chargeback is won: the money is back, the shop told.
    let tx2 = e.paid("cb-2", "500").await;
    let won = raise(&e, tx2).await["id"].as_i64().unwrap();
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks/{won}/decide", e.emu.url()))
        .json(&json!({"status": "won"}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 200);
    e.app.payments.poll_chargebacks(5).await.unwrap();
    assert_eq!(events(&e, won).await, ["chargeback.opened", "chargeback.won"]);
    let v = checkout_api(&e, "cb-2").await;
    assert_eq!((v["charged_back"].as_str(), v["net_after_chargebacks"].as_str()), (Some("0"), Some("500")), "{v}");
}

#[tokio::test]
async fn chargebacks_are_found_followed_and_told_once_on_sqlite() {
    found_followed_and_told_once(support::sqlite().await).await;
}

#[tokio::test]
async fn chargebacks_are_found_followed_and_told_once_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    found_followed_and_told_once(db).await;
}

/// A chargeback against a payment Sika never took (no checkout of ours) is kept,
/// unlinked, for a person — and the shop is told nothing about it.
#[tokio::test]
async fn a_chargeback_of_a_foreign_payment_is_kept_unlinked() {
    let e = env_on(support::sqlite().await).await;
    let tx = e.pay("not-ours", "successful", json!({"amount": "70", "currency": "NGN"})).await;
    let id = raise(&e, tx).await["id"].as_i64().unwrap();
    assert_eq!(e.app.payments.poll_chargebacks(5).await.unwrap().opened, 1);
    let row = e.app.db.store.chargeback(id).await.unwrap().expect("kept");
    assert_eq!((row.facts.checkout_reference, row.facts.transaction_id), (None, Some(tx)));
    assert!(events(&e, id).await.is_empty(), "no shop hears of a payment it did not take");
}

/// The console shows the clock: the overview counts what is due within 24 hours,
/// the disputes list says how long is left, the payment's page lists the
/// chargeback and the net after it.
#[tokio::test]
async fn the_console_shows_what_is_due_and_when() {
    let e = env_on(support::sqlite().await).await;
    let tx = e.paid("cb-ui", "2500").await;
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks", e.emu.url()))
        .json(&json!({"transaction_id": tx, "amount": "1000", "due_in_ms": 5 * 3_600_000, "webhook": false}))
        .send()
        .await
        .unwrap();
    let id = r.json::<Value>().await.unwrap()["id"].as_i64().unwrap();
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let (_, mut b) = e.app.signed_in(sika::auth::Role::Viewer, "viewer@example.com").await;
    let home = b.get("/").await;
    assert!(home.body.contains(r#"id="disputes-due""#) && home.body.contains("1 chargeback due within 24 hours"));
    assert!(home.body.contains(r#"href="/disputes""#), "in the navigation");
    let list = b.get("/disputes").await;
    assert_eq!(list.status, 200);
    assert!(list.body.contains(&format!(r#"id="dispute-{id}""#)), "{}", list.body);
    assert!(list.body.contains("due in 4 h"), "{}", list.body);
    assert!(list.body.contains(r#"<a href="/payments/cb-ui">cb-ui</a>"#));
    let page = b.get("/payments/cb-ui").await;
    assert!(page.body.contains(r#"id="chargebacks""#));
    assert!(page.body.contains("Net after chargebacks: NGN 1,500.00"), "{}", page.body);
    // Signed out, the list is not shown.
    let mut stranger = e.app.browser();
    assert_eq!(stranger.get("/disputes").await.status, 303);
}
