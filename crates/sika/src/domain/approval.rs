//! The life of money going out of the wallet (payouts, card loads, fundings
//! and withdrawals): awaiting approval → queued (all consent given) → sent,
//! under one maker-checker rule. Each kind of outgoing money is an
//! [`Outgoing`] and gets a proof type of its own, `Approved<Kind>`
//! (`payout::Approved`, `card::FundingApproved`), that only this module
//! builds and only its dispatcher accepts. A new kind (a chargeback answer, a
//! large refund) is one more `impl Outgoing`, not a copy of the rule.

use std::marker::PhantomData;

use rust_decimal::Decimal;

/// A kind of outgoing money under maker-checker consent.
pub trait Outgoing {
    type Status: Copy + PartialEq + std::fmt::Debug;
    /// Waiting for approvers.
    const AWAITING_APPROVAL: Self::Status;
    /// Every consent given; may be sent.
    const QUEUED: Self::Status;
}

/// Proof that a person has just typed a fresh step-up code. Only
/// `auth::FreshCode` is one: its fields are private to `auth`, and
/// `tests/suite/architecture.rs` keeps every other implementation out.
pub trait SteppedUp: Send + Sync {
    /// Who typed it.
    fn user_id(&self) -> &str;
}

/// Who approves: the person the fresh code proves, and whether their role
/// may approve this kind of money.
pub struct Approver<'a> {
    pub proof: &'a (dyn SteppedUp + Sync),
    pub may_approve: bool,
}

impl Approver<'_> {
    pub fn user_id(&self) -> &str {
        self.proof.user_id()
    }
}

/// What is known of one request when someone approves it (or before it is sent).
pub struct Pending<'a, K: Outgoing> {
    pub reference: &'a str,
    pub status: K::Status,
    /// The maker: a user id, or the API key's actor.
    pub created_by: &'a str,
    pub approved_by: &'a [String],
    /// Distinct approvers needed (see [`needed_from_stored`]).
    pub needed: usize,
}

impl<K: Outgoing> Clone for Pending<'_, K> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<K: Outgoing> Copy for Pending<'_, K> {}

/// Proof that a request of kind `K` has all the consent it needs. Fields are
/// private: [`approve`] and [`consent`] are the only makers.
pub struct Approved<K> {
    reference: super::Reference,
    approvers: Vec<String>,
    kind: PhantomData<fn() -> K>,
}

impl<K> std::fmt::Debug for Approved<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Approved").field("reference", &self.reference).field("approvers", &self.approvers).finish()
    }
}

impl<K> Clone for Approved<K> {
    fn clone(&self) -> Self {
        Self { reference: self.reference.clone(), approvers: self.approvers.clone(), kind: PhantomData }
    }
}

impl<K> Approved<K> {
    pub fn reference(&self) -> &super::Reference {
        &self.reference
    }
    pub fn approvers(&self) -> &[String] {
        &self.approvers
    }
}

/// What an approval decided.
pub enum Approval<K> {
    /// Recorded; another approver is still needed.
    Recorded {
        still_needed: usize,
    },
    /// Every consent is there.
    Complete(Approved<K>),
    Refused(&'static str),
}

impl<K> std::fmt::Debug for Approval<K> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Approval::Recorded { still_needed } => write!(f, "Recorded {{ still_needed: {still_needed} }}"),
            Approval::Complete(a) => write!(f, "Complete({a:?})"),
            Approval::Refused(why) => write!(f, "Refused({why:?})"),
        }
    }
}

/// The rule: an approver whose role may approve, proven by a fresh step-up
/// code, who did not make the request and has not approved it already, on a
/// request awaiting approval. `needed` distinct approvers complete it.
pub fn approve<K: Outgoing>(p: &Pending<'_, K>, who: &Approver<'_>) -> Approval<K> {
    if p.status != K::AWAITING_APPROVAL {
        return Approval::Refused("only a request awaiting approval can be approved");
    }
    if !who.may_approve {
        return Approval::Refused("your role cannot approve this");
    }
    let id = who.user_id();
    if id == p.created_by {
        return Approval::Refused("the person who created it cannot approve it");
    }
    if p.approved_by.iter().any(|a| a == id) {
        return Approval::Refused("you approved this already; another approver is needed");
    }
    let mut approvers = p.approved_by.to_vec();
    approvers.push(id.to_string());
    if approvers.len() >= p.needed.max(1) {
        Approval::Complete(Approved {
            reference: super::Reference::from_stored(p.reference.to_string()),
            approvers,
            kind: PhantomData,
        })
    } else {
        Approval::Recorded { still_needed: p.needed - approvers.len() }
    }
}

/// Before sending: the recorded approvals, checked again under the same rule
/// (queued, distinct approvers, none of them the maker, enough of them).
/// Something queued any other way — a bug, a hand-edited row — is not sent.
pub fn consent<K: Outgoing>(p: &Pending<'_, K>) -> Option<Approved<K>> {
    if p.status != K::QUEUED {
        return None;
    }
    let mut approvers: Vec<String> = Vec::new();
    for a in p.approved_by {
        if a == p.created_by || approvers.contains(a) {
            return None;
        }
        approvers.push(a.clone());
    }
    (approvers.len() >= p.needed.max(1)).then(|| Approved {
        reference: super::Reference::from_stored(p.reference.to_string()),
        approvers,
        kind: PhantomData,
    })
}

/// How many approvers a movement of `amount` needs, from the currency's
/// "two approvers above" setting: none set, one; set, two above it; a
/// setting that does not read as an amount, two — never fewer than meant.
pub fn approvers_needed(amount: Decimal, two_above: Option<&str>) -> usize {
    match two_above.map(str::trim) {
        None | Some("") => 1,
        Some(t) => match t.parse::<Decimal>() {
            Ok(t) if amount <= t => 1,
            _ => 2,
        },
    }
}

/// The approvers needed as stored on a request: a count that does not make
/// sense (zero, negative) means two, never one.
pub fn needed_from_stored(n: i64) -> usize {
    match usize::try_from(n) {
        Ok(n) if n >= 1 => n,
        _ => 2,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    struct Code(&'static str);
    impl SteppedUp for Code {
        fn user_id(&self) -> &str {
            self.0
        }
    }

    struct Thing;
    #[derive(Clone, Copy, PartialEq, Debug)]
    enum S {
        Waiting,
        Queued,
        Sent,
    }
    impl Outgoing for Thing {
        type Status = S;
        const AWAITING_APPROVAL: S = S::Waiting;
        const QUEUED: S = S::Queued;
    }

    fn pending<'a>(status: S, approved_by: &'a [String], needed: usize) -> Pending<'a, Thing> {
        Pending { reference: "r-1", status, created_by: "maker", approved_by, needed }
    }

    #[test]
    fn the_rule_for_every_kind_of_outgoing_money() {
        let (maker, checker, c2) = (Code("maker"), Code("checker"), Code("c2"));
        let p = pending(S::Waiting, &[], 1);
        assert!(matches!(approve(&p, &Approver { proof: &maker, may_approve: true }), Approval::Refused(_)));
        assert!(matches!(approve(&p, &Approver { proof: &checker, may_approve: false }), Approval::Refused(_)));
        let Approval::Complete(a) = approve(&p, &Approver { proof: &checker, may_approve: true }) else {
            panic!("one approver suffices")
        };
        assert_eq!((a.reference().as_str(), a.approvers()), ("r-1", &["checker".to_string()][..]));
        let two = pending(S::Waiting, &[], 2);
        assert!(matches!(
            approve(&two, &Approver { proof: &checker, may_approve: true }),
            Approval::Recorded { still_needed: 1 }
        ));
        let first = ["checker".to_string()];
        let second = pending(S::Waiting, &first, 2);
        assert!(matches!(approve(&second, &Approver { proof: &checker, may_approve: true }), Approval::Refused(_)));
        assert!(matches!(approve(&second, &Approver { proof: &c2, may_approve: true }), Approval::Complete(_)));
        for s in [S::Queued, S::Sent] {
            let done = pending(s, &[], 1);
            assert!(matches!(approve(&done, &Approver { proof: &checker, may_approve: true }), Approval::Refused(_)));
        }
    }

    #[test]
    fn consent_is_checked_again_before_sending() {
        let by_checker = ["checker".to_string()];
        assert!(consent(&pending(S::Queued, &by_checker, 1)).is_some());
        assert!(consent(&pending(S::Waiting, &by_checker, 1)).is_none(), "not queued");
        assert!(consent(&pending(S::Sent, &by_checker, 1)).is_none(), "already sent");
        assert!(consent(&pending(S::Queued, &[], 1)).is_none(), "queued without approvals");
        assert!(consent(&pending(S::Queued, &["maker".to_string()], 1)).is_none(), "approved by its maker");
        assert!(consent(&pending(S::Queued, &by_checker, 2)).is_none(), "one of two");
        let twice = ["checker".to_string(), "checker".to_string()];
        assert!(consent(&pending(S::Queued, &twice, 2)).is_none(), "one person twice");
    }

    #[test]
    fn an_unreadable_threshold_or_count_means_two_approvers() {
        let d = |s: &str| s.parse::<Decimal>().unwrap();
        assert_eq!(approvers_needed(d("5000000"), None), 1);
        assert_eq!(approvers_needed(d("5000000"), Some("")), 1);
        assert_eq!(approvers_needed(d("100"), Some("100")), 1);
        assert_eq!(approvers_needed(d("100.01"), Some("100")), 2);
        assert_eq!(approvers_needed(d("1"), Some("one hundred")), 2);
        assert_eq!(approvers_needed(d("1"), Some("1,000")), 2);
        assert_eq!(needed_from_stored(1), 1);
        assert_eq!(needed_from_stored(2), 2);
        assert_eq!(needed_from_stored(0), 2);
        assert_eq!(needed_from_stored(-1), 2);
    }
}
