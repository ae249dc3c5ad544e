//! The layers every request passes through, whatever route it reaches.
//!
//! `edge` (outermost): request id, the request's log span and access-log line,
//! the generic error body, and the security headers on every response.
//! `gate`: refuses methods Sika never serves (TRACE, TRACK, CONNECT, OPTIONS...)
//! and bodies of a content type the surface does not accept (XML included).

use std::time::Instant;

use axum::extract::{MatchedPath, Request};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use http::{HeaderMap, HeaderName, HeaderValue, Method, header};
use tracing::Instrument as _;

use super::error::{self, AppError};
use crate::crypto::random;

/// The id of the current request, shown to users in error messages and logged.
#[derive(Debug, Clone)]
pub struct RequestId(pub String);

/// Paths whose callers are programs: errors are JSON and bodies must be JSON.
pub fn is_machine_surface(path: &str) -> bool {
    path.starts_with("/api/") || path.starts_with("/webhooks/")
}

pub async fn edge(mut req: Request, next: Next) -> Response {
    let request_id = random::hex_id();
    let machine = is_machine_surface(req.uri().path());
    let method = req.method().clone();
    let span = tracing::info_span!(
        "request",
        request_id = %request_id,
        method = %req.method(),
        route = tracing::field::Empty,
    );
    req.extensions_mut().insert(RequestId(request_id.clone()));
    let started = Instant::now();
    let mut res = next.run(req).instrument(span.clone()).await;
    let own = res.extensions().get::<error::OwnBody>().is_some();
    if (res.status().is_client_error() || res.status().is_server_error()) && !own {
        res = error::render(res, machine, &request_id);
    }
    secure_headers(res.headers_mut());
    if let Ok(v) = HeaderValue::from_str(&request_id) {
        res.headers_mut().insert(HeaderName::from_static("x-request-id"), v);
    }
    let status = res.status().as_u16();
    let elapsed = started.elapsed();
    let latency_us = u64::try_from(elapsed.as_micros()).unwrap_or(u64::MAX);
    span.in_scope(|| tracing::info!(status, latency_us, "request completed"));
    // Unmatched paths share one label: a scanner cannot grow the series.
    let route = res.extensions().get::<RouteTemplate>().map_or_else(|| "unmatched".to_string(), |r| r.0.clone());
    let known =
        matches!(method, Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE);
    let m = crate::metrics::global();
    m.requests
        .get_or_create(&crate::metrics::Request {
            route: route.clone(),
            method: if known { method.as_str().to_string() } else { "other".into() },
            status,
        })
        .inc();
    m.latency.get_or_create(&crate::metrics::Route { route }).observe(elapsed.as_secs_f64());
    res
}

/// Records the matched route template (never the raw path) in the request span.
pub async fn record_route(req: Request, next: Next) -> Response {
    let route = req.extensions().get::<MatchedPath>().map(|p| p.as_str().to_string());
    if let Some(path) = &route {
        tracing::Span::current().record("route", path.as_str());
    }
    let mut res = next.run(req).await;
    if let Some(path) = route {
        res.extensions_mut().insert(RouteTemplate(path));
    }
    res
}

/// The matched route's template, carried out to `edge` for the metrics.
#[derive(Clone)]
struct RouteTemplate(String);

/// The routes that take a file: the bulk-payout CSV upload and a chargeback
/// answer's evidence (`multipart/form-data`, up to [`UPLOAD_LIMIT`]).
pub const UPLOAD_PATH: &str = "/payouts/batches";

/// `/disputes/{id}/answer`: a chargeback answer with its evidence file.
fn is_evidence_upload(path: &str) -> bool {
    path.strip_prefix("/disputes/")
        .and_then(|rest| rest.strip_suffix("/answer"))
        .is_some_and(|id| !id.is_empty() && id.len() <= 20 && id.bytes().all(|b| b.is_ascii_digit()))
}
/// A 1 MiB file and the form around it.
pub const UPLOAD_LIMIT: usize = 1024 * 1024 + 64 * 1024;

/// Bodies larger than the limit get 413: `max` everywhere, [`UPLOAD_LIMIT`]
/// on the two bulk-payout routes (the console's upload and the API's batch). A declared length is checked at once; a streamed
/// body is cut off when it passes the limit.
pub async fn limit_body(max: usize, req: Request, next: Next) -> Response {
    let path = req.uri().path();
    let bulk = matches!(path, UPLOAD_PATH | "/api/v1/payout-batches") || is_evidence_upload(path);
    let limit = if bulk { UPLOAD_LIMIT.max(max) } else { max };
    let declared =
        req.headers().get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).and_then(|v| v.parse::<usize>().ok());
    if declared.is_some_and(|n| n > limit) {
        return http::StatusCode::PAYLOAD_TOO_LARGE.into_response();
    }
    let req = req.map(|b| axum::body::Body::new(http_body_util::Limited::new(b, limit)));
    next.run(req).await
}

/// Content types accepted in request bodies, by surface.
fn accepts(path: &str, content_type: &str) -> bool {
    if path == UPLOAD_PATH || is_evidence_upload(path) {
        return content_type == "multipart/form-data";
    }
    if is_machine_surface(path) {
        content_type == "application/json"
    } else {
        content_type == "application/x-www-form-urlencoded"
    }
}

pub async fn gate(req: Request, next: Next) -> Response {
    let allowed = matches!(
        *req.method(),
        Method::GET | Method::HEAD | Method::POST | Method::PUT | Method::PATCH | Method::DELETE
    );
    if !allowed {
        return AppError::MethodNotAllowed.into_response();
    }
    if has_body(req.headers()) {
        let content_type = req
            .headers()
            .get(header::CONTENT_TYPE)
            .and_then(|v| v.to_str().ok())
            .map(|v| v.split(';').next().unwrap_or("").trim().to_ascii_lowercase())
            .unwrap_or_default();
        if !accepts(req.uri().path(), &content_type) {
            return AppError::UnsupportedMediaType.into_response();
        }
    }
    next.run(req).await
}

fn has_body(headers: &HeaderMap) -> bool {
    headers.contains_key(header::TRANSFER_ENCODING)
        || headers.get(header::CONTENT_LENGTH).and_then(|v| v.to_str().ok()).is_some_and(|v| v.trim() != "0")
}

pub use crate::server::secure_headers;
