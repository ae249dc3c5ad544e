//! The audit log, for auditors: filter and read.

use askama::Template;
use axum::extract::{Query, State};
use axum::response::Response;
use serde::Deserialize;
use serde_json::json;

use super::guard::{Ctx, Nav, internal, render, time};
use crate::audit::Outcome;
use crate::auth::roles::may;
use crate::http::AppState;
use crate::store::AuditFilter;
use crate::timefmt::Stamp;

#[derive(Deserialize, Default)]
pub struct Filter {
    #[serde(default)]
    actor: String,
    #[serde(default)]
    action: String,
    #[serde(default)]
    outcome: String,
    #[serde(default)]
    before: Option<i64>,
}

struct Row {
    seq: i64,
    time: Stamp,
    actor: String,
    role: String,
    ip: String,
    action: String,
    target: String,
    outcome: String,
    details: String,
}

#[derive(Template)]
#[template(path = "audit.html")]
struct AuditPage {
    nav: Option<Nav>,
    entries: Vec<Row>,
    outcomes: Vec<&'static str>,
    filter_actor: String,
    filter_action: String,
    filter_outcome: String,
    older: Option<i64>,
}

const PAGE: i64 = 100;

fn clean(s: &str) -> Option<String> {
    let t: String = s.trim().chars().filter(|c| c.is_ascii_alphanumeric() || "._:-".contains(*c)).take(64).collect();
    (!t.is_empty()).then_some(t)
}

pub async fn audit_page(State(state): State<AppState>, ctx: Ctx, Query(f): Query<Filter>) -> Response {
    let c = match state.authorize(&ctx, may::READ_AUDIT, "audit_log", None).await {
        Ok(c) => c,
        Err(r) => return r,
    };
    let filter = AuditFilter {
        actor: clean(&f.actor),
        action: clean(&f.action),
        outcome: clean(&f.outcome).filter(|o| ["success", "failure", "denied"].contains(&o.as_str())),
        before_seq: f.before,
    };
    let details = json!({"action": filter.action, "actor": filter.actor});
    if let Err(r) =
        state.audited(&c.actor(&ctx.ip, &ctx.user_agent), "audit.view", "audit_log", Outcome::Success, details).await
    {
        return r;
    }
    let entries = match state.auth.store.audit_search(&filter, PAGE).await {
        Ok(e) => e,
        Err(e) => return internal(e),
    };
    let older = (entries.len() as i64 == PAGE).then(|| entries.last().map(|e| e.seq)).flatten();
    let entries = entries
        .into_iter()
        .map(|e| Row {
            seq: e.seq,
            time: time(e.at),
            actor: e.actor,
            role: e.role,
            ip: e.ip,
            action: e.action,
            target: e.target,
            outcome: e.outcome,
            details: e.details,
        })
        .collect();
    render(&AuditPage {
        nav: Nav::of(&c),
        entries,
        outcomes: vec!["success", "failure", "denied"],
        filter_actor: filter.actor.unwrap_or_default(),
        filter_action: filter.action.unwrap_or_default(),
        filter_outcome: filter.outcome.unwrap_or_default(),
        older,
    })
}
