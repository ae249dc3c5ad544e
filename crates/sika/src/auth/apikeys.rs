//! Merchant API keys: `sk_<id>.<secret>`, 256 random bits in the secret, a
//! visible id prefix, only a SHA-256 stored; scopes; revocation; last use.

use serde_json::json;

use super::{Auth, AuthError};
use crate::audit::{Actor, Outcome};
use crate::crypto::{ct_eq, random, sha256_hex};
use crate::domain::validate;
use crate::store::{ApiKeyRow, now_ms};

pub const SCOPES: [&str; 4] = ["checkouts", "payouts", "cards", "read"];

/// Parses `checkouts,read` into a sorted, de-duplicated list of known scopes.
pub fn parse_scopes(list: &str) -> Result<Vec<String>, String> {
    let mut out: Vec<String> = Vec::new();
    for s in list.split(',').map(str::trim).filter(|s| !s.is_empty()) {
        if !SCOPES.contains(&s) {
            return Err(format!(
                "\"{}\" is not a scope: use {}.",
                s.chars().filter(|c| c.is_ascii_alphanumeric()).take(20).collect::<String>(),
                SCOPES.join(", ")
            ));
        }
        if !out.iter().any(|o| o == s) {
            out.push(s.to_string());
        }
    }
    if out.is_empty() {
        return Err(format!("Choose at least one scope ({}).", SCOPES.join(", ")));
    }
    out.sort();
    Ok(out)
}

/// A key that authenticated: its id and scopes.
#[derive(Debug, Clone)]
pub struct KeyIdentity {
    pub id: String,
    pub name: String,
    pub scopes: Vec<String>,
}

impl Auth {
    /// Creates a key and returns it in full: the only time it is ever shown.
    pub async fn create_api_key(&self, actor: &Actor, name: &str, scopes: &str) -> Result<(String, String), AuthError> {
        let name = validate::label(name).map_err(|e| AuthError::Invalid("name", e.into()))?;
        let scopes = parse_scopes(scopes).map_err(|e| AuthError::Invalid("scopes", e))?;
        let id = format!("sk_{}", &random::hex_id()[..12]);
        let key = format!("{id}.{}", random::token());
        let row = ApiKeyRow {
            id: id.clone(),
            key_hash: sha256_hex(key.as_bytes()),
            name: name.clone(),
            scopes: scopes.join(","),
            created_by: actor.id.clone(),
            created_at: now_ms(),
            last_used_at: None,
            revoked_at: None,
        };
        let audit = self
            .auditor
            .draft(
                actor,
                "apikey.create",
                &format!("apikey:{id}"),
                Outcome::Success,
                json!({"name": name, "scopes": scopes}),
            )
            .await?;
        self.store.insert_api_key(&row, audit).await?;
        Ok((id, key))
    }

    pub async fn revoke_api_key(&self, actor: &Actor, id: &str) -> Result<bool, AuthError> {
        let target = format!("apikey:{id}");
        let audit = self.auditor.draft(actor, "apikey.revoke", &target, Outcome::Success, json!({})).await?;
        let done = self.store.revoke_api_key(id, audit).await?;
        if !done {
            self.auditor.record(actor, "apikey.revoke", &target, Outcome::Failure, json!({})).await?;
        }
        Ok(done)
    }

    /// Checks a presented key in constant time; unknown, malformed and revoked keys are `None`.
    pub async fn authenticate_key(&self, presented: &str) -> Result<Option<KeyIdentity>, AuthError> {
        let Some((id, secret)) = presented.split_once('.') else { return Ok(None) };
        if !id.starts_with("sk_") || id.len() != 15 || secret.len() != 43 {
            return Ok(None);
        }
        let Some(row) = self.store.api_key(id).await? else { return Ok(None) };
        if row.revoked_at.is_some() || !ct_eq(&sha256_hex(presented.as_bytes()), &row.key_hash) {
            return Ok(None);
        }
        self.store.touch_api_key(id).await?;
        Ok(Some(KeyIdentity {
            id: row.id,
            name: row.name,
            scopes: row.scopes.split(',').map(str::to_string).collect(),
        }))
    }
}
