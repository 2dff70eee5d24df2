//! `/v1/functions/{id}/versions` (reference §3.4): create, list and delete are WSME; show and
//! download are plain pecan (`{"faultstring"}` errors). The worker actions of a version live
//! in `workers.rs`. Beyond upstream, a version shows its snapshot (`code`, `entry`, `cpu`,
//! `memory_size`, `timeout`) as extra read-only fields.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use qinling_types::{FunctionVersion, format_ts};
use qinling_wire::VersionCreate;
use serde_json::json;

use crate::wire::{self, Kind, Schema};
use crate::workers::version_number;
use crate::{ApiError, ApiResult, AppState, RequestId, context, read_body};

/// The create body (the wire type [`VersionCreate`]) and the read-only fields WSME names.
const VERSION: Schema = Schema {
    name: "function_version",
    writable: &[("description", Kind::Str)],
    read_only: &[
        "id",
        "function_id",
        "version_number",
        "count",
        "project_id",
        "created_at",
        "updated_at",
    ],
};

pub(crate) fn version_json(v: &FunctionVersion) -> qinling_wire::Version {
    qinling_wire::Version {
        id: v.id.clone(),
        description: v.description.clone(),
        function_id: v.function_id.as_str().to_owned(),
        version_number: v.version_number,
        count: v.count,
        code: json!({"source": "package", "md5sum": v.md5sum}),
        entry: v.entry.clone(),
        cpu: v.cpu,
        memory_size: v.memory_size,
        timeout: v.timeout,
        network: v.network,
        execution_mode: v.execution_mode.as_str().to_owned(),
        project_id: v.project_id.clone(),
        created_at: format_ts(v.created_at),
        updated_at: v.updated_at.map(format_ts),
    }
}

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let (parts, body) = req.into_parts();
    let body = read_body(body, s.config.max_body, "a function version").await?;
    let body: VersionCreate = wire::typed(wire::wsme_body(&parts.headers, &body, &VERSION)?)?;
    let version = s
        .engine
        .create_version(&context(&rid), &id, body.description)
        .await?;
    Ok((StatusCode::CREATED, Json(version_json(&version))))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let versions = s.engine.list_versions(&context(&rid), &id).await?;
    Ok(Json(qinling_wire::VersionList {
        function_versions: versions.iter().map(version_json).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path((id, n)): Path<(qinling_types::FunctionId, String)>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let download = params
        .iter()
        .any(|(k, v)| k == "download" && wire::truthy(v));
    let n = version_number(&n).map_err(ApiError::pecan)?;
    let version = s
        .engine
        .get_version(&context(&rid), &id, n)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    if !download {
        return Ok(Json(version_json(&version)).into_response());
    }
    let zip = s
        .engine
        .version_package(&version)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}_{}\"", version.function_id, n),
            ),
        ],
        zip,
    )
        .into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path((id, n)): Path<(qinling_types::FunctionId, String)>,
) -> ApiResult<impl IntoResponse> {
    let n = version_number(&n)?;
    s.engine.delete_version(&context(&rid), &id, n).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WSME schema accepts exactly the fields of the wire body it becomes.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<VersionCreate>(&VERSION);
    }
}
