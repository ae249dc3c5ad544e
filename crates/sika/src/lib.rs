//! Sika: a self-hosted, hardened payments gateway for Flutterwave.
//!
//! Where things live: `config` (environment and secrets), `store` (SQLite and
//! PostgreSQL behind one API), `http` (routes and the hardening every response
//! gets), `server` (TLS and listeners), `gateway` (start-up and shutdown),
//! `cli` (the `sika` command).
#![forbid(unsafe_code)]

pub mod audit;
pub mod auth;
pub mod backup;
pub mod cards;
pub mod check;
pub mod cli;
pub mod clock;
pub mod config;
pub mod crypto;
pub mod datadir;
pub mod demo;
pub mod domain;
pub mod fsutil;
pub mod gateway;
pub mod http;
pub mod inbox;
pub mod jobs;
pub mod logging;
pub mod mail;
pub mod metrics;
pub mod ops;
pub mod outgoing;
pub mod payments;
pub mod payouts;
pub mod secret;
pub mod server;
pub mod settings;
pub mod settlements;
pub mod store;
pub mod timefmt;
