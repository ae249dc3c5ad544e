//! A typed client for Flutterwave's v3 API. It knows nothing of Sika.
//!
//! - Every call returns a [`Reply`]: a definite success, a definite refusal
//!   (a 4xx error envelope), or an indefinite answer (timeout, connection
//!   error, 5xx, 429, unparsable body) that must change nothing.
//! - One outbound [`budget::Budget`] per [`Client`] is shared by all its calls.
//! - Money is [`money::Amount`], an exact decimal, never `f64`.
//! - [`webhook`] verifies and parses every payload family.
#![forbid(unsafe_code)]

pub mod banks;
pub mod budget;
pub mod cards;
pub mod chargebacks;
pub mod client;
mod lenient;
pub mod money;
pub mod payments;
pub mod settlements;
pub mod transactions;
pub mod transfers;
pub mod webhook;

pub use client::{ApiError, Client, Config, ErrorKind, Indefinite, Page, PageInfo, Reply, SecretKey};
pub use lenient::iso_millis;
pub use money::Amount;
