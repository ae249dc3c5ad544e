//! Collecting payments against the emulator over real HTTP: value only on a
//! definite, matching verify answer, exactly once.

use crate::support;

use std::time::Duration;

use serde_json::{Value, json};
use sika::audit::Actor;
use sika::domain::{CheckoutStatus, InboxState};
use sika::payments::Applied;

use crate::support::emulated::{Env, env, env_on, env_tuned};

#[tokio::test]
async fn the_api_needs_a_valid_key_with_the_right_scope() {
    let e = env().await;
    let body = json!({"reference": "k-1", "amount": 10, "currency": "NGN", "customer": {"email": "a@example.com"}});
    let res = e.app.client.post(e.app.url("/api/v1/checkouts")).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 401);
    assert_eq!(res.headers()["www-authenticate"], "Bearer");
    let v: Value = res.json().await.unwrap();
    assert_eq!(v["error"]["code"], "unauthorized");
    let res = e
        .app
        .client
        .post(e.app.url("/api/v1/checkouts"))
        .bearer_auth("sk_000000000000.nope")
        .json(&body)
        .send()
        .await
        .unwrap();
    assert_eq!(res.status(), 401);
    let (_, read_only) = e.app.auth.create_api_key(&Actor::cli(), "reader", "read").await.unwrap();
    let res =
        e.app.client.post(e.app.url("/api/v1/checkouts")).bearer_auth(&read_only).json(&body).send().await.unwrap();
    assert_eq!(res.status(), 403, "read scope cannot create");
    e.checkout("k-2", "10", "NGN").await;
    let res = e.app.client.get(e.app.url("/api/v1/checkouts/k-2")).bearer_auth(&read_only).send().await.unwrap();
    assert_eq!(res.status(), 200, "read scope can read");
}

#[tokio::test]
async fn checkouts_are_validated_and_idempotent_by_reference() {
    let e = env().await;
    let first = e.checkout("order-1", "1500.50", "NGN").await;
    assert_eq!(first["status"], "pending");
    let link = first["checkout_url"].as_str().unwrap().to_string();
    assert!(link.contains("/hosted/pay/flwlnk-"));
    let again = e.checkout("order-1", "1500.50", "NGN").await;
    assert_eq!(again["checkout_url"], link.as_str(), "same body, same checkout");
    let res = e.create(json!({"reference": "order-1", "amount": "1600", "currency": "NGN", "customer": {"email": "buyer@example.com"}})).await;
    assert_eq!(res.status(), 409);
    for (body, field) in [
        (
            json!({"reference": "bad ref", "amount": 1, "currency": "NGN", "customer": {"email": "a@example.com"}}),
            "reference",
        ),
        (json!({"reference": "r", "amount": -1, "currency": "NGN", "customer": {"email": "a@example.com"}}), "amount"),
        (
            json!({"reference": "r", "amount": "1.234", "currency": "NGN", "customer": {"email": "a@example.com"}}),
            "amount",
        ),
        (json!({"reference": "r", "amount": 1, "currency": "XYZ", "customer": {"email": "a@example.com"}}), "currency"),
        (
            json!({"reference": "r", "amount": 1, "currency": "NGN", "customer": {"email": "<script>"}}),
            "customer.email",
        ),
    ] {
        let res = e.create(body).await;
        assert_eq!(res.status(), 400);
        let v: Value = res.json().await.unwrap();
        assert!(v["error"]["message"].as_str().unwrap().starts_with(field), "{v}");
    }
    let res = e.create(json!({"reference": "r", "amount": 1, "currency": "NGN", "customer": {"email": "a@example.com"}, "admin": true})).await;
    assert_eq!(res.status(), 400, "unknown fields are refused");
    let res = e.app.client.get(e.app.url("/api/v1/checkouts/nope")).bearer_auth(&e.key).send().await.unwrap();
    assert_eq!(res.status(), 404);
}

#[tokio::test]
async fn a_verified_full_payment_is_paid_once_with_one_notification() {
    let e = env().await;
    e.checkout("pay-1", "100", "NGN").await;
    let id = e.pay("pay-1", "successful", json!({})).await;
    assert_eq!(e.webhook(id, "pay-1", e.signed()).await, 200);
    assert_eq!(e.status("pay-1").await, "pending", "nothing changes inside the webhook request");
    e.process().await;
    assert_eq!(e.status("pay-1").await, "paid");
    // The same webhook again, and a return visit: nothing more happens.
    assert_eq!(e.webhook(id, "pay-1", e.signed()).await, 200);
    e.process().await;
    assert_eq!(
        e.app.payments.verify_and_apply(id).await.unwrap(),
        Applied::Settled { status: CheckoutStatus::Paid, moved: false }
    );
    assert_eq!(e.app.db.store.outbox_count("pay-1").await.unwrap(), 1);
    let v: Value = e
        .app
        .client
        .get(e.app.url("/api/v1/checkouts/pay-1"))
        .bearer_auth(&e.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((v["status"].as_str(), v["transaction_id"].as_i64()), (Some("paid"), Some(id)));
}

#[tokio::test]
async fn underpaid_wrong_currency_and_unknown_references_are_never_paid() {
    let e = env().await;
    e.checkout("under-1", "100", "NGN").await;
    let id = e.pay("under-1", "successful", json!({"amount": "99.99", "currency": "NGN"})).await;
    e.webhook(id, "under-1", e.signed()).await;
    e.checkout("cur-1", "100", "NGN").await;
    let id2 = e.pay("cur-1", "successful", json!({"amount": "100", "currency": "USD"})).await;
    e.webhook(id2, "cur-1", e.signed()).await;
    let id3 = e.pay("nobody-knows", "successful", json!({"amount": "5", "currency": "NGN"})).await;
    e.webhook(id3, "nobody-knows", e.signed()).await;
    e.process().await;
    let under = e.app.db.store.checkout("under-1").await.unwrap().unwrap();
    assert_eq!(under.status, CheckoutStatus::NeedsReview);
    assert!(under.review_reason.unwrap().contains("underpaid"));
    assert_eq!(e.status("cur-1").await, "needs_review");
    assert_eq!(e.app.db.store.inbox_by_state(InboxState::Unmatched).await.unwrap().len(), 1);
    assert_eq!(e.app.db.store.outbox_count("under-1").await.unwrap(), 1, "the shop hears needs_review");
}

#[tokio::test]
async fn a_webhook_naming_another_references_transaction_settles_only_what_verify_says() {
    let e = env().await;
    e.checkout("victim", "5000", "NGN").await;
    e.checkout("cheap", "1", "NGN").await;
    let cheap = e.pay("cheap", "successful", json!({})).await;
    // Signed (say, a replayed real delivery), but claiming the expensive reference.
    assert_eq!(e.webhook(cheap, "victim", e.signed()).await, 200);
    e.process().await;
    assert_eq!(e.status("victim").await, "pending", "the claim in the body is ignored");
    assert_eq!(e.status("cheap").await, "paid", "verify's own tx_ref decides");
}

#[tokio::test]
async fn forged_missing_and_wrong_scheme_signatures_are_refused_and_nothing_is_stored() {
    let e = env().await;
    e.checkout("sig-1", "100", "NGN").await;
    let id = e.pay("sig-1", "successful", json!({})).await;
    let body =
        json!({"event": "charge.completed", "data": {"id": id, "tx_ref": "sig-1", "status": "successful"}}).to_string();
    let hmac_of_other = flutterwave::webhook::hmac_signature("not-the-secret", body.as_bytes());
    for header in [
        None,
        Some(("verif-hash", "guess".to_string())),
        Some(("verif-hash", flutterwave::webhook::hmac_signature(&e.hash, body.as_bytes()))),
        Some(("flutterwave-signature", hmac_of_other)),
        Some(("x-signature", e.hash.clone())),
    ] {
        assert_eq!(e.raw_webhook(body.clone(), header).await, 401);
    }
    assert_eq!(e.app.payments.refused_webhooks.load(std::sync::atomic::Ordering::Relaxed), 5);
    e.process().await;
    assert_eq!(e.status("sig-1").await, "pending", "nothing was stored, nothing processed");
    // The HMAC scheme over the raw body is accepted.
    let good = flutterwave::webhook::hmac_signature(&e.hash, body.as_bytes());
    assert_eq!(e.raw_webhook(body, Some(("flutterwave-signature", good))).await, 200);
    e.process().await;
    assert_eq!(e.status("sig-1").await, "paid");
}

#[tokio::test]
async fn indefinite_verify_answers_change_nothing_and_settle_later() {
    let e = env().await;
    e.checkout("flaky-1", "100", "NGN").await;
    let id = e.pay("flaky-1", "successful", json!({})).await;
    e.webhook(id, "flaky-1", e.signed()).await;
    // 5xx, then 429 (timeouts are exercised in the client's own tests: they take the full timeout).
    for fault in [json!({"error_rate": 1.0}), json!({"error_rate": 0.0, "rate_limit_per_second": 0.0001})] {
        e.faults(fault).await;
        assert_eq!(e.app.payments.verify_and_apply(id).await.unwrap(), Applied::Retry);
        assert_eq!(e.status("flaky-1").await, "pending");
    }
    // A timeout: Flutterwave answers after the client gave up.
    e.faults(json!({"error_rate": 0.0, "rate_limit_per_second": null, "latency_ms": 2500})).await;
    assert_eq!(e.app.payments.verify_and_apply(id).await.unwrap(), Applied::Retry);
    assert_eq!(e.status("flaky-1").await, "pending");
    e.faults(json!({"latency_ms": 0})).await;
    e.process().await;
    assert_eq!(e.status("flaky-1").await, "paid");
}

#[tokio::test]
async fn a_late_webhook_of_an_earlier_failed_attempt_changes_nothing() {
    let e = env().await;
    e.checkout("order-r", "100", "NGN").await;
    let failed = e.pay("order-r", "failed", json!({})).await;
    let good = e.pay("order-r", "successful", json!({})).await;
    // Delivered out of order: the success first, then the earlier failure.
    e.webhook(good, "order-r", e.signed()).await;
    e.process().await;
    let body = json!({"event": "charge.completed", "data": {"id": failed, "tx_ref": "order-r", "status": "failed"}});
    assert_eq!(e.raw_webhook(body.to_string(), e.signed()).await, 200);
    e.process().await;
    assert_eq!(e.status("order-r").await, "paid");
    assert_eq!(e.app.db.store.outbox_count("order-r").await.unwrap(), 1);
}

#[tokio::test]
async fn pending_then_successful_and_a_failed_attempt_leaves_the_checkout_open() {
    let e = env().await;
    e.checkout("slow-1", "100", "NGN").await;
    let failed = e.pay("slow-1", "failed", json!({})).await;
    assert_eq!(e.app.payments.verify_and_apply(failed).await.unwrap(), Applied::AttemptFailed);
    assert_eq!(e.status("slow-1").await, "pending", "another attempt may follow");
    let id = e.pay("slow-1", "pending", json!({"resolve_after_ms": 300_000})).await;
    assert_eq!(e.app.payments.verify_and_apply(id).await.unwrap(), Applied::NotFinal);
    e.advance_emulator(500_000).await;
    assert_eq!(
        e.app.payments.verify_and_apply(id).await.unwrap(),
        Applied::Settled { status: CheckoutStatus::Paid, moved: true }
    );
}

#[tokio::test]
async fn a_webhook_that_never_arrives_is_settled_by_the_reconciler() {
    let e = env().await;
    e.checkout("lost-1", "100", "NGN").await;
    e.pay("lost-1", "successful", json!({})).await;
    assert_eq!(sika::payments::reconcile(&e.app.payments).await.unwrap(), 0, "not due yet");
    let in_two_minutes = sika::store::now_ms() + 120_000;
    assert_eq!(sika::payments::reconcile_at(&e.app.payments, in_two_minutes).await.unwrap(), 1);
    assert_eq!(e.status("lost-1").await, "paid");
}

#[tokio::test]
async fn a_crash_after_the_200_is_recovered_by_the_next_process() {
    let e = env().await;
    e.checkout("crash-1", "100", "NGN").await;
    let id = e.pay("crash-1", "successful", json!({})).await;
    assert_eq!(e.webhook(id, "crash-1", e.signed()).await, 200);
    // "Restart": a new service over the same database finds the stored delivery.
    let flw = sika::payments::Payments::new(
        e.app.db.store.clone(),
        sika::crypto::field::FieldCipher::new(e.app.auth.cipher_keys()),
        e.app.payments.flutterwave().clone(),
        sika::secret::Secret::new(e.hash.clone()),
        &url::Url::parse(&e.app.base).unwrap(),
        e.app.auth.auditor.clone(),
    );
    let inbox = sika::inbox::Inbox::new(flw, e.app.payouts.clone(), None, e.app.auth.auditor.clone());
    while inbox.process(10).await.unwrap() > 0 {}
    assert_eq!(e.status("crash-1").await, "paid");
}

#[tokio::test]
async fn the_return_page_verifies_and_never_trusts_its_query_string() {
    let e = env_tuned(support::sqlite().await, |p| p.return_verify_interval_ms = 300).await;
    e.checkout("ret-1", "100", "NGN").await;
    let page = e
        .app
        .client
        .get(e.app.url("/checkout/return?status=successful&tx_ref=ret-1&transaction_id=999999"))
        .send()
        .await
        .unwrap();
    let body = page.text().await.unwrap();
    assert!(body.contains("data-status=\"pending\""), "a lie in the query changes nothing");
    let id = e.pay("ret-1", "successful", json!({})).await;
    tokio::time::sleep(Duration::from_millis(400)).await;
    let page = e
        .app
        .client
        .get(e.app.url(&format!("/checkout/return?status=completed&tx_ref=ret-1&transaction_id={id}")))
        .send()
        .await
        .unwrap();
    let body = page.text().await.unwrap();
    assert!(body.contains("data-status=\"paid\""));
    assert!(
        body.contains("https://shop.example/done?reference=ret-1&#38;status=paid"),
        "back to the shop with reference and status only"
    );
}

async fn fifty_concurrent_deliveries(e: Env) {
    e.checkout("burst-1", "100", "NGN").await;
    let id = e.pay("burst-1", "successful", json!({})).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let (client, url, hash) = (e.app.client.clone(), e.app.url("/webhooks/flutterwave"), e.hash.clone());
        tasks.push(tokio::spawn(async move {
            let body =
                json!({"event": "charge.completed", "data": {"id": id, "tx_ref": "burst-1", "status": "successful"}});
            client.post(url).header("verif-hash", hash).json(&body).send().await.unwrap().status().as_u16()
        }));
    }
    for t in tasks {
        assert_eq!(t.await.unwrap(), 200);
    }
    // And fifty verifications racing each other (return visits, reconciler, workers).
    let mut racers = Vec::new();
    for _ in 0..50 {
        let p = e.app.payments.clone();
        racers.push(tokio::spawn(async move { p.verify_and_apply(id).await.unwrap() }));
    }
    let mut moved = 0;
    for r in racers {
        if let Applied::Settled { moved: true, .. } = r.await.unwrap() {
            moved += 1;
        }
    }
    e.process().await;
    assert_eq!(moved, 1, "exactly one transition");
    assert_eq!(e.app.db.store.outbox_count("burst-1").await.unwrap(), 1, "exactly one notification");
    assert_eq!(e.status("burst-1").await, "paid");
}

#[tokio::test]
async fn fifty_concurrent_deliveries_make_one_transition_on_sqlite() {
    fifty_concurrent_deliveries(env().await).await;
}

#[tokio::test]
async fn fifty_concurrent_deliveries_make_one_transition_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    fifty_concurrent_deliveries(env_on(db).await).await;
}

#[tokio::test]
async fn the_openapi_document_describes_the_api() {
    let e = env().await;
    let res = e.app.client.get(e.app.url("/api/v1/openapi.json")).send().await.unwrap();
    assert_eq!(res.status(), 200);
    let doc: Value = res.json().await.unwrap();
    assert!(doc["openapi"].as_str().unwrap().starts_with("3."));
    for path in [
        "/api/v1/checkouts",
        "/api/v1/checkouts/{reference}",
        "/api/v1/cards",
        "/api/v1/cards/{reference}/fund",
        "/api/v1/cards/{reference}/withdraw",
        "/api/v1/cards/{reference}/fundings",
    ] {
        assert!(doc["paths"][path].is_object(), "{path}");
    }
    let card_statuses = doc["components"]["schemas"]["CardStatus"]["enum"].as_array().unwrap();
    for s in sika::domain::CardStatus::ALL {
        assert!(card_statuses.contains(&json!(s.as_str())), "{s} is documented");
    }
    let statuses = doc["components"]["schemas"]["Checkout"]["properties"]["status"]["enum"].as_array().unwrap();
    assert_eq!(statuses.len(), 5);
    // The notification section lists every event the shop can receive.
    for event in [
        "checkout.paid",
        "checkout.needs_review",
        "payout.successful",
        "payout.failed",
        "chargeback.opened",
        "chargeback.lost",
        "card.created",
        "card.funded",
        "card.withdrawn",
        "card.blocked",
        "card.unblocked",
        "card.terminated",
        "card.debited",
        "card.declined",
    ] {
        assert!(doc["x-webhooks"][event]["post"]["requestBody"].is_object(), "{event} is documented");
    }
}

#[tokio::test]
async fn the_shop_is_notified_once_with_a_verifiable_signature() {
    use std::sync::{Arc, Mutex};
    let e = env().await;
    let got: Arc<Mutex<Vec<(String, String, String)>>> = Arc::default();
    let replies = Arc::new(Mutex::new(vec![500u16, 200].into_iter()));
    let g = got.clone();
    let shop = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |h: axum::http::HeaderMap, body: String| {
            let (g, replies) = (g.clone(), replies.clone());
            async move {
                let header = |n: &str| h.get(n).and_then(|v| v.to_str().ok()).unwrap_or("").to_string();
                g.lock().unwrap().push((header("sika-signature"), header("sika-event-id"), body));
                axum::http::StatusCode::from_u16(replies.lock().unwrap().next().unwrap_or(200)).unwrap()
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, shop).await.unwrap() });
    let cipher = sika::crypto::field::FieldCipher::new(e.app.auth.cipher_keys());
    let secret = sika::crypto::random::token();
    sika::payments::notify::set_endpoint(&e.app.db.store, &cipher, &url, &secret).await.unwrap();

    e.checkout("note-1", "100", "NGN").await;
    let id = e.pay("note-1", "successful", json!({})).await;
    e.app.payments.verify_and_apply(id).await.unwrap();
    let notifier = sika::payments::notify::Notifier::new(cipher.clone(), true).unwrap();
    let store = &e.app.db.store;
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 0, "the shop answered 500");
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 0, "not due again before the backoff");
    let row = store.outbox_for("note-1").await.unwrap().remove(0);
    assert_eq!((row.attempts, row.delivered_at), (1, None));
    // Pretend the backoff passed.
    store.outbox_failed(&row.id, 0, false).await.unwrap();
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 1);
    assert_eq!(notifier.deliver_due(store).await.unwrap(), 0, "delivered once");

    let deliveries = got.lock().unwrap().clone();
    assert_eq!(deliveries.len(), 2);
    let (sig, event_id, body) = &deliveries[1];
    let v: Value = serde_json::from_str(body).unwrap();
    assert_eq!(
        (v["event"].as_str(), v["reference"].as_str(), v["id"].as_str()),
        (Some("checkout.paid"), Some("note-1"), Some(event_id.as_str()))
    );
    // The shop's check, as the README shows it.
    let (t, mac) = sig.split_once(',').unwrap();
    let t: i64 = t.strip_prefix("t=").unwrap().parse().unwrap();
    assert!((sika::store::now_ms() / 1000 - t).abs() < 300);
    assert_eq!(format!("{t},{mac}"), sika::payments::notify::signature(&secret, t, body).trim_start_matches("t="));
    assert_ne!(sika::payments::notify::signature("other", t, body), *sig, "another secret gives another signature");

    // A dead letter can be replayed.
    store.outbox_failed(&row.id, 0, true).await.unwrap();
    assert_eq!(store.outbox_dead().await.unwrap().len(), 1);
    assert!(store.outbox_replay(&row.id, None).await.unwrap());
    assert!(store.outbox_dead().await.unwrap().is_empty());
}

#[tokio::test]
async fn operators_create_payment_links_in_the_console_and_watch_them_get_paid() {
    use support::browser::{Browser, code};
    let e = env().await;
    let pw = crate::support::people::PASSWORD;
    let op = e.app.person(sika::auth::Role::Operator, "op@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("op@example.com", pw, &code(&op.secret, 0)).await.status, 303);
    let list = b.get("/payments").await;
    assert!(list.body.contains(r#"<a class="button" id="new-link" href="/payments/new">"#));
    let form = b.get("/payments/new").await;
    assert!(form.body.contains("id=\"create-link\""));
    let csrf = form.csrf();
    let res = b
        .post(
            "/payments",
            &[
                ("reference", "console-1"),
                ("amount", "2500.00"),
                ("currency", "NGN"),
                ("email", "buyer@example.com"),
                ("name", ""),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert_eq!((res.status, res.location.as_deref()), (303, Some("/payments/console-1")));
    let page = b.get("/payments/console-1").await;
    assert!(page.body.contains("id=\"payment-link\"") && page.body.contains("/hosted/pay/flwlnk-"));
    assert!(page.body.contains("buyer@example.com"));
    let bad = b
        .post(
            "/payments",
            &[
                ("reference", "console 2"),
                ("amount", "x"),
                ("currency", "NGN"),
                ("email", "b@example.com"),
                ("csrf_token", &csrf),
            ],
        )
        .await;
    assert!(bad.body.contains("amount"), "the reason is shown");

    let id = e.pay("console-1", "successful", json!({})).await;
    e.webhook(id, "console-1", e.signed()).await;
    e.process().await;
    assert!(b.get("/payments/console-1").await.body.contains("id=\"payment-status\" data-status=\"paid\""));
    assert!(b.get("/payments?status=paid").await.body.contains("console-1"));
    assert!(!b.get("/payments?status=pending").await.body.contains(">console-1<"));
    let audit = e.app.db.store.audit_search(&Default::default(), 100).await.unwrap();
    assert!(
        audit.iter().any(|a| a.action == "payment_link.create") && audit.iter().any(|a| a.action == "payment.view")
    );
}

#[tokio::test]
async fn a_paid_checkout_costs_two_calls_to_flutterwave() {
    let e = env().await;
    e.http.post(format!("{}/_emulator/stats/reset", e.emu.url())).send().await.unwrap();
    e.checkout("calls-1", "100", "NGN").await;
    let id = e.pay("calls-1", "successful", json!({})).await;
    e.webhook(id, "calls-1", e.signed()).await;
    e.process().await;
    // The customer comes back after the webhook settled it.
    let page = e
        .app
        .client
        .get(e.app.url(&format!("/checkout/return?status=successful&tx_ref=calls-1&transaction_id={id}")))
        .send()
        .await
        .unwrap();
    assert!(page.text().await.unwrap().contains("data-status=\"paid\""));
    let stats: Value =
        e.http.get(format!("{}/_emulator/stats", e.emu.url())).send().await.unwrap().json().await.unwrap();
    assert_eq!(stats["requests_total"], 2, "create and verify: {stats}");
}

#[tokio::test]
async fn unpaid_checkouts_expire_as_cancelled_or_failed_and_the_shop_hears_it() {
    let clock = sika::clock::install_manual();
    let e = env().await;
    e.checkout("quiet-1", "100", "NGN").await;
    e.checkout("tried-1", "100", "NGN").await;
    let failed = e.pay("tried-1", "failed", json!({})).await;
    e.app.payments.verify_and_apply(failed).await.unwrap();
    // The reconciler as it runs, on Sika's clock: nothing closes before the
    // day is out, both close once it is.
    clock.advance(std::time::Duration::from_secs(23 * 3600));
    sika::payments::reconcile(&e.app.payments).await.unwrap();
    assert_eq!(e.status("quiet-1").await, "pending", "not before its time");
    clock.advance(std::time::Duration::from_secs(25 * 3600));
    sika::payments::reconcile(&e.app.payments).await.unwrap();
    assert_eq!(e.status("quiet-1").await, "cancelled");
    assert_eq!(e.status("tried-1").await, "failed");
    let notes = e.app.db.store.outbox_for("tried-1").await.unwrap();
    assert_eq!(notes.len(), 1);
    assert_eq!(notes[0].event, "checkout.failed");
    // A payment that lands before expiry is found by the last look instead.
    e.checkout("late-1", "100", "NGN").await;
    e.pay("late-1", "successful", json!({})).await;
    clock.advance(std::time::Duration::from_secs(48 * 3600));
    sika::payments::reconcile(&e.app.payments).await.unwrap();
    assert_eq!(e.status("late-1").await, "paid");
}

#[tokio::test]
async fn only_one_reconciler_runs_across_instances() {
    let Some(db) = support::postgres().await else { return };
    let store = db.store.clone();
    let (tx, rx) = tokio::sync::oneshot::channel::<()>();
    let holder = {
        let store = store.clone();
        tokio::spawn(async move { store.singleton(42, async { rx.await.ok() }).await.unwrap() })
    };
    tokio::time::sleep(Duration::from_millis(200)).await;
    assert!(store.singleton(42, async { 1 }).await.unwrap().is_none(), "a second instance stays out");
    tx.send(()).unwrap();
    assert!(holder.await.unwrap().is_some());
    assert_eq!(store.singleton(42, async { 2 }).await.unwrap(), Some(2), "free again afterwards");
}

#[tokio::test]
async fn an_approver_refunds_with_a_fresh_code_and_never_more_than_was_paid() {
    use support::browser::{Browser, code};
    // Sika's clock stands still here: the codes below cannot cross a 30-second step
    // between the sign-in and the refund (on the wall clock they sometimes did).
    let _clock = sika::clock::install_manual();
    let e = env().await;
    let pw = crate::support::people::PASSWORD;
    e.checkout("refund-1", "1000", "NGN").await;
    let id = e.pay("refund-1", "successful", json!({})).await;
    e.app.payments.verify_and_apply(id).await.unwrap();
    let ap = e.app.person(sika::auth::Role::Approver, "approver@example.com").await;
    let op = e.app.person(sika::auth::Role::Operator, "operator@example.com").await;

    let mut o = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(o.login("operator@example.com", pw, &code(&op.secret, 0)).await.status, 303);
    let page = o.get("/payments/refund-1").await;
    assert!(!page.body.contains("id=\"refund-next\""), "operators see no refund form");
    let csrf = page.csrf();
    for path in ["/payments/refund-1/refund/confirm", "/payments/refund-1/refund"] {
        let r = o.post(path, &[("amount", "1"), ("comment", "x"), ("totp", "123456"), ("csrf_token", &csrf)]).await;
        assert_eq!(r.status, 403, "{path}");
    }

    let mut a = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(a.login("approver@example.com", pw, &code(&ap.secret, -1)).await.status, 303);
    let page = a.get("/payments/refund-1").await;
    assert!(page.body.contains("id=\"refund-next\""));
    assert!(page.body.contains("NGN 1,000.00 remains refundable"), "what remains is shown");
    let csrf = page.csrf();
    // An empty amount is refused, never "everything"; the reason typed stays.
    let empty = a
        .post("/payments/refund-1/refund/confirm", &[("amount", ""), ("comment", "damaged box"), ("csrf_token", &csrf)])
        .await;
    assert!(empty.body.contains("Enter the amount to refund."), "{}", empty.body);
    assert!(empty.body.contains("value=\"damaged box\""), "the reason is kept");
    // The same holds at the final step: no amount, no refund.
    let direct = a
        .post(
            "/payments/refund-1/refund",
            &[("amount", ""), ("comment", "x"), ("totp", &code(&ap.secret, 0)), ("csrf_token", &csrf)],
        )
        .await;
    assert!(direct.body.contains("Enter the amount to refund."));
    // Step one: a confirmation with amount, currency and what remains, before any code.
    let confirm = a
        .post(
            "/payments/refund-1/refund/confirm",
            &[("amount", "400"), ("comment", "damaged box"), ("csrf_token", &csrf)],
        )
        .await;
    assert_eq!(confirm.status, 200);
    for shown in ["NGN 400.00", "NGN 1,000.00", "NGN 600.00", "damaged box", "id=\"refund-totp\""] {
        assert!(confirm.body.contains(shown), "the confirmation shows {shown}");
    }
    assert!(e.app.db.store.refunds("refund-1").await.unwrap().is_empty(), "nothing happens at the confirmation");
    // The code used to sign in is spent: a refund needs a fresh one; the form keeps its fields.
    let reused = a
        .post(
            "/payments/refund-1/refund",
            &[("amount", "400"), ("comment", "damaged box"), ("totp", &code(&ap.secret, -1)), ("csrf_token", &csrf)],
        )
        .await;
    assert!(reused.body.contains("already used"));
    assert!(
        reused.body.contains("name=\"amount\" value=\"400\"") && reused.body.contains("value=\"damaged box\""),
        "kept"
    );
    let ok = a
        .post(
            "/payments/refund-1/refund",
            &[("amount", "400"), ("comment", "damaged box"), ("totp", &code(&ap.secret, 0)), ("csrf_token", &csrf)],
        )
        .await;
    assert!(ok.body.contains("Refund completed."), "{}", &ok.body[..ok.body.len().min(2000)]);
    assert!(
        ok.body.contains("id=\"refunded\">NGN 400.00") && ok.body.contains("id=\"net\">NGN 600.00"),
        "refunded and net"
    );
    let too_much = a
        .post("/payments/refund-1/refund/confirm", &[("amount", "700"), ("comment", "again"), ("csrf_token", &csrf)])
        .await;
    assert!(too_much.body.contains("At most NGN 600.00 remains refundable."), "{}", too_much.body);
    let refunds = e.app.db.store.refunds("refund-1").await.unwrap();
    assert_eq!(refunds.len(), 1);
    assert_eq!((refunds[0].amount.to_string().as_str(), refunds[0].status.as_str()), ("400", "completed"));
    assert_eq!(refunds[0].comment.as_deref(), Some("damaged box"), "the reason is kept with the refund");
    let audit = e
        .app
        .db
        .store
        .audit_search(&sika::store::AuditFilter { action: Some("refund".into()), ..Default::default() }, 10)
        .await
        .unwrap();
    assert!(audit.iter().any(|x| x.outcome == "success"));
    assert_eq!(e.status("refund-1").await, "paid", "a refund has its own state");
    // The API shows the refunds, the refunded total and the net.
    let v: Value = e
        .app
        .client
        .get(e.app.url("/api/v1/checkouts/refund-1"))
        .bearer_auth(&e.key)
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    assert_eq!((v["refunded"].as_str(), v["net"].as_str()), (Some("400"), Some("600")));
    assert_eq!(v["refunds"][0]["status"], "completed");
    let list = a.get("/payments").await;
    assert!(list.body.contains("NGN 400.00") && list.body.contains("NGN 600.00"), "the list shows refunded and net");
}

#[tokio::test]
async fn banks_and_account_resolution_check_the_bank_code_first() {
    let e = env().await;
    let (_, payouts) = e.app.auth.create_api_key(&Actor::cli(), "payouts", "payouts").await.unwrap();
    let get = |path: &str| e.app.client.get(e.app.url(path)).bearer_auth(&payouts).send();
    let res = get("/api/v1/banks/ke").await.unwrap();
    assert_eq!(res.status(), 200);
    let v: Value = res.json().await.unwrap();
    assert!(v["banks"].as_array().unwrap().iter().any(|b| b["code"] == "MPS"));
    assert_eq!(get("/api/v1/banks/KEN").await.unwrap().status(), 400);
    assert_eq!(e.app.client.get(e.app.url("/api/v1/banks/NG")).send().await.unwrap().status(), 401);

    let resolve =
        |body: Value| e.app.client.post(e.app.url("/api/v1/accounts/resolve")).bearer_auth(&payouts).json(&body).send();
    let ok: Value =
        resolve(json!({"account_number": "0690000032", "bank_code": "044"})).await.unwrap().json().await.unwrap();
    assert_eq!(ok["account_number"], "0690000032");
    assert!(ok["account_name"].as_str().unwrap().len() > 3);
    let mpesa =
        resolve(json!({"account_number": "+254709929220", "bank_code": "MPS", "type": "MOBILEMONEY", "country": "KE"}))
            .await
            .unwrap();
    assert_eq!(mpesa.status(), 200);
    assert_eq!(mpesa.json::<Value>().await.unwrap()["account_number"], "254709929220");
    for (body, code) in [
        (json!({"account_number": "0690000032", "bank_code": "999"}), "unknown_bank"),
        (json!({"account_number": "0123456789", "bank_code": "044"}), "account_not_resolved"),
        (json!({"account_number": "12ab", "bank_code": "044"}), "invalid_field"),
        (
            json!({"account_number": "254709929220", "bank_code": "044", "type": "MOBILEMONEY", "country": "KE"}),
            "invalid_field",
        ),
        (json!({"account_number": "0690000032", "bank_code": "044", "extra": 1}), "invalid_json"),
    ] {
        let res = resolve(body).await.unwrap();
        assert_eq!(res.status(), 400);
        assert_eq!(res.json::<Value>().await.unwrap()["error"]["code"], code);
    }
    // The bank list is consulted before every resolve: two calls each.
    let stats: Value =
        e.http.get(format!("{}/_emulator/stats", e.emu.url())).send().await.unwrap().json().await.unwrap();
    assert!(stats["requests"]["GET /v3/banks/{country}"].as_u64().unwrap() >= 5);
}

#[tokio::test]
async fn an_overpayment_is_paid_and_recorded_for_refund() {
    let e = env().await;
    e.checkout("over-1", "100", "NGN").await;
    let id = e.pay("over-1", "successful", json!({"amount": "150", "currency": "NGN"})).await;
    assert_eq!(
        e.app.payments.verify_and_apply(id).await.unwrap(),
        Applied::Settled { status: CheckoutStatus::Paid, moved: true }
    );
    let c = e.app.db.store.checkout("over-1").await.unwrap().unwrap();
    assert_eq!(c.paid_amount.map(|p| p.to_string()).as_deref(), Some("150"));
    let events = e.app.db.store.checkout_events("over-1").await.unwrap();
    assert!(events.iter().any(|(_, kind, detail)| kind == "overpaid" && detail.starts_with("50 NGN")), "{events:?}");
}

/// A shop URL pointing inside the network (an address literal, or a name
/// resolving there) gets nothing: checked when saved and at every connection.
#[tokio::test]
async fn notifications_are_never_sent_inside_the_network() {
    use std::sync::{Arc, Mutex};
    let e = env().await;
    let hits = Arc::new(Mutex::new(0usize));
    let h = hits.clone();
    let receiver = axum::Router::new().route(
        "/hook",
        axum::routing::post(move || {
            let h = h.clone();
            async move {
                *h.lock().unwrap() += 1;
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(async move { axum::serve(listener, receiver).await.unwrap() });
    e.paid("inside-1", "100").await;
    let store = &e.app.db.store;
    let cipher = e.app.payments.cipher().clone();
    let production = sika::payments::notify::Notifier::new(cipher.clone(), false).unwrap();
    for url in [format!("http://127.0.0.1:{port}/hook"), format!("http://localhost:{port}/hook")] {
        // Saved before (or around) the check, as a DNS change would make it.
        sika::payments::notify::set_endpoint(store, &cipher, &url, "whsec_x").await.unwrap();
        let row = store.outbox_for("inside-1").await.unwrap().remove(0);
        store.outbox_failed(&row.id, 0, false).await.unwrap();
        assert_eq!(production.deliver_due(store).await.unwrap(), 0, "{url}");
        assert_eq!(*hits.lock().unwrap(), 0, "{url} got a notification");
    }
    // The demo's own receiver, explicitly allowed.
    let demo = sika::payments::notify::Notifier::new(cipher.clone(), true).unwrap();
    let row = store.outbox_for("inside-1").await.unwrap().remove(0);
    store.outbox_failed(&row.id, 0, false).await.unwrap();
    assert_eq!(demo.deliver_due(store).await.unwrap(), 1);
    assert_eq!(*hits.lock().unwrap(), 1);
    // The console refuses such a URL when it is saved, and keeps what was typed.
    use support::browser::{Browser, code};
    let pw = crate::support::people::PASSWORD;
    let admin = e.app.person(sika::auth::Role::Admin, "settings@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("settings@example.com", pw, &code(&admin.secret, 0)).await.status, 303);
    let csrf = b.get("/admin/settings").await.csrf();
    let page = b.post("/admin/settings", &[("url", "https://169.254.169.254/latest"), ("csrf_token", &csrf)]).await;
    assert!(page.body.contains("must not point to a private"), "{}", page.body);
    assert!(page.body.contains("value=\"https://169.254.169.254/latest\""), "the typed URL is kept");
}
