//! Sika's integration tests, one program: every capability's module below
//! shares one harness (`support`) and one build. Each test still runs in its
//! own process under `cargo nextest` (the README's test command), so a test
//! that installs its own clock or fault point affects no other.

mod support;

mod accessibility;
mod architecture;
mod at_rest;
mod audit_atomic;
mod audit_chain;
mod availability;
mod backups;
mod browser;
mod cards;
mod chaos;
mod chargebacks;
mod cli;
mod console;
mod console_overview;
mod console_pages;
mod examples;
mod flutterwave_reality;
mod fuzz_inputs;
mod go_live_check;
mod http_hardening;
mod mail;
mod money_rules;
mod payment_lists;
mod payments;
mod payout_dispatch;
mod payouts;
mod redirect;
mod settlements;
mod shared_budget;
mod sign_in_limits;
mod simulation;
mod store_conformance;
mod tls;
