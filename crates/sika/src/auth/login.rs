//! Signing in: one generic answer for every failure, the same work for
//! unknown users, per-account lockout, per-IP throttle, mandatory TOTP with a
//! replay guard (or a single-use recovery code), everything audited.

use serde_json::json;

use super::{Auth, AuthError, IP_THROTTLE_WINDOW, LOCKOUT_BASE, LOCKOUT_THRESHOLD, validate};
use crate::audit::{Actor, Outcome};
use crate::crypto::{sha256_hex, totp};
use crate::store::now_ms;

/// The one message for every failed sign-in.
pub const GENERIC_FAILURE: &str = "Sign-in failed. Check your e-mail, password and code, then try again.";

#[derive(Debug)]
pub enum LoginOutcome {
    /// Signed in: the session token for the cookie.
    SignedIn(String),
    /// Password right, TOTP not yet set up: a restricted session that can only enrol.
    MustEnrol(String),
    /// Anything else. Deliberately no reason.
    Failed,
}

pub struct Attempt<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub code: &'a str,
    pub ip: &'a str,
    pub user_agent: &'a str,
}

fn millis(d: std::time::Duration) -> i64 {
    i64::try_from(d.as_millis()).unwrap_or(i64::MAX)
}

impl Auth {
    pub async fn login(&self, a: Attempt<'_>) -> Result<LoginOutcome, AuthError> {
        let anon = Actor::anonymous(a.ip, a.user_agent);
        // Throttle by address before any work.
        if self.store.ip_failures(a.ip, millis(IP_THROTTLE_WINDOW)).await? >= self.ip_throttle_limit {
            self.auditor.record(&anon, "login", "ip", Outcome::Denied, json!({"reason": "ip throttled"})).await?;
            return Ok(LoginOutcome::Failed);
        }
        let email = validate::email(a.email).ok();
        let password_ok_shape = !a.password.is_empty() && a.password.chars().count() <= 128;
        let row = match &email {
            Some(e) => self.store.user_by_email_index(&self.email_indexes(e)).await?,
            None => None,
        };
        // Always one argon2 verification, against a dummy hash for unknown users.
        let password = if password_ok_shape { a.password.to_string() } else { String::new() };
        let password_ok =
            self.passwords.verify(password, row.as_ref().map(|r| r.password_hash.clone())).await && password_ok_shape;

        let Some(row) = row else {
            self.store.count_ip_failure(a.ip, millis(IP_THROTTLE_WINDOW)).await?;
            self.auditor
                .record(&anon, "login", "user:unknown", Outcome::Failure, json!({"reason": "unknown user"}))
                .await?;
            return Ok(LoginOutcome::Failed);
        };
        let actor =
            Actor { id: row.id.clone(), role: row.role.clone(), ip: a.ip.into(), user_agent: a.user_agent.into() };
        let target = format!("user:{}", row.id);
        if row.disabled {
            self.auditor.record(&actor, "login", &target, Outcome::Denied, json!({"reason": "disabled"})).await?;
            return Ok(LoginOutcome::Failed);
        }
        if row.locked_until > now_ms() {
            self.store.count_ip_failure(a.ip, millis(IP_THROTTLE_WINDOW)).await?;
            self.auditor.record(&actor, "login", &target, Outcome::Denied, json!({"reason": "locked"})).await?;
            return Ok(LoginOutcome::Failed);
        }
        if !password_ok {
            return self.fail(&actor, &target, a.ip, "wrong password").await;
        }
        if !row.totp_enrolled {
            let token = self.start_session(&row.id, "enrol", a.ip, a.user_agent).await?;
            self.auditor.record(&actor, "login", &target, Outcome::Success, json!({"stage": "enrol"})).await?;
            return Ok(LoginOutcome::MustEnrol(token));
        }
        let second_factor = match validate::otp(a.code) {
            Some(code) if code.len() == 6 => {
                let secret = totp::decode_secret(&self.totp_secret(&row)?).unwrap_or_default();
                match totp::verify(&secret, &code, now_ms() / 1000, row.totp_last_step) {
                    // The step is claimed atomically: the same code twice, even at once, passes once.
                    Some(step) => self.store.claim_totp_step(&row.id, step).await?,
                    None => false,
                }
            }
            Some(recovery) => {
                let used = self.store.use_recovery_code(&row.id, &sha256_hex(recovery.as_bytes())).await?;
                if used {
                    self.auditor.record(&actor, "recovery_code.use", &target, Outcome::Success, json!({})).await?;
                }
                used
            }
            None => false,
        };
        if !second_factor {
            return self.fail(&actor, &target, a.ip, "wrong code").await;
        }
        self.store.clear_login_failures(&row.id).await?;
        let token = self.start_session(&row.id, "full", a.ip, a.user_agent).await?;
        self.auditor.record(&actor, "login", &target, Outcome::Success, json!({"stage": "full"})).await?;
        Ok(LoginOutcome::SignedIn(token))
    }

    async fn fail(&self, actor: &Actor, target: &str, ip: &str, reason: &str) -> Result<LoginOutcome, AuthError> {
        self.store.count_ip_failure(ip, millis(IP_THROTTLE_WINDOW)).await?;
        self.auditor.record(actor, "login", target, Outcome::Failure, json!({"reason": reason})).await?;
        if let Some(until) = self.store.record_login_failure(&actor.id, LOCKOUT_THRESHOLD, millis(LOCKOUT_BASE)).await?
        {
            self.auditor
                .record(actor, "account.lockout", target, Outcome::Success, json!({"locked_until": until}))
                .await?;
        }
        Ok(LoginOutcome::Failed)
    }

    /// Step-up for sensitive actions (refunds, approvals): a fresh TOTP code,
    /// never one already used (recovery codes do not count here).
    pub async fn step_up(&self, actor: &Actor, code: &str) -> Result<bool, AuthError> {
        let Some(row) = self.store.user(&actor.id).await? else { return Ok(false) };
        let secret = totp::decode_secret(&self.totp_secret(&row)?).unwrap_or_default();
        let ok = match validate::otp(code).filter(|c| c.len() == 6) {
            Some(c) => match totp::verify(&secret, &c, now_ms() / 1000, row.totp_last_step) {
                Some(step) => self.store.claim_totp_step(&row.id, step).await?,
                None => false,
            },
            None => false,
        };
        let outcome = if ok { Outcome::Success } else { Outcome::Failure };
        self.auditor.record(actor, "totp.step_up", &format!("user:{}", row.id), outcome, json!({})).await?;
        Ok(ok)
    }

    /// Confirms enrolment with a first code; returns the recovery codes (shown
    /// once) and the new full session's token (a new token at the privilege change).
    pub async fn confirm_enrolment(
        &self,
        user_id: &str,
        code: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<Option<(Vec<String>, String)>, AuthError> {
        let Some(row) = self.store.user(user_id).await? else { return Ok(None) };
        let actor = Actor { id: row.id.clone(), role: row.role.clone(), ip: ip.into(), user_agent: user_agent.into() };
        let target = format!("user:{}", row.id);
        let secret = totp::decode_secret(&self.totp_secret(&row)?).unwrap_or_default();
        let step = validate::otp(code)
            .filter(|c| c.len() == 6)
            .and_then(|c| totp::verify(&secret, &c, now_ms() / 1000, row.totp_last_step));
        let Some(step) = step else {
            self.auditor.record(&actor, "totp.enrol", &target, Outcome::Failure, json!({})).await?;
            return Ok(None);
        };
        let (codes, hashes) = Self::new_recovery_codes();
        self.store.confirm_totp(&row.id, step, &hashes).await?;
        let token = self.start_session(&row.id, "full", ip, user_agent).await?;
        self.auditor
            .record(&actor, "totp.enrol", &target, Outcome::Success, json!({"recovery_codes": codes.len()}))
            .await?;
        Ok(Some((codes, token)))
    }
}
