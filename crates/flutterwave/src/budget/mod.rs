//! The outbound budget: one per client, shared by every call and task.
//!
//! Two rules must both allow a request: a token bucket (`rate` per second,
//! up to `burst` at once after a quiet spell) and a sliding window that never
//! lets more than `rate` requests leave within any one second, so a provider
//! that counts per second never sees more than the configured rate. A 429
//! pauses everyone until its `Retry-After` (or a backoff) has passed.
//!
//! Calls come in three lanes. [`Lane::Background`] (settlement: webhook
//! verification, payout dispatch and lookups) may use the whole budget;
//! [`Lane::Polling`] (the reconciler and expiry) comes after it;
//! [`Lane::Interactive`] (work triggered by an unauthenticated visitor, like
//! the return page) first passes its own smaller bucket — a share of the rate —
//! and gives up rather than queue for long, so visitors can never crowd
//! settlement out.
//!
//! One process alone keeps the budget in memory. Several processes sharing
//! one Flutterwave account share it through a [`Ledger`] (see [`shared`]):
//! then the rate, the lanes and a 429's pause hold for all of them together.

pub mod shared;

use std::collections::VecDeque;
use std::sync::Arc;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A little slack on the one-second window, for network jitter between our send and the provider's count.
const WINDOW: Duration = Duration::from_millis(1_050);

pub use shared::{Ask, Grant, Ledger, LedgerFuture, MemoryLedger};

/// Who is asking, in the order they are served: settlement work, polling, a visitor.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Lane {
    Background,
    Polling,
    Interactive,
}

/// The budget: in this process, or shared through a ledger.
#[derive(Debug)]
pub struct Budget {
    local: Local,
    shared: Option<shared::Shared>,
}

/// The in-process budget.
#[derive(Debug)]
struct Local {
    rate: u32,
    burst: u32,
    state: Mutex<State>,
    /// The interactive lane's own bucket (its rate and state).
    interactive_rate: f64,
    interactive: Mutex<Bucket>,
    /// Requests that had to wait for a place (for monitoring).
    waited: std::sync::atomic::AtomicU64,
    /// 429 answers that paused the budget (for monitoring).
    rate_limited: std::sync::atomic::AtomicU64,
}

#[derive(Debug)]
struct Bucket {
    tokens: f64,
    refilled: Instant,
}

impl Bucket {
    fn refill(&mut self, now: Instant, rate: f64, cap: f64) {
        let elapsed = now.duration_since(self.refilled).as_secs_f64();
        self.tokens = (self.tokens + elapsed * rate).min(cap);
        self.refilled = now;
    }
}

#[derive(Debug)]
struct State {
    bucket: Bucket,
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

/// The share of the rate the interactive lane may use at most.
pub const INTERACTIVE_SHARE: f64 = 0.4;

impl Budget {
    /// `rate` requests per second (≥ 1), bursts of up to `burst` (≥ 1), in this process.
    pub fn new(rate: u32, burst: u32) -> Self {
        Budget { local: Local::new(rate, burst), shared: None }
    }

    /// `rate` requests per second for every process that shares `ledger`.
    pub fn shared(rate: u32, ledger: Arc<dyn Ledger>) -> Self {
        Budget { local: Local::new(rate, 1), shared: Some(shared::Shared::new(rate, ledger)) }
    }

    pub fn rate(&self) -> u32 {
        self.local.rate
    }

    /// The interactive lane's rate (requests per second).
    pub fn interactive_rate(&self) -> f64 {
        self.local.interactive_rate
    }

    /// Whether the schedule is shared with other processes.
    pub fn is_shared(&self) -> bool {
        self.shared.is_some()
    }

    /// How many requests had to wait for a place, and how many 429s paused the budget.
    pub fn stats(&self) -> (u64, u64) {
        use std::sync::atomic::Ordering::Relaxed;
        let (mut waited, limited) = (self.local.waited.load(Relaxed), self.local.rate_limited.load(Relaxed));
        if let Some(s) = &self.shared {
            waited += s.waited();
        }
        (waited, limited)
    }

    /// Waits until a background request may leave, and takes its place.
    pub async fn acquire(&self) {
        self.acquire_lane(Lane::Background).await
    }

    /// Waits until a request of `lane` may leave (no deadline), and takes its place.
    pub async fn acquire_lane(&self, lane: Lane) {
        match &self.shared {
            Some(s) => {
                s.acquire(lane, None).await;
            }
            None => self.local.acquire().await,
        }
    }

    /// Takes a place for `lane`, waiting at most `max_wait`; `false` if none
    /// came in time (nothing is taken then).
    pub async fn acquire_within(&self, lane: Lane, max_wait: Duration) -> bool {
        match &self.shared {
            Some(s) => s.acquire(lane, Some(max_wait)).await,
            None => self.local.acquire_within(lane, max_wait).await,
        }
    }

    /// Stops every caller until `d` has passed (after a 429) — with a ledger,
    /// every process that shares it.
    pub async fn pause(&self, d: Duration) {
        self.local.pause(d).await;
        if let Some(s) = &self.shared {
            s.pause(d).await;
        }
    }
}

impl Local {
    fn new(rate: u32, burst: u32) -> Self {
        let rate = rate.max(1);
        let burst = burst.max(1);
        let now = Instant::now();
        let interactive_rate = (f64::from(rate) * INTERACTIVE_SHARE).max(0.2);
        Local {
            rate,
            burst,
            state: Mutex::new(State {
                bucket: Bucket { tokens: f64::from(burst), refilled: now },
                sent: VecDeque::with_capacity(rate as usize),
                paused_until: None,
            }),
            interactive_rate,
            interactive: Mutex::new(Bucket { tokens: interactive_rate.max(1.0), refilled: now }),
            waited: Default::default(),
            rate_limited: Default::default(),
        }
    }

    async fn acquire(&self) {
        let mut counted = false;
        loop {
            match self.try_take().await {
                Ok(()) => return,
                Err(wait) => {
                    if !counted {
                        self.waited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        counted = true;
                    }
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await
                }
            }
        }
    }

    async fn acquire_within(&self, lane: Lane, max_wait: Duration) -> bool {
        let deadline = Instant::now() + max_wait;
        if lane == Lane::Interactive {
            // The lane's own share first: a flood of visitors waits here, not in the shared queue.
            loop {
                let wait = {
                    let mut b = self.interactive.lock().await;
                    let now = Instant::now();
                    let cap = self.interactive_rate.max(1.0);
                    b.refill(now, self.interactive_rate, cap);
                    if b.tokens >= 1.0 {
                        b.tokens -= 1.0;
                        break;
                    }
                    Duration::from_secs_f64((1.0 - b.tokens) / self.interactive_rate)
                };
                if Instant::now() + wait > deadline {
                    return false;
                }
                tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
            }
        }
        loop {
            match self.try_take().await {
                Ok(()) => return true,
                Err(wait) if Instant::now() + wait <= deadline => {
                    tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
                }
                Err(_) => return false,
            }
        }
    }

    /// Takes a place now, or says how long to wait.
    async fn try_take(&self) -> Result<(), Duration> {
        let mut s = self.state.lock().await;
        let now = Instant::now();
        s.bucket.refill(now, f64::from(self.rate), f64::from(self.burst));
        while s.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
            s.sent.pop_front();
        }
        if let Some(until) = s.paused_until.filter(|u| *u > now) {
            Err(until - now)
        } else if s.sent.len() >= self.rate as usize {
            let oldest = s.sent.front().copied().unwrap_or(now);
            Err((oldest + WINDOW).saturating_duration_since(now))
        } else if s.bucket.tokens < 1.0 {
            Err(Duration::from_secs_f64((1.0 - s.bucket.tokens) / f64::from(self.rate)))
        } else {
            s.bucket.tokens -= 1.0;
            s.sent.push_back(now);
            Ok(())
        }
    }

    async fn pause(&self, d: Duration) {
        self.rate_limited.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        let mut s = self.state.lock().await;
        let until = Instant::now() + d;
        s.paused_until = Some(s.paused_until.map_or(until, |u| u.max(until)));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(start_paused = true)]
    async fn never_more_than_rate_in_any_window() {
        let b = std::sync::Arc::new(Budget::new(5, 10));
        let start = Instant::now();
        let mut times = Vec::new();
        for _ in 0..20 {
            b.acquire().await;
            times.push(Instant::now().duration_since(start));
        }
        for (i, t) in times.iter().enumerate() {
            let in_window = times[i..].iter().filter(|u| **u < *t + Duration::from_secs(1)).count();
            assert!(in_window <= 5, "{in_window} requests within one second from {t:?}");
        }
    }

    #[tokio::test(start_paused = true)]
    async fn a_pause_holds_everyone() {
        let b = Budget::new(100, 100);
        b.pause(Duration::from_secs(3)).await;
        let start = Instant::now();
        b.acquire().await;
        assert!(Instant::now().duration_since(start) >= Duration::from_secs(3));
    }

    #[tokio::test(start_paused = true)]
    async fn a_visitor_flood_leaves_background_its_share() {
        let b = std::sync::Arc::new(Budget::new(10, 10));
        let stop = Instant::now() + Duration::from_secs(20);
        let mut flood = Vec::new();
        for _ in 0..200 {
            let b = b.clone();
            flood.push(tokio::spawn(async move {
                let mut got = 0u32;
                while Instant::now() < stop {
                    if b.acquire_within(Lane::Interactive, Duration::from_millis(500)).await {
                        got += 1;
                    }
                }
                got
            }));
        }
        let bg = b.clone();
        let background = tokio::spawn(async move {
            let mut got = 0u32;
            while Instant::now() < stop {
                bg.acquire().await;
                got += 1;
            }
            got
        });
        let mut interactive = 0;
        for f in flood {
            interactive += f.await.unwrap();
        }
        let background = background.await.unwrap();
        // 20 s at 10/s: visitors get at most their 40 % (plus one bucket), settlement the rest.
        assert!(interactive <= 4 * 20 + 5, "visitors took {interactive}");
        assert!(background >= 5 * 20, "background got only {background}");
    }
}
