//! The worker API of reference §3.3 and §3.4 (WSME): list a function's workers, scale them up
//! and down, detach them — for the function (version 0) or one of its versions. Admin
//! operations under the policy (`function:scale_up`, …).

use std::collections::HashMap;

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use qinling_wire::Scale;

use crate::wire::{self, Kind, Schema};
use crate::{ApiError, ApiResult, AppState, RequestId, context, read_body};

/// The scale body (`ScaleInfo`, the wire type [`Scale`]): `{"count": n}`, n ≥ 1.
const SCALE: Schema = Schema {
    name: "scaleinfo",
    writable: &[("count", Kind::Int)],
    read_only: &[],
};

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let params = wire::query_params(q.as_deref(), &["function_version"])?;
    let version = match params.iter().find(|(k, _)| k == "function_version") {
        None => None,
        Some((_, v)) => Some(v.trim().parse::<i64>().ok().filter(|v| *v >= 0).ok_or_else(|| {
            ApiError::bad_request(format!("Invalid input for field/attribute function_version. Value: '{v}'. Expected a non-negative integer."))
        })?),
    };
    let workers = s
        .engine
        .function_workers(&context(&rid), &id, version)
        .await?;
    let items: Vec<_> = workers
        .iter()
        .map(|w| qinling_wire::Worker {
            function_id: w.function_id.clone(),
            function_version: w.function_version,
            worker_name: w.worker_name.clone(),
            node: w.node.clone(),
        })
        .collect();
    Ok(Json(qinling_wire::WorkerList { workers: items }))
}

/// Reads `{"count": n}` with 1 ≤ n ≤ the engine's bound.
async fn scale_count(s: &AppState, req: Request) -> ApiResult<usize> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, s.config.max_body, "a scale request").await?;
    let scale: Scale = wire::typed(wire::wsme_body(&parts.headers, &body, &SCALE)?)?;
    let max = qinling_engine::MAX_SCALE_COUNT;
    match scale.count {
        None => Err(ApiError::bad_request(
            "Invalid input for field/attribute count. Value: 'None'. Mandatory field missing: send {\"count\": n} with n >= 1.",
        )),
        Some(n) if n < 1 => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute count. Value: '{n}'. Value should be greater or equal to 1"
        ))),
        Some(n) if n as u64 > max as u64 => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute count. Value: '{n}'. Value should be lower or equal to {max}"
        ))),
        Some(n) => Ok(n as usize),
    }
}

/// The function id and version of a worker-API path: `/functions/{id}/…` (version 0) or
/// `/functions/{id}/versions/{n}/…`.
fn target(params: &HashMap<String, String>) -> ApiResult<(qinling_types::FunctionId, i64)> {
    let id = qinling_types::FunctionId::new(params.get("id").cloned().unwrap_or_default());
    let version = params
        .get("n")
        .map(|n| version_number(n))
        .transpose()?
        .unwrap_or(0);
    Ok((id, version))
}

pub async fn scale_up(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    scale(&s, &rid, &params, q.as_deref(), req, true).await
}

pub async fn scale_down(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    scale(&s, &rid, &params, q.as_deref(), req, false).await
}

/// Both scale handlers: the same path, query and body rules; `up` picks the direction.
async fn scale(
    s: &AppState,
    rid: &RequestId,
    params: &HashMap<String, String>,
    query: Option<&str>,
    req: Request,
    up: bool,
) -> ApiResult<StatusCode> {
    wire::query_params(query, &[])?;
    let (id, version) = target(params)?;
    let count = scale_count(s, req).await?;
    let ctx = context(rid);
    if up {
        s.engine.scale_up(&ctx, &id, version, count).await?;
    } else {
        s.engine.scale_down(&ctx, &id, version, count).await?;
    }
    Ok(StatusCode::ACCEPTED)
}

pub async fn detach(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(params): Path<HashMap<String, String>>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let (id, version) = target(&params)?;
    s.engine.detach(&context(&rid), &id, version).await?;
    Ok(StatusCode::ACCEPTED)
}

/// `/v1/functions/{id}/versions/{n}/…`: the version number in the path, as upstream's
/// `types.uuid`/int path arguments (a non-number is a 400).
pub(crate) fn version_number(raw: &str) -> ApiResult<i64> {
    raw.trim().parse::<i64>().ok().filter(|n| *n >= 0).ok_or_else(|| {
        ApiError::bad_request(format!(
            "Invalid input for field/attribute version. Value: '{raw}'. Expected a non-negative integer."
        ))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WSME schema accepts exactly the fields of the wire body it becomes.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<Scale>(&SCALE);
    }
}
