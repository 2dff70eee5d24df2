//! `GET /v1/nodes` (not in upstream; admin): the nodes of the platform — a cluster's
//! members with their address, version, capacity, load, workers and last heartbeat, or the
//! server itself when it runs on its own.

use axum::Extension;
use axum::Json;
use axum::extract::State;

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
