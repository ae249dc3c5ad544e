//! Prometheus metrics on their own listener (`SIKA_METRICS_LISTEN`, loopback
//! by default, never the public port). Events are counted where they happen
//! (`global()`); what the database knows (money by status, the inbox, the
//! shop notifications, locked users) and the workers' heartbeats are read at
//! each scrape, so every instance reports the same totals.

use std::sync::OnceLock;
use std::sync::atomic::AtomicU64;

use prometheus_client::encoding::EncodeLabelSet;
use prometheus_client::metrics::counter::Counter;
use prometheus_client::metrics::family::Family;
use prometheus_client::metrics::gauge::Gauge;
use prometheus_client::metrics::histogram::{Histogram, exponential_buckets};
use prometheus_client::registry::Registry;

use crate::store::{StatusTable, now_ms};

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Request {
    /// The route template (`/api/v1/checkouts/{reference}`), never the raw path.
    pub route: String,
    pub method: String,
    pub status: u16,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Route {
    pub route: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Outcome {
    pub outcome: &'static str,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Status {
    pub status: String,
}

#[derive(Clone, Debug, Hash, PartialEq, Eq, EncodeLabelSet)]
pub struct Worker {
    pub worker: &'static str,
}

type FloatGauge = Gauge<f64, AtomicU64>;

fn latency() -> Histogram {
    Histogram::new(exponential_buckets(0.0005, 2.0, 16))
}

/// Every metric Sika exports.
pub struct Metrics {
    registry: Registry,
    pub requests: Family<Request, Counter>,
    pub latency: Family<Route, Histogram, fn() -> Histogram>,
    /// `received`, `duplicate`, `refused` (bad or missing signature).
    pub webhooks: Family<Outcome, Counter>,
    /// Verify calls by answer: `ok`, `rejected`, `indefinite`.
    pub verify: Family<Outcome, Counter>,
    /// Shop notifications: `delivered`, `retried`, `dead`.
    pub notifications: Family<Outcome, Counter>,
    pub signin_failures: Counter,
    pub lockouts: Counter,
    /// Mails handed to the mail server (or the demo's directory), and tries that failed.
    pub mail_sent: Counter,
    pub mail_failures: Counter,
    mail_outbox: Family<Status, Gauge>,
    upstream_429: Counter,
    budget_waits: Counter,
    ledger_statements: Counter,
    ledger_seconds: Counter<f64, AtomicU64>,
    inbox_backlog: Gauge,
    inbox_oldest_age: FloatGauge,
    inbox_dead: Gauge,
    outbox_waiting: Gauge,
    outbox_dead: Gauge,
    checkouts: Family<Status, Gauge>,
    refunds: Family<Status, Gauge>,
    payouts: Family<Status, Gauge>,
    cards: Family<Status, Gauge>,
    card_fundings: Family<Status, Gauge>,
    locked_users: Gauge,
    payouts_waiting: Gauge,
    payouts_waiting_oldest: FloatGauge,
    payouts_attention: Gauge,
    chargebacks_open: Gauge,
    chargebacks_due_soon: Gauge,
    chargebacks_overdue: Gauge,
    settlements_not_settled: Gauge,
    settlement_lines_unmatched: Gauge,
    settlement_lines_pending: Gauge,
    heartbeat_age: Family<Worker, FloatGauge>,
    restarts: Family<Worker, Gauge>,
}

impl Metrics {
    fn new() -> Self {
        let mut registry = Registry::with_prefix("sika");
        let m = Metrics {
            requests: Family::default(),
            latency: Family::new_with_constructor(latency as fn() -> Histogram),
            webhooks: Family::default(),
            verify: Family::default(),
            notifications: Family::default(),
            signin_failures: Counter::default(),
            lockouts: Counter::default(),
            mail_sent: Counter::default(),
            mail_failures: Counter::default(),
            mail_outbox: Family::default(),
            upstream_429: Counter::default(),
            budget_waits: Counter::default(),
            ledger_statements: Counter::default(),
            ledger_seconds: Counter::default(),
            inbox_backlog: Gauge::default(),
            inbox_oldest_age: FloatGauge::default(),
            inbox_dead: Gauge::default(),
            outbox_waiting: Gauge::default(),
            outbox_dead: Gauge::default(),
            checkouts: Family::default(),
            refunds: Family::default(),
            payouts: Family::default(),
            cards: Family::default(),
            card_fundings: Family::default(),
            locked_users: Gauge::default(),
            payouts_waiting: Gauge::default(),
            payouts_waiting_oldest: FloatGauge::default(),
            payouts_attention: Gauge::default(),
            chargebacks_open: Gauge::default(),
            chargebacks_due_soon: Gauge::default(),
            chargebacks_overdue: Gauge::default(),
            settlements_not_settled: Gauge::default(),
            settlement_lines_unmatched: Gauge::default(),
            settlement_lines_pending: Gauge::default(),
            heartbeat_age: Family::default(),
            restarts: Family::default(),
            registry: Registry::default(),
        };
        registry.register("http_requests", "HTTP requests by route, method and status", m.requests.clone());
        registry.register("http_request_duration_seconds", "HTTP request latency by route", m.latency.clone());
        registry.register("webhooks", "Flutterwave webhooks: received, duplicate, refused", m.webhooks.clone());
        registry.register(
            "chargebacks_open",
            "Chargebacks waiting for the merchant's answer",
            m.chargebacks_open.clone(),
        );
        registry.register(
            "chargebacks_due_soon",
            "Open chargebacks whose answer is due within 24 hours",
            m.chargebacks_due_soon.clone(),
        );
        registry.register(
            "chargebacks_overdue",
            "Open chargebacks past their due date (Flutterwave will call them lost)",
            m.chargebacks_overdue.clone(),
        );
        registry.register(
            "settlements_not_settled",
            "Paid checkouts of the last 90 days in no settlement after the grace days (SIKA_SETTLEMENT_GRACE_DAYS)",
            m.settlements_not_settled.clone(),
        );
        registry.register(
            "settlement_lines_unmatched",
            "Settled transactions whose tx_ref names no checkout of Sika's",
            m.settlement_lines_unmatched.clone(),
        );
        registry.register(
            "settlement_lines_pending",
            "Settlements whose transactions are not read yet",
            m.settlement_lines_pending.clone(),
        );
        registry.register("verify_calls", "Verify calls to Flutterwave by answer", m.verify.clone());
        registry.register("notifications", "Shop notifications: delivered, retried, dead", m.notifications.clone());
        registry.register("signin_failures", "Failed sign-ins", m.signin_failures.clone());
        registry.register("lockouts", "Accounts locked after repeated failures", m.lockouts.clone());
        registry.register("mail_sent", "Mails handed to the mail server", m.mail_sent.clone());
        registry.register(
            "mail_failures",
            "Tries to send a mail that failed (each is retried)",
            m.mail_failures.clone(),
        );
        registry.register("mail_outbox", "Mails by state: pending, sent, failed, skipped", m.mail_outbox.clone());
        registry.register(
            "upstream_rate_limited",
            "429 answers from Flutterwave that paused the budget",
            m.upstream_429.clone(),
        );
        registry.register(
            "budget_waits",
            "Calls to Flutterwave that waited for the outbound budget",
            m.budget_waits.clone(),
        );
        registry.register(
            "budget_ledger_statements",
            "Statements run on the shared budget's schedule (PostgreSQL: one lease of a few send times each)",
            m.ledger_statements.clone(),
        );
        registry.register(
            "budget_ledger_seconds",
            "Database time spent on the shared budget's schedule",
            m.ledger_seconds.clone(),
        );
        registry.register("inbox_backlog", "Webhooks received and not yet processed", m.inbox_backlog.clone());
        registry.register(
            "inbox_oldest_age_seconds",
            "Age of the oldest unprocessed webhook",
            m.inbox_oldest_age.clone(),
        );
        registry.register(
            "inbox_dead_letters",
            "Webhooks given up on (replay them in the console)",
            m.inbox_dead.clone(),
        );
        registry.register(
            "notifications_waiting",
            "Shop notifications waiting to be delivered",
            m.outbox_waiting.clone(),
        );
        registry.register("notifications_dead", "Shop notifications given up on", m.outbox_dead.clone());
        registry.register("checkouts", "Checkouts by status", m.checkouts.clone());
        registry.register("refunds", "Refunds by status", m.refunds.clone());
        registry.register("payouts", "Payouts by status", m.payouts.clone());
        registry.register("cards", "Virtual cards by status", m.cards.clone());
        registry.register("card_fundings", "Card loads, fundings and withdrawals by status", m.card_fundings.clone());
        registry.register("locked_users", "Users locked out of signing in now", m.locked_users.clone());
        registry.register(
            "payouts_waiting_at_flutterwave",
            "Payouts Flutterwave holds at NEW (dashboard approval, IP allow-list, currency not enabled)",
            m.payouts_waiting.clone(),
        );
        registry.register(
            "payouts_waiting_at_flutterwave_oldest_seconds",
            "How long the oldest payout has waited at Flutterwave at NEW",
            m.payouts_waiting_oldest.clone(),
        );
        registry.register(
            "payouts_needing_attention",
            "Payouts in flight whose lookup could not finish: a person must look",
            m.payouts_attention.clone(),
        );
        registry.register(
            "worker_heartbeat_age_seconds",
            "Seconds since each background worker's last heartbeat",
            m.heartbeat_age.clone(),
        );
        registry.register("worker_restarts", "Restarts of each background worker after a panic", m.restarts.clone());
        Metrics { registry, ..m }
    }
}

/// The process's metrics.
pub fn global() -> &'static Metrics {
    static METRICS: OnceLock<Metrics> = OnceLock::new();
    METRICS.get_or_init(Metrics::new)
}

/// Counts one event of a family with a fixed outcome.
pub fn count(family: &Family<Outcome, Counter>, outcome: &'static str) {
    family.get_or_create(&Outcome { outcome }).inc();
}

/// What a scrape reads besides the counters: the database, the workers'
/// heartbeats and the outbound budget.
pub struct Sources<'a> {
    pub store: &'a crate::store::Store,
    pub workers: &'a crate::jobs::Health,
    pub flutterwave: &'a flutterwave::Client,
    /// Days a paid checkout may wait for its settlement.
    pub settlement_grace_days: u32,
}

/// Refreshes what is read at scrape time, then renders the text exposition.
pub async fn scrape(state: &Sources<'_>) -> Result<String, crate::store::StoreError> {
    let m = global();
    let now = now_ms();
    let health = state.store.overview_health(now).await?;
    m.inbox_backlog.set(health.inbox_backlog);
    m.inbox_oldest_age.set(health.inbox_oldest.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0));
    m.inbox_dead.set(health.inbox_dead);
    m.outbox_waiting.set(health.outbox_waiting);
    m.outbox_dead.set(health.outbox_dead);
    for (family, table) in [
        (&m.checkouts, StatusTable::Checkouts),
        (&m.refunds, StatusTable::Refunds),
        (&m.payouts, StatusTable::Payouts),
        (&m.cards, StatusTable::Cards),
        (&m.card_fundings, StatusTable::CardFundings),
    ] {
        let counts = state.store.status_counts(table).await?;
        family.clear();
        for (status, n) in counts {
            family.get_or_create(&Status { status }).set(n);
        }
    }
    m.locked_users.set(state.store.locked_users(now).await?);
    let mail = state.store.mail_counts().await?;
    m.mail_outbox.clear();
    for (status, n) in mail {
        m.mail_outbox.get_or_create(&Status { status }).set(n);
    }
    let waiting = state.store.payouts_waiting(crate::payouts::WAITING_STATUS).await?;
    m.payouts_waiting.set(waiting.waiting);
    m.payouts_waiting_oldest.set(waiting.oldest_since.map_or(0.0, |t| (now - t).max(0) as f64 / 1000.0));
    m.payouts_attention.set(waiting.attention);
    let due = state.store.chargebacks_due(now, now + crate::payments::chargebacks::DUE_SOON_MS).await?;
    m.chargebacks_open.set(due.open);
    m.chargebacks_due_soon.set(due.due_soon);
    m.chargebacks_overdue.set(due.overdue);
    let grace = i64::from(state.settlement_grace_days) * 86_400_000;
    let s = state.store.settlement_gauges(now - grace, now - crate::settlements::WINDOW_MS).await?;
    m.settlements_not_settled.set(s.not_settled);
    m.settlement_lines_unmatched.set(s.unmatched_lines);
    m.settlement_lines_pending.set(s.lines_pending);
    for job in state.workers.jobs() {
        let w = Worker { worker: job.name };
        m.heartbeat_age.get_or_create(&w).set((now - job.last_beat()).max(0) as f64 / 1000.0);
        m.restarts.get_or_create(&w).set(i64::try_from(job.restarts()).unwrap_or(i64::MAX));
    }
    // The budget counts for itself; bring the counters level with it.
    let (waited, limited) = state.flutterwave.budget().stats();
    catch_up(&m.budget_waits, waited);
    catch_up(&m.upstream_429, limited);
    let (statements, seconds) = crate::store::budget_cost();
    catch_up(&m.ledger_statements, statements);
    let spent = m.ledger_seconds.get();
    if seconds > spent {
        m.ledger_seconds.inc_by(seconds - spent);
    }
    let mut out = String::new();
    prometheus_client::encoding::text::encode(&mut out, &m.registry)
        .map_err(|_| crate::store::StoreError::Db(sqlx::Error::Protocol("metrics encoding failed".into())))?;
    Ok(out)
}

fn catch_up(counter: &Counter, total: u64) {
    let now = counter.get();
    if total > now {
        counter.inc_by(total - now);
    }
}
