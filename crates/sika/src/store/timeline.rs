//! One helper for the timelines of checkouts, payouts and cards: each is a
//! table of `(reference, at, kind, detail)` rows, appended and read in order.

use super::{Store, StoreError, now_ms};

/// Whose timeline.
#[derive(Debug, Clone, Copy)]
pub(super) enum Timeline {
    Checkout,
    Payout,
    Card,
}

impl Timeline {
    fn insert_sql(self) -> &'static str {
        match self {
            Timeline::Checkout => "INSERT INTO checkout_events (reference, at, kind, detail) VALUES ($1, $2, $3, $4)",
            Timeline::Payout => "INSERT INTO payout_events (reference, at, kind, detail) VALUES ($1, $2, $3, $4)",
            Timeline::Card => "INSERT INTO card_events (reference, at, kind, detail) VALUES ($1, $2, $3, $4)",
        }
    }

    fn select_sql(self) -> &'static str {
        match self {
            Timeline::Checkout => "SELECT at, kind, detail FROM checkout_events WHERE reference = $1 ORDER BY at",
            Timeline::Payout => "SELECT at, kind, detail FROM payout_events WHERE reference = $1 ORDER BY at",
            Timeline::Card => "SELECT at, kind, detail FROM card_events WHERE reference = $1 ORDER BY at",
        }
    }

    /// Appends an entry inside `tx` (with the change it records).
    pub(super) async fn add_in(
        self,
        tx: &mut sqlx::Transaction<'static, sqlx::Any>,
        reference: &str,
        kind: &str,
        detail: &str,
    ) -> Result<(), StoreError> {
        sqlx::query(self.insert_sql())
            .bind(reference)
            .bind(now_ms())
            .bind(kind)
            .bind(detail)
            .execute(&mut **tx)
            .await?;
        Ok(())
    }

    /// Appends an entry on its own.
    pub(super) async fn add(self, store: &Store, reference: &str, kind: &str, detail: &str) -> Result<(), StoreError> {
        sqlx::query(self.insert_sql())
            .bind(reference)
            .bind(now_ms())
            .bind(kind)
            .bind(detail)
            .execute(store.pool())
            .await?;
        Ok(())
    }

    /// The entries, oldest first: (at, kind, detail).
    pub(super) async fn read(self, store: &Store, reference: &str) -> Result<Vec<(i64, String, String)>, StoreError> {
        Ok(sqlx::query_as(self.select_sql()).bind(reference).fetch_all(store.pool()).await?)
    }
}
