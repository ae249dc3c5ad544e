//! E-mail to the people around Sika: approvers hear that something waits, admins hear alerts,
//! every user hears about their own account. Composing writes the outbox (once per dedupe key,
//! however many instances compose); a supervised job sends it with retries and backoff. No money
//! path ever waits for mail: they never touch this module.

pub mod transport;
pub mod workers;

use std::sync::{Arc, Mutex};

use crate::audit::{Actor, Auditor, Outcome};
use crate::config::MailConfig;
use crate::crypto::field::FieldCipher;
use crate::domain::mail::{self, Letter, SecurityEvent, Topic};
use crate::store::{AuditFilter, MailDraft, MailEnd, MailRow, Store, StoreError, UserRow};
pub use transport::Transport;

/// A chargeback due within this long is an alert.
pub const CHARGEBACK_DUE_WITHIN_MS: i64 = 12 * 3600 * 1000;
/// This many lockouts within an hour is an alert.
pub const LOCKOUTS_PER_HOUR: usize = 3;
/// A mail not delivered within a day is given up (and shown failed in the console).
pub const GIVE_UP_AFTER_MS: i64 = 24 * 3600 * 1000;
const HOUR_MS: i64 = 3600 * 1000;
/// The audit chain is walked for the alert at most this often (it reads the whole log).
const AUDIT_VERIFY_EVERY_MS: i64 = HOUR_MS;
/// A sign-in from an address the user signed in from within this long is not news.
const KNOWN_ADDRESS_MS: i64 = 30 * 24 * HOUR_MS;
const SECURITY_CURSOR: &str = "security";

#[derive(Clone)]
pub struct Mail {
    store: Store,
    cipher: FieldCipher,
    auditor: Auditor,
    /// `SIKA_PUBLIC_URL`, ending in `/`: every link in a mail starts with it.
    console: String,
    config: MailConfig,
    transport: Transport,
    workers: Arc<crate::jobs::Health>,
    settlements: crate::settlements::Settlements,
    last_verify: Arc<Mutex<i64>>,
}

impl std::fmt::Debug for Mail {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Mail").field("transport", &self.transport).finish_non_exhaustive()
    }
}

/// What `sika check` and the console say about mail.
#[derive(Debug, Clone)]
pub struct Reach {
    pub destination: String,
    pub configured: bool,
    /// Approvers who would receive a digest (enabled, enrolled, not opted out).
    pub approvers: usize,
    pub admins: usize,
}

impl Mail {
    #[allow(clippy::too_many_arguments)]
    pub fn new(
        store: Store,
        cipher: FieldCipher,
        auditor: Auditor,
        public: &url::Url,
        config: MailConfig,
        workers: Arc<crate::jobs::Health>,
        settlements: crate::settlements::Settlements,
    ) -> Self {
        let mut console = public.to_string();
        if !console.ends_with('/') {
            console.push('/');
        }
        let transport = Transport::or_broken(&config);
        Mail { store, cipher, auditor, console, config, transport, workers, settlements, last_verify: Arc::default() }
    }

    pub fn transport(&self) -> &Transport {
        &self.transport
    }

    /// One composing pass: digests, alerts, security events. Returns how many mails it wrote.
    pub async fn compose(&self, now: i64) -> Result<usize, StoreError> {
        let users = self.store.users().await?;
        let readers: Vec<&UserRow> = users.iter().filter(|u| !u.disabled).collect();
        let mut written = self.compose_digests(now, &readers).await?;
        written += self.compose_alerts(now, &readers).await?;
        written += self.compose_security(now).await?;
        Ok(written)
    }

    async fn wants(&self, user: &UserRow, topic: Topic) -> Result<bool, StoreError> {
        wants(&self.store, user, topic).await
    }

    async fn write(&self, key: &str, user_id: &str, topic: Topic, letter: &Letter) -> Result<bool, StoreError> {
        self.store
            .enqueue_mail(&MailDraft { dedupe_key: key, user_id, topic, subject: &letter.subject, body: &letter.body })
            .await
    }

    /// An approver gets a digest when something was asked for since their last one, and at most
    /// one per `SIKA_MAIL_DIGEST_INTERVAL`.
    async fn compose_digests(&self, now: i64, readers: &[&UserRow]) -> Result<usize, StoreError> {
        let every = i64::try_from(self.config.digest_every.as_millis()).unwrap_or(i64::MAX).max(1);
        let mut written = 0;
        for u in readers {
            if !self.wants(u, Topic::Approvals).await? {
                continue;
            }
            let (queue, newest) = self.store.approval_queue(&u.id).await?;
            let Some(newest) = newest.filter(|_| !queue.is_empty()) else { continue };
            if let Some(last) = self.store.last_mail_at(&u.id, Topic::Approvals).await?
                && (now - last < every || newest <= last)
            {
                continue;
            }
            let key = format!("approvals:{}:{}", u.id, now / every);
            written +=
                usize::from(self.write(&key, &u.id, Topic::Approvals, &mail::digest(&queue, &self.console)).await?);
        }
        Ok(written)
    }

    /// Each condition is written once per admin under a key naming the occurrence (the stalled
    /// worker this hour, the dead-letter count reached, the chargeback), so it is not repeated
    /// every pass and two instances write it once.
    async fn compose_alerts(&self, now: i64, readers: &[&UserRow]) -> Result<usize, StoreError> {
        let mut alerts: Vec<(Topic, String, String, &'static str)> = Vec::new();
        let hour = now / HOUR_MS;
        for job in self.workers.jobs() {
            if let Some(problem) = job.problem(now) {
                alerts.push((
                    Topic::WorkerStalled,
                    format!("worker:{}:{hour}", job.name),
                    format!("{problem}."),
                    "readyz",
                ));
            }
        }
        let health = self.store.overview_health(now - HOUR_MS).await?;
        if health.outbox_dead + health.inbox_dead > 0 {
            alerts.push((
                Topic::DeadLetters,
                format!("dead:{}:{}", health.outbox_dead, health.inbox_dead),
                format!(
                    "{} notification(s) to the shop and {} Flutterwave webhook(s) were given up on after their retries. \
                     Replay them from the console once the cause is fixed.",
                    health.outbox_dead, health.inbox_dead
                ),
                "admin/webhooks",
            ));
        }
        let backlog_ms = i64::try_from(self.config.inbox_backlog_after.as_millis()).unwrap_or(i64::MAX);
        if let Some(oldest) = health.inbox_oldest
            && health.inbox_backlog > 0
            && now - oldest > backlog_ms
        {
            alerts.push((
                Topic::InboxBacklog,
                format!("inbox:{oldest}"),
                format!(
                    "{} Flutterwave webhook(s) wait to be processed; the oldest arrived {} ago.",
                    health.inbox_backlog,
                    crate::timefmt::span(now - oldest)
                ),
                "admin/webhooks",
            ));
        }
        let new_ms = i64::try_from(self.config.transfer_new_after.as_millis()).unwrap_or(i64::MAX);
        let stuck = self.store.transfers_stuck_new(now - new_ms, 50).await?;
        if !stuck.is_empty() {
            let key = format!("transfers_new:{}", crate::crypto::sha256_hex(stuck.join(",").as_bytes()));
            alerts.push((
                Topic::TransfersStuck,
                key,
                format!(
                    "Flutterwave still calls {} transfer(s) NEW more than {} after they were sent: {}. \
                     Ask Flutterwave's support about them; Sika keeps checking.",
                    stuck.len(),
                    crate::timefmt::span(new_ms),
                    stuck.join(", ")
                ),
                "payouts?status=submitted",
            ));
        }
        for (id, due) in self.store.chargebacks_due_between(now, now + CHARGEBACK_DUE_WITHIN_MS).await? {
            alerts.push((
                Topic::ChargebackDue,
                format!("chargeback_due:{id}"),
                format!(
                    "Chargeback {id} must be answered by {} ({}); unanswered, Flutterwave decides against you.",
                    crate::timefmt::iso(due),
                    crate::timefmt::due_in(now, due)
                ),
                "disputes",
            ));
        }
        match self.settlements.discrepancies(now).await {
            Ok(found) => {
                for d in found {
                    let text = d.describe();
                    alerts.push((
                        Topic::SettlementDiscrepancy,
                        format!("settlement:{}", crate::crypto::sha256_hex(text.as_bytes())),
                        text,
                        "settlements/discrepancies",
                    ));
                }
            }
            Err(e) => tracing::warn!(error = %e, "mail: the settlement discrepancies could not be read"),
        }
        if self.verify_due(now) {
            match self.auditor.verify().await? {
                Ok(_) => {}
                Err(b) => alerts.push((
                    Topic::AuditChain,
                    format!("audit_chain:{}:{}", b.seq, now / (24 * HOUR_MS)),
                    format!(
                        "The audit chain breaks at entry {}: {}. Run `sika audit verify` and investigate.",
                        b.seq, b.reason
                    ),
                    "audit",
                )),
            }
        }
        let f = AuditFilter {
            action: Some("account.lockout".into()),
            from_ms: Some(now - HOUR_MS),
            ..AuditFilter::default()
        };
        let lockouts = self.auditor.search(&f, 100).await?.len();
        if lockouts >= LOCKOUTS_PER_HOUR {
            alerts.push((
                Topic::Lockouts,
                format!("lockouts:{hour}"),
                format!("{lockouts} sign-in lockouts in the last hour: someone may be guessing passwords."),
                "audit?action=account.lockout",
            ));
        }
        let mut written = 0;
        for (topic, key, what, path) in alerts {
            let letter = mail::alert(topic, &what, path, &self.console);
            for u in readers {
                if self.wants(u, topic).await? {
                    written += usize::from(self.write(&format!("{key}:{}", u.id), &u.id, topic, &letter).await?);
                }
            }
        }
        Ok(written)
    }

    fn verify_due(&self, now: i64) -> bool {
        let mut last = self.last_verify.lock().unwrap_or_else(|e| e.into_inner());
        if now - *last < AUDIT_VERIFY_EVERY_MS {
            return false;
        }
        *last = now;
        true
    }

    /// Reads the audit log past the cursor and tells each user of their own security events.
    async fn compose_security(&self, _now: i64) -> Result<usize, StoreError> {
        let after = match self.store.mail_cursor(SECURITY_CURSOR).await? {
            Some(seq) => seq,
            None => {
                // The first pass starts at the present: history is not mailed.
                let head = self.auditor.head().await?.map_or(0, |(seq, _)| seq);
                self.store.advance_mail_cursor(SECURITY_CURSOR, head).await?;
                return Ok(0);
            }
        };
        let page = self.store.audit_page(after, 200).await?;
        let mut written = 0;
        for e in &page {
            if let Some((user, event)) = self.security_event(e).await? {
                let letter = mail::security(&event, &self.console);
                written +=
                    usize::from(self.write(&format!("security:{}", e.seq), &user, Topic::Security, &letter).await?);
            }
        }
        if let Some(last) = page.last() {
            self.store.advance_mail_cursor(SECURITY_CURSOR, last.seq).await?;
        }
        Ok(written)
    }

    /// The user an audit entry is a security event for, and what happened.
    async fn security_event(
        &self,
        e: &crate::store::AuditEntry,
    ) -> Result<Option<(String, SecurityEvent)>, StoreError> {
        if e.outcome != Outcome::Success.as_str() {
            return Ok(None);
        }
        let Some(user) = e.target.strip_prefix("user:").filter(|u| *u != "unknown") else { return Ok(None) };
        let at = format!("{} UTC", crate::timefmt::iso(e.at));
        let event = match e.action.as_str() {
            "login" => {
                let earlier = AuditFilter {
                    actor: Some(e.actor.clone()),
                    action: Some("login".into()),
                    outcome: Some(Outcome::Success.as_str().into()),
                    before_seq: Some(e.seq),
                    from_ms: Some(e.at - KNOWN_ADDRESS_MS),
                    to_ms: None,
                };
                if self.auditor.search(&earlier, 200).await?.iter().any(|p| p.ip == e.ip) {
                    return Ok(None);
                }
                SecurityEvent::SignIn { ip: e.ip.clone(), at }
            }
            "password.change" => SecurityEvent::PasswordChanged { at },
            "totp.enrol" | "user.totp_reset" => SecurityEvent::SecondFactorChanged { at },
            "recovery_code.use" => SecurityEvent::RecoveryCodeUsed { at },
            "user.role" => {
                let d: serde_json::Value = serde_json::from_str(&e.details).unwrap_or_default();
                let role = |k: &str| d[k].as_str().unwrap_or("unknown").to_string();
                SecurityEvent::RoleChanged { before: role("before"), after: role("after"), at }
            }
            _ => return Ok(None),
        };
        Ok(Some((user.to_string(), event)))
    }

    /// One sending pass: up to `limit` due mails. `Ok(true)` when it sent or failed some (more may wait).
    pub async fn send_due(&self, now: i64, limit: i64) -> Result<bool, StoreError> {
        if self.transport.is_off() {
            return Ok(false);
        }
        let Some(from) = self.config.from.clone() else { return Ok(false) };
        let due = self.store.claim_due_mail(now, 2 * transport::SEND_TIMEOUT.as_millis() as i64, limit).await?;
        let mut server_down: Option<String> = None;
        for m in &due {
            if let Some(why) = &server_down {
                // One unreachable server is enough to know: the rest wait for the next try untouched.
                self.fail(m, why, now).await?;
                continue;
            }
            let Some(to) = self.reader_address(m).await? else { continue };
            match self.transport.send(&from, &to, &m.id, &m.subject, &m.body).await {
                Ok(()) => {
                    self.store.end_mail(&m.id, MailEnd::Sent).await?;
                    crate::metrics::global().mail_sent.inc();
                }
                Err(why) => {
                    tracing::warn!(mail = %m.id, attempts = m.attempts, error = %why, "a mail could not be sent; it will be tried again");
                    crate::metrics::global().mail_failures.inc();
                    self.fail(m, &why, now).await?;
                    server_down = Some(why);
                }
            }
        }
        Ok(!due.is_empty() && server_down.is_none())
    }

    async fn fail(&self, m: &MailRow, why: &str, now: i64) -> Result<(), StoreError> {
        let retry_at = (now - m.created_at < GIVE_UP_AFTER_MS).then(|| now + backoff_ms(m.attempts));
        self.store.end_mail(&m.id, MailEnd::Failed { error: why, retry_at }).await
    }

    /// The reader's address now, or `None` (the mail marked skipped) when they are gone,
    /// disabled, or turned the topic off since it was written.
    async fn reader_address(&self, m: &MailRow) -> Result<Option<String>, StoreError> {
        let skip = |why: &'static str| async move { self.store.end_mail(&m.id, MailEnd::Skipped(why)).await };
        let Some(u) = self.store.user(&m.user_id).await? else {
            skip("the reader's account no longer exists").await?;
            return Ok(None);
        };
        if u.disabled {
            skip("the reader's account is disabled").await?;
            return Ok(None);
        }
        if let Some(t) = Topic::parse(&m.topic)
            && t.optional()
            && self.store.mail_optouts(&u.id).await?.contains(&t)
        {
            skip("the reader turned this kind of mail off").await?;
            return Ok(None);
        }
        match self.cipher.open_str("users", "email", &u.id, &u.email_enc) {
            Ok(a) => Ok(Some(a)),
            Err(_) => {
                skip("the reader's address cannot be read").await?;
                Ok(None)
            }
        }
    }

    pub async fn outbox(&self, before: Option<i64>, limit: i64) -> Result<Vec<MailRow>, StoreError> {
        self.store.mail_page(before, limit).await
    }

    pub async fn one(&self, id: &str) -> Result<Option<MailRow>, StoreError> {
        self.store.mail(id).await
    }

    /// The topics `user` receives, each with whether it is on.
    pub async fn choices(&self, user_id: &str, role: &str) -> Result<Vec<(Topic, bool)>, StoreError> {
        let off = self.store.mail_optouts(user_id).await?;
        Ok(Topic::ALL.into_iter().filter(|t| t.reaches(role)).map(|t| (t, !off.contains(&t))).collect())
    }

    /// Saves which topics `user` turned off (audited; security events stay on).
    pub async fn set_choices(&self, actor: &Actor, user_id: &str, off: &[Topic]) -> Result<(), StoreError> {
        let names: Vec<&str> = off.iter().filter(|t| t.optional()).map(|t| t.as_str()).collect();
        let audit = self
            .auditor
            .draft(
                actor,
                "mail.preferences",
                &format!("user:{user_id}"),
                Outcome::Success,
                serde_json::json!({"off": names}),
            )
            .await?;
        self.store.set_mail_optouts(user_id, off, audit).await
    }

    /// Whether mail is configured and who it would reach.
    pub async fn reach(&self) -> Result<Reach, StoreError> {
        reach(&self.store, &self.transport).await
    }

    /// Mails by state, for metrics.
    pub async fn counts(&self) -> Result<Vec<(String, i64)>, StoreError> {
        self.store.mail_counts().await
    }
}

async fn wants(store: &Store, user: &UserRow, topic: Topic) -> Result<bool, StoreError> {
    Ok(topic.reaches(&user.role) && !store.mail_optouts(&user.id).await?.contains(&topic))
}

/// Whether mail is configured and whom it would reach (also `sika check`'s finding).
pub async fn reach(store: &Store, transport: &Transport) -> Result<Reach, StoreError> {
    let users = store.users().await?;
    let mut approvers = 0;
    let mut admins = 0;
    for u in users.iter().filter(|u| !u.disabled && u.totp_enrolled) {
        if wants(store, u, Topic::Approvals).await? {
            approvers += 1;
        }
        for t in Topic::ALERTS {
            if wants(store, u, t).await? {
                admins += 1;
                break;
            }
        }
    }
    Ok(Reach {
        destination: transport.destination(),
        configured: !transport.is_off() && !matches!(transport, Transport::Broken(_)),
        approvers,
        admins,
    })
}

/// 5 s, 10 s, 20 s … at most 10 minutes between tries.
pub fn backoff_ms(attempts: i64) -> i64 {
    let n = u32::try_from(attempts.clamp(1, 20) - 1).unwrap_or(0);
    (5_000i64.saturating_mul(1i64 << n.min(10))).min(600_000)
}

#[cfg(test)]
mod tests {
    #[test]
    fn backoff_doubles_and_stops_at_ten_minutes() {
        assert_eq!(super::backoff_ms(1), 5_000);
        assert_eq!(super::backoff_ms(2), 10_000);
        assert_eq!(super::backoff_ms(7), 320_000);
        assert_eq!(super::backoff_ms(8), 600_000);
        assert_eq!(super::backoff_ms(100), 600_000);
    }
}
