//! Settlements reconciled against the emulator over real HTTP: the poller reads
//! Flutterwave's settlements and their lines once; a clean settlement reports
//! nothing; each drilled discrepancy is reported with what is wrong; a paid
//! checkout no settlement pays is reported after the grace days; the money
//! report adds up on a generated month of payments, refunds, chargebacks and
//! payouts, and says so when it does not. SQLite and PostgreSQL.

use crate::support;

use std::collections::BTreeSet;

use crate::support::emulated::{Env, env_on};
use rust_decimal::Decimal;
use serde_json::{Value, json};
use sika::domain::settlement::Discrepancy;

const DAY: i64 = 86_400_000;

async fn settle(e: &Env, drill: Option<&str>) -> Value {
    let body = match drill {
        Some(d) => json!({"drill": d}),
        None => json!({}),
    };
    let r = e.http.post(format!("{}/_emulator/settlements", e.emu.url())).json(&body).send().await.unwrap();
    assert_eq!(r.status(), 201);
    r.json().await.unwrap()
}

async fn flw_get(e: &Env, path: &str) -> Value {
    let r = e.http.get(format!("{}/v3{path}", e.emu.url())).bearer_auth(&e.flw_key).send().await.unwrap();
    assert_eq!(r.status(), 200, "{path}");
    r.json().await.unwrap()
}

fn dec(v: &Value) -> Decimal {
    v.to_string().trim_matches('"').parse().unwrap_or_else(|_| panic!("not an amount: {v}"))
}

fn kinds(found: &[Discrepancy]) -> Vec<&'static str> {
    found.iter().map(Discrepancy::kind).collect()
}

async fn clean_and_drilled(db: support::TestDb) {
    let e = env_on(db).await;
    let s = &e.app.settlements;
    for (r, amount) in [("st-1", "1000"), ("st-2", "150000"), ("st-3", "2500")] {
        e.paid(r, amount).await;
    }
    let out = e.app.payments.refund("st-2", Decimal::from(20_000), "returned", "u1", None).await.unwrap();
    assert!(matches!(out, sika::payments::RefundOutcome::Completed(_)), "{out:?}");
    let tx3 = e.app.db.store.checkout("st-3").await.unwrap().unwrap().transaction_id.unwrap();
    let r = e
        .http
        .post(format!("{}/_emulator/chargebacks", e.emu.url()))
        .json(&json!({"transaction_id": tx3, "amount": 500, "webhook": false}))
        .send()
        .await
        .unwrap();
    assert_eq!(r.status(), 201);
    e.app.payments.poll_chargebacks(5).await.unwrap();

    // A clean settlement: three lines, each matched, a refund and a chargeback Sika knows.
    let made = settle(&e, None).await;
    let id = made["settlements"][0]["id"].as_i64().unwrap();
    let now = sika::clock::now_ms();
    let polled = s.poll(now, 5).await.unwrap();
    assert_eq!((polled.seen, polled.new, polled.lines_read, polled.complete), (1, 1, 1, true), "{polled:?}");
    let (row, lines, wrong) = s.one(id).await.unwrap().expect("stored");
    assert!(wrong.is_empty(), "{wrong:?}");
    assert_eq!(lines.len(), 3);
    assert!(lines.iter().all(|l| l.checkout_reference.is_some()));
    assert_eq!(row.facts.totals.net, dec(&made["settlements"][0]["net_amount"]), "stored as sent");
    assert_eq!(row.facts.totals.refund, Decimal::from(20_000));
    assert_eq!(row.facts.totals.chargeback, Decimal::from(500));
    assert!(s.discrepancies(now).await.unwrap().is_empty());
    assert!(s.discrepancies(now + 10 * DAY).await.unwrap().is_empty(), "everything paid was settled");
    let timeline = e.app.db.store.checkout_events("st-1").await.unwrap();
    assert!(
        timeline.iter().any(|(_, kind, detail)| kind == "settled" && detail.contains(&id.to_string())),
        "{timeline:?}"
    );
    let again = s.poll(now, 5).await.unwrap();
    assert_eq!((again.new, again.lines_read), (0, 0), "read once");

    // Each drill is reported as what it is.
    let mut reported = BTreeSet::new();
    for (n, (drill, expected)) in [
        ("drop_line", "not_settled"),
        ("foreign_line", "line_without_payment"),
        ("change_amount", "amount_differs"),
        ("foreign_refund", "unknown_refund"),
        ("foreign_chargeback", "unknown_chargeback"),
    ]
    .into_iter()
    .enumerate()
    {
        let reference = format!("drill-{n}");
        e.paid(&reference, "3000").await;
        let paid_at = sika::clock::now_ms();
        let made = settle(&e, Some(drill)).await;
        let id = made["settlements"][0]["id"].as_i64().unwrap();
        s.poll(now, 5).await.unwrap();
        let later = s.discrepancies(paid_at + 4 * DAY).await.unwrap();
        let mine: Vec<&Discrepancy> = later
            .iter()
            .filter(|d| d.settlement_id() == Some(id) || d.reference() == Some(reference.as_str()))
            .collect();
        assert_eq!(mine.iter().map(|d| d.kind()).collect::<Vec<_>>(), [expected], "{drill}: {later:?}");
        match mine[0] {
            Discrepancy::NotSettled { reference: r, days, .. } => {
                assert_eq!((r.as_str(), *days), (reference.as_str(), 4));
                let today = s.discrepancies(now).await.unwrap();
                assert!(!kinds(&today).contains(&"not_settled"), "not within the grace days: {today:?}");
            }
            Discrepancy::AmountDiffers { settled, verified, reference: r, .. } => {
                assert_eq!((*verified - *settled, r.as_str()), (Decimal::ONE, reference.as_str()));
            }
            Discrepancy::LineWithoutPayment { tx_ref, .. } => assert!(tx_ref.starts_with("foreign-")),
            other => assert!(!other.describe().is_empty()),
        }
        reported.insert(expected);
    }
    assert_eq!(reported.len(), 5);
    let text = sika::metrics::scrape(&sika::metrics::Sources {
        store: &e.app.db.store,
        workers: &sika::jobs::Health::default(),
        flutterwave: e.app.payments.flutterwave(),
        settlement_grace_days: 3,
    })
    .await
    .unwrap();
    assert!(text.contains("sika_settlement_lines_unmatched 1"), "the foreign line: {text}");
    assert!(text.contains("sika_settlement_lines_pending 0"));
    assert!(text.contains("sika_settlements_not_settled 0"), "the dropped one is within its grace days");
}

#[tokio::test]
async fn a_clean_settlement_reports_nothing_and_each_drill_is_reported_on_sqlite() {
    clean_and_drilled(support::sqlite().await).await;
}

#[tokio::test]
async fn a_clean_settlement_reports_nothing_and_each_drill_is_reported_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    clean_and_drilled(db).await;
}

/// A settlement list that gives no definite answer stores nothing and the pass says it is not complete.
#[tokio::test]
async fn an_indefinite_list_changes_nothing_and_is_tried_again() {
    let e = env_on(support::sqlite().await).await;
    e.paid("ind-1", "1000").await;
    settle(&e, None).await;
    e.faults(json!({"error_rate": 1.0})).await;
    let now = sika::clock::now_ms();
    let polled = e.app.settlements.poll(now, 5).await.unwrap();
    assert_eq!((polled.seen, polled.complete), (0, false));
    assert!(e.app.settlements.due(now), "a pass that did not finish leaves the day's pass due");
    e.faults(json!({"error_rate": 0.0})).await;
    let polled = e.app.settlements.poll(now, 5).await.unwrap();
    assert_eq!((polled.new, polled.lines_read, polled.complete), (1, 1, true));
    assert!(!e.app.settlements.due(now + 3_600_000), "one complete pass a day");
    assert!(e.app.settlements.due(now + DAY));
}

/// A month, day by day on both clocks: payments (some with stamp duty, some by
/// bank transfer, one where the customer bore the fee), refunds, chargebacks,
/// payouts, and Flutterwave's next-day settlements. The report's figures equal
/// the emulator's own records, and everything in it adds up — until a settled
/// amount differs from verify, which it then shows.
async fn a_month_adds_up(db: support::TestDb) {
    let clock = sika::clock::install_manual();
    let e = env_on(db).await;
    let (_, payout_key) = e.app.auth.create_api_key(&support::cli(), "finance", "payouts").await.unwrap();
    let s = &e.app.settlements;
    let start = sika::clock::now_ms();
    let (mut collected, mut refunded, mut charged_back, mut paid_out) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, Decimal::ZERO);
    let mut paid = Vec::new();
    let mut seed = 7u64;
    let mut next = |n: u64| {
        seed = seed.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
        (seed >> 33) % n
    };
    for day in 0..30 {
        for k in 0..2 {
            let reference = format!("m{day}-{k}");
            let amount =
                Decimal::from(500 + 500 * next(40)) + if next(6) == 0 { Decimal::from(100_000) } else { Decimal::ZERO };
            e.checkout(&reference, &amount.to_string(), "NGN").await;
            let overrides = match next(5) {
                0 => json!({"payment_type": "bank_transfer"}),
                1 => json!({"customer_bears_fee": true}),
                _ => json!({}),
            };
            let id = e.pay(&reference, "successful", overrides).await;
            e.app.payments.verify_and_apply(id).await.unwrap();
            collected += amount;
            paid.push((reference, id, amount));
        }
        if day % 4 == 1 {
            let (reference, _, amount) = paid[paid.len() - 3].clone();
            let part = (amount / Decimal::from(4)).round_dp(0);
            let out = e.app.payments.refund(&reference, part, "returned", "u1", None).await.unwrap();
            assert!(matches!(out, sika::payments::RefundOutcome::Completed(_)), "{out:?}");
            refunded += part;
        }
        if day % 7 == 3 {
            let (_, id, _) = paid[paid.len() - 2].clone();
            let r = e
                .http
                .post(format!("{}/_emulator/chargebacks", e.emu.url()))
                .json(&json!({"transaction_id": id, "amount": 300, "webhook": false}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 201);
            e.app.payments.poll_chargebacks(5).await.unwrap();
            charged_back += Decimal::from(300);
        }
        if day % 6 == 2 {
            let reference = format!("po-{day}");
            let amount = Decimal::from(1000 + 250 * next(8));
            let body = json!({"reference": reference, "amount": amount.to_string(), "currency": "NGN", "bank_code": "044",
                              "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
            let r = e
                .app
                .client
                .post(e.app.url("/api/v1/payouts"))
                .bearer_auth(&payout_key)
                .json(&body)
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 202);
            e.app.payouts.approve(&support::cli(), &reference, &support::checker("c1")).await.unwrap();
            e.app.payouts.dispatch(10).await.unwrap();
            let transfer = e.app.payouts.payout(&reference).await.unwrap().unwrap().transfer_id.expect("sent");
            let r = e
                .http
                .post(format!("{}/_emulator/transfers/{transfer}/complete", e.emu.url()))
                .json(&json!({"status": "SUCCESSFUL"}))
                .send()
                .await
                .unwrap();
            assert_eq!(r.status(), 200);
            e.app.payouts.follow(sika::clock::now_ms() + 3_600_000).await.unwrap();
            let p = e.app.payouts.payout(&reference).await.unwrap().unwrap();
            assert_eq!(p.status, sika::domain::PayoutStatus::Successful);
            paid_out += amount;
        }
        clock.advance(std::time::Duration::from_millis(DAY as u64));
        e.advance_emulator(DAY).await;
        let polled = s.poll(sika::clock::now_ms(), 10).await.unwrap();
        assert!(polled.complete, "{polled:?}");
    }
    let end = start + 30 * DAY;
    let report = s.report(sika::clock::now_ms(), start, end).await.unwrap();
    assert_eq!(report.len(), 1, "one currency");
    let r = &report[0];
    assert_eq!((r.collected.amount, r.collected.count), (collected, 60));
    assert_eq!(r.refunded.amount, refunded);
    assert_eq!(r.charged_back.amount, charged_back);
    assert_eq!(r.paid_out.amount, paid_out);

    // Flutterwave's own records: the settlements made in the period, and what was still to settle at its end.
    let (mut settled, mut fees, mut netted, mut in_period) =
        (Decimal::ZERO, Decimal::ZERO, Decimal::ZERO, BTreeSet::new());
    let mut settled_ids = BTreeSet::new();
    for page in 1..=10 {
        let list = flw_get(&e, &format!("/settlements?page={page}")).await;
        for row in list["data"].as_array().unwrap() {
            let at = flutterwave::iso_millis(row["created_at"].as_str().unwrap()).unwrap();
            let one = flw_get(&e, &format!("/settlements/{}", row["id"])).await;
            for l in one["data"]["transactions"].as_array().unwrap() {
                if at < end {
                    settled_ids.insert(l["id"].as_i64().unwrap());
                }
                if at >= start && at < end {
                    fees += dec(&l["app_fee"]) + dec(&l["merchant_fee"]) + dec(&l["stampduty_charge"]);
                }
            }
            if at >= start && at < end {
                settled += dec(&row["net_amount"]);
                netted += dec(&row["refund"]);
                in_period.insert(row["id"].as_i64().unwrap());
            }
        }
        if list["data"].as_array().unwrap().len() < 10 {
            break;
        }
    }
    assert!(in_period.len() >= 25, "a settlement most days: {}", in_period.len());
    assert_eq!((r.settled.amount, r.settled.count), (settled, i64::try_from(in_period.len()).unwrap()));
    assert_eq!(r.fees.amount, fees);
    let mut to_settle = Decimal::ZERO;
    for (_, id, _) in paid.iter().filter(|(_, id, _)| !settled_ids.contains(id)) {
        to_settle += dec(&flw_get(&e, &format!("/transactions/{id}/verify")).await["data"]["amount_settled"]);
    }
    assert!(to_settle > Decimal::ZERO, "the last day's payments wait for the next settlement");
    assert_eq!((r.to_settle.amount, r.to_settle_unknown), (to_settle, 0));
    assert_eq!(r.netted_refunds, netted);
    assert!(netted > Decimal::ZERO && netted <= refunded, "refunds are netted by the next settlement");
    assert!(r.adds_up(), "{:#?}", r.checks);
    assert_eq!(r.checks.len(), 6);

    // A settled amount that differs from verify does not add up, and says by how much.
    e.paid("late-1", "4000").await;
    settle(&e, Some("change_amount")).await;
    s.poll(sika::clock::now_ms(), 10).await.unwrap();
    let later = s.report(sika::clock::now_ms(), start, sika::clock::now_ms() + DAY).await.unwrap();
    assert!(!later[0].adds_up());
    let failing: Vec<_> = later[0].checks.iter().filter(|c| !c.holds()).collect();
    assert_eq!(failing.len(), 1, "{failing:?}");
    assert!(failing[0].what.contains("verify"));
    assert_eq!(failing[0].difference(), -Decimal::ONE);
    assert_eq!(later[0].discrepancies, 1);
}

#[tokio::test]
async fn the_money_report_adds_up_on_a_generated_month_on_sqlite() {
    a_month_adds_up(support::sqlite().await).await;
}

#[tokio::test]
async fn the_money_report_adds_up_on_a_generated_month_on_postgres() {
    let Some(db) = support::postgres().await else { return };
    a_month_adds_up(db).await;
}

/// The finance team's view: the settlements list, a settlement with its lines
/// and their checkouts, the discrepancies, the money report, and CSV exports
/// that are formula-safe and audited. Signed out, none of it is shown.
#[tokio::test]
async fn the_console_shows_settlements_discrepancies_and_the_report_and_audits_exports() {
    let e = env_on(support::sqlite().await).await;
    e.paid("ui-1", "1000").await;
    e.paid("ui-2", "2500").await;
    let clean = settle(&e, None).await["settlements"][0]["id"].as_i64().unwrap();
    e.paid("ui-3", "3000").await;
    let foreign = settle(&e, Some("foreign_line")).await["settlements"][0]["id"].as_i64().unwrap();
    e.app.settlements.poll(sika::clock::now_ms(), 5).await.unwrap();

    let (_, mut b) = e.app.signed_in(sika::auth::Role::Viewer, "finance@example.com").await;
    assert!(b.get("/").await.body.contains(r#"href="/settlements""#), "in the navigation");
    let list = b.get("/settlements").await;
    assert_eq!(list.status, 200);
    assert!(
        list.body.contains(&format!(r#"id="settlement-{clean}""#))
            && list.body.contains(&format!(r#"id="settlement-{foreign}""#))
    );
    assert!(list.body.contains("Discrepancies (1)"), "{}", list.body);
    let bad = b.get("/settlements?from=2026-02-30").await;
    assert!(bad.body.contains("The from date must be a date such as 2026-11-29."));

    let page = b.get(&format!("/settlements/{clean}")).await;
    assert!(page.body.contains(r#"id="clean""#), "{}", page.body);
    assert!(
        page.body.contains(r#"<a href="/payments/ui-1">ui-1</a>"#)
            && page.body.contains(r#"<a href="/payments/ui-2">ui-2</a>"#)
    );
    let page = b.get(&format!("/settlements/{foreign}")).await;
    assert!(page.body.contains(r#"data-kind="line_without_payment""#), "{}", page.body);
    assert!(page.body.contains("no payment of ours"));
    assert_eq!(b.get("/settlements/999999").await.status, 404);
    assert_eq!(b.get("/settlements/not-a-number").await.status, 404);

    let problems = b.get("/settlements/discrepancies").await;
    assert!(problems.body.contains(r#"data-kind="line_without_payment""#));
    let report = b.get("/reports/money").await;
    assert!(report.body.contains(r#"id="report-NGN""#), "{}", report.body);
    assert!(report.body.contains(r#"id="does-not-add-up-NGN""#), "a foreign line is a discrepancy: {}", report.body);
    assert!(report.body.contains("NGN 6,500.00"), "collected: {}", report.body);

    let csv = b.get("/settlements/export.csv").await;
    assert_eq!(csv.status, 200);
    assert!(csv.headers["content-disposition"].to_str().unwrap().contains("settlements.csv"));
    assert_eq!(csv.body.lines().count(), 3, "{}", csv.body);
    assert!(csv.body.lines().skip(1).all(|l| l.starts_with('"')), "every cell quoted");
    let lines = b.get(&format!("/settlements/{foreign}/export.csv")).await;
    assert!(lines.body.contains("\"foreign-"), "{}", lines.body);
    let wrong = b.get("/settlements/discrepancies.csv").await;
    assert!(wrong.body.contains("\"line_without_payment\""), "{}", wrong.body);
    let f = sika::store::AuditFilter { action: Some("settlements.export".into()), ..Default::default() };
    assert_eq!(e.app.db.store.audit_search(&f, 10).await.unwrap().len(), 3, "each export is audited");

    let mut stranger = e.app.browser();
    for path in ["/settlements", "/settlements/export.csv", "/reports/money", "/settlements/discrepancies"] {
        assert_eq!(stranger.get(path).await.status, 303, "{path}");
    }
}
