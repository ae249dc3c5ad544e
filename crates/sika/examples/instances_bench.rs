//! K instances of `sika serve` (release build) on one PostgreSQL, the
//! emulator limited to R requests/s, `FLW_RATE_PER_SECOND=R` on each:
//! N payments confirmed by webhook, then a flood of signed webhooks. Prints,
//! per K: the largest rate Flutterwave saw (any one-second window, and per
//! clock second), 429s, first webhook → all paid, calls per payment, the
//! shared budget's database time per outbound call, and webhook
//! acknowledgements per second with their p99.
//!
//!   bench/instances.sh [KS] [N] [R]     (e.g. "1 2 3 4" 400 20; needs SIKA_TEST_POSTGRES_URL)

#[path = "../tests/suite/support/cluster.rs"]
mod cluster;

use std::sync::Arc;
use std::time::{Duration, Instant};

use serde_json::{Value, json};
use sika::audit::Actor;
use sika::secret::Secret;

async fn fresh_database(admin_url: &str) -> String {
    use sqlx::Connection as _;
    let name = format!("sika_bench_{}", sika::crypto::random::hex_id());
    let mut admin = sqlx::PgConnection::connect(admin_url).await.expect("connect to SIKA_TEST_POSTGRES_URL");
    sqlx::raw_sql(&format!("CREATE DATABASE {name}")).execute(&mut admin).await.unwrap();
    let _ = admin.close().await;
    let mut url = url::Url::parse(admin_url).unwrap();
    url.set_path(&name);
    url.to_string()
}

async fn sum_metric(c: &cluster::Cluster, series: &str) -> f64 {
    let mut total = 0.0;
    for i in &c.instances {
        total += i.metric(series).await.unwrap_or(0.0);
    }
    total
}

fn percentile(sorted: &[Duration], p: f64) -> Duration {
    sorted.get(((sorted.len() as f64 * p) as usize).min(sorted.len().saturating_sub(1))).copied().unwrap_or_default()
}

async fn run(admin_url: &str, k: usize, n: usize, rate: u32) {
    let url = fresh_database(admin_url).await;
    let r = rate.to_string();
    let mut c = cluster::Cluster::prepare(&url, k, 7, &[("FLW_RATE_PER_SECOND", &r), ("SIKA_LOG", "warn")]).await;
    let keys = sika::crypto::keyring::KeyRing::parse(&c.data_key).unwrap();
    let auth = sika::auth::Auth::new(
        c.store.clone(),
        keys,
        Secret::new(c.audit_key.clone()),
        Duration::from_secs(900),
        Duration::from_secs(3600),
    );
    let (_, key) = auth.create_api_key(&Actor::cli(), "bench", "checkouts").await.unwrap();
    c.control("/_emulator/faults", json!({"rate_limit_per_second": rate})).await;
    c.start().await;

    // N checkouts (untimed: link creation is paced by the same budget).
    let sem = Arc::new(tokio::sync::Semaphore::new(16));
    let mut tasks = tokio::task::JoinSet::new();
    for i in 0..n {
        let (http, base, key, sem) = (c.http.clone(), c.base(), key.clone(), sem.clone());
        tasks.spawn(async move {
            let _p = sem.acquire().await.unwrap();
            let body = json!({"reference": format!("bench-{i}"), "amount": "1000", "currency": "NGN",
                              "customer": {"email": "b@example.com"}});
            for _ in 0..600 {
                let r = http.post(format!("{base}/api/v1/checkouts")).bearer_auth(&key).json(&body).send().await;
                if r.is_ok_and(|r| r.status() == 201) {
                    return;
                }
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
        });
    }
    while tasks.join_next().await.is_some() {}
    reqwest::Client::new().post(format!("{}/_emulator/stats/reset", c.emulator_url)).send().await.unwrap();
    let (statements_before, seconds_before) = (
        sum_metric(&c, "sika_budget_ledger_statements_total").await,
        sum_metric(&c, "sika_budget_ledger_seconds_total").await,
    );

    // Paid on the emulator: the webhooks confirm them.
    let started = Instant::now();
    for i in 0..n {
        c.control("/_emulator/charges", json!({"tx_ref": format!("bench-{i}"), "status": "successful"})).await;
    }
    loop {
        let paid: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkouts WHERE status = 'paid'")
            .fetch_one(c.store.pool_for_tests())
            .await
            .unwrap();
        if paid as usize >= n || started.elapsed() > Duration::from_secs(600) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let took = started.elapsed();
    let stats: Value = c.stats().await;
    let calls = stats["requests_total"].as_u64().unwrap_or(0);
    let statements = sum_metric(&c, "sika_budget_ledger_statements_total").await - statements_before;
    let seconds = sum_metric(&c, "sika_budget_ledger_seconds_total").await - seconds_before;

    // Webhook intake: 64 senders for 10 s, signed, each body distinct (kept, unrecognised: no upstream call).
    let stop = Instant::now() + Duration::from_secs(10);
    let latencies = Arc::new(std::sync::Mutex::new(Vec::new()));
    let mut senders = tokio::task::JoinSet::new();
    for s in 0..64 {
        let (http, base, hash, lat) = (c.http.clone(), c.base(), c.flw_hash.clone(), latencies.clone());
        senders.spawn(async move {
            let mut i = 0u64;
            while Instant::now() < stop {
                i += 1;
                let body = format!(r#"{{"event":"bench.ping","data":{{"id":{s},"n":{i}}}}}"#);
                let t = Instant::now();
                let r = http
                    .post(format!("{base}/webhooks/flutterwave"))
                    .header("content-type", "application/json")
                    .header("verif-hash", &hash)
                    .body(body)
                    .send()
                    .await;
                if r.is_ok_and(|r| r.status() == 200) {
                    lat.lock().unwrap().push(t.elapsed());
                }
            }
        });
    }
    while senders.join_next().await.is_some() {}
    let mut lat = latencies.lock().unwrap().clone();
    lat.sort();
    println!(
        "| {k} | {} ({} per clock second) | {} | {:.1} s (bound {:.1} s) | {:.2} | {} statements, {:.3} ms per outbound call | {:.0}/s, p99 {:.1} ms |",
        stats["max_requests_in_any_second"],
        stats["max_requests_in_one_second"],
        stats["rate_limited_429"],
        took.as_secs_f64(),
        1.1 * calls as f64 / f64::from(rate),
        calls as f64 / n as f64,
        statements,
        if calls > 0 { seconds * 1000.0 / calls as f64 } else { 0.0 },
        lat.len() as f64 / 10.0,
        percentile(&lat, 0.99).as_secs_f64() * 1000.0
    );
    c.stop();
}

#[tokio::main]
async fn main() {
    let args: Vec<String> = std::env::args().skip(1).collect();
    let ks: Vec<usize> = args
        .first()
        .map(String::as_str)
        .unwrap_or("1 2 3 4")
        .split_whitespace()
        .filter_map(|k| k.parse().ok())
        .collect();
    let n: usize = args.get(1).and_then(|a| a.parse().ok()).unwrap_or(400);
    let rate: u32 = args.get(2).and_then(|a| a.parse().ok()).unwrap_or(20);
    let admin = std::env::var("SIKA_TEST_POSTGRES_URL")
        .expect("SIKA_TEST_POSTGRES_URL: a PostgreSQL role that may create databases");
    println!("{n} payments confirmed by webhook, R = {rate}/s on the emulator and on each instance");
    println!(
        "| instances | largest rate Flutterwave saw | 429s | first webhook → all paid | calls per payment | shared budget's cost | webhook acks (64 senders) |"
    );
    println!("|---|---|---|---|---|---|---|");
    for k in ks {
        run(&admin, k, n, rate).await;
    }
}
