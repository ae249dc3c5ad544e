//! Roles, with least privilege: each route names the roles it admits.

use std::fmt;

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Role {
    /// Users, API keys, settings.
    Admin,
    /// Creates checkouts and payouts.
    Operator,
    /// Approves what someone else created.
    Approver,
    /// Reads.
    Viewer,
    /// The audit log only.
    Auditor,
}

impl Role {
    pub const ALL: [Role; 5] = [Role::Admin, Role::Operator, Role::Approver, Role::Viewer, Role::Auditor];

    pub fn parse(s: &str) -> Option<Role> {
        Some(match s {
            "admin" => Role::Admin,
            "operator" => Role::Operator,
            "approver" => Role::Approver,
            "viewer" => Role::Viewer,
            "auditor" => Role::Auditor,
            _ => return None,
        })
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Operator => "operator",
            Role::Approver => "approver",
            Role::Viewer => "viewer",
            Role::Auditor => "auditor",
        }
    }
}

impl fmt::Display for Role {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Who may do what. Routes check these on the server, every time.
pub mod may {
    use super::Role::{self, *};

    pub const SIGN_IN: &[Role] = &[Admin, Operator, Approver, Viewer, Auditor];
    pub const MANAGE_USERS: &[Role] = &[Admin];
    pub const MANAGE_API_KEYS: &[Role] = &[Admin];
    pub const READ_AUDIT: &[Role] = &[Admin, Auditor];
    pub const READ_PAYMENTS: &[Role] = &[Admin, Operator, Approver, Viewer];
    pub const CREATE_PAYMENTS: &[Role] = &[Operator];
    pub const MANAGE_SETTINGS: &[Role] = &[Admin];
    pub const REFUND: &[Role] = &[Approver];
    pub const READ_PAYOUTS: &[Role] = &[Admin, Operator, Approver, Viewer];
    pub const CREATE_PAYOUTS: &[Role] = &[Operator];
    pub const APPROVE_PAYOUTS: &[Role] = &[Approver];
    /// Seeing a full account number (audited).
    pub const REVEAL_ACCOUNTS: &[Role] = &[Operator, Approver];
    /// Virtual cards (only when they are on).
    pub const READ_CARDS: &[Role] = &[Admin, Operator, Approver, Viewer];
    /// Block, unblock, terminate; ask for a funding or withdrawal.
    pub const MANAGE_CARDS: &[Role] = &[Operator];
    /// Consent to a card's load, funding or withdrawal (maker-checker).
    pub const APPROVE_CARD_FUNDING: &[Role] = &[Approver];
    /// Seeing a card's full number and CVV, live from Flutterwave, after a
    /// fresh code (audited; never stored, logged or cached).
    pub const REVEAL_CARDS: &[Role] = &[Operator];
    /// Prepare a chargeback's answer (accept, or decline with evidence).
    pub const ANSWER_CHARGEBACKS: &[Role] = &[Operator];
    /// Send a prepared answer, with a fresh code (maker-checker).
    pub const APPROVE_CHARGEBACK_ANSWERS: &[Role] = &[Approver];
    /// Open an answer's evidence file (audited).
    pub const READ_EVIDENCE: &[Role] = &[Operator, Approver];
}
