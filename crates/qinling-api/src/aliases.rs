//! `/v1/aliases` (WSME; reference §3.5), addressed by name. Beyond upstream:
//! `additional_version` and `additional_version_weight` (percent) split executions between
//! two versions.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::StatusCode;
use axum::response::IntoResponse;
use axum::{Extension, Json};
use qinling_engine::{CreateAlias, UpdateAlias};
use qinling_types::{FunctionAlias, format_ts};
use serde_json::{Map, Value, json};

use crate::functions::list_query;
use qinling_wire::AliasBody;

use crate::wire::{self, Kind, Schema};
use crate::{ApiError, ApiResult, AppState, RequestId, context, read_body};

const ALIAS: Schema = Schema {
    name: "function_alias",
    writable: &[
        ("name", Kind::Str),
        ("function_id", Kind::Str),
        ("function_version", Kind::Int),
        ("description", Kind::Str),
        ("additional_version", Kind::Int),
        ("additional_version_weight", Kind::Int),
    ],
    read_only: &["id", "project_id", "created_at", "updated_at"],
};

pub(crate) fn alias_json(a: &FunctionAlias) -> qinling_wire::Alias {
    qinling_wire::Alias {
        id: a.id.clone(),
        name: a.name.clone(),
        description: a.description.clone(),
        function_id: a.function_id.as_str().to_owned(),
        function_version: a.function_version,
        additional_version: a.additional_version,
        additional_version_weight: a.additional_version_weight,
        project_id: a.project_id.clone(),
        created_at: format_ts(a.created_at),
        updated_at: a.updated_at.map(format_ts),
    }
}

/// Reads a WSME body in which the given integer attributes may also come as numeric strings
/// (the client sends `--function-version` of updates as a JSON string; WSME coerced it).
pub(crate) async fn body_with_int_strings(
    s: &AppState,
    req: Request,
    schema: &Schema,
    ints: &[&str],
) -> ApiResult<Map<String, Value>> {
    let (parts, body) = req.into_parts();
    let body = read_body(body, s.config.max_body, schema.name).await?;
    let mut body = body;
    if let Ok(Value::Object(mut map)) = serde_json::from_slice::<Value>(&body) {
        let mut changed = false;
        for k in ints {
            if let Some(Value::String(v)) = map.get(*k)
                && let Ok(n) = v.trim().parse::<i64>()
            {
                map.insert(k.to_string(), json!(n));
                changed = true;
            }
        }
        if changed {
            body = serde_json::to_vec(&map).unwrap_or_default().into();
        }
    }
    wire::wsme_body(&parts.headers, &body, schema)
}

fn non_negative(value: Option<i64>, key: &str) -> ApiResult<Option<i64>> {
    match value {
        Some(v) if v < 0 => Err(ApiError::bad_request(format!(
            "Invalid input for field/attribute {key}. Value: '{v}'. Value should be greater or equal to 0"
        ))),
        v => Ok(v),
    }
}

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let body: AliasBody =
        wire::typed(body_with_int_strings(&s, req, &ALIAS, &["function_version"]).await?)?;
    let (Some(name), Some(function_id)) = (body.name, body.function_id) else {
        return Err(ApiError::bad_request(
            "Required param is missing. Required: {'name', 'function_id'}",
        ));
    };
    let req = CreateAlias {
        name,
        function_id: function_id.into(),
        function_version: non_negative(body.function_version, "function_version")?.unwrap_or(0),
        description: body.description,
        additional_version: non_negative(body.additional_version.flatten(), "additional_version")?,
        additional_version_weight: body.additional_version_weight.flatten(),
    };
    let alias = s.engine.create_alias(&context(&rid), req).await?;
    Ok((StatusCode::CREATED, Json(alias_json(&alias))))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let params = wire::query_params(q.as_deref(), &["all_projects", "project_id"])?;
    let aliases = s
        .engine
        .list_aliases(&context(&rid), &list_query(&params))
        .await?;
    Ok(Json(qinling_wire::AliasList {
        function_aliases: aliases.iter().map(alias_json).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    let alias = s.engine.get_alias(&context(&rid), &name).await?;
    Ok(Json(alias_json(&alias)))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let body: AliasBody = wire::typed(
        body_with_int_strings(
            &s,
            req,
            &ALIAS,
            &[
                "function_version",
                "additional_version",
                "additional_version_weight",
            ],
        )
        .await?,
    )?;
    if body.name.is_some() {
        return Err(ApiError::bad_request(
            "An alias cannot be renamed: create a new alias and delete this one.",
        ));
    }
    // The weighted pair changes together; both null (present) removes it.
    let additional = match (body.additional_version, body.additional_version_weight) {
        (None, None) => None,
        (Some(None), Some(None)) => Some(None),
        (version, weight) => match (
            non_negative(version.flatten(), "additional_version")?,
            weight.flatten(),
        ) {
            (Some(v), Some(w)) => Some(Some((v, w))),
            _ => {
                return Err(ApiError::bad_request(
                    "additional_version and additional_version_weight go together: send both (or both null to remove the split).",
                ));
            }
        },
    };
    let req = UpdateAlias {
        function_id: body.function_id.map(Into::into),
        function_version: non_negative(body.function_version, "function_version")?,
        description: body.description,
        additional,
    };
    let alias = s.engine.update_alias(&context(&rid), &name, req).await?;
    Ok(Json(alias_json(&alias)))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(name): Path<String>,
) -> ApiResult<impl IntoResponse> {
    s.engine.delete_alias(&context(&rid), &name).await?;
    Ok(StatusCode::NO_CONTENT)
}

#[cfg(test)]
mod tests {

    use super::*;

    /// The WSME schema accepts exactly the fields of the wire body it becomes.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<AliasBody>(&ALIAS);
    }
}
