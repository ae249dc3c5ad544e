//! Many instances, one Flutterwave: three real `sika serve` binaries on one
//! PostgreSQL share the account's rate. The emulator is limited to R requests
//! a second (it answers 429 above it): payments confirmed and payouts sent
//! through all three must never exceed R in any one second, see no 429, and
//! finish as soon as one instance would; a 429 seen by one instance pauses
//! the others; an instance SIGKILLed mid-lease stops nobody.

use crate::support;

use std::time::{Duration, Instant};

use crate::support::cluster::Cluster;
use serde_json::{Value, json};
use sika::audit::Actor;
use sika::secret::Secret;

const R: u32 = 20;

struct Drill {
    c: Cluster,
    api_key: String,
    approver: sika::payouts::Payouts,
}

async fn drill(instances: usize, seed: u64) -> Option<Drill> {
    let url = support::empty_postgres().await?;
    let rate = R.to_string();
    let mut c = Cluster::prepare(&url, instances, seed, &[("FLW_RATE_PER_SECOND", &rate)]).await;
    let keys = sika::crypto::keyring::KeyRing::parse(&c.data_key).unwrap();
    let auth = sika::auth::Auth::new(
        c.store.clone(),
        keys.clone(),
        Secret::new(c.audit_key.clone()),
        Duration::from_secs(900),
        Duration::from_secs(3600),
    );
    let (_, api_key) = auth.create_api_key(&Actor::cli(), "shop", "checkouts,read,payouts").await.unwrap();
    // The approver's own calls (balances) go through the same shared budget.
    let approver = {
        let mut f = flutterwave::Config::new(
            url::Url::parse(&format!("{}/v3", c.emulator_url)).unwrap(),
            flutterwave::SecretKey::new(c.flw_key.clone()),
        );
        f.rate_per_second = R;
        f.ledger = sika::store::Ledger::of(&c.store).map(|l| std::sync::Arc::new(l) as _);
        let cipher = sika::crypto::field::FieldCipher::new(keys);
        sika::payouts::Payouts::new(c.store.clone(), cipher, flutterwave::Client::new(f).unwrap(), auth.auditor.clone())
    };
    c.control("/_emulator/faults", json!({"rate_limit_per_second": R, "transfer_complete_after_ms": 200})).await;
    c.start().await;
    Some(Drill { c, api_key, approver })
}

impl Drill {
    /// `n` checkouts through the balancer (a 503 is retried with the same body).
    async fn checkouts(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut tasks = tokio::task::JoinSet::new();
        let sem = std::sync::Arc::new(tokio::sync::Semaphore::new(8));
        for i in 0..n {
            let (http, base, key, sem) = (self.c.http.clone(), self.c.base(), self.api_key.clone(), sem.clone());
            let reference = format!("{prefix}-{i}");
            tasks.spawn(async move {
                let _p = sem.acquire().await.unwrap();
                let body = json!({"reference": reference, "amount": "1000", "currency": "NGN",
                                  "customer": {"email": "buyer@example.com"}});
                for _ in 0..100 {
                    let r = http.post(format!("{base}/api/v1/checkouts")).bearer_auth(&key).json(&body).send().await;
                    if r.is_ok_and(|r| r.status() == 201) {
                        return reference;
                    }
                    tokio::time::sleep(Duration::from_millis(100)).await;
                }
                panic!("{reference} could not be created");
            });
        }
        let mut out = Vec::new();
        while let Some(r) = tasks.join_next().await {
            out.push(r.unwrap());
        }
        out
    }

    /// `n` payouts created and approved, for the instances' dispatchers.
    async fn payouts(&self, prefix: &str, n: usize) -> Vec<String> {
        let mut out = Vec::new();
        for i in 0..n {
            let reference = format!("{prefix}-{i}");
            let body = json!({"reference": reference, "amount": "1000", "currency": "NGN", "bank_code": "044",
                              "account_number": "0690000032", "beneficiary_name": "Pastor Bright"});
            let r = self.c.http.post(format!("{}/api/v1/payouts", self.c.base())).bearer_auth(&self.api_key);
            assert_eq!(r.json(&body).send().await.unwrap().status(), 202);
            let who = support::checker("approver");
            let a = self.approver.approve(&support::cli(), &reference, &who).await.unwrap();
            assert!(matches!(a, sika::store::ApprovalWrite::Queued(_)), "{a:?}");
            out.push(reference);
        }
        out
    }

    /// The customers pay on the emulator; its webhooks go to the instances.
    async fn pay(&self, references: &[String]) {
        for r in references {
            self.c.control("/_emulator/charges", json!({"tx_ref": r, "status": "successful"})).await;
        }
    }

    /// Waits until every checkout is paid and every payout successful.
    async fn all_final(&self, checkouts: &[String], payouts: &[String], limit: Duration) -> Duration {
        let started = Instant::now();
        loop {
            let paid: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM checkouts WHERE status = 'paid'")
                .fetch_one(self.c.store.pool_for_tests())
                .await
                .unwrap();
            let sent: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM payouts WHERE status = 'successful'")
                .fetch_one(self.c.store.pool_for_tests())
                .await
                .unwrap();
            if paid as usize >= checkouts.len() && sent as usize >= payouts.len() {
                return started.elapsed();
            }
            assert!(started.elapsed() < limit, "not final after {limit:?}: {paid} paid, {sent} payouts successful");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }

    async fn arrivals(&self) -> (Vec<i64>, Vec<i64>) {
        let v: Value =
            reqwest::get(format!("{}/_emulator/arrivals", self.c.emulator_url)).await.unwrap().json().await.unwrap();
        let list = |k: &str| v[k].as_array().unwrap().iter().filter_map(Value::as_i64).collect::<Vec<_>>();
        (list("arrivals"), list("limited_at"))
    }
}

fn max_in_any_second(times: &[i64]) -> usize {
    let mut start = 0;
    let mut best = 0;
    for (end, t) in times.iter().enumerate() {
        while times[start] <= t - 1000 {
            start += 1;
        }
        best = best.max(end - start + 1);
    }
    best
}

/// Three instances, the emulator limited to R: payments confirmed and payouts
/// sent through all three within R per second, no 429, as fast as one
/// instance; then a 429 on one pauses all of them.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn three_instances_share_one_budget_and_one_pause() {
    let Some(d) = drill(3, 17).await else { return };
    let checkouts = d.checkouts("shared", 120).await;
    let payouts = d.payouts("shared-payout", 20).await;
    let before = d.c.stats().await;
    let calls_before = before["requests_total"].as_u64().unwrap();
    let started = Instant::now();
    d.pay(&checkouts).await;
    let took = d.all_final(&checkouts, &payouts, Duration::from_secs(90)).await + Duration::ZERO;
    let took = took.max(started.elapsed());
    let stats = d.c.stats().await;
    let calls = stats["requests_total"].as_u64().unwrap() - calls_before;
    let (arrivals, limited) = d.arrivals().await;
    let worst = max_in_any_second(&arrivals);
    println!(
        "3 instances, R = {R}: {calls} calls for {} payments and {} payouts in {took:?} ({:.2} s per call·R); \
         largest one-second rate {worst} (clock seconds: {}), {} 429s",
        checkouts.len(),
        payouts.len(),
        took.as_secs_f64() / calls as f64 * f64::from(R),
        stats["max_requests_in_one_second"],
        limited.len()
    );
    assert!(worst <= R as usize, "Flutterwave saw {worst} requests within one second");
    assert!(limited.is_empty(), "{} 429s", limited.len());
    let bound = 1.1 * calls as f64 / f64::from(R);
    assert!(took.as_secs_f64() <= bound + 1.0, "took {took:?}, more than 1.1 × {calls} / {R} = {bound:.1} s");
    // The work went through all three.
    for i in &d.c.instances {
        let verified = i.metric(r#"sika_verify_calls_total{outcome="ok"}"#).await.unwrap_or(0.0);
        assert!(verified > 0.0, "instance {} verified nothing", i.port);
    }

    // A 429 with Retry-After: 3 on one instance's call: nobody sends during the pause.
    let more = d.checkouts("paused", 60).await;
    d.c.control("/_emulator/faults", json!({"throttle_next": 1, "throttle_retry_after_s": 3})).await;
    d.pay(&more).await;
    d.all_final(&[checkouts.clone(), more.clone()].concat(), &payouts, Duration::from_secs(90)).await;
    let (arrivals, limited) = d.arrivals().await;
    let throttled = *limited.last().expect("the injected 429");
    // What was leased before the pause reached the ledger runs out within a lease's reach (0.5 s).
    let during: Vec<i64> =
        arrivals.iter().copied().filter(|t| *t > throttled + 500 && *t < throttled + 3_000).collect();
    println!("after the 429 at {throttled}: {} requests in the paused window", during.len());
    assert!(during.is_empty(), "{} requests arrived during the pause: {:?}", during.len(), during);
    assert_eq!(limited.len(), 1, "only the injected 429");
    let worst = max_in_any_second(&arrivals);
    assert!(worst <= R as usize, "Flutterwave saw {worst} requests within one second around the pause");
    let mut c = d.c;
    let panics = c.stop();
    assert!(panics.is_empty(), "{panics:?}");
}

/// An instance SIGKILLed while it holds leased send times and claimed
/// webhooks: the others go on at once, the rate is never exceeded during the
/// handover, and its claimed webhooks are processed after their short lease.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_killed_instance_holding_a_lease_stops_nobody() {
    let Some(mut d) = drill(3, 23).await else { return };
    let checkouts = d.checkouts("kill", 150).await;
    d.pay(&checkouts).await;
    tokio::time::sleep(Duration::from_secs(2)).await;
    let killed_at = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_millis() as i64;
    d.c.instances[0].kill();
    let took = d.all_final(&checkouts, &[], Duration::from_secs(120)).await;
    let (arrivals, limited) = d.arrivals().await;
    let after_kill: Vec<i64> = arrivals.iter().copied().filter(|t| *t >= killed_at).collect();
    let first_gap = after_kill.first().map(|t| t - killed_at).unwrap_or(i64::MAX);
    let longest_gap = after_kill.windows(2).map(|w| w[1] - w[0]).max().unwrap_or(0);
    println!(
        "killed one of three at {killed_at}: next request {first_gap} ms later, longest gap while work remained {longest_gap} ms, \
         all paid {took:?} after the kill, largest one-second rate {}",
        max_in_any_second(&arrivals)
    );
    assert!(first_gap < 1_000, "the others went on {first_gap} ms after the kill");
    assert!(max_in_any_second(&arrivals) <= R as usize, "the rate was exceeded around the kill");
    assert!(limited.is_empty(), "{} 429s", limited.len());
    let panics = d.c.stop();
    assert!(panics.is_empty(), "{panics:?}");
}
