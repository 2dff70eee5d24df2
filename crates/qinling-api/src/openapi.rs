//! The OpenAPI 3 description of the v1 API, built from one table of operations. The
//! document is served at `GET /v1/openapi.json`, printed by `qinling openapi`, and checked
//! into the repository as `docs/openapi.json`; tests fail when the file, this table and the
//! router drift apart.

use serde_json::{Map, Value, json};

/// One documented operation.
struct Op {
    method: &'static str,
    path: &'static str,
    summary: &'static str,
    /// Query parameters (all optional strings unless named in `int_params`).
    query: &'static [&'static str],
    body: Body,
    /// (status, description, schema ref or `None` for no body).
    responses: &'static [(u16, &'static str, Option<&'static str>)],
}

enum Body {
    None,
    Json(&'static str),
    /// A multipart or urlencoded form (functions).
    Form(&'static str),
}

const WSME_ERRORS: &[(u16, &str, Option<&str>)] = &[
    (400, "Bad request", Some("Fault")),
    (404, "Not found", Some("Fault")),
];

const OPS: &[Op] = &[
    Op {
        method: "get",
        path: "/",
        summary: "API versions",
        query: &[],
        body: Body::None,
        responses: &[(200, "Versions", Some("Versions"))],
    },
    Op {
        method: "get",
        path: "/v1/",
        summary: "The v1 API's resources",
        query: &[],
        body: Body::None,
        responses: &[(200, "Resources", Some("Resources"))],
    },
    Op {
        method: "get",
        path: "/metrics",
        summary: "Prometheus metrics (text exposition format)",
        query: &[],
        body: Body::None,
        responses: &[(200, "Metrics", Some("Text"))],
    },
    Op {
        method: "get",
        path: "/v1/openapi.json",
        summary: "This document",
        query: &[],
        body: Body::None,
        responses: &[(200, "OpenAPI 3 document", Some("Object"))],
    },
    // Runtimes.
    Op {
        method: "get",
        path: "/v1/runtimes",
        summary: "List runtimes",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Runtimes", Some("RuntimeList")),
            (400, "Bad request", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/runtimes",
        summary: "Create a runtime (admin)",
        query: &[],
        body: Body::Json("RuntimeCreate"),
        responses: &[
            (201, "Created", Some("Runtime")),
            (400, "Bad request", Some("Fault")),
            (409, "Conflict", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/runtimes/{id}",
        summary: "Show a runtime",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Runtime", Some("Runtime")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "put",
        path: "/v1/runtimes/{id}",
        summary: "Update a runtime (admin)",
        query: &[],
        body: Body::Json("RuntimeUpdate"),
        responses: &[
            (200, "Updated", Some("Runtime")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
            (409, "Conflict", Some("Fault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/runtimes/{id}",
        summary: "Delete a runtime (admin)",
        query: &[],
        body: Body::None,
        responses: &[
            (204, "Deleted", None),
            (403, "In use", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/runtimes/{id}/pool",
        summary: "Pool capacity of a runtime (admin)",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Capacity", Some("Pool")),
            (404, "Not found", Some("Fault")),
        ],
    },
    // Functions (pecan: forms, faultstring-only errors).
    Op {
        method: "get",
        path: "/v1/functions",
        summary: "List functions",
        query: &["all_projects", "project_id"],
        body: Body::None,
        responses: &[
            (200, "Functions", Some("FunctionList")),
            (400, "Bad request", Some("PecanFault")),
            (403, "Forbidden", Some("PecanFault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions",
        summary: "Create a function from a package",
        query: &[],
        body: Body::Form("FunctionCreate"),
        responses: &[
            (201, "Created", Some("Function")),
            (400, "Bad request", Some("PecanFault")),
            (404, "Runtime not found", Some("PecanFault")),
            (409, "Runtime not available", Some("PecanFault")),
            (413, "Too large", Some("PecanFault")),
            (415, "Unsupported media type", Some("PecanFault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/functions/{id}",
        summary: "Show a function, or download its package with download=true",
        query: &["download"],
        body: Body::None,
        responses: &[
            (200, "Function (or application/zip)", Some("Function")),
            (404, "Not found", Some("PecanFault")),
        ],
    },
    Op {
        method: "put",
        path: "/v1/functions/{id}",
        summary: "Update a function",
        query: &[],
        body: Body::Form("FunctionUpdate"),
        responses: &[
            (200, "Updated", Some("Function")),
            (400, "Bad request", Some("PecanFault")),
            (404, "Not found", Some("PecanFault")),
            (413, "Too large", Some("PecanFault")),
            (415, "Unsupported media type", Some("PecanFault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/functions/{id}",
        summary: "Delete a function",
        query: &[],
        body: Body::None,
        responses: &[
            (204, "Deleted", None),
            (403, "In use", Some("PecanFault")),
            (404, "Not found", Some("PecanFault")),
        ],
    },
    // Workers.
    Op {
        method: "get",
        path: "/v1/functions/{id}/workers",
        summary: "List a function's workers (admin)",
        query: &["function_version"],
        body: Body::None,
        responses: &[
            (200, "Workers", Some("WorkerList")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/scale_up",
        summary: "Add workers (admin)",
        query: &[],
        body: Body::Json("Scale"),
        responses: &[
            (202, "Accepted", None),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/scale_down",
        summary: "Remove workers, never the last (admin)",
        query: &[],
        body: Body::Json("Scale"),
        responses: &[
            (202, "Accepted", None),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/detach",
        summary: "Release all workers (admin)",
        query: &[],
        body: Body::None,
        responses: &[(202, "Accepted", None), (404, "Not found", Some("Fault"))],
    },
    // Function versions, aliases, jobs and webhooks (issue 5; engine `versions.rs`, `aliases.rs`, `jobs.rs`, `webhooks.rs`).
    Op {
        method: "get",
        path: "/v1/functions/{id}/versions",
        summary: "List a function's versions",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Versions", Some("Object")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/versions",
        summary: "Snapshot the function as its next version",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (201, "Created", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (403, "Unchanged or too many", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/functions/{id}/versions/{n}",
        summary: "Show a version, or download its package with download=true",
        query: &["download"],
        body: Body::None,
        responses: &[
            (200, "Version (or the zip)", Some("Object")),
            (400, "Bad request", Some("PecanFault")),
            (404, "Not found", Some("PecanFault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/functions/{id}/versions/{n}",
        summary: "Delete a version",
        query: &[],
        body: Body::None,
        responses: &[
            (204, "Deleted", None),
            (400, "Bad request", Some("Fault")),
            (403, "In use", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/versions/{n}/scale_up",
        summary: "Add workers to a version (admin)",
        query: &[],
        body: Body::Json("Scale"),
        responses: &[
            (202, "Accepted", None),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/versions/{n}/scale_down",
        summary: "Remove workers of a version, never the last (admin)",
        query: &[],
        body: Body::Json("Scale"),
        responses: &[
            (202, "Accepted", None),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/functions/{id}/versions/{n}/detach",
        summary: "Release all workers of a version (admin)",
        query: &[],
        body: Body::None,
        responses: &[
            (202, "Accepted", None),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/aliases",
        summary: "List aliases",
        query: &["all_projects", "project_id"],
        body: Body::None,
        responses: &[
            (200, "Aliases", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (403, "Forbidden", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/aliases",
        summary: "Create an alias (optionally weighted between two versions)",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (201, "Created", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/aliases/{name}",
        summary: "Show an alias",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Alias", Some("Object")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "put",
        path: "/v1/aliases/{name}",
        summary: "Update an alias",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (200, "Updated", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/aliases/{name}",
        summary: "Delete an alias",
        query: &[],
        body: Body::None,
        responses: &[
            (204, "Deleted", None),
            (403, "In use", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/jobs",
        summary: "List jobs",
        query: &["all_projects", "project_id"],
        body: Body::None,
        responses: &[
            (200, "Jobs", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (403, "Forbidden", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/jobs",
        summary: "Create a cron or one-time job",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (201, "Created", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
            (413, "Input too large", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/jobs/{id}",
        summary: "Show a job",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Job", Some("Object")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "put",
        path: "/v1/jobs/{id}",
        summary: "Update a job (name, input, pattern, next time, pause/resume/cancel)",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (200, "Updated", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/jobs/{id}",
        summary: "Delete a job",
        query: &[],
        body: Body::None,
        responses: &[(204, "Deleted", None), (404, "Not found", Some("Fault"))],
    },
    Op {
        method: "get",
        path: "/v1/webhooks",
        summary: "List webhooks",
        query: &["all_projects", "project_id"],
        body: Body::None,
        responses: &[
            (200, "Webhooks", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (403, "Forbidden", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/webhooks",
        summary: "Create a webhook for a function version or an alias",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (201, "Created", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/webhooks/{id}",
        summary: "Show a webhook",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Webhook", Some("Object")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "put",
        path: "/v1/webhooks/{id}",
        summary: "Update a webhook",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (200, "Updated", Some("Object")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/webhooks/{id}",
        summary: "Delete a webhook",
        query: &[],
        body: Body::None,
        responses: &[(204, "Deleted", None), (404, "Not found", Some("Fault"))],
    },
    Op {
        method: "post",
        path: "/v1/webhooks/{id}/invoke",
        summary: "Invoke a webhook (no authentication): query, form or JSON object become keyword arguments",
        query: &[],
        body: Body::Json("Object"),
        responses: &[
            (202, "Accepted: {\"execution_id\"}", Some("Object")),
            (400, "Bad request", Some("PecanFault")),
            (404, "Not found", Some("PecanFault")),
            (429, "Rate limited", Some("PecanFault")),
        ],
    },
    // Executions.
    Op {
        method: "get",
        path: "/v1/executions",
        summary: "List executions; filters take eq:/neq:/in:/nin:/gt:/gte:/lt:/lte:/has: prefixes",
        query: &[
            "function_id",
            "function_version",
            "function_alias",
            "status",
            "description",
            "project_id",
            "all_projects",
            "created_at",
            "updated_at",
            "sync",
            "input",
            "result",
            "id",
        ],
        body: Body::None,
        responses: &[
            (200, "Executions", Some("ExecutionList")),
            (400, "Bad request", Some("Fault")),
            (403, "Forbidden", Some("Fault")),
        ],
    },
    Op {
        method: "post",
        path: "/v1/executions",
        summary: "Run a function (sync or async)",
        query: &[],
        body: Body::Json("ExecutionCreate"),
        responses: &[
            (201, "Created", Some("Execution")),
            (400, "Bad request", Some("Fault")),
            (404, "Not found", Some("Fault")),
            (409, "Runtime not available", Some("Fault")),
            (413, "Input too large", Some("Fault")),
            (429, "At the concurrency limit", Some("Fault")),
        ],
    },
    Op {
        method: "get",
        path: "/v1/executions/{id}",
        summary: "Show an execution",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Execution", Some("Execution")),
            (404, "Not found", Some("Fault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/executions/{id}",
        summary: "Delete an execution",
        query: &[],
        body: Body::None,
        responses: &[(204, "Deleted", None), (404, "Not found", Some("Fault"))],
    },
    Op {
        method: "get",
        path: "/v1/executions/{id}/log",
        summary: "An execution's log (text/plain; 204 when empty)",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Log", Some("Text")),
            (204, "Empty log", None),
            (404, "Not found", Some("PecanFault")),
        ],
    },
    // Quotas (not in upstream).
    Op {
        method: "get",
        path: "/v1/quotas/{project_id}",
        summary: "A project's quota limits and usage",
        query: &[],
        body: Body::None,
        responses: &[
            (200, "Quota", Some("Quota")),
            (400, "Bad request", Some("Fault")),
            (403, "Not allowed", Some("Fault")),
        ],
    },
    Op {
        method: "put",
        path: "/v1/quotas/{project_id}",
        summary: "Change a project's quota limits (admin; null resets one, -1 is unlimited)",
        query: &[],
        body: Body::Json("QuotaUpdate"),
        responses: &[
            (200, "Quota", Some("Quota")),
            (400, "Bad request", Some("Fault")),
            (403, "Not allowed", Some("Fault")),
        ],
    },
    Op {
        method: "delete",
        path: "/v1/quotas/{project_id}",
        summary: "Reset a project's quota limits to the defaults (admin)",
        query: &[],
        body: Body::None,
        responses: &[
            (204, "Reset", None),
            (400, "Bad request", Some("Fault")),
            (403, "Not allowed", Some("Fault")),
        ],
    },
    // Usage for billing (not in upstream).
    Op {
        method: "get",
        path: "/v1/usage",
        summary: "Usage of finished executions per project and function (or per project) created in [since, until): counts, duration, CPU, GiB-seconds (memory limit / 2^30 × seconds), peak memory; CSV with format=csv or Accept: text/csv",
        query: &[
            "since",
            "until",
            "project_id",
            "all_projects",
            "function_id",
            "group_by",
            "format",
        ],
        body: Body::None,
        responses: &[
            (200, "Usage", Some("Usage")),
            (
                400,
                "Bad request (a time, group_by or format)",
                Some("Fault"),
            ),
            (403, "Another project's usage", Some("Fault")),
        ],
    },
];

fn schemas() -> Value {
    let ts = json!({"type": "string", "example": "2026-11-28T06:45:29Z"});
    let ts_null = json!({"type": "string", "nullable": true, "example": "2026-11-28T06:45:29Z"});
    let s = json!({"type": "string"});
    let s_null = json!({"type": "string", "nullable": true});
    let list = |key: &str, item: &str| json!({"type": "object", "required": [key], "properties": {key: {"type": "array", "items": {"$ref": format!("#/components/schemas/{item}")}}}});
    let mut out = json!({
        "Fault": {"type": "object", "required": ["faultcode", "faultstring"], "properties": {"faultcode": {"type": "string", "enum": ["Client", "Server"]}, "faultstring": s, "debuginfo": s_null}},
        "PecanFault": {"type": "object", "required": ["faultstring"], "properties": {"faultstring": s}},
        "Text": {"type": "string"},
        "Object": {"type": "object"},
        "Versions": {"type": "object", "properties": {"versions": {"type": "array", "items": {"type": "object"}}}},
        "Resources": {"type": "object"},
        "Runtime": {"type": "object", "required": ["id", "image", "status", "project_id", "created_at"], "properties": {
            "id": s, "name": s_null, "image": s, "description": s_null, "is_public": {"type": "boolean"}, "trusted": {"type": "boolean"},
            "status": {"type": "string", "enum": ["creating", "available", "upgrading", "error", "deleting"]}, "project_id": s, "created_at": ts, "updated_at": ts_null}},
        "RuntimeList": list("runtimes", "Runtime"),
        "QuotaLimits": {"type": "object", "properties": {"functions": {"type": "integer"}, "package_bytes": {"type": "integer"}, "concurrent_executions": {"type": "integer"}, "workers": {"type": "integer"}, "executions_per_minute": {"type": "integer"}}},
        "Quota": {"type": "object", "required": ["quota"], "properties": {"quota": {"type": "object", "properties": {"project_id": s, "enforced": {"type": "boolean"}, "limits": {"$ref": "#/components/schemas/QuotaLimits"}, "usage": {"$ref": "#/components/schemas/QuotaLimits"}}}}},
        "QuotaUpdate": {"type": "object", "additionalProperties": false, "minProperties": 1, "properties": {"functions": {"type": "integer", "minimum": -1, "nullable": true}, "package_bytes": {"type": "integer", "minimum": -1, "nullable": true}, "concurrent_executions": {"type": "integer", "minimum": -1, "nullable": true}, "workers": {"type": "integer", "minimum": -1, "nullable": true}, "executions_per_minute": {"type": "integer", "minimum": -1, "nullable": true}}},
        "RuntimeCreate": {"type": "object", "required": ["image"], "additionalProperties": false, "properties": {"id": s, "name": s, "image": s, "description": s, "is_public": {"type": "boolean"}, "trusted": {"type": "boolean"}}},
        "RuntimeUpdate": {"type": "object", "additionalProperties": false, "properties": {"name": s_null, "description": s_null, "image": s}},
        "Pool": {"type": "object", "properties": {"name": s, "capacity": {"type": "object", "properties": {"total": {"type": "integer"}, "available": {"type": "integer"}}}}},
        "Function": {"type": "object", "required": ["id", "code", "cpu", "memory_size", "timeout", "project_id", "created_at"], "properties": {
            "id": s, "name": s_null, "description": s_null, "cpu": {"type": "integer"}, "memory_size": {"type": "integer"}, "timeout": {"type": "integer"}, "network": {"type": "boolean"},
            "runtime_id": s_null, "code": {"oneOf": [{"type": "object"}, {"type": "string"}]}, "entry": s_null, "count": {"type": "integer"},
            "latest_version": {"type": "integer"}, "project_id": s, "created_at": ts, "updated_at": ts_null}},
        "FunctionList": list("functions", "Function"),
        "FunctionCreate": {"type": "object", "required": ["runtime_id", "code", "package"], "properties": {
            "runtime_id": s, "code": {"type": "string", "example": "{\"source\": \"package\"}"}, "package": {"type": "string", "format": "binary"},
            "name": s, "description": s, "entry": {"type": "string", "example": "main.main"}, "cpu": {"type": "integer"}, "memory_size": {"type": "integer"}, "timeout": {"type": "integer"}, "network": {"type": "boolean"}}},
        "FunctionUpdate": {"type": "object", "properties": {
            "package": {"type": "string", "format": "binary"}, "code": s, "source": s, "name": s, "description": s, "entry": s,
            "cpu": {"type": "integer"}, "memory_size": {"type": "integer"}, "timeout": {"type": "integer"}, "network": {"type": "boolean"}}},
        "Worker": {"type": "object", "properties": {"function_id": s, "function_version": {"type": "integer"}, "worker_name": s}},
        "WorkerList": list("workers", "Worker"),
        "Scale": {"type": "object", "required": ["count"], "additionalProperties": false, "properties": {"count": {"type": "integer", "minimum": 1, "maximum": qinling_engine::MAX_SCALE_COUNT}}},
        "Execution": {"type": "object", "required": ["id", "status", "sync", "project_id", "created_at"], "properties": {
            "id": s, "function_id": s_null, "function_version": {"type": "integer"}, "function_alias": s_null, "description": s_null,
            "status": {"type": "string", "enum": ["running", "success", "failed", "error"]}, "sync": {"type": "boolean"},
            "input": s_null, "result": s_null, "cpu_ms": {"type": "integer", "nullable": true}, "memory_peak_kb": {"type": "integer", "nullable": true},
            "project_id": s, "created_at": ts, "updated_at": ts_null}},
        "ExecutionList": list("executions", "Execution"),
        "ExecutionCreate": {"type": "object", "additionalProperties": false, "properties": {
            "function_id": s_null, "function_version": {"type": "integer", "nullable": true}, "function_alias": s_null, "description": s_null,
            "sync": {"type": "boolean"}, "input": s_null}},
    });
    // Added here: more in the one `json!` above would pass the macro's recursion limit.
    let int_null = json!({"type": "integer", "nullable": true});
    let e = &mut out["Execution"]["properties"];
    e["duration_ms"] = int_null.clone();
    e["memory_size"] = int_null;
    e["request_id"] = s_null.clone();
    let n = json!({"type": "number"});
    let int = json!({"type": "integer"});
    out["UsageSums"] = json!({"type": "object", "properties": {
        "executions": int, "succeeded": int, "failed": int, "errored": int, "duration_s": n, "cpu_s": n,
        "gb_seconds": {"type": "number", "description": "GiB-seconds: memory limit in bytes / 2^30 × seconds run"},
        "memory_peak_max_kb": {"type": "integer", "nullable": true}}});
    out["UsageRow"] = json!({"allOf": [{"type": "object", "properties": {"project_id": s, "function_id": s_null, "function_name": s_null}}, {"$ref": "#/components/schemas/UsageSums"}]});
    out["Usage"] = json!({"type": "object", "required": ["usage", "totals", "until", "group_by"], "properties": {
        "usage": {"type": "array", "items": {"$ref": "#/components/schemas/UsageRow"}}, "totals": {"$ref": "#/components/schemas/UsageSums"},
        "since": ts_null, "until": ts, "group_by": {"type": "string", "enum": ["function", "project"]}}});
    out
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for op in OPS {
        let mut o = Map::new();
        o.insert("summary".into(), json!(op.summary));
        o.insert("operationId".into(), json!(operation_id(op)));
        let mut params: Vec<Value> = Vec::new();
        for seg in op.path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(|c| c == '{' || c == '}');
            params.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
        for q in op.query {
            params.push(
                json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
            );
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        match op.body {
            Body::None => {}
            Body::Json(schema) => {
                o.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}));
            }
            Body::Form(schema) => {
                let r = json!({"schema": {"$ref": format!("#/components/schemas/{schema}")}});
                o.insert("requestBody".into(), json!({"required": true, "content": {"multipart/form-data": r, "application/x-www-form-urlencoded": r}}));
            }
        }
        let mut responses = Map::new();
        let extra: &[(u16, &str, Option<&str>)] = if matches!(op.body, Body::Json(_)) {
            WSME_ERRORS
        } else {
            &[]
        };
        for (status, description, schema) in op.responses.iter().chain(extra) {
            if responses.contains_key(&status.to_string()) {
                continue;
            }
            let mut r = json!({"description": description});
            if let Some(schema) = schema {
                let ctype = if *schema == "Text" {
                    "text/plain"
                } else {
                    "application/json"
                };
                r["content"] =
                    json!({ctype: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
            }
            responses.insert(status.to_string(), r);
        }
        o.insert("responses".into(), Value::Object(responses));
        let entry = paths
            .entry(op.path.to_string())
            .or_insert_with(|| json!({}));
        entry[op.method] = Value::Object(o);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Qinling API",
            "version": "v1",
            "description": "OpenStack Qinling's REST API v1, as served by Qinling-in-Rust. Differences from upstream: docs/compat.md."
        },
        "paths": paths,
        "components": {"schemas": schemas()},
    })
}

fn operation_id(op: &Op) -> String {
    let mut id = op.method.to_string();
    for seg in op.path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg
            .trim_matches(|c| c == '{' || c == '}')
            .replace(['.', '_'], " ");
        for word in seg.split(' ') {
            let mut c = word.chars();
            if let Some(first) = c.next() {
                id.push(first.to_ascii_uppercase());
                id.extend(c);
            }
        }
    }
    id
}

/// The documented (method, path) pairs.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    OPS.iter().map(|o| (o.method, o.path)).collect()
}

pub(crate) async fn serve() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    /// Route paths as written in the router (`lib.rs`), `/v1`-prefixed where nested, with
    /// trailing-slash aliases folded.
    fn router_paths() -> BTreeSet<String> {
        let src = include_str!("lib.rs");
        let start = src.find("pub fn router(").expect("router() in lib.rs");
        let body = &src[start..];
        let v1_end = body
            .find("Router::new()\n        .route(\"/\"")
            .or_else(|| body.rfind("let app"))
            .unwrap_or(body.len());
        let mut out = BTreeSet::new();
        let mut rest = body;
        let mut offset = 0;
        while let Some(i) = rest.find(".route(") {
            let after = rest[i + 7..].trim_start();
            if let Some(lit) = after.strip_prefix('"') {
                let path = &lit[..lit.find('"').expect("closing quote")];
                let nested = offset + i < v1_end && body[..offset + i].contains("let v1");
                let full = if nested {
                    format!("/v1{path}")
                } else {
                    path.to_string()
                };
                let folded = if full.len() > 1 && full.ends_with('/') && full != "/v1/" {
                    full.trim_end_matches('/').to_string()
                } else {
                    full
                };
                if folded != "/v1" {
                    out.insert(folded);
                }
            }
            offset += i + 7;
            rest = &rest[i + 7..];
        }
        out
    }

    #[test]
    fn every_route_is_documented_and_every_documented_path_is_routed() {
        let documented: BTreeSet<String> = operations()
            .into_iter()
            .map(|(_, p)| p.to_string())
            .collect();
        let routed = router_paths();
        assert!(routed.len() > 10, "parsed too few routes: {routed:?}");
        let undocumented: Vec<_> = routed.difference(&documented).collect();
        let unrouted: Vec<_> = documented.difference(&routed).collect();
        assert!(
            undocumented.is_empty() && unrouted.is_empty(),
            "routes without documentation: {undocumented:?}; documented paths without a route: {unrouted:?}"
        );
    }

    #[test]
    fn the_checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        if std::env::var_os("QINLING_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json is stale: run `QINLING_BLESS=1 cargo test -p qinling-api openapi` (or `qinling openapi > docs/openapi.json`) and commit it"
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let ids: Vec<String> = OPS.iter().map(operation_id).collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
    }
}
