//! The figures behind the console's overview. Amounts come back as the exact
//! decimals stored, summed by the caller (never by the database's floats).

use rust_decimal::Decimal;

use super::{Store, StoreError};
use crate::domain::{CheckoutStatus, Currency};

/// Raw figures since a moment: what the overview is computed from.
#[derive(Debug, Default)]
pub struct Figures {
    /// Each payment verified paid since then: (currency, amount, when).
    pub paid: Vec<(Currency, Decimal, i64)>,
    /// Checkouts created since then, by currency and status.
    pub created: Vec<(Currency, CheckoutStatus, i64)>,
    /// Completed refunds since then: (currency, amount).
    pub refunded: Vec<(Currency, Decimal)>,
    /// Open now, whenever created: pending and needs-review counts by currency.
    pub open: Vec<(Currency, CheckoutStatus, i64)>,
}

/// The webhook inbox and the shop's notifications, now.
#[derive(Debug, Default, Clone)]
pub struct Health {
    pub inbox_backlog: i64,
    pub inbox_oldest: Option<i64>,
    pub inbox_dead: i64,
    pub inbox_last_received: Option<i64>,
    pub outbox_waiting: i64,
    pub outbox_dead: i64,
    pub outbox_last_delivered: Option<i64>,
    /// Delivery attempts since the moment asked: (delivered, failed).
    pub attempts: (i64, i64),
}

// The overview's sums fail loudly: a row skipped would show less money than there is.
fn corrupt(what: String) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(what.into()))
}

fn decimal(s: &str) -> Result<Decimal, StoreError> {
    s.parse().map_err(|_| corrupt(format!("an amount that does not read: {s:?}")))
}

fn currency(s: &str) -> Result<Currency, StoreError> {
    Currency::parse(s).ok_or_else(|| corrupt(format!("a currency Sika does not know: {s:?}")))
}

fn status(s: &str) -> Result<CheckoutStatus, StoreError> {
    CheckoutStatus::parse(s).ok_or_else(|| corrupt(format!("a checkout status Sika does not know: {s:?}")))
}

impl Store {
    pub async fn overview_figures(&self, since: i64) -> Result<Figures, StoreError> {
        let paid: Vec<(String, Option<String>, i64)> = sqlx::query_as(
            "SELECT c.currency, c.paid_amount, e.at FROM checkout_events e JOIN checkouts c ON c.reference = e.reference \
             WHERE e.kind = 'paid' AND e.at >= $1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let created: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT currency, status, COUNT(*) FROM checkouts WHERE created_at >= $1 GROUP BY currency, status",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let refunded: Vec<(String, String)> = sqlx::query_as(
            "SELECT c.currency, r.amount FROM refunds r JOIN checkouts c ON c.reference = r.reference \
             WHERE r.status = 'completed' AND r.updated_at >= $1",
        )
        .bind(since)
        .fetch_all(self.pool())
        .await?;
        let open: Vec<(String, String, i64)> = sqlx::query_as(
            "SELECT currency, status, COUNT(*) FROM checkouts WHERE status IN ('pending', 'needs_review') \
             GROUP BY currency, status",
        )
        .fetch_all(self.pool())
        .await?;
        let counted = |rows: Vec<(String, String, i64)>| -> Result<Vec<_>, StoreError> {
            rows.into_iter().map(|(c, s, n)| Ok((currency(&c)?, status(&s)?, n))).collect()
        };
        Ok(Figures {
            paid: paid
                .into_iter()
                .map(|(c, a, at)| {
                    let a = a.ok_or_else(|| corrupt(format!("a paid checkout without a paid amount ({c})")))?;
                    Ok((currency(&c)?, decimal(&a)?, at))
                })
                .collect::<Result<_, StoreError>>()?,
            created: counted(created)?,
            refunded: refunded
                .into_iter()
                .map(|(c, a)| Ok((currency(&c)?, decimal(&a)?)))
                .collect::<Result<_, StoreError>>()?,
            open: counted(open)?,
        })
    }

    pub async fn overview_health(&self, since: i64) -> Result<Health, StoreError> {
        let (inbox_backlog, inbox_oldest) = self.inbox_backlog().await?;
        let (inbox_dead, inbox_last_received): (i64, Option<i64>) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN state = 'dead' THEN 1 ELSE 0 END), 0), MAX(received_at) FROM webhook_inbox",
        )
        .fetch_one(self.pool())
        .await?;
        let (outbox_waiting, outbox_dead, outbox_last_delivered): (i64, i64, Option<i64>) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN delivered_at IS NULL AND dead = 0 THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN dead <> 0 THEN 1 ELSE 0 END), 0), MAX(delivered_at) FROM outbox",
        )
        .fetch_one(self.pool())
        .await?;
        let attempts: (i64, i64) = sqlx::query_as(
            "SELECT COALESCE(SUM(CASE WHEN outcome = 'delivered' THEN 1 ELSE 0 END), 0), \
             COALESCE(SUM(CASE WHEN outcome <> 'delivered' THEN 1 ELSE 0 END), 0) FROM outbox_attempts WHERE at >= $1",
        )
        .bind(since)
        .fetch_one(self.pool())
        .await?;
        Ok(Health {
            inbox_backlog,
            inbox_oldest,
            inbox_dead,
            inbox_last_received,
            outbox_waiting,
            outbox_dead,
            outbox_last_delivered,
            attempts,
        })
    }
}

/// The tables whose rows carry a money status, for metrics.
#[derive(Debug, Clone, Copy)]
pub enum StatusTable {
    Checkouts,
    Refunds,
    Payouts,
    Cards,
    CardFundings,
}

impl Store {
    /// How many rows of `table` are in each status.
    pub async fn status_counts(&self, table: StatusTable) -> Result<Vec<(String, i64)>, StoreError> {
        let sql = match table {
            StatusTable::Checkouts => "SELECT status, COUNT(*) FROM checkouts GROUP BY status",
            StatusTable::Refunds => "SELECT status, COUNT(*) FROM refunds GROUP BY status",
            StatusTable::Payouts => "SELECT status, COUNT(*) FROM payouts GROUP BY status",
            StatusTable::Cards => "SELECT status, COUNT(*) FROM cards GROUP BY status",
            StatusTable::CardFundings => "SELECT status, COUNT(*) FROM card_fundings GROUP BY status",
        };
        Ok(sqlx::query_as(sql).fetch_all(self.pool()).await?)
    }

    /// Users locked out of signing in at `now`.
    pub async fn locked_users(&self, now: i64) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM users WHERE locked_until > $1")
            .bind(now)
            .fetch_one(self.pool())
            .await?)
    }
}
