//! Bulk payouts: the uploaded CSV (sealed), its preparation, and approving
//! every item of a batch as one, under the approval rule and the holds.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::payouts::{PayoutRow, event, held_in, lock_holds, row, select_payouts};
use super::{Backend, Store, StoreError, decode, now_ms};
use crate::domain::payout::{Approval, Approver, PendingApproval, approve};
use crate::domain::{BatchStatus, Currency};

#[derive(Debug, Clone)]
pub struct BatchRow {
    pub id: String,
    pub title: Option<String>,
    pub created_by: String,
    pub status: BatchStatus,
    pub csv_enc: String,
    pub total_items: i64,
    pub prepared: i64,
    /// JSON `[{row, message}]` when preparing refused an item.
    pub errors: Option<String>,
    pub created_at: i64,
    pub updated_at: i64,
}

fn batch_row(r: &sqlx::any::AnyRow) -> Result<BatchRow, sqlx::Error> {
    Ok(BatchRow {
        id: r.try_get("id")?,
        title: r.try_get("title")?,
        created_by: r.try_get("created_by")?,
        status: decode(r, "status", BatchStatus::parse)?,
        csv_enc: r.try_get("csv_enc")?,
        total_items: r.try_get("total_items")?,
        prepared: r.try_get("prepared")?,
        errors: r.try_get("errors")?,
        created_at: r.try_get("created_at")?,
        updated_at: r.try_get("updated_at")?,
    })
}

macro_rules! select_batches {
    ($tail:literal) => {
        concat!(
            "SELECT id, title, created_by, status, csv_enc, total_items, prepared, errors, created_at, updated_at ",
            "FROM payout_batches ",
            $tail
        )
    };
}

/// What approving a batch did: all of it, or none.
#[derive(Debug, Clone)]
pub enum BatchApproval {
    /// Approvals recorded; `queued` items are now queued (the others need another approver).
    Done {
        queued: usize,
        still_awaiting: usize,
    },
    Refused(String),
    Overdraw {
        currency: Currency,
        available: Decimal,
        held: Decimal,
        total: Decimal,
    },
}

impl Store {
    /// Inserts a batch with the uploader's audit entry, in one transaction.
    pub async fn insert_batch(&self, b: &BatchRow, audit: super::AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO payout_batches (id, title, created_by, status, csv_enc, total_items, prepared, created_at, updated_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 0, $7, $7)",
        )
        .bind(&b.id)
        .bind(&b.title)
        .bind(&b.created_by)
        .bind(b.status.as_str())
        .bind(&b.csv_enc)
        .bind(b.total_items)
        .bind(b.created_at)
        .execute(&mut *tx)
        .await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn batch(&self, id: &str) -> Result<Option<BatchRow>, StoreError> {
        let r = sqlx::query(select_batches!("WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(batch_row).transpose()?)
    }

    pub async fn batches(&self, status: Option<BatchStatus>, limit: i64) -> Result<Vec<BatchRow>, StoreError> {
        let rows = sqlx::query(select_batches!("WHERE ($1 IS NULL OR status = $1) ORDER BY created_at DESC LIMIT $2"))
            .bind(status.map(BatchStatus::as_str))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(batch_row).collect::<Result<_, _>>()?)
    }

    /// Items prepared so far (the preparer resumes from here).
    pub async fn batch_prepared(&self, id: &str, prepared: i64) -> Result<(), StoreError> {
        sqlx::query("UPDATE payout_batches SET prepared = $1, updated_at = $2 WHERE id = $3")
            .bind(prepared)
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Moves a batch from `from` to `to`; `false` when it was not in `from`.
    pub async fn batch_moved(
        &self,
        id: &str,
        from: BatchStatus,
        to: BatchStatus,
        errors: Option<&str>,
    ) -> Result<bool, StoreError> {
        self.batch_moved_audited(id, from, to, errors, None).await
    }

    /// The same move, with the audit entry of whoever made it in its transaction.
    pub async fn batch_moved_audited(
        &self,
        id: &str,
        from: BatchStatus,
        to: BatchStatus,
        errors: Option<&str>,
        audit: Option<super::AuditDraft>,
    ) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query(
            "UPDATE payout_batches SET status = $1, errors = COALESCE($2, errors), updated_at = $3 WHERE id = $4 AND status = $5",
        )
        .bind(to.as_str())
        .bind(errors)
        .bind(now_ms())
        .bind(id)
        .bind(from.as_str())
        .execute(&mut *tx)
        .await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        if let Some(a) = audit {
            a.append_in(&mut tx, self.backend()).await?;
        }
        tx.commit().await?;
        Ok(true)
    }

    pub async fn payouts_of_batch(&self, id: &str) -> Result<Vec<PayoutRow>, StoreError> {
        let rows = sqlx::query(select_payouts!("WHERE batch_id = $1 ORDER BY created_at, reference"))
            .bind(id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// Approves every item of a batch awaiting approval, as one: in one
    /// transaction the approval rule is applied to each item and the holds of
    /// every item it completes are checked per currency against `available`.
    /// Any refusal or overdraw and nothing is recorded.
    pub async fn approve_batch(
        &self,
        id: &str,
        approver: &Approver<'_>,
        available: &std::collections::BTreeMap<Currency, Decimal>,
        audit: super::AuditDraft,
    ) -> Result<BatchApproval, StoreError> {
        let mut tx = self.begin_write().await?;
        let lock = match self.backend() {
            Backend::Postgres => select_batches!("WHERE id = $1 FOR UPDATE"),
            Backend::Sqlite => select_batches!("WHERE id = $1"),
        };
        let Some(batch) =
            sqlx::query(lock).bind(id).fetch_optional(&mut *tx).await?.as_ref().map(batch_row).transpose()?
        else {
            return Ok(BatchApproval::Refused("no such batch".into()));
        };
        if batch.status != BatchStatus::AwaitingApproval {
            return Ok(BatchApproval::Refused("only a batch awaiting approval can be approved".into()));
        }
        for c in available.keys() {
            lock_holds(&mut tx, self.backend(), *c).await?;
        }
        let items =
            sqlx::query(select_payouts!("WHERE batch_id = $1 AND status = 'awaiting_approval' ORDER BY reference"))
                .bind(id)
                .fetch_all(&mut *tx)
                .await?;
        let items: Vec<PayoutRow> = items.iter().map(row).collect::<Result<_, _>>()?;
        let mut completing: std::collections::BTreeMap<Currency, Decimal> = Default::default();
        let mut decisions = Vec::new();
        for p in &items {
            let approved_by: Vec<String> =
                sqlx::query_scalar("SELECT user_id FROM payout_approvals WHERE reference = $1")
                    .bind(&p.reference)
                    .fetch_all(&mut *tx)
                    .await?;
            let pending = PendingApproval {
                reference: &p.reference,
                status: p.status,
                created_by: &p.created_by,
                approved_by: &approved_by,
                needed: crate::domain::approval::needed_from_stored(p.approvals_needed),
            };
            match approve(&pending, approver) {
                Approval::Refused(why) => return Ok(BatchApproval::Refused(format!("{}: {why}", p.reference))),
                Approval::Recorded { .. } => decisions.push((p, false)),
                Approval::Complete(_) => {
                    *completing.entry(p.currency).or_default() += p.total();
                    decisions.push((p, true));
                }
            }
        }
        for (currency, total) in &completing {
            let held = held_in(&mut tx, *currency).await?;
            let Some(avail) = available.get(currency).copied() else {
                return Ok(BatchApproval::Refused(format!("the {currency} balance could not be read")));
            };
            if held + total > avail {
                return Ok(BatchApproval::Overdraw { currency: *currency, available: avail, held, total: *total });
            }
        }
        let now = now_ms();
        let mut queued = 0;
        for (p, completes) in &decisions {
            sqlx::query("INSERT INTO payout_approvals (reference, user_id, at) VALUES ($1, $2, $3)")
                .bind(&p.reference)
                .bind(approver.user_id())
                .bind(now)
                .execute(&mut *tx)
                .await?;
            if *completes {
                sqlx::query(
                    "UPDATE payouts SET status = 'queued', hold = $1, updated_at = $2 WHERE reference = $3 AND status = 'awaiting_approval'",
                )
                .bind(p.total().to_string())
                .bind(now)
                .bind(&p.reference)
                .execute(&mut *tx)
                .await?;
                queued += 1;
            }
            let detail = format!("by user:{} with the batch {id}", approver.user_id());
            event(&mut tx, &p.reference, "approved", &detail).await?;
        }
        let still_awaiting = decisions.len() - queued;
        if still_awaiting == 0 {
            sqlx::query("UPDATE payout_batches SET status = 'approved', updated_at = $1 WHERE id = $2")
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
        }
        let details = serde_json::json!({"result": "done", "queued": queued, "still_awaiting": still_awaiting});
        audit.with_details(details).append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(BatchApproval::Done { queued, still_awaiting })
    }
}
