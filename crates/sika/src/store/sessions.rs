//! Server-side sessions. Only the SHA-256 of a token is stored.

use sqlx::Row as _;

use super::{Store, StoreError, now_ms};

#[derive(Debug, Clone)]
pub struct SessionRow {
    pub token_hash: String,
    pub user_id: String,
    pub stage: String,
    pub csrf_token: String,
    pub created_at: i64,
    pub last_seen_at: i64,
}

impl Store {
    /// Creates a session and ends every other session of the user in the same
    /// transaction (one session per user), remembering why they ended.
    pub async fn start_session(
        &self,
        s: &SessionRow,
        ip: &str,
        user_agent: &str,
        ended_reason: &str,
    ) -> Result<u64, StoreError> {
        let mut tx = self.begin_write().await?;
        let others: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions WHERE user_id = $1")
            .bind(&s.user_id)
            .fetch_all(&mut *tx)
            .await?;
        for t in &others {
            sqlx::query("INSERT INTO ended_sessions (token_hash, reason, ended_at) VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO NOTHING")
                .bind(t)
                .bind(ended_reason)
                .bind(now_ms())
                .execute(&mut *tx)
                .await?;
        }
        sqlx::query("DELETE FROM sessions WHERE user_id = $1").bind(&s.user_id).execute(&mut *tx).await?;
        sqlx::query(
            "INSERT INTO sessions (token_hash, user_id, stage, csrf_token, created_at, last_seen_at, ip, user_agent) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
        )
        .bind(&s.token_hash)
        .bind(&s.user_id)
        .bind(&s.stage)
        .bind(&s.csrf_token)
        .bind(s.created_at)
        .bind(s.last_seen_at)
        .bind(ip)
        .bind(user_agent)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(others.len() as u64)
    }

    pub async fn session(&self, token_hash: &str) -> Result<Option<SessionRow>, StoreError> {
        let r = sqlx::query(
            "SELECT token_hash, user_id, stage, csrf_token, created_at, last_seen_at FROM sessions WHERE token_hash = $1",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(match r {
            None => None,
            Some(r) => Some(SessionRow {
                token_hash: r.try_get("token_hash")?,
                user_id: r.try_get("user_id")?,
                stage: r.try_get("stage")?,
                csrf_token: r.try_get("csrf_token")?,
                created_at: r.try_get("created_at")?,
                last_seen_at: r.try_get("last_seen_at")?,
            }),
        })
    }

    pub async fn touch_session(&self, token_hash: &str, at: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET last_seen_at = $1 WHERE token_hash = $2")
            .bind(at)
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Ends one session, remembering why.
    pub async fn end_session(&self, token_hash: &str, reason: &str) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(token_hash).execute(&mut *tx).await?;
        sqlx::query("INSERT INTO ended_sessions (token_hash, reason, ended_at) VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO NOTHING")
            .bind(token_hash)
            .bind(reason)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(r.rows_affected() == 1)
    }

    /// Ends every session of a user except `keep` (password change, role change, disabling).
    pub async fn end_user_sessions(&self, user_id: &str, keep: Option<&str>, reason: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        end_user_sessions_in(&mut tx, user_id, keep, reason).await?;
        tx.commit().await?;
        Ok(())
    }

    /// One more wrong step-up code in this session; returns the count.
    pub async fn count_step_up_failure(&self, token_hash: &str) -> Result<i64, StoreError> {
        let n: Option<i64> = sqlx::query_scalar(
            "UPDATE sessions SET step_up_failures = step_up_failures + 1 WHERE token_hash = $1 RETURNING step_up_failures",
        )
        .bind(token_hash)
        .fetch_optional(self.pool())
        .await?;
        Ok(n.unwrap_or(i64::MAX))
    }

    pub async fn reset_step_up_failures(&self, token_hash: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE sessions SET step_up_failures = 0 WHERE token_hash = $1")
            .bind(token_hash)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    pub async fn ended_reason(&self, token_hash: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar("SELECT reason FROM ended_sessions WHERE token_hash = $1")
            .bind(token_hash)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Deletes sessions past their idle or absolute limit, and old end notes.
    pub async fn purge_sessions(&self, idle_ms: i64, absolute_ms: i64) -> Result<u64, StoreError> {
        let now = now_ms();
        let r = sqlx::query("DELETE FROM sessions WHERE last_seen_at < $1 OR created_at < $2")
            .bind(now - idle_ms)
            .bind(now - absolute_ms)
            .execute(self.pool())
            .await?;
        sqlx::query("DELETE FROM ended_sessions WHERE ended_at < $1")
            .bind(now - absolute_ms)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected())
    }
}

/// Ends a user's sessions (but `keep`) inside `tx`, each recorded with `reason`.
pub(super) async fn end_user_sessions_in(
    tx: &mut super::Tx,
    user_id: &str,
    keep: Option<&str>,
    reason: &str,
) -> Result<(), StoreError> {
    let tokens: Vec<String> = sqlx::query_scalar("SELECT token_hash FROM sessions WHERE user_id = $1")
        .bind(user_id)
        .fetch_all(&mut **tx)
        .await?;
    for t in tokens.iter().filter(|t| Some(t.as_str()) != keep) {
        sqlx::query("DELETE FROM sessions WHERE token_hash = $1").bind(t).execute(&mut **tx).await?;
        sqlx::query(
            "INSERT INTO ended_sessions (token_hash, reason, ended_at) VALUES ($1, $2, $3) ON CONFLICT (token_hash) DO NOTHING",
        )
        .bind(t)
        .bind(reason)
        .bind(now_ms())
        .execute(&mut **tx)
        .await?;
    }
    Ok(())
}
