//! A stateful, offline Flutterwave v3 for development, CI and chaos drills.
//!
//! - `/v3/...`: the REST endpoints Sika uses, with Flutterwave's envelopes and
//!   quirks, behind the Bearer secret key (see [`api`]).
//! - `/hosted/pay/{link}`: the hosted checkout page ([`checkout`]).
//! - `/_emulator/...`: the test-only control surface ([`control`]): scripted
//!   charges, transfer settlement, faults, stats.
//! - Webhooks to the configured URL, signed as configured ([`webhooks`]).
#![forbid(unsafe_code)]
// Handlers return ready-made responses as their error type; the size of
// `Response` in a `Result` does not matter at the emulator's scale.
#![allow(clippy::result_large_err)]

pub mod api;
pub mod checkout;
pub mod clock;
pub mod control;
mod rng;
pub mod state;
mod time;
pub mod webhooks;

use std::net::SocketAddr;
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use axum::Router;
use axum::routing::{get, post};
use tokio::sync::oneshot;

use state::{Data, Faults as FaultState, Shared, State, Stats};
pub use state::{EmulatorConfig, Faults, SignatureScheme};

/// A running emulator. Dropping it leaves the server running; call [`Emulator::shutdown`].
pub struct Emulator {
    addr: SocketAddr,
    state: Shared,
    stop: Option<oneshot::Sender<()>>,
    task: tokio::task::JoinHandle<()>,
}

#[derive(Debug)]
pub enum StartError {
    Io(std::io::Error),
    Http(reqwest::Error),
}

impl std::fmt::Display for StartError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            StartError::Io(e) => write!(f, "cannot listen: {e}"),
            StartError::Http(e) => write!(f, "cannot build the webhook client: {e}"),
        }
    }
}

impl std::error::Error for StartError {}

impl Emulator {
    /// Serves on `listener` (plain HTTP; loopback is the intended use).
    pub async fn start(config: EmulatorConfig, listener: tokio::net::TcpListener) -> Result<Self, StartError> {
        let addr = listener.local_addr().map_err(StartError::Io)?;
        let mut http = reqwest::Client::builder().use_rustls_tls().timeout(Duration::from_secs(60));
        if let Some(pem) = &config.webhook_root_pem {
            http = http.add_root_certificate(reqwest::Certificate::from_pem(pem.as_bytes()).map_err(StartError::Http)?);
        }
        let http = http.redirect(reqwest::redirect::Policy::none()).build().map_err(StartError::Http)?;
        let (outbox, rx) = webhooks::Outbox::channel();
        let faults = FaultState { seed: config.seed, ..FaultState::default() };
        let state: Shared = Arc::new(State {
            secret_key: config.secret_key.clone(),
            secret_hash: config.secret_hash.clone(),
            webhook_url: RwLock::new(config.webhook_url.clone()),
            public_base: RwLock::new(format!("http://{addr}")),
            data: Mutex::new(Data::new()),
            faults: Mutex::new((faults, rng::Rng::new(config.seed))),
            stats: Mutex::new(Stats::default()),
            outbox,
            clock: Arc::new(clock::Clock::default()),
        });
        tokio::spawn(webhooks::run(state.clone(), rx, http));
        tokio::spawn(state.clock.clone().drive());
        let app = router(state.clone());
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let _ = axum::serve(listener, app)
                .with_graceful_shutdown(async {
                    let _ = stopped.await;
                })
                .await;
        });
        Ok(Emulator { addr, state, stop: Some(stop), task })
    }

    pub fn addr(&self) -> SocketAddr {
        self.addr
    }

    /// `http://ADDR`
    pub fn url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// `http://ADDR/v3`, the value for `FLW_BASE_URL`.
    pub fn base_url(&self) -> String {
        format!("http://{}/v3", self.addr)
    }

    /// Where webhooks go from now on.
    pub fn set_webhook_url(&self, url: Option<String>) {
        if let Ok(mut w) = self.state.webhook_url.write() {
            *w = url;
        }
    }

    pub async fn shutdown(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
        let _ = (&mut self.task).await;
    }
}

fn router(state: Shared) -> Router {
    Router::new()
        .nest("/v3", api::router(state.clone()))
        .route("/hosted/pay/{link}", get(checkout::show).post(checkout::submit))
        .route("/_emulator/charges", post(control::charge))
        .route("/_emulator/transfers/{id}/complete", post(control::complete_transfer))
        .route("/_emulator/transfers/{id}/reverse", post(control::reverse_transfer))
        .route("/_emulator/cards/{id}/debit", post(control::debit_card))
        .route("/_emulator/balances", post(control::set_balance))
        .route("/_emulator/clock", post(control::move_clock).get(control::read_clock))
        .route("/_emulator/chargebacks", post(control::raise_chargeback))
        .route("/_emulator/uploads/{id}", get(control::uploaded))
        .route("/_emulator/settlements", post(control::settle_now))
        .route("/_emulator/chargebacks/{id}/decide", post(control::decide_chargeback))
        .route("/_emulator/faults", post(control::set_faults).get(control::get_faults))
        .route("/_emulator/stats", get(control::stats))
        .route("/_emulator/arrivals", get(control::arrivals))
        .route("/_emulator/stats/reset", post(control::reset_stats))
        .with_state(state)
}
