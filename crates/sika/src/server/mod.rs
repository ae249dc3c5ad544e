//! The listeners: HTTPS for everything, and an optional plain-HTTP one that only redirects.

pub mod tls;

use std::sync::Arc;
use std::time::Duration;

use axum::Router;
use axum::body::Body;
use axum::extract::ConnectInfo;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo, TokioTimer};
use hyper_util::server::conn::auto;
use hyper_util::server::graceful::GracefulShutdown;
use tokio::net::TcpListener;
use tokio::sync::{Semaphore, watch};
use tower::ServiceExt as _;

/// A TLS handshake must finish within this time, or the connection is dropped.
pub const HANDSHAKE_TIMEOUT: Duration = Duration::from_secs(10);
/// Request headers must arrive within this time (slowloris).
pub const HEADER_TIMEOUT: Duration = Duration::from_secs(10);
/// Connections open at once; further clients wait in the kernel's backlog.
pub const MAX_CONNECTIONS: usize = 4096;
/// How long shutdown waits for in-flight requests.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(30);

/// Flips to `true` once; every listener watching it stops accepting and drains.
pub type Shutdown = watch::Receiver<bool>;

fn builder() -> auto::Builder<TokioExecutor> {
    let mut b = auto::Builder::new(TokioExecutor::new()).http1_only();
    b.http1().timer(TokioTimer::new()).header_read_timeout(HEADER_TIMEOUT).max_buf_size(64 * 1024);
    b
}

/// Serves `app` over TLS on `listener` until `shutdown` flips, then lets
/// in-flight requests finish (up to [`DRAIN_TIMEOUT`]).
pub async fn serve_https(listener: TcpListener, tls: Arc<rustls::ServerConfig>, app: Router, shutdown: Shutdown) {
    serve(listener, Some(tokio_rustls::TlsAcceptor::from(tls)), app, shutdown).await;
}

/// Plain HTTP that answers every request with a permanent redirect to the
/// same path on `public_url`, and serves nothing else.
pub async fn serve_redirect(listener: TcpListener, public_url: url::Url, shutdown: Shutdown) {
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
            crate::http::edge::secure_headers(res.headers_mut());
            res
        }
    });
    serve(listener, None, app, shutdown).await;
}

/// The accept loop shared by both listeners: bounded connections, handshake
/// and header timeouts, and a graceful drain on shutdown.
async fn serve(listener: TcpListener, tls: Option<tokio_rustls::TlsAcceptor>, app: Router, mut shutdown: Shutdown) {
    let graceful = GracefulShutdown::new();
    let builder = Arc::new(builder());
    let slots = Arc::new(Semaphore::new(MAX_CONNECTIONS));
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
        let _ = stream.set_nodelay(true);
        let (tls, app, builder, watcher) = (tls.clone(), app.clone(), builder.clone(), graceful.watcher());
        tokio::spawn(async move {
            let _permit = permit;
            let service = hyper::service::service_fn(move |mut req: http::Request<Incoming>| {
                req.extensions_mut().insert(ConnectInfo(peer));
                app.clone().oneshot(req.map(Body::new))
            });
            match tls {
                Some(acceptor) => {
                    let stream = match tokio::time::timeout(HANDSHAKE_TIMEOUT, acceptor.accept(stream)).await {
                        Ok(Ok(s)) => s,
                        Ok(Err(e)) => {
                            tracing::debug!(%peer, error = %e, "TLS handshake refused");
                            return;
                        }
                        Err(_) => return,
                    };
                    let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
                }
                None => {
                    let _ = watcher.watch(builder.serve_connection(TokioIo::new(stream), service)).await;
                }
            }
        });
    }
    drop(listener);
    if tokio::time::timeout(DRAIN_TIMEOUT, graceful.shutdown()).await.is_err() {
        tracing::warn!("shutdown: some connections were still busy after the drain timeout");
    }
}
