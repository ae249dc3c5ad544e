//! Operators: rows hold sealed e-mails, names and TOTP secrets (see `crypto::field`).

use sqlx::Row as _;
use sqlx::any::AnyRow;

use super::list_query::{Value, Where};
use super::{Store, StoreError, now_ms};

#[derive(Debug, Clone)]
pub struct UserRow {
    pub id: String,
    pub email_index: String,
    pub email_enc: String,
    pub name_enc: Option<String>,
    pub role: String,
    pub password_hash: String,
    pub totp_secret_enc: String,
    pub totp_enrolled: bool,
    pub totp_last_step: i64,
    pub disabled: bool,
    pub failed_logins: i64,
    pub lockouts: i64,
    pub locked_until: i64,
    pub created_at: i64,
}

/// `SELECT <every user column> FROM users <tail>`, as one static string.
macro_rules! select_users {
    ($tail:literal) => {
        concat!(
            "SELECT id, email_index, email_enc, name_enc, role, password_hash, totp_secret_enc, totp_enrolled, ",
            "totp_last_step, disabled, failed_logins, lockouts, locked_until, created_at FROM users ",
            $tail
        )
    };
}

fn row(r: &AnyRow) -> Result<UserRow, sqlx::Error> {
    Ok(UserRow {
        id: r.try_get("id")?,
        email_index: r.try_get("email_index")?,
        email_enc: r.try_get("email_enc")?,
        name_enc: r.try_get("name_enc")?,
        role: r.try_get("role")?,
        password_hash: r.try_get("password_hash")?,
        totp_secret_enc: r.try_get("totp_secret_enc")?,
        totp_enrolled: r.try_get::<i64, _>("totp_enrolled")? != 0,
        totp_last_step: r.try_get("totp_last_step")?,
        disabled: r.try_get::<i64, _>("disabled")? != 0,
        failed_logins: r.try_get("failed_logins")?,
        lockouts: r.try_get("lockouts")?,
        locked_until: r.try_get("locked_until")?,
        created_at: r.try_get("created_at")?,
    })
}

/// Outcome of inserting a user whose blind-indexed e-mail may already exist.
#[derive(Debug, PartialEq, Eq)]
pub enum Inserted {
    Yes,
    EmailTaken,
}

impl Store {
    pub async fn insert_user(&self, u: &UserRow) -> Result<Inserted, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = insert_user_in(&mut tx, u).await?;
        tx.commit().await?;
        Ok(inserted)
    }

    /// Inserts a user and writes `audit` in the same transaction (neither when the e-mail is taken).
    pub async fn insert_user_audited(&self, u: &UserRow, audit: super::AuditDraft) -> Result<Inserted, StoreError> {
        let mut tx = self.begin_write().await?;
        let inserted = insert_user_in(&mut tx, u).await?;
        if inserted == Inserted::Yes {
            audit.append_in(&mut tx, self.backend()).await?;
            tx.commit().await?;
        }
        Ok(inserted)
    }

    pub async fn user(&self, id: &str) -> Result<Option<UserRow>, StoreError> {
        let r = sqlx::query(select_users!("WHERE id = $1")).bind(id).fetch_optional(self.pool()).await?;
        Ok(r.as_ref().map(row).transpose()?)
    }

    /// Finds a user by any of the blind indexes of an e-mail (one per data key).
    pub async fn user_by_email_index(&self, indexes: &[String]) -> Result<Option<UserRow>, StoreError> {
        for idx in indexes {
            let r = sqlx::query(select_users!("WHERE email_index = $1")).bind(idx).fetch_optional(self.pool()).await?;
            if let Some(r) = r {
                return Ok(Some(row(&r)?));
            }
        }
        Ok(None)
    }

    pub async fn users(&self) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(select_users!("ORDER BY created_at")).fetch_all(self.pool()).await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    /// One page of users, oldest first, after `(created_at, id)`, and how many there are.
    pub async fn users_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<(Vec<UserRow>, i64), StoreError> {
        let total: i64 = sqlx::query_scalar("SELECT COUNT(*) FROM users").fetch_one(self.pool()).await?;
        let mut w = Where::default();
        if let Some((at, id)) = after {
            w.and("(created_at > ? OR (created_at = ? AND id > ?))", [Value::Int(at), Value::Int(at), Value::Text(id)]);
        }
        let sql = format!("{} {} ORDER BY created_at, id LIMIT {}", select_users!(""), w.sql(), w.next_placeholder());
        let rows = w.bind(sqlx::query(&sql)).bind(limit).fetch_all(self.pool()).await?;
        Ok((rows.iter().map(row).collect::<Result<_, _>>()?, total))
    }

    pub async fn set_user_role(&self, id: &str, role: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
            .bind(role)
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Changes an account and writes `audit` in the same transaction: a role
    /// or the disabled flag (unless that would leave no active admin — the
    /// active admins are locked for the check, `FOR UPDATE` on PostgreSQL and
    /// SQLite's write transaction, so two admins demoting each other at once
    /// cannot both succeed), a second factor reset, a lockout lifted. With
    /// `end_sessions`, the user's sessions end in it too (a privilege change:
    /// the next sign-in gets a new token). Nothing changed, nothing audited.
    pub async fn change_account(
        &self,
        id: &str,
        change: UserChange<'_>,
        end_sessions: Option<&str>,
        audit: super::AuditDraft,
    ) -> Result<Kept, StoreError> {
        let mut tx = self.begin_write().await?;
        let now = now_ms();
        let r = match change {
            UserChange::Role(_) | UserChange::Disabled(_) => {
                let select = match self.backend() {
                    super::Backend::Postgres => "SELECT id FROM users WHERE role = 'admin' AND disabled = 0 FOR UPDATE",
                    super::Backend::Sqlite => "SELECT id FROM users WHERE role = 'admin' AND disabled = 0",
                };
                let admins: Vec<String> = sqlx::query_scalar(select).fetch_all(&mut *tx).await?;
                let was_active_admin = admins.iter().any(|a| a == id);
                let stays_active_admin = match change {
                    UserChange::Role(r) => r == "admin",
                    UserChange::Disabled(d) => !d,
                    _ => true,
                };
                if was_active_admin && !stays_active_admin && admins.len() <= 1 {
                    return Ok(Kept::LastAdmin);
                }
                match change {
                    UserChange::Role(role) => {
                        sqlx::query("UPDATE users SET role = $1, updated_at = $2 WHERE id = $3")
                            .bind(role)
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?
                    }
                    _ => {
                        let disabled = matches!(change, UserChange::Disabled(true));
                        sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
                            .bind(i64::from(disabled))
                            .bind(now)
                            .bind(id)
                            .execute(&mut *tx)
                            .await?
                    }
                }
            }
            UserChange::ResetTotp { sealed_secret } => {
                let r = sqlx::query(
                    "UPDATE users SET totp_secret_enc = $1, totp_enrolled = 0, totp_last_step = 0, updated_at = $2 \
                     WHERE id = $3",
                )
                .bind(sealed_secret)
                .bind(now)
                .bind(id)
                .execute(&mut *tx)
                .await?;
                sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
                r
            }
            UserChange::Unlock => {
                sqlx::query("UPDATE users SET locked_until = 0, failed_logins = 0, lockouts = 0 WHERE id = $1")
                    .bind(id)
                    .execute(&mut *tx)
                    .await?
            }
        };
        if r.rows_affected() != 1 {
            return Ok(Kept::NotFound);
        }
        if let Some(reason) = end_sessions {
            super::sessions::end_user_sessions_in(&mut tx, id, None, reason).await?;
        }
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(Kept::Changed)
    }

    pub async fn set_user_disabled(&self, id: &str, disabled: bool) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE users SET disabled = $1, updated_at = $2 WHERE id = $3")
            .bind(i64::from(disabled))
            .bind(now_ms())
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A new password hash, the user's other sessions ended, and `audit`, in one transaction.
    pub async fn change_password(
        &self,
        id: &str,
        hash: &str,
        keep_session: &str,
        audit: super::AuditDraft,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET password_hash = $1, updated_at = $2 WHERE id = $3")
            .bind(hash)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        super::sessions::end_user_sessions_in(&mut tx, id, Some(keep_session), "password_changed").await?;
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// Marks enrolment done and stores the hashed recovery codes, in one transaction.
    pub async fn confirm_totp(
        &self,
        id: &str,
        step: i64,
        recovery_hashes: &[String],
        audit: super::AuditDraft,
    ) -> Result<(), StoreError> {
        let mut tx = self.begin_write().await?;
        sqlx::query("UPDATE users SET totp_enrolled = 1, totp_last_step = $1, updated_at = $2 WHERE id = $3")
            .bind(step)
            .bind(now_ms())
            .bind(id)
            .execute(&mut *tx)
            .await?;
        sqlx::query("DELETE FROM recovery_codes WHERE user_id = $1").bind(id).execute(&mut *tx).await?;
        for h in recovery_hashes {
            sqlx::query("INSERT INTO recovery_codes (user_id, code_hash) VALUES ($1, $2)")
                .bind(id)
                .bind(h)
                .execute(&mut *tx)
                .await?;
        }
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(())
    }

    /// The replay guard: records `step` as used only if it is newer than the
    /// last one. Concurrent logins with the same code: exactly one wins.
    pub async fn claim_totp_step(&self, id: &str, step: i64) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE users SET totp_last_step = $1 WHERE id = $2 AND totp_last_step < $1")
            .bind(step)
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Uses a recovery code once: `true` if it existed and was unused.
    pub async fn use_recovery_code(&self, id: &str, code_hash: &str) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND code_hash = $3 AND used_at IS NULL",
        )
        .bind(now_ms())
        .bind(id)
        .bind(code_hash)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    pub async fn unused_recovery_codes(&self, id: &str) -> Result<i64, StoreError> {
        Ok(sqlx::query_scalar("SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at IS NULL")
            .bind(id)
            .fetch_one(self.pool())
            .await?)
    }

    /// Reserves one sign-in attempt on the account *before* the password is
    /// checked: one atomic update, so concurrent attempts cannot all pass.
    /// `false` when the account is locked or its failures (with attempts in
    /// flight) already reached `threshold`.
    pub async fn reserve_login_attempt(&self, id: &str, threshold: i64, now: i64) -> Result<bool, StoreError> {
        let r = sqlx::query(
            "UPDATE users SET failed_logins = failed_logins + 1 WHERE id = $1 AND locked_until <= $2 AND failed_logins < $3",
        )
        .bind(id)
        .bind(now)
        .bind(threshold)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A reserved attempt failed (it stays counted). At `threshold` the
    /// account locks for `base_ms` doubled per earlier lockout, at most
    /// `max_ms`. Returns the lock's end, if it locked now.
    pub async fn fail_login_attempt(
        &self,
        id: &str,
        threshold: i64,
        base_ms: i64,
        max_ms: i64,
    ) -> Result<Option<i64>, StoreError> {
        let now = now_ms();
        let mut tx = self.begin_write().await?;
        let select = match self.backend() {
            super::Backend::Postgres => "SELECT failed_logins, lockouts FROM users WHERE id = $1 FOR UPDATE",
            super::Backend::Sqlite => "SELECT failed_logins, lockouts FROM users WHERE id = $1",
        };
        let Some((failed, lockouts)): Option<(i64, i64)> =
            sqlx::query_as(select).bind(id).fetch_optional(&mut *tx).await?
        else {
            return Ok(None);
        };
        if failed < threshold {
            tx.commit().await?;
            return Ok(None);
        }
        let until = now + base_ms.saturating_mul(1_i64 << lockouts.clamp(0, 20)).min(max_ms);
        sqlx::query(
            "UPDATE users SET failed_logins = 0, lockouts = lockouts + 1, locked_until = $1 WHERE id = $2 AND locked_until <= $3",
        )
        .bind(until)
        .bind(id)
        .bind(now)
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(Some(until))
    }

    /// A complete sign-in: failures, and the lockout doubling, start over.
    pub async fn login_succeeded(&self, id: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE users SET failed_logins = 0, lockouts = 0 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// An admin (or `sika user unlock`) lifts a lockout; the doubling starts over.
    pub async fn unlock_user(&self, id: &str) -> Result<bool, StoreError> {
        let r = sqlx::query("UPDATE users SET locked_until = 0, failed_logins = 0, lockouts = 0 WHERE id = $1")
            .bind(id)
            .execute(self.pool())
            .await?;
        Ok(r.rows_affected() == 1)
    }

    /// Rows whose sealed fields are not yet under key `primary`, a batch at a time (for `sika keys rotate`).
    pub async fn users_not_on_key(&self, primary_prefix: &str, limit: i64) -> Result<Vec<UserRow>, StoreError> {
        let rows = sqlx::query(select_users!(
            "WHERE email_enc NOT LIKE $1 OR totp_secret_enc NOT LIKE $1 OR email_index NOT LIKE $2 \
             OR (name_enc IS NOT NULL AND name_enc NOT LIKE $1) ORDER BY id LIMIT $3"
        ))
        .bind(format!("v1.{primary_prefix}.%"))
        .bind(format!("{primary_prefix}.%"))
        .bind(limit)
        .fetch_all(self.pool())
        .await?;
        Ok(rows.iter().map(row).collect::<Result<_, _>>()?)
    }

    pub async fn reseal_user(&self, u: &UserRow) -> Result<(), StoreError> {
        sqlx::query(
            "UPDATE users SET email_index = $1, email_enc = $2, name_enc = $3, totp_secret_enc = $4 WHERE id = $5",
        )
        .bind(&u.email_index)
        .bind(&u.email_enc)
        .bind(&u.name_enc)
        .bind(&u.totp_secret_enc)
        .bind(&u.id)
        .execute(self.pool())
        .await?;
        Ok(())
    }

    /// Reserves one sign-in attempt for an address *before* any password
    /// work, in one atomic upsert: `false` when its window is full. The window
    /// (fixed, `window_ms` long) starts over when it has passed.
    pub async fn reserve_ip_attempt(&self, ip: &str, limit: i64, window_ms: i64) -> Result<bool, StoreError> {
        let now = now_ms();
        let r = sqlx::query(
            "INSERT INTO login_throttle (ip, window_start, failures) VALUES ($1, $2, 1) \
             ON CONFLICT (ip) DO UPDATE SET \
             failures = CASE WHEN login_throttle.window_start <= $3 THEN 1 ELSE login_throttle.failures + 1 END, \
             window_start = CASE WHEN login_throttle.window_start <= $3 THEN $2 ELSE login_throttle.window_start END \
             WHERE login_throttle.window_start <= $3 OR login_throttle.failures < $4",
        )
        .bind(ip)
        .bind(now)
        .bind(now - window_ms)
        .bind(limit)
        .execute(self.pool())
        .await?;
        Ok(r.rows_affected() == 1)
    }

    /// A reserved attempt succeeded: it does not count against the address.
    pub async fn release_ip_attempt(&self, ip: &str) -> Result<(), StoreError> {
        sqlx::query("UPDATE login_throttle SET failures = failures - 1 WHERE ip = $1 AND failures > 0")
            .bind(ip)
            .execute(self.pool())
            .await?;
        Ok(())
    }

    /// Failures from `ip` in the current window.
    pub async fn ip_failures(&self, ip: &str, window_ms: i64) -> Result<i64, StoreError> {
        let r: Option<(i64, i64)> = sqlx::query_as("SELECT window_start, failures FROM login_throttle WHERE ip = $1")
            .bind(ip)
            .fetch_optional(self.pool())
            .await?;
        Ok(r.filter(|(start, _)| now_ms() - start < window_ms).map(|(_, n)| n).unwrap_or(0))
    }

    /// Addresses with at least `limit` failures in the current window.
    pub async fn throttled_ips(&self, limit: i64, window_ms: i64) -> Result<Vec<(String, i64)>, StoreError> {
        Ok(sqlx::query_as(
            "SELECT ip, failures FROM login_throttle WHERE failures >= $1 AND window_start > $2 ORDER BY ip",
        )
        .bind(limit)
        .bind(now_ms() - window_ms)
        .fetch_all(self.pool())
        .await?)
    }

    /// Lifts an address's throttle and writes `audit` in the same transaction
    /// (`false`, and no entry, when it was not throttled).
    pub async fn clear_ip_throttle(&self, ip: &str, audit: super::AuditDraft) -> Result<bool, StoreError> {
        let mut tx = self.begin_write().await?;
        let r = sqlx::query("DELETE FROM login_throttle WHERE ip = $1").bind(ip).execute(&mut *tx).await?;
        if r.rows_affected() != 1 {
            return Ok(false);
        }
        audit.append_in(&mut tx, self.backend()).await?;
        tx.commit().await?;
        Ok(true)
    }
}

/// What an admin changes on an account (`Store::change_account`).
#[derive(Debug, Clone, Copy)]
pub enum UserChange<'a> {
    Role(&'a str),
    Disabled(bool),
    /// A new, not yet enrolled second factor; the recovery codes go.
    ResetTotp {
        sealed_secret: &'a str,
    },
    /// The lockout and failure counts lifted.
    Unlock,
}

/// What [`Store::change_account`] did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kept {
    Changed,
    /// Refused: the user is the last active admin.
    LastAdmin,
    NotFound,
}

async fn insert_user_in(tx: &mut super::Tx, u: &UserRow) -> Result<Inserted, StoreError> {
    let sql = "INSERT INTO users (id, email_index, email_enc, name_enc, role, password_hash, totp_secret_enc, \
               totp_enrolled, totp_last_step, disabled, created_at, updated_at) \
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, 0, 0, $9, $9) ON CONFLICT (email_index) DO NOTHING";
    let r = sqlx::query(sql)
        .bind(&u.id)
        .bind(&u.email_index)
        .bind(&u.email_enc)
        .bind(&u.name_enc)
        .bind(&u.role)
        .bind(&u.password_hash)
        .bind(&u.totp_secret_enc)
        .bind(i64::from(u.totp_enrolled))
        .bind(u.created_at)
        .execute(&mut **tx)
        .await?;
    Ok(if r.rows_affected() == 1 { Inserted::Yes } else { Inserted::EmailTaken })
}
