//! The metrics listener (`SIKA_METRICS_LISTEN`): one route that scrapes
//! `crate::metrics` with what the application holds.

use super::AppState;

impl AppState {
    /// What `crate::metrics::scrape` reads.
    pub fn metric_sources(&self) -> crate::metrics::Sources<'_> {
        crate::metrics::Sources {
            store: &self.store,
            workers: &self.workers,
            flutterwave: self.payments.flutterwave(),
            settlement_grace_days: self.settlements.grace_days,
        }
    }
}

/// The metrics listener's one route.
pub fn router(state: AppState) -> axum::Router {
    use axum::response::IntoResponse;
    axum::Router::new()
        .route(
            "/metrics",
            axum::routing::get(|axum::extract::State(state): axum::extract::State<AppState>| async move {
                match crate::metrics::scrape(&state.metric_sources()).await {
                    Ok(text) => (
                        [(http::header::CONTENT_TYPE, "application/openmetrics-text; version=1.0.0; charset=utf-8")],
                        text,
                    )
                        .into_response(),
                    Err(e) => {
                        tracing::warn!(error = %e, "metrics scrape failed");
                        http::StatusCode::SERVICE_UNAVAILABLE.into_response()
                    }
                }
            }),
        )
        .with_state(state)
}
