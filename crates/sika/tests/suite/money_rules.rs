//! The money rules at the edges of time and concurrency, against the emulator
//! over real HTTP: expiry only on a definite answer, late money kept for a
//! person, refunds never above what was paid (concurrently, on both
//! databases) and followed until final, dead-lettered webhooks, and the
//! transitions' own guards.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::emulated::{Env, env, env_on, env_tuned, env_with};
use serde_json::{Value, json};
use sika::domain::{CheckoutStatus, InboxState, RefundStatus};
use sika::payments::{Applied, RefundOutcome, reconcile_at};
use sika::store::now_ms;

const DAY: i64 = 86_400_000;

async fn events(e: &Env, reference: &str) -> Vec<(String, String)> {
    e.app.db.store.checkout_events(reference).await.unwrap().into_iter().map(|(_, k, d)| (k, d)).collect()
}

async fn outbox_events(e: &Env, reference: &str) -> Vec<String> {
    e.app.db.store.outbox_for(reference).await.unwrap().into_iter().map(|o| o.event).collect()
}

/// (a) Paid on Flutterwave, but its last verification before expiry gets a
/// 5xx or a timeout: the checkout is not closed and the shop hears nothing;
/// the next try settles it.
#[tokio::test]
async fn an_indefinite_answer_at_expiry_defers_it_and_the_payment_is_found_later() {
    let e = env().await;
    e.checkout("exp-1", "100", "NGN").await;
    e.pay("exp-1", "successful", json!({})).await;
    let later = now_ms() + 2 * DAY;
    for fault in [json!({"error_rate": 1.0}), json!({"error_rate": 0.0, "latency_ms": 2500})] {
        e.faults(fault).await;
        let c = e.app.db.store.checkouts_expired(later, later + DAY, 10).await.unwrap().remove(0);
        let outcome = sika::payments::expiry::expire(&e.app.payments, &c, later).await.unwrap();
        assert!(matches!(outcome, sika::payments::expiry::Expiry::Deferred(_)), "{outcome:?}");
        assert_eq!(e.status("exp-1").await, "pending", "no definite answer, no closing");
        assert!(outbox_events(&e, "exp-1").await.is_empty(), "the shop is told nothing");
    }
    assert!(events(&e, "exp-1").await.iter().any(|(k, _)| k == "expiry_deferred"), "the timeline says why");
    // A deferred expiry waits for its next try…
    e.faults(json!({"latency_ms": 0})).await;
    assert!(e.app.db.store.checkouts_expired(later, later, 10).await.unwrap().is_empty(), "not before its time");
    // …and then the payment is found.
    reconcile_at(&e.app.payments, later + 3_600_000).await.unwrap();
    assert_eq!(e.status("exp-1").await, "paid");
    assert_eq!(outbox_events(&e, "exp-1").await, ["checkout.paid"]);
}

/// Closed only on a definite answer: no transaction at all → cancelled;
/// failed attempts → failed.
#[tokio::test]
async fn a_definite_answer_closes_an_expired_checkout() {
    let e = env().await;
    e.checkout("quiet-2", "100", "NGN").await;
    e.checkout("tried-2", "100", "NGN").await;
    let failed = e.pay("tried-2", "failed", json!({})).await;
    e.app.payments.verify_and_apply(failed).await.unwrap();
    reconcile_at(&e.app.payments, now_ms() + 2 * DAY).await.unwrap();
    assert_eq!(e.status("quiet-2").await, "cancelled");
    assert_eq!(e.status("tried-2").await, "failed");
    assert_eq!(outbox_events(&e, "quiet-2").await, ["checkout.cancelled"]);
}

/// (b) Money that arrives for a checkout already closed is never dropped:
/// the checkout goes to needs_review with a timeline entry, and the shop is
/// told `checkout.needs_review`, once.
#[tokio::test]
async fn a_late_payment_for_a_cancelled_checkout_needs_review() {
    let e = env().await;
    e.checkout("late-1", "100", "NGN").await;
    reconcile_at(&e.app.payments, now_ms() + 2 * DAY).await.unwrap();
    assert_eq!(e.status("late-1").await, "cancelled");
    // The customer pays on the link anyway.
    let id = e.pay("late-1", "successful", json!({})).await;
    assert_eq!(e.webhook(id, "late-1", e.signed()).await, 200);
    e.process().await;
    let c = e.app.db.store.checkout("late-1").await.unwrap().unwrap();
    assert_eq!(c.status, CheckoutStatus::NeedsReview);
    assert_eq!(c.transaction_id, Some(id));
    assert!(c.review_reason.unwrap().contains("after the checkout was cancelled"));
    assert!(events(&e, "late-1").await.iter().any(|(k, d)| k == "late_payment" && d.contains(&id.to_string())));
    assert_eq!(outbox_events(&e, "late-1").await, ["checkout.cancelled", "checkout.needs_review"]);
    // The same money again (a duplicate webhook, a return visit) changes nothing more.
    assert_eq!(
        e.app.payments.verify_and_apply(id).await.unwrap(),
        Applied::Settled { status: CheckoutStatus::NeedsReview, moved: false }
    );
    assert_eq!(outbox_events(&e, "late-1").await.len(), 2);
}

/// Money kept for review is refunded from the console like any refund (an approver, a fresh
/// code, the confirmation screen), never above what Flutterwave's verify said arrived; money that
/// arrived in another currency than the checkout's is not refundable through Sika at all.
#[tokio::test]
async fn money_under_review_is_refunded_from_the_console_up_to_what_arrived() {
    use support::browser::{Browser, code};
    let _clock = sika::clock::install_manual();
    let e = env().await;
    e.checkout("late-r", "100", "NGN").await;
    reconcile_at(&e.app.payments, now_ms() + 2 * DAY).await.unwrap();
    assert_eq!(e.status("late-r").await, "cancelled");
    e.checkout("under-r", "100", "NGN").await;
    e.checkout("cur-r", "100", "NGN").await;
    for (reference, over) in [
        ("late-r", json!({})),
        ("under-r", json!({"amount": "60", "currency": "NGN"})),
        ("cur-r", json!({"amount": "100", "currency": "USD"})),
    ] {
        let id = e.pay(reference, "successful", over).await;
        assert_eq!(e.webhook(id, reference, e.signed()).await, 200);
    }
    e.process().await;
    for reference in ["late-r", "under-r", "cur-r"] {
        assert_eq!(e.status(reference).await, "needs_review", "{reference}");
    }

    let ap = e.app.person(sika::auth::Role::Approver, "approver@example.com").await;
    let mut a = Browser::new(&e.app.base, e.app.client.clone());
    let pw = crate::support::people::PASSWORD;
    assert_eq!(a.login("approver@example.com", pw, &code(&ap.secret, -1)).await.status, 303);
    let page = a.get("/payments/late-r").await;
    assert!(page.body.contains("id=\"refund-next\""), "a late payment can be refunded from the console");
    assert!(page.body.contains("NGN 100.00 remains refundable"), "what arrived is the cap");
    let csrf = page.csrf();
    let too_much = a
        .post("/payments/late-r/refund/confirm", &[("amount", "150"), ("comment", "late"), ("csrf_token", &csrf)])
        .await;
    assert!(too_much.body.contains("At most NGN 100.00 remains refundable."), "{}", too_much.body);
    let confirm = a
        .post("/payments/late-r/refund/confirm", &[("amount", "100"), ("comment", "late"), ("csrf_token", &csrf)])
        .await;
    assert!(confirm.body.contains("id=\"refund-totp\""), "the same confirmation with a fresh code");
    let ok = a
        .post(
            "/payments/late-r/refund",
            &[("amount", "100"), ("comment", "late"), ("totp", &code(&ap.secret, 0)), ("csrf_token", &csrf)],
        )
        .await;
    assert!(ok.body.contains("Refund completed."), "{}", &ok.body[..ok.body.len().min(2000)]);
    let refunds = e.app.db.store.refunds("late-r").await.unwrap();
    assert_eq!((refunds.len(), refunds[0].status), (1, RefundStatus::Completed));
    assert_eq!(e.status("late-r").await, "needs_review", "refunding does not pretend it was paid");
    assert_eq!(e.app.db.store.refundable("late-r").await.unwrap(), Some(rust_decimal::Decimal::ZERO));

    // Underpaid: at most what arrived, through the API's path (the same service) too.
    assert!(a.get("/payments/under-r").await.body.contains("NGN 60.00 remains refundable"));
    let over = e.app.payments.refund("under-r", rust_decimal::Decimal::new(61, 0), "x", "test", None).await.unwrap();
    assert!(matches!(&over, RefundOutcome::Refused(why) if why.contains("more than was paid")), "{over:?}");
    // Another currency: the refund would be in the wrong one; refused, and no form offered.
    assert!(!a.get("/payments/cur-r").await.body.contains("id=\"refund-next\""));
    let other = e.app.payments.refund("cur-r", rust_decimal::Decimal::new(1, 0), "x", "test", None).await.unwrap();
    assert!(matches!(&other, RefundOutcome::Refused(why) if why.contains("in its own currency")), "{other:?}");
}

/// A transaction still `pending` at the 25-hour mark keeps its checkout open
/// (deferred) for a grace period; closed after it, a later success is a late
/// payment, not lost.
#[tokio::test]
async fn a_payment_pending_at_expiry_is_waited_for_then_kept_if_it_succeeds_late() {
    let e = env().await;
    e.checkout("slow-1", "100", "NGN").await;
    let id = e.pay("slow-1", "pending", json!({"resolve_after_ms": 1_500_000})).await;
    let at = now_ms() + 2 * DAY;
    reconcile_at(&e.app.payments, at).await.unwrap();
    assert_eq!(e.status("slow-1").await, "pending", "pending at Flutterwave: not closed");
    assert!(outbox_events(&e, "slow-1").await.is_empty());
    // Past the grace period it is closed…
    reconcile_at(&e.app.payments, at + 8 * DAY).await.unwrap();
    assert_eq!(e.status("slow-1").await, "cancelled");
    // …and when the payment then succeeds, its webhook is not ignored.
    e.advance_emulator(1_700_000).await;
    e.webhook(id, "slow-1", e.signed()).await;
    e.process().await;
    assert_eq!(e.status("slow-1").await, "needs_review");
    assert_eq!(outbox_events(&e, "slow-1").await, ["checkout.cancelled", "checkout.needs_review"]);
}

/// The unpaid transition is conditional: a paid checkout is never closed,
/// whoever asks (expiry racing a webhook, on either database).
async fn the_unpaid_transition_never_moves_a_settled_checkout(e: Env) {
    e.paid("guard-1", "100").await;
    let c = e.app.db.store.checkout("guard-1").await.unwrap().unwrap();
    for status in [CheckoutStatus::Cancelled, CheckoutStatus::Failed, CheckoutStatus::NeedsReview] {
        let note = sika::store::Notification { event: "checkout.cancelled", payload: json!({}) };
        let moved = e.app.db.store.mark_unpaid(&c.reference, status, None, "expired", note).await.unwrap();
        assert!(!moved, "{status} must not replace paid");
    }
    assert_eq!(e.status("guard-1").await, "paid");
    assert_eq!(outbox_events(&e, "guard-1").await, ["checkout.paid"]);
    // Expiry and verification at once: one transition, one notification.
    e.checkout("race-1", "100", "NGN").await;
    let id = e.pay("race-1", "successful", json!({})).await;
    let mut tasks = Vec::new();
    for i in 0..10 {
        let p = e.app.payments.clone();
        tasks.push(tokio::spawn(async move {
            if i % 2 == 0 {
                p.verify_and_apply(id).await.map(|_| ())
            } else {
                reconcile_at(&p, now_ms() + 2 * DAY).await.map(|_| ())
            }
        }));
    }
    for t in tasks {
        t.await.unwrap().unwrap();
    }
    assert_eq!(e.status("race-1").await, "paid");
    assert_eq!(outbox_events(&e, "race-1").await, ["checkout.paid"]);
}

#[tokio::test]
async fn the_unpaid_transition_never_moves_a_settled_checkout_on_sqlite() {
    the_unpaid_transition_never_moves_a_settled_checkout(env().await).await;
}

#[tokio::test]
async fn the_unpaid_transition_never_moves_a_settled_checkout_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    the_unpaid_transition_never_moves_a_settled_checkout(env_on(db).await).await;
}

/// Twenty approvers refund at once: the checkout's row is locked for the
/// check and the insert, so together they never refund more than was paid.
async fn twenty_concurrent_refunds_never_exceed_what_was_paid(e: Env) {
    e.paid("many-1", "1000").await;
    e.reset_stats().await;
    // At the store, with nothing in between the check and the insert.
    let mut tasks = Vec::new();
    for i in 0..20 {
        let store = e.app.db.store.clone();
        tasks.push(tokio::spawn(async move {
            store
                .insert_refund("many-1", rust_decimal::Decimal::from(300), "race", &format!("u{i}"), None)
                .await
                .unwrap()
        }));
    }
    let mut accepted = 0;
    for t in tasks {
        accepted += usize::from(t.await.unwrap().is_ok());
    }
    assert_eq!(accepted, 3, "3 × 300 fit in 1000, a fourth does not");
    // And end to end, through Flutterwave: what is left (100) is refunded at most once.
    e.paid("many-2", "1000").await;
    let mut tasks = Vec::new();
    for i in 0..20 {
        let p = e.app.payments.clone();
        tasks.push(tokio::spawn(async move {
            p.refund("many-2", rust_decimal::Decimal::from(300), "race", &format!("u{i}"), None).await.unwrap()
        }));
    }
    let mut completed = 0;
    for t in tasks {
        completed += usize::from(matches!(t.await.unwrap(), RefundOutcome::Completed(_)));
    }
    assert_eq!(completed, 3);
    let held: rust_decimal::Decimal = e
        .app
        .db
        .store
        .refunds("many-2")
        .await
        .unwrap()
        .iter()
        .filter(|r| r.status.holds_money())
        .map(|r| r.amount)
        .sum();
    assert!(held <= rust_decimal::Decimal::from(1000), "refunded {held} of 1000");
    let calls = e.stats().await["requests"]["POST /v3/transactions/{id}/refund"].as_u64().unwrap_or(0);
    assert_eq!(calls, 3, "only refunds that fit reached Flutterwave");
    let c = e.app.db.store.checkout("many-2").await.unwrap().unwrap();
    assert_eq!((c.refunded.to_string().as_str(), c.net().map(|n| n.to_string())), ("900", Some("100".to_string())));
}

#[tokio::test]
async fn twenty_concurrent_refunds_never_exceed_what_was_paid_on_sqlite() {
    twenty_concurrent_refunds_never_exceed_what_was_paid(env().await).await;
}

#[tokio::test]
async fn twenty_concurrent_refunds_never_exceed_what_was_paid_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    twenty_concurrent_refunds_never_exceed_what_was_paid(env_on(db).await).await;
}

/// Flutterwave's refund statuses are mapped, not assumed: a `pending-momo`
/// refund is `processing`, followed by `GET /refunds/{id}` until final.
#[tokio::test]
async fn a_non_final_refund_is_followed_until_flutterwave_calls_it_final() {
    let e = env().await;
    e.paid("rf-1", "1000").await;
    e.faults(json!({"refund_status": "pending-momo", "refund_settle_after_ms": 300_000})).await;
    let RefundOutcome::Processing(r) = e.app.payments.refund("rf-1", 250.into(), "late", "u1", None).await.unwrap()
    else {
        panic!("a pending-momo refund is not completed")
    };
    let row = e.app.db.store.refund(&r.id).await.unwrap().unwrap();
    assert_eq!((row.status, row.flw_status.as_deref()), (RefundStatus::Processing, Some("pending-momo")));
    let c = e.app.db.store.checkout("rf-1").await.unwrap().unwrap();
    assert!(c.refunded.is_zero(), "not refunded until it is");
    // Too early, and not final yet: still processing.
    assert_eq!(e.app.payments.follow_refunds(now_ms() + 120_000).await.unwrap(), 1);
    e.advance_emulator(400_000).await;
    e.app.payments.follow_refunds(now_ms() + DAY).await.unwrap();
    let row = e.app.db.store.refund(&r.id).await.unwrap().unwrap();
    assert_eq!(row.status, RefundStatus::Completed);
    let c = e.app.db.store.checkout("rf-1").await.unwrap().unwrap();
    assert_eq!(c.refunded.to_string(), "250");
    assert_eq!(e.app.payments.follow_refunds(now_ms() + 2 * DAY).await.unwrap(), 0, "final: no more lookups");
    // One that ends failed frees its amount again.
    e.faults(
        json!({"refund_status": "processing", "refund_final_status": "failed", "refund_settle_after_ms": 100_000}),
    )
    .await;
    let RefundOutcome::Processing(r2) = e.app.payments.refund("rf-1", 750.into(), "x", "u1", None).await.unwrap()
    else {
        panic!("processing")
    };
    assert!(e.app.db.store.refundable("rf-1").await.unwrap().unwrap().is_zero(), "held while processing");
    e.advance_emulator(200_000).await;
    e.app.payments.follow_refunds(now_ms() + DAY).await.unwrap();
    assert_eq!(e.app.db.store.refund(&r2.id).await.unwrap().unwrap().status, RefundStatus::Failed);
    assert_eq!(e.app.db.store.refundable("rf-1").await.unwrap().unwrap().to_string(), "750");
}

/// No definite answer to the refund request (the change happened, then a
/// 503): `unknown`, never sent again, found by listing and adopted. A refund
/// recorded but never sent (the process died) is found absent and failed.
#[tokio::test]
async fn an_unknown_refund_is_looked_up_never_resent() {
    let e = env().await;
    e.paid("rf-2", "1000").await;
    e.faults(json!({"error_after_commit_rate": 1.0})).await;
    let RefundOutcome::Unknown(r) = e.app.payments.refund("rf-2", 400.into(), "x", "u1", None).await.unwrap() else {
        panic!("a 503 is no definite answer")
    };
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    e.reset_stats().await;
    e.app.payments.follow_refunds(now_ms() + 120_000).await.unwrap();
    let row = e.app.db.store.refund(&r.id).await.unwrap().unwrap();
    assert_eq!(row.status, RefundStatus::Completed, "{row:?}");
    assert!(row.flw_refund_id.is_some(), "adopted from the listing");
    let stats = e.stats().await;
    assert_eq!(stats["requests"]["POST /v3/transactions/{id}/refund"], Value::Null, "never sent again: {stats}");
    // Recorded, never sent.
    let lost = e.app.db.store.insert_refund("rf-2", 100.into(), "crash", "u1", None).await.unwrap().unwrap();
    e.app.payments.follow_refunds(now_ms() + 30 * 60_000).await.unwrap();
    assert_eq!(
        e.app.db.store.refund(&lost.id).await.unwrap().unwrap().status,
        RefundStatus::Requested,
        "too early to say"
    );
    e.app.payments.follow_refunds(now_ms() + 2 * 3_600_000).await.unwrap();
    let lost = e.app.db.store.refund(&lost.id).await.unwrap().unwrap();
    assert_eq!(lost.status, RefundStatus::Failed);
    assert!(lost.note.unwrap().contains("never made"));
}

/// A refund webhook is a hint: the refund is read back before anything
/// changes, so a forged "completed" does nothing while Flutterwave says otherwise.
#[tokio::test]
async fn refund_webhooks_are_confirmed_by_lookup() {
    let e = env().await;
    let tx = e.paid("rf-3", "1000").await;
    e.faults(json!({"refund_status": "processing"})).await;
    let RefundOutcome::Processing(r) = e.app.payments.refund("rf-3", 100.into(), "x", "u1", None).await.unwrap() else {
        panic!("processing")
    };
    let flw_id = e.app.db.store.refund(&r.id).await.unwrap().unwrap().flw_refund_id.unwrap();
    let forged = json!({"id": flw_id, "AmountRefunded": 100, "status": "completed", "TransactionId": tx});
    assert_eq!(e.raw_webhook(forged.to_string(), e.signed()).await, 200);
    e.process().await;
    assert_eq!(e.app.db.store.refund(&r.id).await.unwrap().unwrap().status, RefundStatus::Processing);
    // Flutterwave completes it (settled after a delay) and says so.
    e.faults(json!({"refund_status": "pending", "refund_settle_after_ms": 50_000})).await;
    let RefundOutcome::Processing(r2) = e.app.payments.refund("rf-3", 200.into(), "y", "u1", None).await.unwrap()
    else {
        panic!("processing")
    };
    e.advance_emulator(150_000).await;
    let id2 = e.app.db.store.refund(&r2.id).await.unwrap().unwrap().flw_refund_id.unwrap();
    let real = json!({"id": id2, "AmountRefunded": 200, "status": "completed", "TransactionId": tx, "createdAt": "x"});
    e.raw_webhook(real.to_string(), e.signed()).await;
    e.process().await;
    assert_eq!(e.app.db.store.refund(&r2.id).await.unwrap().unwrap().status, RefundStatus::Completed);
}

/// Amounts follow the currency's minor unit everywhere money enters.
#[tokio::test]
async fn zero_decimal_currencies_refuse_decimals() {
    let e = env().await;
    let res = e
        .create(json!({"reference": "ugx-1", "amount": "1500.50", "currency": "UGX", "customer": {"email": "a@example.com"}}))
        .await;
    assert_eq!(res.status(), 400);
    let v: Value = res.json().await.unwrap();
    assert!(v["error"]["message"].as_str().unwrap().contains("whole number"), "{v}");
    assert_eq!(e.checkout("ugx-2", "1500", "UGX").await["amount"], "1500");
    assert!(matches!(
        e.app.payments.refund("ugx-2", rust_decimal::Decimal::new(15, 1), "x", "u", None).await.unwrap(),
        RefundOutcome::Refused(why) if why.contains("whole number")
    ));
}

/// A webhook that never gets a definite answer is dead-lettered after its
/// attempts, shown for a person, and replayable once Flutterwave answers.
#[tokio::test]
async fn a_webhook_without_a_definite_answer_is_dead_lettered_and_replayable() {
    let e = env_tuned(support::sqlite().await, |p| p.max_inbox_attempts = 3).await;
    e.checkout("dead-1", "100", "NGN").await;
    let id = e.pay("dead-1", "successful", json!({})).await;
    e.faults(json!({"error_rate": 1.0})).await;
    e.webhook(id, "dead-1", e.signed()).await;
    for _ in 0..3 {
        e.app.inbox.process(10).await.unwrap();
        // Skip the backoff.
        sqlx::query("UPDATE webhook_inbox SET next_attempt_at = 0 WHERE state = 'retry'")
            .execute(e.app.db.store.pool_for_tests())
            .await
            .unwrap();
    }
    let dead = e.app.db.store.inbox_by_state(InboxState::Dead).await.unwrap();
    assert_eq!(dead.len(), 1, "after 3 attempts");
    assert_eq!(e.app.inbox.process(10).await.unwrap(), 0, "a dead letter is not retried on its own");
    e.faults(json!({"error_rate": 0.0})).await;
    assert!(e.app.inbox.replay(&support::cli(), &dead[0].id).await.unwrap());
    e.process().await;
    assert_eq!(e.status("dead-1").await, "paid");
}

/// A thousand forged return-page visits cost a bounded number of calls to
/// Flutterwave (one per pending checkout per interval, in the visitors' lane
/// only), and real payments are still confirmed about as fast as without them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn forged_return_visits_cannot_spend_the_settlement_budget() {
    let options = support::Options { rate_per_second: 5, ..Default::default() };
    let e = env_with(support::sqlite().await, options, |_| {}).await;
    // The inbox worker, as in production.
    let p = e.app.inbox.clone();
    let worker = tokio::spawn(async move {
        loop {
            if p.process(50).await.unwrap() == 0 {
                tokio::time::sleep(Duration::from_millis(50)).await;
            }
        }
    });
    async fn pay_batch(e: &Env, tag: &str, n: usize) -> Duration {
        let mut refs = Vec::new();
        for i in 0..n {
            let r = format!("{tag}-{i}");
            e.checkout(&r, "100", "NGN").await;
            refs.push(r);
        }
        let start = Instant::now();
        for r in &refs {
            let id = e.pay(r, "successful", json!({})).await;
            e.webhook(id, r, e.signed()).await;
        }
        while !all_paid(e, &refs).await {
            assert!(start.elapsed() < Duration::from_secs(60), "payments were not confirmed within a minute");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        start.elapsed()
    }
    async fn all_paid(e: &Env, refs: &[String]) -> bool {
        for r in refs {
            if e.status(r).await != "paid" {
                return false;
            }
        }
        true
    }
    let unloaded = pay_batch(&e, "calm", 10).await;
    // Pending checkouts the attacker knows the references of, and the flood.
    for i in 0..5 {
        e.checkout(&format!("target-{i}"), "100", "NGN").await;
    }
    e.reset_stats().await;
    let flood = {
        let (client, base) = (e.app.client.clone(), e.app.base.clone());
        tokio::spawn(async move {
            let mut tasks = Vec::new();
            for w in 0..40 {
                let (client, base) = (client.clone(), base.clone());
                tasks.push(tokio::spawn(async move {
                    for i in 0..25 {
                        let r = if i % 5 == 0 { format!("nobody-{w}-{i}") } else { format!("target-{}", i % 5) };
                        let url = format!(
                            "{base}/checkout/return?status=successful&tx_ref={r}&transaction_id={}",
                            1_000_000 + w * 100 + i
                        );
                        let _ = client.get(url).send().await;
                    }
                }));
            }
            for t in tasks {
                t.await.unwrap();
            }
        })
    };
    let loaded = pay_batch(&e, "busy", 10).await;
    flood.await.unwrap();
    worker.abort();
    let stats = e.stats().await;
    let by_reference = stats["requests"]["GET /v3/transactions/verify_by_reference"].as_u64().unwrap_or(0);
    let by_id = stats["requests"]["GET /v3/transactions/{id}/verify"].as_u64().unwrap_or(0);
    eprintln!(
        "unloaded {unloaded:?}, under a 1,000-visit flood {loaded:?}; flood cost {by_reference} calls, settlement {by_id}"
    );
    assert!(
        by_reference <= 5 * 2,
        "1,000 visits cost {by_reference} calls: at most one per pending checkout per interval"
    );
    assert_eq!(by_id, 10, "one verification per real payment, none for forged transaction ids");
    // Timing on a shared 2-core machine is noisy: the bound allows a second of slack (bench/return_flood.sh measures it).
    assert!(loaded <= unloaded * 2 + Duration::from_secs(1), "unloaded {unloaded:?}, loaded {loaded:?}");
}

/// A hold Sika cannot read stops the next approval in its currency with an
/// error (it used to count as zero, so the wallet could be overdrawn); a
/// two-approver threshold that does not read means two approvers.
async fn unreadable_money_stops_the_decision(e: Env) {
    let (_, key) = e.app.auth.create_api_key(&sika::audit::Actor::cli(), "po", "payouts").await.unwrap();
    let payout = |reference: &str| {
        json!({"reference": reference, "amount": "5000", "currency": "NGN", "bank_code": "044",
               "account_number": "0690000032", "beneficiary_name": "Pastor Bright"})
    };
    for r in ["hold-1", "hold-2"] {
        let res = e.app.client.post(e.app.url("/api/v1/payouts")).bearer_auth(&key).json(&payout(r)).send().await;
        assert_eq!(res.unwrap().status(), 202);
    }
    e.app.payouts.approve(&support::cli(), "hold-1", &support::checker("c1")).await.unwrap();
    let pool = e.app.db.store.pool_for_tests();
    sqlx::query("UPDATE payouts SET hold = 'five thousand' WHERE reference = 'hold-1'").execute(pool).await.unwrap();
    let second = e.app.payouts.approve(&support::cli(), "hold-2", &support::checker("c1")).await;
    let why = second.expect_err("an unreadable hold is an error, not zero").to_string();
    assert!(why.contains("does not read"), "{why}");
    let p = e.app.payouts.payout("hold-2").await.unwrap().unwrap();
    assert_eq!(p.status, sika::domain::PayoutStatus::AwaitingApproval, "nothing was queued");

    sqlx::query("INSERT INTO settings (key, value, updated_at) VALUES ('payouts.two_approvers_above.NGN', 'lots', 0)")
        .execute(pool)
        .await
        .unwrap();
    let res = e.app.client.post(e.app.url("/api/v1/payouts")).bearer_auth(&key).json(&payout("hold-3")).send().await;
    assert_eq!(res.unwrap().status(), 202);
    assert_eq!(e.app.payouts.payout("hold-3").await.unwrap().unwrap().approvals_needed, 2);
}

#[tokio::test]
async fn unreadable_money_stops_the_decision_on_sqlite() {
    unreadable_money_stops_the_decision(env().await).await;
}

#[tokio::test]
async fn unreadable_money_stops_the_decision_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    unreadable_money_stops_the_decision(env_on(db).await).await;
}
