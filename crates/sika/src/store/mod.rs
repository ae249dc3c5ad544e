//! Storage: one repository API over SQLite (the embedded default) and PostgreSQL.
//!
//! Every query is static, portable SQL with `$N` placeholders and bound
//! parameters; nothing is ever formatted into SQL text. Where the two databases
//! need different DDL, the migrations come in one file per dialect.

mod api_keys;
mod approvals;
mod audit;
mod batches;
mod beneficiaries;
mod budget;
mod card_fundings;
mod cards;
mod chargeback_answers;
mod chargebacks;
mod checkouts;
mod deliveries;
mod inbox;
mod list_query;
mod mail;
mod migrations;
mod overview;
mod payouts;
mod sessions;
pub mod settings;
pub mod settlements;
mod timeline;
mod users;

use std::time::Duration;

use rust_decimal::Decimal;
use sqlx::any::{AnyConnectOptions, AnyPoolOptions};
use sqlx::{AnyPool, Executor as _};

use crate::secret::Secret;

pub use api_keys::ApiKeyRow;
pub use approvals::Written;
pub use audit::{AuditDraft, AuditEntry, AuditFilter, failpoint as audit_failpoint};
pub use batches::{BatchApproval, BatchRow};
pub use beneficiaries::BeneficiaryRow;
pub use budget::{Ledger, cost as budget_cost};
pub use card_fundings::{FundingRow, FundingWrite};
pub use cards::{CardFacts, CardQuery, CardRow};
pub use chargeback_answers::{AnswerRow, AnswerWrite};
pub use chargebacks::{ChargebackFacts, ChargebackRow, ChargebacksDue, Recorded, charged_back};
pub use checkouts::{
    CheckoutQuery, CheckoutRow, ExpiryCandidate, Notification, OutboxRow, PaymentDetails, RECONCILE_MARKS_MS,
    REFUND_FIRST_CHECK_MS, RefundRefusal, RefundRow, RefundUpdate,
};
pub use deliveries::DeliveryAttempt;
pub use inbox::InboxRow;
pub use mail::{MailDraft, MailEnd, MailRow};
pub use migrations::{MIGRATIONS, applied_versions};
pub use overview::{Figures, Health, StatusTable};
pub use payouts::{ApprovalWrite, PayoutQuery, PayoutRow, PayoutsWaiting, Settle};
pub use sessions::SessionRow;
pub use settlements::{LineFacts, LineRow, Movement, PaidCheckout, SettlementFacts, SettlementRow};
pub use users::{Inserted, Kept, UserChange, UserRow};

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Backend {
    Sqlite,
    Postgres,
}

impl Backend {
    /// What a `SELECT` ends with to lock the rows it reads until the transaction ends: ` FOR UPDATE`
    /// on PostgreSQL; nothing on SQLite, whose write transaction already holds the database.
    pub(crate) fn row_lock(self) -> &'static str {
        match self {
            Backend::Postgres => " FOR UPDATE",
            Backend::Sqlite => "",
        }
    }
}

/// An error from the database. Its text is for logs only; responses show a generic message.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database URL must start with sqlite:// or postgres://")]
    UnsupportedUrl,
    #[error("database error: {0}")]
    Db(#[from] sqlx::Error),
    #[error("migration {version} ({name}) failed: {source}")]
    Migration { version: i64, name: &'static str, source: sqlx::Error },
}

#[derive(Clone)]
pub struct Store {
    pool: AnyPool,
    backend: Backend,
}

impl std::fmt::Debug for Store {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Store").field("backend", &self.backend).finish_non_exhaustive()
    }
}

impl Store {
    /// Opens a pool. SQLite files are created when missing and run in WAL mode
    /// with a busy timeout and foreign keys on; PostgreSQL gets a statement timeout.
    pub async fn connect(url: &Secret) -> Result<Self, StoreError> {
        sqlx::any::install_default_drivers();
        let raw = url.expose();
        let (backend, url_text) = if let Some(rest) = raw.strip_prefix("sqlite:") {
            // `mode=rwc` creates the file when it does not exist yet.
            let sep = if rest.contains('?') { '&' } else { '?' };
            let with_mode = if rest.contains("mode=") { raw.to_string() } else { format!("{raw}{sep}mode=rwc") };
            create_private_file(rest);
            (Backend::Sqlite, with_mode)
        } else if raw.starts_with("postgres://") || raw.starts_with("postgresql://") {
            (Backend::Postgres, raw.to_string())
        } else {
            return Err(StoreError::UnsupportedUrl);
        };
        let mut options: AnyConnectOptions = url_text.parse()?;
        // Statements are static text; logging them adds noise, not insight.
        options = sqlx::ConnectOptions::disable_statement_logging(options);
        let pool_options = AnyPoolOptions::new()
            .max_connections(if backend == Backend::Sqlite { 8 } else { 16 })
            .acquire_timeout(Duration::from_secs(10))
            .after_connect(move |conn, _meta| {
                Box::pin(async move {
                    let setup = match backend {
                        Backend::Sqlite => {
                            "PRAGMA journal_mode = WAL; PRAGMA busy_timeout = 5000; \
                             PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;"
                        }
                        Backend::Postgres => "SET statement_timeout = '30s'; SET TIME ZONE 'UTC';",
                    };
                    conn.execute(sqlx::raw_sql(setup)).await?;
                    Ok(())
                })
            });
        let pool = pool_options.connect_with(options).await?;
        Ok(Self { pool, backend })
    }

    pub fn backend(&self) -> Backend {
        self.backend
    }

    /// Applies every migration not yet applied; returns how many ran.
    pub async fn migrate(&self) -> Result<usize, StoreError> {
        migrations::run(self, None).await
    }

    /// The schema as an earlier release left it (migrations up to `version`
    /// only): upgrade tests start from it.
    pub async fn migrate_up_to(&self, version: i64) -> Result<usize, StoreError> {
        migrations::run(self, Some(version)).await
    }

    /// Readiness: one round trip to the database.
    pub async fn ping(&self) -> Result<(), StoreError> {
        sqlx::query("SELECT 1").execute(&self.pool).await?;
        Ok(())
    }

    /// Starts a write transaction. On SQLite it takes the write lock at once
    /// (`BEGIN IMMEDIATE`), so two writers queue on the busy timeout instead of
    /// failing half-way when a read lock cannot be upgraded.
    pub async fn begin_write(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(match self.backend {
            Backend::Sqlite => self.pool.begin_with("BEGIN IMMEDIATE").await?,
            Backend::Postgres => self.pool.begin().await?,
        })
    }

    /// A read transaction: one consistent view for several queries.
    pub async fn begin_read(&self) -> Result<sqlx::Transaction<'static, sqlx::Any>, StoreError> {
        Ok(self.pool.begin().await?)
    }

    /// Runs `f` only if no other instance holds `key` (PostgreSQL advisory
    /// lock); on SQLite there is only one instance. `None` when another holds it.
    ///
    /// The lock lives on a connection that is closed when this returns, panics
    /// or is cancelled — never handed back to the pool still holding it.
    pub async fn singleton<T, F: std::future::Future<Output = T>>(
        &self,
        key: i64,
        f: F,
    ) -> Result<Option<T>, StoreError> {
        if self.backend == Backend::Sqlite {
            return Ok(Some(f.await));
        }
        let mut conn = self.pool.acquire().await?;
        conn.close_on_drop();
        let got: bool = sqlx::query_scalar("SELECT pg_try_advisory_lock($1)").bind(key).fetch_one(&mut *conn).await?;
        if !got {
            return Ok(None);
        }
        let out = f.await;
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(key).execute(&mut *conn).await?;
        Ok(Some(out))
    }

    /// A consistent copy of a SQLite database at `path` (`VACUUM INTO`: one
    /// read transaction, so writers carry on). The path is our own temporary
    /// name; quotes are doubled all the same.
    pub async fn snapshot_sqlite(&self, path: &std::path::Path) -> Result<(), StoreError> {
        let Some(p) = path.to_str() else {
            return Err(StoreError::Db(sqlx::Error::Protocol("the backup path is not valid UTF-8".into())));
        };
        sqlx::query(&format!("VACUUM INTO '{}'", p.replace('\'', "''"))).execute(self.pool()).await?;
        Ok(())
    }

    pub(crate) fn pool(&self) -> &AnyPool {
        &self.pool
    }

    /// Waits for in-flight queries, then closes every connection (SQLite
    /// checkpoints its WAL when the last connection closes).
    pub async fn close(&self) {
        self.pool.close().await;
    }
}

/// Creates the SQLite file owner-only (0600) before SQLite does, so the
/// database and its WAL (which inherits the mode) are never world-readable.
fn create_private_file(url_rest: &str) {
    use std::os::unix::fs::OpenOptionsExt as _;
    let path = url_rest.trim_start_matches("//").split('?').next().unwrap_or("");
    if path.is_empty() || path == ":memory:" {
        return;
    }
    // An error here (a missing directory, say) surfaces when the pool connects.
    let _ = std::fs::OpenOptions::new().write(true).create_new(true).mode(0o600).open(path);
}

/// Reads a text column into a typed value; text the type does not know is a
/// decoding error (a corrupt or foreign row), never a silent default.
pub(crate) fn decode<T>(
    r: &sqlx::any::AnyRow,
    column: &str,
    parse: impl FnOnce(&str) -> Option<T>,
) -> Result<T, sqlx::Error> {
    use sqlx::Row as _;
    let text: String = r.try_get(column)?;
    parse(&text).ok_or_else(|| sqlx::Error::Decode(format!("{column}: unexpected value {text:?}").into()))
}

/// A write transaction (`Store::begin_write`), for changes made together.
pub type Tx = sqlx::Transaction<'static, sqlx::Any>;

/// Adds stored amounts for a money decision (holds, refunds, balances). An
/// amount that does not read is an error that stops the decision: counting it
/// as zero would let a hold vanish and the wallet be overdrawn.
pub(crate) fn sum_amounts<'a>(
    what: &str,
    amounts: impl IntoIterator<Item = &'a String>,
) -> Result<Decimal, StoreError> {
    let mut total = Decimal::ZERO;
    for a in amounts {
        let v = a
            .parse::<Decimal>()
            .map_err(|_| sqlx::Error::Decode(format!("{what}: an amount that does not read: {a:?}").into()))?;
        total = total.checked_add(v).ok_or_else(|| sqlx::Error::Decode(format!("{what}: the sum overflows").into()))?;
    }
    Ok(total)
}

/// Milliseconds since the Unix epoch, the one time format stored, from the
/// one clock (`crate::clock`).
pub use crate::clock::now_ms;

impl Store {
    /// The pool, for tests that reach under the repository API (tampering drills).
    #[doc(hidden)]
    pub fn pool_for_tests(&self) -> &AnyPool {
        &self.pool
    }

    /// A pooled connection, for tests that inspect connection settings.
    #[doc(hidden)]
    pub async fn acquire_for_tests(&self) -> sqlx::pool::PoolConnection<sqlx::Any> {
        self.pool.acquire().await.expect("a pooled connection")
    }
}
