//! `/v1/functions`. Create, show/download and update are plain-pecan handlers (form data,
//! `{"faultstring"}` errors, `code` as an object); list and delete are WSME.

use axum::body::Body;
use axum::extract::{Path, RawQuery, Request, State};
use axum::http::{HeaderMap, StatusCode, header};
use axum::response::{IntoResponse, Response};
use axum::{Extension, Json};
use qinling_engine::{CreateFunction, ListQuery, UpdateFunction};
use qinling_wire::{FunctionCreate, FunctionUpdate};

use crate::wire;
use crate::{ApiError, ApiResult, AppState, RequestId, context, read_body};

/// A pecan form: text fields and the `package` file.
#[derive(Debug, Default)]
struct Form {
    fields: Vec<(String, String)>,
    package: Option<Vec<u8>>,
}

impl Form {
    /// The form as its wire body: the text fields (the last of a repeated one wins; fields
    /// the body does not name are ignored, as pecan ignores them) and the package file.
    fn into_body<T: serde::de::DeserializeOwned>(self) -> ApiResult<(T, Option<Vec<u8>>)> {
        let fields: serde_json::Map<String, serde_json::Value> = self
            .fields
            .into_iter()
            .map(|(k, v)| (k, serde_json::Value::String(v)))
            .collect();
        let body = serde_json::from_value(serde_json::Value::Object(fields))
            .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}.")))?;
        Ok((body, self.package))
    }
}

/// Reads a multipart or urlencoded form, or a JSON object (pecan merges one into the
/// keyword arguments).
async fn read_form(headers: &HeaderMap, body: Body, limit: usize) -> ApiResult<Form> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = read_body(body, limit, "a function (package plus form fields)").await?;
    if ctype.starts_with("multipart/form-data") {
        let boundary = multer::parse_boundary(&ctype)
            .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}.")))?;
        let stream = futures_util::stream::once(async move { Ok::<_, std::io::Error>(bytes) });
        let mut mp = multer::Multipart::new(stream, boundary);
        let mut form = Form::default();
        while let Some(field) = mp
            .next_field()
            .await
            .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}.")))?
        {
            let name = field.name().unwrap_or("").to_string();
            let is_file = field.file_name().is_some() || name == "package";
            let data = field
                .bytes()
                .await
                .map_err(|e| ApiError::bad_request(format!("Malformed multipart body: {e}.")))?;
            if is_file && name == "package" {
                form.package = Some(data.to_vec());
            } else {
                let text = String::from_utf8(data.to_vec()).map_err(|_| {
                    ApiError::bad_request(format!("Form field '{name}' is not UTF-8 text."))
                })?;
                form.fields.push((name, text));
            }
        }
        Ok(form)
    } else if ctype.starts_with("application/json") {
        let value: serde_json::Value = if bytes.is_empty() {
            serde_json::json!({})
        } else {
            serde_json::from_slice(&bytes).map_err(|e| {
                ApiError::bad_request(format!("Request body is not valid JSON: {e}."))
            })?
        };
        let serde_json::Value::Object(map) = value else {
            return Err(ApiError::bad_request("Request body must be a JSON object."));
        };
        let fields = map
            .into_iter()
            .filter(|(_, v)| !v.is_null())
            .map(|(k, v)| {
                let text = match v {
                    serde_json::Value::String(s) => s,
                    other => other.to_string(),
                };
                (k, text)
            })
            .collect();
        Ok(Form {
            fields,
            package: None,
        })
    } else if ctype.starts_with("application/x-www-form-urlencoded") || bytes.is_empty() {
        let fields = serde_urlencoded::from_bytes(&bytes)
            .map_err(|e| ApiError::bad_request(format!("Malformed form body: {e}.")))?;
        Ok(Form {
            fields,
            package: None,
        })
    } else {
        Err(ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            format!(
                "Unsupported Content-Type '{ctype}': send multipart/form-data (with a package), application/x-www-form-urlencoded or application/json."
            ),
        ))
    }
}

/// The `code` field: a JSON object naming the source. Only packages run here.
fn parse_code(raw: &str) -> ApiResult<serde_json::Map<String, serde_json::Value>> {
    let value: serde_json::Value = serde_json::from_str(raw).map_err(|_| {
        ApiError::bad_request(format!(
            "Invalid code '{raw}': it must be a JSON object such as {{\"source\": \"package\"}}."
        ))
    })?;
    let serde_json::Value::Object(code) = value else {
        return Err(ApiError::bad_request(format!(
            "Invalid code '{raw}': it must be a JSON object such as {{\"source\": \"package\"}}."
        )));
    };
    check_source(code.get("source").and_then(|s| s.as_str()))?;
    Ok(code)
}

fn check_source(source: Option<&str>) -> ApiResult<()> {
    match source {
        Some("package") => Ok(()),
        Some("swift") => Err(ApiError::bad_request("Swift object not supported.")),
        Some("image") => Err(ApiError::bad_request(
            "Image functions are not supported by this server (no container engine): package the code and use a runtime.",
        )),
        _ => Err(ApiError::bad_request(
            "Invalid code source specified, available sources: package, swift, image",
        )),
    }
}

fn nonempty(v: Option<String>) -> Option<String> {
    v.filter(|s| !s.is_empty())
}

pub async fn create(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let form = read_form(&parts.headers, body, s.config.max_package_body)
        .await
        .map_err(ApiError::pecan)?;
    let (mut body, package) = form
        .into_body::<FunctionCreate>()
        .map_err(ApiError::pecan)?;
    body.package = package;
    let code_raw = body.code.ok_or_else(|| {
        ApiError::bad_request("Required param is missing. Required: {'code'}").pecan()
    })?;
    let code = parse_code(&code_raw).map_err(ApiError::pecan)?;
    let req = CreateFunction {
        name: body.name,
        description: body.description,
        runtime_id: body.runtime_id.map(Into::into),
        entry: nonempty(body.entry),
        cpu: nonempty(body.cpu),
        memory_size: nonempty(body.memory_size),
        timeout: nonempty(body.timeout),
        network: nonempty(body.network),
        execution_mode: nonempty(body.execution_mode),
        md5sum: code
            .get("md5sum")
            .and_then(|m| m.as_str())
            .map(str::to_string),
        package: body.package,
    };
    let function = s
        .engine
        .create_function(&context(&rid), req)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    Ok((
        StatusCode::CREATED,
        Json(wire::function_json(&function, false)),
    )
        .into_response())
}

pub async fn list(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
) -> ApiResult<impl IntoResponse> {
    let params = wire::query_params(q.as_deref(), &["all_projects", "project_id"])?;
    let functions = s
        .engine
        .list_functions(&context(&rid), &list_query(&params))
        .await?;
    Ok(Json(qinling_wire::FunctionList {
        functions: functions
            .iter()
            .map(|f| wire::function_json(f, true))
            .collect(),
    }))
}

/// The projects a list asks for: `all_projects` (oslo truthy) and the first `project_id`.
/// Whether the caller may see them is the engine's decision.
pub(crate) fn list_query(params: &[(String, String)]) -> ListQuery {
    ListQuery {
        project_id: params
            .iter()
            .find(|(k, _)| k == "project_id")
            .map(|(_, v)| v.clone()),
        all_projects: params
            .iter()
            .any(|(k, v)| k == "all_projects" && wire::truthy(v)),
    }
}

/// `GET /v1/functions/{id}/stats?minutes=N` (not in upstream): the function's live
/// statistics, for the dashboard's charts.
pub async fn stats(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
    RawQuery(q): RawQuery,
) -> ApiResult<Json<qinling_wire::FunctionStats>> {
    let params = wire::query_params(q.as_deref(), &["minutes"])?;
    let minutes = params
        .iter()
        .find(|(k, _)| k == "minutes")
        .map(|(_, v)| v.as_str());
    let st = s
        .engine
        .function_stats(&context(&rid), &id, minutes)
        .await?;
    let point = |p: &qinling_engine::stats::StatsPoint| qinling_wire::StatsPoint {
        start: p
            .start
            .map(qinling_types::format_precise)
            .unwrap_or_default(),
        executions: p.executions as i64,
        failed: p.failed as i64,
        errors: p.errors as i64,
        cold_starts: p.cold_starts as i64,
        p50_ms: p.p50_ms,
        p99_ms: p.p99_ms,
    };
    Ok(Json(qinling_wire::FunctionStats {
        function_id: st.function_id.as_str().to_owned(),
        minutes: i64::from(st.minutes),
        step_seconds: st.step_seconds,
        end: qinling_types::format_precise(st.end),
        workers: st.workers as i64,
        truncated: st.truncated,
        totals: point(&st.totals),
        points: st.points.iter().map(point).collect(),
    }))
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
    RawQuery(q): RawQuery,
) -> Result<Response, ApiError> {
    let params: Vec<(String, String)> =
        serde_urlencoded::from_str(q.as_deref().unwrap_or("")).unwrap_or_default();
    let download = params
        .iter()
        .any(|(k, v)| k == "download" && wire::truthy(v));
    let ctx = context(&rid);
    let function = s
        .engine
        .get_function(&ctx, &id)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    if !download {
        return Ok(Json(wire::function_json(&function, false)).into_response());
    }
    let zip = s
        .engine
        .function_package(&function)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    Ok((
        [
            (header::CONTENT_TYPE, "application/zip".to_string()),
            (
                header::CONTENT_DISPOSITION,
                format!("attachment; filename=\"{}\"", function.id),
            ),
        ],
        zip,
    )
        .into_response())
}

pub async fn update(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
    req: Request,
) -> Result<Response, ApiError> {
    let (parts, body) = req.into_parts();
    let form = read_form(&parts.headers, body, s.config.max_package_body)
        .await
        .map_err(ApiError::pecan)?;
    let (mut body, package) = form
        .into_body::<FunctionUpdate>()
        .map_err(ApiError::pecan)?;
    body.package = package;
    // The CLI flattens `code` into the form (`source=package` + the file); others send it.
    let mut md5sum = None;
    if let Some(code_raw) = &body.code {
        let code = parse_code(code_raw).map_err(ApiError::pecan)?;
        md5sum = code
            .get("md5sum")
            .and_then(|m| m.as_str())
            .map(str::to_string);
    } else if let Some(source) = &body.source {
        check_source(Some(source)).map_err(ApiError::pecan)?;
    }
    let text = |v: Option<String>| v.map(|v| if v.is_empty() { None } else { Some(v) });
    let req = UpdateFunction {
        name: text(body.name),
        description: text(body.description),
        entry: text(body.entry),
        cpu: body.cpu,
        memory_size: body.memory_size,
        timeout: body.timeout,
        network: nonempty(body.network),
        execution_mode: nonempty(body.execution_mode),
        md5sum,
        package: body.package,
    };
    let function = s
        .engine
        .update_function(&context(&rid), &id, req)
        .await
        .map_err(|e| ApiError::from(e).pecan())?;
    Ok(Json(wire::function_json(&function, false)).into_response())
}

pub async fn delete(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    Path(id): Path<qinling_types::FunctionId>,
) -> ApiResult<impl IntoResponse> {
    s.engine.delete_function(&context(&rid), &id).await?;
    Ok(StatusCode::NO_CONTENT)
}
