//! Payouts against the emulator over real HTTP: checked and quoted before
//! they are accepted, sent only with the approval rule's consent, never sent
//! twice, final only on Flutterwave's own record.

use crate::support;

use crate::support::emulated::{Env, env, env_on};
use serde_json::{Value, json};
use sika::audit::Actor;
use sika::domain::PayoutStatus;
use sika::domain::payout::Approver;
use sika::store::ApprovalWrite;

fn checker(id: &str) -> Approver<'static> {
    support::checker(id)
}

async fn payouts_key(e: &Env, scopes: &str) -> String {
    e.app.auth.create_api_key(&Actor::cli(), "payouts", scopes).await.unwrap().1
}

async fn post(e: &Env, key: &str, path: &str, body: Value) -> (u16, Value) {
    let r = e.app.client.post(e.app.url(path)).bearer_auth(key).json(&body).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

async fn get(e: &Env, key: &str, path: &str) -> (u16, Value) {
    let r = e.app.client.get(e.app.url(path)).bearer_auth(key).send().await.unwrap();
    let status = r.status().as_u16();
    (status, r.json().await.unwrap_or(Value::Null))
}

/// A Nigerian bank payout to a test account that resolves.
fn ngn(reference: &str, amount: &str) -> Value {
    json!({"reference": reference, "amount": amount, "currency": "NGN", "bank_code": "044",
           "account_number": "0690000032", "beneficiary_name": "Pastor Bright", "narration": "Supplier invoice 12"})
}

async fn status(e: &Env, reference: &str) -> PayoutStatus {
    e.app.payouts.payout(reference).await.unwrap().unwrap().status
}

async fn transfers_created(e: &Env) -> u64 {
    e.stats().await["requests"]["POST /v3/transfers"].as_u64().unwrap_or(0)
}

/// The transfer Flutterwave holds for a reference.
async fn transfer_of(e: &Env, reference: &str) -> Value {
    let v: Value = e
        .http
        .get(format!("{}/v3/transfers?reference={reference}", e.emu.url()))
        .bearer_auth(sika_flw_key(e))
        .send()
        .await
        .unwrap()
        .json()
        .await
        .unwrap();
    v["data"][0].clone()
}

fn sika_flw_key(e: &Env) -> String {
    e.flw_key.clone()
}

async fn complete(e: &Env, transfer_id: i64, status: &str) {
    let r = e
        .http
        .post(format!("{}/_emulator/transfers/{transfer_id}/complete", e.emu.url()))
        .json(&json!({"status": status}))
        .send()
        .await
        .unwrap();
    assert!(r.status().is_success());
}

/// `transfer.completed` as Flutterwave sends it, signed.
async fn transfer_webhook(e: &Env, id: i64, reference: &str, status: &str) -> u16 {
    let body = json!({"event": "transfer.completed", "event.type": "Transfer",
                      "data": {"id": id, "reference": reference, "status": status, "amount": 1, "currency": "NGN"}});
    e.raw_webhook(body.to_string(), e.signed()).await
}

#[tokio::test]
async fn a_payout_is_checked_resolved_and_quoted_before_it_is_accepted() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let (code, v) = post(&e, &key, "/api/v1/payouts", ngn("po-1", "25000")).await;
    assert_eq!(code, 202, "{v}");
    assert_eq!(v["status"], "awaiting_approval");
    assert_eq!(
        (v["amount"].as_str(), v["fee"].as_str(), v["total"].as_str()),
        (Some("25000"), Some("26.875"), Some("25026.875"))
    );
    let b = &v["beneficiary"];
    assert_eq!(b["account_number"], "******0032", "masked");
    assert_eq!(b["resolved_name"], "Pastor Bright");
    assert_eq!((b["bank_name"].as_str(), b["name_mismatch"].as_bool()), (Some("Access Bank"), Some(false)));
    // Idempotent by reference.
    let (code, again) = post(&e, &key, "/api/v1/payouts", ngn("po-1", "25000")).await;
    assert_eq!((code, &again["reference"]), (202, &json!("po-1")));
    assert_eq!(post(&e, &key, "/api/v1/payouts", ngn("po-1", "26000")).await.0, 409);
    // A given name that differs from the account's is flagged for the approver.
    let mut other = ngn("po-2", "100");
    other["beneficiary_name"] = json!("Somebody Else");
    let (_, v) = post(&e, &key, "/api/v1/payouts", other).await;
    assert_eq!(v["beneficiary"]["name_mismatch"], true);
    // Refused before anything is recorded, each with its reason.
    for (body, says) in [
        (
            json!({"reference": "bad-1", "amount": "10", "currency": "NGN", "bank_code": "999", "account_number": "0690000032"}),
            "not a bank in NG",
        ),
        (
            json!({"reference": "bad-2", "amount": "10", "currency": "NGN", "bank_code": "044", "account_number": "0123456789"}),
            "could not be resolved",
        ),
        (
            json!({"reference": "bad-3", "amount": "10", "currency": "GHS", "beneficiary": {"bank_code": "GH280100", "account_number": "0031625807099"}}),
            "beneficiary.name",
        ),
        (
            json!({"reference": "bad-4", "amount": "10", "currency": "KES", "beneficiary": {"country": "KE", "bank_code": "MPS", "account_number": "254709929220"}}),
            "beneficiary.name",
        ),
        (
            json!({"reference": "bad-5", "amount": "10.5", "currency": "UGX", "beneficiary": {"bank_code": "MTN", "account_number": "256700000000", "name": "A B"}}),
            "whole number",
        ),
        (
            json!({"reference": "bad-6", "amount": "10", "currency": "NGN", "bank_code": "044", "account_number": "0690000032", "admin": true}),
            "unknown field",
        ),
    ] {
        let (code, v) = post(&e, &key, "/api/v1/payouts", body.clone()).await;
        assert_eq!(code, 400, "{body}");
        assert!(v["error"]["message"].as_str().unwrap().contains(says), "{v}");
    }
    assert!(e.app.payouts.payout("bad-2").await.unwrap().is_none());
    // Reading, listing, cancelling.
    let reader = payouts_key(&e, "read").await;
    assert_eq!(post(&e, &reader, "/api/v1/payouts", ngn("po-3", "1")).await.0, 403, "read cannot create");
    let (code, v) = get(&e, &reader, "/api/v1/payouts/po-1").await;
    assert_eq!((code, v["status"].as_str()), (200, Some("awaiting_approval")));
    let (_, page) = get(&e, &reader, "/api/v1/payouts?limit=1").await;
    assert_eq!(page["payouts"][0]["reference"], "po-2", "newest first");
    let cursor = page["next_cursor"].as_str().unwrap().to_string();
    let (_, page2) = get(&e, &reader, &format!("/api/v1/payouts?limit=1&cursor={cursor}")).await;
    assert_eq!(page2["payouts"][0]["reference"], "po-1");
    assert_eq!(get(&e, &reader, "/api/v1/payouts?cursor=garbage").await.0, 400);
    let (code, v) = post(&e, &key, "/api/v1/payouts/po-2/cancel", json!({})).await;
    assert_eq!((code, v["status"].as_str()), (200, Some("cancelled")));
    assert_eq!(post(&e, &key, "/api/v1/payouts/po-2/cancel", json!({})).await.0, 409, "only before approval");
}

/// Nobody who created a payout approves it; one approver completes it below
/// the threshold, two distinct ones above; only then is it sent, once.
#[tokio::test]
async fn maker_checker_and_the_threshold_for_two_approvers() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    e.app.db.store.set_setting("payouts.two_approvers_above.NGN", "100000").await.unwrap();
    post(&e, &key, "/api/v1/payouts", ngn("small-1", "5000")).await;
    post(&e, &key, "/api/v1/payouts", ngn("big-1", "200000")).await;
    // Created from the console by user "maker".
    let p = e.app.payouts.payout("small-1").await.unwrap().unwrap();
    assert_eq!(p.approvals_needed, 1);
    let ApprovalWrite::Queued(_) = e.app.payouts.approve(&support::cli(), "small-1", &checker("c1")).await.unwrap()
    else {
        panic!("one approver suffices below the threshold")
    };
    // Without a fresh code there is no approver at all (only `auth` makes the proof);
    // a role that may not approve is refused.
    let not_stepped_up = Approver { may_approve: false, ..checker("c2") };
    assert!(matches!(
        e.app.payouts.approve(&support::cli(), "big-1", &not_stepped_up).await.unwrap(),
        ApprovalWrite::Refused(_)
    ));
    assert!(matches!(
        e.app.payouts.approve(&support::cli(), "big-1", &checker("c1")).await.unwrap(),
        ApprovalWrite::Recorded { still_needed: 1 }
    ));
    assert!(
        matches!(
            e.app.payouts.approve(&support::cli(), "big-1", &checker("c1")).await.unwrap(),
            ApprovalWrite::Refused(_)
        ),
        "the same approver twice"
    );
    assert_eq!(status(&e, "big-1").await, PayoutStatus::AwaitingApproval);
    e.reset_stats().await;
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 1, "only the fully approved one");
    assert!(matches!(
        e.app.payouts.approve(&support::cli(), "big-1", &checker("c2")).await.unwrap(),
        ApprovalWrite::Queued(_)
    ));
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 1);
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 0, "nothing is sent twice");
    assert_eq!(transfers_created(&e).await, 2);
    assert_eq!(status(&e, "small-1").await, PayoutStatus::Submitted, "queued at Flutterwave is not paid");
    // A payout created by a user cannot be approved by that user.
    let mut by_user = e.app.payouts.payout("small-1").await.unwrap().unwrap();
    by_user.reference = "mine-1".into();
    by_user.created_by = "maker".into();
    by_user.status = PayoutStatus::AwaitingApproval;
    by_user.transfer_id = None;
    assert!(e.app.db.store.insert_payout(&by_user, &[], None).await.unwrap());
    assert!(
        matches!(e.app.payouts.approve(&support::cli(), "mine-1", &checker("maker")).await.unwrap(), ApprovalWrite::Refused(why) if why.contains("created"))
    );
}

/// A payout queued without the approvals the rule needs (a bug, a hand-edited
/// row) is not sent: the dispatcher re-checks the recorded approvals.
#[tokio::test]
async fn the_dispatcher_sends_nothing_without_the_approval_rules_consent() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    post(&e, &key, "/api/v1/payouts", ngn("sneaky-1", "5000")).await;
    sqlx::query("UPDATE payouts SET status = 'queued' WHERE reference = 'sneaky-1'")
        .execute(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    e.reset_stats().await;
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 0);
    assert_eq!(transfers_created(&e).await, 0, "no transfer without consent");
    let p = e.app.payouts.payout("sneaky-1").await.unwrap().unwrap();
    assert_eq!(p.status, PayoutStatus::AwaitingApproval);
    assert!(p.reason.unwrap().contains("approval rule"));
    // Approved by its own creator in the records: still not sent.
    sqlx::query("UPDATE payouts SET status = 'queued' WHERE reference = 'sneaky-1'")
        .execute(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    sqlx::query("INSERT INTO payout_approvals (reference, user_id, at) VALUES ('sneaky-1', $1, 0)")
        .bind(&p.created_by)
        .execute(e.app.db.store.pool_for_tests())
        .await
        .unwrap();
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 0);
    assert_eq!(transfers_created(&e).await, 0);
}

/// Final states come from Flutterwave's record, never from a webhook body:
/// a forged "SUCCESSFUL" changes nothing while the lookup says pending, a
/// "SUCCESSFUL" webhook for a transfer the lookup calls FAILED fails it.
#[tokio::test]
async fn a_transfer_is_final_only_on_flutterwaves_own_record() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let cipher = e.app.payments.cipher().clone();
    sika::payments::notify::set_endpoint(&e.app.db.store, &cipher, "https://shop.example/hook", "whsec").await.unwrap();
    for r in ["final-1", "final-2"] {
        post(&e, &key, "/api/v1/payouts", ngn(r, "5000")).await;
        e.app.payouts.approve(&support::cli(), r, &checker("c1")).await.unwrap();
    }
    e.app.payouts.dispatch(10).await.unwrap();
    let id1 = transfer_of(&e, "final-1").await["id"].as_i64().unwrap();
    let id2 = transfer_of(&e, "final-2").await["id"].as_i64().unwrap();
    // Forged: Flutterwave still says PENDING.
    assert_eq!(transfer_webhook(&e, id1, "final-1", "SUCCESSFUL").await, 200);
    e.process().await;
    assert_eq!(status(&e, "final-1").await, PayoutStatus::Submitted);
    // The webhook says SUCCESSFUL, the record says FAILED: failed.
    complete(&e, id2, "FAILED").await;
    transfer_webhook(&e, id2, "final-2", "SUCCESSFUL").await;
    e.process().await;
    let p2 = e.app.payouts.payout("final-2").await.unwrap().unwrap();
    assert_eq!(p2.status, PayoutStatus::Failed);
    assert!(p2.complete_message.unwrap().contains("DISBURSE FAILED"));
    assert!(p2.hold.is_zero(), "the hold is released");
    // Really successful now; the webhook (the legacy shape) triggers the lookup.
    complete(&e, id1, "SUCCESSFUL").await;
    let legacy =
        json!({"event.type": "Transfer", "transfer": {"id": id1, "reference": "final-1", "status": "SUCCESSFUL"}});
    e.raw_webhook(legacy.to_string(), e.signed()).await;
    e.process().await;
    assert_eq!(status(&e, "final-1").await, PayoutStatus::Successful);
    let events: Vec<String> =
        e.app.db.store.outbox_for("final-1").await.unwrap().into_iter().map(|o| o.event).collect();
    assert_eq!(events, ["payout.successful"]);
    assert_eq!(e.app.db.store.outbox_for("final-2").await.unwrap()[0].event, "payout.failed");
    // Later reversed by the bank: flagged, the shop told.
    let r = e.http.post(format!("{}/_emulator/transfers/{id1}/reverse", e.emu.url())).send().await.unwrap();
    assert!(r.status().is_success());
    let reversed =
        json!({"event": "transfer.reversed", "data": {"id": id1, "reference": "final-1", "status": "REVERSED"}});
    e.raw_webhook(reversed.to_string(), e.signed()).await;
    e.process().await;
    let p1 = e.app.payouts.payout("final-1").await.unwrap().unwrap();
    assert_eq!(p1.status, PayoutStatus::Reversed);
    assert!(p1.reason.unwrap().contains("review"));
    let events: Vec<String> =
        e.app.db.store.outbox_for("final-1").await.unwrap().into_iter().map(|o| o.event).collect();
    assert_eq!(events, ["payout.successful", "payout.reversed"]);
}

/// The create call changed Flutterwave, then answered 503: the payout is
/// `unknown`, found by its reference, never sent again — one transfer.
#[tokio::test]
async fn an_error_after_commit_makes_exactly_one_transfer() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    post(&e, &key, "/api/v1/payouts", ngn("eac-1", "5000")).await;
    e.app.payouts.approve(&support::cli(), "eac-1", &checker("c1")).await.unwrap();
    e.faults(json!({"error_after_commit_rate": 1.0})).await;
    e.reset_stats().await;
    e.app.payouts.dispatch(10).await.unwrap();
    assert_eq!(status(&e, "eac-1").await, PayoutStatus::Unknown);
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    for _ in 0..3 {
        e.app.payouts.dispatch(10).await.unwrap();
        e.app.payouts.follow(sika::store::now_ms() + 3_600_000).await.unwrap();
    }
    assert_eq!(transfers_created(&e).await, 1, "never re-sent");
    let p = e.app.payouts.payout("eac-1").await.unwrap().unwrap();
    assert_eq!(p.status, PayoutStatus::Submitted, "found by its reference");
    complete(&e, p.transfer_id.unwrap(), "SUCCESSFUL").await;
    e.app.payouts.follow(sika::store::now_ms() + 7_200_000).await.unwrap();
    assert_eq!(status(&e, "eac-1").await, PayoutStatus::Successful, "settled by lookup, no webhook needed");
}

/// Approval places a hold; one that would overdraw the balance (Flutterwave's,
/// less Sika's holds) is refused with the figures. A restricted wallet's
/// refusal fails the payout with Flutterwave's message.
#[tokio::test]
async fn holds_and_a_short_or_restricted_wallet() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let ghs = |r: &str, amount: &str| {
        json!({"reference": r, "amount": amount, "currency": "GHS",
               "beneficiary": {"bank_code": "GH280100", "account_number": "0031625807099", "name": "Kofi Mensah", "branch_code": "GH28010001"}})
    };
    // The GHS wallet holds 1,000,000: 600,000 + fee fits, then a second does not.
    assert_eq!(post(&e, &key, "/api/v1/payouts", ghs("gh-1", "600000")).await.0, 202);
    assert_eq!(post(&e, &key, "/api/v1/payouts", ghs("gh-2", "500000")).await.0, 202);
    assert!(matches!(
        e.app.payouts.approve(&support::cli(), "gh-1", &checker("c1")).await.unwrap(),
        ApprovalWrite::Queued(_)
    ));
    match e.app.payouts.approve(&support::cli(), "gh-2", &checker("c1")).await.unwrap() {
        ApprovalWrite::Short { available, held, amount: total } => {
            assert_eq!(
                (available.to_string(), held.to_string(), total.to_string()),
                ("1000000".into(), "600003".into(), "500003".into())
            );
        }
        other => panic!("the hold would overdraw: {other:?}"),
    }
    assert_eq!(status(&e, "gh-2").await, PayoutStatus::AwaitingApproval, "refused, not lost");
    // Refused at once (the later path, as the corpus shows it, is in `flutterwave_reality.rs`).
    e.faults(json!({"wallet_restricted": true, "transfer_refusals": "at_once"})).await;
    e.app.payouts.dispatch(10).await.unwrap();
    let p = e.app.payouts.payout("gh-1").await.unwrap().unwrap();
    assert_eq!(p.status, PayoutStatus::Failed);
    assert!(p.complete_message.unwrap().contains("restricted"));
    assert!(p.hold.is_zero());
    // With the hold released, the second fits.
    e.faults(json!({"wallet_restricted": false})).await;
    assert!(matches!(
        e.app.payouts.approve(&support::cli(), "gh-2", &checker("c2")).await.unwrap(),
        ApprovalWrite::Queued(_)
    ));
}

/// Concurrent approvals and two instances dispatching at once: one
/// transition, one transfer per reference (SQLite and PostgreSQL).
async fn concurrent_approvals_and_dispatchers_send_once(e: Env) {
    let key = payouts_key(&e, "payouts").await;
    e.app.db.store.set_setting("payouts.two_approvers_above.NGN", "100000").await.unwrap();
    for i in 0..5 {
        post(&e, &key, "/api/v1/payouts", ngn(&format!("race-{i}"), "150000")).await;
    }
    let mut tasks = Vec::new();
    for i in 0..5 {
        for who in ["a1", "a2", "a3", "a1"] {
            let p = e.app.payouts.clone();
            tasks.push(tokio::spawn(async move {
                p.approve(&support::cli(), &format!("race-{i}"), &checker(who)).await.unwrap()
            }));
        }
    }
    let mut queued = 0;
    for t in tasks {
        queued += usize::from(matches!(t.await.unwrap(), ApprovalWrite::Queued(_)));
    }
    assert_eq!(queued, 5, "each payout completed exactly once");
    for i in 0..5 {
        assert_eq!(
            e.app.db.store.payout_approvals(&format!("race-{i}")).await.unwrap().len(),
            2,
            "two approvers, no more"
        );
    }
    // A second instance: its own service over the same database and Flutterwave.
    let other = sika::payouts::Payouts::new(
        e.app.db.store.clone(),
        e.app.payments.cipher().clone(),
        e.app.payouts.flutterwave().clone(),
        e.app.auth.auditor.clone(),
    );
    e.reset_stats().await;
    let mut tasks = Vec::new();
    for _ in 0..4 {
        for p in [e.app.payouts.clone(), other.clone()] {
            tasks.push(tokio::spawn(async move { p.dispatch(10).await.unwrap() }));
        }
    }
    let mut sent = 0;
    for t in tasks {
        sent += t.await.unwrap();
    }
    assert_eq!(sent, 5);
    assert_eq!(transfers_created(&e).await, 5, "one transfer per reference");
}

#[tokio::test]
async fn concurrent_approvals_and_dispatchers_send_once_on_sqlite() {
    concurrent_approvals_and_dispatchers_send_once(env().await).await;
}

#[tokio::test]
async fn concurrent_approvals_and_dispatchers_send_once_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    concurrent_approvals_and_dispatchers_send_once(env_on(db).await).await;
}

/// Unapproved payouts expire; rejecting needs nothing but a reason and tells the shop.
#[tokio::test]
async fn unapproved_payouts_expire_and_rejections_are_final() {
    let clock = sika::clock::install_manual();
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    post(&e, &key, "/api/v1/payouts", ngn("old-1", "100")).await;
    post(&e, &key, "/api/v1/payouts", ngn("no-1", "100")).await;
    assert!(e.app.payouts.reject(&support::cli(), "no-1", "wrong supplier").await.unwrap());
    assert!(!e.app.payouts.reject(&support::cli(), "no-1", "again").await.unwrap());
    assert!(matches!(
        e.app.payouts.approve(&support::cli(), "no-1", &checker("c1")).await.unwrap(),
        ApprovalWrite::Refused(_)
    ));
    // Sika's clock moves on: not yet at 71 hours, expired past 72.
    clock.advance(std::time::Duration::from_secs(71 * 3600));
    assert_eq!(e.app.payouts.expire_unapproved(sika::store::now_ms()).await.unwrap(), 0);
    clock.advance(std::time::Duration::from_secs(2 * 3600));
    assert_eq!(e.app.payouts.expire_unapproved(sika::store::now_ms()).await.unwrap(), 1);
    assert_eq!(status(&e, "old-1").await, PayoutStatus::Expired);
    let p = e.app.payouts.payout("no-1").await.unwrap().unwrap();
    assert_eq!((p.status, p.reason.as_deref()), (PayoutStatus::Rejected, Some("wrong supplier")));
}

/// Saved beneficiaries are checked like a payout's destination, sealed at
/// rest, masked everywhere, and usable by id until deleted.
#[tokio::test]
async fn saved_beneficiaries_are_sealed_masked_and_usable_by_id() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let (code, b) = post(
        &e,
        &key,
        "/api/v1/beneficiaries",
        json!({"currency": "NGN", "bank_code": "044", "account_number": "0690000034", "name": "Chinedu Okafor"}),
    )
    .await;
    assert_eq!(code, 201, "{b}");
    assert_eq!(
        (b["account_number"].as_str(), b["resolved_name"].as_str()),
        (Some("******0034"), Some("Chinedu Okafor"))
    );
    let id = b["id"].as_str().unwrap().to_string();
    let (_, list) = get(&e, &key, "/api/v1/beneficiaries").await;
    assert_eq!(list["beneficiaries"][0]["id"], id.as_str());
    let (code, p) = post(
        &e,
        &key,
        "/api/v1/payouts",
        json!({"reference": "ben-1", "amount": "700", "currency": "NGN", "beneficiary_id": id}),
    )
    .await;
    assert_eq!(code, 202, "{p}");
    assert_eq!(
        (p["beneficiary"]["account_number"].as_str(), p["beneficiary"]["resolved_name"].as_str()),
        (Some("******0034"), Some("Chinedu Okafor"))
    );
    // The account number is nowhere in the database file in clear.
    let file = std::fs::read(e.app.db.url.trim_start_matches("sqlite://")).unwrap();
    let wal = std::fs::read(format!("{}-wal", e.app.db.url.trim_start_matches("sqlite://"))).unwrap_or_default();
    for bytes in [file, wal] {
        assert!(!bytes.windows(10).any(|w| w == b"0690000034"), "sealed at rest");
    }
    assert_eq!(
        post(
            &e,
            &key,
            "/api/v1/beneficiaries",
            json!({"currency": "NGN", "bank_code": "044", "account_number": "0123456789"})
        )
        .await
        .0,
        400,
        "unresolvable"
    );
    let del =
        e.app.client.delete(e.app.url(&format!("/api/v1/beneficiaries/{id}"))).bearer_auth(&key).send().await.unwrap();
    assert_eq!(del.status(), 204);
    assert_eq!(get(&e, &key, &format!("/api/v1/beneficiaries/{id}")).await.0, 404);
    let (code, v) = post(
        &e,
        &key,
        "/api/v1/payouts",
        json!({"reference": "ben-2", "amount": "700", "currency": "NGN", "beneficiary_id": id}),
    )
    .await;
    assert_eq!(code, 400, "{v}");
}

/// A failed payout is retried only as a new payout: a new reference, linked
/// to the old, with its own approval; the old one is never sent again.
#[tokio::test]
async fn a_failed_payout_is_retried_only_as_a_new_one() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    post(&e, &key, "/api/v1/payouts", ngn("fail-1", "5000")).await;
    e.app.payouts.approve(&support::cli(), "fail-1", &checker("c1")).await.unwrap();
    e.app.payouts.dispatch(10).await.unwrap();
    let id = transfer_of(&e, "fail-1").await["id"].as_i64().unwrap();
    complete(&e, id, "FAILED").await;
    e.app.payouts.follow(sika::store::now_ms() + 3_600_000).await.unwrap();
    assert_eq!(status(&e, "fail-1").await, PayoutStatus::Failed);
    assert!(e.app.payouts.retry_as_new(&support::cli(), "maker", "fail-1", "fail-1-r1").await.is_ok());
    let again = e.app.payouts.payout("fail-1-r1").await.unwrap().unwrap();
    assert_eq!((again.status, again.retry_of.as_deref()), (PayoutStatus::AwaitingApproval, Some("fail-1")));
    assert_eq!(
        e.app.payouts.reveal_account(&again).as_deref(),
        Some("0690000032"),
        "the same destination, sealed anew"
    );
    assert!(
        e.app.payouts.retry_as_new(&support::cli(), "maker", "fail-1-r1", "x-2").await.is_err(),
        "only a failed one"
    );
    e.reset_stats().await;
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 0, "not without its own approval");
    e.app.payouts.approve(&support::cli(), "fail-1-r1", &checker("c1")).await.unwrap();
    e.app.payouts.dispatch(10).await.unwrap();
    assert_eq!(transfer_of(&e, "fail-1-r1").await["reference"], "fail-1-r1");
    assert_eq!(transfers_created(&e).await, 1);
}

const HEADER: &str = "reference,amount,currency,country,bank_code,account_number,name,type,branch_code,narration\n";

/// Bulk payouts through the API: a bad file is refused whole with every row's
/// error; a good one is prepared item by item, approved as one, dispatched.
#[tokio::test]
async fn a_batch_is_checked_whole_prepared_approved_as_one_and_dispatched() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let bad = format!(
        "{HEADER}a-1,100,NGN,NG,044,0690000032,,,,\n@SUM(1),5,NGN,NG,044,0690000032,,,,\na-3,5,NGN,NG,999,0690000032,,,,\n"
    );
    let (code, v) = post(&e, &key, "/api/v1/payout-batches", json!({"csv": bad})).await;
    assert_eq!(code, 400);
    let msg = v["error"]["message"].as_str().unwrap();
    assert!(msg.contains("row 3") && msg.contains("formula"), "{msg}");
    assert!(e.app.payouts.payout("a-1").await.unwrap().is_none(), "nothing created");
    let good = format!(
        "\u{feff}{HEADER}b-1,1000,NGN,NG,044,0690000032,Pastor Bright,,,\"Rider pay, week 3\"\nb-2,2500,NGN,NG,044,0690000033,Someone Else,,,\nb-3,300,KES,KE,MPS,254709929220,Ann W,MOBILEMONEY,,\n"
    );
    let (code, v) = post(&e, &key, "/api/v1/payout-batches", json!({"title": "Week 3", "csv": good})).await;
    assert_eq!((code, v["status"].as_str()), (202, Some("preparing")), "{v}");
    let id = v["id"].as_str().unwrap().to_string();
    assert_eq!(e.app.payouts.prepare_batches().await.unwrap(), 3);
    let (_, v) = get(&e, &key, &format!("/api/v1/payout-batches/{id}")).await;
    assert_eq!(v["status"], "awaiting_approval");
    assert_eq!(v["totals"]["NGN"]["amount"], "3500");
    assert_eq!(v["name_mismatches"], 2, "b-2's and b-3's names differ from the accounts'");
    e.reset_stats().await;
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 0, "nothing before approval");
    let not_stepped_up = Approver { may_approve: false, ..checker("c1") };
    assert!(matches!(
        e.app.payouts.approve_batch(&support::cli(), &id, &not_stepped_up).await.unwrap(),
        sika::store::BatchApproval::Refused(_)
    ));
    match e.app.payouts.approve_batch(&support::cli(), &id, &checker("c1")).await.unwrap() {
        sika::store::BatchApproval::Done { queued: 3, still_awaiting: 0 } => {}
        other => panic!("{other:?}"),
    }
    assert_eq!(e.app.db.store.batch(&id).await.unwrap().unwrap().status.as_str(), "approved");
    assert_eq!(e.app.payouts.dispatch(10).await.unwrap(), 3);
    assert_eq!(transfers_created(&e).await, 3);
}

/// All or nothing at approval too: a batch that would overdraw a balance is
/// refused with the figures and nothing in it is approved; an item
/// Flutterwave refuses while preparing refuses the whole batch.
#[tokio::test]
async fn a_batch_is_approved_whole_or_not_at_all() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let rows: String =
        (0..3).map(|i| format!("gh-{i},400000,GHS,GH,GH280100,0031625807099,Kofi Mensah,,GH28010001,\n")).collect();
    let (_, v) = post(&e, &key, "/api/v1/payout-batches", json!({"csv": format!("{HEADER}{rows}")})).await;
    let id = v["id"].as_str().unwrap().to_string();
    e.app.payouts.prepare_batches().await.unwrap();
    match e.app.payouts.approve_batch(&support::cli(), &id, &checker("c1")).await.unwrap() {
        sika::store::BatchApproval::Overdraw { available, total, .. } => {
            assert_eq!((available.to_string(), total.to_string()), ("1000000".into(), "1200009".into()));
        }
        other => panic!("{other:?}"),
    }
    for i in 0..3 {
        assert!(e.app.db.store.payout_approvals(&format!("gh-{i}")).await.unwrap().is_empty(), "nothing recorded");
    }
    let (_, v) = post(
        &e,
        &key,
        "/api/v1/payout-batches",
        json!({"csv": format!("{HEADER}r-1,100,NGN,NG,044,0690000032,,,,\nr-2,100,NGN,NG,044,0123456789,,,,\n")}),
    )
    .await;
    let id = v["id"].as_str().unwrap().to_string();
    e.app.payouts.prepare_batches().await.unwrap();
    let (_, v) = get(&e, &key, &format!("/api/v1/payout-batches/{id}")).await;
    assert_eq!(v["status"], "refused");
    assert_eq!(v["errors"][0]["row"], 3);
    assert_eq!(status(&e, "r-1").await, PayoutStatus::Cancelled, "nothing of a refused batch is sent");
}

/// The console's upload: multipart on that route only, at most 1 MiB, a CSV
/// part, the CSRF token; errors listed by row; the export is formula-safe and audited.
#[tokio::test]
async fn the_console_upload_refuses_what_it_should() {
    use support::browser::{Browser, code};
    let e = env().await;
    let pw = crate::support::people::PASSWORD;
    let op = e.app.person(sika::auth::Role::Operator, "uploader@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("uploader@example.com", pw, &code(&op.secret, 0)).await.status, 303);
    let csrf = b.get("/payouts/batches").await.csrf();
    let cookie = format!("__Host-sika={}", b.session().unwrap());
    let upload = |csrf: String, file: Vec<u8>, file_type: &'static str| {
        let (client, url, cookie, origin) =
            (e.app.client.clone(), e.app.url("/payouts/batches"), cookie.clone(), e.app.base.clone());
        async move {
            let boundary = "sika-test-boundary";
            let mut body = Vec::new();
            body.extend(
                format!("--{boundary}\r\nContent-Disposition: form-data; name=\"csrf_token\"\r\n\r\n{csrf}\r\n")
                    .as_bytes(),
            );
            body.extend(format!("--{boundary}\r\nContent-Disposition: form-data; name=\"file\"; filename=\"p.csv\"\r\nContent-Type: {file_type}\r\n\r\n").as_bytes());
            body.extend(&file);
            body.extend(format!("\r\n--{boundary}--\r\n").as_bytes());
            let r = client
                .post(url)
                .header("cookie", cookie)
                .header("origin", origin)
                .header("content-type", format!("multipart/form-data; boundary={boundary}"))
                .body(body)
                .send()
                .await
                .unwrap();
            (
                r.status().as_u16(),
                r.headers().get("location").map(|l| l.to_str().unwrap().to_string()),
                r.text().await.unwrap(),
            )
        }
    };
    let good = format!("{HEADER}up-1,100,NGN,NG,044,0690000032,,,,\n").into_bytes();
    assert_eq!(upload(String::new(), good.clone(), "text/csv").await.0, 403, "no CSRF token");
    assert_eq!(upload(csrf.clone(), vec![b'a'; 1_200_000], "text/csv").await.0, 413, "over 1 MiB");
    let (_, _, page) = upload(csrf.clone(), b"{\"a\":1}".to_vec(), "application/json").await;
    assert!(page.contains("must be a CSV"));
    let bad = format!("{HEADER}x-1,100,NGN,NG,044,0690000032,,,,\nx-2,=1+1,NGN,NG,044,0690000032,,,,\n").into_bytes();
    let (_, _, page) = upload(csrf.clone(), bad, "text/csv").await;
    assert!(page.contains("id=\"row-errors\"") && page.contains("<td>3</td>"), "the row is named");
    let xml = e
        .app
        .client
        .post(e.app.url("/payouts/batches"))
        .header("cookie", &cookie)
        .header("content-type", "application/xml")
        .body("<a/>")
        .send()
        .await
        .unwrap();
    assert_eq!(xml.status(), 415, "only multipart here");
    let form_elsewhere = e
        .app
        .client
        .post(e.app.url("/payouts"))
        .header("cookie", &cookie)
        .header("content-type", "multipart/form-data; boundary=x")
        .body("--x--")
        .send()
        .await
        .unwrap();
    assert_eq!(form_elsewhere.status(), 415, "multipart nowhere else");
    let (status, location, _) = upload(csrf.clone(), good, "text/csv").await;
    assert_eq!(status, 303);
    let batch_page = location.unwrap();
    assert!(batch_page.starts_with("/payouts/batches/batch_"));
    e.app.payouts.prepare_batches().await.unwrap();
    let page = b.get(&batch_page).await;
    assert!(page.body.contains("awaiting_approval") && page.body.contains("NGN"), "the preview");
    assert!(!page.body.contains("id=\"approve-batch\""), "its uploader cannot approve it");
    let export = b.get("/payouts/export.csv").await;
    assert_eq!(export.headers["content-type"], "text/csv; charset=utf-8");
    assert!(export.body.starts_with("reference,status,amount") && export.body.contains("\"up-1\""));
    assert!(!export.body.contains("0690000032"), "accounts masked in the export");
    let audited = e
        .app
        .db
        .store
        .audit_search(&sika::store::AuditFilter { action: Some("payouts.export".into()), ..Default::default() }, 5)
        .await
        .unwrap();
    assert_eq!(audited.len(), 1);
}

/// In the console: the code used to sign in cannot approve (replay), a fresh
/// one does; the approver sees the resolved name, the fee and who created it.
#[tokio::test]
async fn console_approval_needs_a_fresh_code() {
    use support::browser::{Browser, code};
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    post(&e, &key, "/api/v1/payouts", ngn("console-1", "5000")).await;
    let pw = crate::support::people::PASSWORD;
    let ap = e.app.person(sika::auth::Role::Approver, "ap@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("ap@example.com", pw, &code(&ap.secret, -1)).await.status, 303);
    let page = b.get("/payouts/console-1").await;
    for shown in ["Pastor Bright", "NGN 10.75", "NGN 5,010.75", "API key", "******0032", "id=\"balance-after\""] {
        assert!(page.body.contains(shown), "the approver sees {shown}");
    }
    let csrf = page.csrf();
    let replay = b.post("/payouts/console-1/approve", &[("totp", &code(&ap.secret, -1)), ("csrf_token", &csrf)]).await;
    assert!(replay.body.contains("already used"));
    assert_eq!(status(&e, "console-1").await, PayoutStatus::AwaitingApproval);
    let ok = b.post("/payouts/console-1/approve", &[("totp", &code(&ap.secret, 0)), ("csrf_token", &csrf)]).await;
    assert!(ok.body.contains("queued for sending"), "{}", ok.body);
    assert_eq!(status(&e, "console-1").await, PayoutStatus::Queued);
    post(&e, &key, "/api/v1/payouts", ngn("other-2", "10")).await;
    let found = b.get("/payouts?q=sole").await;
    assert!(found.body.contains(">console-1<") && !found.body.contains(">other-2<"), "search by part of a reference");
    let queue = b.get("/payouts?status=awaiting_approval").await;
    assert!(queue.body.contains(">other-2<") && !queue.body.contains(">console-1<"), "the approvals queue");
    let revealed = b.post("/payouts/console-1/reveal", &[("csrf_token", &csrf)]).await;
    assert!(revealed.body.contains("<span id=\"account\">0690000032</span>"));
    let audit = e
        .app
        .db
        .store
        .audit_search(
            &sika::store::AuditFilter { action: Some("payout.reveal_account".into()), ..Default::default() },
            5,
        )
        .await
        .unwrap();
    assert_eq!(audit.len(), 1, "the reveal is audited");
}

/// An admin sets the two-approver threshold per currency in the settings;
/// payouts created after it follow it.
#[tokio::test]
async fn the_two_approver_threshold_is_a_setting() {
    use support::browser::{Browser, code};
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let pw = crate::support::people::PASSWORD;
    let admin = e.app.person(sika::auth::Role::Admin, "admin@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("admin@example.com", pw, &code(&admin.secret, 0)).await.status, 303);
    let csrf = b.get("/admin/settings").await.csrf();
    let bad =
        b.post("/admin/settings/thresholds", &[("currency", "UGX"), ("amount", "10.5"), ("csrf_token", &csrf)]).await;
    assert!(bad.body.contains("threshold must be an amount"));
    let ok =
        b.post("/admin/settings/thresholds", &[("currency", "NGN"), ("amount", "50,000"), ("csrf_token", &csrf)]).await;
    assert_eq!(ok.status, 303);
    let (_, small) = post(&e, &key, "/api/v1/payouts", ngn("t-small", "50000")).await;
    let (_, big) = post(&e, &key, "/api/v1/payouts", ngn("t-big", "50000.01")).await;
    assert_eq!((small["approvals_needed"].as_i64(), big["approvals_needed"].as_i64()), (Some(1), Some(2)));
    let audit = e
        .app
        .db
        .store
        .audit_search(
            &sika::store::AuditFilter { action: Some("settings.two_approvers_above".into()), ..Default::default() },
            5,
        )
        .await
        .unwrap();
    assert_eq!(audit.len(), 1);
}

/// A batch near the 5,000-row limit fits through the API (the bulk routes
/// take up to 1 MiB; everything else keeps the small body limit).
#[tokio::test]
async fn a_large_batch_fits_through_the_api() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    let rows: String =
        (0..4000).map(|i| format!("big-{i},100,NGN,NG,044,0690000032,Pastor Bright,,,Batch payment {i}\n")).collect();
    let csv = format!("{HEADER}{rows}");
    assert!(csv.len() > 200_000);
    let (code, v) = post(&e, &key, "/api/v1/payout-batches", json!({"csv": csv})).await;
    assert_eq!((code, v["items"].as_i64()), (202, Some(4000)), "{v}");
    let (code, _) = post(
        &e,
        &key,
        "/api/v1/payouts",
        json!({"reference": "x", "amount": 1, "currency": "NGN", "narration": "a".repeat(100_000)}),
    )
    .await;
    assert_eq!(code, 413, "other routes keep the small limit");
}

/// Claimed, then the process died before the request left: Flutterwave has no
/// transfer with the reference long after, so it goes out again — with the
/// same reference. Sent twice for real? Flutterwave refuses the duplicate
/// reference and the payout is looked up, not failed.
#[tokio::test]
async fn a_payout_claimed_but_never_sent_goes_out_once_with_its_reference() {
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    for r in ["lost-1", "twice-1"] {
        post(&e, &key, "/api/v1/payouts", ngn(r, "5000")).await;
        e.app.payouts.approve(&support::cli(), r, &checker("c1")).await.unwrap();
    }
    // lost-1: claimed (unknown), never sent.
    let pool = e.app.db.store.pool_for_tests();
    sqlx::query("UPDATE payouts SET status = 'unknown', next_check_at = 0 WHERE reference = 'lost-1'")
        .execute(pool)
        .await
        .unwrap();
    e.app.payouts.follow(sika::store::now_ms() + 60_000).await.unwrap();
    assert_eq!(status(&e, "lost-1").await, PayoutStatus::Unknown, "too early to tell");
    e.app.payouts.follow(sika::store::now_ms() + 10 * 60_000).await.unwrap();
    assert_eq!(status(&e, "lost-1").await, PayoutStatus::Queued, "never sent: queued again");
    e.reset_stats().await;
    e.app.payouts.dispatch(10).await.unwrap();
    assert_eq!(transfers_created(&e).await, 2, "lost-1 and twice-1, once each");
    assert_eq!(status(&e, "lost-1").await, PayoutStatus::Submitted);
    // twice-1: sent, but its record lost: sending again hits the duplicate reference.
    let original = transfer_of(&e, "twice-1").await["id"].as_i64().unwrap();
    sqlx::query("UPDATE payouts SET status = 'queued', transfer_id = NULL WHERE reference = 'twice-1'")
        .execute(pool)
        .await
        .unwrap();
    e.app.payouts.dispatch(10).await.unwrap();
    let p = e.app.payouts.payout("twice-1").await.unwrap().unwrap();
    assert_eq!(p.status, PayoutStatus::Unknown, "a taken reference is not a failure");
    sqlx::query("UPDATE payouts SET next_check_at = 0 WHERE reference = 'twice-1'").execute(pool).await.unwrap();
    e.app.payouts.follow(sika::store::now_ms()).await.unwrap();
    let p = e.app.payouts.payout("twice-1").await.unwrap().unwrap();
    assert_eq!((p.status, p.transfer_id), (PayoutStatus::Submitted, Some(original)), "found by its reference");
}

/// Five wrong codes when approving end the session; nothing is approved.
#[tokio::test]
async fn wrong_approval_codes_end_the_session() {
    use support::browser::{Browser, code};
    let e = env().await;
    let key = payouts_key(&e, "payouts").await;
    post(&e, &key, "/api/v1/payouts", ngn("cap-1", "100")).await;
    let pw = crate::support::people::PASSWORD;
    let ap = e.app.person(sika::auth::Role::Approver, "cap@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("cap@example.com", pw, &code(&ap.secret, 0)).await.status, 303);
    let csrf = b.get("/payouts/cap-1").await.csrf();
    for _ in 0..4 {
        let page = b.post("/payouts/cap-1/approve", &[("totp", "000000"), ("csrf_token", &csrf)]).await;
        assert!(page.body.contains("tries left"));
    }
    let last = b.post("/payouts/cap-1/approve", &[("totp", "000000"), ("csrf_token", &csrf)]).await;
    assert_eq!(last.location.as_deref(), Some("/login"));
    assert_eq!(b.get("/payouts").await.location.as_deref(), Some("/login?next=%2Fpayouts"));
    assert_eq!(status(&e, "cap-1").await, PayoutStatus::AwaitingApproval);
}

fn payout_form<'a>(amount: &'a str, narration: &'a str, csrf: &'a str) -> [(&'static str, &'a str); 8] {
    [
        ("reference", "form-1"),
        ("amount", amount),
        ("currency", "NGN"),
        ("country", "NG"),
        ("bank_code", "044"),
        ("account_number", "0690000032"),
        ("narration", narration),
        ("csrf_token", csrf),
    ]
}

/// The payout form is its own page; a refusal keeps what was typed and says
/// why beside the field, in a sentence; a created payout is confirmed.
#[tokio::test]
async fn the_payout_form_keeps_its_input_and_explains_beside_the_field() {
    use support::browser::{Browser, code};
    let e = env().await;
    let pw = crate::support::people::PASSWORD;
    let op = e.app.person(sika::auth::Role::Operator, "maker@example.com").await;
    let mut b = Browser::new(&e.app.base, e.app.client.clone());
    assert_eq!(b.login("maker@example.com", pw, &code(&op.secret, 0)).await.status, 303);
    let list = b.get("/payouts").await;
    assert!(list.body.contains(r#"id="new-payout" href="/payouts/new""#));
    assert!(!list.body.contains(r#"id="payout-amount""#), "the form is not under the list");
    let csrf = b.get("/payouts/new").await.csrf();
    let refused = b.post("/payouts", &payout_form("lots", "", &csrf)).await;
    assert_eq!(refused.status, 200);
    assert!(refused.body.contains(r#"<span class="field-error" id="amount-error">Enter the amount as a number"#));
    assert!(refused.body.contains(r#"value="form-1""#) && refused.body.contains(r#"value="0690000032""#), "input kept");
    let narration = b.post("/payouts", &payout_form("100", "<script>", &csrf)).await;
    assert!(narration.body.contains(r#"id="narration-error">May contain letters"#), "{}", narration.body);
    assert!(!narration.body.contains("narration:"), "no raw field names");
    let created = b.post("/payouts", &payout_form("100", "rent", &csrf)).await;
    assert_eq!(created.location.as_deref(), Some("/payouts/form-1"));
    let page = b.get("/payouts/form-1").await;
    assert!(page.body.contains("Payout created; it waits for an approver who is not you."));
    assert_eq!(status(&e, "form-1").await, PayoutStatus::AwaitingApproval);
}
