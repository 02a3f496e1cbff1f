//! Admin HTTP: `/metrics` (Prometheus text), `/healthz` (the process is up), `/readyz` (the
//! local model is loaded).

use axum::extract::State;
use axum::http::{header, StatusCode};
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

async fn metrics(State(gw): State<Gateway>) -> impl IntoResponse {
    gw.metrics()
        .sync_cache_remote_errors(gw.caches().remote_errors());
    (
        [(
            header::CONTENT_TYPE,
            "application/openmetrics-text; version=1.0.0; charset=utf-8",
        )],
        gw.metrics().encode(),
    )
}

async fn readyz(State(gw): State<Gateway>) -> impl IntoResponse {
    if gw.is_ready() {
        (StatusCode::OK, "ready\n")
    } else {
        (StatusCode::SERVICE_UNAVAILABLE, "loading the local model\n")
    }
}
