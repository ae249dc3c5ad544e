//! Schema migrations, applied at start and by `sika migrate`.
//!
//! Each migration runs in its own transaction together with the row that
//! records it, so a crash leaves it either fully applied or not at all, and
//! running them again changes nothing. On PostgreSQL one advisory lock, held
//! from before the bookkeeping table is created until the last migration,
//! keeps instances starting at once from racing.

use super::{Backend, Store, StoreError, now_ms};

/// One schema change. Most are portable SQL (`migrations/portable/`, used for
/// both fields); where the dialects differ, each has its own file.
pub struct Migration {
    pub version: i64,
    pub name: &'static str,
    pub sqlite: &'static str,
    pub postgres: &'static str,
}

pub const MIGRATIONS: &[Migration] = &[
    Migration {
        version: 1,
        name: "foundation",
        sqlite: include_str!("migrations/portable/0001_foundation.sql"),
        postgres: include_str!("migrations/portable/0001_foundation.sql"),
    },
    Migration {
        version: 2,
        name: "operators",
        sqlite: include_str!("migrations/sqlite/0002_operators.sql"),
        postgres: include_str!("migrations/postgres/0002_operators.sql"),
    },
    Migration {
        version: 3,
        name: "payments",
        sqlite: include_str!("migrations/portable/0003_payments.sql"),
        postgres: include_str!("migrations/portable/0003_payments.sql"),
    },
    Migration {
        version: 4,
        name: "refunds",
        sqlite: include_str!("migrations/portable/0004_refunds.sql"),
        postgres: include_str!("migrations/portable/0004_refunds.sql"),
    },
    Migration {
        version: 5,
        name: "money rules",
        sqlite: include_str!("migrations/portable/0005_money_rules.sql"),
        postgres: include_str!("migrations/portable/0005_money_rules.sql"),
    },
    Migration {
        version: 6,
        name: "payouts",
        sqlite: include_str!("migrations/portable/0006_payouts.sql"),
        postgres: include_str!("migrations/portable/0006_payouts.sql"),
    },
    Migration {
        version: 7,
        name: "payout batches",
        sqlite: include_str!("migrations/portable/0007_payout_batches.sql"),
        postgres: include_str!("migrations/portable/0007_payout_batches.sql"),
    },
    Migration {
        version: 8,
        name: "console",
        sqlite: include_str!("migrations/portable/0008_console.sql"),
        postgres: include_str!("migrations/portable/0008_console.sql"),
    },
    Migration {
        version: 9,
        name: "list indexes",
        sqlite: include_str!("migrations/portable/0009_list_indexes.sql"),
        postgres: include_str!("migrations/portable/0009_list_indexes.sql"),
    },
    Migration {
        version: 10,
        name: "cards",
        sqlite: include_str!("migrations/portable/0010_cards.sql"),
        postgres: include_str!("migrations/portable/0010_cards.sql"),
    },
    Migration {
        version: 11,
        name: "card fundings",
        sqlite: include_str!("migrations/portable/0011_card_fundings.sql"),
        postgres: include_str!("migrations/portable/0011_card_fundings.sql"),
    },
    Migration {
        version: 12,
        name: "flutterwave as it is",
        sqlite: include_str!("migrations/portable/0012_flutterwave_as_it_is.sql"),
        postgres: include_str!("migrations/portable/0012_flutterwave_as_it_is.sql"),
    },
    Migration {
        version: 13,
        name: "shared budget",
        sqlite: include_str!("migrations/portable/0013_shared_budget.sql"),
        postgres: include_str!("migrations/portable/0013_shared_budget.sql"),
    },
    Migration {
        version: 14,
        name: "chargebacks",
        sqlite: include_str!("migrations/portable/0014_chargebacks.sql"),
        postgres: include_str!("migrations/portable/0014_chargebacks.sql"),
    },
    Migration {
        version: 15,
        name: "chargeback answers",
        sqlite: include_str!("migrations/portable/0015_chargeback_answers.sql"),
        postgres: include_str!("migrations/portable/0015_chargeback_answers.sql"),
    },
    Migration {
        version: 16,
        name: "settlements",
        sqlite: include_str!("migrations/portable/0016_settlements.sql"),
        postgres: include_str!("migrations/portable/0016_settlements.sql"),
    },
    Migration {
        version: 17,
        name: "mail",
        sqlite: include_str!("migrations/portable/0017_mail.sql"),
        postgres: include_str!("migrations/portable/0017_mail.sql"),
    },
    Migration {
        version: 18,
        name: "received for review",
        sqlite: include_str!("migrations/portable/0018_received_for_review.sql"),
        postgres: include_str!("migrations/portable/0018_received_for_review.sql"),
    },
];

/// Any constant: identifies Sika's migration lock among advisory locks.
const PG_MIGRATION_LOCK: i64 = 0x5169_6b61_0001;

/// Applies what is missing. On PostgreSQL everything, the bookkeeping table
/// included, happens under one session advisory lock on a connection that is
/// closed afterwards (never returned to the pool with the lock), so instances
/// starting together on an empty database queue instead of racing.
pub(super) async fn run(store: &Store, up_to: Option<i64>) -> Result<usize, StoreError> {
    let mut conn = store.pool().acquire().await?;
    conn.close_on_drop();
    if store.backend() == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_lock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    // The connection is closed on drop (`close_on_drop`), which releases the
    // lock on every path, errors included.
    apply(store.backend(), conn, up_to).await
}

async fn apply(
    backend: Backend,
    mut conn: sqlx::pool::PoolConnection<sqlx::Any>,
    up_to: Option<i64>,
) -> Result<usize, StoreError> {
    sqlx::query(
        "CREATE TABLE IF NOT EXISTS sika_migrations (\
         version BIGINT PRIMARY KEY, name TEXT NOT NULL, applied_at BIGINT NOT NULL)",
    )
    .execute(&mut *conn)
    .await?;
    let mut applied = 0;
    for m in MIGRATIONS.iter().filter(|m| up_to.is_none_or(|v| m.version <= v)) {
        let mut tx = match backend {
            Backend::Sqlite => sqlx::Connection::begin_with(&mut *conn, "BEGIN IMMEDIATE").await?,
            Backend::Postgres => sqlx::Connection::begin(&mut *conn).await?,
        };
        let done: Option<i64> = sqlx::query_scalar("SELECT version FROM sika_migrations WHERE version = $1")
            .bind(m.version)
            .fetch_optional(&mut *tx)
            .await?;
        if done.is_some() {
            continue;
        }
        let sql = match backend {
            Backend::Sqlite => m.sqlite,
            Backend::Postgres => m.postgres,
        };
        let fail = |source| StoreError::Migration { version: m.version, name: m.name, source };
        sqlx::raw_sql(sql).execute(&mut *tx).await.map_err(fail)?;
        sqlx::query("INSERT INTO sika_migrations (version, name, applied_at) VALUES ($1, $2, $3)")
            .bind(m.version)
            .bind(m.name)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        tracing::info!(version = m.version, name = m.name, "migration applied");
        applied += 1;
    }
    if backend == Backend::Postgres {
        sqlx::query("SELECT pg_advisory_unlock($1)").bind(PG_MIGRATION_LOCK).execute(&mut *conn).await?;
    }
    Ok(applied)
}

/// The versions recorded as applied, in order.
pub async fn applied_versions(store: &Store) -> Result<Vec<i64>, StoreError> {
    Ok(sqlx::query_scalar("SELECT version FROM sika_migrations ORDER BY version").fetch_all(store.pool()).await?)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn versions_are_increasing_and_both_dialects_exist() {
        let mut last = 0;
        for m in MIGRATIONS {
            assert!(m.version > last, "migration {} out of order", m.version);
            assert!(!m.sqlite.trim().is_empty() && !m.postgres.trim().is_empty());
            last = m.version;
        }
    }
}
