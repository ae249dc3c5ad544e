//! The outbound budget's shared schedule, in PostgreSQL: every instance on
//! the database leases send times from one row, on the database's clock, so
//! together they never send Flutterwave more than the account's rate, and a
//! 429 seen by one pauses them all. One statement a lease (a few send times).
//! A SQLite database has one instance, which keeps its budget in memory.

use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};

use flutterwave::budget::{Ask, Grant, Lane, LedgerFuture};
use sqlx::Row as _;

use super::{Backend, Store};

/// Leases send times from `flw_budget`; counts its statements and their database time.
#[derive(Debug, Clone)]
pub struct Ledger {
    store: Store,
}

/// Lease and pause statements this process ran, and the microseconds they took (for the metrics).
static CALLS: AtomicU64 = AtomicU64::new(0);
static MICROS: AtomicU64 = AtomicU64::new(0);

/// (statements, seconds) the shared budget has cost this process so far.
pub fn cost() -> (u64, f64) {
    (CALLS.load(Ordering::Relaxed), MICROS.load(Ordering::Relaxed) as f64 / 1e6)
}

/// The database's clock in microseconds since the epoch.
const NOW_US: &str = "(extract(epoch FROM clock_timestamp()) * 1000000)::bigint";

impl Ledger {
    /// The shared ledger, on PostgreSQL only (`None` on SQLite: one instance).
    pub fn of(store: &Store) -> Option<Ledger> {
        (store.backend() == Backend::Postgres).then(|| Ledger { store: store.clone() })
    }

    fn count(&self, since: Instant) {
        CALLS.fetch_add(1, Ordering::Relaxed);
        MICROS.fetch_add(u64::try_from(since.elapsed().as_micros()).unwrap_or(u64::MAX), Ordering::Relaxed);
    }

    async fn take(&self, ask: Ask) -> Result<Grant, sqlx::Error> {
        let visitor = i64::from(ask.lane == Lane::Interactive);
        // One statement: the schedule's row (and, for a visitor, its share's) is
        // locked, the start decided on the database's clock, and the lease
        // written only if it starts within the horizon.
        let sql = format!(
            "WITH clock AS (SELECT {NOW_US} AS now_us), \
             cur AS (SELECT next_at, paused_until FROM flw_budget WHERE id = 'all' FOR UPDATE), \
             vis AS (SELECT next_at FROM flw_budget WHERE id = 'interactive' AND $5 = 1 FOR UPDATE), \
             ok AS (SELECT GREATEST(cur.next_at, clock.now_us, cur.paused_until) AS start, clock.now_us, \
                    cur.paused_until, COALESCE((SELECT GREATEST(next_at, clock.now_us) FROM vis), clock.now_us) AS vis_start \
                    FROM cur, clock), \
             granted AS (UPDATE flw_budget b SET next_at = ok.start + $1 * $2 FROM ok \
                    WHERE b.id = 'all' AND ok.start - ok.now_us <= $3 AND ok.vis_start - ok.now_us <= $3 \
                    RETURNING ok.start), \
             seen AS (UPDATE flw_budget b SET next_at = ok.vis_start + $4 FROM ok \
                    WHERE b.id = 'interactive' AND $5 = 1 AND EXISTS (SELECT 1 FROM granted) RETURNING 1) \
             SELECT ok.now_us, ok.start, ok.paused_until, ok.vis_start, (SELECT start FROM granted) AS granted, \
                    (SELECT COUNT(*) FROM seen) AS seen FROM ok"
        );
        let row = sqlx::query(&sql)
            .bind(i64::from(ask.n))
            .bind(ask.interval_us)
            .bind(ask.horizon_us)
            .bind(ask.interactive_interval_us)
            .bind(visitor)
            .fetch_one(self.store.pool())
            .await?;
        let now_us: i64 = row.try_get("now_us")?;
        let start: i64 = row.try_get("start")?;
        let paused_until_us: i64 = row.try_get("paused_until")?;
        let vis_start: i64 = row.try_get("vis_start")?;
        Ok(match row.try_get::<Option<i64>, _>("granted")? {
            Some(first_us) => {
                Grant::Slots { now_us, first_us, n: ask.n, interval_us: ask.interval_us, paused_until_us }
            }
            None => Grant::Wait {
                now_us,
                retry_in_us: (start.max(vis_start) - now_us - ask.horizon_us).max(1_000),
                paused_until_us,
            },
        })
    }
}

impl flutterwave::budget::Ledger for Ledger {
    fn lease(&self, ask: Ask) -> LedgerFuture<'_, Grant> {
        Box::pin(async move {
            let started = Instant::now();
            let r = self.take(ask).await.map_err(|e| e.to_string());
            self.count(started);
            r
        })
    }

    fn pause(&self, d: Duration) -> LedgerFuture<'_, ()> {
        Box::pin(async move {
            let started = Instant::now();
            let sql =
                format!("UPDATE flw_budget SET paused_until = GREATEST(paused_until, {NOW_US} + $1) WHERE id = 'all'");
            let r = sqlx::query(&sql)
                .bind(i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
                .execute(self.store.pool())
                .await
                .map(|_| ())
                .map_err(|e| e.to_string());
            self.count(started);
            r
        })
    }
}
