//! What Sika tells people by e-mail, and the words of each letter. Letters are
//! composed here from counts, amounts, references and links only: nothing that
//! reaches this module can carry an account or card number, a customer's name
//! or e-mail, a secret or a token, so no mail can hold one.

use std::collections::BTreeMap;
use std::fmt::Write as _;

use rust_decimal::Decimal;

use super::Currency;

/// A kind of mail. Every user may turn off each topic their role receives,
/// except `Security`: a user always hears about their own account.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Topic {
    /// Approvers: payouts, batches, card loads and chargeback answers wait for them.
    Approvals,
    /// Admins: a background worker stalled or stopped.
    WorkerStalled,
    /// Admins: notifications to the shop or Flutterwave webhooks given up on.
    DeadLetters,
    /// Admins: Flutterwave's webhooks waiting longer than they should.
    InboxBacklog,
    /// Admins: transfers Flutterwave still calls NEW hours after they were sent.
    TransfersStuck,
    /// Admins: a chargeback whose answer is due within 12 hours.
    ChargebackDue,
    /// Admins: a settlement that does not match Sika's records.
    SettlementDiscrepancy,
    /// Admins: the audit chain does not verify.
    AuditChain,
    /// Admins: accounts locked out again and again.
    Lockouts,
    /// Everyone: their own sign-ins, password, second factor and role.
    Security,
}

impl Topic {
    pub const ALL: [Topic; 10] = [
        Topic::Approvals,
        Topic::WorkerStalled,
        Topic::DeadLetters,
        Topic::InboxBacklog,
        Topic::TransfersStuck,
        Topic::ChargebackDue,
        Topic::SettlementDiscrepancy,
        Topic::AuditChain,
        Topic::Lockouts,
        Topic::Security,
    ];

    /// The alerts admins receive.
    pub const ALERTS: [Topic; 8] = [
        Topic::WorkerStalled,
        Topic::DeadLetters,
        Topic::InboxBacklog,
        Topic::TransfersStuck,
        Topic::ChargebackDue,
        Topic::SettlementDiscrepancy,
        Topic::AuditChain,
        Topic::Lockouts,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            Topic::Approvals => "approvals",
            Topic::WorkerStalled => "worker_stalled",
            Topic::DeadLetters => "dead_letters",
            Topic::InboxBacklog => "inbox_backlog",
            Topic::TransfersStuck => "transfers_stuck",
            Topic::ChargebackDue => "chargeback_due",
            Topic::SettlementDiscrepancy => "settlement_discrepancy",
            Topic::AuditChain => "audit_chain",
            Topic::Lockouts => "lockouts",
            Topic::Security => "security",
        }
    }

    pub fn parse(s: &str) -> Option<Topic> {
        Topic::ALL.into_iter().find(|t| t.as_str() == s)
    }

    /// What the account page calls it.
    pub fn describe(self) -> &'static str {
        match self {
            Topic::Approvals => "Something waits for my approval (at most one mail per digest interval)",
            Topic::WorkerStalled => "A background worker stalled or stopped",
            Topic::DeadLetters => "Notifications or webhooks were given up on (dead letters)",
            Topic::InboxBacklog => "Flutterwave's webhooks wait longer than they should",
            Topic::TransfersStuck => "Transfers Flutterwave still calls NEW hours after they were sent",
            Topic::ChargebackDue => "A chargeback's answer is due within 12 hours",
            Topic::SettlementDiscrepancy => "A settlement does not match Sika's records",
            Topic::AuditChain => "The audit chain fails to verify",
            Topic::Lockouts => "Accounts are locked out again and again",
            Topic::Security => "My own sign-ins and account changes (always sent)",
        }
    }

    /// Whether a user may turn it off.
    pub fn optional(self) -> bool {
        self != Topic::Security
    }

    /// Whether a user whose role is `role` receives it (`role` as `auth::roles::Role` spells it).
    pub fn reaches(self, role: &str) -> bool {
        match self {
            Topic::Security => true,
            Topic::Approvals => role == "approver",
            _ => role == "admin",
        }
    }
}

/// One mail, ready for the outbox: a subject line and a plain-text body.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Letter {
    pub subject: String,
    pub body: String,
}

/// What waits for an approver, of one kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Waiting {
    pub count: i64,
    /// Totals per currency (chargeback answers carry none).
    pub totals: BTreeMap<Currency, Decimal>,
}

/// Everything that waits for approval, by kind.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Queue {
    pub payouts: Waiting,
    pub batches: Waiting,
    pub card_loads: Waiting,
    pub answers: Waiting,
}

impl Queue {
    pub fn is_empty(&self) -> bool {
        self.payouts.count + self.batches.count + self.card_loads.count + self.answers.count == 0
    }
}

fn money_line(totals: &BTreeMap<Currency, Decimal>) -> String {
    totals.iter().map(|(c, a)| format!("{c} {}", c.format(*a))).collect::<Vec<_>>().join(", ")
}

/// The approver's digest: counts, totals per currency and links to the queues.
pub fn digest(queue: &Queue, console: &str) -> Letter {
    let total = queue.payouts.count + queue.batches.count + queue.card_loads.count + queue.answers.count;
    let mut body = String::from("Waiting for your approval in Sika:\n\n");
    let mut line = |label: &str, w: &Waiting, path: &str| {
        if w.count == 0 {
            return;
        }
        let _ = write!(body, "- {label}: {}", w.count);
        if !w.totals.is_empty() {
            let _ = write!(body, " ({})", money_line(&w.totals));
        }
        let _ = writeln!(body, "\n  {console}{path}");
    };
    line("Payouts", &queue.payouts, "payouts?status=awaiting_approval");
    line("Payout batches", &queue.batches, "payouts/batches");
    line("Card loads and fundings", &queue.card_loads, "cards");
    line("Chargeback answers", &queue.answers, "disputes");
    body.push_str(
        "\nA payout not approved in time expires. You approve in the console; nothing can be approved from this mail.\n",
    );
    let subject = if total == 1 {
        "Sika: 1 item waits for your approval".to_string()
    } else {
        format!("Sika: {total} items wait for your approval")
    };
    Letter { subject, body: with_footer(body, console) }
}

/// An alert to admins: what is wrong, and where to look.
pub fn alert(topic: Topic, what: &str, path: &str, console: &str) -> Letter {
    let title = match topic {
        Topic::WorkerStalled => "a background worker is not running",
        Topic::DeadLetters => "messages were given up on",
        Topic::InboxBacklog => "Flutterwave's webhooks are waiting",
        Topic::TransfersStuck => "transfers are stuck at Flutterwave",
        Topic::ChargebackDue => "a chargeback answer is due soon",
        Topic::SettlementDiscrepancy => "a settlement does not match",
        Topic::AuditChain => "the audit chain does not verify",
        Topic::Lockouts => "repeated sign-in lockouts",
        Topic::Approvals | Topic::Security => "attention needed",
    };
    let body = format!("{what}\n\nLook at: {console}{path}\n");
    Letter { subject: format!("Sika alert: {title}"), body: with_footer(body, console) }
}

/// A security event on the reader's own account.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum SecurityEvent {
    SignIn { ip: String, at: String },
    PasswordChanged { at: String },
    SecondFactorChanged { at: String },
    RecoveryCodeUsed { at: String },
    RoleChanged { before: String, after: String, at: String },
}

pub fn security(event: &SecurityEvent, console: &str) -> Letter {
    let (subject, what) = match event {
        SecurityEvent::SignIn { ip, at } => (
            "Sika: a new sign-in to your account",
            format!("Your account was signed in to at {at} from {ip}, an address it had not signed in from lately."),
        ),
        SecurityEvent::PasswordChanged { at } => {
            ("Sika: your password was changed", format!("The password of your account was changed at {at}."))
        }
        SecurityEvent::SecondFactorChanged { at } => (
            "Sika: your second factor was changed",
            format!("The authenticator (second factor) of your account was set up or reset at {at}."),
        ),
        SecurityEvent::RecoveryCodeUsed { at } => (
            "Sika: a recovery code was used",
            format!("One of your account's recovery codes was used to sign in at {at}."),
        ),
        SecurityEvent::RoleChanged { before, after, at } => {
            ("Sika: your role was changed", format!("Your role changed from {before} to {after} at {at}."))
        }
    };
    let body = format!(
        "{what}\n\nIf this was you, nothing needs doing. If it was not, tell an administrator at once \
         and change your password: {console}account/password\n"
    );
    Letter { subject: subject.to_string(), body: with_footer(body, console) }
}

fn with_footer(mut body: String, console: &str) -> String {
    let _ = write!(body, "\n-- \nSika, {console}\nChoose what you receive: {console}account/mail\n");
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_digest_counts_and_totals_per_currency_and_links_to_each_queue() {
        let mut q = Queue::default();
        q.payouts.count = 2;
        q.payouts.totals.insert(Currency::NGN, Decimal::new(150000, 2));
        q.payouts.totals.insert(Currency::KES, Decimal::new(700, 0));
        q.answers.count = 1;
        let l = digest(&q, "https://sika.example/");
        assert_eq!(l.subject, "Sika: 3 items wait for your approval");
        assert!(l.body.contains("- Payouts: 2 (NGN 1,500.00, KES 700.00)"), "{}", l.body);
        assert!(l.body.contains("https://sika.example/payouts?status=awaiting_approval"));
        assert!(l.body.contains("- Chargeback answers: 1\n"));
        assert!(!l.body.contains("batches"), "an empty kind is left out");
    }

    #[test]
    fn security_cannot_be_turned_off_and_topics_reach_their_roles() {
        assert!(!Topic::Security.optional());
        assert!(Topic::Approvals.reaches("approver") && !Topic::Approvals.reaches("admin"));
        assert!(Topic::DeadLetters.reaches("admin") && !Topic::DeadLetters.reaches("operator"));
        for t in Topic::ALL {
            assert_eq!(Topic::parse(t.as_str()), Some(t));
            assert!(t.reaches("admin") || t.reaches("approver"));
        }
    }
}
