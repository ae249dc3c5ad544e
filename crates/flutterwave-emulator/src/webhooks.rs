//! Webhook delivery: signed as configured, only a 200 counts, retried on a
//! schedule, with drops, duplicates, reordering and delays on demand.

use std::sync::Arc;
use std::time::Duration;

use base64::Engine as _;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use tokio::sync::mpsc;

use crate::state::{SignatureScheme, State, lock};

#[derive(Debug)]
pub struct Job {
    pub body: Vec<u8>,
    pub content_type: &'static str,
    /// Overrides the configured URL (a card's or a transfer's `callback_url`).
    pub url: Option<String>,
}

#[derive(Debug, Clone)]
pub struct Outbox {
    tx: mpsc::UnboundedSender<Job>,
}

impl Outbox {
    pub fn channel() -> (Outbox, mpsc::UnboundedReceiver<Job>) {
        let (tx, rx) = mpsc::unbounded_channel();
        (Outbox { tx }, rx)
    }

    pub fn send(&self, body: serde_json::Value, url: Option<String>) {
        self.send_as(body, url, "application/json");
    }

    /// With a content type of its own (transfer webhooks come as `application/json;charset=utf-8`).
    pub fn send_as(&self, body: serde_json::Value, url: Option<String>, content_type: &'static str) {
        let _ = self.tx.send(Job { body: body.to_string().into_bytes(), content_type, url });
    }
}

/// How long a held webhook waits for a successor to swap with when reordering.
const REORDER_HOLD: Duration = Duration::from_millis(300);
/// How much later the earlier of a swapped pair is sent.
const REORDER_GAP: Duration = Duration::from_millis(100);

pub async fn run(state: Arc<State>, mut rx: mpsc::UnboundedReceiver<Job>, http: reqwest::Client) {
    let mut held: Option<Job> = None;
    loop {
        let job = if held.is_some() {
            match tokio::time::timeout(REORDER_HOLD, rx.recv()).await {
                Ok(Some(job)) => job,
                Ok(None) => break,
                Err(_) => {
                    if let Some(h) = held.take() {
                        dispatch(&state, &http, h, Duration::ZERO);
                    }
                    continue;
                }
            }
        } else {
            match rx.recv().await {
                Some(job) => job,
                None => break,
            }
        };
        if state.chance(|f| f.webhook_drop_rate) {
            lock(&state.stats).webhooks_dropped += 1;
            continue;
        }
        let copies = if state.chance(|f| f.webhook_duplicate_rate) {
            lock(&state.stats).webhooks_duplicated += 1;
            2
        } else {
            1
        };
        for _ in 1..copies {
            let copy = Job { body: job.body.clone(), content_type: job.content_type, url: job.url.clone() };
            dispatch(&state, &http, copy, Duration::ZERO);
        }
        if state.faults().webhook_reorder {
            match held.take() {
                Some(earlier) => {
                    dispatch(&state, &http, job, Duration::ZERO);
                    // Deliveries run concurrently: a head start keeps the swapped order on the wire.
                    dispatch(&state, &http, earlier, REORDER_GAP);
                }
                None => held = Some(job),
            }
        } else {
            dispatch(&state, &http, job, Duration::ZERO);
        }
    }
}

fn dispatch(state: &Arc<State>, http: &reqwest::Client, job: Job, extra_delay: Duration) {
    let url = match job.url.or_else(|| state.webhook_url.read().ok().and_then(|u| u.clone())) {
        Some(u) => u,
        None => return,
    };
    let faults = state.faults();
    let (state, http) = (state.clone(), http.clone());
    tokio::spawn(async move {
        let delay = Duration::from_millis(faults.webhook_delay_ms) + extra_delay;
        if !delay.is_zero() {
            tokio::time::sleep(delay).await;
        }
        for attempt in 0..=faults.webhook_retries {
            if attempt > 0 {
                tokio::time::sleep(Duration::from_millis(faults.webhook_retry_interval_ms)).await;
            }
            let mut req = http.post(&url).header("content-type", job.content_type).body(job.body.clone());
            if matches!(faults.signature, SignatureScheme::VerifHash | SignatureScheme::Both) {
                req = req.header("verif-hash", &state.secret_hash);
            }
            if matches!(faults.signature, SignatureScheme::Hmac | SignatureScheme::Both) {
                req = req.header("flutterwave-signature", sign(&state.secret_hash, &job.body));
            }
            lock(&state.stats).webhooks_sent += 1;
            // Only a 200 counts; any other status, a redirect or an error is a failure.
            if let Ok(res) = req.send().await
                && res.status().as_u16() == 200
            {
                lock(&state.stats).webhooks_acked += 1;
                return;
            }
        }
    });
}

/// `base64(HMAC-SHA256(secret hash, raw body))`.
pub fn sign(secret_hash: &str, body: &[u8]) -> String {
    let mut mac = match Hmac::<Sha256>::new_from_slice(secret_hash.as_bytes()) {
        Ok(m) => m,
        Err(_) => return String::new(),
    };
    mac.update(body);
    base64::engine::general_purpose::STANDARD.encode(mac.finalize().into_bytes())
}
