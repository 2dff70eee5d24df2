//! `GET /v1/usage` (not in upstream): usage for billing, summed per project and function (or
//! per project) over a time range — see the engine's `usage.rs` for what counts.
//!
//! Query: `since`, `until` (RFC 3339 or `YYYY-MM-DD`, UTC; `since` inclusive, `until`
//! exclusive, default now), `project_id` / `all_projects` (as the list endpoints; a non-admin
//! may name only their own project), `function_id`, `group_by` (`function` or `project`) and
//! `format` (`json` or `csv`; `Accept: text/csv` also asks for CSV).
//!
//! JSON: `{"usage": [row…], "totals": {…}, "since", "until", "group_by"}`, each row
//! `{"project_id", "function_id", "function_name", "executions", "succeeded", "failed",
//! "errored", "duration_s", "cpu_s", "gb_seconds", "memory_peak_max_kb"}`. `gb_seconds` are
//! GiB-seconds: memory limit in bytes / 2^30 × seconds run. CSV: a header and one line per
//! row, the same columns in the same order, no totals line.

use axum::Extension;
use axum::Json;
use axum::extract::{RawQuery, State};
use axum::http::{HeaderMap, header};
use axum::response::{IntoResponse, Response};
use qinling_engine::usage::{Usage, UsageRequest, group_name};
use qinling_types::{UsageRow, format_precise};
use qinling_wire::Object;
use serde_json::Value;

use crate::{ApiError, ApiResult, AppState, RequestId, context, wire};

/// The columns of a row, in order (the CSV header): the wire row's fields.
fn columns() -> Vec<&'static str> {
    qinling_wire::UsageRow::fields()
}

/// Milliseconds as seconds, exactly to the millisecond.
fn seconds(ms: i64) -> f64 {
    ms as f64 / 1000.0
}

/// The sums of a row (or the totals).
fn sums(r: &UsageRow) -> qinling_wire::UsageSums {
    qinling_wire::UsageSums {
        executions: r.executions,
        succeeded: r.succeeded,
        failed: r.failed,
        errored: r.errored,
        duration_s: seconds(r.duration_ms),
        cpu_s: seconds(r.cpu_ms),
        gb_seconds: r.gib_seconds(),
        memory_peak_max_kb: r.memory_peak_max_kb,
    }
}

fn row(r: &UsageRow) -> qinling_wire::UsageRow {
    qinling_wire::UsageRow {
        project_id: r.project_id.clone(),
        function_id: r.function_id.clone(),
        function_name: r.function_name.clone(),
        sums: sums(r),
    }
}

fn usage_body(u: &Usage) -> qinling_wire::Usage {
    qinling_wire::Usage {
        usage: u.rows.iter().map(row).collect(),
        totals: sums(&u.totals),
        since: u.since.map(format_precise),
        until: format_precise(u.until),
        group_by: group_name(u.group_by).into(),
    }
}

#[cfg(test)]
fn usage_json(u: &Usage) -> Value {
    serde_json::to_value(usage_body(u)).expect("a usage body serializes")
}

/// One CSV field (RFC 4180): quoted when it holds a comma, quote or line break.
fn csv_field(v: &Value) -> String {
    let text = match v {
        Value::Null => String::new(),
        Value::String(s) => s.clone(),
        other => other.to_string(),
    };
    if text.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", text.replace('"', "\"\""))
    } else {
        text
    }
}

fn usage_csv(u: &Usage) -> String {
    let columns = columns();
    let mut out = columns.join(",");
    out.push_str("\r\n");
    for r in &u.rows {
        let row = serde_json::to_value(row(r)).expect("a usage row serializes");
        let fields: Vec<String> = columns.iter().map(|c| csv_field(&row[*c])).collect();
        out.push_str(&fields.join(","));
        out.push_str("\r\n");
    }
    out
}

/// Whether the client asked for CSV: `format=csv`, or (without `format`) an `Accept` naming
/// `text/csv`.
fn wants_csv(format: Option<&str>, headers: &HeaderMap) -> ApiResult<bool> {
    match format.map(str::trim) {
        Some("csv") => Ok(true),
        Some("json") => Ok(false),
        Some(other) => Err(ApiError::bad_request(format!(
            "Invalid format '{other}': use json or csv."
        ))),
        None => Ok(headers
            .get(header::ACCEPT)
            .and_then(|v| v.to_str().ok())
            .is_some_and(|a| {
                a.split(',')
                    .any(|part| part.split(';').next().unwrap_or("").trim() == "text/csv")
            })),
    }
}

pub async fn show(
    State(s): State<AppState>,
    Extension(rid): Extension<RequestId>,
    RawQuery(q): RawQuery,
    headers: HeaderMap,
) -> ApiResult<Response> {
    let params = wire::query_params(
        q.as_deref(),
        &[
            "since",
            "until",
            "project_id",
            "all_projects",
            "function_id",
            "group_by",
            "format",
        ],
    )?;
    // The last of a repeated parameter wins (as the policy check reads `project_id`).
    let get = |k: &str| {
        params
            .iter()
            .rev()
            .find(|(key, _)| key == k)
            .map(|(_, v)| v.clone())
    };
    let csv = wants_csv(get("format").as_deref(), &headers)?;
    let req = UsageRequest {
        project_id: get("project_id"),
        all_projects: get("all_projects").is_some_and(|v| wire::truthy(&v)),
        function_id: get("function_id"),
        since: get("since"),
        until: get("until"),
        group_by: get("group_by"),
    };
    let usage = s.engine.usage(&context(&rid), &req).await?;
    Ok(if csv {
        (
            [(header::CONTENT_TYPE, "text/csv; charset=utf-8")],
            usage_csv(&usage),
        )
            .into_response()
    } else {
        Json(usage_body(&usage)).into_response()
    })
}

#[cfg(test)]
mod tests {
    use qinling_engine::usage::parse_bound;
    use qinling_types::UsageGroup;

    use super::*;

    fn usage() -> Usage {
        let row = UsageRow {
            project_id: "p1".into(),
            function_id: Some("f1".into()),
            function_name: Some("hello, \"world\"".into()),
            executions: 3,
            succeeded: 2,
            failed: 1,
            errored: 0,
            duration_ms: 1750,
            cpu_ms: 20,
            memory_byte_ms: (128u64 << 20) as f64 * 1750.0,
            memory_peak_max_kb: Some(9000),
        };
        let other = UsageRow {
            project_id: "p2".into(),
            function_id: Some("g".into()),
            function_name: None,
            memory_peak_max_kb: None,
            ..UsageRow::default()
        };
        let mut totals = row.clone();
        totals.add(&other);
        Usage {
            since: Some(parse_bound("since", "2026-11-01").unwrap()),
            until: parse_bound("until", "2026-11-28T06:45:29.572982Z").unwrap(),
            group_by: UsageGroup::Function,
            rows: vec![row, other],
            totals,
        }
    }

    #[test]
    fn json_shape() {
        let v = usage_json(&usage());
        assert_eq!(v["since"], "2026-11-01T00:00:00Z");
        assert_eq!(v["until"], "2026-11-28T06:45:29.572982Z");
        assert_eq!(v["group_by"], "function");
        let row = &v["usage"][0];
        let keys: Vec<&str> = row
            .as_object()
            .unwrap()
            .keys()
            .map(String::as_str)
            .collect();
        assert_eq!(keys, columns());
        assert_eq!(row["duration_s"], 1.75);
        assert_eq!(row["cpu_s"], 0.02);
        assert_eq!(row["gb_seconds"], 0.21875);
        assert_eq!(v["totals"]["executions"], 3);
        assert_eq!(v["totals"]["memory_peak_max_kb"], 9000);
        assert!(v["totals"].get("project_id").is_none());
    }

    #[test]
    fn csv_lines() {
        let text = usage_csv(&usage());
        let lines: Vec<&str> = text.split("\r\n").collect();
        assert_eq!(lines[0], columns().join(","));
        assert_eq!(
            lines[1],
            "p1,f1,\"hello, \"\"world\"\"\",3,2,1,0,1.75,0.02,0.21875,9000"
        );
        assert_eq!(lines[2], "p2,g,,0,0,0,0,0.0,0.0,0.0,");
        assert_eq!((lines.len(), lines[3]), (4, ""));
    }

    #[test]
    fn format_choice() {
        let accept = |a: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::ACCEPT, a.parse().unwrap());
            h
        };
        let none = HeaderMap::new();
        assert!(!wants_csv(None, &none).unwrap());
        assert!(wants_csv(Some("csv"), &none).unwrap());
        assert!(!wants_csv(Some("json"), &accept("text/csv")).unwrap());
        assert!(wants_csv(None, &accept("application/json;q=0.5, text/csv")).unwrap());
        assert!(!wants_csv(None, &accept("*/*")).unwrap());
        let err = wants_csv(Some("xml"), &none).unwrap_err();
        assert_eq!(err.status, axum::http::StatusCode::BAD_REQUEST);
        assert!(err.message.contains("json or csv"), "{}", err.message);
    }
}
