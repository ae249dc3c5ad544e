//! Starting Sika: open the store, apply migrations, bind the listeners, and
//! run until SIGINT/SIGTERM, then drain in-flight requests and close the database.

use std::net::SocketAddr;
use std::time::Duration;

use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::config::Config;
use crate::http::{self, AppState};
use crate::jobs::{Schedule, Supervisor};
use crate::server;
use crate::store::Store;

/// Runs until a shutdown signal. `on_ready` receives the HTTPS address that is listening.
pub async fn run(config: Config, on_ready: impl FnOnce(SocketAddr)) -> Result<(), String> {
    // Every secret in `config` is masked in this rendering (tests/suite/cli.rs checks the log).
    tracing::info!(?config, "configuration loaded");
    let tls = server::tls::server_config(&config.tls_cert_file, &config.tls_key_file).map_err(|e| format!("{e}."))?;
    crate::mail::Transport::from_config(&config.mail).map_err(|e| format!("{e}."))?;
    let store = open_store(&config).await?;
    let limits = server::Limits { per_ip: config.max_connections_per_ip, ..server::Limits::default() };

    let listener = TcpListener::bind(config.listen)
        .await
        .map_err(|e| format!("cannot listen on SIKA_LISTEN {}: {e}.", config.listen))?;
    let addr = listener.local_addr().map_err(|e| format!("cannot read the listening address: {e}."))?;
    let (stop, shutdown) = watch::channel(false);

    let redirect = match config.http_redirect_listen {
        Some(at) => {
            let l = TcpListener::bind(at)
                .await
                .map_err(|e| format!("cannot listen on SIKA_HTTP_REDIRECT_LISTEN {at}: {e}."))?;
            let public = public_url(&config, addr);
            Some(tokio::spawn(server::serve_redirect(l, public, shutdown.clone(), limits)))
        }
        None => None,
    };
    let public = public_url(&config, addr);
    let flw = flutterwave_client(&config, &store)?;
    let mut workers = Supervisor::new(shutdown.clone());
    let state = assemble(&config, &store, &public, flw, workers.health(), |_| {});
    // Checkouts from before the e-mail search existed get their blind index.
    match state.payments.backfill_email_index().await {
        Ok(0) => {}
        Ok(n) => tracing::info!(checkouts = n, "indexed customer e-mails for search"),
        Err(e) => return Err(format!("cannot index customer e-mails: {e}.")),
    }
    let notifier = crate::payments::notify::Notifier::new(
        crate::crypto::field::FieldCipher::new(config.data_keys.clone()),
        config.notify_allow_loopback,
    )?;
    let checkpoints = crate::audit::checkpoint::Checkpoints::new(&config.audit_key, &config.audit_checkpoint_file);
    crate::payments::workers::spawn(&mut workers, &state.payments, notifier);
    crate::inbox::spawn(&mut workers, &state.inbox);
    crate::payouts::workers::spawn(&mut workers, &state.payouts);
    crate::settlements::workers::spawn(&mut workers, &state.settlements);
    crate::mail::workers::spawn(&mut workers, &state.mail);
    spawn_housekeeping(&mut workers, &state.auth, &checkpoints);
    if let Some(c) = &state.cards {
        crate::cards::workers::spawn(&mut workers, c);
    }
    let auth = state.auth.clone();
    let metrics = match config.metrics_listen {
        Some(at) => {
            let l = TcpListener::bind(at).await.map_err(|e| {
                format!("cannot listen on SIKA_METRICS_LISTEN {at}: {e} (set another address, or off).")
            })?;
            let bound = l.local_addr().map_err(|e| format!("cannot read the metrics address: {e}."))?;
            tracing::info!(%bound, "metrics at http://{bound}/metrics");
            let mut stopping = shutdown.clone();
            let router = crate::http::metrics::router(state.clone());
            Some(tokio::spawn(async move {
                let stop = async move {
                    let _ = stopping.wait_for(|s| *s).await;
                };
                if let Err(e) = axum::serve(l, router).with_graceful_shutdown(stop).await {
                    tracing::warn!(error = %e, "the metrics listener stopped");
                }
            }))
        }
        None => None,
    };
    let app = http::app(state);
    let https = tokio::spawn(server::serve_https(listener, tls, app, shutdown, limits));
    // Handlers are installed before anyone is told we are ready, so a signal
    // sent right after "ready" is a clean stop, not the default kill.
    let signal = shutdown_signal();
    tracing::info!(%addr, "listening");
    on_ready(addr);

    signal.await;
    tracing::info!("shutting down: draining in-flight requests");
    let _ = stop.send(true);
    let _ = https.await;
    if let Some(r) = redirect {
        let _ = r.await;
    }
    if let Some(m) = metrics {
        let _ = m.await;
    }
    // Workers stop before the database closes: no pass is cut off by a closed pool.
    workers.join(Duration::from_secs(15)).await;
    if let Err(e) = checkpoints.write(&auth.auditor).await {
        tracing::warn!(error = %e, "the audit checkpoint at shutdown could not be written");
    }
    store.close().await;
    tracing::info!("stopped cleanly");
    Ok(())
}

/// Session purging and audit checkpoints, each a supervised job.
fn spawn_housekeeping(
    workers: &mut Supervisor,
    auth: &crate::auth::Auth,
    checkpoints: &crate::audit::checkpoint::Checkpoints,
) {
    let a = auth.clone();
    workers.spawn(
        "sessions",
        Schedule {
            every: Duration::from_secs(60),
            timeout: Duration::from_secs(60),
            stall_after: Duration::from_secs(300),
        },
        move || {
            let a = a.clone();
            Box::pin(async move {
                // Expired sessions are refused on use anyway; this keeps the table small.
                a.purge_sessions().await.map_err(|e| e.to_string())?;
                Ok(false)
            })
        },
    );
    let (a, c) = (auth.clone(), checkpoints.clone());
    workers.spawn(
        "audit-checkpoints",
        Schedule {
            every: crate::audit::checkpoint::INTERVAL,
            timeout: Duration::from_secs(60),
            stall_after: crate::audit::checkpoint::INTERVAL * 5,
        },
        move || {
            let (a, c) = (a.clone(), c.clone());
            Box::pin(async move { c.write(&a.auditor).await.map(|_| false) })
        },
    );
}

/// The Flutterwave client: one outbound budget for the whole process, or on PostgreSQL for every instance.
pub fn flutterwave_client(config: &Config, store: &Store) -> Result<flutterwave::Client, String> {
    let mut flw_config = flutterwave::Config::new(
        config.flw_base_url.clone(),
        flutterwave::SecretKey::new(config.flw_secret_key.expose()),
    );
    flw_config.rate_per_second = config.flw_rate_per_second;
    flw_config.burst = config.flw_rate_per_second.saturating_mul(2);
    // Several instances on one PostgreSQL share one budget; SQLite's one instance keeps it in memory.
    flw_config.ledger = crate::store::Ledger::of(store).map(|l| std::sync::Arc::new(l) as _);
    flutterwave::Client::new(flw_config).map_err(|e| format!("cannot build the Flutterwave client: {e}."))
}

/// The services and the state `run` serves, wired from `config` over an open store. The test
/// harness builds through this too, so the tests run what production wires; `tune` lets a test
/// shorten the payments service's timings before anything holds a copy of it.
pub fn assemble(
    config: &Config,
    store: &Store,
    public: &url::Url,
    flw: flutterwave::Client,
    workers: std::sync::Arc<crate::jobs::Health>,
    tune: impl FnOnce(&mut crate::payments::Payments),
) -> AppState {
    use crate::crypto::field::FieldCipher;
    let mut auth = crate::auth::Auth::new(
        store.clone(),
        config.data_keys.clone(),
        config.audit_key.clone(),
        config.session_idle_timeout,
        config.session_absolute_timeout,
    );
    auth.ip_throttle_limit = config.login_ip_limit;
    let mut payments = crate::payments::Payments::new(
        store.clone(),
        FieldCipher::new(config.data_keys.clone()),
        flw,
        config.flw_secret_hash.clone(),
        public,
        auth.auditor.clone(),
    );
    payments.notify_allow_loopback = config.notify_allow_loopback;
    tune(&mut payments);
    let mut payouts = crate::payouts::Payouts::new(
        store.clone(),
        FieldCipher::new(config.data_keys.clone()),
        payments.flutterwave().clone(),
        auth.auditor.clone(),
    );
    payouts.approval_ttl_ms = i64::try_from(config.payout_approval_ttl.as_millis()).unwrap_or(i64::MAX);
    payouts.resend_unsent_after_ms = i64::try_from(config.payout_resend_after.as_millis()).unwrap_or(i64::MAX);
    payouts.lookup_max_pages = config.transfer_lookup_max_pages;
    let cards = config.cards_enabled.then(|| {
        crate::cards::Cards::new(
            store.clone(),
            FieldCipher::new(config.data_keys.clone()),
            payments.flutterwave().clone(),
            auth.auditor.clone(),
        )
    });
    let mut settlements = crate::settlements::Settlements::new(store.clone(), payments.flutterwave().clone());
    settlements.grace_days = config.settlement_grace_days;
    let mail = crate::mail::Mail::new(
        store.clone(),
        FieldCipher::new(config.data_keys.clone()),
        auth.auditor.clone(),
        public,
        config.mail.clone(),
        workers.clone(),
        settlements.clone(),
    );
    let inbox = crate::inbox::Inbox::new(payments.clone(), payouts.clone(), cards.clone(), auth.auditor.clone());
    AppState {
        store: store.clone(),
        settings: crate::settings::Settings::new(store.clone(), auth.auditor.clone()),
        auth,
        max_body_bytes: config.max_body_bytes,
        public_origin: public.origin().ascii_serialization(),
        payments,
        payouts,
        workers,
        cards,
        inbox,
        settlements,
        mail,
    }
}

/// Opens the database and brings its schema up to date.
pub async fn open_store(config: &Config) -> Result<Store, String> {
    open_store_at(&config.database_url).await
}

pub async fn open_store_at(url: &crate::secret::Secret) -> Result<Store, String> {
    let store = Store::connect(url).await.map_err(|e| format!("cannot open SIKA_DATABASE_URL: {e}."))?;
    store.migrate().await.map_err(|e| format!("cannot apply migrations: {e}."))?;
    Ok(store)
}

/// `SIKA_PUBLIC_URL`, or the address actually bound when it was derived from a port-0 listen address.
fn public_url(config: &Config, bound: SocketAddr) -> url::Url {
    let mut url = config.public_url.clone();
    if url.port() == Some(0) {
        let _ = url.set_port(Some(bound.port()));
    }
    url
}

/// Waits for SIGINT or SIGTERM.
pub async fn wait_for_signal() {
    shutdown_signal().await
}

/// Installs the SIGINT and SIGTERM handlers now, and returns what waits for either.
pub fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        let term = signal(SignalKind::terminate()).ok();
        let int = signal(SignalKind::interrupt()).ok();
        async move {
            match (term, int) {
                (Some(mut t), Some(mut i)) => {
                    tokio::select! {
                        _ = t.recv() => {},
                        _ = i.recv() => {},
                    }
                }
                _ => {
                    let _ = tokio::signal::ctrl_c().await;
                }
            }
        }
    }
    #[cfg(not(unix))]
    async {
        let _ = tokio::signal::ctrl_c().await;
    }
}
