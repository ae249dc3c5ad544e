//! Settings: a small key/value table that operators edit through the console
//! (typed and audited by `crate::settings`). The keys, in one place:

use super::{Store, StoreError, Tx, now_ms};

pub const NOTIFY_URL: &str = "notify.url";
pub const NOTIFY_SECRET: &str = "notify.secret";
pub const MERCHANT_NAME: &str = "merchant.name";
pub const TIME_ZONE: &str = "console.time_zone";

/// The amount above which outgoing money in `c` needs two approvers.
pub fn two_approvers_above(c: crate::domain::Currency) -> String {
    format!("payouts.two_approvers_above.{}", c.code())
}

const GET: &str = "SELECT value FROM settings WHERE key = $1";

/// A setting, read inside `tx`.
pub async fn get_in(tx: &mut Tx, key: &str) -> Result<Option<String>, StoreError> {
    Ok(sqlx::query_scalar(GET).bind(key).fetch_optional(&mut **tx).await?)
}

/// Inserts or replaces a setting inside `tx`.
pub async fn set_in(tx: &mut Tx, key: &str, value: &str) -> Result<(), StoreError> {
    sqlx::query(
        "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) \
         ON CONFLICT (key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
    )
    .bind(key)
    .bind(value)
    .bind(now_ms())
    .execute(&mut **tx)
    .await?;
    Ok(())
}

impl Store {
    pub async fn setting(&self, key: &str) -> Result<Option<String>, StoreError> {
        Ok(sqlx::query_scalar(GET).bind(key).fetch_optional(self.pool()).await?)
    }

    /// Inserts or replaces a setting (system values; an operator's change goes
    /// through `crate::settings`, audited with it).
    pub async fn set_setting(&self, key: &str, value: &str) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        set_in(&mut tx, key, value).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Sets a value only when the key is new; `false` when it already existed.
    /// The database's uniqueness decides, so concurrent callers get one winner.
    pub async fn insert_setting_once(&self, key: &str, value: &str) -> Result<bool, StoreError> {
        let result = sqlx::query(
            "INSERT INTO settings (key, value, updated_at) VALUES ($1, $2, $3) ON CONFLICT (key) DO NOTHING",
        )
        .bind(key)
        .bind(value)
        .bind(now_ms())
        .execute(self.pool())
        .await?;
        Ok(result.rows_affected() == 1)
    }
}
