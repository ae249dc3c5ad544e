//! Approved payouts dispatched through the outbound budget, with the
//! emulator limiting requests to R per second and delivering
//! `transfer.completed` to Sika: every payout ends final, with zero 429s,
//! zero duplicate transfers, and two upstream calls per payout (the create
//! and the one confirmation its webhook triggers).
//!
//! `SIKA_PAYOUT_BENCH_N` (default 60) payouts at `SIKA_PAYOUT_BENCH_RATE`
//! (default 30) requests/s; `bench/payouts.sh` runs 1,000 and prints the figures.

use crate::support;

use std::time::{Duration, Instant};

use flutterwave_emulator::{Emulator, EmulatorConfig};
use serde_json::{Value, json};
use sika::domain::PayoutStatus;
use sika::domain::payout::PayoutRequest;

fn env_number(name: &str, default: u64) -> u64 {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn approved_payouts_are_dispatched_within_the_budget_once_each() {
    let n = env_number("SIKA_PAYOUT_BENCH_N", 60);
    let rate = env_number("SIKA_PAYOUT_BENCH_RATE", 30) as u32;
    let (cert, key) = sika::server::tls::self_signed().unwrap();
    let flw_key = format!("FLWSECK_TEST-{}-X", sika::crypto::random::hex_id());
    let hash = sika::crypto::random::token();
    let emu = Emulator::start(
        EmulatorConfig {
            secret_key: flw_key.clone(),
            secret_hash: hash.clone(),
            webhook_url: None,
            webhook_root_pem: Some(cert.clone()),
            seed: 9,
        },
        tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap(),
    )
    .await
    .unwrap();
    let flw = support::Flw { base_url: emu.base_url(), secret_key: flw_key.clone(), secret_hash: hash };
    let options = support::Options { rate_per_second: rate, tls: Some((cert, key)), ..Default::default() };
    let app = support::spawn_with(
        support::sqlite().await,
        axum::Router::new(),
        Duration::from_secs(900),
        Duration::from_secs(3600),
        Some(flw),
        options,
        |_| {},
    )
    .await;
    emu.set_webhook_url(Some(app.url("/webhooks/flutterwave")));
    let http = reqwest::Client::new();
    let control = |path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{}{path}", emu.url()));
        async move { http.post(url).json(&body).send().await.unwrap() }
    };

    // Setting up (not measured): payouts created and approved through a roomier client.
    let mut setup_config =
        flutterwave::Config::new(url::Url::parse(&emu.base_url()).unwrap(), flutterwave::SecretKey::new(flw_key));
    setup_config.rate_per_second = 1000;
    setup_config.burst = 1000;
    let setup = sika::payouts::Payouts::new(
        app.db.store.clone(),
        app.payments.cipher().clone(),
        flutterwave::Client::new(setup_config).unwrap(),
        app.auth.auditor.clone(),
    );
    for i in 0..n {
        let req: PayoutRequest = serde_json::from_value(json!({
            "reference": format!("bench-{i}"), "amount": "1000", "currency": "NGN",
            "bank_code": "044", "account_number": "0690000032"
        }))
        .unwrap();
        let p = setup.create(&support::cli(), "key:bench", &req.validate(setup.max_amount).unwrap()).await.unwrap();
        let approver = support::checker("checker");
        let approved = setup.approve(&support::cli(), &p.reference, &approver).await.unwrap();
        assert!(matches!(approved, sika::store::ApprovalWrite::Queued(_)), "{approved:?}");
    }
    control("/_emulator/faults", json!({"rate_limit_per_second": rate, "transfer_complete_after_ms": 50})).await;
    control("/_emulator/stats/reset", json!({})).await;

    // Measured: the dispatcher and the inbox worker, as in production.
    let (stop, stop_rx) = tokio::sync::watch::channel(false);
    let mut workers = sika::jobs::Supervisor::new(stop_rx);
    sika::payouts::workers::spawn(&mut workers, &app.payouts);
    let notifier = sika::payments::notify::Notifier::new(app.payments.cipher().clone(), false).unwrap();
    sika::payments::workers::spawn(&mut workers, &app.payments, notifier);
    let started = Instant::now();
    loop {
        let done: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payouts WHERE status IN ('successful', 'failed')")
            .fetch_one(app.db.store.pool_for_tests())
            .await
            .unwrap();
        if done as u64 == n {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(60 + 4 * n / u64::from(rate)), "only {done} of {n} final");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let elapsed = started.elapsed();
    stop.send(true).unwrap();
    workers.join(Duration::from_secs(5)).await;
    let stats: Value = http.get(format!("{}/_emulator/stats", emu.url())).send().await.unwrap().json().await.unwrap();
    let calls = stats["requests_total"].as_u64().unwrap();
    let creates = stats["requests"]["POST /v3/transfers"].as_u64().unwrap_or(0);
    let lookups = stats["requests"]["GET /v3/transfers/{id}"].as_u64().unwrap_or(0);
    let bound = 1.1 * calls as f64 / f64::from(rate);
    println!(
        "{n} approved payouts at {rate} req/s: all final in {:.2} s (1.1 × calls/R = {bound:.2} s); {calls} upstream calls \
         ({:.2} per payout: {creates} creates, {lookups} lookups), {} 429s, largest second {} requests",
        elapsed.as_secs_f64(),
        calls as f64 / n as f64,
        stats["rate_limited_429"],
        stats["max_requests_in_one_second"]
    );
    for i in 0..n {
        let p = app.payouts.payout(&format!("bench-{i}")).await.unwrap().unwrap();
        assert_eq!(p.status, PayoutStatus::Successful);
    }
    assert_eq!(stats["rate_limited_429"], 0, "the budget kept under the limit");
    assert_eq!(creates, n, "one transfer per payout: no duplicates");
    // (Other jobs — the chargeback poller's per-status lists — share the budget; they are not payouts' calls.)
    assert_eq!(creates + lookups, 2 * n, "a create and one confirmation per payout");
}
