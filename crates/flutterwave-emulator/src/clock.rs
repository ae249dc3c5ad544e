//! The emulator's own time: the wall clock plus an offset a test may move
//! forward (`POST /_emulator/clock`), and the timers that settle pending
//! charges, refunds and transfers. Moving the clock runs every timer that
//! became due before the call answers, so a test that moves time and then
//! asks sees the outcome at once, without sleeping for it.

use std::sync::Mutex;
use std::sync::atomic::{AtomicI64, Ordering};
use std::time::Duration;

use tokio::sync::Notify;

type Task = Box<dyn FnOnce() + Send>;

struct Timer {
    due_ms: i64,
    seq: u64,
    run: Task,
}

#[derive(Default)]
pub struct Clock {
    offset_ms: AtomicI64,
    timers: Mutex<(Vec<Timer>, u64)>,
    changed: Notify,
}

impl Clock {
    /// Milliseconds since the epoch, as the emulator sees them.
    pub fn now_ms(&self) -> i64 {
        crate::time::now_ms().saturating_add(self.offset_ms.load(Ordering::SeqCst))
    }

    /// Runs `task` once the emulator's time has moved `delay` on (by waiting, or by a test moving it).
    pub fn after(&self, delay: Duration, task: impl FnOnce() + Send + 'static) {
        let due_ms = self.now_ms().saturating_add(i64::try_from(delay.as_millis()).unwrap_or(i64::MAX));
        {
            let mut t = self.timers.lock().unwrap_or_else(|e| e.into_inner());
            t.1 += 1;
            let seq = t.1;
            t.0.push(Timer { due_ms, seq, run: Box::new(task) });
        }
        self.changed.notify_waiters();
    }

    /// Moves time forward by `ms` (never back) and runs what became due, in due order.
    pub fn advance(&self, ms: i64) -> i64 {
        self.offset_ms.fetch_add(ms.max(0), Ordering::SeqCst);
        self.run_due();
        self.changed.notify_waiters();
        self.now_ms()
    }

    /// How far the clock has been moved.
    pub fn offset_ms(&self) -> i64 {
        self.offset_ms.load(Ordering::SeqCst)
    }

    /// Runs every due timer, earliest first; a timer that schedules another runs it too when due.
    fn run_due(&self) {
        loop {
            let next = {
                let mut t = self.timers.lock().unwrap_or_else(|e| e.into_inner());
                let now = self.now_ms();
                let pick =
                    t.0.iter()
                        .enumerate()
                        .filter(|(_, x)| x.due_ms <= now)
                        .min_by_key(|(_, x)| (x.due_ms, x.seq))
                        .map(|(i, _)| i);
                pick.map(|i| t.0.swap_remove(i))
            };
            match next {
                // Run outside the lock: a task may schedule another.
                Some(timer) => (timer.run)(),
                None => return,
            }
        }
    }

    fn next_due(&self) -> Option<i64> {
        self.timers.lock().unwrap_or_else(|e| e.into_inner()).0.iter().map(|t| t.due_ms).min()
    }

    /// Runs timers as the wall clock reaches them; started once per emulator.
    pub async fn drive(self: std::sync::Arc<Self>) {
        loop {
            let changed = self.changed.notified();
            tokio::pin!(changed);
            changed.as_mut().enable();
            self.run_due();
            let wait = match self.next_due() {
                Some(due) => Duration::from_millis(u64::try_from(due - self.now_ms()).unwrap_or(0).max(1)),
                None => Duration::from_secs(3600),
            };
            tokio::select! {
                _ = tokio::time::sleep(wait) => {}
                _ = &mut changed => {}
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;
    use std::sync::atomic::AtomicUsize;

    #[test]
    fn moving_the_clock_runs_what_became_due_in_order_and_nothing_else() {
        let clock = Arc::new(Clock::default());
        let order = Arc::new(Mutex::new(Vec::new()));
        for (name, secs) in [("late", 120), ("early", 60), ("never", 3600)] {
            let o = order.clone();
            clock.after(Duration::from_secs(secs), move || o.lock().unwrap().push(name));
        }
        assert!(order.lock().unwrap().is_empty(), "nothing is due yet");
        clock.advance(121_000);
        assert_eq!(*order.lock().unwrap(), ["early", "late"]);
        let before = clock.now_ms();
        clock.advance(-5_000);
        assert!(clock.now_ms() >= before, "time never goes back");
    }

    #[test]
    fn a_timer_may_schedule_the_next_step() {
        let clock = Arc::new(Clock::default());
        let ran = Arc::new(AtomicUsize::new(0));
        let (c, r) = (clock.clone(), ran.clone());
        clock.after(Duration::from_secs(6), move || {
            r.fetch_add(1, Ordering::SeqCst);
            let r = r.clone();
            c.after(Duration::from_secs(60), move || {
                r.fetch_add(10, Ordering::SeqCst);
            });
        });
        clock.advance(7_000);
        assert_eq!(ran.load(Ordering::SeqCst), 1);
        clock.advance(60_000);
        assert_eq!(ran.load(Ordering::SeqCst), 11);
    }

    #[tokio::test]
    async fn without_a_test_the_wall_clock_drives_the_timers() {
        let clock = Arc::new(Clock::default());
        tokio::spawn(clock.clone().drive());
        let (tx, rx) = tokio::sync::oneshot::channel();
        clock.after(Duration::from_millis(30), move || {
            let _ = tx.send(());
        });
        tokio::time::timeout(Duration::from_secs(5), rx).await.expect("ran on time").unwrap();
    }
}
