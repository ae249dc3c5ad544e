//! Disputes: every chargeback Flutterwave listed, the open ones first by due
//! date with the time left ("due in 5 h"), each linked to its checkout.
//! Read-only here; answering one is not built yet (issue 19).

use askama::Template;
use axum::extract::State;
use axum::response::Response;

use super::authorized::{Authorized, ConsoleError, ReadPayments};
use super::guard::{Nav, render, time};
use crate::http::AppState;
use crate::store::now_ms;
use crate::timefmt::Stamp;

pub struct Line {
    pub id: i64,
    pub checkout: Option<String>,
    pub amount: String,
    pub status: String,
    pub stage: String,
    pub open: bool,
    /// "due in 5 h", "overdue by 2 h", or "" when Flutterwave gave no readable date.
    pub left: String,
    pub due: Option<Stamp>,
    pub first_seen: Stamp,
}

#[derive(Template)]
#[template(path = "disputes.html")]
struct DisputesPage {
    nav: Option<Nav>,
    rows: Vec<Line>,
    due_soon: i64,
    overdue: i64,
}

/// Rows a page shows.
const PAGE: i64 = 200;

pub async fn list(State(state): State<AppState>, a: Authorized<ReadPayments>) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let rows = state.payments.disputes(PAGE).await?;
    let due = state.payments.disputes_due(now).await?;
    let rows = rows
        .into_iter()
        .map(|r| {
            let f = r.facts;
            let open = matches!(f.status.as_str(), "initiated" | "pending");
            let amount = match f.currency {
                Some(c) => format!("{c} {}", c.format(f.amount)),
                None => f.amount.to_string(),
            };
            Line {
                id: f.id,
                checkout: f.checkout_reference,
                amount,
                status: f.status,
                stage: f.stage,
                open,
                left: match (open, f.due_at) {
                    (true, Some(at)) => crate::timefmt::due_in(now, at),
                    _ => String::new(),
                },
                due: f.due_at.map(time),
                first_seen: time(r.first_seen_at),
            }
        })
        .collect();
    Ok(render(&DisputesPage { nav: Nav::of(&a.current), rows, due_soon: due.due_soon, overdue: due.overdue }))
}
