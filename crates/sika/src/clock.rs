//! The one clock. Every time Sika reads, stores or compares (`store::now_ms`
//! and everything built on it: expiry, sessions, lockouts, approvals, leases,
//! backups' age) comes from here. A running Sika reads the system's clock; a
//! test installs a [`ManualClock`] and moves it instead of sleeping.
//!
//! The clock is the process's: tests that install one rely on the test
//! runner giving each test its own process (`cargo nextest`, which the
//! README's test command uses).

use std::sync::atomic::{AtomicI64, Ordering};
use std::sync::{Arc, RwLock};
use std::time::Duration;

/// Milliseconds since the Unix epoch.
pub trait Clock: Send + Sync + std::fmt::Debug {
    fn now_ms(&self) -> i64;
}

/// The system's clock.
#[derive(Debug, Clone, Copy, Default)]
pub struct SystemClock;

impl Clock for SystemClock {
    fn now_ms(&self) -> i64 {
        let d = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
        i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
    }
}

/// A clock that moves only when told to (and so never goes backwards by itself).
#[derive(Debug, Clone)]
pub struct ManualClock(Arc<AtomicI64>);

impl ManualClock {
    /// Starts at `at_ms`.
    pub fn at(at_ms: i64) -> Self {
        ManualClock(Arc::new(AtomicI64::new(at_ms)))
    }

    /// Starts at the system's now.
    pub fn starting_now() -> Self {
        Self::at(SystemClock.now_ms())
    }

    pub fn advance(&self, by: Duration) {
        self.0.fetch_add(i64::try_from(by.as_millis()).unwrap_or(i64::MAX), Ordering::SeqCst);
    }

    pub fn set(&self, at_ms: i64) {
        self.0.store(at_ms, Ordering::SeqCst);
    }
}

impl Clock for ManualClock {
    fn now_ms(&self) -> i64 {
        self.0.load(Ordering::SeqCst)
    }
}

static CLOCK: RwLock<Option<Arc<dyn Clock>>> = RwLock::new(None);

/// Now, from the installed clock (the system's unless a test installed another).
pub fn now_ms() -> i64 {
    match CLOCK.read() {
        Ok(c) => match c.as_ref() {
            Some(clock) => clock.now_ms(),
            None => SystemClock.now_ms(),
        },
        Err(_) => SystemClock.now_ms(),
    }
}

/// Makes `clock` the process's clock (tests; `sika` itself never calls it).
#[doc(hidden)]
pub fn install(clock: Arc<dyn Clock>) {
    if let Ok(mut c) = CLOCK.write() {
        *c = Some(clock);
    }
}

/// A manual clock at the system's now, installed; the test moves it.
#[doc(hidden)]
pub fn install_manual() -> ManualClock {
    let clock = ManualClock::starting_now();
    install(Arc::new(clock.clone()));
    clock
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_manual_clock_moves_only_when_told() {
        let c = ManualClock::at(1_000);
        assert_eq!(c.now_ms(), 1_000);
        c.advance(Duration::from_secs(72 * 3600));
        assert_eq!(c.now_ms(), 1_000 + 72 * 3_600_000);
        c.set(5);
        assert_eq!(c.now_ms(), 5);
        assert!(SystemClock.now_ms() > 1_700_000_000_000, "the system clock reads the real time");
    }
}
