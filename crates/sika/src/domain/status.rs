//! The states money and messages move through, as types. They are stored as
//! their `as_str` text; any other text read back is an error, never a guess.

use std::fmt;

macro_rules! states {
    ($(#[$doc:meta])* $name:ident { $($(#[$vdoc:meta])* $variant:ident = $text:literal),* $(,)? }) => {
        $(#[$doc])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
        pub enum $name { $($(#[$vdoc])* $variant),* }

        impl $name {
            pub const ALL: &'static [$name] = &[$($name::$variant),*];

            pub fn as_str(self) -> &'static str {
                match self { $($name::$variant => $text),* }
            }

            pub fn parse(s: &str) -> Option<$name> {
                match s { $($text => Some($name::$variant),)* _ => None }
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(self.as_str())
            }
        }

        impl serde::Serialize for $name {
            fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
                s.serialize_str(self.as_str())
            }
        }
    };
}

states! {
    /// A checkout: `pending` until a definite answer moves it, once.
    CheckoutStatus {
        Pending = "pending",
        /// Only through `judge` → `Verified`.
        Paid = "paid",
        /// Money arrived, but not as agreed (underpaid, other currency, after closing): a person looks.
        NeedsReview = "needs_review",
        /// Closed unpaid after failed attempts.
        Failed = "failed",
        /// Closed unpaid, nobody tried (or Flutterwave has no transaction).
        Cancelled = "cancelled",
    }
}

impl CheckoutStatus {
    /// Closed without money: a success arriving now is a late payment.
    pub fn is_closed_unpaid(self) -> bool {
        matches!(self, CheckoutStatus::Failed | CheckoutStatus::Cancelled)
    }

    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            CheckoutStatus::Pending => "Pending",
            CheckoutStatus::Paid => "Paid",
            CheckoutStatus::NeedsReview => "Needs review",
            CheckoutStatus::Failed => "Failed",
            CheckoutStatus::Cancelled => "Cancelled",
        }
    }
}

states! {
    /// A refund has its own life, apart from its checkout's.
    RefundStatus {
        /// Recorded, not yet answered (or the process stopped before the call).
        Requested = "requested",
        /// Flutterwave accepted it and is working on it (`processing`, `pending`, `pending-momo`...).
        Processing = "processing",
        Completed = "completed",
        Failed = "failed",
        /// No definite answer to the request: found later by lookup, never sent again.
        Unknown = "unknown",
    }
}

impl RefundStatus {
    pub fn is_final(self) -> bool {
        matches!(self, RefundStatus::Completed | RefundStatus::Failed)
    }

    /// Counts against what may still be refunded (everything not definitely failed).
    pub fn holds_money(self) -> bool {
        self != RefundStatus::Failed
    }

    /// Flutterwave's refund status text. `completed` and its variants
    /// (`completed-momo`, ...) are done; `failed`/`declined`/`rejected`
    /// variants failed; everything else (`processing`, `pending`,
    /// `pending-momo`, `new`, text never seen before) is still under way.
    pub fn from_flutterwave(s: &str) -> RefundStatus {
        let s = s.trim().to_ascii_lowercase();
        if s == "completed" || s.starts_with("completed") || s == "successful" || s == "success" {
            RefundStatus::Completed
        } else if ["failed", "declined", "rejected", "reversed", "cancelled"].iter().any(|f| s.starts_with(f)) {
            RefundStatus::Failed
        } else {
            RefundStatus::Processing
        }
    }
}

states! {
    /// A stored webhook delivery.
    InboxState {
        New = "new",
        /// No definite answer yet: tried again later.
        Retry = "retry",
        Done = "done",
        /// Signed, but cannot be opened (sealed with a key no longer held).
        Unprocessable = "unprocessable",
        /// Signed, but not a payload Sika can classify: kept, sealed, for a person.
        Unrecognised = "unrecognised",
        /// A real transaction whose reference matches no checkout.
        Unmatched = "unmatched",
        /// Flutterwave says there is no such transaction.
        Rejected = "rejected",
        /// Understood, but nothing for Sika to do.
        Ignored = "ignored",
        /// Failed too many times: kept for a person to replay.
        Dead = "dead",
    }
}

impl InboxState {
    /// States that need a person to look (the console lists them).
    pub const ATTENTION: [InboxState; 5] = [
        InboxState::Dead,
        InboxState::Unprocessable,
        InboxState::Unrecognised,
        InboxState::Unmatched,
        InboxState::Rejected,
    ];
}

states! {
    /// A payout: two people's consent, then Flutterwave's own record decides.
    PayoutStatus {
        /// Created; waits for approvers who did not create it.
        AwaitingApproval = "awaiting_approval",
        /// An approver said no (with a reason).
        Rejected = "rejected",
        /// Withdrawn before approval.
        Cancelled = "cancelled",
        /// Not approved in time.
        Expired = "expired",
        /// Approved (a hold is on the balance); waits for the dispatcher.
        Queued = "queued",
        /// Flutterwave accepted the transfer (`NEW`/`PENDING`): not paid yet.
        Submitted = "submitted",
        /// Sent, with no definite answer: found by lookup, never sent again.
        Unknown = "unknown",
        /// Flutterwave's own record says `SUCCESSFUL`.
        Successful = "successful",
        /// Refused, or Flutterwave's record says `FAILED`.
        Failed = "failed",
        /// Paid, then reversed by Flutterwave: a person looks.
        Reversed = "reversed",
    }
}

impl PayoutStatus {
    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            PayoutStatus::AwaitingApproval => "Awaiting approval",
            PayoutStatus::Rejected => "Rejected",
            PayoutStatus::Cancelled => "Cancelled",
            PayoutStatus::Expired => "Expired unapproved",
            PayoutStatus::Queued => "Approved, queued",
            PayoutStatus::Submitted => "Sent, awaiting Flutterwave",
            PayoutStatus::Unknown => "Sent, being looked up",
            PayoutStatus::Successful => "Paid",
            PayoutStatus::Failed => "Failed",
            PayoutStatus::Reversed => "Reversed",
        }
    }

    /// Approved and not final: money is held for it.
    pub fn holds_money(self) -> bool {
        matches!(self, PayoutStatus::Queued | PayoutStatus::Submitted | PayoutStatus::Unknown)
    }

    /// At Flutterwave, waiting for its final answer.
    pub fn in_flight(self) -> bool {
        matches!(self, PayoutStatus::Submitted | PayoutStatus::Unknown)
    }
}

states! {
    /// A bulk upload.
    BatchStatus {
        /// Checked as a file; its items are being resolved and quoted.
        Preparing = "preparing",
        /// Every item is a payout awaiting approval: approve or reject it as one.
        AwaitingApproval = "awaiting_approval",
        /// Flutterwave refused an item while preparing: nothing of it will be sent.
        Refused = "refused",
        /// Every item approved; dispatched item by item.
        Approved = "approved",
        Rejected = "rejected",
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_and_refuse_strangers() {
        for s in CheckoutStatus::ALL {
            assert_eq!(CheckoutStatus::parse(s.as_str()), Some(*s));
        }
        for s in RefundStatus::ALL {
            assert_eq!(RefundStatus::parse(s.as_str()), Some(*s));
        }
        for s in InboxState::ALL {
            assert_eq!(InboxState::parse(s.as_str()), Some(*s));
        }
        for s in PayoutStatus::ALL {
            assert_eq!(PayoutStatus::parse(s.as_str()), Some(*s));
        }
        assert_eq!(CheckoutStatus::parse("PAID"), None);
    }

    #[test]
    fn flutterwave_refund_statuses_map_to_final_only_when_final() {
        use RefundStatus::*;
        for (text, want) in [
            ("completed", Completed),
            ("completed-momo", Completed),
            ("COMPLETED", Completed),
            ("processing", Processing),
            ("pending", Processing),
            ("pending-momo", Processing),
            ("new", Processing),
            ("something-new", Processing),
            ("failed", Failed),
            ("failed-momo", Failed),
        ] {
            assert_eq!(RefundStatus::from_flutterwave(text), want, "{text}");
        }
        assert!(!Processing.is_final() && Completed.is_final() && Failed.is_final());
        assert!(Unknown.holds_money() && Processing.holds_money() && !Failed.holds_money());
    }
}

states! {
    /// A virtual card. `creating` until Flutterwave reports it active;
    /// `unknown` when creation had no definite answer (resolved by lookup,
    /// never by creating again).
    CardStatus {
        /// Asked for: its first load waits for approvers (nothing sent yet).
        AwaitingApproval = "awaiting_approval",
        Creating = "creating",
        Unknown = "unknown",
        Active = "active",
        Blocked = "blocked",
        Terminated = "terminated",
        /// Flutterwave refused it, or has no such card after the lookups.
        Failed = "failed",
    }
}

impl CardStatus {
    /// Words for people.
    pub fn label(self) -> &'static str {
        match self {
            CardStatus::AwaitingApproval => "Awaiting approval",
            CardStatus::Creating => "Being created",
            CardStatus::Unknown => "Being looked up",
            CardStatus::Active => "Active",
            CardStatus::Blocked => "Blocked",
            CardStatus::Terminated => "Terminated",
            CardStatus::Failed => "Failed",
        }
    }
}

states! {
    /// Money moved onto a card (its first load, a funding) or off it (a
    /// withdrawal): approved like a payout, then sent once.
    FundingStatus {
        AwaitingApproval = "awaiting_approval",
        Rejected = "rejected",
        Expired = "expired",
        /// Approved (a funding holds its amount on the wallet); waits to be sent.
        Queued = "queued",
        /// Sent with no definite answer yet: found by lookup, never sent again.
        Unknown = "unknown",
        /// Flutterwave moved the money (read back).
        Succeeded = "succeeded",
        Failed = "failed",
    }
}

impl FundingStatus {
    pub fn label(self) -> &'static str {
        match self {
            FundingStatus::AwaitingApproval => "Awaiting approval",
            FundingStatus::Rejected => "Rejected",
            FundingStatus::Expired => "Expired unapproved",
            FundingStatus::Queued => "Approved, queued",
            FundingStatus::Unknown => "Sent, being looked up",
            FundingStatus::Succeeded => "Done",
            FundingStatus::Failed => "Failed",
        }
    }
}

states! {
    /// Which way a card funding moves money.
    FundingKind {
        /// The first load, made with the card itself.
        Load = "load",
        /// Wallet → card.
        Fund = "fund",
        /// Card → wallet.
        Withdraw = "withdraw",
    }
}

impl FundingKind {
    /// Loads and fundings take money from the wallet: they hold it once approved.
    pub fn debits_wallet(self) -> bool {
        matches!(self, FundingKind::Load | FundingKind::Fund)
    }
}

states! {
    /// A merchant's answer to a chargeback, prepared by one person and sent by an approver.
    AnswerStatus {
        AwaitingApproval = "awaiting_approval",
        /// An approver refused it: not sent.
        Rejected = "rejected",
        /// Not approved before the chargeback's due date: not sent.
        Expired = "expired",
        /// Every consent given; the sender takes it next.
        Queued = "queued",
        /// Claimed and sent (or being sent) without a definite answer yet: looked up, never sent again.
        Unknown = "unknown",
        /// Flutterwave took the answer.
        Sent = "sent",
        /// Flutterwave refused the answer.
        Failed = "failed",
    }
}

impl AnswerStatus {
    pub fn label(self) -> &'static str {
        match self {
            AnswerStatus::AwaitingApproval => "Awaiting approval",
            AnswerStatus::Rejected => "Rejected",
            AnswerStatus::Expired => "Expired unapproved",
            AnswerStatus::Queued => "Approved, queued",
            AnswerStatus::Unknown => "Sent, being looked up",
            AnswerStatus::Sent => "Sent to Flutterwave",
            AnswerStatus::Failed => "Refused by Flutterwave",
        }
    }
}
