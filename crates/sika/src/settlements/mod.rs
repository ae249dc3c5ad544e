//! Settlements, reconciled: a daily singleton job reads Flutterwave's
//! settlements and each new one's lines (within the outbound budget) and
//! stores them as sent; the discrepancies and the money report are worked out
//! on reading, from the records as they stand, by the rules in
//! `domain::settlement`.

pub mod workers;

use std::collections::BTreeMap;

use flutterwave::Reply;
use flutterwave::settlements::Settlement;
use rust_decimal::Decimal;

use crate::domain::Currency;
use crate::domain::settlement::{
    CurrencyReport, Discrepancy, Figure, SettledSums, Totals, days_between, judge_line, judge_totals,
};
use crate::store::{LineFacts, SettlementFacts, SettlementRow, Store, StoreError};

/// A paid checkout in no settlement after this many days is a discrepancy (`SIKA_SETTLEMENT_GRACE_DAYS`).
pub const DEFAULT_GRACE_DAYS: u32 = 3;
/// How far back the list is read, and discrepancies looked for.
pub const WINDOW_MS: i64 = 90 * DAY_MS;
/// Pages of the settlement list a pass reads at most.
pub const MAX_PAGES: u32 = 50;
/// Settlements whose lines one pass reads at most.
const LINES_PER_PASS: i64 = 200;
const DAY_MS: i64 = 86_400_000;

/// How a pass went.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Polled {
    pub seen: usize,
    pub new: usize,
    /// Settlements whose lines were read in this pass.
    pub lines_read: usize,
    /// Rows Sika could not take (a currency it does not know): logged, not stored.
    pub unreadable: usize,
    /// Every page and every settlement's lines were read.
    pub complete: bool,
}

#[derive(Debug, Clone)]
pub struct Settlements {
    store: Store,
    flw: flutterwave::Client,
    pub grace_days: u32,
    /// When this process last finished a complete pass (the job makes one a day).
    last_complete: std::sync::Arc<std::sync::atomic::AtomicI64>,
}

fn facts(s: &Settlement) -> Option<SettlementFacts> {
    let currency = Currency::parse(s.currency.trim())?;
    Some(SettlementFacts {
        id: s.id,
        status: s.status.chars().filter(|c| !c.is_control()).take(40).collect(),
        currency,
        totals: Totals {
            gross: s.gross_amount.decimal(),
            app_fee: s.app_fee.decimal(),
            merchant_fee: s.merchant_fee.decimal(),
            stampduty: s.stampduty_charge.decimal(),
            refund: s.refund.decimal(),
            chargeback: s.chargeback.decimal(),
            net: s.net_amount.decimal(),
        },
        transaction_count: s.transaction_count,
        transaction_ids: s.meta.iter().copied().take(100_000).collect(),
        refund_ids: s.refund_meta.iter().copied().take(10_000).collect(),
        chargeback_ids: s.chargeback_meta.iter().copied().take(10_000).collect(),
        settled_at: s.settled_at_ms(),
    })
}

fn bounded(s: &str, max: usize) -> String {
    s.chars().filter(|c| !c.is_control()).take(max).collect()
}

impl Settlements {
    pub fn new(store: Store, flw: flutterwave::Client) -> Self {
        Settlements { store, flw, grace_days: DEFAULT_GRACE_DAYS, last_complete: Default::default() }
    }

    /// Whether the daily pass is due: no complete pass in this process within a day.
    pub fn due(&self, now: i64) -> bool {
        let last = self.last_complete.load(std::sync::atomic::Ordering::Relaxed);
        last == 0 || now - last >= DAY_MS
    }

    /// Reads the list (the last 90 days, at most `max_pages` pages), records each settlement,
    /// then reads the lines of those whose lines are not in yet.
    pub async fn poll(&self, now: i64, max_pages: u32) -> Result<Polled, StoreError> {
        let flw = self.flw.polling();
        let from = crate::timefmt::date(now - WINDOW_MS);
        let mut polled = Polled { complete: true, ..Polled::default() };
        for page in 1..=max_pages.max(1) {
            let listed = match flw.list_settlements(Some(&from), None, page).await {
                Reply::Ok(p) => p,
                Reply::Rejected(e) => {
                    tracing::warn!(error = %e.message, "Flutterwave refused the settlement list");
                    polled.complete = false;
                    break;
                }
                Reply::Indefinite(why) => {
                    tracing::info!(%why, "the settlement list got no definite answer; next pass");
                    polled.complete = false;
                    break;
                }
            };
            for s in &listed.items {
                polled.seen += 1;
                match facts(s) {
                    Some(f) => polled.new += usize::from(self.store.record_settlement(&f).await?),
                    None => {
                        polled.unreadable += 1;
                        tracing::warn!(settlement = s.id, currency = %bounded(&s.currency, 8), "a settlement in a currency Sika does not know; not stored");
                    }
                }
            }
            let last = listed.page_info.and_then(|p| p.total_pages).is_none_or(|t| i64::from(page) >= t);
            if listed.items.is_empty() || last {
                break;
            }
            if page == max_pages.max(1) {
                polled.complete = false;
            }
        }
        for id in self.store.settlements_without_lines(LINES_PER_PASS).await? {
            match flw.settlement(id).await {
                Reply::Ok(s) => {
                    let lines: Vec<LineFacts> = s
                        .transactions
                        .iter()
                        .map(|l| LineFacts {
                            transaction_id: l.id,
                            tx_ref: bounded(&l.tx_ref, 100),
                            flw_ref: l.flw_ref.as_deref().map(|r| bounded(r, 100)),
                            amounts: crate::domain::settlement::LineAmounts {
                                charged: l.charged_amount.decimal(),
                                fees: l.app_fee.decimal() + l.merchant_fee.decimal() + l.stampduty_charge.decimal(),
                                settled: l.settlement_amount.decimal(),
                            },
                            status: l.status.as_deref().map(|s| bounded(s, 40)),
                            transaction_at: l.transaction_date.as_deref().and_then(flutterwave::iso_millis),
                        })
                        .collect();
                    if let Some(f) = facts(&s) {
                        self.store.record_settlement(&f).await?;
                    }
                    if self.store.record_settlement_lines(id, &lines).await? {
                        polled.lines_read += 1;
                    }
                }
                Reply::Rejected(e) => {
                    tracing::warn!(settlement = id, error = %e.message, "Flutterwave refused a settlement's lines");
                    polled.complete = false;
                }
                Reply::Indefinite(why) => {
                    tracing::info!(settlement = id, %why, "a settlement's lines got no definite answer; next pass");
                    polled.complete = false;
                    break;
                }
            }
        }
        if polled.complete {
            self.last_complete.store(now, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(polled)
    }

    /// Settlements counted in `[from, to)`, newest first.
    pub async fn listed(&self, from: i64, to: i64, limit: i64) -> Result<Vec<SettlementRow>, StoreError> {
        self.store.settlements_between(from, to, limit).await
    }

    /// One settlement, its lines, and what is wrong with it.
    pub async fn one(
        &self,
        id: i64,
    ) -> Result<Option<(SettlementRow, Vec<crate::store::LineRow>, Vec<Discrepancy>)>, StoreError> {
        let Some(s) = self.store.settlement(id).await? else { return Ok(None) };
        let at = s.counted_at();
        let found =
            self.settlement_discrepancies(at, at + 1).await?.into_iter().filter(|d| d.settlement_id() == Some(id));
        let lines = self.store.settlement_lines(id).await?;
        Ok(Some((s, lines, found.collect())))
    }

    /// Everything wrong with the settlements counted in `[from, to)`.
    async fn settlement_discrepancies(&self, from: i64, to: i64) -> Result<Vec<Discrepancy>, StoreError> {
        Ok(self.examine(from, to).await?.0.into_iter().map(|(_, d)| d).collect())
    }

    /// The discrepancies of settlements counted in `[from, to)` and their sums per currency.
    async fn examine(
        &self,
        from: i64,
        to: i64,
    ) -> Result<(Vec<(Currency, Discrepancy)>, BTreeMap<Currency, SettledSums>), StoreError> {
        let settlements = self.store.settlements_between(from, to, i64::MAX / 2).await?;
        let lines = self.store.settlement_lines_checked(from, to).await?;
        let mut found = Vec::new();
        let mut sums: BTreeMap<Currency, SettledSums> = BTreeMap::new();
        let mut lines_of: BTreeMap<i64, Vec<_>> = BTreeMap::new();
        for (l, k) in &lines {
            lines_of.entry(l.settlement_id).or_default().push((l, k));
        }
        // Every netted refund and chargeback looked up at once, not per settlement.
        let all_refunds: Vec<i64> = settlements.iter().flat_map(|s| s.facts.refund_ids.iter().copied()).collect();
        let all_chargebacks: Vec<i64> =
            settlements.iter().flat_map(|s| s.facts.chargeback_ids.iter().copied()).collect();
        let refunds = self.store.known_refunds(&all_refunds).await?;
        let chargebacks = self.store.known_chargebacks(&all_chargebacks).await?;
        let known = |ids: &[i64], of: &std::collections::HashMap<i64, Decimal>| -> Decimal {
            ids.iter().copied().collect::<std::collections::BTreeSet<_>>().iter().filter_map(|i| of.get(i)).sum()
        };
        for s in &settlements {
            let f = &s.facts;
            let mut wrong_here = Vec::new();
            let sum = sums.entry(f.currency).or_default();
            sum.net += f.totals.net;
            sum.expected_net += f.totals.expected_net();
            let mine = lines_of.get(&f.id).map(Vec::as_slice).unwrap_or_default();
            let charged = s.lines_at.map(|_| mine.iter().map(|(l, _)| l.facts.amounts.charged).sum::<Decimal>());
            wrong_here.extend(judge_totals(f.id, &f.totals, charged));
            if s.lines_at.is_some() {
                sum.gross_with_lines += f.totals.gross;
            }
            for (l, k) in mine {
                let a = &l.facts.amounts;
                sum.lines_charged += a.charged;
                sum.lines_fees += a.fees;
                sum.lines_settled += a.settled;
                sum.lines += 1;
                let wrong = judge_line(f.id, l.facts.transaction_id, &l.facts.tx_ref, a, k.as_ref());
                let matched = !wrong.iter().any(|d| matches!(d, Discrepancy::LineWithoutPayment { .. }));
                if let (true, Some(verified)) = (matched, k.as_ref().and_then(|k| k.verified_settled)) {
                    sum.matched_settled += a.settled;
                    sum.matched_verified += verified;
                }
                wrong_here.extend(wrong);
            }
            sum.refunds_netted += f.totals.refund;
            sum.refunds_known += known(&f.refund_ids, &refunds);
            sum.chargebacks_netted += f.totals.chargeback;
            sum.chargebacks_known += known(&f.chargeback_ids, &chargebacks);
            for id in f.refund_ids.iter().filter(|id| !refunds.contains_key(id)) {
                wrong_here.push(Discrepancy::UnknownRefund { settlement_id: f.id, refund_id: *id });
            }
            for id in f.chargeback_ids.iter().filter(|id| !chargebacks.contains_key(id)) {
                wrong_here.push(Discrepancy::UnknownChargeback { settlement_id: f.id, chargeback_id: *id });
            }
            if f.refund_ids.is_empty() && f.totals.refund != Decimal::ZERO {
                wrong_here.push(Discrepancy::NettedWithoutIds {
                    settlement_id: f.id,
                    what: "refunds",
                    amount: f.totals.refund,
                });
            }
            if f.chargeback_ids.is_empty() && f.totals.chargeback != Decimal::ZERO {
                wrong_here.push(Discrepancy::NettedWithoutIds {
                    settlement_id: f.id,
                    what: "chargebacks",
                    amount: f.totals.chargeback,
                });
            }
            found.extend(wrong_here.into_iter().map(|d| (f.currency, d)));
        }
        Ok((found, sums))
    }

    /// Paid checkouts in no settlement `grace_days` after payment, of those paid in `[from, now − grace)`.
    async fn not_settled(&self, now: i64, from: i64) -> Result<Vec<(Currency, Discrepancy)>, StoreError> {
        let grace = i64::from(self.grace_days) * DAY_MS;
        Ok(self
            .store
            .checkouts_not_settled(now - grace, i64::MAX)
            .await?
            .into_iter()
            .filter(|k| k.paid_at >= from)
            .map(|k| {
                let d = Discrepancy::NotSettled {
                    reference: k.reference,
                    currency: k.currency,
                    amount: k.paid,
                    paid_at: k.paid_at,
                    days: days_between(k.paid_at, now),
                };
                (k.currency, d)
            })
            .collect())
    }

    /// Everything wrong in the last 90 days: settlements, their lines, and payments not settled in time.
    pub async fn discrepancies(&self, now: i64) -> Result<Vec<Discrepancy>, StoreError> {
        let from = now - WINDOW_MS;
        let mut found = self.settlement_discrepancies(from, i64::MAX / 2).await?;
        found.extend(self.not_settled(now, from).await?.into_iter().map(|(_, d)| d));
        Ok(found)
    }

    /// The money report for `[from, to)`, one per currency that saw anything.
    pub async fn report(&self, now: i64, from: i64, to: i64) -> Result<Vec<CurrencyReport>, StoreError> {
        fn of(out: &mut BTreeMap<Currency, CurrencyReport>, c: Currency) -> &mut CurrencyReport {
            out.entry(c).or_insert_with(|| CurrencyReport::new(c))
        }
        let mut out = BTreeMap::new();
        for k in self.store.checkouts_paid_between(from, to).await? {
            of(&mut out, k.currency).collected.add(k.paid);
        }
        for m in self.store.refunds_completed_between(from, to).await? {
            of(&mut out, m.currency).refunded.add(m.amount);
        }
        for m in self.store.chargebacks_held_between(from, to).await? {
            of(&mut out, m.currency).charged_back.add(m.amount);
        }
        for m in self.store.payouts_paid_between(from, to).await? {
            of(&mut out, m.currency).paid_out.add(m.amount);
        }
        for s in self.store.settlements_between(from, to, i64::MAX / 2).await? {
            let r = of(&mut out, s.facts.currency);
            r.settled.add(s.facts.totals.net);
            r.netted_refunds += s.facts.totals.refund;
            r.netted_chargebacks += s.facts.totals.chargeback;
        }
        let (found, sums) = self.examine(from, to).await?;
        for (currency, sum) in &sums {
            let r = of(&mut out, *currency);
            r.fees = Figure { amount: sum.lines_fees, count: sum.lines };
            r.checks = sum.checks();
        }
        for k in self.store.checkouts_not_settled(to, to).await? {
            let r = of(&mut out, k.currency);
            match k.verified_settled {
                Some(a) => r.to_settle.add(a),
                None => r.to_settle_unknown += 1,
            }
        }
        let late = self.not_settled(to.min(now), from).await?;
        for (currency, _) in found.iter().chain(late.iter()) {
            of(&mut out, *currency).discrepancies += 1;
        }
        Ok(out.into_values().collect())
    }
}
