//! The one error type of the HTTP layer, and how any error becomes a response.
//!
//! A handler's error carries only a status, a stable code and a message that is
//! safe to show. The cause is logged inside the request's span. The body itself
//! is written in one place, [`render`], for every 4xx/5xx response — ours, the
//! router's 404/405, the body limit's 413, a timeout or a caught panic — so
//! nothing internal can reach a user by another path.

use axum::body::Body;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, StatusCode, header};

use crate::store::StoreError;

/// Marks an error response whose body is already a safe page of ours (the
/// console's 403/404 with its navigation): the edge keeps it.
#[derive(Debug, Clone, Copy)]
pub struct OwnBody;

/// What a user may see of an error: a stable code and a plain sentence.
#[derive(Debug, Clone)]
pub struct PublicError {
    pub code: &'static str,
    pub message: String,
}

#[derive(Debug, thiserror::Error)]
pub enum AppError {
    /// The request is wrong; `message` speaks about the caller's own input.
    #[error("{code}: {message}")]
    BadRequest { code: &'static str, message: String },
    #[error("unauthorized")]
    Unauthorized,
    #[error("forbidden")]
    Forbidden,
    /// Refused for a reason the caller should know (a feature turned off).
    #[error("{code}: {message}")]
    Refused { code: &'static str, message: String },
    #[error("not found")]
    NotFound,
    #[error("method not allowed")]
    MethodNotAllowed,
    #[error("{code}: {message}")]
    Conflict { code: &'static str, message: String },
    #[error("unsupported media type")]
    UnsupportedMediaType,
    #[error("too many requests")]
    TooManyRequests { retry_after_secs: u64 },
    /// A dependency is down; the reason is logged, never shown.
    #[error("unavailable: {0}")]
    Unavailable(String),
    /// Anything unexpected; the source is logged, never shown.
    #[error("internal error: {0}")]
    Internal(#[source] Box<dyn std::error::Error + Send + Sync>),
}

impl From<StoreError> for AppError {
    fn from(e: StoreError) -> Self {
        AppError::Internal(Box::new(e))
    }
}

impl AppError {
    pub fn bad_request(code: &'static str, message: impl Into<String>) -> Self {
        AppError::BadRequest { code, message: message.into() }
    }

    pub fn status(&self) -> StatusCode {
        match self {
            AppError::BadRequest { .. } => StatusCode::BAD_REQUEST,
            AppError::Unauthorized => StatusCode::UNAUTHORIZED,
            AppError::Forbidden | AppError::Refused { .. } => StatusCode::FORBIDDEN,
            AppError::NotFound => StatusCode::NOT_FOUND,
            AppError::MethodNotAllowed => StatusCode::METHOD_NOT_ALLOWED,
            AppError::Conflict { .. } => StatusCode::CONFLICT,
            AppError::UnsupportedMediaType => StatusCode::UNSUPPORTED_MEDIA_TYPE,
            AppError::TooManyRequests { .. } => StatusCode::TOO_MANY_REQUESTS,
            AppError::Unavailable(_) => StatusCode::SERVICE_UNAVAILABLE,
            AppError::Internal(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn public(&self) -> PublicError {
        match self {
            AppError::BadRequest { code, message }
            | AppError::Conflict { code, message }
            | AppError::Refused { code, message } => PublicError { code, message: message.clone() },
            other => default_public(other.status()),
        }
    }
}

impl IntoResponse for AppError {
    fn into_response(self) -> Response {
        let status = self.status();
        if status.is_server_error() {
            tracing::error!(error = %self, source = ?std::error::Error::source(&self), "request failed");
        } else {
            tracing::info!(error = %self, "request refused");
        }
        let mut res = Response::new(Body::empty());
        *res.status_mut() = status;
        if let AppError::TooManyRequests { retry_after_secs } = self {
            res.headers_mut().insert(header::RETRY_AFTER, HeaderValue::from(retry_after_secs));
        }
        res.extensions_mut().insert(self.public());
        res
    }
}

/// The generic text for a status, used whenever nothing more specific is known.
pub fn default_public(status: StatusCode) -> PublicError {
    let (code, message) = match status.as_u16() {
        400 => ("bad_request", "The request is not valid."),
        401 => ("unauthorized", "Authentication is required."),
        403 => ("forbidden", "You are not allowed to do this."),
        404 => ("not_found", "There is nothing here."),
        405 => ("method_not_allowed", "This method is not allowed here."),
        408 => ("timeout", "The request took too long."),
        409 => ("conflict", "The request conflicts with the current state."),
        413 => ("payload_too_large", "The request body is too large."),
        415 => ("unsupported_media_type", "This content type is not accepted here."),
        422 => ("unprocessable", "The request could not be processed."),
        429 => ("rate_limited", "Too many requests; try again later."),
        503 => ("unavailable", "The service is temporarily unavailable; try again later."),
        s if s >= 500 => ("internal", "Something went wrong on our side."),
        _ => ("error", "The request could not be completed."),
    };
    PublicError { code, message: message.to_string() }
}

/// Replaces the body of an error response with the generic rendering:
/// JSON (`{"error": {code, message, request_id}}`) on the API, a plain page elsewhere.
pub fn render(res: Response, json: bool, request_id: &str) -> Response {
    let (mut parts, _body) = res.into_parts();
    let public = parts.extensions.remove::<PublicError>().unwrap_or_else(|| default_public(parts.status));
    parts.headers.remove(header::CONTENT_LENGTH);
    let body = if json {
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("application/json"));
        serde_json::json!({"error": {"code": public.code, "message": public.message, "request_id": request_id}})
            .to_string()
    } else {
        parts.headers.insert(header::CONTENT_TYPE, HeaderValue::from_static("text/html; charset=utf-8"));
        let status = parts.status;
        format!(
            "<!doctype html><html lang=\"en\"><head><meta charset=\"utf-8\"><title>{code} · Sika</title>\
             <link rel=\"stylesheet\" href=\"/static/sika.css\"></head><body><main class=\"error\">\
             <h1>{code} {reason}</h1><p>{message}</p><p class=\"muted\">Request id: <code>{id}</code></p>\
             <p><a href=\"/\">Back to Sika</a></p></main></body></html>",
            code = status.as_u16(),
            reason = escape_html(status.canonical_reason().unwrap_or("Error")),
            message = escape_html(&public.message),
            id = escape_html(request_id),
        )
    };
    Response::from_parts(parts, Body::from(body))
}

/// Minimal HTML escaping for the few strings this module writes itself.
pub fn escape_html(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#x27;"),
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn internal_errors_show_only_the_generic_text() {
        let err = AppError::Internal("relation \"users\" does not exist at /srv/sika".into());
        let res = render(err.into_response(), true, "abc");
        let public = format!("{:?}", res.headers());
        assert!(!public.contains("users"));
        assert_eq!(res.status(), 500);
    }

    #[test]
    fn escape_html_escapes_markup() {
        assert_eq!(escape_html("<a href='x'>&</a>"), "&lt;a href=&#x27;x&#x27;&gt;&amp;&lt;/a&gt;");
    }
}
