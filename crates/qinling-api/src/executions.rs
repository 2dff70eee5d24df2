//! `/v1/executions` (WSME), and the plain-pecan log endpoint.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use qinling_engine::{CreateExecution, ExecutionQuery, ExecutionTarget};
use qinling_wire::ExecutionCreate;

use crate::functions::list_query;
use crate::wire::{self, Kind, Schema};
use crate::{ApiError, ApiResult, AppState, RequestId, context, read_body};

const EXECUTION: Schema = Schema {
    name: "execution",
    writable: &[
        ("function_id", Kind::Str),
        ("function_alias", Kind::Str),
        ("function_version", Kind::Int),
        ("description", Kind::Str),
        ("sync", Kind::Bool),
        ("input", Kind::Str),
    ],
    read_only: &[
        "id",
        "status",
        "result",
        "project_id",
        "created_at",
        "updated_at",
        "trace_id",
        "cold_start_ms",
    ],
};

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let (parts, body) = req.into_parts();
    let body = read_body(body, s.config.max_body, "an execution").await?;
    let body: ExecutionCreate = wire::typed(wire::wsme_body(&parts.headers, &body, &EXECUTION)?)?;
    let version = body.function_version.unwrap_or(0);
    if version < 0 {
        return Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute function_version. Value: '{version}'. Value should be greater or equal to 0"
        )));
    }
    // An alias names the function and picks the version (of a weighted pair); as upstream
    // it takes precedence over `function_id`/`function_version`. The engine resolves it.
    let target = ExecutionTarget::named(
        body.function_alias.as_deref(),
        body.function_id.as_deref(),
        version,
    )
    .ok_or_else(|| {
        ApiError::bad_request("Either function_alias or function_id must be provided.")
    })?;
    let req = CreateExecution {
        target,
        description: body.description,
        sync: body.sync.unwrap_or(true),
        input: body.input,
        trace: crate::traceparent(&parts.headers),
    };
    let execution = s.engine.create_execution(&context(&rid), req).await?;
    Ok((StatusCode::CREATED, Json(wire::execution_json(&execution))))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let params = wire::query_params(
        q.as_deref(),
        &[
            "function_id",
            "status",
            "description",
            "all_projects",
            "project_id",
        ],
    )?;
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let query = ExecutionQuery {
        projects: list_query(&params),
        function_id: get("function_id"),
        status: get("status"),
        description: get("description"),
    };
    let executions = s.engine.list_executions(&context(&rid), &query).await?;
    Ok(Json(qinling_wire::ExecutionList {
        executions: executions.iter().map(wire::execution_json).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::ExecutionId>,
) -> ApiResult<impl IntoResponse> {
    let execution = s.engine.get_execution(&context(&rid), &id).await?;
    Ok(Json(wire::execution_json(&execution)))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::ExecutionId>,
) -> ApiResult<impl IntoResponse> {
    s.engine.delete_execution(&context(&rid), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Whether an `Accept` header admits `text/plain`.
fn accepts_text(headers: &HeaderMap) -> bool {
    let Some(accept) = headers.get(header::ACCEPT).and_then(|v| v.to_str().ok()) else {
        return true;
    };
    accept.split(',').any(|part| {
        let media = part.split(';').next().unwrap_or("").trim();
        matches!(media, "text/plain" | "text/*" | "*/*" | "")
    })
}

pub async fn log(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::ExecutionId>,
    headers: HeaderMap,
) -> Result<Response, ApiError> {
    if !accepts_text(&headers) {
        return Ok(crate::error::webob(StatusCode::NOT_ACCEPTABLE, None));
    }
    let execution = s
        .engine
        .get_execution(&context(&rid), &id)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    match execution.logs.filter(|l| !l.is_empty()) {
        None => Ok(StatusCode::NO_CONTENT.into_response()),
        Some(logs) => {
            Ok(([(header::CONTENT_TYPE, "text/plain; charset=UTF-8")], logs).into_response())
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WSME schema accepts exactly the fields of the wire body it becomes.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<ExecutionCreate>(&EXECUTION);
    }

    #[test]
    fn accept_header() {
        let cases = [
            (None, true),
            (Some("text/plain"), true),
            (Some("*/*"), true),
            (Some("application/json"), false),
            (Some("application/json, text/plain;q=0.5"), true),
        ];
        for (accept, expect) in cases {
            let mut h = HeaderMap::new();
            if let Some(a) = accept {
                h.insert(header::ACCEPT, a.parse().unwrap());
            }
            assert_eq!(accepts_text(&h), expect, "{accept:?}");
        }
    }
}
