//! Pure rules, no I/O: validated inputs, currencies, and the state machines
//! money moves through. Nothing here imports the store, the web or `auth`.

pub mod approval;
pub mod card;
pub mod chargeback;
pub mod checkout;
pub mod csv;
pub mod currency;
pub mod mail;
pub mod money;
pub mod payout;
pub mod payout_csv;
pub mod settlement;
pub mod status;
pub mod validate;

pub use currency::Currency;
pub use money::{Money, Reference};
pub use status::{
    AnswerStatus, BatchStatus, CardStatus, CheckoutStatus, FundingKind, FundingStatus, InboxState, PayoutStatus,
    RefundStatus,
};
