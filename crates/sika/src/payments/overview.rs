//! The overview a payments team opens first: per currency, what was
//! collected and refunded in a period, how often payments succeed, what waits
//! for a person, and whether webhooks and the shop's notifications flow.

use std::collections::BTreeMap;

use rust_decimal::Decimal;

use crate::domain::{CheckoutStatus, Currency};
use crate::store::{Health, StoreError, now_ms};

use super::Payments;

/// The periods the overview offers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Period {
    Today,
    Week,
    Month,
}

impl Period {
    pub const ALL: [Period; 3] = [Period::Today, Period::Week, Period::Month];

    pub fn parse(s: &str) -> Period {
        match s {
            "7d" => Period::Week,
            "30d" => Period::Month,
            _ => Period::Today,
        }
    }

    pub fn id(self) -> &'static str {
        match self {
            Period::Today => "today",
            Period::Week => "7d",
            Period::Month => "30d",
        }
    }

    pub fn label(self) -> &'static str {
        match self {
            Period::Today => "Today",
            Period::Week => "7 days",
            Period::Month => "30 days",
        }
    }

    /// (start, bucket length, bucket count): hours today, days otherwise,
    /// with days starting at midnight in `offset_ms` (the console's zone).
    pub fn buckets(self, now: i64, offset_ms: i64) -> (i64, i64, usize) {
        const DAY: i64 = 86_400_000;
        let midnight = (now + offset_ms).div_euclid(DAY) * DAY - offset_ms;
        match self {
            Period::Today => (midnight, 3_600_000, 24),
            Period::Week => (midnight - 6 * DAY, DAY, 7),
            Period::Month => (midnight - 29 * DAY, DAY, 30),
        }
    }
}

/// One currency's figures for the period.
#[derive(Debug, Clone, PartialEq)]
pub struct CurrencyFigures {
    pub currency: Currency,
    pub collected: Decimal,
    pub paid_count: i64,
    pub created_count: i64,
    /// Paid among the period's payments that closed (paid, under review, failed or cancelled), in tenths of a percent.
    pub success_permille: Option<i64>,
    pub refunded: Decimal,
    pub pending: i64,
    pub needs_review: i64,
    /// What was collected in each bucket of the period.
    pub series: Vec<Decimal>,
}

#[derive(Debug, Clone)]
pub struct Overview {
    pub period: Period,
    /// Start of the period and the length of one bucket (ms).
    pub start: i64,
    pub bucket_ms: i64,
    pub currencies: Vec<CurrencyFigures>,
    pub health: Health,
}

impl Payments {
    /// The overview for `period`, with days in the zone `offset_ms` from UTC.
    pub async fn overview(&self, period: Period, offset_ms: i64) -> Result<Overview, StoreError> {
        let (start, bucket_ms, buckets) = period.buckets(now_ms(), offset_ms);
        let f = self.store.overview_figures(start).await?;
        let health = self.store.overview_health(start).await?;
        let mut by: BTreeMap<Currency, CurrencyFigures> = BTreeMap::new();
        let entry = |by: &mut BTreeMap<Currency, CurrencyFigures>, c: Currency| {
            by.entry(c)
                .or_insert_with(|| CurrencyFigures {
                    currency: c,
                    collected: Decimal::ZERO,
                    paid_count: 0,
                    created_count: 0,
                    success_permille: None,
                    refunded: Decimal::ZERO,
                    pending: 0,
                    needs_review: 0,
                    series: vec![Decimal::ZERO; buckets],
                })
                .currency
        };
        for (c, amount, at) in &f.paid {
            entry(&mut by, *c);
            let Some(fig) = by.get_mut(c) else { continue };
            fig.collected += amount;
            fig.paid_count += 1;
            let i = usize::try_from((at - start).div_euclid(bucket_ms)).unwrap_or(0).min(buckets - 1);
            fig.series[i] += amount;
        }
        let mut closed: BTreeMap<Currency, (i64, i64)> = BTreeMap::new();
        for (c, status, n) in &f.created {
            entry(&mut by, *c);
            if let Some(fig) = by.get_mut(c) {
                fig.created_count += n;
            }
            let (paid, all) = closed.entry(*c).or_default();
            match status {
                CheckoutStatus::Paid => {
                    *paid += n;
                    *all += n;
                }
                CheckoutStatus::Pending => {}
                _ => *all += n,
            }
        }
        for (c, amount) in &f.refunded {
            entry(&mut by, *c);
            if let Some(fig) = by.get_mut(c) {
                fig.refunded += amount;
            }
        }
        for (c, status, n) in &f.open {
            entry(&mut by, *c);
            if let Some(fig) = by.get_mut(c) {
                match status {
                    CheckoutStatus::Pending => fig.pending += n,
                    CheckoutStatus::NeedsReview => fig.needs_review += n,
                    _ => {}
                }
            }
        }
        for (c, (paid, all)) in closed {
            if let Some(fig) = by.get_mut(&c)
                && all > 0
            {
                fig.success_permille = Some(paid * 1000 / all);
            }
        }
        Ok(Overview { period, start, bucket_ms, currencies: by.into_values().collect(), health })
    }
}

#[cfg(test)]
mod tests {
    use super::Period;

    #[test]
    fn periods_start_at_local_midnight() {
        const DAY: i64 = 86_400_000;
        let now = 1_795_000_000_000; // 2026-11-18 11:06:40 UTC
        let (start, bucket, n) = Period::Today.buckets(now, 0);
        assert_eq!((start, bucket, n), (now - now % DAY, 3_600_000, 24));
        // 23:30 UTC is already tomorrow in Nairobi (UTC+3).
        let late = now - now % DAY + 23 * 3_600_000 + 1_800_000;
        let (start, _, _) = Period::Today.buckets(late, 3 * 3_600_000);
        assert_eq!(start, late - late % DAY + DAY - 3 * 3_600_000);
        let (start, bucket, n) = Period::Month.buckets(now, 0);
        assert_eq!((now - start) / DAY, 29);
        assert_eq!((bucket, n), (DAY, 30));
        assert_eq!(Period::parse("junk"), Period::Today);
    }
}
