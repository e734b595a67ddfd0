//! The REST interface (axum): `GET /` (name and version), `GET /status`
//! (JSON in the older monitor's shape), `GET /metrics` (Prometheus text)
//! and `GET /healthz`.
//!
//! Handlers only read [`Shared`]; they never touch ZooKeeper, so a slow or
//! absent ensemble cannot make the HTTP side hang.

use std::sync::Arc;

use axum::Router;
use axum::extract::State;
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use serde_json::json;
use tokio::net::TcpListener;
use tokio::sync::watch;

use crate::status::Shared;

/// The routes, over `shared`.
pub fn router(shared: Arc<Shared>) -> Router {
    Router::new()
        .route("/", get(root))
        .route("/status", get(status))
        .route("/metrics", get(metrics))
        .route("/healthz", get(healthz))
        .with_state(shared)
}

/// Serves until `shutdown` becomes true.
pub async fn serve(
    listener: TcpListener,
    shared: Arc<Shared>,
    mut shutdown: watch::Receiver<bool>,
) -> std::io::Result<()> {
    axum::serve(listener, router(shared))
        .with_graceful_shutdown(async move {
            let _ = shutdown.wait_for(|s| *s).await;
        })
        .await
}

fn json_response(v: &serde_json::Value) -> Response {
    let body = serde_json::to_string_pretty(v).unwrap_or_default() + "\n";
    ([(header::CONTENT_TYPE, "application/json")], body).into_response()
}

async fn root(State(shared): State<Arc<Shared>>) -> Response {
    json_response(&json!({"name": "zk-monitor", "version": shared.version}))
}

async fn status(State(shared): State<Arc<Shared>>) -> Response {
    json_response(&shared.status_json())
}

async fn metrics(State(shared): State<Arc<Shared>>) -> Response {
    (
        [(
            header::CONTENT_TYPE,
            "text/plain; version=0.0.4; charset=utf-8",
        )],
        shared.metrics_text(),
    )
        .into_response()
}

async fn healthz(State(shared): State<Arc<Shared>>) -> Response {
    let snap = shared.snapshot();
    let body = json!({"status": "ok", "zookeeper_connected": snap.connected});
    (StatusCode::OK, json_response(&body)).into_response()
}
