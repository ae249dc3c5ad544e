//! Background work as separate supervised tasks: each job runs its own loop
//! with its own pace and time limit, beats a heartbeat, and is restarted
//! (logged and counted) if it panics. `/readyz` turns a stalled or dead job
//! into a 503. Shutdown stops every job before the database closes.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::sync::watch;
use tokio::task::JoinSet;

use crate::store::now_ms;

/// One pass of a job: `Ok(true)` when it found work (the next pass starts at
/// once), `Ok(false)` when idle (it waits its interval), `Err` to log.
pub type Pass = Pin<Box<dyn Future<Output = Result<bool, String>> + Send>>;

/// A job's pace and limits.
#[derive(Debug, Clone, Copy)]
pub struct Schedule {
    /// Pause after an idle pass.
    pub every: Duration,
    /// A pass taking longer than this is cut off (and logged).
    pub timeout: Duration,
    /// No heartbeat for this long: the job counts as stalled.
    pub stall_after: Duration,
}

/// What `/readyz` and the logs know of one job.
#[derive(Debug)]
pub struct JobHealth {
    pub name: &'static str,
    last_beat: AtomicI64,
    restarts: AtomicU64,
    running: AtomicBool,
    stall_after_ms: i64,
}

impl JobHealth {
    pub fn last_beat(&self) -> i64 {
        self.last_beat.load(Ordering::Relaxed)
    }
    pub fn restarts(&self) -> u64 {
        self.restarts.load(Ordering::Relaxed)
    }
    /// Why the job is not healthy at `now`, if it is not.
    pub fn problem(&self, now: i64) -> Option<String> {
        if !self.running.load(Ordering::Relaxed) {
            return Some(format!("worker {} is not running", self.name));
        }
        let silent = now - self.last_beat();
        (silent > self.stall_after_ms)
            .then(|| format!("worker {} stalled ({} s without a heartbeat)", self.name, silent / 1000))
    }
}

/// Every job's health, shared with the web layer.
#[derive(Debug, Default)]
pub struct Health {
    jobs: Mutex<Vec<Arc<JobHealth>>>,
}

impl Health {
    /// The first problem among the jobs, if any.
    pub fn problem(&self) -> Option<String> {
        let now = now_ms();
        let jobs = self.jobs.lock().unwrap_or_else(|e| e.into_inner());
        jobs.iter().find_map(|j| j.problem(now))
    }

    pub fn jobs(&self) -> Vec<Arc<JobHealth>> {
        self.jobs.lock().unwrap_or_else(|e| e.into_inner()).clone()
    }
}

/// Starts and supervises jobs until `stop` flips.
pub struct Supervisor {
    health: Arc<Health>,
    stop: watch::Receiver<bool>,
    tasks: JoinSet<()>,
}

impl Supervisor {
    pub fn new(stop: watch::Receiver<bool>) -> Self {
        Supervisor { health: Arc::default(), stop, tasks: JoinSet::new() }
    }

    pub fn health(&self) -> Arc<Health> {
        self.health.clone()
    }

    /// Runs `pass` again and again on its schedule, restarting it after a panic.
    pub fn spawn<F>(&mut self, name: &'static str, schedule: Schedule, pass: F)
    where
        F: Fn() -> Pass + Send + Sync + 'static,
    {
        let job = Arc::new(JobHealth {
            name,
            last_beat: AtomicI64::new(now_ms()),
            restarts: AtomicU64::new(0),
            running: AtomicBool::new(true),
            stall_after_ms: i64::try_from(schedule.stall_after.as_millis()).unwrap_or(i64::MAX),
        });
        self.health.jobs.lock().unwrap_or_else(|e| e.into_inner()).push(job.clone());
        let pass = Arc::new(pass);
        let stop = self.stop.clone();
        self.tasks.spawn(async move {
            loop {
                let run = tokio::spawn(run_loop(job.clone(), schedule, pass.clone(), stop.clone()));
                match run.await {
                    Ok(()) => break,
                    Err(e) if e.is_panic() => {
                        let n = job.restarts.fetch_add(1, Ordering::Relaxed) + 1;
                        tracing::error!(worker = name, restarts = n, "worker panicked; restarting it");
                        let mut stop = stop.clone();
                        let backoff = Duration::from_millis((500 * n.min(20)).max(500));
                        tokio::select! {
                            _ = tokio::time::sleep(backoff) => {}
                            _ = stop.wait_for(|s| *s) => break,
                        }
                    }
                    Err(_) => break,
                }
            }
            job.running.store(false, Ordering::Relaxed);
        });
    }

    /// Asks every job to stop (the `stop` channel must have flipped) and waits
    /// for them, at most `grace`.
    pub async fn join(mut self, grace: Duration) {
        let all = async { while self.tasks.join_next().await.is_some() {} };
        if tokio::time::timeout(grace, all).await.is_err() {
            tracing::warn!("shutdown: some workers were still busy; they were stopped");
        }
    }
}

async fn run_loop<F>(job: Arc<JobHealth>, schedule: Schedule, pass: Arc<F>, mut stop: watch::Receiver<bool>)
where
    F: Fn() -> Pass + Send + Sync + 'static,
{
    loop {
        if *stop.borrow() {
            return;
        }
        job.last_beat.store(now_ms(), Ordering::Relaxed);
        let busy = tokio::select! {
            r = tokio::time::timeout(schedule.timeout, pass()) => match r {
                Ok(Ok(busy)) => busy,
                Ok(Err(e)) => {
                    tracing::warn!(worker = job.name, error = %e, "worker pass failed; trying again");
                    false
                }
                Err(_) => {
                    tracing::warn!(worker = job.name, "worker pass took too long and was cut off");
                    false
                }
            },
            _ = stop.wait_for(|s| *s) => return,
        };
        job.last_beat.store(now_ms(), Ordering::Relaxed);
        if !busy {
            tokio::select! {
                _ = tokio::time::sleep(schedule.every) => {}
                _ = stop.wait_for(|s| *s) => return,
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_panicking_job_is_restarted_and_counted() {
        let (stop_tx, stop) = watch::channel(false);
        let mut s = Supervisor::new(stop);
        let calls = Arc::new(AtomicU64::new(0));
        let c = calls.clone();
        let schedule = Schedule {
            every: Duration::from_millis(5),
            timeout: Duration::from_secs(1),
            stall_after: Duration::from_secs(5),
        };
        s.spawn("flaky", schedule, move || {
            let n = c.fetch_add(1, Ordering::Relaxed);
            Box::pin(async move {
                assert!(n != 1, "the second pass panics");
                Ok(false)
            })
        });
        let health = s.health();
        let deadline = tokio::time::Instant::now() + Duration::from_secs(20);
        while calls.load(Ordering::Relaxed) <= 3 {
            assert!(tokio::time::Instant::now() < deadline, "the job did not run again after its panic");
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        let job = &health.jobs()[0];
        assert_eq!(job.restarts(), 1, "restarted once, and it kept running after the panic");
        assert_eq!(health.problem(), None);
        stop_tx.send(true).unwrap();
        s.join(Duration::from_secs(2)).await;
        assert!(health.problem().unwrap().contains("not running"));
    }

    #[tokio::test]
    async fn a_job_stuck_without_a_heartbeat_is_reported_stalled() {
        let (_stop_tx, stop) = watch::channel(false);
        let mut s = Supervisor::new(stop);
        let schedule = Schedule {
            every: Duration::from_millis(5),
            timeout: Duration::from_secs(60),
            stall_after: Duration::from_millis(200),
        };
        s.spawn("stuck", schedule, || {
            Box::pin(async {
                tokio::time::sleep(Duration::from_secs(30)).await;
                Ok(false)
            })
        });
        tokio::time::sleep(Duration::from_millis(400)).await;
        assert!(s.health().problem().unwrap().contains("stalled"));
    }
}
