//! The webhook inbox: a signed delivery is stored here (sealed) before
//! Flutterwave gets its 200, and processed afterwards, surviving crashes.

use sqlx::Row as _;

use super::{Backend, Store, StoreError, decode, now_ms};
use crate::domain::InboxState;

#[derive(Debug, Clone)]
pub struct InboxRow {
    pub id: String,
    pub body_enc: String,
    /// Claims so far, this one included.
    pub attempts: i64,
    pub received_at: i64,
    pub state: InboxState,
    pub note: Option<String>,
}

fn row(r: &sqlx::any::AnyRow) -> Result<InboxRow, sqlx::Error> {
    Ok(InboxRow {
        id: r.try_get("id")?,
        body_enc: r.try_get("body_enc")?,
        attempts: r.try_get("attempts")?,
        received_at: r.try_get("received_at")?,
        state: decode(r, "state", InboxState::parse)?,
        note: r.try_get("note")?,
    })
}

impl Store {
    /// Stores a delivery once per dedupe key; `false` for a duplicate.
    pub async fn inbox_insert(&self, id: &str, dedupe_key: &str, body_enc: &str) -> Result<bool, StoreError> {
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO webhook_inbox (id, dedupe_key, body_enc, received_at, state, next_attempt_at) \
             VALUES ($1, $2, $3, $4, 'new', $4) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(id)
        .bind(dedupe_key)
        .bind(body_enc)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claims up to `limit` due rows by pushing their next attempt out by
    /// `lease_ms`, so another worker (or instance) does not take them meanwhile.
    /// A row whose worker dies comes back when its lease ends; each claim counts
    /// as an attempt, so a row that keeps killing its worker is dead-lettered.
    pub async fn inbox_claim(&self, limit: i64, lease_ms: i64, worker: &str) -> Result<Vec<InboxRow>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let select = match self.backend() {
            Backend::Postgres => {
                "SELECT id, body_enc, attempts, received_at, state, note FROM webhook_inbox \
                 WHERE state IN ('new', 'retry') AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2 FOR UPDATE SKIP LOCKED"
            }
            Backend::Sqlite => {
                "SELECT id, body_enc, attempts, received_at, state, note FROM webhook_inbox \
                 WHERE state IN ('new', 'retry') AND next_attempt_at <= $1 ORDER BY next_attempt_at LIMIT $2"
            }
        };
        let rows = sqlx::query(select).bind(now).bind(limit).fetch_all(&mut *tx).await?;
        let mut out = Vec::new();
        for r in &rows {
            let mut row = row(r)?;
            sqlx::query(
                "UPDATE webhook_inbox SET next_attempt_at = $1, attempts = attempts + 1, claimed_by = $2 WHERE id = $3",
            )
            .bind(now + lease_ms)
            .bind(worker)
            .bind(&row.id)
            .execute(&mut *tx)
            .await?;
            row.attempts += 1;
            out.push(row);
        }
        tx.commit().await?;
        Ok(out)
    }

    /// Extends the lease of rows `worker` still holds (claimed, not finished).
    pub async fn inbox_renew(&self, ids: &[String], lease_ms: i64, worker: &str) -> Result<u64, StoreError> {
        let mut renewed = 0;
        let until = now_ms() + lease_ms;
        for id in ids {
            let r = sqlx::query(
                "UPDATE webhook_inbox SET next_attempt_at = $1 WHERE id = $2 AND claimed_by = $3 AND state IN ('new', 'retry')",
            )
            .bind(until)
            .bind(id)
            .bind(worker)
            .execute(self.pool())
            .await?;
            renewed += r.rows_affected();
        }
        Ok(renewed)
    }

    /// Records the outcome: a final state, or `retry` at `next_attempt_at`.
    pub async fn inbox_finish(
        &self,
        id: &str,
        state: InboxState,
        next_attempt_at: i64,
        note: &str,
    ) -> Result<(), StoreError> {
        sqlx::query("UPDATE webhook_inbox SET state = $1, next_attempt_at = $2, note = $3 WHERE id = $4")
            .bind(state.as_str())
            .bind(next_attempt_at)
            .bind(note)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Rows still due for processing whose attempts reached `max` (their
    /// worker died each time): dead-lettered, with a note.
    pub async fn inbox_bury_exhausted(&self, max: i64, now: i64) -> Result<u64, StoreError> {
        let r = sqlx::query(
            "UPDATE webhook_inbox SET state = 'dead', note = 'gave up after repeated failures' \
             WHERE state IN ('new', 'retry') AND attempts >= $1 AND next_attempt_at <= $2",
        )
        .bind(max)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected())
    }

    /// A person replays a dead letter (or another row needing attention): processed again from scratch.
    /// A stored delivery goes through again, with the audit entry of whoever asked.
    pub async fn inbox_replay(&self, id: &str, audit: super::AuditDraft) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE webhook_inbox SET state = 'new', attempts = 0, next_attempt_at = $1, note = 'replayed' \
             WHERE id = $2 AND state IN ('dead', 'unprocessable', 'unrecognised', 'unmatched', 'rejected')",
        )
        .bind(now_ms())
        .bind(id)
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(true)
    }

    pub async fn inbox_by_state(&self, state: InboxState) -> Result<Vec<InboxRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, body_enc, attempts, received_at, state, note FROM webhook_inbox WHERE state = $1 ORDER BY received_at DESC LIMIT 200",
        )
        .bind(state.as_str())
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Rows waiting to be processed, and when the oldest of them arrived.
    pub async fn inbox_backlog(&self) -> Result<(i64, Option<i64>), StoreError> {
        Ok(sqlx::query_as("SELECT COUNT(*), MIN(received_at) FROM webhook_inbox WHERE state IN ('new', 'retry')")
            .fetch_one(self.pool())
            .await?)
    }
}
