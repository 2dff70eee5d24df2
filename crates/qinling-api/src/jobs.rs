//! `/v1/jobs` (WSME; reference §3.7).

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use qinling_engine::{CreateJob, UpdateJob};
use qinling_types::{Job, format_ts};
use qinling_wire::JobBody;

use crate::aliases::body_with_int_strings;
use crate::functions::list_query;
use crate::wire::{self, Kind, Schema};
use crate::{ApiError, ApiResult, AppState, RequestId, context};

/// The job body. Update accepts the same attributes and, as upstream, ignores those it cannot
/// change (`count`, the target).
const JOB: Schema = Schema {
    name: "job",
    writable: &[
        ("name", Kind::Str),
        ("function_id", Kind::Str),
        ("function_alias", Kind::Str),
        ("function_version", Kind::Int),
        ("function_input", Kind::Str),
        ("status", Kind::Str),
        ("pattern", Kind::Str),
        ("count", Kind::Int),
        ("first_execution_time", Kind::Str),
        ("next_execution_time", Kind::Str),
    ],
    read_only: &["id", "project_id", "created_at", "updated_at"],
};

pub(crate) fn job_json(j: &Job) -> qinling_wire::Job {
    qinling_wire::Job {
        id: j.id.as_str().to_owned(),
        name: j.name.clone(),
        function_id: j.function_id.as_deref().map(str::to_owned),
        function_alias: j.function_alias.clone(),
        function_version: j.function_version,
        function_input: j.function_input.clone(),
        status: j.status.as_str().into(),
        pattern: j.pattern.clone(),
        count: j.count,
        first_execution_time: format_ts(j.first_execution_time),
        next_execution_time: format_ts(j.next_execution_time),
        project_id: j.project_id.clone(),
        created_at: format_ts(j.created_at),
        updated_at: j.updated_at.map(format_ts),
    }
}

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let body: JobBody =
        wire::typed(body_with_int_strings(&s, req, &JOB, &["function_version", "count"]).await?)?;
    for (k, set) in [
        ("status", body.status.is_some()),
        ("next_execution_time", body.next_execution_time.is_some()),
    ] {
        if set {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {k}. Cannot set read only field on create: a new job is running and due at its first_execution_time."
            )));
        }
    }
    let req = CreateJob {
        name: body.name,
        function_id: body.function_id.map(Into::into),
        function_alias: body.function_alias,
        function_version: body.function_version.unwrap_or(0),
        function_input: body.function_input,
        pattern: body.pattern,
        first_execution_time: body.first_execution_time,
        count: body.count,
    };
    let job = s.engine.create_job(&context(&rid), req).await?;
    Ok((StatusCode::CREATED, Json(job_json(&job))))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let params = wire::query_params(q.as_deref(), &["all_projects", "project_id"])?;
    let jobs = s
        .engine
        .list_jobs(&context(&rid), &list_query(&params))
        .await?;
    Ok(Json(qinling_wire::JobList {
        jobs: jobs.iter().map(job_json).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::JobId>,
) -> ApiResult<impl IntoResponse> {
    let job = s.engine.get_job(&context(&rid), &id).await?;
    Ok(Json(job_json(&job)))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::JobId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let body: JobBody =
        wire::typed(body_with_int_strings(&s, req, &JOB, &["function_version", "count"]).await?)?;
    let req = UpdateJob {
        name: body.name,
        function_input: body.function_input,
        status: body.status,
        pattern: body.pattern,
        next_execution_time: body.next_execution_time,
    };
    let job = s.engine.update_job(&context(&rid), &id, req).await?;
    Ok(Json(job_json(&job)))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::JobId>,
) -> ApiResult<impl IntoResponse> {
    s.engine.delete_job(&context(&rid), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The WSME schema accepts exactly the fields of the wire body it becomes.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<JobBody>(&JOB);
    }
}
