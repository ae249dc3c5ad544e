//! Sessions: 256-bit tokens from the OS CSPRNG, stored only as SHA-256,
//! carried only in the `__Host-sika` cookie; idle and absolute timeouts
//! enforced here, on the server.

use serde_json::json;

use super::{Auth, AuthError, Role, User};
use crate::audit::{Actor, Outcome};
use crate::crypto::{random, sha256_hex};
use crate::store::{SessionRow, now_ms};

pub const COOKIE: &str = "__Host-sika";
/// The pre-login CSRF cookie (double submit) for the login form.
pub const LOGIN_COOKIE: &str = "__Host-sika-login";

/// How often `last_seen_at` is written at most (less write traffic), and never
/// less often than a quarter of the idle timeout, so activity always counts.
const TOUCH_EVERY_MS: i64 = 15_000;

/// A session cookie: no `Max-Age`/`Expires`, so the browser drops it when it closes.
pub fn cookie(name: &str, value: &str) -> String {
    format!("{name}={value}; Path=/; Secure; HttpOnly; SameSite=Strict")
}

/// Expires the cookie now.
pub fn clear_cookie(name: &str) -> String {
    format!("{name}=; Path=/; Secure; HttpOnly; SameSite=Strict; Max-Age=0")
}

/// Why there is no session: shown to the person on the login page.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum NoSession {
    /// No cookie, or a token we never issued.
    Anonymous,
    /// A session that existed and ended; the reason is safe to show.
    Ended(String),
}

impl NoSession {
    pub fn message(&self) -> Option<&'static str> {
        match self {
            NoSession::Anonymous => None,
            NoSession::Ended(r) => Some(match r.as_str() {
                "signed_in_elsewhere" => "You were signed out because your account signed in somewhere else.",
                "idle" => "You were signed out after a period of inactivity.",
                "expired" => "Your session reached its maximum length; sign in again.",
                "password_changed" => "You were signed out because the password was changed.",
                "privilege_changed" => "You were signed out because your access was changed.",
                "disabled" => "Your account is disabled.",
                "step_up_failures" => "You were signed out after too many wrong authenticator codes.",
                "logout" => "You have signed out.",
                _ => "Your session ended; sign in again.",
            }),
        }
    }
}

/// A signed-in (or enrolling) operator.
#[derive(Debug, Clone)]
pub struct Current {
    pub user: User,
    pub token_hash: String,
    pub csrf_token: String,
    /// `enrol` until TOTP is confirmed, then `full`.
    pub stage: String,
    /// Payouts waiting for approval, for approvers' navigation (filled by the web layer).
    pub approvals_waiting: Option<i64>,
    /// Virtual cards are on (filled by the web layer): the navigation shows them.
    pub cards_enabled: bool,
    /// Card loads, fundings and withdrawals waiting for approval (approvers, cards on).
    pub card_approvals_waiting: Option<i64>,
    /// Chargeback answers waiting for an approver (set for those who may send them).
    pub answers_waiting: Option<i64>,
    /// The page asked for, to mark it in the navigation (filled by the web layer).
    pub here: String,
    /// A confirmation of the last change, shown once (filled by the web layer).
    pub flash: Option<&'static str>,
}

impl Current {
    pub fn is_full(&self) -> bool {
        self.stage == "full"
    }

    pub fn role(&self) -> Role {
        self.user.role
    }

    pub fn actor(&self, ip: &str, user_agent: &str) -> Actor {
        Actor {
            id: self.user.id.clone(),
            role: self.user.role.as_str().into(),
            ip: ip.into(),
            user_agent: user_agent.into(),
        }
    }
}

/// A fresh token and its stored hash.
pub fn new_token() -> (String, String) {
    let token = random::token();
    let hash = sha256_hex(token.as_bytes());
    (token, hash)
}

impl Auth {
    /// Starts a session (ending the user's others); returns the raw token for the cookie.
    pub async fn start_session(
        &self,
        user_id: &str,
        stage: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<String, AuthError> {
        let (token, hash) = new_token();
        let now = now_ms();
        let row = SessionRow {
            token_hash: hash,
            user_id: user_id.into(),
            stage: stage.into(),
            csrf_token: random::token(),
            created_at: now,
            last_seen_at: now,
        };
        self.store
            .start_session(&row, ip, &user_agent.chars().take(256).collect::<String>(), "signed_in_elsewhere")
            .await?;
        Ok(token)
    }

    /// Resolves a cookie's token, enforcing the timeouts.
    pub async fn current(
        &self,
        token: &str,
        ip: &str,
        user_agent: &str,
    ) -> Result<Result<Current, NoSession>, AuthError> {
        if token.len() != 43 || !token.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
            return Ok(Err(NoSession::Anonymous));
        }
        let hash = sha256_hex(token.as_bytes());
        let Some(s) = self.store.session(&hash).await? else {
            return Ok(Err(match self.store.ended_reason(&hash).await? {
                Some(r) => NoSession::Ended(r),
                None => NoSession::Anonymous,
            }));
        };
        let now = now_ms();
        let idle = i64::try_from(self.idle_timeout.as_millis()).unwrap_or(i64::MAX);
        let absolute = i64::try_from(self.absolute_timeout.as_millis()).unwrap_or(i64::MAX);
        let ended = if now - s.created_at >= absolute {
            Some("expired")
        } else if now - s.last_seen_at >= idle {
            Some("idle")
        } else {
            None
        };
        let row = self.store.user(&s.user_id).await?;
        let ended = ended.or(match &row {
            Some(u) if !u.disabled => None,
            _ => Some("disabled"),
        });
        if let Some(reason) = ended {
            self.store.end_session(&hash, reason).await?;
            let actor =
                Actor { id: s.user_id.clone(), role: "none".into(), ip: ip.into(), user_agent: user_agent.into() };
            self.auditor
                .record(
                    &actor,
                    "session.end",
                    &format!("user:{}", s.user_id),
                    Outcome::Success,
                    json!({"reason": reason}),
                )
                .await?;
            return Ok(Err(NoSession::Ended(reason.into())));
        }
        let Some(row) = row else { return Ok(Err(NoSession::Anonymous)) };
        if now - s.last_seen_at >= TOUCH_EVERY_MS.min(idle / 4) {
            self.store.touch_session(&hash, now).await?;
        }
        Ok(Ok(Current {
            user: self.open_user(&row)?,
            token_hash: hash,
            csrf_token: s.csrf_token,
            stage: s.stage,
            approvals_waiting: None,
            cards_enabled: false,
            card_approvals_waiting: None,
            answers_waiting: None,
            here: String::new(),
            flash: None,
        }))
    }

    /// Logout: the server session is deleted; the token is useless afterwards.
    pub async fn logout(&self, current: &Current, ip: &str, user_agent: &str) -> Result<(), AuthError> {
        self.store.end_session(&current.token_hash, "logout").await?;
        self.auditor
            .record(
                &current.actor(ip, user_agent),
                "logout",
                &format!("user:{}", current.user.id),
                Outcome::Success,
                json!({}),
            )
            .await?;
        Ok(())
    }
}
