//! The maker-checker rule, one for everything that moves money out of the
//! wallet (payouts, card funding and withdrawals). Each capability wraps it
//! in a proof type of its own (`payout::Approved`, `card::FundingApproved`)
//! that only its wrapper can build, and only that proof can be sent.

/// Who approves, and how: an approver's identity and the proof that they
/// just passed a step-up code (made by `auth`, held opaque here).
#[derive(Debug, Clone)]
pub struct Approver {
    pub user_id: String,
    pub may_approve: bool,
    pub stepped_up: bool,
}

/// The consent recorded so far on one request.
#[derive(Debug, Clone, Copy)]
pub struct Consents<'a> {
    /// The maker: a user id, or the API key's actor.
    pub created_by: &'a str,
    pub approved_by: &'a [String],
    /// Distinct approvers needed (at least one).
    pub needed: usize,
}

/// What an approval decided.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Decision {
    /// Recorded; another approver is still needed.
    Recorded {
        still_needed: usize,
    },
    /// Every consent is there: these approvers.
    Complete(Vec<String>),
    Refused(&'static str),
}

/// An approver with the right role, who passed a fresh step-up code, who did
/// not make the request and has not approved it already, on a request
/// awaiting approval. `needed` distinct approvers complete it.
pub fn decide(awaiting_approval: bool, c: &Consents<'_>, who: &Approver) -> Decision {
    if !awaiting_approval {
        return Decision::Refused("only a request awaiting approval can be approved");
    }
    if !who.may_approve {
        return Decision::Refused("your role cannot approve this");
    }
    if !who.stepped_up {
        return Decision::Refused("a fresh authenticator code is needed");
    }
    if who.user_id == c.created_by {
        return Decision::Refused("the person who created it cannot approve it");
    }
    if c.approved_by.contains(&who.user_id) {
        return Decision::Refused("you approved this already; another approver is needed");
    }
    let mut approvers = c.approved_by.to_vec();
    approvers.push(who.user_id.clone());
    if approvers.len() >= c.needed.max(1) {
        Decision::Complete(approvers)
    } else {
        Decision::Recorded { still_needed: c.needed - approvers.len() }
    }
}

/// Before sending: the recorded approvals, checked again under the same rule
/// (distinct approvers, none of them the maker, enough of them). Something
/// queued any other way — a bug, a hand-edited row — is not sent.
pub fn recheck(queued: bool, c: &Consents<'_>) -> Option<Vec<String>> {
    if !queued {
        return None;
    }
    let mut approvers: Vec<String> = Vec::new();
    for a in c.approved_by {
        if *a == c.created_by || approvers.contains(a) {
            return None;
        }
        approvers.push(a.clone());
    }
    (approvers.len() >= c.needed.max(1)).then_some(approvers)
}
