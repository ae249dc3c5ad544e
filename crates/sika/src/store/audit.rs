//! The audit log table. Appends are serialized (SQLite's write lock, an
//! advisory lock on PostgreSQL) so every entry chains onto the one before it.
//! The chain's keyed hashes are computed by `crate::audit`.

use sqlx::Row as _;

use super::{Backend, Store, StoreError};

#[derive(Debug, Clone, serde::Serialize)]
pub struct AuditEntry {
    pub seq: i64,
    pub at: i64,
    pub actor: String,
    pub role: String,
    pub ip: String,
    pub user_agent: String,
    pub action: String,
    pub target: String,
    pub outcome: String,
    pub details: String,
    pub prev_hash: String,
    pub hash: String,
}

/// Filters for the console (all optional, all exact matches).
#[derive(Debug, Clone, Default)]
pub struct AuditFilter {
    pub actor: Option<String>,
    pub action: Option<String>,
    pub outcome: Option<String>,
    pub before_seq: Option<i64>,
    /// Recorded at or after (ms).
    pub from_ms: Option<i64>,
    /// Recorded before (ms).
    pub to_ms: Option<i64>,
}

const PG_AUDIT_LOCK: i64 = 0x5169_6b61_0002;

fn row(r: &sqlx::any::AnyRow) -> Result<AuditEntry, sqlx::Error> {
    Ok(AuditEntry {
        seq: r.try_get("seq")?,
        at: r.try_get("at")?,
        actor: r.try_get("actor")?,
        role: r.try_get("role")?,
        ip: r.try_get("ip")?,
        user_agent: r.try_get("user_agent")?,
        action: r.try_get("action")?,
        target: r.try_get("target")?,
        outcome: r.try_get("outcome")?,
        details: r.try_get("details")?,
        prev_hash: r.try_get("prev_hash")?,
        hash: r.try_get("hash")?,
    })
}

macro_rules! select_audit {
    ($tail:literal) => {
        concat!(
            "SELECT seq, at, actor, role, ip, user_agent, action, target, outcome, details, prev_hash, hash FROM audit_log ",
            $tail
        )
    };
}

/// An audit entry ready to be written in the transaction of the change it
/// records: a crash or an error anywhere before the commit loses both, never
/// one. Made by `audit::Auditor::draft` (which seals with the audit key).
pub struct AuditDraft {
    entry: AuditEntry,
    genesis: (i64, String),
    seal: Box<dyn FnOnce(&AuditEntry) -> String + Send + Sync>,
}

impl std::fmt::Debug for AuditDraft {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditDraft").field("action", &self.entry.action).field("target", &self.entry.target).finish()
    }
}

impl AuditDraft {
    pub fn new(
        entry: AuditEntry,
        genesis: (i64, String),
        seal: impl FnOnce(&AuditEntry) -> String + Send + Sync + 'static,
    ) -> Self {
        AuditDraft { entry, genesis, seal: Box::new(seal) }
    }

    /// Adds what only the write itself knows (its result) to the details.
    pub fn with_details(mut self, more: serde_json::Value) -> Self {
        let mut details: serde_json::Value = serde_json::from_str(&self.entry.details).unwrap_or_default();
        match (&mut details, more) {
            (serde_json::Value::Object(d), serde_json::Value::Object(m)) => d.extend(m),
            (d, m) => *d = m,
        }
        self.entry.details = details.to_string();
        self
    }

    /// Appends the entry after the current last one, inside `tx`. The chain's
    /// lock (SQLite's write lock, an advisory lock on PostgreSQL) is taken
    /// here, after the change's own row locks: always in that order, so two
    /// audited changes cannot deadlock.
    pub async fn append_in(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        backend: Backend,
    ) -> Result<i64, StoreError> {
        let AuditDraft { mut entry, genesis, seal } = self;
        if backend == Backend::Postgres {
            sqlx::query("SELECT pg_advisory_xact_lock($1)").bind(PG_AUDIT_LOCK).execute(&mut **tx).await?;
        }
        let last: Option<(i64, String)> = sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(&mut **tx)
            .await?;
        let (prev_seq, prev_hash) = last.unwrap_or(genesis);
        entry.seq = prev_seq + 1;
        entry.prev_hash = prev_hash;
        entry.hash = seal(&entry);
        sqlx::query(
            "INSERT INTO audit_log (seq, at, actor, role, ip, user_agent, action, target, outcome, details, prev_hash, hash) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(entry.seq)
        .bind(entry.at)
        .bind(&entry.actor)
        .bind(&entry.role)
        .bind(&entry.ip)
        .bind(&entry.user_agent)
        .bind(&entry.action)
        .bind(&entry.target)
        .bind(&entry.outcome)
        .bind(&entry.details)
        .bind(&entry.prev_hash)
        .bind(&entry.hash)
        .execute(&mut **tx)
        .await?;
        failpoint::after_append(&entry.action)?;
        Ok(entry.seq)
    }
}

/// A fault a test can place right after an audit entry is written and before
/// its transaction commits, to prove the change and its entry commit together
/// (`tests/suite/audit_atomic.rs`). Only Rust code can arm it; nothing armed, it is
/// one uncontended lock per audited change.
#[doc(hidden)]
pub mod failpoint {
    use std::sync::Mutex;

    static ARMED: Mutex<Vec<String>> = Mutex::new(Vec::new());

    /// The next append of an entry with this action fails (once).
    pub fn fail_after_append(action: &str) {
        ARMED.lock().unwrap_or_else(|e| e.into_inner()).push(action.to_string());
    }

    pub(super) fn after_append(action: &str) -> Result<(), super::StoreError> {
        let mut armed = ARMED.lock().unwrap_or_else(|e| e.into_inner());
        match armed.iter().position(|a| a == action) {
            Some(i) => {
                armed.remove(i);
                Err(super::StoreError::Db(sqlx::Error::Protocol(format!("injected failure after the {action} entry"))))
            }
            None => Ok(()),
        }
    }
}

impl Store {
    /// Appends an entry on its own (events with no other change: a sign-in, a read).
    pub async fn append_audit(&self, draft: AuditDraft) -> Result<i64, StoreError> {
        let mut tx = self.begin_write().await?;
        let seq = draft.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(seq)
    }

    /// Entries in chain order, `limit` at a time after `after_seq`.
    pub async fn audit_page(&self, after_seq: i64, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(select_audit!("WHERE seq > $1 ORDER BY seq LIMIT $2"))
            .bind(after_seq)
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Newest first, filtered, at most `limit`.
    pub async fn audit_search(&self, f: &AuditFilter, limit: i64) -> Result<Vec<AuditEntry>, StoreError> {
        let rows = sqlx::query(select_audit!(
            "WHERE ($1 IS NULL OR actor = $1) AND ($2 IS NULL OR action = $2) AND ($3 IS NULL OR outcome = $3) \
             AND ($4 IS NULL OR seq < $4) AND ($6 IS NULL OR at >= $6) AND ($7 IS NULL OR at < $7) \
             ORDER BY seq DESC LIMIT $5"
        ))
        .bind(&f.actor)
        .bind(&f.action)
        .bind(&f.outcome)
        .bind(f.before_seq)
        .bind(limit)
        .bind(f.from_ms)
        .bind(f.to_ms)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// The newest entry's sequence number and hash.
    pub async fn audit_last(&self) -> Result<Option<(i64, String)>, StoreError> {
        Ok(sqlx::query_as("SELECT seq, hash FROM audit_log ORDER BY seq DESC LIMIT 1")
            .fetch_optional(self.pool())
            .await?)
    }

    pub async fn audit_count(&self) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM audit_log").fetch_one(self.pool()).await?)
    }

    /// Deletes entries up to and including `through_seq` (retention; the caller exported them first).
    pub async fn purge_audit_through(&self, through_seq: i64) -> Result<u64, StoreError> {
        let r = sqlx::query("DELETE FROM audit_log WHERE seq <= $1").bind(through_seq).execute(self.pool()).await?;
        Ok(r.rows_affected())
    }
}
