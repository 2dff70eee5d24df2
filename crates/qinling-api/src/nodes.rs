//! `GET /v1/nodes` (not in upstream; admin): the nodes of the platform — a cluster's
//! members with their address, version, capacity, load, workers and last heartbeat, or the
//! server itself when it runs on its own. And the probes of load balancers and service
//! managers, open to all: `GET /healthz` (the process answers) and `GET /readyz` (it can
//! serve: its database answers; 503 with the reason otherwise).

use axum::Extension;
use axum::Json;
use axum::extract::State;
use axum::http::StatusCode;
use axum::response::IntoResponse;
use serde_json::json;

use crate::{ApiResult, AppState, RequestId, context};

pub(crate) async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
) -> ApiResult<Json<qinling_wire::NodeList>> {
    let nodes = s.engine.list_nodes(&context(&rid)).await?;
    Ok(Json(qinling_wire::NodeList {
        nodes: nodes
            .into_iter()
            .map(|n| qinling_wire::Node {
                id: n.id,
                name: n.name,
                address: n.address,
                version: n.version,
                capacity: n.capacity,
                running: n.running,
                workers: n.workers,
                last_heartbeat: n.last_heartbeat,
                status: n.status,
            })
            .collect(),
    }))
}

pub(crate) async fn healthz() -> impl IntoResponse {
    Json(json!({"status": "ok"}))
}

pub(crate) async fn readyz(State(s): State<AppState>) -> impl IntoResponse {
    match s.engine.ready().await {
        Ok(()) => (StatusCode::OK, Json(json!({"status": "ready"}))),
        Err(error) => (
            StatusCode::SERVICE_UNAVAILABLE,
            Json(json!({"status": "unavailable", "reason": error.to_string()})),
        ),
    }
}
