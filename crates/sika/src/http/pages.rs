//! Health endpoints and the static assets and pages that need no login.

use axum::Json;
use axum::extract::State;
use axum::response::{IntoResponse, Response};
use http::{HeaderValue, header};

use super::AppState;
use super::error::AppError;

/// Liveness: the process answers. No auth, no database.
pub async fn healthz() -> Json<serde_json::Value> {
    Json(serde_json::json!({"status": "ok"}))
}

/// Readiness: the database answers, and every background worker is alive
/// and beating (a dead or stalled worker is a 503 naming it, in the log).
pub async fn readyz(State(state): State<AppState>) -> Result<Json<serde_json::Value>, AppError> {
    state.store.ping().await.map_err(|e| AppError::Unavailable(e.to_string()))?;
    if let Some(problem) = state.workers.problem() {
        return Err(AppError::Unavailable(problem));
    }
    let workers: Vec<serde_json::Value> =
        state.workers.jobs().iter().map(|j| serde_json::json!({"name": j.name, "restarts": j.restarts()})).collect();
    Ok(Json(serde_json::json!({"status": "ready", "workers": workers})))
}

pub async fn stylesheet() -> Response {
    let mut res = include_str!("../../assets/sika.css").into_response();
    res.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static("text/css; charset=utf-8"));
    res
}
