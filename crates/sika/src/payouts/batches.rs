//! Bulk payouts: a CSV checked all or nothing, stored sealed, prepared item by
//! item in the background (bank list, resolution, fee — within the budget),
//! previewed with per-currency totals and name mismatches, approved (or
//! rejected) as one under the same rules, dispatched item by item.

use std::collections::BTreeMap;

use flutterwave::Reply;
use rust_decimal::Decimal;
use serde_json::json;

use super::{CreateError, Payouts};
use crate::audit::{Actor, Outcome};
use crate::domain::payout::Approver;
use crate::domain::payout_csv::{self, RowError};
use crate::domain::{BatchStatus, Currency, PayoutStatus};
use crate::store::{BatchApproval, BatchRow, PayoutRow, StoreError, now_ms};

#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    #[error("the file has errors")]
    Rows(Vec<RowError>),
    #[error(transparent)]
    Store(#[from] StoreError),
}

/// A batch with what a person needs to decide on it.
#[derive(Debug, Clone)]
pub struct BatchSummary {
    pub batch: BatchRow,
    pub items: Vec<PayoutRow>,
    /// Per currency: (count, amount, fee).
    pub totals: BTreeMap<Currency, (usize, Decimal, Decimal)>,
    pub by_status: BTreeMap<&'static str, usize>,
    pub mismatches: usize,
    pub errors: Vec<RowError>,
}

impl Payouts {
    /// Checks a CSV (every rule Sika can check without Flutterwave, all or
    /// nothing) and stores it sealed; the preparer takes it from there.
    pub async fn create_batch(
        &self,
        actor: &Actor,
        created_by: &str,
        title: Option<&str>,
        csv: &[u8],
    ) -> Result<BatchRow, BatchError> {
        let payouts = payout_csv::parse(csv, self.max_amount).map_err(BatchError::Rows)?;
        let mut taken = Vec::new();
        for (i, p) in payouts.iter().enumerate() {
            if self.store.payout(&p.reference).await?.is_some() {
                taken.push(RowError { row: i + 2, message: format!("reference: {} is already a payout", p.reference) });
            }
        }
        if !taken.is_empty() {
            return Err(BatchError::Rows(taken));
        }
        let id = format!("batch_{}", crate::crypto::random::hex_id());
        let title = title
            .map(|t| t.chars().filter(|c| !c.is_control()).take(100).collect::<String>())
            .filter(|t| !t.trim().is_empty());
        let row = BatchRow {
            csv_enc: self.cipher.seal("payout_batches", "csv", &id, csv),
            id,
            title,
            created_by: created_by.to_string(),
            status: BatchStatus::Preparing,
            total_items: i64::try_from(payouts.len()).unwrap_or(i64::MAX),
            prepared: 0,
            errors: None,
            created_at: now_ms(),
            updated_at: now_ms(),
        };
        let details = json!({"items": row.total_items, "bytes": csv.len()});
        let target = format!("batch:{}", row.id);
        let audit = self.auditor.draft(actor, "payout_batch.upload", &target, Outcome::Success, details).await?;
        self.store.insert_batch(&row, audit).await?;
        Ok(row)
    }

    /// One preparer pass: items of preparing batches become payouts awaiting
    /// approval, one at a time within the budget. An item Flutterwave refuses
    /// refuses the whole batch (nothing of it will be sent). Returns how many
    /// items were prepared.
    pub async fn prepare_batches(&self) -> Result<usize, StoreError> {
        let mut done = 0;
        for b in self.store.batches(Some(BatchStatus::Preparing), 10).await? {
            let Ok(csv) = self.cipher.open("payout_batches", "csv", &b.id, &b.csv_enc) else {
                self.refuse_batch(&b, vec![RowError { row: 0, message: "the stored file cannot be opened".into() }])
                    .await?;
                continue;
            };
            let payouts = match payout_csv::parse(&csv, self.max_amount) {
                Ok(p) => p,
                Err(errors) => {
                    self.refuse_batch(&b, errors).await?;
                    continue;
                }
            };
            let start = usize::try_from(b.prepared).unwrap_or(0);
            let mut prepared = start;
            let mut refused = None;
            for (i, p) in payouts.iter().enumerate().skip(start) {
                match self.create_linked(&b.created_by, p, None, Some(&b.id), None).await {
                    Ok(_) => {
                        prepared = i + 1;
                        done += 1;
                        self.store.batch_prepared(&b.id, i64::try_from(prepared).unwrap_or(i64::MAX)).await?;
                    }
                    // No definite answer: go on at the next pass.
                    Err(CreateError::Unavailable) => break,
                    Err(CreateError::Store(e)) => return Err(e),
                    Err(e) => {
                        refused = Some(RowError { row: i + 2, message: e.to_string() });
                        break;
                    }
                }
            }
            if let Some(e) = refused {
                self.refuse_batch(&b, vec![e]).await?;
            } else if prepared == payouts.len() {
                self.store.batch_moved(&b.id, BatchStatus::Preparing, BatchStatus::AwaitingApproval, None).await?;
            }
        }
        Ok(done)
    }

    async fn refuse_batch(&self, b: &BatchRow, errors: Vec<RowError>) -> Result<(), StoreError> {
        let text =
            json!(errors.iter().map(|e| json!({"row": e.row, "message": e.message})).collect::<Vec<_>>()).to_string();
        if self.store.batch_moved(&b.id, BatchStatus::Preparing, BatchStatus::Refused, Some(&text)).await? {
            for p in self.store.payouts_of_batch(&b.id).await? {
                self.store
                    .close_unapproved(&p.reference, PayoutStatus::Cancelled, "its batch was refused", None, None)
                    .await?;
            }
        }
        Ok(())
    }

    /// Approves every item of a batch as one (see `Store::approve_batch`),
    /// after reading each currency's balance.
    pub async fn approve_batch(
        &self,
        actor: &Actor,
        id: &str,
        approver: &Approver<'_>,
    ) -> Result<BatchApproval, StoreError> {
        let target = format!("batch:{id}");
        let result = self.approve_batch_audited(actor, id, approver, &target).await?;
        let denied = match &result {
            BatchApproval::Done { .. } => None,
            BatchApproval::Refused(why) => Some(json!({"result": "refused", "reason": why})),
            BatchApproval::Overdraw { currency, available, held, total } => Some(json!({
                "result": "short", "currency": currency, "available": available.to_string(),
                "held": held.to_string(), "amount": total.to_string()
            })),
        };
        if let Some(details) = denied {
            self.auditor.record(actor, "payout_batch.approve", &target, Outcome::Denied, details).await?;
        }
        Ok(result)
    }

    async fn approve_batch_audited(
        &self,
        actor: &Actor,
        id: &str,
        approver: &Approver<'_>,
        target: &str,
    ) -> Result<BatchApproval, StoreError> {
        let items = self.store.payouts_of_batch(id).await?;
        let mut available = BTreeMap::new();
        for c in items.iter().map(|p| p.currency).collect::<std::collections::BTreeSet<_>>() {
            match self.flw.balance(c.code()).await {
                Reply::Ok(b) => {
                    available.insert(c, b.available_balance.decimal());
                }
                _ => {
                    return Ok(BatchApproval::Refused(format!(
                        "Flutterwave's {c} balance could not be read, so no hold can be placed; try again"
                    )));
                }
            }
        }
        let audit = self.auditor.draft(actor, "payout_batch.approve", target, Outcome::Success, json!({})).await?;
        self.store.approve_batch(id, approver, &available, audit).await
    }

    /// Rejects a batch awaiting approval, and every item in it.
    pub async fn reject_batch(&self, actor: &Actor, id: &str, reason: &str) -> Result<bool, StoreError> {
        let details = json!({"reason": reason});
        let target = format!("batch:{id}");
        let audit = self.auditor.draft(actor, "payout_batch.reject", &target, Outcome::Success, details).await?;
        let moved = self
            .store
            .batch_moved_audited(id, BatchStatus::AwaitingApproval, BatchStatus::Rejected, None, Some(audit))
            .await?;
        if !moved {
            return Ok(false);
        }
        for p in self.store.payouts_of_batch(id).await? {
            self.reject(actor, &p.reference, reason).await?;
        }
        Ok(true)
    }

    pub async fn batch_summary(&self, id: &str) -> Result<Option<BatchSummary>, StoreError> {
        let Some(batch) = self.store.batch(id).await? else { return Ok(None) };
        let items = self.store.payouts_of_batch(id).await?;
        let mut totals: BTreeMap<Currency, (usize, Decimal, Decimal)> = BTreeMap::new();
        let mut by_status: BTreeMap<&'static str, usize> = BTreeMap::new();
        for p in &items {
            let t = totals.entry(p.currency).or_default();
            t.0 += 1;
            t.1 += p.amount;
            t.2 += p.fee;
            *by_status.entry(p.status.as_str()).or_default() += 1;
        }
        let errors = batch
            .errors
            .as_deref()
            .and_then(|e| serde_json::from_str::<Vec<serde_json::Value>>(e).ok())
            .unwrap_or_default()
            .iter()
            .map(|e| RowError {
                row: e["row"].as_u64().and_then(|r| usize::try_from(r).ok()).unwrap_or(0),
                message: e["message"].as_str().unwrap_or("").to_string(),
            })
            .collect();
        let mismatches = items.iter().filter(|p| p.name_mismatch).count();
        Ok(Some(BatchSummary { batch, items, totals, by_status, mismatches, errors }))
    }
}
