//! The tamper-evident audit log: every entry is chained to the one before it
//! with HMAC-SHA256(`SIKA_AUDIT_KEY`, previous hash ‖ entry). Editing,
//! deleting, inserting or reordering an entry breaks the chain, and without
//! the key nobody can re-seal it. Details never hold secrets.

pub mod checkpoint;

use std::io::Write;

use serde_json::Value;

use crate::crypto::hmac_hex;
use crate::secret::Secret;
use crate::store::{AuditDraft, AuditEntry, Store, StoreError, now_ms};

/// The hash before the first entry.
pub const GENESIS: &str = "0000000000000000000000000000000000000000000000000000000000000000";
/// Where retention records the last purged entry, so the chain stays checkable.
const ANCHOR_SETTING: &str = "audit.anchor";
pub const DEFAULT_RETENTION_DAYS: i64 = 400;

/// Who did something, from where.
#[derive(Debug, Clone)]
pub struct Actor {
    pub id: String,
    pub role: String,
    pub ip: String,
    pub user_agent: String,
}

impl Actor {
    /// The command line (`sika user add`, `sika apikey create`...).
    pub fn cli() -> Self {
        Actor { id: "cli".into(), role: "system".into(), ip: "local".into(), user_agent: "sika-cli".into() }
    }

    /// A user found by a sign-in attempt.
    pub fn of_row(row: &crate::store::UserRow, ip: &str, user_agent: &str) -> Self {
        Actor { id: row.id.clone(), role: row.role.clone(), ip: ip.into(), user_agent: user_agent.into() }
    }

    /// The shop's backend, by its API key.
    pub fn api_key(id: &str, name: &str) -> Self {
        Actor { id: format!("key:{id}"), role: "api_key".into(), ip: "api".into(), user_agent: name.into() }
    }

    /// Someone not (yet) signed in.
    pub fn anonymous(ip: &str, user_agent: &str) -> Self {
        Actor { id: "anonymous".into(), role: "none".into(), ip: ip.into(), user_agent: user_agent.into() }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Outcome {
    Success,
    Failure,
    Denied,
}

impl Outcome {
    pub fn as_str(self) -> &'static str {
        match self {
            Outcome::Success => "success",
            Outcome::Failure => "failure",
            Outcome::Denied => "denied",
        }
    }
}

#[derive(Debug, Clone)]
pub struct Auditor {
    store: Store,
    key: Secret,
}

/// Where the chain first breaks.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ChainBreak {
    pub seq: i64,
    pub reason: &'static str,
}

fn seal(key: &Secret, e: &AuditEntry) -> String {
    let body =
        serde_json::json!([e.seq, e.at, e.actor, e.role, e.ip, e.user_agent, e.action, e.target, e.outcome, e.details])
            .to_string();
    hmac_hex(key.expose().as_bytes(), &[e.prev_hash.as_bytes(), b"\n", body.as_bytes()])
}

impl Auditor {
    /// Entries matching `f`, newest first.
    pub async fn search(
        &self,
        f: &crate::store::AuditFilter,
        limit: i64,
    ) -> Result<Vec<crate::store::AuditEntry>, StoreError> {
        self.store.audit_search(f, limit).await
    }

    pub fn new(store: Store, key: Secret) -> Self {
        Auditor { store, key }
    }

    /// The last entry's sequence number and hash (`None` for an empty log).
    pub async fn head(&self) -> Result<Option<(i64, String)>, StoreError> {
        self.store.audit_last().await
    }

    /// The stored hash of entry `seq`, if it exists.
    pub async fn entry_hash(&self, seq: i64) -> Result<Option<String>, StoreError> {
        Ok(self.store.audit_page(seq - 1, 1).await?.into_iter().find(|e| e.seq == seq).map(|e| e.hash))
    }

    /// Where the chain starts: the genesis, or the last entry retention purged.
    pub async fn anchor(&self) -> Result<(i64, String), StoreError> {
        Ok(match self.store.setting(ANCHOR_SETTING).await? {
            Some(v) => match v.split_once(':') {
                Some((seq, hash)) => (seq.parse().unwrap_or(0), hash.to_string()),
                None => (0, GENESIS.to_string()),
            },
            None => (0, GENESIS.to_string()),
        })
    }

    /// Appends one entry on its own. `details` must not contain secrets. A
    /// change to the database records itself with [`Auditor::draft`] instead,
    /// in the change's own transaction.
    pub async fn record(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        outcome: Outcome,
        details: Value,
    ) -> Result<i64, StoreError> {
        let draft = self.draft(actor, action, target, outcome, details).await?;
        self.store.append_audit(draft).await
    }

    /// An entry to write in the transaction of the change it records
    /// (`AuditDraft::append_in`): both commit, or neither.
    pub async fn draft(
        &self,
        actor: &Actor,
        action: &str,
        target: &str,
        outcome: Outcome,
        details: Value,
    ) -> Result<AuditDraft, StoreError> {
        let entry = AuditEntry {
            seq: 0,
            at: now_ms(),
            actor: actor.id.clone(),
            role: actor.role.clone(),
            ip: actor.ip.clone(),
            user_agent: actor.user_agent.chars().take(256).collect(),
            action: action.into(),
            target: target.into(),
            outcome: outcome.as_str().into(),
            details: details.to_string(),
            prev_hash: String::new(),
            hash: String::new(),
        };
        let genesis = self.anchor().await?;
        let key = self.key.clone();
        Ok(AuditDraft::new(entry, genesis, move |e| seal(&key, e)))
    }

    /// Walks the whole chain: `Ok(count)` or the first entry that does not fit.
    pub async fn verify(&self) -> Result<Result<u64, ChainBreak>, StoreError> {
        let (mut expected_seq, mut expected_prev) = self.anchor().await?;
        let mut count = 0u64;
        loop {
            let page = self.store.audit_page(expected_seq, 1000).await?;
            if page.is_empty() {
                break;
            }
            for e in page {
                if e.seq != expected_seq + 1 {
                    return Ok(Err(ChainBreak { seq: e.seq, reason: "an entry is missing before this one" }));
                }
                if e.prev_hash != expected_prev {
                    return Ok(Err(ChainBreak { seq: e.seq, reason: "it does not follow the entry before it" }));
                }
                if !crate::crypto::ct_eq(&seal(&self.key, &e), &e.hash) {
                    return Ok(Err(ChainBreak { seq: e.seq, reason: "its content or hash was changed" }));
                }
                expected_seq = e.seq;
                expected_prev = e.hash;
                count += 1;
            }
        }
        Ok(Ok(count))
    }

    /// Writes entries older than `before_ms` as JSON lines; returns how many and the last seq.
    pub async fn export(&self, out: &mut dyn Write, before_ms: Option<i64>) -> Result<(u64, Option<i64>), String> {
        let mut after = 0;
        let mut n = 0;
        let mut last = None;
        loop {
            let page = self.store.audit_page(after, 1000).await.map_err(|e| e.to_string())?;
            if page.is_empty() {
                break;
            }
            for e in &page {
                if before_ms.is_some_and(|b| e.at >= b) {
                    return Ok((n, last));
                }
                let line = serde_json::to_string(e).map_err(|e| e.to_string())?;
                writeln!(out, "{line}").map_err(|e| e.to_string())?;
                n += 1;
                last = Some(e.seq);
            }
            after = page.last().map(|e| e.seq).unwrap_or(after);
        }
        Ok((n, last))
    }

    /// Retention: exports entries older than `days` to `out`, then deletes
    /// them and anchors the chain on the last one deleted.
    pub async fn purge(&self, days: i64, out: &mut dyn Write) -> Result<u64, String> {
        self.purge_before(now_ms() - days.max(1) * 86_400_000, out).await
    }

    /// Exports, then deletes, entries recorded before `before_ms`.
    pub async fn purge_before(&self, before_ms: i64, out: &mut dyn Write) -> Result<u64, String> {
        let before = before_ms;
        let (n, last) = self.export(out, Some(before)).await?;
        out.flush().map_err(|e| e.to_string())?;
        let Some(last) = last else { return Ok(0) };
        let anchor = self.store.audit_page(last - 1, 1).await.map_err(|e| e.to_string())?;
        let Some(anchor) = anchor.first() else { return Ok(0) };
        self.store
            .set_setting(ANCHOR_SETTING, &format!("{}:{}", anchor.seq, anchor.hash))
            .await
            .map_err(|e| e.to_string())?;
        self.store.purge_audit_through(last).await.map_err(|e| e.to_string())?;
        Ok(n)
    }
}
