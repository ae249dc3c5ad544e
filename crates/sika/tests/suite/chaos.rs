//! The chaos drill: the real `sika emulator` and `sika serve` binaries —
//! two instances on one PostgreSQL database behind a small TCP load
//! balancer (and a single instance on SQLite) — take a few hundred checkouts,
//! some underpaid or in another currency, while Flutterwave fails in every
//! documented way at once (5xx, errors after commit, latency, 429, duplicate,
//! dropped, reordered and delayed webhooks) and instances are killed with
//! SIGKILL and restarted. At the end the money rules must all hold.
//!
//! Bounded by count (`SIKA_CHAOS_CHECKOUTS`, default 200; `SIKA_CHAOS_KILLS`,
//! default 3); `bench/chaos.sh` runs it with bigger numbers and prints the figures.

use crate::support;

use std::collections::{HashMap, HashSet};
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use rust_decimal::Decimal;
use serde_json::{Value, json};
use sika::audit::Actor;
use sika::secret::Secret;

use crate::support::cluster::{BIN, Cluster};

fn env_number(name: &str, default: usize) -> usize {
    std::env::var(name).ok().and_then(|v| v.parse().ok()).unwrap_or(default)
}

/// A small deterministic generator (xorshift), so a failing run can be replayed by its seed.
struct Rng(u64);
impl Rng {
    fn next(&mut self) -> u64 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        self.0
    }
    fn below(&mut self, n: u64) -> u64 {
        self.next() % n.max(1)
    }
}

/// What the customer of each checkout does.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Plan {
    Pays,
    FailsThenPays,
    Underpays,
    OtherCurrency,
    NeverPays,
}

/// Every notification the shop received: (event, reference) → event ids seen.
type Received = Arc<Mutex<HashMap<(String, String), HashSet<String>>>>;

async fn shop_receiver() -> (String, Received) {
    let got: Received = Arc::default();
    let g = got.clone();
    let app = axum::Router::new().route(
        "/hook",
        axum::routing::post(move |body: String| {
            let g = g.clone();
            async move {
                if let Ok(v) = serde_json::from_str::<Value>(&body) {
                    let key = (
                        v["event"].as_str().unwrap_or("").to_string(),
                        v["reference"].as_str().unwrap_or("").to_string(),
                    );
                    g.lock().unwrap().entry(key).or_default().insert(v["id"].as_str().unwrap_or("").to_string());
                }
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let url = format!("http://{}/hook", listener.local_addr().unwrap());
    tokio::spawn(async move { axum::serve(listener, app).await.unwrap() });
    (url, got)
}

async fn drill(database_url: String, instances: usize) {
    let checkouts = env_number("SIKA_CHAOS_CHECKOUTS", 200);
    let kills_wanted = env_number("SIKA_CHAOS_KILLS", 3);
    let seed = env_number("SIKA_CHAOS_SEED", 20261129) as u64;
    let started = Instant::now();
    let mut d = Cluster::prepare(
        &database_url,
        instances,
        seed,
        &[
            ("FLW_RATE_PER_SECOND", "15"),
            // Payouts claimed by a killed instance before their request left go out again after this.
            ("SIKA_PAYOUT_RESEND_AFTER", "10s"),
            // Cards too: their first loads are sent by whichever instance claims them.
            ("SIKA_CARDS_ENABLED", "true"),
        ],
    )
    .await;
    let (store, flw_key) = (d.store.clone(), d.flw_key.clone());
    // The database, prepared like an operator would: an API key, the shop's endpoint.
    let keys = sika::crypto::keyring::KeyRing::parse(&d.data_key).unwrap();
    let auth = sika::auth::Auth::new(
        store.clone(),
        keys.clone(),
        Secret::new(d.audit_key.clone()),
        Duration::from_secs(900),
        Duration::from_secs(3600),
    );
    let (_, api_key) = auth.create_api_key(&Actor::cli(), "chaos shop", "checkouts,read,payouts,cards").await.unwrap();
    let (shop_url, received) = shop_receiver().await;
    let cipher = sika::crypto::field::FieldCipher::new(keys.clone());
    sika::payments::notify::set_endpoint(&store, &cipher, &shop_url, "whsec_chaos").await.unwrap();
    d.start().await;
    let client = d.http.clone();
    let http = reqwest::Client::new();
    let control = |path: &str, body: Value| {
        let (http, url) = (http.clone(), format!("{}{path}", d.emulator_url));
        async move { http.post(url).json(&body).send().await.unwrap().status() }
    };
    let faults = json!({
        "seed": seed, "error_rate": 0.05, "error_after_commit_rate": 0.03, "latency_ms": 15,
        "rate_limit_per_second": 20, "webhook_duplicate_rate": 0.25, "webhook_drop_rate": 0.25,
        "webhook_reorder": true, "webhook_delay_ms": 40, "webhook_retries": 2, "webhook_retry_interval_ms": 1500,
        "signature": "both", "transfer_complete_after_ms": 300,
        // As the real list may: lookups by reference page through every transfer.
        "transfer_list_ignores_reference": true
    });
    assert!(control("/_emulator/faults", faults).await.is_success());

    // Checkouts through the balancer; a 503 (no definite answer from Flutterwave) is retried with the same body.
    let mut rng = Rng(seed | 1);
    let mut plans: Vec<(String, Plan, Decimal)> = Vec::new();
    let mut server_errors: Vec<u16> = Vec::new();
    for n in 0..checkouts {
        let plan = match rng.below(20) {
            0..=11 => Plan::Pays,
            12..=13 => Plan::FailsThenPays,
            14..=15 => Plan::Underpays,
            16 => Plan::OtherCurrency,
            _ => Plan::NeverPays,
        };
        let amount = Decimal::new(1000 + rng.below(500_000) as i64, 2);
        let reference = format!("chaos-{n}");
        let body = json!({"reference": reference, "amount": amount.to_string(), "currency": "NGN",
                          "customer": {"email": format!("buyer{n}@example.com")}});
        let mut tries = 0;
        loop {
            tries += 1;
            let r =
                client.post(format!("{}/api/v1/checkouts", d.base())).bearer_auth(&api_key).json(&body).send().await;
            match r {
                Ok(r) if r.status() == 201 => break,
                Ok(r) if r.status() == 503 => {}
                Ok(r) => {
                    server_errors.push(r.status().as_u16());
                    panic!("creating {reference}: {} {}", r.status(), r.text().await.unwrap_or_default());
                }
                Err(_) => {}
            }
            assert!(tries < 50, "{reference} could not be created");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        plans.push((reference, plan, amount));
    }

    // Payouts, created through the balancer and approved (as an approver would,
    // with the rule and the holds), to be dispatched by both instances under the chaos.
    let payout_count = env_number("SIKA_CHAOS_PAYOUTS", 30);
    let approver_service = {
        let mut c = flutterwave::Config::new(
            url::Url::parse(&format!("{}/v3", d.emulator_url)).unwrap(),
            flutterwave::SecretKey::new(flw_key.clone()),
        );
        // The drill's own calls (balances read to approve) share the instances' budget on PostgreSQL.
        c.rate_per_second = 15;
        c.ledger = sika::store::Ledger::of(&store).map(|l| Arc::new(l) as _);
        sika::payouts::Payouts::new(
            store.clone(),
            cipher.clone(),
            flutterwave::Client::new(c).unwrap(),
            auth.auditor.clone(),
        )
    };
    let mut payout_refs = Vec::new();
    for n in 0..payout_count {
        let reference = format!("chaos-payout-{n}");
        let body = json!({"reference": reference, "amount": format!("{}", 1000 + n), "currency": "NGN",
                          "bank_code": "044", "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
        let mut tries = 0;
        loop {
            tries += 1;
            let r = client.post(format!("{}/api/v1/payouts", d.base())).bearer_auth(&api_key).json(&body).send().await;
            match r {
                Ok(r) if r.status() == 202 => break,
                Ok(r) if r.status() == 503 => {}
                Ok(r) => panic!("creating {reference}: {} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(_) => {}
            }
            assert!(tries < 50, "{reference} could not be created");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let approver = support::checker("chaos-approver");
        for _ in 0..50 {
            match approver_service.approve(&Actor::cli(), &reference, &approver).await.unwrap() {
                sika::store::ApprovalWrite::Queued(_) => break,
                // The balance could not be read during the storm: try again.
                sika::store::ApprovalWrite::Refused(why) if why.contains("balance") => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("approving {reference}: {other:?}"),
            }
        }
        payout_refs.push(reference);
    }

    // Cards, asked for through the balancer with their first loads approved: the
    // instances' card workers create them at Flutterwave under the chaos.
    let card_count = env_number("SIKA_CHAOS_CARDS", 8);
    let card_service = {
        let mut c = flutterwave::Config::new(
            url::Url::parse(&format!("{}/v3", d.emulator_url)).unwrap(),
            flutterwave::SecretKey::new(flw_key.clone()),
        );
        // The drill's own calls (balances read to approve) share the instances' budget on PostgreSQL.
        c.rate_per_second = 15;
        c.ledger = sika::store::Ledger::of(&store).map(|l| Arc::new(l) as _);
        sika::cards::Cards::new(
            store.clone(),
            cipher.clone(),
            flutterwave::Client::new(c).unwrap(),
            auth.auditor.clone(),
        )
    };
    let mut card_refs = Vec::new();
    for n in 0..card_count {
        let reference = format!("chaos-card-{n}");
        // Distinct first loads: an unanswered creation is found in Flutterwave's list by them.
        let body = json!({"reference": reference, "currency": "USD", "amount": format!("{}.00", 5 + n),
            "cardholder": {"first_name": "Ada", "last_name": "Obi", "date_of_birth": "1990-04-21",
                "email": "ada@example.com", "phone": "+2348012345678", "title": "MRS", "gender": "F"}});
        let mut tries = 0;
        loop {
            tries += 1;
            let r = client.post(format!("{}/api/v1/cards", d.base())).bearer_auth(&api_key).json(&body).send().await;
            match r {
                Ok(r) if r.status() == 202 => break,
                Ok(r) if r.status() == 503 => {}
                Ok(r) => panic!("asking for {reference}: {} {}", r.status(), r.text().await.unwrap_or_default()),
                Err(_) => {}
            }
            assert!(tries < 50, "{reference} could not be asked for");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let approver = support::checker("chaos-approver");
        let load = sika::cards::funding::load_reference(&reference);
        for _ in 0..50 {
            match card_service.approve_funding(&support::cli(), &load, &approver).await.unwrap() {
                sika::store::FundingWrite::Queued(_) => break,
                sika::store::FundingWrite::Refused(why) if why.contains("balance") => {
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                other => panic!("approving {load}: {other:?}"),
            }
        }
        card_refs.push(reference);
    }

    // The chaos monkey: SIGKILL an instance at random moments, restart it.
    let kills = Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let stop_chaos = Arc::new(std::sync::atomic::AtomicBool::new(false));
    let monkey = {
        let (kills, stop) = (kills.clone(), stop_chaos.clone());
        let mut instances = std::mem::take(&mut d.instances);
        let env = d.env.clone();
        let mut rng = Rng(seed.rotate_left(17) | 1);
        let client = client.clone();
        tokio::spawn(async move {
            while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                tokio::time::sleep(Duration::from_millis(700 + rng.below(1500))).await;
                let i = rng.below(instances.len() as u64) as usize;
                if let Some(mut c) = instances[i].child.take() {
                    let _ = c.kill();
                    let _ = c.wait();
                    kills.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                }
                tokio::time::sleep(Duration::from_millis(300 + rng.below(900))).await;
                instances[i].spawn(&env);
                let port = instances[i].port;
                let deadline = Instant::now() + Duration::from_secs(30);
                while client.get(format!("https://127.0.0.1:{port}/healthz")).send().await.is_err() {
                    assert!(Instant::now() < deadline, "a restarted instance did not come back");
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
            }
            instances
        })
    };

    // Customers pay on the emulator, sixteen at a time; webhooks go out with every fault.
    let pay_started = Instant::now();
    let mut pay_tasks = tokio::task::JoinSet::new();
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    for (reference, plan, amount) in plans.clone() {
        let (http, url, sem) = (http.clone(), format!("{}/_emulator/charges", d.emulator_url), sem.clone());
        pay_tasks.spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let charge = |body: Value| {
                let (http, url) = (http.clone(), url.clone());
                async move { http.post(url).json(&body).send().await.unwrap().status() }
            };
            match plan {
                Plan::Pays => assert!(charge(json!({"tx_ref": reference, "status": "successful"})).await.is_success()),
                Plan::FailsThenPays => {
                    charge(json!({"tx_ref": reference, "status": "failed"})).await;
                    charge(json!({"tx_ref": reference, "status": "successful"})).await;
                }
                Plan::Underpays => {
                    let less = amount - Decimal::new(1, 2);
                    charge(json!({"tx_ref": reference, "status": "successful", "amount": less.to_string(), "currency": "NGN"})).await;
                }
                Plan::OtherCurrency => {
                    charge(json!({"tx_ref": reference, "status": "successful", "amount": amount.to_string(), "currency": "USD"})).await;
                }
                Plan::NeverPays => {}
            }
        });
    }
    while pay_tasks.join_next().await.is_some() {}
    // Keep the chaos going until enough kills happened.
    while kills.load(std::sync::atomic::Ordering::Relaxed) < kills_wanted {
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
    stop_chaos.store(true, std::sync::atomic::Ordering::Relaxed);
    d.instances = monkey.await.unwrap();
    let paying_took = pay_started.elapsed();

    // The storm passes. Customers come back to the return page; webhooks are retried; the reconciler runs.
    assert!(
        control(
            "/_emulator/faults",
            json!({"error_rate": 0.0, "error_after_commit_rate": 0.0, "latency_ms": 0,
        "rate_limit_per_second": null, "webhook_drop_rate": 0.0, "webhook_duplicate_rate": 0.0})
        )
        .await
        .is_success()
    );
    let converge_started = Instant::now();
    let should_pay: Vec<&String> =
        plans.iter().filter(|(_, p, _)| matches!(p, Plan::Pays | Plan::FailsThenPays)).map(|(r, _, _)| r).collect();
    let should_review: Vec<&String> = plans
        .iter()
        .filter(|(_, p, _)| matches!(p, Plan::Underpays | Plan::OtherCurrency))
        .map(|(r, _, _)| r)
        .collect();
    let mut statuses: HashMap<String, String> = HashMap::new();
    loop {
        statuses.clear();
        for (reference, _, _) in &plans {
            let r = client
                .get(format!("{}/api/v1/checkouts/{reference}", d.base()))
                .bearer_auth(&api_key)
                .send()
                .await
                .unwrap();
            if r.status().is_server_error() {
                server_errors.push(r.status().as_u16());
            }
            let v: Value = r.json().await.unwrap();
            statuses.insert(reference.clone(), v["status"].as_str().unwrap_or("").to_string());
        }
        let waiting: Vec<&&String> = should_pay
            .iter()
            .filter(|r| statuses[**r] != "paid")
            .chain(should_review.iter().filter(|r| statuses[**r] != "needs_review"))
            .collect();
        if waiting.is_empty() {
            break;
        }
        assert!(
            converge_started.elapsed() < Duration::from_secs(150),
            "{} checkouts with money never settled: {:?}",
            waiting.len(),
            waiting.iter().take(10).collect::<Vec<_>>()
        );
        for r in &waiting {
            let page = client.get(format!("{}/checkout/return?tx_ref={r}", d.base())).send().await.unwrap();
            if page.status().is_server_error() {
                server_errors.push(page.status().as_u16());
            }
        }
        tokio::time::sleep(Duration::from_secs(2)).await;
    }
    let converge_took = converge_started.elapsed();
    // Payouts: every one ends successful, from Flutterwave's record, sent once.
    let payouts_started = Instant::now();
    loop {
        let mut open = Vec::new();
        for r in &payout_refs {
            let p = store.payout(r).await.unwrap().unwrap();
            assert!(
                !matches!(p.status, sika::domain::PayoutStatus::Failed | sika::domain::PayoutStatus::AwaitingApproval),
                "{r} ended {} ({:?})",
                p.status,
                p.complete_message
            );
            if p.status != sika::domain::PayoutStatus::Successful {
                open.push((r.clone(), p.status));
            }
        }
        if open.is_empty() {
            break;
        }
        assert!(
            payouts_started.elapsed() < Duration::from_secs(240),
            "payouts never final: {:?}",
            &open[..open.len().min(10)]
        );
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    let payouts_took = payouts_started.elapsed();

    // Refunds at once on paid checkouts (what approvers would do), within the money rule.
    let flw_config = {
        let mut c = flutterwave::Config::new(
            url::Url::parse(&format!("{}/v3", d.emulator_url)).unwrap(),
            flutterwave::SecretKey::new(flw_key.clone()),
        );
        // The drill's own calls (balances read to approve) share the instances' budget on PostgreSQL.
        c.rate_per_second = 15;
        c.ledger = sika::store::Ledger::of(&store).map(|l| Arc::new(l) as _);
        c
    };
    let payments = sika::payments::Payments::new(
        store.clone(),
        cipher.clone(),
        flutterwave::Client::new(flw_config).unwrap(),
        Secret::new(d.flw_hash.clone()),
        &url::Url::parse(&d.base()).unwrap(),
        auth.auditor.clone(),
    );
    let mut refund_tasks = tokio::task::JoinSet::new();
    for reference in should_pay.iter().take(10) {
        for _ in 0..4 {
            let (p, r) = (payments.clone(), reference.to_string());
            refund_tasks.spawn(async move {
                let c = p.checkout(&r).await.unwrap().unwrap();
                let third = (c.paid_amount.unwrap() / Decimal::from(3)).round_dp(2).max(Decimal::new(1, 2));
                p.refund(&r, third, "chaos", "drill", None).await.unwrap()
            });
        }
    }
    while refund_tasks.join_next().await.is_some() {}

    // The invariants. Payouts: one transfer per reference at Flutterwave, successful there too
    // (read with the reference filter honoured again, to see just that reference's).
    assert!(control("/_emulator/faults", json!({"transfer_list_ignores_reference": false})).await.is_success());
    for r in &payout_refs {
        let v: Value = http
            .get(format!("{}/v3/transfers?reference={r}", d.emulator_url))
            .bearer_auth(&flw_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        let rows = v["data"].as_array().unwrap();
        assert_eq!(rows.len(), 1, "{r}: one transfer");
        assert_eq!(rows[0]["status"], "SUCCESSFUL");
        let events: Vec<String> = store.outbox_for(r).await.unwrap().into_iter().map(|o| o.event).collect();
        assert_eq!(events, ["payout.successful"], "{r}");
    }
    // Cards: never two at Flutterwave for one request; a card Sika links is the
    // one Flutterwave made for it, and its first load counts as made.
    let flw_cards: Vec<Value> = {
        let v: Value = http
            .get(format!("{}/v3/virtual-cards", d.emulator_url))
            .bearer_auth(&flw_key)
            .send()
            .await
            .unwrap()
            .json()
            .await
            .unwrap();
        v["data"].as_array().cloned().unwrap_or_default()
    };
    let mut cards_linked = 0;
    for r in &card_refs {
        let c = store.card(r).await.unwrap().unwrap();
        let made: Vec<&Value> =
            flw_cards.iter().filter(|f| f["amount"].as_str() == Some(&format!("{:.2}", c.amount))).collect();
        assert!(made.len() <= 1, "{r}: {} cards at Flutterwave", made.len());
        if let Some(id) = &c.flw_id {
            cards_linked += 1;
            assert_eq!(made.len(), 1, "{r} is linked to a card Flutterwave has");
            assert_eq!(made[0]["id"].as_str(), Some(id.as_str()), "{r}");
            let load = store.funding(&sika::cards::funding::load_reference(r)).await.unwrap().unwrap();
            assert_eq!(load.status, sika::domain::FundingStatus::Succeeded, "{r}'s load follows its card");
        } else {
            // Not linked: still being looked up (a kill between the claim and the answer), never sent twice.
            assert!(
                matches!(c.status, sika::domain::CardStatus::Creating | sika::domain::CardStatus::Unknown),
                "{r} is {}",
                c.status
            );
        }
    }
    assert_eq!(flw_cards.len(), card_refs.len().min(flw_cards.len()), "no card Sika did not ask for");

    let mut by_status: HashMap<&str, usize> = HashMap::new();
    for (reference, plan, amount) in &plans {
        let c = store.checkout(reference).await.unwrap().unwrap();
        *by_status.entry(c.status.as_str()).or_default() += 1;
        if c.status == sika::domain::CheckoutStatus::Paid {
            // A successful transaction with this reference, enough money, this currency.
            let v: Value = http
                .get(format!("{}/v3/transactions/{}/verify", d.emulator_url, c.transaction_id.unwrap()))
                .bearer_auth(&flw_key)
                .send()
                .await
                .unwrap()
                .json()
                .await
                .unwrap();
            let tx = &v["data"];
            assert_eq!((tx["status"].as_str(), tx["tx_ref"].as_str()), (Some("successful"), Some(reference.as_str())));
            assert_eq!(tx["currency"], "NGN");
            assert!(
                tx["amount"].to_string().parse::<Decimal>().unwrap() >= *amount,
                "{reference} paid with too little"
            );
            assert!(matches!(plan, Plan::Pays | Plan::FailsThenPays), "{reference} ({plan:?}) must not be paid");
        }
        if *plan == Plan::NeverPays {
            assert_eq!(c.status, sika::domain::CheckoutStatus::Pending, "{reference}: nobody paid");
        }
        let refunds = store.refunds(reference).await.unwrap();
        let held: Decimal = refunds.iter().filter(|r| r.status.holds_money()).map(|r| r.amount).sum();
        assert!(held <= c.paid_amount.unwrap_or_default(), "{reference}: refunds {held} above what was paid");
    }
    let received = received.lock().unwrap().clone();
    for ((event, reference), ids) in &received {
        assert_eq!(ids.len(), 1, "{event} for {reference} arrived under {} ids", ids.len());
    }
    let outbox_dupes: i64 = sqlx::query_scalar(
        "SELECT COUNT(*) FROM (SELECT event, reference FROM outbox GROUP BY event, reference HAVING COUNT(*) > 1) AS d",
    )
    .fetch_one(store.pool_for_tests())
    .await
    .unwrap();
    assert_eq!(outbox_dupes, 0, "one notification per event per checkout");
    assert!(server_errors.iter().all(|s| *s == 503), "only the documented 503: {server_errors:?}");

    // A clean stop, then the audit chain against every instance's checkpoints.
    for i in &mut d.instances {
        if let Some(mut c) = i.child.take() {
            let _ = Command::new("kill").args(["-TERM", &c.id().to_string()]).status();
            let _ = c.wait();
        }
    }
    for i in &d.instances {
        let log = std::fs::read_to_string(&i.log).unwrap_or_default();
        assert!(
            !log.contains("panicked"),
            "a panic in {}: {}",
            i.log.display(),
            log.lines().filter(|l| l.contains("panicked")).collect::<Vec<_>>().join("\n")
        );
        let mut verify = Command::new(BIN);
        verify
            .args(["audit", "verify", "--checkpoints", i.log.with_extension("checkpoints").to_str().unwrap()])
            .env_clear();
        for (k, v) in &d.env {
            verify.env(k, v);
        }
        let out = verify.output().unwrap();
        assert!(out.status.success(), "audit verify: {}", String::from_utf8_lossy(&out.stderr));
    }
    let emu: Value =
        http.get(format!("{}/_emulator/stats", d.emulator_url)).send().await.unwrap().json().await.unwrap();
    let _ = d.emulator.kill();
    let _ = d.emulator.wait();
    println!(
        "chaos drill ({} instance(s), seed {seed}): {checkouts} checkouts, {} kills ({} starts), paying took {paying_took:?}, \
         converging {converge_took:?}, all in {:?}",
        d.instances.len(),
        kills.load(std::sync::atomic::Ordering::Relaxed),
        d.instances.iter().map(|i| i.starts).sum::<usize>(),
        started.elapsed()
    );
    println!("  checkouts by status: {by_status:?}");
    println!(
        "  emulator: {} requests, {} 429s, {} errors injected, webhooks {} sent / {} acked / {} dropped / {} duplicated",
        emu["requests_total"],
        emu["rate_limited_429"],
        emu["errors_injected"],
        emu["webhooks_sent"],
        emu["webhooks_acked"],
        emu["webhooks_dropped"],
        emu["webhooks_duplicated"]
    );
    println!("  shop notifications: {} distinct events, each under one id", received.len());
    println!(
        "  payouts: {} approved, all successful, one transfer each; final {payouts_took:?} after the checkouts",
        payout_refs.len()
    );
    println!("  cards: {} asked for and approved, {cards_linked} linked, none made twice", card_refs.len());
    drop(d.dir);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_two_instances_on_postgres() {
    let Some(url) = support::empty_postgres().await else { return };
    drill(url, 2).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn chaos_one_instance_on_sqlite() {
    let dir = tempfile::tempdir().unwrap();
    let url = format!("sqlite://{}", dir.path().join("chaos.db").display());
    drill(url, 1).await;
    drop(dir);
}
