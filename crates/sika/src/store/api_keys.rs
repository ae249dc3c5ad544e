//! Merchant API keys: only a hash is stored; the visible prefix is the id.

use sqlx::Row as _;

use super::list_query::{Value, Where};
use super::{Store, StoreError, now_ms};

#[derive(Debug, Clone)]
pub struct ApiKeyRow {
    pub id: String,
    pub key_hash: String,
    pub name: String,
    pub scopes: String,
    pub created_by: String,
    pub created_at: i64,
    pub last_used_at: Option<i64>,
    pub revoked_at: Option<i64>,
}

fn row(r: &sqlx::any::AnyRow) -> Result<ApiKeyRow, sqlx::Error> {
    Ok(ApiKeyRow {
        id: r.try_get("id")?,
        key_hash: r.try_get("key_hash")?,
        name: r.try_get("name")?,
        scopes: r.try_get("scopes")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
        last_used_at: r.try_get("last_used_at")?,
        revoked_at: r.try_get("revoked_at")?,
    })
}

impl Store {
    /// Inserts a key and writes `audit` in the same transaction.
    pub async fn insert_api_key(&self, k: &ApiKeyRow, audit: super::AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO api_keys (id, key_hash, name, scopes, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(&k.id)
        .bind(&k.key_hash)
        .bind(&k.name)
        .bind(&k.scopes)
        .bind(&k.created_by)
        .bind(k.created_at)
        .execute(&mut *tx)
        .await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn api_key(&self, id: &str) -> Result<Option<ApiKeyRow>, StoreError> {
        let r = sqlx::query("SELECT id, key_hash, name, scopes, created_by, created_at, last_used_at, revoked_at FROM api_keys WHERE id = $1")
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    pub async fn api_keys(&self) -> Result<Vec<ApiKeyRow>, StoreError> {
        let rows = sqlx::query(
            "SELECT id, key_hash, name, scopes, created_by, created_at, last_used_at, revoked_at FROM api_keys ORDER BY created_at",
        )
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// One page of keys, oldest first, after `(created_at, id)`, and how many there are.
    pub async fn api_keys_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<(Vec<ApiKeyRow>, i64), StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM api_keys").fetch_one(self.pool()).await?;
        let mut w = Where::default();
        if let Some((at, id)) = after {
            w.and("(created_at > ? OR (created_at = ? AND id > ?))", [Value::Int(at), Value::Int(at), Value::Text(id)]);
        }
        let sql = format!(
            "SELECT id, key_hash, name, scopes, created_by, created_at, last_used_at, revoked_at FROM api_keys {} \
             ORDER BY created_at, id LIMIT {}",
            w.sql(),
            w.next_placeholder()
        );
        let rows = w.bind(sqlx::query(&sql)).bind(limit).fetch_all(self.pool()).await?;
        Ok((rows.iter().map(row).collect::<Result<_, _>>()?, total))
    }

    /// Revokes a key and writes `audit` in the same transaction; `false` (and
    /// no entry) when there was no such key or it was revoked already.
    pub async fn revoke_api_key(&self, id: &str, audit: super::AuditDraft) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE api_keys SET revoked_at = $1 WHERE id = $2 AND revoked_at IS NULL")
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

    pub async fn touch_api_key(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE api_keys SET last_used_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }
}
