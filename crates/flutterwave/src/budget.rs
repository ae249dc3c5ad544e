//! The outbound budget: one per client, shared by every call and task.
//!
//! Two rules must both allow a request: a token bucket (`rate` per second,
//! up to `burst` at once after a quiet spell) and a sliding window that never
//! lets more than `rate` requests leave within any one second, so a provider
//! that counts per second never sees more than the configured rate. A 429
//! pauses everyone until its `Retry-After` (or a backoff) has passed.

use std::collections::VecDeque;
use std::time::Duration;

use tokio::sync::Mutex;
use tokio::time::Instant;

/// A little slack on the one-second window, for network jitter between our send and the provider's count.
const WINDOW: Duration = Duration::from_millis(1_050);

#[derive(Debug)]
pub struct Budget {
    rate: u32,
    burst: u32,
    state: Mutex<State>,
}

#[derive(Debug)]
struct State {
    tokens: f64,
    refilled: Instant,
    sent: VecDeque<Instant>,
    paused_until: Option<Instant>,
}

impl Budget {
    /// `rate` requests per second (≥ 1), bursts of up to `burst` (≥ 1).
    pub fn new(rate: u32, burst: u32) -> Self {
        let rate = rate.max(1);
        let burst = burst.max(1);
        Budget {
            rate,
            burst,
            state: Mutex::new(State {
                tokens: f64::from(burst),
                refilled: Instant::now(),
                sent: VecDeque::with_capacity(rate as usize),
                paused_until: None,
            }),
        }
    }

    pub fn rate(&self) -> u32 {
        self.rate
    }

    /// Waits until a request may leave, and takes its place.
    pub async fn acquire(&self) {
        loop {
            let wait = {
                let mut s = self.state.lock().await;
                let now = Instant::now();
                let elapsed = now.duration_since(s.refilled).as_secs_f64();
                s.tokens = (s.tokens + elapsed * f64::from(self.rate)).min(f64::from(self.burst));
                s.refilled = now;
                while s.sent.front().is_some_and(|t| now.duration_since(*t) >= WINDOW) {
                    s.sent.pop_front();
                }
                if let Some(until) = s.paused_until.filter(|u| *u > now) {
                    until - now
                } else if s.sent.len() >= self.rate as usize {
                    let oldest = s.sent.front().copied().unwrap_or(now);
                    (oldest + WINDOW).saturating_duration_since(now)
                } else if s.tokens < 1.0 {
                    Duration::from_secs_f64((1.0 - s.tokens) / f64::from(self.rate))
                } else {
                    s.tokens -= 1.0;
                    s.sent.push_back(now);
                    return;
                }
            };
            tokio::time::sleep(wait.max(Duration::from_millis(1))).await;
        }
    }

    /// Stops every caller until `d` has passed (after a 429).
    pub async fn pause(&self, d: Duration) {
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
}
