//! The emulator's state: accounts, money, faults and counters, all in memory.

use std::collections::{BTreeMap, HashMap, HashSet};
use std::sync::{Arc, Mutex, MutexGuard, RwLock};
use std::time::Duration;

use rust_decimal::Decimal;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::rng::Rng;
use crate::webhooks::Outbox;

/// How the emulator is set up at start.
#[derive(Clone)]
pub struct EmulatorConfig {
    pub secret_key: String,
    pub secret_hash: String,
    pub webhook_url: Option<String>,
    /// PEM roots the webhook sender trusts (Sika's self-signed certificate in the demo).
    pub webhook_root_pem: Option<String>,
    pub seed: u64,
}

impl std::fmt::Debug for EmulatorConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("EmulatorConfig").field("webhook_url", &self.webhook_url).finish_non_exhaustive()
    }
}

/// Which webhook authentication headers are sent.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub enum SignatureScheme {
    #[serde(rename = "verif-hash")]
    VerifHash,
    #[serde(rename = "hmac")]
    Hmac,
    #[serde(rename = "both")]
    Both,
}

/// Fault injection and timing, set by `POST /_emulator/faults`.
#[derive(Debug, Clone, Serialize)]
pub struct Faults {
    pub seed: u64,
    pub rate_limit_per_second: Option<f64>,
    pub error_rate: f64,
    pub latency_ms: u64,
    pub error_after_commit_rate: f64,
    pub webhook_duplicate_rate: f64,
    pub webhook_drop_rate: f64,
    pub webhook_reorder: bool,
    pub webhook_delay_ms: u64,
    pub signature: SignatureScheme,
    /// Retries after a delivery that did not get a 200 (Flutterwave: 3).
    pub webhook_retries: u32,
    /// Between retries (Flutterwave: 30 minutes).
    pub webhook_retry_interval_ms: u64,
    /// `"v3"` (wrapped `charge.completed`) or `"legacy"` (the flat form).
    pub webhook_format: String,
    /// Sent as `status=` on a successful redirect: `successful`, or `completed` like newer checkouts.
    pub redirect_status: String,
    /// How long one emulated minute lasts, for test transfers (`_PMCK` = 10 minutes) and card activation.
    pub minute_ms: u64,
    /// The status a new refund answers with: `completed` (default), or a
    /// non-final one (`processing`, `pending`, `pending-momo`), or `failed`.
    pub refund_status: String,
    /// A non-final refund becomes `refund_final_status` after this long (never, when unset).
    pub refund_settle_after_ms: Option<u64>,
    /// `completed` (default) or `failed`: where a non-final refund ends.
    pub refund_final_status: String,
    /// Send the flat refund webhook when a refund reaches a final state (off by default, like Flutterwave's).
    pub refund_webhooks: bool,
    /// Transfers without a scripted outcome succeed after this long (never, when unset: they stay `PENDING`).
    pub transfer_complete_after_ms: Option<u64>,
    /// Payouts are blocked on the account: transfers fail with "wallet currently restricted".
    pub wallet_restricted: bool,
    /// When a transfer breaks an account rule (`beneficiary_name` missing, a
    /// restricted wallet, a spend limit): `later` — queued `NEW`, then failed
    /// by webhook, as the corpus shows Flutterwave doing — or `at_once` (400).
    pub transfer_refusals: String,
    /// The most one transfer may send, per currency ("You can only spend EUR 100.00 at once").
    #[serde(serialize_with = "decimal_texts")]
    pub spend_limits: BTreeMap<String, Decimal>,
    /// Transfers stay `NEW` (dashboard approval, an IP not allow-listed, a currency not enabled).
    pub transfers_stay_new: bool,
    /// `GET /transfers` ignores the `reference` filter (support for it is unconfirmed).
    pub transfer_list_ignores_reference: bool,
    /// `GET /transfers` answers 500 for this page and every later one.
    pub transfer_list_fail_from_page: Option<u32>,
    /// `transfer.completed` carries `"event.type": "Transfer"` (real ones sometimes do not).
    pub transfer_event_type: bool,
    /// The next this many v3 requests get a 429 (whatever the rate), with `Retry-After: throttle_retry_after_s`.
    pub throttle_next: u32,
    pub throttle_retry_after_s: u64,
}

impl Default for Faults {
    fn default() -> Self {
        Faults {
            seed: 0,
            rate_limit_per_second: None,
            error_rate: 0.0,
            latency_ms: 0,
            error_after_commit_rate: 0.0,
            webhook_duplicate_rate: 0.0,
            webhook_drop_rate: 0.0,
            webhook_reorder: false,
            webhook_delay_ms: 0,
            signature: SignatureScheme::VerifHash,
            webhook_retries: 3,
            webhook_retry_interval_ms: 30 * 60 * 1000,
            webhook_format: "v3".into(),
            redirect_status: "successful".into(),
            minute_ms: 100,
            refund_status: "completed".into(),
            refund_settle_after_ms: None,
            refund_final_status: "completed".into(),
            refund_webhooks: false,
            transfer_complete_after_ms: None,
            wallet_restricted: false,
            transfer_refusals: "later".into(),
            spend_limits: BTreeMap::new(),
            transfers_stay_new: false,
            transfer_list_ignores_reference: false,
            transfer_list_fail_from_page: None,
            transfer_event_type: true,
            throttle_next: 0,
            throttle_retry_after_s: 1,
        }
    }
}

fn decimal_texts<S: serde::Serializer>(m: &BTreeMap<String, Decimal>, s: S) -> Result<S::Ok, S::Error> {
    s.collect_map(m.iter().map(|(k, v)| (k, v.to_string())))
}

/// Counters for `GET /_emulator/stats`.
#[derive(Debug, Default)]
pub struct Stats {
    pub requests: HashMap<String, u64>,
    pub requests_total: u64,
    pub rate_limited: u64,
    pub errors_injected: u64,
    pub webhooks_sent: u64,
    pub webhooks_acked: u64,
    pub webhooks_dropped: u64,
    pub webhooks_duplicated: u64,
    current_second: i64,
    current_count: u64,
    pub max_requests_in_one_second: u64,
    /// When the last v3 requests arrived (ms), and when 429s were answered, for drills.
    pub arrivals: std::collections::VecDeque<i64>,
    pub limited_at: Vec<i64>,
}

/// How many arrival times are kept.
const ARRIVALS_KEPT: usize = 100_000;

impl Stats {
    /// Counts a v3 request; returns how many arrived in the current second so far.
    pub fn count(&mut self, endpoint: &str, now_ms: i64) -> u64 {
        *self.requests.entry(endpoint.to_string()).or_default() += 1;
        self.requests_total += 1;
        let second = now_ms.div_euclid(1000);
        if second != self.current_second {
            self.current_second = second;
            self.current_count = 0;
        }
        self.current_count += 1;
        self.max_requests_in_one_second = self.max_requests_in_one_second.max(self.current_count);
        if self.arrivals.len() == ARRIVALS_KEPT {
            self.arrivals.pop_front();
        }
        self.arrivals.push_back(now_ms);
        self.current_count
    }

    /// The largest number of requests that arrived within any window of one
    /// second (sliding, not only clock seconds), of those kept.
    pub fn max_in_any_second(&self) -> u64 {
        let (mut best, mut start) = (0usize, 0usize);
        for (end, t) in self.arrivals.iter().enumerate() {
            while self.arrivals[start] <= t - 1000 {
                start += 1;
            }
            best = best.max(end - start + 1);
        }
        best as u64
    }

    pub fn to_json(&self) -> Value {
        serde_json::json!({
            "requests": self.requests,
            "requests_total": self.requests_total,
            "rate_limited_429": self.rate_limited,
            "errors_injected": self.errors_injected,
            "webhooks_sent": self.webhooks_sent,
            "webhooks_acked": self.webhooks_acked,
            "webhooks_dropped": self.webhooks_dropped,
            "webhooks_duplicated": self.webhooks_duplicated,
            "max_requests_in_one_second": self.max_requests_in_one_second,
            "max_requests_in_any_second": self.max_in_any_second(),
        })
    }
}

#[derive(Debug, Clone)]
pub struct Payment {
    pub link_id: String,
    pub tx_ref: String,
    pub amount: Decimal,
    pub currency: String,
    pub redirect_url: String,
    pub customer_email: String,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub title: Option<String>,
    pub meta: Value,
    pub closed: bool,
}

#[derive(Debug, Clone)]
pub struct Txn {
    pub id: i64,
    pub tx_ref: String,
    pub flw_ref: String,
    pub amount: Decimal,
    /// What the customer paid: above `amount` when the customer bore the fee.
    pub charged_amount: Decimal,
    pub currency: String,
    pub app_fee: Decimal,
    /// `card`, `account`, `bank_transfer`, `ussd`, `mobilemoneygh`, `mpesa`.
    pub payment_type: String,
    pub status: String,
    pub processor_response: String,
    pub card: Option<TestCard>,
    pub customer_email: String,
    pub customer_name: Option<String>,
    pub customer_phone: Option<String>,
    pub meta: Value,
    pub created_ms: i64,
    pub refunded: Decimal,
}

/// A chargeback against a transaction (see `api::chargebacks`).
#[derive(Debug, Clone)]
pub struct Chargeback {
    pub id: i64,
    pub transaction_id: i64,
    pub tx_ref: String,
    pub flw_ref: String,
    pub amount: Decimal,
    pub currency: String,
    /// `initiated`, `accepted`, `declined`, `won`, `lost`.
    pub status: String,
    pub stage: String,
    pub comment: Option<String>,
    pub proof: Option<String>,
    pub due_ms: i64,
    pub created_ms: i64,
    pub history: Vec<serde_json::Value>,
}

/// A settlement the emulator made from successful transactions (see `api::settlements`).
#[derive(Debug, Clone)]
pub struct Settlement {
    pub id: i64,
    pub currency: String,
    pub created_ms: i64,
    pub lines: Vec<SettlementLine>,
    /// Refunds and chargebacks it nets: (id, amount).
    pub refunds: Vec<(i64, Decimal)>,
    pub chargebacks: Vec<(i64, Decimal)>,
}

#[derive(Debug, Clone)]
pub struct SettlementLine {
    pub transaction_id: i64,
    pub tx_ref: String,
    pub flw_ref: String,
    pub customer_email: String,
    pub payment_type: String,
    pub charged_amount: Decimal,
    /// Flutterwave's fee with its VAT.
    pub app_fee: Decimal,
    pub stampduty: Decimal,
    pub settlement_amount: Decimal,
    pub created_ms: i64,
}

#[derive(Debug, Clone)]
pub struct TestCard {
    pub number: &'static str,
    pub brand: &'static str,
    pub expiry: &'static str,
    /// `None` succeeds; `Some(reason)` declines.
    pub decline: Option<&'static str>,
}

/// The documented test cards (see the fact sheet, §8).
pub const TEST_CARDS: &[TestCard] = &[
    TestCard { number: "5531886652142950", brand: "MASTERCARD", expiry: "09/32", decline: None },
    TestCard { number: "5438898014560229", brand: "MASTERCARD", expiry: "10/31", decline: None },
    TestCard { number: "4187427415564246", brand: "VISA", expiry: "09/32", decline: None },
    TestCard { number: "5061460410120223210", brand: "VERVE", expiry: "10/31", decline: None },
    TestCard { number: "5258585922666506", brand: "MASTERCARD", expiry: "09/31", decline: Some("Insufficient funds") },
    TestCard {
        number: "5590131743294314",
        brand: "MASTERCARD",
        expiry: "11/32",
        decline: Some("Fraudulent transaction"),
    },
    TestCard { number: "5143010522339965", brand: "MASTERCARD", expiry: "08/32", decline: Some("Declined") },
    TestCard { number: "5399834697894723", brand: "MASTERCARD", expiry: "09/31", decline: Some("Incorrect PIN") },
];

#[derive(Debug, Clone)]
pub struct Transfer {
    pub id: i64,
    pub account_number: String,
    pub bank_code: String,
    pub bank_name: String,
    pub full_name: String,
    pub currency: String,
    pub debit_currency: String,
    pub amount: Decimal,
    pub fee: Decimal,
    pub status: String,
    pub reference: String,
    pub narration: String,
    pub complete_message: String,
    pub meta: Value,
    pub created_ms: i64,
    pub batch_id: Option<i64>,
    pub callback_url: Option<String>,
    pub retries: u32,
    /// Waits for someone to approve it on Flutterwave's dashboard.
    pub requires_approval: bool,
}

#[derive(Debug, Clone)]
pub struct Refund {
    pub id: i64,
    pub tx_id: i64,
    pub flw_ref: String,
    pub amount: Decimal,
    pub currency: String,
    pub status: String,
    pub comments: Option<String>,
    pub created_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Beneficiary {
    pub id: i64,
    pub account_number: String,
    pub bank_code: String,
    pub bank_name: String,
    pub full_name: String,
    pub created_ms: i64,
}

#[derive(Debug, Clone)]
pub struct Card {
    pub id: String,
    pub amount: Decimal,
    pub currency: String,
    pub pan: String,
    pub cvv: String,
    pub expiration: String,
    pub name_on_card: String,
    pub created_ms: i64,
    pub active: bool,
    pub blocked: bool,
    pub terminated: bool,
    pub callback_url: Option<String>,
    pub transactions: Vec<CardTxn>,
}

#[derive(Debug, Clone)]
pub struct CardTxn {
    pub id: i64,
    pub amount: Decimal,
    pub indicator: &'static str,
    pub narration: String,
    pub created_ms: i64,
    /// Why a debit was declined (it moved nothing); `None` when it went through.
    pub declined: Option<&'static str>,
}

#[derive(Debug, Default)]
pub struct Data {
    pub next_id: i64,
    pub payments: HashMap<String, Payment>,
    pub payment_by_ref: HashMap<String, String>,
    pub transactions: BTreeMap<i64, Txn>,
    pub refunds: BTreeMap<i64, Refund>,
    pub chargebacks: BTreeMap<i64, Chargeback>,
    pub settlements: BTreeMap<i64, Settlement>,
    /// Transactions in a settlement, or withheld from every one by a drill.
    pub settled: HashSet<i64>,
    /// Refunds and chargebacks a settlement has netted.
    pub netted_refunds: HashSet<i64>,
    pub netted_chargebacks: HashSet<i64>,
    /// Files sent to `POST /v3/upload_image`, by id: (content type, bytes).
    pub uploads: BTreeMap<i64, (String, Vec<u8>)>,
    pub transfers: BTreeMap<i64, Transfer>,
    pub transfer_refs: HashSet<String>,
    pub beneficiaries: BTreeMap<i64, Beneficiary>,
    pub cards: BTreeMap<String, Card>,
    /// currency → (available, ledger)
    pub balances: BTreeMap<String, (Decimal, Decimal)>,
}

impl Data {
    pub fn new() -> Self {
        let mut d = Data { next_id: 1_000_001, ..Default::default() };
        for (cur, amount) in [
            ("NGN", 50_000_000),
            ("USD", 1_000_000),
            ("GHS", 1_000_000),
            ("KES", 10_000_000),
            ("UGX", 100_000_000),
            ("ZAR", 1_000_000),
            ("EUR", 1_000_000),
            ("GBP", 1_000_000),
        ] {
            d.balances.insert(cur.into(), (Decimal::from(amount), Decimal::from(amount)));
        }
        d
    }

    pub fn id(&mut self) -> i64 {
        self.next_id += 1;
        self.next_id
    }

    /// Moves the available (and ledger) balance of `currency` by `delta`.
    pub fn adjust(&mut self, currency: &str, delta: Decimal) {
        let entry = self.balances.entry(currency.to_string()).or_insert((Decimal::ZERO, Decimal::ZERO));
        entry.0 += delta;
        entry.1 += delta;
    }

    pub fn available(&self, currency: &str) -> Decimal {
        self.balances.get(currency).map(|b| b.0).unwrap_or_default()
    }
}

/// Everything the handlers share.
pub struct State {
    pub secret_key: String,
    pub secret_hash: String,
    pub webhook_url: RwLock<Option<String>>,
    pub public_base: RwLock<String>,
    pub data: Mutex<Data>,
    pub faults: Mutex<(Faults, Rng)>,
    pub stats: Mutex<Stats>,
    pub outbox: Outbox,
    /// The emulator's time, which tests may move forward; settlements run on its timers.
    pub clock: Arc<crate::clock::Clock>,
}

pub type Shared = Arc<State>;

/// Locks a mutex, recovering the data if a panicking thread poisoned it:
/// the emulator keeps serving rather than failing every later request.
pub fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(|e| e.into_inner())
}

impl State {
    pub fn faults(&self) -> Faults {
        lock(&self.faults).0.clone()
    }

    pub fn chance(&self, pick: impl Fn(&Faults) -> f64) -> bool {
        let mut g = lock(&self.faults);
        let p = pick(&g.0);
        g.1.chance(p)
    }

    pub fn random_hex(&self, len: usize) -> String {
        lock(&self.faults).1.hex(len)
    }

    pub fn random_digits(&self, len: usize) -> String {
        lock(&self.faults).1.digits(len)
    }

    pub fn minute(&self) -> Duration {
        Duration::from_millis(lock(&self.faults).0.minute_ms)
    }

    pub fn base(&self) -> String {
        self.public_base.read().map(|b| b.clone()).unwrap_or_default()
    }
}
