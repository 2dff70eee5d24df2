//! `/v1/runtimes` (WSME).

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use qinling_engine::{CreateRuntime, UpdateRuntime};
use qinling_wire::{RuntimeCreate, RuntimeUpdate};

use crate::wire::{self, Kind, Schema};
use crate::{ApiResult, AppState, RequestId, context, read_body};

/// Runtime bodies: create takes every writable field; update refuses the fixed ones itself.
const RUNTIME: Schema = Schema {
    name: "runtime",
    writable: &[
        ("id", Kind::Str),
        ("name", Kind::Str),
        ("image", Kind::Str),
        ("description", Kind::Str),
        ("is_public", Kind::Bool),
        ("trusted", Kind::Bool),
    ],
    read_only: &["status", "project_id", "created_at", "updated_at"],
};

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let (parts, body) = req.into_parts();
    let body = read_body(body, s.config.max_body, "a runtime").await?;
    let body: RuntimeCreate = wire::typed(wire::wsme_body(&parts.headers, &body, &RUNTIME)?)?;
    let image = body.image.ok_or_else(|| {
        crate::ApiError::bad_request("Required param is missing. Required: {'image'}")
    })?;
    let req = CreateRuntime {
        id: body.id.map(Into::into),
        name: body.name,
        image,
        description: body.description,
        is_public: body.is_public.unwrap_or(true),
        trusted: body.trusted.unwrap_or(true),
    };
    let runtime = s.engine.create_runtime(&context(&rid), req).await?;
    Ok((StatusCode::CREATED, Json(wire::runtime_json(&runtime))))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let runtimes = s.engine.list_runtimes(&context(&rid)).await?;
    Ok(Json(qinling_wire::RuntimeList {
        runtimes: runtimes.iter().map(wire::runtime_json).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::RuntimeId>,
) -> ApiResult<impl IntoResponse> {
    let runtime = s.engine.get_runtime(&context(&rid), &id).await?;
    Ok(Json(wire::runtime_json(&runtime)))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::RuntimeId>,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, s.config.max_body, "a runtime").await?;
    let map = wire::wsme_body(&parts.headers, &body, &RUNTIME)?;
    for fixed in ["is_public", "trusted", "id"] {
        if map.get(fixed).is_some_and(|v| !v.is_null()) {
            return Err(crate::ApiError::bad_request(format!(
                "Runtime attribute '{fixed}' cannot be changed; updatable: name, description, image."
            )));
        }
    }
    let body: RuntimeUpdate = wire::typed(map)?;
    let upd = UpdateRuntime {
        name: body.name,
        description: body.description,
        image: body.image,
    };
    let runtime = s.engine.update_runtime(&context(&rid), &id, upd).await?;
    Ok(Json(wire::runtime_json(&runtime)))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::RuntimeId>,
) -> ApiResult<impl IntoResponse> {
    s.engine.delete_runtime(&context(&rid), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

pub async fn pool(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::RuntimeId>,
) -> ApiResult<impl IntoResponse> {
    let cap = s.engine.runtime_pool(&context(&rid), &id).await?;
    Ok(Json(qinling_wire::Pool {
        name: id.into_string(),
        capacity: qinling_wire::PoolCapacity {
            total: cap.total as u64,
            available: cap.available as u64,
        },
    }))
}

#[cfg(test)]
mod tests {
    use qinling_wire::Object;

    use super::*;

    /// The WSME schema accepts exactly the fields of the create body; an update's are a part.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<RuntimeCreate>(&RUNTIME);
        let writable: Vec<&str> = RUNTIME.writable.iter().map(|(name, _)| *name).collect();
        assert!(RuntimeUpdate::fields().iter().all(|f| writable.contains(f)));
    }
}
