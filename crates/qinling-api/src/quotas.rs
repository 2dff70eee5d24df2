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
use qinling_wire::QuotaUpdate;
use serde_json::Value;

use crate::{ApiError, ApiResult, AppState, read_body, wire};

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
    let changes = quota_changes(&body)?;
    let q = s.engine.set_quotas(&project_id, &changes).await?;
    Ok(Json(quota_json(&project_id, &q)))
}

/// A quota update body as the engine's changes, in the body's order. The body is checked
/// field by field first (so each refusal names its field and value), then read as its wire
/// type, [`QuotaUpdate`].
fn quota_changes(body: &[u8]) -> ApiResult<Vec<(Resource, Option<i64>)>> {
    let value: Value = serde_json::from_slice(body)
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
    let mut named = Vec::new();
    for (k, v) in &map {
        let r = Resource::from_name(k).ok_or_else(|| {
            ApiError::bad_request(format!("Unknown quota '{k}'. Quotas: {}.", names()))
        })?;
        if !(v.is_null() || v.is_i64()) {
            return Err(ApiError::bad_request(format!(
                "Invalid quota {k}: {v}. Use an integer >= 0, -1 for unlimited, or null for the default."
            )));
        }
        named.push(r);
    }
    if named.is_empty() {
        return Err(ApiError::bad_request(format!(
            "No quota to change. Quotas: {}.",
            names()
        )));
    }
    let update: QuotaUpdate = wire::typed(map)?;
    Ok(named
        .into_iter()
        .map(|r| (r, limit_in(&update, r).flatten()))
        .collect())
}

/// The change an update makes to one resource's limit: absent, `Some(None)` (back to the
/// default) or a new limit.
fn limit_in(update: &QuotaUpdate, r: Resource) -> Option<Option<i64>> {
    match r {
        Resource::Functions => update.functions,
        Resource::PackageBytes => update.package_bytes,
        Resource::ConcurrentExecutions => update.concurrent_executions,
        Resource::Workers => update.workers,
        Resource::ExecutionsPerMinute => update.executions_per_minute,
    }
}

pub async fn reset(
    State(s): State<AppState>,
    Path(project_id): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let all: Vec<_> = Resource::ALL.iter().map(|r| (*r, None)).collect();
    s.engine.set_quotas(&project_id, &all).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {
    use qinling_wire::{Object, QuotaLimits};

    use super::*;

    /// The wire bodies name the engine's resources, in its order.
    #[test]
    fn the_wire_bodies_are_the_resources() {
        let names: Vec<&str> = Resource::ALL.iter().map(|r| r.name()).collect();
        assert_eq!(QuotaUpdate::fields(), names);
        assert_eq!(QuotaLimits::fields(), names);
    }

    #[test]
    fn changes_keep_the_body_order_and_tell_null() {
        let got = quota_changes(br#"{"workers": null, "functions": 10}"#).unwrap();
        assert_eq!(
            got,
            [(Resource::Workers, None), (Resource::Functions, Some(10))]
        );
        let refused = |body: &str| quota_changes(body.as_bytes()).unwrap_err().message;
        assert_eq!(
            refused(r#"{"functions": "10"}"#),
            "Invalid quota functions: \"10\". Use an integer >= 0, -1 for unlimited, or null for the default."
        );
        assert!(
            refused(r#"{"bogus": 1}"#).starts_with("Unknown quota 'bogus'. Quotas: functions, ")
        );
        assert!(refused("{}").starts_with("No quota to change."));
        assert!(refused("[]").starts_with("The quota body must be a JSON object"));
    }
}
