//! The audit log, for auditors and admins: actors by name and e-mail (the
//! read is itself audited), filters that work (actor e-mail, action,
//! outcome, dates), details as key and value, and exports (JSON lines, the
//! same lines `sika audit export` writes, and CSV).

use std::collections::HashMap;

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorized::{Authorized, ConsoleError, ReadAudit};
use super::guard::{Ctx, Nav, internal, render, time};
use crate::audit::Outcome;
use crate::auth::session::Current;
use crate::domain::csv;
use crate::http::AppState;
use crate::http::error::AppError;
use crate::store::{AuditEntry, AuditFilter};
use crate::timefmt::Stamp;

#[derive(Deserialize, Default, Clone)]
pub struct Filter {
    /// An operator's e-mail, or an actor id (`cli`, `anonymous`, a user id).
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    /// `YYYY-MM-DD` in the console's time zone; `to` is included.
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
    #[serde(default)]
    before: Option<i64>,
}

struct Row {
    seq: i64,
    time: Stamp,
    actor: String,
    actor_detail: String,
    role: String,
    ip: String,
    action: String,
    target: String,
    outcome: String,
    tone: &'static str,
    details: Vec<(String, String)>,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    entries: Vec<Row>,
    outcomes: &'static [&'static str],
    f: Filter,
    query: String,
    older: Option<i64>,
    error: Option<String>,
}

const PAGE: i64 = 100;
/// The most entries one console export holds (the CLI exports everything).
const MAX_EXPORT: i64 = 100_000;
const OUTCOMES: &[&str] = &["success", "failure", "denied"];

fn clean(s: &str) -> Option<String> {
    let t: String = s.trim().chars().filter(|c| c.is_ascii_alphanumeric() || "._:-".contains(*c)).take(64).collect();
    (!t.is_empty()).then_some(t)
}

/// Who each actor id is: "Name <e-mail>" for operators, the id itself otherwise.
async fn people(state: &AppState) -> Result<HashMap<String, (String, String)>, Response> {
    let users = state.auth.users().await.map_err(internal)?;
    Ok(users.into_iter().map(|u| (u.id, (u.name.unwrap_or_default(), u.email))).collect())
}

impl Filter {
    /// The store's filter, or why a field is wrong. An e-mail that is no
    /// operator's matches nothing.
    async fn checked(&self, state: &AppState) -> Result<AuditFilter, String> {
        let day = crate::timefmt::console_day;
        let typed = self.actor.trim();
        let actor = if typed.contains('@') {
            let found = match state.auth.users().await {
                Ok(users) => users.into_iter().find(|u| u.email.eq_ignore_ascii_case(typed)).map(|u| u.id),
                Err(_) => None,
            };
            Some(found.unwrap_or_else(|| "no-such-operator".into()))
        } else {
            clean(typed)
        };
        Ok(AuditFilter {
            actor,
            action: clean(&self.action),
            outcome: clean(&self.outcome).filter(|o| OUTCOMES.contains(&o.as_str())),
            before_seq: self.before,
            from_ms: day(&self.from, "from")?,
            to_ms: day(&self.to, "to")?.map(|t| t + 86_400_000),
        })
    }

    fn query_string(&self) -> String {
        url::form_urlencoded::Serializer::new(String::new())
            .append_pair("actor", self.actor.trim())
            .append_pair("action", &clean(&self.action).unwrap_or_default())
            .append_pair("outcome", &clean(&self.outcome).unwrap_or_default())
            .append_pair("from", self.from.trim())
            .append_pair("to", self.to.trim())
            .finish()
    }
}

/// A detail object as key and value, nested values as compact JSON.
fn key_values(details: &str) -> Vec<(String, String)> {
    match serde_json::from_str::<serde_json::Value>(details) {
        Ok(serde_json::Value::Object(m)) => m
            .into_iter()
            .map(|(k, v)| {
                let shown = match v {
                    serde_json::Value::String(s) => s,
                    serde_json::Value::Null => "none".into(),
                    other => other.to_string(),
                };
                (k.replace('_', " "), shown)
            })
            .collect(),
        Ok(serde_json::Value::Null) => Vec::new(),
        Ok(other) => vec![("value".into(), other.to_string())],
        Err(_) => vec![("text".into(), details.to_string())],
    }
}

async fn entries_for(
    state: &AppState,
    c: &Current,
    ctx: &Ctx,
    f: &Filter,
    limit: i64,
    what: &str,
) -> Result<Result<(AuditFilter, Vec<AuditEntry>), String>, Response> {
    let filter = match f.checked(state).await {
        Ok(filter) => filter,
        Err(why) => return Ok(Err(why)),
    };
    // Reading the log shows operators' e-mails: the read itself is recorded first.
    let details = json!({"filter": f.query_string(), "shows": "actors' names and e-mails"});
    state.audited(&c.actor(&ctx.ip, &ctx.user_agent), what, "audit_log", Outcome::Success, details).await?;
    let entries = state.auth.auditor.search(&filter, limit).await.map_err(internal)?;
    Ok(Ok((filter, entries)))
}

pub async fn audit_page(State(state): State<AppState>, a: Authorized<ReadAudit>, Query(f): Query<Filter>) -> Response {
    let (c, ctx) = (a.current, a.ctx);
    let (entries, error) = match entries_for(&state, &c, &ctx, &f, PAGE, "audit.view").await {
        Ok(Ok((_, e))) => (e, None),
        Ok(Err(why)) => (Vec::new(), Some(why)),
        Err(r) => return r,
    };
    let who = match people(&state).await {
        Ok(p) => p,
        Err(r) => return r,
    };
    let older = (entries.len() as i64 == PAGE).then(|| entries.last().map(|e| e.seq)).flatten();
    let entries = entries
        .into_iter()
        .map(|e| {
            let (actor, actor_detail) = match who.get(&e.actor) {
                Some((name, email)) if !name.is_empty() => (name.clone(), email.clone()),
                Some((_, email)) => (email.clone(), String::new()),
                None => (e.actor.clone(), String::new()),
            };
            Row {
                seq: e.seq,
                time: time(e.at),
                actor,
                actor_detail,
                role: e.role,
                ip: e.ip,
                tone: match e.outcome.as_str() {
                    "success" => "ok",
                    "denied" => "bad",
                    _ => "warn",
                },
                action: e.action,
                target: e.target,
                outcome: e.outcome,
                details: key_values(&e.details),
            }
        })
        .collect();
    render(&AuditPage {
        nav: Nav::of(&c),
        entries,
        outcomes: OUTCOMES,
        query: f.query_string(),
        f: Filter { action: clean(&f.action).unwrap_or_default(), ..f },
        older,
        error,
    })
}

/// `/audit/export.jsonl` or `/audit/export.csv`: the filtered entries, newest first.
pub async fn export(
    State(state): State<AppState>,
    a: Authorized<ReadAudit>,
    Path(format): Path<String>,
    Query(f): Query<Filter>,
) -> Result<Response, ConsoleError> {
    let (c, ctx) = (a.current, a.ctx);
    if format != "export.jsonl" && format != "export.csv" {
        return Ok(AppError::NotFound.into_response());
    }
    let entries = match entries_for(&state, &c, &ctx, &f, MAX_EXPORT, "audit.export").await {
        Ok(Ok((_, e))) => e,
        Ok(Err(why)) => return Ok(AppError::bad_request("bad_filter", why).into_response()),
        Err(r) => return Ok(r),
    };
    let (body, kind, name) = if format == "export.jsonl" {
        let mut out = String::new();
        for e in &entries {
            out.push_str(&serde_json::to_string(e).map_err(ConsoleError::internal)?);
            out.push('\n');
        }
        (out, "application/x-ndjson", "audit.jsonl")
    } else {
        let who = match people(&state).await {
            Ok(p) => p,
            Err(r) => return Ok(r),
        };
        let mut out = csv::line(&[
            "seq",
            "at_utc",
            "actor",
            "actor_email",
            "role",
            "ip",
            "action",
            "target",
            "outcome",
            "details",
            "hash",
        ]);
        for e in &entries {
            let email = who.get(&e.actor).map(|(_, m)| m.as_str()).unwrap_or("");
            out.push_str(&csv::line(&[
                e.seq.to_string().as_str(),
                &crate::timefmt::iso(e.at),
                &e.actor,
                email,
                &e.role,
                &e.ip,
                &e.action,
                &e.target,
                &e.outcome,
                &e.details,
                &e.hash,
            ]));
        }
        (out, "text/csv; charset=utf-8", "audit.csv")
    };
    Ok(super::guard::download(name, kind, body))
}
