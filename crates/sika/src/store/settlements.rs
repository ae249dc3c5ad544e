//! Settlements and their lines, written only from what Flutterwave's own
//! settlement list and settlement answers said; and the facts the reconciler
//! and the money report read (paid checkouts, refunds, chargebacks, payouts),
//! each as Sika recorded it.

use std::collections::{HashMap, HashSet};

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::timeline::Timeline;
use super::{Store, StoreError, decode, now_ms};
use crate::domain::settlement::{LineAmounts, LineCheckout, Totals};
use crate::domain::{CheckoutStatus, Currency};

/// A settlement, as Flutterwave listed it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementFacts {
    pub id: i64,
    /// Flutterwave's word (`completed`, `pending`, `flagged`, or another).
    pub status: String,
    pub currency: Currency,
    pub totals: Totals,
    pub transaction_count: Option<i64>,
    pub transaction_ids: Vec<i64>,
    pub refund_ids: Vec<i64>,
    pub chargeback_ids: Vec<i64>,
    /// When it was paid (or made), when Flutterwave's dates could be read.
    pub settled_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SettlementRow {
    pub facts: SettlementFacts,
    /// When its lines were read; `None` until then.
    pub lines_at: Option<i64>,
    pub first_seen_at: i64,
    pub updated_at: i64,
}

impl SettlementRow {
    /// The time it counts at in periods: Flutterwave's date, or when Sika first saw it.
    pub fn counted_at(&self) -> i64 {
        self.facts.settled_at.unwrap_or(self.first_seen_at)
    }
}

/// One transaction a settlement paid, as Flutterwave sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineFacts {
    pub transaction_id: i64,
    pub tx_ref: String,
    pub flw_ref: Option<String>,
    pub amounts: LineAmounts,
    pub status: Option<String>,
    pub transaction_at: Option<i64>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineRow {
    pub settlement_id: i64,
    pub facts: LineFacts,
    /// The checkout its `tx_ref` names, if Sika has one.
    pub checkout_reference: Option<String>,
}

/// A paid checkout, with what the reconciler and the report need.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PaidCheckout {
    pub reference: String,
    pub currency: Currency,
    pub paid: Decimal,
    /// Verify's `amount_settled`, when Flutterwave said it.
    pub verified_settled: Option<Decimal>,
    pub transaction_id: Option<i64>,
    pub paid_at: i64,
}

/// What the metrics show of settlements.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SettlementGauges {
    pub not_settled: i64,
    pub unmatched_lines: i64,
    pub lines_pending: i64,
}

/// An amount in a currency at a time (refunds, chargebacks, payouts, for the report).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Movement {
    pub currency: Currency,
    pub amount: Decimal,
    pub at: i64,
}

fn ids_text(ids: &[i64]) -> String {
    serde_json::to_string(ids).unwrap_or_else(|_| "[]".into())
}

fn ids_of(r: &sqlx::any::AnyRow, column: &str) -> Result<Vec<i64>, sqlx::Error> {
    decode(r, column, |s| serde_json::from_str::<Vec<i64>>(s).ok())
}

fn money(r: &sqlx::any::AnyRow, column: &str) -> Result<Decimal, sqlx::Error> {
    decode(r, column, |s| s.parse::<Decimal>().ok())
}

const SELECT: &str = "SELECT id, status, currency, gross_amount, app_fee, merchant_fee, stampduty, refund, chargeback, \
                      net_amount, transaction_count, transaction_ids, refund_ids, chargeback_ids, settled_at, lines_at, \
                      first_seen_at, updated_at FROM settlements";

fn row(r: &sqlx::any::AnyRow) -> Result<SettlementRow, sqlx::Error> {
    Ok(SettlementRow {
        facts: SettlementFacts {
            id: r.try_get("id")?,
            status: r.try_get("status")?,
            currency: decode(r, "currency", Currency::parse)?,
            totals: Totals {
                gross: money(r, "gross_amount")?,
                app_fee: money(r, "app_fee")?,
                merchant_fee: money(r, "merchant_fee")?,
                stampduty: money(r, "stampduty")?,
                refund: money(r, "refund")?,
                chargeback: money(r, "chargeback")?,
                net: money(r, "net_amount")?,
            },
            transaction_count: r.try_get("transaction_count")?,
            transaction_ids: ids_of(r, "transaction_ids")?,
            refund_ids: ids_of(r, "refund_ids")?,
            chargeback_ids: ids_of(r, "chargeback_ids")?,
            settled_at: r.try_get("settled_at")?,
        },
        lines_at: r.try_get("lines_at")?,
        first_seen_at: r.try_get("first_seen_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

const SELECT_LINES: &str = "SELECT l.settlement_id, l.transaction_id, l.tx_ref, l.flw_ref, l.charged_amount, l.fees, \
                            l.settlement_amount, l.status, l.transaction_at, l.checkout_reference";

fn line(r: &sqlx::any::AnyRow) -> Result<LineRow, sqlx::Error> {
    Ok(LineRow {
        settlement_id: r.try_get("settlement_id")?,
        facts: LineFacts {
            transaction_id: r.try_get("transaction_id")?,
            tx_ref: r.try_get("tx_ref")?,
            flw_ref: r.try_get("flw_ref")?,
            amounts: LineAmounts {
                charged: money(r, "charged_amount")?,
                fees: money(r, "fees")?,
                settled: money(r, "settlement_amount")?,
            },
            status: r.try_get("status")?,
            transaction_at: r.try_get("transaction_at")?,
        },
        checkout_reference: r.try_get("checkout_reference")?,
    })
}

/// When a checkout was paid: its first `paid` timeline entry.
const PAID_AT: &str = "(SELECT MIN(e.at) FROM checkout_events e WHERE e.reference = c.reference AND e.kind = 'paid')";

fn paid_checkout(r: &sqlx::any::AnyRow) -> Result<PaidCheckout, sqlx::Error> {
    let settled: Option<String> = r.try_get("settled_amount")?;
    Ok(PaidCheckout {
        reference: r.try_get("reference")?,
        currency: decode(r, "currency", Currency::parse)?,
        paid: money(r, "paid_amount")?,
        verified_settled: settled.and_then(|s| s.parse().ok()),
        transaction_id: r.try_get("transaction_id")?,
        paid_at: r.try_get("paid_at")?,
    })
}

impl Store {
    /// Records a listed settlement: new, or its status, totals and lists as now sent. `true` when new.
    pub async fn record_settlement(&self, f: &SettlementFacts) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let lock = self.backend().row_lock();
        let known: Option<i64> = sqlx::query_scalar(&format!("SELECT id FROM settlements WHERE id = $1{lock}"))
            .bind(f.id)
            .fetch_optional(&mut *tx)
            .await?;
        let t = &f.totals;
        let sql = if known.is_none() {
            "INSERT INTO settlements (status, currency, gross_amount, app_fee, merchant_fee, stampduty, refund, \
             chargeback, net_amount, transaction_count, transaction_ids, refund_ids, chargeback_ids, settled_at, \
             id, first_seen_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $16) \
             ON CONFLICT (id) DO NOTHING"
        } else {
            "UPDATE settlements SET status = $1, currency = $2, gross_amount = $3, app_fee = $4, merchant_fee = $5, \
             stampduty = $6, refund = $7, chargeback = $8, net_amount = $9, transaction_count = $10, \
             transaction_ids = $11, refund_ids = $12, chargeback_ids = $13, settled_at = $14, updated_at = $16 \
             WHERE id = $15"
        };
        sqlx::query(sql)
            .bind(&f.status)
            .bind(f.currency.code())
            .bind(t.gross.to_string())
            .bind(t.app_fee.to_string())
            .bind(t.merchant_fee.to_string())
            .bind(t.stampduty.to_string())
            .bind(t.refund.to_string())
            .bind(t.chargeback.to_string())
            .bind(t.net.to_string())
            .bind(f.transaction_count)
            .bind(ids_text(&f.transaction_ids))
            .bind(ids_text(&f.refund_ids))
            .bind(ids_text(&f.chargeback_ids))
            .bind(f.settled_at)
            .bind(f.id)
            .bind(now_ms())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(known.is_none())
    }

    /// Stores a settlement's lines once, each linked to the checkout its `tx_ref` names, and
    /// puts "settled" on the timeline of each checkout it paid — all in one transaction.
    /// `false` when its lines were already in.
    pub async fn record_settlement_lines(&self, id: i64, lines: &[LineFacts]) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let lock = self.backend().row_lock();
        let found: Option<(Option<i64>, String)> =
            sqlx::query_as(&format!("SELECT lines_at, currency FROM settlements WHERE id = $1{lock}"))
                .bind(id)
                .fetch_optional(&mut *tx)
                .await?;
        let Some((None, currency)) = found else { return Ok(false) };
        for l in lines {
            let checkout: Option<(String, Option<i64>)> =
                sqlx::query_as("SELECT reference, transaction_id FROM checkouts WHERE reference = $1")
                    .bind(&l.tx_ref)
                    .fetch_optional(&mut *tx)
                    .await?;
            let inserted = sqlx::query(
                "INSERT INTO settlement_lines (settlement_id, transaction_id, tx_ref, flw_ref, charged_amount, fees, \
                 settlement_amount, status, transaction_at, checkout_reference) \
                 VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10) ON CONFLICT (settlement_id, transaction_id) DO NOTHING",
            )
            .bind(id)
            .bind(l.transaction_id)
            .bind(&l.tx_ref)
            .bind(l.flw_ref.as_deref())
            .bind(l.amounts.charged.to_string())
            .bind(l.amounts.fees.to_string())
            .bind(l.amounts.settled.to_string())
            .bind(l.status.as_deref())
            .bind(l.transaction_at)
            .bind(checkout.as_ref().map(|c| c.0.as_str()))
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if let Some((reference, Some(paid_by))) = &checkout
                && *paid_by == l.transaction_id
                && inserted == 1
            {
                let detail =
                    format!("settlement {id}: {} {currency} after fees of {}", l.amounts.settled, l.amounts.fees);
                Timeline::Checkout.add_in(&mut tx, reference, "settled", &detail).await?;
            }
        }
        sqlx::query("UPDATE settlements SET lines_at = $1 WHERE id = $2")
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(true)
    }

    /// Paid checkouts (paid in `[paid_since, paid_before)`) in no settlement, lines naming no
    /// checkout, and settlements whose lines are not read yet.
    pub async fn settlement_gauges(&self, paid_before: i64, paid_since: i64) -> Result<SettlementGauges, StoreError> {
        let not_settled: i64 = sqlx::query_scalar(&format!(
            "SELECT COUNT(*) FROM (SELECT {PAID_AT} AS paid_at FROM checkouts c WHERE c.status = 'paid' \
             AND NOT EXISTS (SELECT 1 FROM settlement_lines l WHERE l.transaction_id = c.transaction_id)) p \
             WHERE p.paid_at >= $1 AND p.paid_at < $2"
        ))
        .bind(paid_since)
        .bind(paid_before)
        .fetch_one(self.pool())
        .await?;
        let unmatched_lines: i64 =
            sqlx::query_scalar("SELECT COUNT(*) FROM settlement_lines WHERE checkout_reference IS NULL")
                .fetch_one(self.pool())
                .await?;
        let lines_pending: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM settlements WHERE lines_at IS NULL")
            .fetch_one(self.pool())
            .await?;
        Ok(SettlementGauges { not_settled, unmatched_lines, lines_pending })
    }

    /// Settlements whose lines are not read yet, oldest first.
    pub async fn settlements_without_lines(&self, limit: i64) -> Result<Vec<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT id FROM settlements WHERE lines_at IS NULL ORDER BY id LIMIT $1")
            .bind(limit)
            .fetch_all(self.pool())
            .await?)
    }

    /// Settlements counted in `[from, to)`, newest first.
    pub async fn settlements_between(&self, from: i64, to: i64, limit: i64) -> Result<Vec<SettlementRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT} WHERE COALESCE(settled_at, first_seen_at) >= $1 AND COALESCE(settled_at, first_seen_at) < $2 \
             ORDER BY COALESCE(settled_at, first_seen_at) DESC, id DESC LIMIT $3"
        ))
        .bind(from)
        .bind(to)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    pub async fn settlement(&self, id: i64) -> Result<Option<SettlementRow>, StoreError> {
        let r = sqlx::query(&format!("{SELECT} WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    pub async fn settlement_lines(&self, id: i64) -> Result<Vec<LineRow>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_LINES} FROM settlement_lines l WHERE l.settlement_id = $1 ORDER BY l.transaction_id"
        ))
        .bind(id)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(line).collect::<Result<_, _>>()?)
    }

    /// The lines of settlements counted in `[from, to)`, each with the checkout its `tx_ref` names.
    pub async fn settlement_lines_checked(
        &self,
        from: i64,
        to: i64,
    ) -> Result<Vec<(LineRow, Option<LineCheckout>)>, StoreError> {
        let rows = sqlx::query(&format!(
            "{SELECT_LINES}, c.reference AS c_reference, c.status AS c_status, c.transaction_id AS c_transaction, \
             c.settled_amount AS c_settled FROM settlement_lines l JOIN settlements s ON s.id = l.settlement_id \
             LEFT JOIN checkouts c ON c.reference = l.tx_ref \
             WHERE COALESCE(s.settled_at, s.first_seen_at) >= $1 AND COALESCE(s.settled_at, s.first_seen_at) < $2 \
             ORDER BY l.settlement_id, l.transaction_id"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            let reference: Option<String> = r.try_get("c_reference")?;
            let checkout = match reference {
                None => None,
                Some(reference) => {
                    let settled: Option<String> = r.try_get("c_settled")?;
                    Some(LineCheckout {
                        reference,
                        status: decode(r, "c_status", CheckoutStatus::parse)?,
                        transaction_id: r.try_get("c_transaction")?,
                        verified_settled: settled.and_then(|s| s.parse().ok()),
                    })
                }
            };
            out.push((line(r)?, checkout));
        }
        Ok(out)
    }

    /// Checkouts paid in `[from, to)`.
    pub async fn checkouts_paid_between(&self, from: i64, to: i64) -> Result<Vec<PaidCheckout>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM (SELECT c.reference, c.currency, c.paid_amount, c.settled_amount, c.transaction_id, \
             {PAID_AT} AS paid_at FROM checkouts c WHERE c.status = 'paid' AND c.paid_amount IS NOT NULL) p \
             WHERE p.paid_at >= $1 AND p.paid_at < $2 ORDER BY p.paid_at"
        ))
        .bind(from)
        .bind(to)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(paid_checkout).collect::<Result<_, _>>()?)
    }

    /// Checkouts paid before `paid_before` whose transaction is in no settlement counted before `settled_before`.
    pub async fn checkouts_not_settled(
        &self,
        paid_before: i64,
        settled_before: i64,
    ) -> Result<Vec<PaidCheckout>, StoreError> {
        let rows = sqlx::query(&format!(
            "SELECT * FROM (SELECT c.reference, c.currency, c.paid_amount, c.settled_amount, c.transaction_id, \
             {PAID_AT} AS paid_at FROM checkouts c WHERE c.status = 'paid' AND c.paid_amount IS NOT NULL \
             AND NOT EXISTS (SELECT 1 FROM settlement_lines l JOIN settlements s ON s.id = l.settlement_id \
             WHERE l.transaction_id = c.transaction_id AND COALESCE(s.settled_at, s.first_seen_at) < $2)) p \
             WHERE p.paid_at < $1 ORDER BY p.paid_at"
        ))
        .bind(paid_before)
        .bind(settled_before)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(paid_checkout).collect::<Result<_, _>>()?)
    }

    /// Of `ids`, those that are Flutterwave ids of Sika's completed refunds, with their amounts.
    pub async fn known_refunds(&self, ids: &[i64]) -> Result<HashMap<i64, Decimal>, StoreError> {
        self.known_ids("SELECT flw_refund_id, amount FROM refunds WHERE status = 'completed' AND flw_refund_id IN", ids)
            .await
    }

    /// Of `ids`, those of chargebacks Sika has recorded, with their amounts.
    pub async fn known_chargebacks(&self, ids: &[i64]) -> Result<HashMap<i64, Decimal>, StoreError> {
        self.known_ids("SELECT id, amount FROM chargebacks WHERE id IN", ids).await
    }

    /// `select_in` is fixed text selecting (id, amount) and ending in `IN`; only the ids are bound.
    async fn known_ids(&self, select_in: &'static str, ids: &[i64]) -> Result<HashMap<i64, Decimal>, StoreError> {
        let mut known = HashMap::new();
        let unique: Vec<i64> = ids.iter().copied().collect::<HashSet<_>>().into_iter().collect();
        for chunk in unique.chunks(200) {
            let marks = (1..=chunk.len()).map(|i| format!("${i}")).collect::<Vec<_>>().join(", ");
            let sql = format!("{select_in} ({marks})");
            let mut q = sqlx::query_as::<_, (i64, String)>(&sql);
            for id in chunk {
                q = q.bind(*id);
            }
            for (id, amount) in q.fetch_all(self.pool()).await? {
                let amount = amount.parse::<Decimal>().map_err(|_| {
                    StoreError::from(sqlx::Error::Decode(format!("amount: unexpected value {amount:?}").into()))
                })?;
                known.insert(id, amount);
            }
        }
        Ok(known)
    }

    /// Refunds completed in `[from, to)` (by when Sika learnt it), in their checkout's currency.
    pub async fn refunds_completed_between(&self, from: i64, to: i64) -> Result<Vec<Movement>, StoreError> {
        self.movements(
            "SELECT c.currency, r.amount, r.updated_at AS at FROM refunds r JOIN checkouts c ON c.reference = r.reference \
             WHERE r.status = 'completed' AND r.updated_at >= $1 AND r.updated_at < $2",
            from,
            to,
        )
        .await
    }

    /// Chargebacks first seen in `[from, to)` that were not won (what they hold or took).
    pub async fn chargebacks_held_between(&self, from: i64, to: i64) -> Result<Vec<Movement>, StoreError> {
        self.movements(
            "SELECT currency, amount, first_seen_at AS at FROM chargebacks \
             WHERE status <> 'won' AND currency IS NOT NULL AND first_seen_at >= $1 AND first_seen_at < $2",
            from,
            to,
        )
        .await
    }

    /// Payouts Flutterwave paid in `[from, to)` (by when Sika learnt it).
    pub async fn payouts_paid_between(&self, from: i64, to: i64) -> Result<Vec<Movement>, StoreError> {
        self.movements(
            "SELECT currency, amount, updated_at AS at FROM payouts \
             WHERE status = 'successful' AND updated_at >= $1 AND updated_at < $2",
            from,
            to,
        )
        .await
    }

    async fn movements(&self, sql: &'static str, from: i64, to: i64) -> Result<Vec<Movement>, StoreError> {
        let rows = sqlx::query(sql).bind(from).bind(to).fetch_all(self.pool()).await?;
        let mut out = Vec::with_capacity(rows.len());
        for r in &rows {
            out.push(Movement {
                currency: decode(r, "currency", Currency::parse)?,
                amount: money(r, "amount")?,
                at: r.try_get("at")?,
            });
        }
        Ok(out)
    }
}
