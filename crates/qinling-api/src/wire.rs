//! The Qinling wire format: request bodies and query strings in (WSME's strict JSON objects,
//! pecan's forms) and resources out as the `qinling-wire` bodies (always every field, `null`
//! when unset, timestamps as `YYYY-MM-DDTHH:MM:SSZ`).

use axum::http::{HeaderMap, header};
use bytes::Bytes;
use qinling_types::{Execution, Function, Runtime, format_ts};
use qinling_wire as body;
use serde_json::{Map, Value};

use crate::error::{ApiError, ApiResult};

/// The declared attributes of a WSME resource body.
pub struct Schema {
    /// The resource name in error messages (`runtime`, `execution`, …).
    pub name: &'static str,
    pub writable: &'static [(&'static str, Kind)],
    pub read_only: &'static [&'static str],
}

/// The JSON type an attribute accepts.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kind {
    Str,
    Bool,
    Int,
}

fn py_type(v: &Value) -> &'static str {
    match v {
        Value::Null => "NoneType",
        Value::Bool(_) => "bool",
        Value::Number(n) if n.is_i64() || n.is_u64() => "int",
        Value::Number(_) => "float",
        Value::String(_) => "str",
        Value::Array(_) => "list",
        Value::Object(_) => "dict",
    }
}

fn py_repr(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Parses a WSME JSON body: an object whose keys are all declared, writable, of the right
/// type. Null values are kept (they mean "unset").
pub fn wsme_body(
    headers: &HeaderMap,
    body: &Bytes,
    schema: &Schema,
) -> ApiResult<Map<String, Value>> {
    let ctype = headers
        .get(header::CONTENT_TYPE)
        .and_then(|v| v.to_str().ok())
        .unwrap_or("");
    if ctype.starts_with("application/x-www-form-urlencoded")
        || ctype.starts_with("multipart/form-data")
    {
        let first = if ctype.starts_with("application/x-www-form-urlencoded") {
            serde_urlencoded::from_bytes::<Vec<(String, String)>>(body)
                .ok()
                .and_then(|v| v.into_iter().next())
                .map(|(k, _)| k)
        } else {
            None
        };
        return Err(ApiError::bad_request(match first {
            Some(k) => format!("Unknown argument: \"{k}\""),
            None => "This endpoint takes a JSON object body with Content-Type: application/json."
                .to_string(),
        }));
    }
    if body.iter().all(u8::is_ascii_whitespace) {
        return Ok(Map::new());
    }
    let value: Value = serde_json::from_slice(body)
        .map_err(|e| ApiError::bad_request(format!("Request body is not valid JSON: {e}.")))?;
    let Value::Object(map) = value else {
        return Err(ApiError::bad_request(format!(
            "Request body must be a JSON object, got {}.",
            py_type(&value)
        )));
    };
    for (k, v) in &map {
        if schema.read_only.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {k}. Value: '{}'. Cannot set read only field.",
                py_repr(v)
            )));
        }
        let Some((_, kind)) = schema.writable.iter().find(|(name, _)| name == k) else {
            return Err(ApiError::bad_request(format!(
                "Unknown attribute for argument {}: {k}",
                schema.name
            )));
        };
        let ok = match (kind, v) {
            (_, Value::Null) => true,
            (Kind::Str, Value::String(_)) => true,
            (Kind::Bool, Value::Bool(_)) => true,
            (Kind::Int, Value::Number(n)) => n.is_i64(),
            _ => false,
        };
        if !ok {
            let expected = match kind {
                Kind::Str => "str",
                Kind::Bool => "bool",
                Kind::Int => "int",
            };
            return Err(ApiError::bad_request(format!(
                "Invalid input for field/attribute {k}. Value: '{}'. Wrong type. Expected '{expected}', got '{}'",
                py_repr(v),
                py_type(v)
            )));
        }
    }
    Ok(map)
}

/// Asserts that `schema` accepts exactly the fields of the wire body `T` it becomes (the
/// unit test of each WSME resource).
#[cfg(test)]
pub(crate) fn assert_schema_is_body<T: qinling_wire::Object>(schema: &Schema) {
    let mut writable: Vec<&str> = schema.writable.iter().map(|(name, _)| *name).collect();
    let mut fields = T::fields();
    writable.sort_unstable();
    fields.sort_unstable();
    assert_eq!(
        writable,
        fields,
        "the {} schema and {}",
        schema.name,
        T::NAME
    );
}

/// A checked WSME body as its wire type. The body was checked against the WSME schema, so
/// this fails only if the schema and the wire type disagree (a 400 that says so).
pub fn typed<T: serde::de::DeserializeOwned>(map: Map<String, Value>) -> ApiResult<T> {
    serde_json::from_value(Value::Object(map))
        .map_err(|e| ApiError::bad_request(format!("Invalid request body: {e}.")))
}

/// Query parameters, refusing any the endpoint does not declare (reference §2.2).
pub fn query_params(query: Option<&str>, allowed: &[&str]) -> ApiResult<Vec<(String, String)>> {
    let pairs: Vec<(String, String)> = serde_urlencoded::from_str(query.unwrap_or(""))
        .map_err(|e| ApiError::bad_request(format!("Invalid query string: {e}.")))?;
    for (k, _) in &pairs {
        if !allowed.contains(&k.as_str()) {
            return Err(ApiError::bad_request(format!("Unknown argument: \"{k}\"")));
        }
    }
    Ok(pairs)
}

/// oslo's `bool_from_string`: true for `1`, `t`, `true`, `on`, `y`, `yes` (any case).
pub fn truthy(v: &str) -> bool {
    matches!(
        v.trim().to_ascii_lowercase().as_str(),
        "1" | "t" | "true" | "on" | "y" | "yes"
    )
}

fn ts(t: Option<qinling_types::Timestamp>) -> Option<String> {
    t.map(format_ts)
}

pub fn runtime_json(r: &Runtime) -> body::Runtime {
    body::Runtime {
        id: r.id.as_str().to_owned(),
        name: r.name.clone(),
        image: r.image.clone(),
        description: r.description.clone(),
        is_public: r.is_public,
        trusted: r.trusted,
        status: r.status.as_str().into(),
        project_id: r.project_id.clone(),
        created_at: format_ts(r.created_at),
        updated_at: ts(r.updated_at),
    }
}

/// A function; `code_as_string` is how WSME list endpoints render it (reference §2.4).
pub fn function_json(f: &Function, code_as_string: bool) -> body::Function {
    let code = f.code.to_json();
    body::Function {
        id: f.id.as_str().to_owned(),
        name: f.name.clone(),
        description: f.description.clone(),
        cpu: f.cpu,
        memory_size: f.memory_size,
        timeout: f.timeout,
        network: f.network,
        execution_mode: f.execution_mode.as_str().to_owned(),
        runtime_id: f.runtime_id.as_deref().map(str::to_owned),
        code: if code_as_string {
            Value::String(qinling_types::py_json(&code))
        } else {
            code
        },
        entry: f.entry.clone(),
        count: f.count,
        latest_version: f.latest_version,
        project_id: f.project_id.clone(),
        created_at: format_ts(f.created_at),
        updated_at: ts(f.updated_at),
    }
}

pub fn execution_json(e: &Execution) -> body::Execution {
    body::Execution {
        id: e.id.as_str().to_owned(),
        function_id: e.function_id.as_str().to_owned(),
        function_version: e.function_version,
        function_alias: e.function_alias.clone(),
        description: e.description.clone(),
        status: e.status.as_str().into(),
        sync: e.sync,
        input: e.input.to_wire(),
        result: e.result.clone(),
        cpu_ms: e.cpu_ms,
        memory_peak_kb: e.memory_peak_kb,
        duration_ms: e.duration_ms,
        memory_size: e.memory_size,
        cold_start_ms: e.cold_start_ms,
        request_id: e.request_id.clone(),
        trace_id: e.trace.map(|t| t.trace_id_hex()),
        project_id: e.project_id.clone(),
        created_at: format_ts(e.created_at),
        updated_at: ts(e.updated_at),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SCHEMA: Schema = Schema {
        name: "runtime",
        writable: &[
            ("image", Kind::Str),
            ("is_public", Kind::Bool),
            ("count", Kind::Int),
        ],
        read_only: &["status"],
    };

    fn parse(ctype: &str, body: &str) -> Result<Map<String, Value>, String> {
        let mut h = HeaderMap::new();
        h.insert(header::CONTENT_TYPE, ctype.parse().unwrap());
        wsme_body(&h, &Bytes::from(body.to_string()), &SCHEMA).map_err(|e| e.message)
    }

    #[test]
    fn wsme_bodies() {
        let json = "application/json";
        let cases: &[(&str, &str, Result<&str, &str>)] = &[
            (
                json,
                r#"{"image": "python3"}"#,
                Ok(r#"{"image":"python3"}"#),
            ),
            (json, "", Ok("{}")),
            (json, r#"{"image": null}"#, Ok(r#"{"image":null}"#)),
            (
                json,
                r#"{"bogus": 1}"#,
                Err("Unknown attribute for argument runtime: bogus"),
            ),
            (
                json,
                r#"{"status": "available"}"#,
                Err(
                    "Invalid input for field/attribute status. Value: 'available'. Cannot set read only field.",
                ),
            ),
            (
                json,
                r#"{"image": {"a": 1}}"#,
                Err(
                    "Invalid input for field/attribute image. Value: '{\"a\":1}'. Wrong type. Expected 'str', got 'dict'",
                ),
            ),
            (
                json,
                r#"{"is_public": "yes"}"#,
                Err(
                    "Invalid input for field/attribute is_public. Value: 'yes'. Wrong type. Expected 'bool', got 'str'",
                ),
            ),
            (
                json,
                r#"{"count": 1.5}"#,
                Err(
                    "Invalid input for field/attribute count. Value: '1.5'. Wrong type. Expected 'int', got 'float'",
                ),
            ),
            (
                json,
                r#"[1]"#,
                Err("Request body must be a JSON object, got list."),
            ),
            (
                json,
                r#"{"image": "#,
                Err(
                    "Request body is not valid JSON: EOF while parsing a value at line 1 column 10.",
                ),
            ),
            (
                "application/x-www-form-urlencoded",
                "image=x",
                Err("Unknown argument: \"image\""),
            ),
        ];
        for (ctype, body, expect) in cases {
            let got = parse(ctype, body).map(|m| serde_json::to_string(&m).unwrap());
            assert_eq!(got.as_deref().map_err(String::as_str), *expect, "{body}");
        }
    }

    #[test]
    fn unknown_query_arguments() {
        assert_eq!(
            query_params(Some("all_projects=true"), &["all_projects"]).unwrap(),
            vec![("all_projects".into(), "true".into())]
        );
        assert_eq!(
            query_params(Some("name=x"), &["all_projects"])
                .unwrap_err()
                .message,
            "Unknown argument: \"name\""
        );
        assert_eq!(
            query_params(Some("limit=1"), &[]).unwrap_err().message,
            "Unknown argument: \"limit\""
        );
    }
}
