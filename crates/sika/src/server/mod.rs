//! The listeners: HTTPS for everything, and an optional plain-HTTP one that only redirects.

pub mod tls;

use std::collections::HashMap;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulConnection;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// A TLS handshake must finish within this time, or the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Under pressure (most connection slots taken), handshakes get this long only.
pub const HANDSHAKE_TIMEOUT_UNDER_PRESSURE: Duration = Duration::from_secs(2);
/// Request headers must arrive within this time (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; further clients wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Flips to `true` once; every listener watching it stops accepting and drains.
pub type Shutdown = watch::Receiver<bool>;

/// How many connections may be open: in all, and from one client address.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub max_connections: usize,
    /// 0: no per-address cap (behind a load balancer every client has its address).
    pub per_ip: usize,
}

impl Default for Limits {
    fn default() -> Self {
        Limits { max_connections: MAX_CONNECTIONS, per_ip: crate::config::DEFAULT_MAX_CONNECTIONS_PER_IP }
    }
}

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new()).http1_only();
    b.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(64 * 1024);
    b
}

/// Serves `app` over TLS on `listener` until `shutdown` flips, then lets
/// in-flight requests finish (up to [`DRAIN_TIMEOUT`]).
pub async fn serve_https(
    listener: TcpListener,
    tls: Arc<rustls::ServerConfig>,
    app: Router,
    shutdown: Shutdown,
    limits: Limits,
) {
    serve(listener, Some(tokio_rustls::TlsAcceptor::from(tls)), app, shutdown, limits).await;
}

/// Plain HTTP that answers every request with a permanent redirect to the
/// same path on `public_url`, and serves nothing else.
pub async fn serve_redirect(listener: TcpListener, public_url: url::Url, shutdown: Shutdown, limits: Limits) {
    let origin = public_url.origin().ascii_serialization();
    let app = Router::new().fallback(move |req: http::Request<Body>| {
        let origin = origin.clone();
        async move {
            // Only the path and query come from the request; the host is ours.
            let path = req.uri().path_and_query().map(|p| p.as_str()).unwrap_or("/");
            let mut res = http::Response::new(Body::empty());
            *res.status_mut() = http::StatusCode::PERMANENT_REDIRECT;
            if let Ok(v) = http::HeaderValue::from_str(&format!("{origin}{path}")) {
                res.headers_mut().insert(http::header::LOCATION, v);
            }
            secure_headers(res.headers_mut());
            res
        }
    });
    serve(listener, None, app, shutdown, limits).await;
}

/// Connections open per client address. A slot is given back when its guard drops.
#[derive(Clone, Default)]
struct PerAddress(Arc<Mutex<HashMap<IpAddr, usize>>>);

struct AddressSlot {
    table: PerAddress,
    ip: IpAddr,
}

impl PerAddress {
    fn take(&self, ip: IpAddr, cap: usize) -> Option<AddressSlot> {
        let mut t = self.0.lock().unwrap_or_else(|e| e.into_inner());
        let n = t.entry(ip).or_insert(0);
        if cap > 0 && *n >= cap {
            return None;
        }
        *n += 1;
        Some(AddressSlot { table: self.clone(), ip })
    }
}

impl Drop for AddressSlot {
    fn drop(&mut self) {
        let mut t = self.table.0.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(n) = t.get_mut(&self.ip) {
            *n = n.saturating_sub(1);
            if *n == 0 {
                t.remove(&self.ip);
            }
        }
    }
}

/// The accept loop shared by both listeners: bounded connections in all and
/// per client address, handshake and header timeouts, idle connections shed
/// when most slots are taken, and a graceful drain on shutdown.
async fn serve(
    listener: TcpListener,
    tls: Option<tokio_rustls::TlsAcceptor>,
    app: Router,
    mut shutdown: Shutdown,
    limits: Limits,
) {
    let builder = Arc::new(builder());
    let max = limits.max_connections.max(1);
    let slots = Arc::new(Semaphore::new(max));
    let per_address = PerAddress::default();
    // Bumped under pressure: every connection idle between requests closes.
    let (shed, shed_rx) = watch::channel(0u64);
    let mut last_shed: Option<tokio::time::Instant> = None;
    loop {
        let permit = tokio::select! {
            p = slots.clone().acquire_owned() => match p { Ok(p) => p, Err(_) => break },
            _ = shutdown.changed() => break,
        };
        let (stream, peer) = tokio::select! {
            r = listener.accept() => match r {
                Ok(x) => x,
                Err(e) => {
                    // Usually EMFILE: back off instead of spinning.
                    tracing::warn!(error = %e, "accept failed");
                    tokio::time::sleep(Duration::from_millis(50)).await;
                    continue;
                }
            },
            _ = shutdown.changed() => break,
        };
        let Some(address_slot) = per_address.take(peer.ip(), limits.per_ip) else {
            // One client holds its share already: close at once, before any TLS work.
            tracing::debug!(%peer, "connection refused: too many from this address");
            continue;
        };
        let pressure = slots.available_permits() < max / 4;
        if pressure && last_shed.is_none_or(|t| t.elapsed() >= Duration::from_secs(1)) {
            last_shed = Some(tokio::time::Instant::now());
            shed.send_modify(|n| *n += 1);
            tracing::warn!(open = max - slots.available_permits(), "many connections open: closing idle ones");
        }
        let handshake_timeout = if pressure { HANDSHAKE_TIMEOUT_UNDER_PRESSURE } else { HANDSHAKE_TIMEOUT };
        let _ = stream.set_nodelay(true);
        let (tls, app, builder) = (tls.clone(), app.clone(), builder.clone());
        let (mut shed_rx, mut stop) = (shed_rx.clone(), shutdown.clone());
        shed_rx.mark_unchanged();
        tokio::spawn(async move {
            let _slots = (permit, address_slot);
            // Requests being handled on this connection: 0 means idle, safe to drop when shedding.
            let busy = Arc::new(std::sync::atomic::AtomicUsize::new(0));
            let in_service = busy.clone();
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                let guard = Busy::start(&in_service);
                let call = app.clone().oneshot(req.map(Body::new));
                async move {
                    let res = call.await;
                    drop(guard);
                    res
                }
            });
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(handshake_timeout, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    drive(conn, &busy, &mut shed_rx, &mut stop).await;
                }
                None => {
                    let conn = builder.serve_connection(TokioIo::new(stream), service);
                    drive(conn, &busy, &mut shed_rx, &mut stop).await;
                }
            }
        });
    }
    drop(listener);
    // Every connection holds a slot: all slots back means all connections closed.
    let all_closed = slots.acquire_many(u32::try_from(max).unwrap_or(u32::MAX));
    if tokio::time::timeout(DRAIN_TIMEOUT, all_closed).await.is_err() {
        tracing::warn!("shutdown: some connections were still busy after the drain timeout");
    }
}

/// Counts a request in flight on its connection while alive.
struct Busy(Arc<std::sync::atomic::AtomicUsize>);

impl Busy {
    fn start(n: &Arc<std::sync::atomic::AtomicUsize>) -> Self {
        n.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Busy(n.clone())
    }
}

impl Drop for Busy {
    fn drop(&mut self) {
        self.0.fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
    }
}

/// Serves one connection. Shedding closes it at once when no request is in
/// flight (idle keep-alive, or never used); otherwise, like shutdown, it
/// finishes the request in flight and then closes.
async fn drive<C>(conn: C, busy: &std::sync::atomic::AtomicUsize, shed: &mut watch::Receiver<u64>, stop: &mut Shutdown)
where
    C: GracefulConnection,
{
    tokio::pin!(conn);
    let mut closing = false;
    loop {
        tokio::select! {
            _ = conn.as_mut() => return,
            r = shed.changed(), if !closing => {
                if r.is_err() { continue; }
                if busy.load(std::sync::atomic::Ordering::SeqCst) == 0 {
                    return;
                }
                conn.as_mut().graceful_shutdown();
                closing = true;
            }
            r = stop.changed(), if !closing => {
                if r.is_ok() { conn.as_mut().graceful_shutdown(); closing = true; }
            }
        }
    }
}

/// The hardening headers, set on every response (pages, JSON, errors, 404s).
pub fn secure_headers(h: &mut http::HeaderMap) {
    let set = |h: &mut http::HeaderMap, name: &'static str, value: &'static str| {
        h.insert(http::HeaderName::from_static(name), http::HeaderValue::from_static(value));
    };
    set(h, "strict-transport-security", "max-age=63072000; includeSubDomains");
    // The checklist: "no-cache and no-store instead of private".
    set(h, "cache-control", "no-store, no-cache, must-revalidate, max-age=0");
    set(h, "pragma", "no-cache");
    set(h, "expires", "0");
    set(
        h,
        "content-security-policy",
        "default-src 'self'; img-src 'self' data:; frame-ancestors 'none'; form-action 'self'; \
         base-uri 'none'; object-src 'none'",
    );
    set(h, "x-content-type-options", "nosniff");
    set(h, "x-frame-options", "DENY");
    set(h, "referrer-policy", "no-referrer");
    set(
        h,
        "permissions-policy",
        "accelerometer=(), camera=(), geolocation=(), gyroscope=(), magnetometer=(), microphone=(), \
         payment=(), usb=(), browsing-topics=()",
    );
    set(h, "cross-origin-opener-policy", "same-origin");
    set(h, "cross-origin-resource-policy", "same-origin");
    h.remove(http::header::SERVER);
    h.remove(http::HeaderName::from_static("x-powered-by"));
}
