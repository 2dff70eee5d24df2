//! `/v1/webhooks` (WSME; reference §3.8) and the plain-pecan, unauthenticated
//! `POST /v1/webhooks/{id}/invoke`, whose query, form fields or JSON-object keys become the
//! function's keyword arguments. `webhook_url` is built from the configured public base URL
//! (`public_url`), else from the request's `Host`.

use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, Uri, header};
use axum::response::IntoResponse;
use axum::{Extension, Json};
use qinling_engine::{UpdateWebhook, WebhookTarget};
use qinling_types::{Webhook, format_ts};
use qinling_wire::WebhookBody;
use serde_json::{Map, Value};

use crate::aliases::body_with_int_strings;
use crate::functions::list_query;
use crate::wire::{self, Kind, Schema};
use crate::{ApiError, ApiResult, AppState, RequestId, context, read_body};

const WEBHOOK: Schema = Schema {
    name: "webhook",
    writable: &[
        ("function_id", Kind::Str),
        ("function_alias", Kind::Str),
        ("function_version", Kind::Int),
        ("description", Kind::Str),
    ],
    read_only: &[
        "id",
        "project_id",
        "created_at",
        "updated_at",
        "webhook_url",
    ],
};

/// The base of `webhook_url`: the configured public URL, else `http://<Host>`.
fn public_base(s: &AppState, headers: &HeaderMap, uri: &Uri) -> String {
    match &s.config.public_url {
        Some(url) => url.trim_end_matches('/').to_string(),
        None => crate::base_url(headers, uri),
    }
}

fn webhook_json(w: &Webhook, base: &str) -> qinling_wire::Webhook {
    qinling_wire::Webhook {
        id: w.id.as_str().to_owned(),
        function_id: w.function_id.as_deref().map(str::to_owned),
        function_alias: w.function_alias.clone(),
        function_version: w.function_version,
        description: w.description.clone(),
        project_id: w.project_id.clone(),
        created_at: format_ts(w.created_at),
        updated_at: w.updated_at.map(format_ts),
        webhook_url: format!("{base}/v1/webhooks/{}/invoke", w.id),
    }
}

fn target(body: &WebhookBody) -> WebhookTarget {
    WebhookTarget {
        function_id: body.function_id.clone().map(Into::into),
        function_version: body.function_version,
        function_alias: body.function_alias.clone(),
    }
}

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let body: WebhookBody =
        wire::typed(body_with_int_strings(&s, req, &WEBHOOK, &["function_version"]).await?)?;
    let webhook = s
        .engine
        .create_webhook(&context(&rid), target(&body), body.description)
        .await?;
    let base = public_base(&s, &headers, &uri);
    Ok((StatusCode::CREATED, Json(webhook_json(&webhook, &base))))
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    uri: Uri,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let params = wire::query_params(q.as_deref(), &["all_projects", "project_id"])?;
    let webhooks = s
        .engine
        .list_webhooks(&context(&rid), &list_query(&params))
        .await?;
    let base = public_base(&s, &headers, &uri);
    Ok(Json(qinling_wire::WebhookList {
        webhooks: webhooks.iter().map(|w| webhook_json(w, &base)).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<qinling_types::WebhookId>,
) -> ApiResult<impl IntoResponse> {
    let webhook = s.engine.get_webhook(&context(&rid), &id).await?;
    Ok(Json(webhook_json(
        &webhook,
        &public_base(&s, &headers, &uri),
    )))
}

pub async fn update(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    headers: HeaderMap,
    uri: Uri,
    Path(id): Path<qinling_types::WebhookId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> ApiResult<impl IntoResponse> {
    wire::query_params(q.as_deref(), &[])?;
    let body: WebhookBody =
        wire::typed(body_with_int_strings(&s, req, &WEBHOOK, &["function_version"]).await?)?;
    let req = UpdateWebhook {
        target: target(&body),
        description: body.description,
    };
    let webhook = s.engine.update_webhook(&context(&rid), &id, req).await?;
    Ok(Json(webhook_json(
        &webhook,
        &public_base(&s, &headers, &uri),
    )))
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::WebhookId>,
) -> ApiResult<impl IntoResponse> {
    s.engine.delete_webhook(&context(&rid), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}

/// Adds `key = value` to the parameters; a repeated key becomes a list (as pecan does).
fn add_param(params: &mut Map<String, Value>, key: String, value: Value) {
    match params.get_mut(&key) {
        None => {
            params.insert(key, value);
        }
        Some(Value::Array(items)) => items.push(value),
        Some(first) => {
            let first = first.take();
            params.insert(key, Value::Array(vec![first, value]));
        }
    }
}

/// The invocation's parameters: query string, then the form fields or JSON object keys.
async fn invoke_params(
    s: &AppState,
    query: Option<&str>,
    req: Request,
) -> ApiResult<Map<String, Value>> {
    let mut params = Map::new();
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}.")))?;
    for (k, v) in pairs {
        add_param(&mut params, k, Value::String(v));
    }
    let (parts, body) = req.into_parts();
    let ctype = parts
        .headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = read_body(body, s.config.max_body, "a webhook invocation").await?;
    if bytes.iter().all(u8::is_ascii_whitespace) {
        return Ok(params);
    }
    if ctype.starts_with("application/json") {
        match serde_json::from_slice::<Value>(&bytes) {
            Ok(Value::Object(map)) => {
                for (k, v) in map {
                    params.insert(k, v);
                }
            }
            _ => {
                return Err(ApiError::bad_request(
                    "The webhook body must be a JSON object (its keys become the function's keyword arguments), or form fields.",
                ));
            }
        }
    } else if ctype.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&ctype)
            .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}.")))?;
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        let mut mp = multer::Multipart::new(stream, boundary);
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}.")))?
        {
            let name = field.name().unwrap_or("").to_string();
            let text = field
                .text()
                .await
                .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}.")))?;
            add_param(&mut params, name, Value::String(text));
        }
    } else {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::bad_request(format!("Malformed form body: {e}.")))?;
        for (k, v) in pairs {
            add_param(&mut params, k, Value::String(v));
        }
    }
    Ok(params)
}

pub async fn invoke(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::WebhookId>,
    RawQuery(q): RawQuery,
    req: Request,
) -> Result<impl IntoResponse, ApiError> {
    let trace = crate::traceparent(req.headers());
    let params = invoke_params(&s, q.as_deref(), req)
        .await
        .map_err(ApiError::pecan)?;
    let execution_id = s
        .engine
        .invoke_webhook(&rid.0, &id, params, trace)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    Ok((
        StatusCode::ACCEPTED,
        Json(qinling_wire::WebhookInvoked {
            execution_id: execution_id.into_string(),
        }),
    ))
}

#[cfg(test)]
mod tests {
    use serde_json::json;

    use super::*;

    /// The WSME schema accepts exactly the fields of the wire body it becomes.
    #[test]
    fn the_schema_is_the_wire_body() {
        wire::assert_schema_is_body::<WebhookBody>(&WEBHOOK);
    }

    #[test]
    fn repeated_params_become_lists() {
        let mut p = Map::new();
        add_param(&mut p, "q".into(), json!("1"));
        add_param(&mut p, "a".into(), json!("1"));
        add_param(&mut p, "a".into(), json!("2"));
        add_param(&mut p, "a".into(), json!("3"));
        assert_eq!(Value::Object(p), json!({"q": "1", "a": ["1", "2", "3"]}));
    }
}
