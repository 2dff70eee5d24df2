//! `/v1/quotas/{project_id}` (not in upstream, which has no quotas — reference §3.9): read a
//! project's limits and usage (admins, or the project itself), change them (admins; the
//! policy check is in [`crate::auth`]), or reset them to the configured defaults.
//!
//! `GET` → 200 `{"quota": {"project_id", "enforced", "limits": {...}, "usage": {...}}}`;
//! `PUT` with `{"functions": 10, "workers": null, ...}` (null resets one limit, -1 is
//! unlimited) → 200 with the same body; `DELETE` resets every limit → 204.

use axum::Json;
use axum::extract::{Path, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use qinling_engine::quotas::{Limits, QuotaSet, Resource};
use serde_json::Value;

use crate::{ApiError, ApiResult, AppState, read_body};

fn limits_json(l: &Limits) -> qinling_wire::QuotaLimits {
    qinling_wire::QuotaLimits {
        functions: l.get(Resource::Functions),
        package_bytes: l.get(Resource::PackageBytes),
        concurrent_executions: l.get(Resource::ConcurrentExecutions),
        workers: l.get(Resource::Workers),
        executions_per_minute: l.get(Resource::ExecutionsPerMinute),
    }
}

fn quota_json(project_id: &str, q: &QuotaSet) -> qinling_wire::Quota {
    qinling_wire::Quota {
        quota: qinling_wire::QuotaSet {
            project_id: project_id.to_string(),
            enforced: q.enforced,
            limits: limits_json(&q.limits),
            usage: limits_json(&q.usage),
        },
    }
}

pub async fn show(
    State(s): State<AppState>,
    Path(project_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let q = s.engine.quotas(&project_id).await?;
    Ok(Json(quota_json(&project_id, &q)))
}

pub async fn update(
    State(s): State<AppState>,
    Path(project_id): Path<String>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let body = read_body(req.into_body(), s.config.max_body, "a quota update").await?;
    let value: Value = serde_json::from_slice(&body)
        .map_err(|e| ApiError::bad_request(format!("Invalid JSON body: {e}.")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(
            "The quota body must be a JSON object such as {\"functions\": 10}.",
        ));
    };
    let names = || {
        Resource::ALL
            .iter()
            .map(|r| r.name())
            .collect::<Vec<_>>()
            .join(", ")
    };
    let mut changes = Vec::new();
    for (k, v) in &map {
        let r = Resource::from_name(k).ok_or_else(|| {
            ApiError::bad_request(format!("Unknown quota '{k}'. Quotas: {}.", names()))
        })?;
        let limit = match v {
            Value::Null => None,
            v => Some(v.as_i64().ok_or_else(|| {
                ApiError::bad_request(format!(
                    "Invalid quota {k}: {v}. Use an integer >= 0, -1 for unlimited, or null for the default."
                ))
            })?),
        };
        changes.push((r, limit));
    }
    if changes.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No quota to change. Quotas: {}.",
            names()
        )));
    }
    let q = s.engine.set_quotas(&project_id, &changes).await?;
    Ok(Json(quota_json(&project_id, &q)))
}

pub async fn reset(
    State(s): State<AppState>,
    Path(project_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let all: Vec<_> = Resource::ALL.iter().map(|r| (*r, None)).collect();
    s.engine.set_quotas(&project_id, &all).await?;
    Ok(StatusCode::NO_CONTENT)
}
