//! Reconciling Flutterwave's settlements with Sika's records: what is wrong
//! with a settlement, a line, or a paid checkout, said once here. Every figure
//! is Flutterwave's (a settlement's totals and lines, verify's
//! `amount_settled`) or Sika's own (checkouts, refunds, chargebacks); nothing
//! is estimated — a number that is not known is reported as not known.

use rust_decimal::Decimal;

use super::{CheckoutStatus, Currency};

/// A settlement's totals, as Flutterwave sent them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Totals {
    pub gross: Decimal,
    pub app_fee: Decimal,
    pub merchant_fee: Decimal,
    pub stampduty: Decimal,
    pub refund: Decimal,
    pub chargeback: Decimal,
    pub net: Decimal,
}

impl Totals {
    /// Everything Flutterwave kept as fees.
    pub fn fees(&self) -> Decimal {
        self.app_fee + self.merchant_fee + self.stampduty
    }

    /// What the net should be from the other totals.
    pub fn expected_net(&self) -> Decimal {
        self.gross - self.fees() - self.refund - self.chargeback
    }
}

/// One line of a settlement, as Flutterwave sent it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineAmounts {
    pub charged: Decimal,
    pub fees: Decimal,
    pub settled: Decimal,
}

/// The checkout a line's `tx_ref` names, as Sika knows it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineCheckout {
    pub reference: String,
    pub status: CheckoutStatus,
    pub transaction_id: Option<i64>,
    /// Verify's `amount_settled`, when Flutterwave said it.
    pub verified_settled: Option<Decimal>,
}

/// What is wrong, each with what a person needs to look it up.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Discrepancy {
    /// A settled transaction with no paid checkout of Sika's behind it.
    LineWithoutPayment { settlement_id: i64, transaction_id: i64, tx_ref: String, why: &'static str },
    /// A paid checkout in no settlement after the grace period.
    NotSettled { reference: String, currency: Currency, amount: Decimal, paid_at: i64, days: i64 },
    /// A line settled another amount than Flutterwave's verify record says.
    AmountDiffers { settlement_id: i64, transaction_id: i64, reference: String, settled: Decimal, verified: Decimal },
    /// A refund netted that Sika did not make (or does not know was completed).
    UnknownRefund { settlement_id: i64, refund_id: i64 },
    /// A chargeback netted that Sika has not seen.
    UnknownChargeback { settlement_id: i64, chargeback_id: i64 },
    /// Refunds or chargebacks netted without saying which.
    NettedWithoutIds { settlement_id: i64, what: &'static str, amount: Decimal },
    /// The settlement's own totals do not give its net.
    TotalsDoNotAddUp { settlement_id: i64, net: Decimal, expected: Decimal },
    /// Its lines' charged amounts do not give its gross (read only when its lines are in).
    LinesDoNotAddUp { settlement_id: i64, gross: Decimal, lines: Decimal },
    /// A line whose fees and settled amount do not give what was charged.
    LineDoesNotAddUp { settlement_id: i64, transaction_id: i64, charged: Decimal, parts: Decimal },
}

impl Discrepancy {
    /// A short stable name (CSV, filters, metrics).
    pub fn kind(&self) -> &'static str {
        match self {
            Self::LineWithoutPayment { .. } => "line_without_payment",
            Self::NotSettled { .. } => "not_settled",
            Self::AmountDiffers { .. } => "amount_differs",
            Self::UnknownRefund { .. } => "unknown_refund",
            Self::UnknownChargeback { .. } => "unknown_chargeback",
            Self::NettedWithoutIds { .. } => "netted_without_ids",
            Self::TotalsDoNotAddUp { .. } => "totals_do_not_add_up",
            Self::LinesDoNotAddUp { .. } => "lines_do_not_add_up",
            Self::LineDoesNotAddUp { .. } => "line_does_not_add_up",
        }
    }

    /// The settlement it concerns, if one.
    pub fn settlement_id(&self) -> Option<i64> {
        match self {
            Self::NotSettled { .. } => None,
            Self::LineWithoutPayment { settlement_id, .. }
            | Self::AmountDiffers { settlement_id, .. }
            | Self::UnknownRefund { settlement_id, .. }
            | Self::UnknownChargeback { settlement_id, .. }
            | Self::NettedWithoutIds { settlement_id, .. }
            | Self::TotalsDoNotAddUp { settlement_id, .. }
            | Self::LinesDoNotAddUp { settlement_id, .. }
            | Self::LineDoesNotAddUp { settlement_id, .. } => Some(*settlement_id),
        }
    }

    /// The checkout it concerns, if one.
    pub fn reference(&self) -> Option<&str> {
        match self {
            Self::NotSettled { reference, .. } | Self::AmountDiffers { reference, .. } => Some(reference),
            _ => None,
        }
    }

    /// What is wrong, in words for the finance team.
    pub fn describe(&self) -> String {
        match self {
            Self::LineWithoutPayment { transaction_id, tx_ref, why, .. } => {
                format!("transaction {transaction_id} (tx_ref {tx_ref}) was settled, but {why}")
            }
            Self::NotSettled { amount, currency, days, .. } => {
                format!("paid {amount} {} {days} days ago and in no settlement yet", currency.code())
            }
            Self::AmountDiffers { transaction_id, settled, verified, .. } => format!(
                "transaction {transaction_id} settled {settled}, but Flutterwave's verify record says {verified} (difference {})",
                *settled - *verified
            ),
            Self::UnknownRefund { refund_id, .. } => {
                format!("refund {refund_id} was netted, but Sika made no completed refund with that id")
            }
            Self::UnknownChargeback { chargeback_id, .. } => {
                format!("chargeback {chargeback_id} was netted, but Sika has not seen that chargeback")
            }
            Self::NettedWithoutIds { what, amount, .. } => format!("{amount} of {what} netted without saying which"),
            Self::TotalsDoNotAddUp { net, expected, .. } => format!(
                "net {net}, but gross less fees, refunds and chargebacks is {expected} (difference {})",
                *net - *expected
            ),
            Self::LinesDoNotAddUp { gross, lines, .. } => {
                format!("gross {gross}, but its lines add up to {lines} (difference {})", *gross - *lines)
            }
            Self::LineDoesNotAddUp { transaction_id, charged, parts, .. } => format!(
                "transaction {transaction_id} charged {charged}, but its fees and settled amount add up to {parts}"
            ),
        }
    }
}

/// What is wrong with one line against the checkout its `tx_ref` names.
pub fn judge_line(
    settlement_id: i64,
    transaction_id: i64,
    tx_ref: &str,
    amounts: &LineAmounts,
    checkout: Option<&LineCheckout>,
) -> Vec<Discrepancy> {
    let mut found = Vec::new();
    if amounts.fees + amounts.settled != amounts.charged {
        found.push(Discrepancy::LineDoesNotAddUp {
            settlement_id,
            transaction_id,
            charged: amounts.charged,
            parts: amounts.fees + amounts.settled,
        });
    }
    let without =
        |why| Discrepancy::LineWithoutPayment { settlement_id, transaction_id, tx_ref: tx_ref.to_string(), why };
    let Some(k) = checkout else {
        found.push(without("no checkout of Sika's has that reference"));
        return found;
    };
    if k.status != CheckoutStatus::Paid {
        found.push(without("its checkout is not paid"));
        return found;
    }
    if k.transaction_id != Some(transaction_id) {
        found.push(without("its checkout was paid by another transaction"));
        return found;
    }
    if let Some(verified) = k.verified_settled
        && verified != amounts.settled
    {
        found.push(Discrepancy::AmountDiffers {
            settlement_id,
            transaction_id,
            reference: k.reference.clone(),
            settled: amounts.settled,
            verified,
        });
    }
    found
}

/// What is wrong with a settlement's own totals; `lines` is its lines' charged total once they are read.
pub fn judge_totals(settlement_id: i64, t: &Totals, lines: Option<Decimal>) -> Vec<Discrepancy> {
    let mut found = Vec::new();
    if t.net != t.expected_net() {
        found.push(Discrepancy::TotalsDoNotAddUp { settlement_id, net: t.net, expected: t.expected_net() });
    }
    if let Some(lines) = lines
        && lines != t.gross
    {
        found.push(Discrepancy::LinesDoNotAddUp { settlement_id, gross: t.gross, lines });
    }
    found
}

/// A sum and how many made it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Figure {
    pub amount: Decimal,
    pub count: i64,
}

impl Figure {
    pub fn add(&mut self, amount: Decimal) {
        self.amount += amount;
        self.count += 1;
    }
}

/// Two figures recorded apart that must be equal; shown whether they are or not.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Check {
    pub what: &'static str,
    pub left: Decimal,
    pub right: Decimal,
}

impl Check {
    pub fn holds(&self) -> bool {
        self.left == self.right
    }

    pub fn difference(&self) -> Decimal {
        self.left - self.right
    }
}

/// One currency's money over a period. Each figure is a sum of records, never an estimate.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct CurrencyReport {
    pub currency: Currency,
    /// Checkouts paid (verified) in the period: what customers paid.
    pub collected: Figure,
    /// Refunds completed in the period.
    pub refunded: Figure,
    /// Chargebacks opened in the period and not won.
    pub charged_back: Figure,
    /// Flutterwave's fees and stamp duty on the lines of the period's settlements.
    pub fees: Figure,
    /// The period's settlements: their net, as paid to the bank (count: settlements).
    pub settled: Figure,
    /// What the period's settlements netted for refunds and chargebacks.
    pub netted_refunds: Decimal,
    pub netted_chargebacks: Decimal,
    /// Paid by the period's end and in no settlement by then: verify's `amount_settled` of each.
    pub to_settle: Figure,
    /// Of those, how many have no `amount_settled` from Flutterwave (not counted in the sum).
    pub to_settle_unknown: i64,
    /// Payouts Flutterwave paid in the period.
    pub paid_out: Figure,
    /// What must agree; a check that does not hold is shown as such.
    pub checks: Vec<Check>,
    /// Discrepancies found in the period's settlements and payments.
    pub discrepancies: i64,
}

impl CurrencyReport {
    pub fn new(currency: Currency) -> Self {
        CurrencyReport {
            currency,
            collected: Figure::default(),
            refunded: Figure::default(),
            charged_back: Figure::default(),
            fees: Figure::default(),
            settled: Figure::default(),
            netted_refunds: Decimal::ZERO,
            netted_chargebacks: Decimal::ZERO,
            to_settle: Figure::default(),
            to_settle_unknown: 0,
            paid_out: Figure::default(),
            checks: Vec::new(),
            discrepancies: 0,
        }
    }

    /// Everything agrees and nothing is reported wrong.
    pub fn adds_up(&self) -> bool {
        self.discrepancies == 0 && self.checks.iter().all(Check::holds)
    }
}

/// What the period's settlements of one currency sum to, from their totals and their lines.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct SettledSums {
    pub net: Decimal,
    pub expected_net: Decimal,
    /// Of settlements whose lines are in: their gross, and their lines' charged, fees and settled.
    pub gross_with_lines: Decimal,
    pub lines_charged: Decimal,
    pub lines_fees: Decimal,
    pub lines_settled: Decimal,
    pub lines: i64,
    /// Of lines matched to a paid checkout with a verify figure: the line's and verify's settled amounts.
    pub matched_settled: Decimal,
    pub matched_verified: Decimal,
    /// Refunds and chargebacks netted, and what Sika's own records of the netted ids add up to.
    pub refunds_netted: Decimal,
    pub refunds_known: Decimal,
    pub chargebacks_netted: Decimal,
    pub chargebacks_known: Decimal,
}

impl SettledSums {
    /// The equalities that make a period's settlements add up.
    pub fn checks(&self) -> Vec<Check> {
        vec![
            Check {
                what: "Settlements' net = gross − fees − refunds − chargebacks (Flutterwave's totals)",
                left: self.net,
                right: self.expected_net,
            },
            Check {
                what: "Settlements' gross = the amounts charged on their lines",
                left: self.gross_with_lines,
                right: self.lines_charged,
            },
            Check {
                what: "Lines' settled amounts = charged − fees",
                left: self.lines_settled,
                right: self.lines_charged - self.lines_fees,
            },
            Check {
                what: "Lines' settled amounts = Flutterwave's verify records of Sika's payments",
                left: self.matched_settled,
                right: self.matched_verified,
            },
            Check {
                what: "Refunds netted = Sika's completed refunds with those ids",
                left: self.refunds_netted,
                right: self.refunds_known,
            },
            Check {
                what: "Chargebacks netted = Sika's chargebacks with those ids",
                left: self.chargebacks_netted,
                right: self.chargebacks_known,
            },
        ]
    }
}

/// Whole days between two instants (ms), rounded down.
pub fn days_between(from_ms: i64, to_ms: i64) -> i64 {
    (to_ms - from_ms).div_euclid(86_400_000)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn d(n: i64) -> Decimal {
        Decimal::from(n)
    }

    fn paid(tx: i64, verified: Option<i64>) -> LineCheckout {
        LineCheckout {
            reference: "order-1".into(),
            status: CheckoutStatus::Paid,
            transaction_id: Some(tx),
            verified_settled: verified.map(d),
        }
    }

    #[test]
    fn a_clean_line_reports_nothing_and_each_fault_is_named() {
        let ok = LineAmounts { charged: d(1000), fees: d(14), settled: d(986) };
        assert!(judge_line(1, 7, "order-1", &ok, Some(&paid(7, Some(986)))).is_empty());
        assert!(judge_line(1, 7, "order-1", &ok, Some(&paid(7, None))).is_empty(), "no verify figure, no guess");
        let kinds = |v: Vec<Discrepancy>| v.iter().map(Discrepancy::kind).collect::<Vec<_>>();
        assert_eq!(kinds(judge_line(1, 7, "x", &ok, None)), ["line_without_payment"]);
        assert_eq!(kinds(judge_line(1, 7, "order-1", &ok, Some(&paid(8, Some(986))))), ["line_without_payment"]);
        let review = LineCheckout { status: CheckoutStatus::NeedsReview, ..paid(7, None) };
        assert_eq!(kinds(judge_line(1, 7, "order-1", &ok, Some(&review))), ["line_without_payment"]);
        let less = LineAmounts { charged: d(1000), fees: d(15), settled: d(985) };
        let found = judge_line(1, 7, "order-1", &less, Some(&paid(7, Some(986))));
        assert_eq!(kinds(found.clone()), ["amount_differs"]);
        assert!(found[0].describe().contains("difference -1"), "{}", found[0].describe());
        let broken = LineAmounts { charged: d(1000), fees: d(14), settled: d(980) };
        assert_eq!(kinds(judge_line(1, 7, "order-1", &broken, Some(&paid(7, Some(980))))), ["line_does_not_add_up"]);
    }

    #[test]
    fn totals_must_give_the_net_and_lines_the_gross() {
        let t = Totals {
            gross: d(30620),
            app_fee: d(620),
            merchant_fee: d(0),
            stampduty: d(0),
            refund: d(20114),
            chargeback: d(0),
            net: d(9886),
        };
        assert!(judge_totals(1, &t, Some(d(30620))).is_empty(), "the fact sheet's sample adds up");
        assert!(judge_totals(1, &t, None).is_empty());
        assert_eq!(judge_totals(1, &Totals { net: d(9887), ..t.clone() }, None)[0].kind(), "totals_do_not_add_up");
        assert_eq!(judge_totals(1, &t, Some(d(30000)))[0].kind(), "lines_do_not_add_up");
        assert_eq!(days_between(0, 3 * 86_400_000 - 1), 2);
    }
}
