//! Saved payout beneficiaries: sealed account numbers and names, masked for display.

use sqlx::Row as _;

use super::{Store, StoreError, decode, now_ms};
use crate::domain::payout::AccountKind;

/// A saved beneficiary: sealed account number and names, like payouts.
#[derive(Debug, Clone)]
pub struct BeneficiaryRow {
    pub id: String,
    pub country: String,
    pub bank_code: String,
    pub bank_name: Option<String>,
    pub kind: AccountKind,
    pub branch_code: Option<String>,
    pub account_enc: String,
    pub account_mask: String,
    pub name_enc: Option<String>,
    pub resolved_name_enc: Option<String>,
    pub created_by: String,
    pub created_at: i64,
}

fn beneficiary_row(r: &sqlx::any::AnyRow) -> Result<BeneficiaryRow, sqlx::Error> {
    Ok(BeneficiaryRow {
        id: r.try_get("id")?,
        country: r.try_get("country")?,
        bank_code: r.try_get("bank_code")?,
        bank_name: r.try_get("bank_name")?,
        kind: decode(r, "kind", AccountKind::parse)?,
        branch_code: r.try_get("branch_code")?,
        account_enc: r.try_get("account_enc")?,
        account_mask: r.try_get("account_mask")?,
        name_enc: r.try_get("name_enc")?,
        resolved_name_enc: r.try_get("resolved_name_enc")?,
        created_by: r.try_get("created_by")?,
        created_at: r.try_get("created_at")?,
    })
}

macro_rules! select_beneficiaries {
    ($tail:literal) => {
        concat!(
            "SELECT id, country, bank_code, bank_name, kind, branch_code, account_enc, account_mask, name_enc, ",
            "resolved_name_enc, created_by, created_at FROM beneficiaries ",
            $tail
        )
    };
}

impl Store {
    /// Saves a beneficiary with its audit entry, in one transaction.
    pub async fn insert_beneficiary(&self, b: &BeneficiaryRow, audit: super::AuditDraft) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query(
            "INSERT INTO beneficiaries (id, country, bank_code, bank_name, kind, branch_code, account_enc, account_mask, \
             name_enc, resolved_name_enc, created_by, created_at) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)",
        )
        .bind(&b.id)
        .bind(&b.country)
        .bind(&b.bank_code)
        .bind(&b.bank_name)
        .bind(b.kind.as_str())
        .bind(&b.branch_code)
        .bind(&b.account_enc)
        .bind(&b.account_mask)
        .bind(&b.name_enc)
        .bind(&b.resolved_name_enc)
        .bind(&b.created_by)
        .bind(b.created_at)
        .execute(&mut *tx)
        .await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// A beneficiary not deleted.
    pub async fn beneficiary(&self, id: &str) -> Result<Option<BeneficiaryRow>, StoreError> {
        let r = sqlx::query(select_beneficiaries!("WHERE id = $1 AND deleted_at IS NULL"))
            .bind(id)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.as_ref().map(beneficiary_row).transpose()?)
    }

    pub async fn beneficiaries(&self, limit: i64) -> Result<Vec<BeneficiaryRow>, StoreError> {
        let rows = sqlx::query(select_beneficiaries!("WHERE deleted_at IS NULL ORDER BY created_at DESC LIMIT $1"))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(beneficiary_row).collect::<Result<_, _>>()?)
    }

    /// Deletes a beneficiary (kept for the payouts that name it, no longer usable).
    /// Deletes a saved beneficiary with its audit entry, in one transaction
    /// (`false`, and no entry, when there was none to delete).
    pub async fn delete_beneficiary(&self, id: &str, audit: super::AuditDraft) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("UPDATE beneficiaries SET deleted_at = $1 WHERE id = $2 AND deleted_at IS NULL")
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
}
