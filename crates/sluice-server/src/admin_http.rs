//! Admin HTTP: `/metrics` (OpenMetrics or Prometheus text, as asked), `/healthz` (the process is up), `/readyz` (the
//! local model is loaded).

use axum::extract::State;
use axum::http::{header, HeaderMap, StatusCode};
use axum::response::IntoResponse;
use axum::routing::get;

use crate::gateway::Gateway;

pub fn router(gw: Gateway) -> axum::Router {
    axum::Router::new()
        .route("/metrics", get(metrics))
        .route("/healthz", get(|| async { "ok\n" }))
        .route("/readyz", get(readyz))
        .with_state(gw)
}

/// OpenMetrics for a scraper that asks for it (Prometheus does), else the Prometheus text
/// format 0.0.4 that `promtool check metrics`, curl and older tools read.
async fn metrics(State(gw): State<Gateway>, headers: HeaderMap) -> impl IntoResponse {
    gw.metrics()
        .sync_cache_remote_errors(gw.caches().remote_errors());
    let text = gw.metrics().encode();
    let openmetrics = headers
        .get(header::ACCEPT)
        .and_then(|v| v.to_str().ok())
        .is_some_and(|v| v.contains("application/openmetrics-text"));
    if openmetrics {
        (
            [(
                header::CONTENT_TYPE,
                "application/openmetrics-text; version=1.0.0; charset=utf-8",
            )],
            text,
        )
    } else {
        (
            [(
                header::CONTENT_TYPE,
                "text/plain; version=0.0.4; charset=utf-8",
            )],
            crate::metrics::prometheus_text(&text),
        )
    }
}

async fn readyz(State(gw): State<Gateway>) -> impl IntoResponse {
    if gw.is_draining() {
        (
            StatusCode::SERVICE_UNAVAILABLE,
            "draining: the server is stopping\n",
        )
    } else if gw.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading the local model\n")
    }
}
