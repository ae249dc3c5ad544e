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
        settlement_grace_days: 3,
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

async fn raise_due(e: &Env, transaction_id: i64, due_in_ms: i64) -> i64 {
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks", e.emu.url()))
        .json(&json!({"transaction_id": transaction_id, "due_in_ms": due_in_ms, "webhook": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    r.json::<Value>().await.unwrap()["id"].as_i64().unwrap()
}

async fn listed(e: &Env, flw_ref: &str) -> Value {
    let url = format!("{}/chargebacks?flw_ref={flw_ref}", e.emu.base_url());
    let v: Value = e.http.get(url).bearer_auth(&e.flw_key).send().await.unwrap().json().await.unwrap();
    v["data"][0].clone()
}

fn pdf() -> Vec<u8> {
    b"%PDF-1.4\n% proof of delivery, signed by the customer\n".to_vec()
}

/// One person prepares the answer (decline, with a PDF judged by its content and
/// sealed at rest); the same person cannot send it; an approver with a fresh code
/// does; Sika uploads the evidence once and answers once; the evidence arrives
/// intact and the sealed copy is dropped.
async fn answered_by_two_people(db: support::TestDb) {
    use sika::domain::AnswerStatus;
    use sika::domain::chargeback::{answer, evidence};
    let e = env_on(db).await;
    let tx = e.paid("cb-ans", "1000").await;
    let id = raise(&e, tx).await["id"].as_i64().unwrap();
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let maker = e.app.person(sika::auth::Role::Operator, "maker@example.com").await;
    let actor = support::cli();
    let new =
        answer("decline", "Delivered on 2 December, signed for.", Some(evidence("pod.pdf", pdf()).unwrap())).unwrap();
    let a = e.app.payments.prepare_answer(&actor, &maker.id, id, new.clone()).await.unwrap();
    assert_eq!(a.status, AnswerStatus::AwaitingApproval);
    let sealed = a.evidence_enc.clone().unwrap();
    assert!(!sealed.contains("PDF") && !sealed.contains("proof of delivery"), "sealed at rest");
    assert!(
        matches!(
            e.app.payments.prepare_answer(&actor, &maker.id, id, new).await,
            Err(sika::payments::answers::PrepareError::Refused(_))
        ),
        "one answer at a time"
    );
    let own = e.app.payments.approve_answer(&actor, &a.reference, &support::checker(&maker.id)).await.unwrap();
    assert!(matches!(own, sika::store::AnswerWrite::Refused(ref why) if why.contains("created it")), "{own:?}");
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    assert_eq!(e.app.db.store.answer(&a.reference).await.unwrap().unwrap().status, AnswerStatus::AwaitingApproval);
    let ok = e.app.payments.approve_answer(&actor, &a.reference, &support::checker("approver-1")).await.unwrap();
    assert!(matches!(ok, sika::store::AnswerWrite::Queued(ref p) if p.approvers() == ["approver-1"]), "{ok:?}");
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    let sent = e.app.db.store.answer(&a.reference).await.unwrap().unwrap();
    assert_eq!((sent.status, sent.evidence_enc.is_none()), (AnswerStatus::Sent, true), "{sent:?}");
    let cb = e.app.db.store.chargeback(id).await.unwrap().unwrap();
    let at_flutterwave = listed(&e, &cb.facts.flw_ref).await;
    assert_eq!(at_flutterwave["status"], "declined");
    let link = at_flutterwave["meta"]["uploaded_proof"].as_str().unwrap().to_string();
    let uploaded = e.http.get(&link).send().await.unwrap().bytes().await.unwrap();
    assert_eq!(uploaded.to_vec(), pdf(), "the evidence arrived as it was uploaded");
    assert_eq!(cb.facts.status, "declined", "recorded from Flutterwave's reply");
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    let stats = e.stats().await;
    assert_eq!(stats["requests"]["PUT /v3/chargebacks/{id}"], 1, "answered once: {stats}");
    assert_eq!(stats["requests"]["POST /v3/upload_image"], 1, "uploaded once");
    for (action, outcome) in [
        ("chargeback.answer.prepare", "success"),
        ("chargeback.answer.approve", "success"),
        ("chargeback.answer.approve", "denied"),
    ] {
        let f = sika::store::AuditFilter {
            action: Some(action.into()),
            outcome: Some(outcome.into()),
            ..Default::default()
        };
        let found = e.app.db.store.audit_search(&f, 20).await.unwrap();
        assert!(found.iter().any(|x| x.target == format!("chargeback:{id}")), "{action} {outcome} audited");
    }
}

#[tokio::test]
async fn an_answer_is_prepared_by_one_and_sent_by_another_on_sqlite() {
    answered_by_two_people(support::sqlite().await).await;
}

#[tokio::test]
async fn an_answer_is_prepared_by_one_and_sent_by_another_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    answered_by_two_people(db).await;
}

/// An answer that would arrive after the due date is refused with the reason;
/// one approved too late is not sent; a reply that never came is looked up, and
/// the answer is never sent twice.
#[tokio::test]
async fn late_answers_are_refused_and_unknown_ones_looked_up_not_resent() {
    use sika::domain::AnswerStatus;
    use sika::domain::chargeback::answer;
    let e = env_on(support::sqlite().await).await;
    let actor = support::cli();
    let tx = e.paid("cb-late", "300").await;
    let soon = raise_due(&e, tx, 30_000).await;
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let late = e.app.payments.prepare_answer(&actor, "maker", soon, answer("accept", "ok", None).unwrap()).await;
    assert!(
        matches!(late, Err(sika::payments::answers::PrepareError::Refused(ref why)) if why.contains("due date")),
        "{late:?}"
    );

    // Approved after its due date (Sika's clock moved on): refused, then expired unsent.
    let tx = e.paid("cb-slow", "300").await;
    let slow = raise_due(&e, tx, 10 * 60_000).await;
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let a = e.app.payments.prepare_answer(&actor, "maker", slow, answer("accept", "ok", None).unwrap()).await.unwrap();
    let clock = sika::clock::install_manual();
    clock.advance(std::time::Duration::from_secs(10 * 60));
    let w = e.app.payments.approve_answer(&actor, &a.reference, &support::checker("approver-1")).await.unwrap();
    assert!(matches!(w, sika::store::AnswerWrite::Refused(ref why) if why.contains("late")), "{w:?}");
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    assert_eq!(e.app.db.store.answer(&a.reference).await.unwrap().unwrap().status, AnswerStatus::Expired);
    clock.set(sika::clock::Clock::now_ms(&sika::clock::SystemClock));

    // No definite reply (the change happened, then a 503): looked up, found answered, never re-sent.
    let tx = e.paid("cb-lost-reply", "300").await;
    let id = raise(&e, tx).await["id"].as_i64().unwrap();
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let a = e
        .app
        .payments
        .prepare_answer(&actor, "maker", id, answer("accept", "refund them", None).unwrap())
        .await
        .unwrap();
    e.app.payments.approve_answer(&actor, &a.reference, &support::checker("approver-1")).await.unwrap();
    e.faults(json!({"error_after_commit_rate": 1.0})).await;
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    let row = e.app.db.store.answer(&a.reference).await.unwrap().unwrap();
    assert_eq!((row.status, row.sent_at.is_some()), (AnswerStatus::Unknown, true));
    e.faults(json!({"error_after_commit_rate": 0.0})).await;
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    assert_eq!(e.app.db.store.answer(&a.reference).await.unwrap().unwrap().status, AnswerStatus::Sent);
    assert_eq!(e.stats().await["requests"]["PUT /v3/chargebacks/{id}"], 1, "never answered twice");
}

/// A multipart answer as a browser sends it: the fields, then the file.
fn answer_form(csrf: &str, action: &str, comment: &str, file: Option<(&str, &[u8])>) -> (String, Vec<u8>) {
    let boundary = "sika-test-boundary-7f3a";
    let mut body = Vec::new();
    for (name, value) in [("csrf_token", csrf), ("action", action), ("comment", comment)] {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"{name}\"\r\n\r\n{value}\r\n").as_bytes(),
        );
    }
    if let Some((name, bytes)) = file {
        body.extend(
            format!("--{boundary}\r\nContent-Disposition: form-data; name=\"evidence\"; filename=\"{name}\"\r\nContent-Type: application/pdf\r\n\r\n")
                .as_bytes(),
        );
        body.extend(bytes);
        body.extend(b"\r\n");
    }
    body.extend(format!("--{boundary}--\r\n").as_bytes());
    (format!("multipart/form-data; boundary={boundary}"), body)
}

/// In the console: an operator prepares a declined answer with its evidence (no CSRF
/// token, a file that is not what its name says and an oversized one are each
/// refused); an approver opens the evidence (audited), sends it with a fresh code; a
/// replayed code is refused; a viewer may not open the evidence.
#[tokio::test]
async fn the_console_prepares_and_sends_an_answer() {
    use sika::auth::Role;
    let e = env_on(support::sqlite().await).await;
    let tx = e.paid("cb-console", "800").await;
    let id = raise(&e, tx).await["id"].as_i64().unwrap();
    e.app.payments.poll_chargebacks(5).await.unwrap();
    let (_, mut op) = e.app.signed_in(Role::Operator, "op@example.com").await;
    let page = op.get(&format!("/disputes/{id}")).await;
    assert!(page.body.contains(r#"id="prepare-answer""#), "the operator may prepare");
    let csrf = page.csrf();
    let cookie = format!("__Host-sika={}", op.session().unwrap());
    let post = |csrf: String, action: &'static str, file: Option<(&'static str, Vec<u8>)>| {
        let (client, url, cookie, origin) =
            (e.app.client.clone(), e.app.url(&format!("/disputes/{id}/answer")), cookie.clone(), e.app.base.clone());
        async move {
            let (kind, body) =
                answer_form(&csrf, action, "Delivered and signed for.", file.as_ref().map(|(n, b)| (*n, b.as_slice())));
            let r = client
                .post(url)
                .header("cookie", cookie)
                .header("origin", origin)
                .header("content-type", kind)
                .body(body);
            let r = r.send().await.unwrap();
            (r.status().as_u16(), r.text().await.unwrap())
        }
    };
    assert_eq!(post(String::new(), "decline", Some(("pod.pdf", pdf()))).await.0, 403, "no CSRF token");
    let (_, page) = post(csrf.clone(), "decline", Some(("pod.pdf", b"<html><script>x</script>".to_vec()))).await;
    assert!(page.contains("not a PDF, PNG or JPEG"), "{page}");
    let mut big = b"%PDF-1.4".to_vec();
    big.resize(1_300_000, b' ');
    assert_eq!(post(csrf.clone(), "decline", Some(("big.pdf", big))).await.0, 413, "over the cap");
    let (_, page) = post(csrf.clone(), "decline", None).await;
    assert!(page.contains("declining needs evidence"), "{page}");
    assert!(e.app.payments.answers_for(id).await.unwrap().is_empty(), "nothing refused was kept");
    let (status, page) = post(csrf.clone(), "decline", Some(("pod.pdf", pdf()))).await;
    assert_eq!(status, 200);
    assert!(page.contains("Prepared: an approver must send it"), "{page}");
    let reference = e.app.payments.answers_for(id).await.unwrap()[0].0.reference.clone();
    assert!(!op.get(&format!("/disputes/{id}")).await.body.contains("/approve"), "the preparer has no send button");

    // The approver reads the evidence (audited), then sends it with a fresh code; the code cannot be used again.
    let (ap, mut b) = e.app.signed_in_at(Role::Approver, "ap@example.com", -1).await;
    let evidence_path = format!("/disputes/{id}/answers/{reference}/evidence");
    let file = b.get(&evidence_path).await;
    assert_eq!((file.status, file.headers["content-type"].to_str().unwrap()), (200, "application/pdf"));
    assert!(file.headers["content-disposition"].to_str().unwrap().starts_with("attachment"));
    assert_eq!(file.body.as_bytes(), pdf().as_slice());
    let f = sika::store::AuditFilter { action: Some("chargeback.evidence.view".into()), ..Default::default() };
    assert_eq!(e.app.db.store.audit_search(&f, 5).await.unwrap().len(), 1, "the reading is audited");
    let page = b.get(&format!("/disputes/{id}")).await;
    assert!(page.body.contains("Disputes (1 to send)"), "the approver is told in the navigation");
    let csrf = page.csrf();
    let code = ap.code(0);
    let approve = format!("/disputes/{id}/answers/{reference}/approve");
    let sent = b.post(&approve, &[("totp", &code), ("csrf_token", &csrf)]).await;
    assert!(sent.body.contains("Approved: the answer is being sent"), "{}", sent.body);
    let again = b.post(&approve, &[("totp", &code), ("csrf_token", &csrf)]).await;
    assert!(again.body.contains("already used"), "a replayed code is refused");
    e.app.payments.work_answers(sika::clock::now_ms()).await.unwrap();
    let page = b.get(&format!("/disputes/{id}")).await;
    assert!(page.body.contains("Sent to Flutterwave"), "{}", page.body);
    assert!(page.body.contains(r#"data-status="declined""#), "Flutterwave's reply recorded");
    assert_eq!(b.get(&evidence_path).await.status, 404, "the sealed copy is gone once sent");

    // A viewer reads the dispute but not the evidence.
    let (_, mut viewer) = e.app.signed_in(Role::Viewer, "viewer@example.com").await;
    assert_eq!(viewer.get(&format!("/disputes/{id}")).await.status, 200);
    assert_eq!(viewer.get(&evidence_path).await.status, 403);
}
