//! The outbound budget shared by every process of one Flutterwave account.
//!
//! A [`Ledger`] keeps one schedule of send times where every process sees it
//! (Sika keeps it in a PostgreSQL row, on the database's clock). A process
//! leases a few consecutive send times at once — `interval` apart, so that no
//! window of one second ever holds more than the account's rate — and sends
//! each request at its time. Nothing is returned: an unused send time (its
//! process died, or was late) is simply lost, and a lease reaches at most a
//! fraction of a second ahead, so a dead process costs that much and no more.
//!
//! - **One clock.** Send times are the ledger's; a process maps them onto its
//!   own clock at each lease, never earlier than the ledger meant (it waits
//!   from when the answer arrived) and never later than [`TOLERANCE`] past it
//!   (it drops the time then).
//! - **Lanes.** Settlement ([`Lane::Background`]) may lease up to
//!   [`SETTLEMENT_HORIZON`] ahead; polling and visitors only when the
//!   schedule is nearly idle ([`LOW_HORIZON`]), so across every process
//!   settlement goes first, then polling, then visitors. Visitors also pass
//!   their own share of the rate in the ledger. Within a process, a waiter of a
//!   higher lane is served first.
//! - **429.** A pause is written to the ledger; no lease starts before it ends,
//!   and times already leased elsewhere run out within a lease's reach.

use std::collections::VecDeque;
use std::fmt::Debug;
use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use tokio::sync::Notify;
use tokio::time::Instant;

use super::{INTERACTIVE_SHARE, Lane};

/// What a ledger call returns: its answer, or why it could not be asked.
pub type LedgerFuture<'a, T> = Pin<Box<dyn Future<Output = Result<T, String>> + Send + 'a>>;

/// A lease request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Ask {
    pub lane: Lane,
    /// Consecutive send times wanted.
    pub n: u32,
    /// Between two send times, in microseconds.
    pub interval_us: i64,
    /// Granted only if the first time is no further ahead than this.
    pub horizon_us: i64,
    /// For visitors: the spacing of their own share of the rate.
    pub interactive_interval_us: i64,
}

/// A ledger's answer, on its own clock (microseconds since the epoch).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Grant {
    /// `n` send times: `first_us`, then every `interval_us`.
    Slots { now_us: i64, first_us: i64, n: u32, interval_us: i64, paused_until_us: i64 },
    /// None now: the schedule is full that far ahead, or paused. Ask again in `retry_in_us`.
    Wait { now_us: i64, retry_in_us: i64, paused_until_us: i64 },
}

/// Where the one schedule of an account lives.
pub trait Ledger: Send + Sync + Debug {
    /// Takes `ask.n` consecutive send times, starting at the latest of the
    /// schedule's next free time, the ledger's now and any pause — provided
    /// that start is within `ask.horizon_us` of now (for visitors, their share
    /// must have room too); otherwise [`Grant::Wait`].
    fn lease(&self, ask: Ask) -> LedgerFuture<'_, Grant>;
    /// Pauses the schedule for `d` from the ledger's now (it never shortens a pause).
    fn pause(&self, d: Duration) -> LedgerFuture<'_, ()>;
}

/// Send times are spaced by 1.05 s / rate: room for network jitter between
/// our send and Flutterwave's count, and for [`TOLERANCE`].
const SPACING_PER_RATE_US: i64 = 1_050_000;
/// A leased time not used within this long after it is dropped, never used late.
pub const TOLERANCE: Duration = Duration::from_millis(25);
/// How far ahead settlement may lease.
pub const SETTLEMENT_HORIZON: Duration = Duration::from_millis(200);
/// How far ahead polling and visitors may lease: only a nearly idle schedule.
pub const LOW_HORIZON: Duration = Duration::from_millis(20);
/// A ledger that does not answer in this long is asked again later.
const LEDGER_TIMEOUT: Duration = Duration::from_secs(2);
/// After a ledger error, wait this long before asking again.
const LEDGER_RETRY: Duration = Duration::from_millis(200);

#[derive(Debug, Clone, Copy)]
struct Slot {
    at: Instant,
    until: Instant,
}

#[derive(Debug, Default)]
struct State {
    slots: VecDeque<Slot>,
    leasing: bool,
    waiting: [u32; 3],
    not_before: Option<Instant>,
    paused_until: Option<Instant>,
}

impl State {
    fn top_waiting(&self) -> Option<usize> {
        self.waiting.iter().position(|w| *w > 0)
    }
}

#[derive(Debug)]
pub(crate) struct Shared {
    ledger: Arc<dyn Ledger>,
    interval_us: i64,
    interactive_interval_us: i64,
    max_lease: u32,
    state: Mutex<State>,
    changed: Notify,
    waited: AtomicU64,
    ledger_errors: AtomicU64,
}

fn lane_index(lane: Lane) -> usize {
    match lane {
        Lane::Background => 0,
        Lane::Polling => 1,
        Lane::Interactive => 2,
    }
}

fn lane_of(index: usize) -> Lane {
    match index {
        0 => Lane::Background,
        1 => Lane::Polling,
        _ => Lane::Interactive,
    }
}

fn micros(d: Duration) -> i64 {
    i64::try_from(d.as_micros()).unwrap_or(i64::MAX)
}

fn after(base: Instant, offset_us: i64) -> Instant {
    if offset_us >= 0 {
        base + Duration::from_micros(offset_us.unsigned_abs())
    } else {
        base.checked_sub(Duration::from_micros(offset_us.unsigned_abs())).unwrap_or(base)
    }
}

/// Counts a waiter of a lane while it waits.
struct Waiting<'a> {
    shared: &'a Shared,
    lane: usize,
    done: bool,
}

impl Waiting<'_> {
    fn leave(&mut self, s: &mut State) {
        if !self.done {
            s.waiting[self.lane] = s.waiting[self.lane].saturating_sub(1);
            self.done = true;
        }
    }
}

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        if !self.done {
            let mut s = self.shared.lock();
            self.leave(&mut s);
        }
    }
}

enum Next {
    Take(Slot),
    Lease(Lane, u32),
    Wait(Instant),
    GiveUp,
}

impl Shared {
    pub(crate) fn new(rate: u32, ledger: Arc<dyn Ledger>) -> Self {
        let rate = rate.max(1);
        let interactive = (f64::from(rate) * INTERACTIVE_SHARE).max(0.2);
        Shared {
            ledger,
            interval_us: SPACING_PER_RATE_US / i64::from(rate),
            interactive_interval_us: (SPACING_PER_RATE_US as f64 / interactive) as i64,
            // A fifth of a second's worth at a time: few round trips, little lost if this process dies.
            max_lease: rate.div_ceil(5).max(1),
            state: Mutex::new(State::default()),
            changed: Notify::new(),
            waited: AtomicU64::new(0),
            ledger_errors: AtomicU64::new(0),
        }
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        self.state.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub(crate) fn waited(&self) -> u64 {
        self.waited.load(Ordering::Relaxed)
    }

    /// Takes a send time for `lane` and waits for it; with `max_wait`, gives
    /// up (`false`, nothing taken) when none can come in time.
    pub(crate) async fn acquire(&self, lane: Lane, max_wait: Option<Duration>) -> bool {
        let deadline = max_wait.map(|w| Instant::now() + w);
        let index = lane_index(lane);
        self.lock().waiting[index] += 1;
        let mut me = Waiting { shared: self, lane: index, done: false };
        let mut counted = false;
        loop {
            let notified = self.changed.notified();
            tokio::pin!(notified);
            notified.as_mut().enable();
            let now = Instant::now();
            let next = {
                let mut s = self.lock();
                s.slots.retain(|x| x.until >= now);
                let higher_waiting = s.waiting[..index].iter().any(|w| *w > 0);
                if let Some(p) = s.paused_until.filter(|p| *p > now) {
                    Next::Wait(p)
                } else if let Some(front) = s.slots.front().copied().filter(|_| !higher_waiting) {
                    if deadline.is_some_and(|d| front.at > d) {
                        Next::GiveUp
                    } else {
                        s.slots.pop_front();
                        me.leave(&mut s);
                        Next::Take(front)
                    }
                } else if !s.leasing && s.not_before.is_none_or(|t| t <= now) {
                    let top = s.top_waiting().unwrap_or(index);
                    let held = u32::try_from(s.slots.len()).unwrap_or(u32::MAX);
                    let n = s.waiting[top].saturating_sub(held).clamp(1, self.max_lease);
                    s.leasing = true;
                    Next::Lease(lane_of(top), n)
                } else {
                    let soonest = s.slots.front().map(|x| x.at).into_iter().chain(s.not_before).min();
                    Next::Wait(soonest.unwrap_or(now + Duration::from_millis(50)).max(now + Duration::from_millis(1)))
                }
            };
            match next {
                Next::Take(slot) => {
                    if slot.at > Instant::now() {
                        tokio::time::sleep_until(slot.at).await;
                    }
                    // Others may lease now that this waiter is served.
                    self.changed.notify_waiters();
                    return true;
                }
                Next::GiveUp => return false,
                Next::Lease(lane, n) => self.lease(lane, n).await,
                Next::Wait(until) => {
                    if !counted {
                        self.waited.fetch_add(1, Ordering::Relaxed);
                        counted = true;
                    }
                    let until = match deadline {
                        Some(d) if d <= Instant::now() => return false,
                        Some(d) => until.min(d),
                        None => until,
                    };
                    let _ = tokio::time::timeout_at(until, notified).await;
                }
            }
        }
    }

    async fn lease(&self, lane: Lane, n: u32) {
        let horizon = if lane == Lane::Background { SETTLEMENT_HORIZON } else { LOW_HORIZON };
        let ask = Ask {
            lane,
            n,
            interval_us: self.interval_us,
            horizon_us: micros(horizon),
            interactive_interval_us: self.interactive_interval_us,
        };
        let sent = Instant::now();
        let answer = tokio::time::timeout(LEDGER_TIMEOUT, self.ledger.lease(ask)).await;
        let received = Instant::now();
        {
            let mut s = self.lock();
            s.leasing = false;
            let paused = |s: &mut State, now_us: i64, until_us: i64| {
                if until_us > now_us {
                    let until = after(received, until_us - now_us);
                    s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
                }
            };
            match answer {
                Ok(Ok(Grant::Slots { now_us, first_us, n, interval_us, paused_until_us })) => {
                    paused(&mut s, now_us, paused_until_us);
                    for i in 0..i64::from(n) {
                        let offset = first_us + i * interval_us - now_us;
                        // Never before the ledger's time (waited from the answer's arrival),
                        // never more than TOLERANCE after it (reckoned from the asking).
                        let slot = Slot { at: after(received, offset), until: after(sent, offset) + TOLERANCE };
                        if slot.until >= slot.at {
                            s.slots.push_back(slot);
                        }
                    }
                    s.not_before = None;
                }
                Ok(Ok(Grant::Wait { now_us, retry_in_us, paused_until_us })) => {
                    paused(&mut s, now_us, paused_until_us);
                    s.not_before = Some(after(received, retry_in_us.max(1_000)));
                }
                Ok(Err(_)) | Err(_) => {
                    self.ledger_errors.fetch_add(1, Ordering::Relaxed);
                    s.not_before = Some(received + LEDGER_RETRY);
                }
            }
        }
        self.changed.notify_waiters();
    }

    /// After a 429: this process stops at once, drops what it leased, and the
    /// ledger keeps every other process from starting a lease before it ends.
    pub(crate) async fn pause(&self, d: Duration) {
        {
            let mut s = self.lock();
            let until = Instant::now() + d;
            s.paused_until = Some(s.paused_until.map_or(until, |p| p.max(until)));
            s.slots.clear();
        }
        if tokio::time::timeout(LEDGER_TIMEOUT, self.ledger.pause(d)).await.is_err() {
            self.ledger_errors.fetch_add(1, Ordering::Relaxed);
        }
        self.changed.notify_waiters();
    }
}

/// A ledger in memory, shared by several budgets in one process: for tests
/// of the sharing itself (Sika keeps its ledger in PostgreSQL). Its clock is
/// tokio's, so paused-time tests drive it.
#[derive(Debug, Default)]
pub struct MemoryLedger {
    state: Mutex<MemoryState>,
    /// Every lease asked, for tests.
    pub leases: AtomicU64,
}

#[derive(Debug, Default)]
struct MemoryState {
    next_us: i64,
    paused_until_us: i64,
    interactive_next_us: i64,
    epoch: Option<Instant>,
}

impl MemoryLedger {
    fn now_us(s: &mut MemoryState) -> i64 {
        let epoch = *s.epoch.get_or_insert_with(Instant::now);
        micros(Instant::now().duration_since(epoch))
    }
}

impl Ledger for MemoryLedger {
    fn lease(&self, ask: Ask) -> LedgerFuture<'_, Grant> {
        self.leases.fetch_add(1, Ordering::Relaxed);
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Self::now_us(&mut s);
        let start = s.next_us.max(now).max(s.paused_until_us);
        let wait = |s: &MemoryState, start: i64| Grant::Wait {
            now_us: now,
            retry_in_us: (start - now - ask.horizon_us).max(1_000),
            paused_until_us: s.paused_until_us,
        };
        let grant = if start - now > ask.horizon_us {
            wait(&s, start)
        } else if ask.lane == Lane::Interactive && s.interactive_next_us.max(now) - now > ask.horizon_us {
            wait(&s, s.interactive_next_us.max(now))
        } else {
            if ask.lane == Lane::Interactive {
                s.interactive_next_us = s.interactive_next_us.max(now) + ask.interactive_interval_us;
            }
            s.next_us = start + i64::from(ask.n) * ask.interval_us;
            Grant::Slots {
                now_us: now,
                first_us: start,
                n: ask.n,
                interval_us: ask.interval_us,
                paused_until_us: s.paused_until_us,
            }
        };
        Box::pin(async move { Ok(grant) })
    }

    fn pause(&self, d: Duration) -> LedgerFuture<'_, ()> {
        let mut s = self.state.lock().unwrap_or_else(|e| e.into_inner());
        let now = Self::now_us(&mut s);
        s.paused_until_us = s.paused_until_us.max(now + micros(d));
        Box::pin(async { Ok(()) })
    }
}

#[cfg(test)]
mod tests {
    use super::super::Budget;
    use super::*;

    /// Three processes sharing one ledger, each with many concurrent callers:
    /// never more than the rate in any one-second window, all together.
    #[tokio::test(start_paused = true)]
    async fn processes_sharing_a_ledger_never_exceed_the_rate_together() {
        let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
        let sent = Arc::new(Mutex::new(Vec::new()));
        let start = Instant::now();
        let mut tasks = Vec::new();
        for _ in 0..3 {
            let b = Arc::new(Budget::shared(20, ledger.clone()));
            for _ in 0..30 {
                let (b, sent) = (b.clone(), sent.clone());
                tasks.push(tokio::spawn(async move {
                    for _ in 0..10 {
                        b.acquire().await;
                        sent.lock().unwrap().push(Instant::now().duration_since(start));
                    }
                }));
            }
        }
        for t in tasks {
            t.await.unwrap();
        }
        let times = sent.lock().unwrap().clone();
        assert_eq!(times.len(), 900);
        for t in &times {
            let in_window = times.iter().filter(|u| **u >= *t && **u < *t + Duration::from_secs(1)).count();
            assert!(in_window <= 20, "{in_window} within one second from {t:?}");
        }
        let took = times.iter().max().unwrap().as_secs_f64();
        // 900 calls at 20/s with 5 % spacing: about 47 s, as one process alone would take.
        assert!(took < 900.0 / 20.0 * 1.1, "took {took} s");
    }

    /// A 429 seen by one process pauses the others.
    #[tokio::test(start_paused = true)]
    async fn a_pause_in_one_process_holds_the_others() {
        let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
        let a = Budget::shared(50, ledger.clone());
        let b = Budget::shared(50, ledger.clone());
        b.acquire().await;
        a.pause(Duration::from_secs(3)).await;
        let paused_at = Instant::now();
        for _ in 0..5 {
            b.acquire().await;
        }
        // What b leased before the pause runs out within a lease's reach; the rest waits.
        assert!(
            Instant::now().duration_since(paused_at) >= Duration::from_millis(2_500),
            "{:?}",
            Instant::now().duration_since(paused_at)
        );
    }

    /// Settlement goes first: while one process is saturated with settlement,
    /// another's polling waits; visitors give up rather than queue.
    #[tokio::test(start_paused = true)]
    async fn settlement_goes_before_polling_and_visitors_everywhere() {
        let ledger: Arc<dyn Ledger> = Arc::new(MemoryLedger::default());
        let busy = Arc::new(Budget::shared(10, ledger.clone()));
        let other = Arc::new(Budget::shared(10, ledger.clone()));
        let stop = Instant::now() + Duration::from_secs(10);
        let mut settlement = Vec::new();
        for _ in 0..20 {
            let b = busy.clone();
            settlement.push(tokio::spawn(async move {
                let mut n = 0u32;
                while Instant::now() < stop {
                    b.acquire().await;
                    n += 1;
                }
                n
            }));
        }
        let o = other.clone();
        let polling = tokio::spawn(async move {
            let mut n = 0u32;
            while Instant::now() < stop {
                if o.acquire_within(Lane::Polling, Duration::from_millis(500)).await {
                    n += 1;
                }
            }
            n
        });
        let o = other.clone();
        let visitors = tokio::spawn(async move {
            let mut n = 0u32;
            while Instant::now() < stop {
                if o.acquire_within(Lane::Interactive, Duration::from_millis(200)).await {
                    n += 1;
                }
            }
            n
        });
        let mut s = 0;
        for t in settlement {
            s += t.await.unwrap();
        }
        let (p, v) = (polling.await.unwrap(), visitors.await.unwrap());
        assert!(s >= 85, "settlement got {s} of about 95");
        assert!(p + v <= 5, "polling {p} and visitors {v} waited for settlement");
    }
}
