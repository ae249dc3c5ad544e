//! Signing in: one generic answer for every failure, the same work for
//! unknown users, per-account lockout, per-IP throttle, mandatory TOTP with a
//! replay guard (or a single-use recovery code), everything audited.

use serde_json::json;

use super::session::Current;
use super::{Auth, AuthError, IP_THROTTLE_WINDOW, LOCKOUT_BASE, LOCKOUT_MAX, LOCKOUT_THRESHOLD, STEP_UP_LIMIT};
use crate::audit::{Actor, Outcome};
use crate::crypto::{sha256_hex, totp};
use crate::domain::validate;
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

/// Proof that this user has just typed a fresh step-up code: the only
/// [`SteppedUp`](crate::domain::approval::SteppedUp) there is. Made only here,
/// by [`Auth::step_up`]; not `Clone`, so it is used where it was earned.
#[derive(Debug)]
pub struct FreshCode {
    user_id: String,
}

impl crate::domain::approval::SteppedUp for FreshCode {
    fn user_id(&self) -> &str {
        &self.user_id
    }
}

/// What a step-up code check decided.
#[derive(Debug)]
pub enum StepUp {
    Passed(FreshCode),
    /// Wrong, used or missing; this many tries are left in this session.
    Refused {
        left: i64,
    },
    /// Too many wrong codes: the session was ended.
    SessionEnded,
}

impl Auth {
    /// Signs in. Limits are reserved atomically *before* any argon2 work: the
    /// address's window (`ip_throttle_limit`) and the account's failure count
    /// (`LOCKOUT_THRESHOLD`). Concurrent attempts cannot all slip through
    /// between a check and a count; at most the limit of them reach argon2.
    pub async fn login(&self, a: Attempt<'_>) -> Result<LoginOutcome, AuthError> {
        let outcome = self.login_once(a).await;
        if matches!(outcome, Ok(LoginOutcome::Failed)) {
            crate::metrics::global().signin_failures.inc();
        }
        outcome
    }

    async fn login_once(&self, a: Attempt<'_>) -> Result<LoginOutcome, AuthError> {
        let anon = Actor::anonymous(a.ip, a.user_agent);
        if !self.store.reserve_ip_attempt(a.ip, self.ip_throttle_limit, millis(IP_THROTTLE_WINDOW)).await? {
            self.auditor.record(&anon, "login", "ip", Outcome::Denied, json!({"reason": "ip throttled"})).await?;
            return Ok(LoginOutcome::Failed);
        }
        let email = validate::email(a.email).ok();
        let password_ok_shape = !a.password.is_empty() && a.password.chars().count() <= 128;
        let row = match &email {
            Some(e) => self.store.user_by_email_index(&self.email_indexes(e)).await?,
            None => None,
        };
        if let Some(row) = &row
            && !self.store.reserve_login_attempt(&row.id, LOCKOUT_THRESHOLD, now_ms()).await?
        {
            let actor = Actor::of_row(row, a.ip, a.user_agent);
            let target = format!("user:{}", row.id);
            self.auditor.record(&actor, "login", &target, Outcome::Denied, json!({"reason": "locked"})).await?;
            return Ok(LoginOutcome::Failed);
        }
        // One argon2 verification, against a dummy hash for unknown users.
        let password = if password_ok_shape { a.password.to_string() } else { String::new() };
        let password_ok =
            self.passwords.verify(password, row.as_ref().map(|r| r.password_hash.clone())).await && password_ok_shape;

        let Some(row) = row else {
            self.auditor
                .record(&anon, "login", "user:unknown", Outcome::Failure, json!({"reason": "unknown user"}))
                .await?;
            return Ok(LoginOutcome::Failed);
        };
        let actor = Actor::of_row(&row, a.ip, a.user_agent);
        let target = format!("user:{}", row.id);
        if row.disabled {
            // Counted like any failure, so the reserved attempt is settled (and a
            // re-enabled account does not start out at its limit).
            return self.fail(&actor, &target, "disabled").await;
        }
        if !password_ok {
            return self.fail(&actor, &target, "wrong password").await;
        }
        if !row.totp_enrolled {
            self.succeeded(&row.id, a.ip).await?;
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
            return self.fail(&actor, &target, "wrong code").await;
        }
        self.succeeded(&row.id, a.ip).await?;
        let token = self.start_session(&row.id, "full", a.ip, a.user_agent).await?;
        self.auditor.record(&actor, "login", &target, Outcome::Success, json!({"stage": "full"})).await?;
        Ok(LoginOutcome::SignedIn(token))
    }

    /// The reserved attempts did not fail: they count against neither the
    /// account nor the address, and the lockout doubling starts over.
    async fn succeeded(&self, user_id: &str, ip: &str) -> Result<(), AuthError> {
        self.store.login_succeeded(user_id).await?;
        self.store.release_ip_attempt(ip).await?;
        Ok(())
    }

    async fn fail(&self, actor: &Actor, target: &str, reason: &str) -> Result<LoginOutcome, AuthError> {
        self.auditor.record(actor, "login", target, Outcome::Failure, json!({"reason": reason})).await?;
        let locked = self
            .store
            .fail_login_attempt(&actor.id, LOCKOUT_THRESHOLD, millis(LOCKOUT_BASE), millis(LOCKOUT_MAX))
            .await?;
        if let Some(until) = locked {
            crate::metrics::global().lockouts.inc();
            self.auditor
                .record(actor, "account.lockout", target, Outcome::Success, json!({"locked_until": until}))
                .await?;
        }
        Ok(LoginOutcome::Failed)
    }

    /// Step-up for sensitive actions (refunds, approvals): a fresh TOTP code,
    /// never one already used (recovery codes do not count here). After
    /// [`STEP_UP_LIMIT`] wrong codes in one session, the session ends.
    pub async fn step_up(
        &self,
        current: &Current,
        ip: &str,
        user_agent: &str,
        code: &str,
    ) -> Result<StepUp, AuthError> {
        let actor = current.actor(ip, user_agent);
        let Some(row) = self.store.user(&current.user.id).await? else { return Ok(StepUp::SessionEnded) };
        let target = format!("user:{}", row.id);
        let secret = totp::decode_secret(&self.totp_secret(&row)?).unwrap_or_default();
        let ok = match validate::otp(code).filter(|c| c.len() == 6) {
            Some(c) => match totp::verify(&secret, &c, now_ms() / 1000, row.totp_last_step) {
                Some(step) => self.store.claim_totp_step(&row.id, step).await?,
                None => false,
            },
            None => false,
        };
        if ok {
            self.store.reset_step_up_failures(&current.token_hash).await?;
            self.auditor.record(&actor, "totp.step_up", &target, Outcome::Success, json!({})).await?;
            return Ok(StepUp::Passed(FreshCode { user_id: row.id }));
        }
        let failures = self.store.count_step_up_failure(&current.token_hash).await?;
        self.auditor.record(&actor, "totp.step_up", &target, Outcome::Failure, json!({"failures": failures})).await?;
        if failures >= STEP_UP_LIMIT {
            self.store.end_session(&current.token_hash, "step_up_failures").await?;
            self.auditor
                .record(&actor, "session.end", &target, Outcome::Success, json!({"reason": "step_up_failures"}))
                .await?;
            return Ok(StepUp::SessionEnded);
        }
        Ok(StepUp::Refused { left: STEP_UP_LIMIT - failures })
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
        let details = json!({"recovery_codes": codes.len()});
        let audit = self.auditor.draft(&actor, "totp.enrol", &target, Outcome::Success, details).await?;
        self.store.confirm_totp(&row.id, step, &hashes, audit).await?;
        let token = self.start_session(&row.id, "full", ip, user_agent).await?;
        Ok(Some((codes, token)))
    }
}
