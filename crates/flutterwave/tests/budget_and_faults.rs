//! The outbound budget holds under concurrency; 429 and 5xx-after-commit
//! behave as documented.

mod support;

use std::time::Duration;

use flutterwave::transfers::TransferRequest;
use flutterwave::{Indefinite, Reply};
use serde_json::json;
use support::Env;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn fifty_concurrent_callers_never_exceed_the_configured_rate() {
    let env = Env::start().await;
    let id = env.paid_checkout("rate-1", "100", "NGN").await;
    let mut config = env.config();
    config.rate_per_second = 20;
    config.burst = 10;
    let client = flutterwave::Client::new(config).unwrap();
    env.control("/_emulator/stats/reset", json!({})).await;
    let mut tasks = Vec::new();
    for _ in 0..50 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move {
            for _ in 0..2 {
                assert!(c.verify_transaction(id).await.is_definite());
            }
        }));
    }
    for t in tasks {
        t.await.unwrap();
    }
    let stats = env.stats().await;
    assert_eq!(stats["requests_total"].as_u64().unwrap(), 100, "every call went out once");
    let max = stats["max_requests_in_one_second"].as_u64().unwrap();
    assert!(max <= 20, "the emulator saw {max} requests in one second with a budget of 20/s");
    assert!(max >= 10, "the budget was actually used ({max})");
}

#[tokio::test]
async fn a_429_is_honoured_and_then_succeeds() {
    let env = Env::start().await;
    let id = env.paid_checkout("rate-2", "100", "NGN").await;
    env.faults(json!({"rate_limit_per_second": 2})).await;
    let client = env.client(); // 1000/s budget: it will hit the emulator's limit
    let mut tasks = Vec::new();
    for _ in 0..6 {
        let c = client.clone();
        tasks.push(tokio::spawn(async move { c.verify_transaction(id).await }));
    }
    for t in tasks {
        match t.await.unwrap() {
            Reply::Ok(tx) => assert_eq!(tx.id, id),
            other => panic!("a 429 should be retried after Retry-After, got {other:?}"),
        }
    }
    let stats = env.stats().await;
    assert!(stats["rate_limited_429"].as_u64().unwrap() >= 1, "the limit was hit: {stats}");
}

#[tokio::test]
async fn exhausted_429_retries_are_indefinite() {
    let env = Env::start().await;
    env.faults(json!({"rate_limit_per_second": 0.5})).await;
    let mut config = env.config();
    config.max_retries = 0;
    let client = flutterwave::Client::new(config).unwrap();
    let _ = client.balances().await; // uses this second's only slot... or is refused
    let mut saw_rate_limited = false;
    for _ in 0..3 {
        if let Reply::Indefinite(Indefinite::RateLimited { retry_after }) = client.balances().await {
            assert_eq!(retry_after, Some(Duration::from_secs(1)));
            saw_rate_limited = true;
        }
    }
    assert!(saw_rate_limited);
}

#[tokio::test]
async fn error_after_commit_applies_the_change_and_is_never_resent() {
    let env = Env::start().await;
    let client = env.client();
    env.faults(json!({"error_after_commit_rate": 1.0})).await;
    let req = TransferRequest {
        account_bank: "044".into(),
        account_number: "0690000040".into(),
        amount: "1000".parse().unwrap(),
        currency: "NGN".into(),
        reference: "commit-1".into(),
        debit_currency: None,
        narration: None,
        callback_url: None,
        beneficiary_name: None,
        destination_branch_code: None,
        meta: None,
    };
    match client.create_transfer(&req).await {
        Reply::Indefinite(Indefinite::Server { http_status: 503 }) => {}
        other => panic!("expected an indefinite 503, got {other:?}"),
    }
    let stats = env.stats().await;
    assert_eq!(stats["requests"]["POST /v3/transfers"], 1, "a money-moving call is not re-sent after a 5xx");
    env.faults(json!({"error_after_commit_rate": 0.0})).await;
    // The change was applied: the transfer exists, and the same reference is refused.
    let list = client.list_transfers(None, 1).await.ok().expect("list");
    assert_eq!(list.items.len(), 1);
    assert_eq!(list.items[0].reference.as_deref(), Some("commit-1"));
    assert!(
        matches!(client.create_transfer(&req).await, Reply::Rejected(e) if e.kind == flutterwave::ErrorKind::DuplicateReference)
    );
}

#[tokio::test]
async fn reads_are_retried_through_5xx_and_latency() {
    let env = Env::start().await;
    let id = env.paid_checkout("flaky-1", "100", "NGN").await;
    env.faults(json!({"seed": 7, "error_rate": 0.5})).await;
    let mut config = env.config();
    config.max_retries = 8;
    let client = flutterwave::Client::new(config).unwrap();
    // Backoff starts near 1 s; give it room but keep the test short: one call.
    let t = client.verify_transaction(id).await.ok().expect("retried to success");
    assert_eq!(t.id, id);
    env.faults(json!({"error_rate": 0.0, "latency_ms": 300})).await;
    let mut config = env.config();
    config.request_timeout = Duration::from_millis(100);
    config.max_retries = 0;
    let client = flutterwave::Client::new(config).unwrap();
    assert!(matches!(client.verify_transaction(id).await, Reply::Indefinite(Indefinite::Timeout)));
}
