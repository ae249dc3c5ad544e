//! Operators and machines: accounts, passwords, TOTP, sessions, API keys.
//!
//! Everything here is enforced on the server. The web layer (`http::console`)
//! only turns requests into these calls and outcomes into pages.

pub mod apikeys;
pub mod login;
pub mod roles;
pub mod session;

use std::time::Duration;

use serde_json::json;

use crate::audit::{Actor, Auditor, Outcome};
use crate::crypto::field::FieldCipher;
use crate::crypto::password::{PasswordPool, check_policy};
use crate::crypto::{random, sha256_hex, totp};
use crate::domain::validate;
use crate::store::{Inserted, Kept, Store, StoreError, UserChange, UserRow, now_ms};
pub use roles::Role;

/// Lockout after this many failed logins in a row…
pub const LOCKOUT_THRESHOLD: i64 = 5;
/// …for this long (PCI DSS: at least 30 minutes), doubled at every further
/// lockout without a successful sign-in in between…
pub const LOCKOUT_BASE: Duration = Duration::from_secs(30 * 60);
/// …but never longer than this: knowing someone's e-mail must not lock them out for weeks.
pub const LOCKOUT_MAX: Duration = Duration::from_secs(2 * 3600);
/// Wrong step-up codes in one session before the session ends.
pub const STEP_UP_LIMIT: i64 = 5;
/// Failed logins from one IP address within the window before it is throttled.
pub const IP_THROTTLE_LIMIT: i64 = 20;
pub const IP_THROTTLE_WINDOW: Duration = Duration::from_secs(15 * 60);
pub const RECOVERY_CODES: usize = 10;

/// Everything authentication needs, shared by the web layer and the CLI.
#[derive(Debug, Clone)]
pub struct Auth {
    store: Store,
    pub cipher: FieldCipher,
    pub passwords: PasswordPool,
    pub auditor: Auditor,
    pub idle_timeout: Duration,
    pub absolute_timeout: Duration,
    /// Failed logins from one IP address per [`IP_THROTTLE_WINDOW`] before it is refused.
    pub ip_throttle_limit: i64,
}

/// A user as the application sees it: sealed fields opened.
#[derive(Debug, Clone)]
pub struct User {
    pub id: String,
    pub email: String,
    pub name: Option<String>,
    pub role: Role,
    pub disabled: bool,
    pub totp_enrolled: bool,
    pub locked_until: i64,
    pub created_at: i64,
}

#[derive(Debug, thiserror::Error)]
pub enum AuthError {
    /// Shown to the person: their own input is wrong (which field, and why).
    #[error("{1}")]
    Invalid(&'static str, String),
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error("stored data cannot be opened: {0}")]
    Sealed(#[from] crate::crypto::field::FieldError),
}

/// A new user's one-time secrets, shown once.
#[derive(Debug)]
pub struct Created {
    pub id: String,
    pub totp_secret: String,
}

impl Auth {
    pub fn new(
        store: Store,
        keys: crate::crypto::keyring::KeyRing,
        audit_key: crate::secret::Secret,
        idle_timeout: Duration,
        absolute_timeout: Duration,
    ) -> Self {
        Auth {
            auditor: Auditor::new(store.clone(), audit_key),
            store,
            cipher: FieldCipher::new(keys),
            passwords: PasswordPool::for_this_machine(),
            idle_timeout,
            absolute_timeout,
            ip_throttle_limit: IP_THROTTLE_LIMIT,
        }
    }

    /// The data key ring (other services seal their fields with it too).
    pub fn cipher_keys(&self) -> crate::crypto::keyring::KeyRing {
        self.cipher.ring().clone()
    }

    pub fn open_user(&self, row: &UserRow) -> Result<User, AuthError> {
        Ok(User {
            id: row.id.clone(),
            email: self.cipher.open_str("users", "email", &row.id, &row.email_enc)?,
            name: row.name_enc.as_deref().map(|n| self.cipher.open_str("users", "name", &row.id, n)).transpose()?,
            role: Role::parse(&row.role).unwrap_or(Role::Viewer),
            disabled: row.disabled,
            totp_enrolled: row.totp_enrolled,
            locked_until: row.locked_until,
            created_at: row.created_at,
        })
    }

    pub fn email_indexes(&self, email: &str) -> Vec<String> {
        self.cipher.blind_indexes("email", email)
    }

    /// Creates a user. With `enrolled`, the TOTP secret is confirmed now (the
    /// CLI prints it; the demo writes it down); otherwise the user enrols at first login.
    pub async fn create_user(
        &self,
        actor: &Actor,
        email: &str,
        name: Option<&str>,
        role: Role,
        password: &str,
        enrolled: bool,
    ) -> Result<Created, AuthError> {
        let email = validate::email(email).map_err(|e| AuthError::Invalid("email", e.into()))?;
        let name = match name.map(validate::name).transpose() {
            Ok(n) => n.filter(|n| !n.is_empty()),
            Err(e) => return Err(AuthError::Invalid("name", e.into())),
        };
        check_policy(password, &email).map_err(|e| AuthError::Invalid("password", e))?;
        let hash = self
            .passwords
            .hash(password.to_string())
            .await
            .ok_or_else(|| AuthError::Invalid("password", "The password could not be hashed.".into()))?;
        let id = random::hex_id();
        let secret = totp::generate_secret();
        let row = UserRow {
            id: id.clone(),
            email_index: self.cipher.blind_index("email", &email),
            email_enc: self.cipher.seal_str("users", "email", &id, &email),
            name_enc: name.as_deref().map(|n| self.cipher.seal_str("users", "name", &id, n)),
            role: role.as_str().into(),
            password_hash: hash,
            totp_secret_enc: self.cipher.seal_str("users", "totp_secret", &id, &secret),
            totp_enrolled: enrolled,
            totp_last_step: 0,
            disabled: false,
            failed_logins: 0,
            lockouts: 0,
            locked_until: 0,
            created_at: now_ms(),
        };
        // The blind index is per key: look for the address under older keys too.
        let audit = self
            .auditor
            .draft(
                actor,
                "user.create",
                &format!("user:{id}"),
                Outcome::Success,
                json!({"role": role.as_str(), "totp_enrolled": enrolled}),
            )
            .await?;
        if self.store.user_by_email_index(&self.email_indexes(&email)).await?.is_some()
            || self.store.insert_user_audited(&row, audit).await? == Inserted::EmailTaken
        {
            self.auditor
                .record(actor, "user.create", "user", Outcome::Failure, json!({"reason": "email taken"}))
                .await?;
            return Err(AuthError::Invalid("email", "A user with this e-mail address already exists.".into()));
        }
        Ok(Created { id, totp_secret: secret })
    }

    pub async fn users(&self) -> Result<Vec<User>, AuthError> {
        self.store.users().await?.iter().map(|r| self.open_user(r)).collect()
    }

    /// One page of users (oldest first) and how many there are; with an
    /// e-mail, only that user (matched exactly, through the blind index).
    pub async fn users_page(
        &self,
        email: Option<&str>,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<(Vec<User>, i64), AuthError> {
        if let Some(email) = email {
            let found = match validate::email(email) {
                Ok(e) => self.store.user_by_email_index(&self.email_indexes(&e)).await?,
                Err(_) => None,
            };
            let users = found.iter().map(|r| self.open_user(r)).collect::<Result<Vec<_>, _>>()?;
            let n = users.len() as i64;
            return Ok((users, n));
        }
        let (rows, total) = self.store.users_page(after, limit).await?;
        Ok((rows.iter().map(|r| self.open_user(r)).collect::<Result<_, _>>()?, total))
    }

    pub async fn user(&self, id: &str) -> Result<Option<User>, AuthError> {
        self.store.user(id).await?.as_ref().map(|r| self.open_user(r)).transpose()
    }

    /// Ten single-use recovery codes; only their hashes are stored.
    pub fn new_recovery_codes() -> (Vec<String>, Vec<String>) {
        let codes: Vec<String> = (0..RECOVERY_CODES)
            .map(|_| {
                let raw = data_encoding::BASE32_NOPAD.encode(&random::bytes::<7>()).to_ascii_lowercase();
                format!("{}-{}", &raw[..5], &raw[5..10])
            })
            .collect();
        let hashes = codes.iter().map(|c| sha256_hex(c.as_bytes())).collect();
        (codes, hashes)
    }

    /// The user's TOTP secret (base32), opened.
    pub fn totp_secret(&self, row: &UserRow) -> Result<String, AuthError> {
        Ok(self.cipher.open_str("users", "totp_secret", &row.id, &row.totp_secret_enc)?)
    }

    /// Changes a user's password after checking the current one; ends the user's other sessions.
    pub async fn change_password(
        &self,
        actor: &Actor,
        user_id: &str,
        current: &str,
        new: &str,
        keep_session: &str,
    ) -> Result<(), AuthError> {
        let Some(row) = self.store.user(user_id).await? else {
            return Err(AuthError::Invalid("user", "Unknown user.".into()));
        };
        let email = self.cipher.open_str("users", "email", &row.id, &row.email_enc)?;
        if !self.passwords.verify(current.to_string(), Some(row.password_hash.clone())).await {
            self.auditor
                .record(
                    actor,
                    "password.change",
                    &format!("user:{user_id}"),
                    Outcome::Failure,
                    json!({"reason": "wrong current password"}),
                )
                .await?;
            return Err(AuthError::Invalid("current", "The current password is not right.".into()));
        }
        check_policy(new, &email).map_err(|e| AuthError::Invalid("new_password", e))?;
        let hash = self
            .passwords
            .hash(new.to_string())
            .await
            .ok_or_else(|| AuthError::Invalid("password", "The password could not be hashed.".into()))?;
        let audit = self
            .auditor
            .draft(actor, "password.change", &format!("user:{user_id}"), Outcome::Success, json!({}))
            .await?;
        self.store.change_password(user_id, &hash, keep_session, audit).await?;
        Ok(())
    }

    /// An admin (or the CLI) changes an account: the change, the end of the
    /// user's sessions where privileges change, and the audit entry with
    /// before and after commit together. `LastAdmin`: refused, nothing written.
    pub async fn change_account(&self, actor: &Actor, target: &User, change: AccountChange) -> Result<Kept, AuthError> {
        let (action, details, end_sessions) = match change {
            AccountChange::Role(role) => (
                "user.role",
                json!({"before": target.role.as_str(), "after": role.as_str()}),
                Some("privilege_changed"),
            ),
            AccountChange::Disabled(d) => (
                if d { "user.disable" } else { "user.enable" },
                json!({"before": {"disabled": target.disabled}, "after": {"disabled": d}}),
                d.then_some("disabled"),
            ),
            AccountChange::ResetTotp => ("user.totp_reset", json!({}), Some("privilege_changed")),
            AccountChange::Unlock => ("user.unlock", json!({"before": {"locked_until": target.locked_until}}), None),
        };
        let audit =
            self.auditor.draft(actor, action, &format!("user:{}", target.id), Outcome::Success, details).await?;
        let sealed;
        let change = match change {
            AccountChange::Role(role) => UserChange::Role(role.as_str()),
            AccountChange::Disabled(d) => UserChange::Disabled(d),
            AccountChange::ResetTotp => {
                sealed = self.cipher.seal_str("users", "totp_secret", &target.id, &totp::generate_secret());
                UserChange::ResetTotp { sealed_secret: &sealed }
            }
            AccountChange::Unlock => UserChange::Unlock,
        };
        Ok(self.store.change_account(&target.id, change, end_sessions, audit).await?)
    }
}

impl Auth {
    /// Forgets sessions past their idle or absolute limit (they are refused on use anyway).
    pub async fn purge_sessions(&self) -> Result<u64, AuthError> {
        let ms = |d: Duration| i64::try_from(d.as_millis()).unwrap_or(i64::MAX);
        Ok(self.store.purge_sessions(ms(self.idle_timeout), ms(self.absolute_timeout)).await?)
    }

    /// Addresses throttled now (at the limit within the window).
    pub async fn throttled_ips(&self) -> Result<Vec<(String, i64)>, AuthError> {
        let window = i64::try_from(IP_THROTTLE_WINDOW.as_millis()).unwrap_or(i64::MAX);
        Ok(self.store.throttled_ips(self.ip_throttle_limit, window).await?)
    }

    pub async fn api_keys(&self) -> Result<Vec<crate::store::ApiKeyRow>, AuthError> {
        Ok(self.store.api_keys().await?)
    }

    pub async fn api_keys_page(
        &self,
        after: Option<(i64, String)>,
        limit: i64,
    ) -> Result<(Vec<crate::store::ApiKeyRow>, i64), AuthError> {
        Ok(self.store.api_keys_page(after, limit).await?)
    }

    /// The stored row of a user (sealed fields closed), for enrolment.
    pub async fn user_row(&self, id: &str) -> Result<Option<UserRow>, AuthError> {
        Ok(self.store.user(id).await?)
    }

    /// An admin lifts the sign-in throttle of one address, audited with it.
    pub async fn clear_ip_throttle(&self, actor: &Actor, ip: std::net::IpAddr) -> Result<bool, AuthError> {
        let target = format!("ip:{ip}");
        let audit = self.auditor.draft(actor, "login_throttle.clear", &target, Outcome::Success, json!({})).await?;
        let done = self.store.clear_ip_throttle(&ip.to_string(), audit).await?;
        if !done {
            self.auditor.record(actor, "login_throttle.clear", &target, Outcome::Failure, json!({})).await?;
        }
        Ok(done)
    }
}

/// What an admin may change on an account.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AccountChange {
    Role(Role),
    Disabled(bool),
    /// A new second factor to enrol at the next sign-in; recovery codes and sessions end.
    ResetTotp,
    Unlock,
}
