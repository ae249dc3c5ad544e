//! Settlements: what Flutterwave paid to the bank, each settlement with its
//! lines and their checkouts; what does not match (the discrepancies view);
//! CSV exports (formula-safe, audited); and the money report per currency.

use askama::Template;
use axum::extract::{Path, Query, State};
use axum::response::{IntoResponse, Response};
use serde::Deserialize;
use serde_json::json;

use super::authorized::{Authorized, ConsoleError, ReadPayments};
use super::guard::{Nav, render, time};
use crate::audit::Outcome;
use crate::domain::Currency;
use crate::domain::settlement::{CurrencyReport, Discrepancy, Figure};
use crate::http::AppState;
use crate::http::error::AppError;
use crate::store::{LineRow, SettlementRow, now_ms};
use crate::timefmt::{Stamp, console_day};

const DAY_MS: i64 = 86_400_000;
/// Rows a page shows.
const PAGE: i64 = 500;

#[derive(Debug, Default, Deserialize)]
pub struct Period {
    #[serde(default)]
    from: String,
    #[serde(default)]
    to: String,
}

impl Period {
    /// `[from, to)` in ms: the typed days in the console's time zone (`to` inclusive), or `default`.
    fn range(&self, default: (i64, i64)) -> Result<(i64, i64), String> {
        let from = console_day(&self.from, "from")?.unwrap_or(default.0);
        let to = console_day(&self.to, "to")?.map(|d| d + DAY_MS).unwrap_or(default.1);
        if to <= from {
            return Err("The to date must not be before the from date.".into());
        }
        Ok((from, to))
    }
}

fn money(c: Currency, amount: rust_decimal::Decimal) -> String {
    format!("{c} {}", c.format(amount))
}

pub struct Row {
    pub id: i64,
    pub date: Stamp,
    pub status: String,
    pub currency: &'static str,
    pub gross: String,
    pub fees: String,
    pub refunds: String,
    pub chargebacks: String,
    pub net: String,
    /// How many transactions Flutterwave says it settles.
    pub count: Option<i64>,
    /// Whether its lines have been read.
    pub lines_read: bool,
}

impl Row {
    fn of(s: &SettlementRow) -> Row {
        let (f, c) = (&s.facts, s.facts.currency);
        Row {
            id: f.id,
            date: time(s.counted_at()),
            status: f.status.clone(),
            currency: c.code(),
            gross: money(c, f.totals.gross),
            fees: money(c, f.totals.fees()),
            refunds: money(c, f.totals.refund),
            chargebacks: money(c, f.totals.chargeback),
            net: money(c, f.totals.net),
            count: f.transaction_count,
            lines_read: s.lines_at.is_some(),
        }
    }
}

pub struct Problem {
    pub kind: &'static str,
    pub settlement: Option<i64>,
    pub reference: Option<String>,
    pub text: String,
}

impl Problem {
    fn of(d: &Discrepancy) -> Problem {
        Problem {
            kind: d.kind(),
            settlement: d.settlement_id(),
            reference: d.reference().map(str::to_string),
            text: d.describe(),
        }
    }
}

#[derive(Template)]
#[template(path = "settlements.html")]
struct ListPage {
    nav: Option<Nav>,
    rows: Vec<Row>,
    problems: usize,
    from: String,
    to: String,
    error: Option<String>,
}

fn last_90_days(now: i64) -> (i64, i64) {
    (now - 90 * DAY_MS, now + DAY_MS)
}

pub async fn list(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Query(p): Query<Period>,
) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let (range, error) = match p.range(last_90_days(now)) {
        Ok(r) => (r, None),
        Err(why) => (last_90_days(now), Some(why)),
    };
    let rows = state.settlements.listed(range.0, range.1, PAGE).await?;
    let problems = state.settlements.discrepancies(now).await?.len();
    let rows = rows.iter().map(Row::of).collect();
    let page = ListPage { nav: Nav::of(&a.current), rows, problems, from: p.from, to: p.to, error };
    Ok(render(&page))
}

pub struct LineView {
    pub transaction_id: i64,
    pub tx_ref: String,
    pub checkout: Option<String>,
    pub charged: String,
    pub fees: String,
    pub settled: String,
}

#[derive(Template)]
#[template(path = "settlement.html")]
struct DetailPage {
    nav: Option<Nav>,
    s: Row,
    lines: Vec<LineView>,
    refund_ids: String,
    chargeback_ids: String,
    problems: Vec<Problem>,
}

fn ids(list: &[i64]) -> String {
    list.iter().map(i64::to_string).collect::<Vec<_>>().join(", ")
}

pub async fn detail(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let Some(id) = id.parse::<i64>().ok() else { return Ok(AppError::NotFound.into_response()) };
    let Some((s, lines, wrong)) = state.settlements.one(id).await? else {
        return Ok(AppError::NotFound.into_response());
    };
    let c = s.facts.currency;
    let views = lines
        .iter()
        .map(|l: &LineRow| LineView {
            transaction_id: l.facts.transaction_id,
            tx_ref: l.facts.tx_ref.clone(),
            checkout: l.checkout_reference.clone(),
            charged: money(c, l.facts.amounts.charged),
            fees: money(c, l.facts.amounts.fees),
            settled: money(c, l.facts.amounts.settled),
        })
        .collect();
    let page = DetailPage {
        nav: Nav::of(&a.current),
        s: Row::of(&s),
        lines: views,
        refund_ids: ids(&s.facts.refund_ids),
        chargeback_ids: ids(&s.facts.chargeback_ids),
        problems: wrong.iter().map(Problem::of).collect(),
    };
    Ok(render(&page))
}

#[derive(Template)]
#[template(path = "settlement_problems.html")]
struct ProblemsPage {
    nav: Option<Nav>,
    problems: Vec<Problem>,
    grace_days: u32,
}

pub async fn discrepancies(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
) -> Result<Response, ConsoleError> {
    let found = state.settlements.discrepancies(now_ms()).await?;
    let page = ProblemsPage {
        nav: Nav::of(&a.current),
        problems: found.iter().map(Problem::of).collect(),
        grace_days: state.settlements.grace_days,
    };
    Ok(render(&page))
}

/// Which CSV: the settlements of a period, one settlement's lines, or the discrepancies.
#[derive(Debug, Clone, Copy)]
enum Export {
    Settlements,
    Lines(i64),
    Discrepancies,
}

async fn export(
    state: &AppState,
    a: Authorized<ReadPayments>,
    what: Export,
    p: Period,
) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let range = match p.range(last_90_days(now)) {
        Ok(r) => r,
        Err(why) => return Ok(AppError::bad_request("bad_period", why).into_response()),
    };
    let (name, target, out, rows): (&'static str, String, String, usize) = match what {
        Export::Settlements => {
            let rows = state.settlements.listed(range.0, range.1, i64::MAX / 2).await?;
            let mut out = String::from(
                "id,date_utc,status,currency,gross,app_fee,merchant_fee,stamp_duty,refunds,chargebacks,net,transactions,refund_ids,chargeback_ids\n",
            );
            for s in &rows {
                let (f, t) = (&s.facts, &s.facts.totals);
                out.push_str(&crate::domain::csv::line(&[
                    f.id.to_string(),
                    crate::timefmt::iso(s.counted_at()),
                    f.status.clone(),
                    f.currency.code().to_string(),
                    t.gross.to_string(),
                    t.app_fee.to_string(),
                    t.merchant_fee.to_string(),
                    t.stampduty.to_string(),
                    t.refund.to_string(),
                    t.chargeback.to_string(),
                    t.net.to_string(),
                    f.transaction_count.map(|n| n.to_string()).unwrap_or_default(),
                    ids(&f.refund_ids),
                    ids(&f.chargeback_ids),
                ]));
            }
            ("settlements.csv", "settlements".into(), out, rows.len())
        }
        Export::Lines(id) => {
            let Some((s, lines, _)) = state.settlements.one(id).await? else {
                return Ok(AppError::NotFound.into_response());
            };
            let mut out =
                String::from("settlement_id,currency,transaction_id,tx_ref,checkout,charged,fees,settled,status\n");
            for l in &lines {
                out.push_str(&crate::domain::csv::line(&[
                    id.to_string(),
                    s.facts.currency.code().to_string(),
                    l.facts.transaction_id.to_string(),
                    l.facts.tx_ref.clone(),
                    l.checkout_reference.clone().unwrap_or_default(),
                    l.facts.amounts.charged.to_string(),
                    l.facts.amounts.fees.to_string(),
                    l.facts.amounts.settled.to_string(),
                    l.facts.status.clone().unwrap_or_default(),
                ]));
            }
            ("settlement-lines.csv", format!("settlement:{id}"), out, lines.len())
        }
        Export::Discrepancies => {
            let found = state.settlements.discrepancies(now).await?;
            let mut out = String::from("kind,settlement_id,checkout,what_is_wrong\n");
            for d in &found {
                out.push_str(&crate::domain::csv::line(&[
                    d.kind().to_string(),
                    d.settlement_id().map(|i| i.to_string()).unwrap_or_default(),
                    d.reference().unwrap_or_default().to_string(),
                    d.describe(),
                ]));
            }
            ("settlement-discrepancies.csv", "settlements:discrepancies".into(), out, found.len())
        }
    };
    let actor = a.current.actor(&a.ctx.ip, &a.ctx.user_agent);
    let details = json!({"export": name, "from": p.from, "to": p.to, "rows": rows});
    if let Err(r) = state.audited(&actor, "settlements.export", &target, Outcome::Success, details).await {
        return Ok(r);
    }
    Ok(super::guard::download(name, "text/csv; charset=utf-8", out))
}

pub async fn export_list(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Query(p): Query<Period>,
) -> Result<Response, ConsoleError> {
    export(&state, a, Export::Settlements, p).await
}

pub async fn export_lines(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Path(id): Path<String>,
) -> Result<Response, ConsoleError> {
    let Some(id) = id.parse::<i64>().ok() else { return Ok(AppError::NotFound.into_response()) };
    export(&state, a, Export::Lines(id), Period::default()).await
}

pub async fn export_discrepancies(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
) -> Result<Response, ConsoleError> {
    export(&state, a, Export::Discrepancies, Period::default()).await
}

pub struct FigureView {
    pub label: &'static str,
    pub amount: String,
    pub count: String,
}

pub struct CheckView {
    pub what: &'static str,
    pub left: String,
    pub right: String,
    pub holds: bool,
    pub difference: String,
}

pub struct ReportView {
    pub currency: &'static str,
    pub figures: Vec<FigureView>,
    pub checks: Vec<CheckView>,
    pub discrepancies: i64,
    pub adds_up: bool,
    pub to_settle_unknown: i64,
}

impl ReportView {
    fn of(r: &CurrencyReport) -> ReportView {
        let c = r.currency;
        let fig = |label, f: &Figure, what: &str| FigureView {
            label,
            amount: money(c, f.amount),
            count: if f.count > 0 { format!("{} {what}", f.count) } else { String::new() },
        };
        let plain = |label, amount| FigureView { label, amount: money(c, amount), count: String::new() };
        ReportView {
            currency: c.code(),
            figures: vec![
                fig("Collected (verified payments)", &r.collected, "payments"),
                fig("Refunded (completed)", &r.refunded, "refunds"),
                fig("Charged back (not won)", &r.charged_back, "chargebacks"),
                fig("Flutterwave's fees and stamp duty (settled lines)", &r.fees, "lines"),
                fig("Settled to the bank (net)", &r.settled, "settlements"),
                plain("— of which refunds netted", r.netted_refunds),
                plain("— of which chargebacks netted", r.netted_chargebacks),
                fig("Still to settle at the period's end (verify's amount_settled)", &r.to_settle, "payments"),
                fig("Paid out (successful payouts)", &r.paid_out, "payouts"),
            ],
            checks: r
                .checks
                .iter()
                .map(|k| CheckView {
                    what: k.what,
                    left: money(c, k.left),
                    right: money(c, k.right),
                    holds: k.holds(),
                    difference: money(c, k.difference()),
                })
                .collect(),
            discrepancies: r.discrepancies,
            adds_up: r.adds_up(),
            to_settle_unknown: r.to_settle_unknown,
        }
    }
}

#[derive(Template)]
#[template(path = "money_report.html")]
struct ReportPage {
    nav: Option<Nav>,
    reports: Vec<ReportView>,
    from: String,
    to: String,
    period: String,
    error: Option<String>,
}

/// This month so far, in the console's time zone.
fn this_month(now: i64) -> (i64, i64) {
    let shift = crate::timefmt::console_zone().offset_minutes * 60_000;
    let today = crate::timefmt::date(now + shift);
    let first = crate::timefmt::parse_date(&format!("{}-01", &today[..7])).unwrap_or(now - 30 * DAY_MS);
    (first - shift, now + DAY_MS)
}

pub async fn report(
    State(state): State<AppState>,
    a: Authorized<ReadPayments>,
    Query(p): Query<Period>,
) -> Result<Response, ConsoleError> {
    let now = now_ms();
    let (range, error) = match p.range(this_month(now)) {
        Ok(r) => (r, None),
        Err(why) => (this_month(now), Some(why)),
    };
    let reports = state.settlements.report(now, range.0, range.1).await?;
    let period = format!("{} to {}", time(range.0), time(range.1 - 1));
    let page = ReportPage {
        nav: Nav::of(&a.current),
        reports: reports.iter().map(ReportView::of).collect(),
        from: p.from,
        to: p.to,
        period,
        error,
    };
    Ok(render(&page))
}
