//! The mail outbox, each user's opt-outs, and the facts mail is composed from.

use rust_decimal::Decimal;
use sqlx::Row as _;

use super::{Store, StoreError, now_ms};
use crate::domain::Currency;
use crate::domain::mail::{Queue, Topic, Waiting};

/// One mail in the outbox.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MailRow {
    pub id: String,
    pub user_id: String,
    pub topic: String,
    pub subject: String,
    pub body: String,
    /// `pending`, `sent`, `failed` (given up) or `skipped` (the reader is gone or opted out).
    pub state: String,
    pub attempts: i64,
    pub next_attempt_at: i64,
    pub last_error: Option<String>,
    pub created_at: i64,
    pub sent_at: Option<i64>,
}

macro_rules! select_mail {
    ($tail:literal) => {
        concat!(
            "SELECT id, user_id, topic, subject, body, state, attempts, next_attempt_at, last_error, created_at, sent_at \
             FROM mail_outbox ",
            $tail
        )
    };
}

fn mail_row(r: &sqlx::any::AnyRow) -> Result<MailRow, sqlx::Error> {
    Ok(MailRow {
        id: r.try_get("id")?,
        user_id: r.try_get("user_id")?,
        topic: r.try_get("topic")?,
        subject: r.try_get("subject")?,
        body: r.try_get("body")?,
        state: r.try_get("state")?,
        attempts: r.try_get("attempts")?,
        next_attempt_at: r.try_get("next_attempt_at")?,
        last_error: r.try_get("last_error")?,
        created_at: r.try_get("created_at")?,
        sent_at: r.try_get("sent_at")?,
    })
}

/// A mail to write into the outbox.
#[derive(Debug, Clone)]
pub struct MailDraft<'a> {
    /// The same key twice is one mail: what makes composing safe on several instances.
    pub dedupe_key: &'a str,
    pub user_id: &'a str,
    pub topic: Topic,
    pub subject: &'a str,
    pub body: &'a str,
}

/// How a claimed mail ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum MailEnd<'a> {
    Sent,
    /// Try again at `retry_at`, or give up (`None`).
    Failed {
        error: &'a str,
        retry_at: Option<i64>,
    },
    Skipped(&'a str),
}

impl Store {
    /// Writes a mail unless one with its key exists; `true` when written.
    pub async fn enqueue_mail(&self, m: &MailDraft<'_>) -> Result<bool, StoreError> {
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO mail_outbox (id, dedupe_key, user_id, topic, subject, body, state, next_attempt_at, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6, 'pending', $7, $7) ON CONFLICT (dedupe_key) DO NOTHING",
        )
        .bind(crate::crypto::random::hex_id())
        .bind(m.dedupe_key)
        .bind(m.user_id)
        .bind(m.topic.as_str())
        .bind(m.subject)
        .bind(m.body)
        .bind(now)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Claims up to `limit` mails due at `now` for `lease_ms`: a claimed mail is not due for anyone
    /// else until then, so two instances never send one mail twice. Oldest first.
    pub async fn claim_due_mail(&self, now: i64, lease_ms: i64, limit: i64) -> Result<Vec<MailRow>, StoreError> {
        let rows = sqlx::query(select_mail!(
            "WHERE state = 'pending' AND next_attempt_at <= $1 ORDER BY next_attempt_at, created_at LIMIT $2"
        ))
        .bind(now)
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        let mut claimed = Vec::new();
        for r in rows {
            let m = mail_row(&r)?;
            let won = sqlx::query(
                "UPDATE mail_outbox SET next_attempt_at = $1, attempts = attempts + 1 \
                 WHERE id = $2 AND state = 'pending' AND next_attempt_at = $3",
            )
            .bind(now + lease_ms)
            .bind(&m.id)
            .bind(m.next_attempt_at)
            .execute(self.pool())
            .await?
            .rows_affected()
                == 1;
            if won {
                claimed.push(MailRow { attempts: m.attempts + 1, ..m });
            }
        }
        Ok(claimed)
    }

    /// Records how a claimed mail ended.
    pub async fn end_mail(&self, id: &str, end: MailEnd<'_>) -> Result<(), StoreError> {
        let now = now_ms();
        let q = match end {
            MailEnd::Sent => sqlx::query(
                "UPDATE mail_outbox SET state = 'sent', sent_at = $1, last_error = NULL WHERE id = $2 AND state = 'pending'",
            )
            .bind(now)
            .bind(id),
            MailEnd::Failed { error, retry_at: Some(at) } => sqlx::query(
                "UPDATE mail_outbox SET next_attempt_at = $1, last_error = $2 WHERE id = $3 AND state = 'pending'",
            )
            .bind(at)
            .bind(error.to_string())
            .bind(id),
            MailEnd::Failed { error, retry_at: None } => {
                sqlx::query("UPDATE mail_outbox SET state = 'failed', last_error = $1 WHERE id = $2 AND state = 'pending'")
                    .bind(error.to_string())
                    .bind(id)
            }
            MailEnd::Skipped(why) => {
                sqlx::query("UPDATE mail_outbox SET state = 'skipped', last_error = $1 WHERE id = $2 AND state = 'pending'")
                    .bind(why.to_string())
                    .bind(id)
            }
        };
        q.execute(self.pool()).await?;
        Ok(())
    }

    /// The newest mails, for the console (`before`: the created_at of the last row shown).
    pub async fn mail_page(&self, before: Option<i64>, limit: i64) -> Result<Vec<MailRow>, StoreError> {
        let rows = sqlx::query(select_mail!("WHERE created_at < $1 ORDER BY created_at DESC, id DESC LIMIT $2"))
            .bind(before.unwrap_or(i64::MAX))
            .bind(limit)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().map(mail_row).collect::<Result<_, _>>()?)
    }

    pub async fn mail(&self, id: &str) -> Result<Option<MailRow>, StoreError> {
        let r = sqlx::query(select_mail!("WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(mail_row).transpose()?)
    }

    /// Mails by state (for metrics and `sika check`).
    pub async fn mail_counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as("SELECT state, COUNT(*) FROM mail_outbox GROUP BY state").fetch_all(self.pool()).await?)
    }

    /// When `user_id` was last written a mail of `topic`.
    pub async fn last_mail_at(&self, user_id: &str, topic: Topic) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT MAX(created_at) FROM mail_outbox WHERE user_id = $1 AND topic = $2")
            .bind(user_id)
            .bind(topic.as_str())
            .fetch_one(self.pool())
            .await?)
    }

    pub async fn mail_optouts(&self, user_id: &str) -> Result<Vec<Topic>, StoreError> {
        let rows: Vec<String> = sqlx::query_scalar("SELECT topic FROM mail_optouts WHERE user_id = $1")
            .bind(user_id)
            .fetch_all(self.pool())
            .await?;
        Ok(rows.iter().filter_map(|t| Topic::parse(t)).collect())
    }

    /// Replaces the user's opt-outs (security events are never among them) with the audit entry.
    pub async fn set_mail_optouts(
        &self,
        user_id: &str,
        off: &[Topic],
        audit: super::AuditDraft,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("DELETE FROM mail_optouts WHERE user_id = $1").bind(user_id).execute(&mut *tx).await?;
        for t in off.iter().filter(|t| t.optional()) {
            sqlx::query(
                "INSERT INTO mail_optouts (user_id, topic) VALUES ($1, $2) ON CONFLICT (user_id, topic) DO NOTHING",
            )
            .bind(user_id)
            .bind(t.as_str())
            .execute(&mut *tx)
            .await?;
        }
        audit.append_in(&mut tx, self.backend).await?;
        tx.commit().await?;
        Ok(())
    }

    pub async fn mail_cursor(&self, name: &str) -> Result<Option<i64>, StoreError> {
        Ok(sqlx::query_scalar("SELECT value FROM mail_cursors WHERE name = $1")
            .bind(name)
            .fetch_optional(self.pool())
            .await?)
    }

    /// Moves a cursor forward (never back: a slower instance cannot rewind it).
    pub async fn advance_mail_cursor(&self, name: &str, to: i64) -> Result<(), StoreError> {
        sqlx::query(
            "INSERT INTO mail_cursors (name, value) VALUES ($1, $2) \
             ON CONFLICT (name) DO UPDATE SET value = CASE WHEN mail_cursors.value < $2 THEN $2 ELSE mail_cursors.value END",
        )
        .bind(name)
        .bind(to)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// What waits for approval now, and the newest moment anything of it was asked for.
    /// `not_by`: items that user asked for are left out (no one approves their own).
    pub async fn approval_queue(&self, not_by: &str) -> Result<(Queue, Option<i64>), StoreError> {
        let mut newest: Option<i64> = None;
        let mut fill = |w: &mut Waiting, rows: Vec<(Option<String>, Option<String>, i64)>| -> Result<(), StoreError> {
            for (currency, amount, at) in rows {
                w.count += 1;
                newest = Some(newest.map_or(at, |n| n.max(at)));
                if let (Some(c), Some(a)) = (currency, amount) {
                    let c =
                        Currency::parse(&c).ok_or_else(|| corrupt(format!("a currency Sika does not know: {c:?}")))?;
                    let a: Decimal = a.parse().map_err(|_| corrupt(format!("an amount that does not read: {a:?}")))?;
                    *w.totals.entry(c).or_default() += a;
                }
            }
            Ok(())
        };
        let mut q = Queue::default();
        let payouts = sqlx::query_as(
            "SELECT currency, amount, created_at FROM payouts \
             WHERE status = 'awaiting_approval' AND batch_id IS NULL AND created_by <> $1",
        )
        .bind(not_by)
        .fetch_all(self.pool())
        .await?;
        fill(&mut q.payouts, payouts)?;
        // A batch counts once, its payouts summed into its totals.
        let batches: Vec<(String, Option<String>, Option<String>, i64)> = sqlx::query_as(
            "SELECT b.id, p.currency, p.amount, b.created_at FROM payout_batches b \
             LEFT JOIN payouts p ON p.batch_id = b.id AND p.status = 'awaiting_approval' \
             WHERE b.status = 'awaiting_approval' AND b.created_by <> $1 ORDER BY b.id",
        )
        .bind(not_by)
        .fetch_all(self.pool())
        .await?;
        let mut seen = std::collections::BTreeSet::new();
        let mut rows = Vec::new();
        for (id, c, a, at) in batches {
            if seen.insert(id) {
                q.batches.count += 1;
            }
            rows.push((c, a, at));
        }
        let before = q.batches.count;
        fill(&mut q.batches, rows)?;
        q.batches.count = before;
        let loads = sqlx::query_as(
            "SELECT currency, amount, created_at FROM card_fundings WHERE status = 'awaiting_approval' AND created_by <> $1",
        )
        .bind(not_by)
        .fetch_all(self.pool())
        .await?;
        fill(&mut q.card_loads, loads)?;
        let answers = sqlx::query_as(
            "SELECT NULL, NULL, created_at FROM chargeback_answers WHERE status = 'awaiting_approval' AND created_by <> $1",
        )
        .bind(not_by)
        .fetch_all(self.pool())
        .await?;
        fill(&mut q.answers, answers)?;
        Ok((q, newest))
    }

    /// Transfers submitted to Flutterwave that it has called `NEW` since before `before`.
    pub async fn transfers_stuck_new(&self, before: i64, limit: i64) -> Result<Vec<String>, StoreError> {
        Ok(sqlx::query_scalar(
            "SELECT reference FROM payouts WHERE status = 'submitted' AND flw_status = 'NEW' \
             AND COALESCE(flw_status_at, updated_at) < $1 ORDER BY reference LIMIT $2",
        )
        .bind(before)
        .bind(limit)
        .fetch_all(self.pool())
        .await?)
    }

    /// Open chargebacks due between `now` and `until`: (id, due_at).
    pub async fn chargebacks_due_between(&self, now: i64, until: i64) -> Result<Vec<(i64, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT id, due_at FROM chargebacks WHERE status IN ('initiated', 'pending') \
             AND due_at IS NOT NULL AND due_at >= $1 AND due_at < $2 ORDER BY due_at",
        )
        .bind(now)
        .bind(until)
        .fetch_all(self.pool())
        .await?)
    }
}

fn corrupt(what: String) -> StoreError {
    StoreError::Db(sqlx::Error::Decode(what.into()))
}
