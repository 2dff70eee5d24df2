//! The bodies: resources as the server renders them (every field, `null` when unset, in the
//! order upstream sends them), list envelopes, and the request bodies the CLI sends.

use serde_json::{Value, json};

use crate::{ts, ts_null, wire_object};

/// A field of an update: absent (`None`, left as it is), `null` (`Some(None)`, cleared) or a
/// value. For `#[serde(default, deserialize_with = "patch")]`.
fn patch<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: serde::Deserialize<'de>,
{
    <Option<T> as serde::Deserialize>::deserialize(d).map(Some)
}

fn string_enum(values: &[&str]) -> Value {
    json!({"type": "string", "enum": values})
}

/// A form field whose text the server reads as an integer.
fn form_integer() -> Value {
    json!({"type": "integer"})
}

/// A form field whose text the server reads as a boolean.
fn form_boolean() -> Value {
    json!({"type": "boolean"})
}

/// An execution mode: `fork` (a fresh process per execution) or `reuse` (the worker's
/// long-lived process).
fn execution_mode() -> Value {
    json!({"type": "string", "enum": ["fork", "reuse"]})
}

/// The file part of a form.
fn form_file() -> Value {
    json!({"type": "string", "format": "binary"})
}

/// A quota limit: -1 is unlimited, `null` the default.
fn limit() -> Value {
    json!({"type": "integer", "minimum": -1, "nullable": true})
}

wire_object! {
    /// The error body of a WSME endpoint (reference §2.2): `Client` for a 4xx, `Server` for
    /// a 5xx.
    pub struct Fault {
        pub faultcode: String => string_enum(&["Client", "Server"]),
        pub faultstring: String,
        pub debuginfo: Option<String>,
    }
    required: ["faultcode", "faultstring"];
    closed: false;
}

wire_object! {
    /// The error body of a plain-pecan endpoint (reference §2.2).
    pub struct PecanFault {
        pub faultstring: String,
    }
    required: ["faultstring"];
    closed: false;
}

wire_object! {
    /// `GET /`: the API versions this server speaks (only v1).
    pub struct Versions {
        pub versions: Vec<ApiVersion>,
    }
    required: ["versions"];
    closed: false;
}

wire_object! {
    /// One API version of `GET /`.
    pub struct ApiVersion {
        pub id: String,
        pub status: String,
        pub links: Vec<Link>,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// A link of an API version.
    pub struct Link {
        pub href: String,
        pub target: String,
        pub rel: String,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// `GET /v1/`: where the v1 resources are.
    pub struct Resources {
        pub uri: String,
    }
    required: ["uri"];
    closed: false;
}

wire_object! {
    /// A runtime (reference §3.2).
    pub struct Runtime {
        pub id: String,
        pub name: Option<String>,
        pub image: String,
        pub description: Option<String>,
        pub is_public: bool,
        pub trusted: bool,
        pub status: String => string_enum(&["creating", "available", "upgrading", "error", "deleting"]),
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
    }
    required: ["id", "image", "status", "project_id", "created_at"];
    closed: false;
}

wire_object! {
    /// `GET /v1/runtimes`.
    pub struct RuntimeList {
        pub runtimes: Vec<Runtime>,
    }
    required: ["runtimes"];
    closed: false;
}

wire_object! {
    /// `POST /v1/runtimes` (admin): `image` is required; `is_public` and `trusted` default
    /// to true.
    pub struct RuntimeCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub is_public: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub trusted: Option<bool>,
    }
    required: ["image"];
    closed: true;
}

wire_object! {
    /// `PUT /v1/runtimes/{id}` (admin): what is absent stays; `null` clears a name or
    /// description.
    pub struct RuntimeUpdate {
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub name: Option<Option<String>>,
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub description: Option<Option<String>>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub image: Option<String>,
    }
    required: [];
    closed: true;
}

wire_object! {
    /// `GET /v1/runtimes/{id}/pool`.
    pub struct Pool {
        pub name: String,
        pub capacity: PoolCapacity,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// A runtime pool's workers: all, and those not bound to a function.
    pub struct PoolCapacity {
        pub total: u64,
        pub available: u64,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// A function (reference §3.3). `code` is an object, except in lists, where WSME renders
    /// it as a string (reference §2.4).
    pub struct Function {
        pub id: String,
        pub name: Option<String>,
        pub description: Option<String>,
        pub cpu: u32,
        pub memory_size: u64,
        pub timeout: u32,
        pub network: bool,
        /// Absent from a server before execution modes.
        #[serde(default)]
        pub execution_mode: String => execution_mode(),
        pub runtime_id: Option<String>,
        pub code: Value => json!({"oneOf": [{"type": "object"}, {"type": "string"}]}),
        pub entry: Option<String>,
        pub count: i64,
        pub latest_version: i64,
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
    }
    required: ["id", "code", "cpu", "memory_size", "timeout", "project_id", "created_at"];
    closed: false;
}

wire_object! {
    /// `GET /v1/functions`.
    pub struct FunctionList {
        pub functions: Vec<Function>,
    }
    required: ["functions"];
    closed: false;
}

wire_object! {
    /// `POST /v1/functions`: a form (multipart with the `package` file, or urlencoded) or a
    /// JSON object, whose values are all taken as text (the server parses the numbers and
    /// the boolean). Empty limits are left at their defaults. Fields in the order
    /// python-qinlingclient sends them.
    pub struct FunctionCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub runtime_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<String> => json!({"type": "string", "example": "{\"source\": \"package\"}"}),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub entry: Option<String> => json!({"type": "string", "example": "main.main"}),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cpu: Option<String> => form_integer(),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_size: Option<String> => form_integer(),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<String> => form_integer(),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network: Option<String> => form_boolean(),
        /// `fork` or `reuse`; on create, absent means the runtime kind's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub execution_mode: Option<String> => execution_mode(),
        /// The zip: the form's file part, not a text field.
        #[serde(skip)]
        pub package: Option<Vec<u8>> => form_file(),
    }
    required: ["runtime_id", "code", "package"];
    closed: false;
}

wire_object! {
    /// `PUT /v1/functions/{id}`: a form or JSON object like [`FunctionCreate`]'s, every field
    /// optional. New code comes as `code` (an object's text) or, as python-qinlingclient
    /// sends it, `source=package`, with the `package` file. An empty name, description or
    /// entry clears it.
    pub struct FunctionUpdate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub source: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub code: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub entry: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub cpu: Option<String> => form_integer(),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub memory_size: Option<String> => form_integer(),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub timeout: Option<String> => form_integer(),
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub network: Option<String> => form_boolean(),
        /// `fork` or `reuse`; on create, absent means the runtime kind's default.
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub execution_mode: Option<String> => execution_mode(),
        /// The zip: the form's file part, not a text field.
        #[serde(skip)]
        pub package: Option<Vec<u8>> => form_file(),
    }
    required: [];
    closed: false;
}

wire_object! {
    /// A worker of a function (version).
    pub struct Worker {
        pub function_id: String,
        pub function_version: i64,
        pub worker_name: String,
        /// The cluster node it lives on (absent on a server on its own).
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub node: Option<String>,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// A node of the platform (`GET /v1/nodes`).
    pub struct Node {
        pub id: String,
        pub name: String,
        pub address: String,
        pub version: String,
        pub capacity: String,
        pub running: u64,
        pub workers: u64,
        pub last_heartbeat: String,
        pub status: String,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// `GET /v1/nodes`.
    pub struct NodeList {
        pub nodes: Vec<Node>,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// `GET /v1/functions/{id}/workers`.
    pub struct WorkerList {
        pub workers: Vec<Worker>,
    }
    required: ["workers"];
    closed: false;
}

wire_object! {
    /// `POST …/scale_up` and `…/scale_down` of a function or a version (`ScaleInfo`): how
    /// many workers to add or remove, at least 1 (the server's bound is its document's
    /// `maximum`).
    pub struct Scale {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub count: Option<i64> => json!({"type": "integer", "minimum": 1}),
    }
    required: ["count"];
    closed: true;
}

wire_object! {
    /// An execution (reference §3.6). `input` is the text the function receives (a JSON
    /// object rendered as Python's `json.dumps` would); `result` the JSON text
    /// `{"output": …, "duration": …}` once finished.
    pub struct Execution {
        pub id: String,
        pub function_id: String,
        pub function_version: i64,
        pub function_alias: Option<String>,
        pub description: Option<String>,
        pub status: String => string_enum(&["running", "success", "failed", "error"]),
        pub sync: bool,
        pub input: Option<String>,
        pub result: Option<String>,
        pub cpu_ms: Option<i64>,
        pub memory_peak_kb: Option<i64>,
        pub duration_ms: Option<i64>,
        pub memory_size: Option<i64>,
        pub cold_start_ms: Option<i64>,
        pub request_id: Option<String>,
        pub trace_id: Option<String>,
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
    }
    required: ["id", "status", "sync", "project_id", "created_at"];
    closed: false;
}

wire_object! {
    /// `GET /v1/executions`.
    pub struct ExecutionList {
        pub executions: Vec<Execution>,
    }
    required: ["executions"];
    closed: false;
}

wire_object! {
    /// One step of a function's statistics (or the whole window): executions that finished
    /// in it, by how they ended, cold starts, and duration percentiles (ms; `null` without
    /// executions).
    pub struct StatsPoint {
        pub start: String => ts(),
        pub executions: i64,
        pub failed: i64,
        pub errors: i64,
        pub cold_starts: i64,
        pub p50_ms: Option<i64>,
        pub p99_ms: Option<i64>,
    }
    required: ["start", "executions", "failed", "errors", "cold_starts"];
    closed: false;
}

wire_object! {
    /// `GET /v1/functions/{id}/stats` (not in upstream): the last `minutes` in 60 equal
    /// steps, the totals, and the function's workers now.
    pub struct FunctionStats {
        pub function_id: String,
        pub minutes: i64,
        pub step_seconds: f64,
        pub end: String => ts(),
        pub workers: i64,
        pub truncated: bool,
        pub totals: StatsPoint,
        pub points: Vec<StatsPoint>,
    }
    required: ["function_id", "minutes", "step_seconds", "end", "workers", "totals", "points"];
    closed: false;
}

wire_object! {
    /// `POST /v1/executions`: a function (and version) or an alias; absent fields are not
    /// sent. `input` is sent as text: a JSON object becomes keyword arguments, anything else
    /// one positional argument.
    pub struct ExecutionCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_version: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_alias: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub sync: Option<bool>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
    }
    required: [];
    closed: true;
}

wire_object! {
    /// The sums of usage (`GET /v1/usage`, not in upstream): a row's after its identifying
    /// fields, and the totals. `gb_seconds` are GiB-seconds.
    pub struct UsageSums {
        pub executions: i64,
        pub succeeded: i64,
        pub failed: i64,
        pub errored: i64,
        pub duration_s: f64,
        pub cpu_s: f64,
        pub gb_seconds: f64 => json!({"type": "number", "description": "GiB-seconds: memory limit in bytes / 2^30 × seconds run"}),
        pub memory_peak_max_kb: Option<i64>,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// One usage row: a project (and function) and its sums. Its fields, in order, are the
    /// CSV columns ([`Object::fields`](crate::Object::fields)).
    pub struct UsageRow {
        pub project_id: String,
        pub function_id: Option<String>,
        pub function_name: Option<String>,
    }
    flatten sums: UsageSums;
    required: [];
    closed: false;
}

wire_object! {
    /// `GET /v1/usage` as JSON.
    pub struct Usage {
        pub usage: Vec<UsageRow>,
        pub totals: UsageSums,
        pub since: Option<String> => ts_null(),
        pub until: String => ts(),
        pub group_by: String => string_enum(&["function", "project"]),
    }
    required: ["usage", "totals", "until", "group_by"];
    closed: false;
}

wire_object! {
    /// A function version (reference §3.4): a snapshot of the function's definition.
    pub struct Version {
        pub id: String,
        pub description: Option<String>,
        pub function_id: String,
        pub version_number: i64,
        pub count: i64,
        pub code: Value,
        pub entry: Option<String>,
        pub cpu: u32,
        pub memory_size: u64,
        pub timeout: u32,
        pub network: bool,
        /// Absent from a server before execution modes.
        #[serde(default)]
        pub execution_mode: String => execution_mode(),
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
    }
    required: ["id", "function_id", "version_number", "project_id", "created_at"];
    closed: false;
}

wire_object! {
    /// `GET /v1/functions/{id}/versions`.
    pub struct VersionList {
        pub function_versions: Vec<Version>,
    }
    required: ["function_versions"];
    closed: false;
}

wire_object! {
    /// `POST /v1/functions/{id}/versions`: the snapshot's description; the rest is the
    /// function's.
    pub struct VersionCreate {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
    }
    required: [];
    closed: true;
}

wire_object! {
    /// A function alias (reference §3.5), optionally weighted between two versions.
    pub struct Alias {
        pub id: String,
        pub name: String,
        pub description: Option<String>,
        pub function_id: String,
        pub function_version: i64,
        pub additional_version: Option<i64>,
        pub additional_version_weight: Option<u32>,
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
    }
    required: ["id", "name", "function_id", "function_version", "project_id", "created_at"];
    closed: false;
}

wire_object! {
    /// `POST /v1/aliases` (`name` and `function_id` required) and `PUT /v1/aliases/{name}`.
    /// The weighted pair goes together; on update both `null` removes it. Integers may also
    /// come as numeric strings.
    pub struct AliasBody {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_version: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub additional_version: Option<Option<i64>>,
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub additional_version_weight: Option<Option<i64>>,
    }
    required: [];
    closed: true;
}

wire_object! {
    /// `GET /v1/aliases`.
    pub struct AliasList {
        pub function_aliases: Vec<Alias>,
    }
    required: ["function_aliases"];
    closed: false;
}

wire_object! {
    /// A job (reference §3.7): a cron pattern or a one-time execution of a function version
    /// or an alias.
    pub struct Job {
        pub id: String,
        pub name: Option<String>,
        pub function_id: Option<String>,
        pub function_alias: Option<String>,
        pub function_version: i64,
        pub function_input: Option<String>,
        pub status: String => string_enum(&["running", "paused", "done", "cancelled"]),
        pub pattern: Option<String>,
        pub count: Option<i64>,
        pub first_execution_time: String => ts(),
        pub next_execution_time: String => ts(),
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
    }
    required: ["id", "status", "first_execution_time", "next_execution_time", "project_id", "created_at"];
    closed: false;
}

wire_object! {
    /// `POST /v1/jobs` and `PUT /v1/jobs/{id}` (an update ignores what it cannot change:
    /// the target and `count`); `function_version` and `count` may also come as numeric
    /// strings.
    pub struct JobBody {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub name: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_alias: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_version: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_input: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub status: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub pattern: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub count: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub first_execution_time: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub next_execution_time: Option<String>,
    }
    required: [];
    closed: true;
}

wire_object! {
    /// `GET /v1/jobs`.
    pub struct JobList {
        pub jobs: Vec<Job>,
    }
    required: ["jobs"];
    closed: false;
}

wire_object! {
    /// A webhook (reference §3.8) and the URL that invokes it.
    pub struct Webhook {
        pub id: String,
        pub function_id: Option<String>,
        pub function_alias: Option<String>,
        pub function_version: Option<i64>,
        pub description: Option<String>,
        pub project_id: String,
        pub created_at: String => ts(),
        pub updated_at: Option<String> => ts_null(),
        pub webhook_url: String,
    }
    required: ["id", "project_id", "created_at", "webhook_url"];
    closed: false;
}

wire_object! {
    /// `POST /v1/webhooks` and `PUT /v1/webhooks/{id}`: an alias, or a function (and
    /// version); `function_version` may also come as a numeric string.
    pub struct WebhookBody {
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_id: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_alias: Option<String>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub function_version: Option<i64>,
        #[serde(default, skip_serializing_if = "Option::is_none")]
        pub description: Option<String>,
    }
    required: [];
    closed: true;
}

wire_object! {
    /// `GET /v1/webhooks`.
    pub struct WebhookList {
        pub webhooks: Vec<Webhook>,
    }
    required: ["webhooks"];
    closed: false;
}

wire_object! {
    /// `POST /v1/webhooks/{id}/invoke`: the async execution it created.
    pub struct WebhookInvoked {
        pub execution_id: String,
    }
    required: ["execution_id"];
    closed: false;
}

wire_object! {
    /// A project's quota limits (or usage) per resource (not in upstream); -1 is unlimited.
    pub struct QuotaLimits {
        pub functions: i64,
        pub package_bytes: i64,
        pub concurrent_executions: i64,
        pub workers: i64,
        pub executions_per_minute: i64,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// `PUT /v1/quotas/{project_id}` (admin): the limits to change, at least one; `null`
    /// resets one to the server's default, -1 is unlimited.
    pub struct QuotaUpdate {
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub functions: Option<Option<i64>> => limit(),
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub package_bytes: Option<Option<i64>> => limit(),
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub concurrent_executions: Option<Option<i64>> => limit(),
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub workers: Option<Option<i64>> => limit(),
        #[serde(default, deserialize_with = "patch", skip_serializing_if = "Option::is_none")]
        pub executions_per_minute: Option<Option<i64>> => limit(),
    }
    required: [];
    closed: true;
    min_properties: 1;
}

wire_object! {
    /// A project's quota: whether it is enforced, its limits and its usage.
    pub struct QuotaSet {
        pub project_id: String,
        pub enforced: bool,
        pub limits: QuotaLimits,
        pub usage: QuotaLimits,
    }
    required: [];
    closed: false;
}

wire_object! {
    /// `GET`/`PUT /v1/quotas/{project_id}`.
    pub struct Quota {
        pub quota: QuotaSet,
    }
    required: ["quota"];
    closed: false;
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::Object;

    #[test]
    fn usage_columns_follow_the_row() {
        assert_eq!(
            UsageRow::fields(),
            [
                "project_id",
                "function_id",
                "function_name",
                "executions",
                "succeeded",
                "failed",
                "errored",
                "duration_s",
                "cpu_s",
                "gb_seconds",
                "memory_peak_max_kb",
            ]
        );
    }

    #[test]
    fn a_flattened_row_serializes_in_column_order() {
        let row = UsageRow {
            project_id: "p".into(),
            function_id: None,
            function_name: None,
            sums: UsageSums {
                executions: 1,
                succeeded: 1,
                failed: 0,
                errored: 0,
                duration_s: 1.75,
                cpu_s: 0.0,
                gb_seconds: 0.5,
                memory_peak_max_kb: None,
            },
        };
        let v = serde_json::to_value(&row).unwrap();
        let keys: Vec<&str> = v.as_object().unwrap().keys().map(String::as_str).collect();
        assert_eq!(keys, UsageRow::fields());
        assert_eq!(serde_json::from_value::<UsageRow>(v).unwrap(), row);
    }

    #[test]
    fn schemas_come_from_the_types() {
        let s = Execution::schema();
        assert_eq!(
            s["properties"]["cpu_ms"],
            json!({"type": "integer", "nullable": true})
        );
        assert_eq!(s["properties"]["sync"], json!({"type": "boolean"}));
        assert_eq!(s["required"][0], "id");
        assert_eq!(
            ExecutionList::schema()["properties"]["executions"]["items"],
            json!({"$ref": "#/components/schemas/Execution"})
        );
        assert_eq!(ExecutionCreate::schema()["additionalProperties"], false);
        assert_eq!(
            UsageRow::schema()["allOf"][1],
            json!({"$ref": "#/components/schemas/UsageSums"})
        );
    }

    #[test]
    fn an_update_tells_absent_from_null() {
        let u: RuntimeUpdate = serde_json::from_str(r#"{"name": null, "image": "x"}"#).unwrap();
        assert_eq!(
            (u.name, u.description, u.image.as_deref()),
            (Some(None), None, Some("x"))
        );
        let sent = RuntimeUpdate {
            name: Some(Some("n".into())),
            description: None,
            image: None,
        };
        assert_eq!(serde_json::to_string(&sent).unwrap(), r#"{"name":"n"}"#);
    }

    #[test]
    fn absent_request_fields_are_not_sent() {
        let body = ExecutionCreate {
            function_id: None,
            function_version: None,
            function_alias: Some("prod".into()),
            sync: Some(true),
            input: None,
            description: None,
        };
        assert_eq!(
            serde_json::to_string(&body).unwrap(),
            r#"{"function_alias":"prod","sync":true}"#
        );
    }

    #[test]
    fn faults_keep_their_shape() {
        let fault = Fault {
            faultcode: "Client".into(),
            faultstring: "no".into(),
            debuginfo: None,
        };
        assert_eq!(
            serde_json::to_string(&fault).unwrap(),
            r#"{"faultcode":"Client","faultstring":"no","debuginfo":null}"#
        );
    }

    #[test]
    fn a_quota_update_tells_absent_from_null() {
        let u: QuotaUpdate = serde_json::from_str(r#"{"workers": null, "functions": 3}"#).unwrap();
        assert_eq!(
            (u.functions, u.workers, u.package_bytes),
            (Some(Some(3)), Some(None), None)
        );
        assert_eq!(
            serde_json::to_string(&u).unwrap(),
            r#"{"functions":3,"workers":null}"#
        );
        assert_eq!(QuotaUpdate::schema()["minProperties"], 1);
    }

    #[test]
    fn a_function_form_is_text_in_declaration_order() {
        let body = FunctionCreate {
            runtime_id: Some("r".into()),
            code: Some("{}".into()),
            timeout: Some("7".into()),
            package: Some(vec![1, 2]),
            ..Default::default()
        };
        let fields = crate::form_fields(&body);
        let expected: Vec<(String, String)> =
            [("runtime_id", "r"), ("code", "{}"), ("timeout", "7")]
                .into_iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect();
        assert_eq!(fields, expected);
        let back: FunctionCreate =
            serde_json::from_value(json!({"timeout": "7", "package": "x", "other": "y"})).unwrap();
        assert_eq!((back.timeout.as_deref(), back.package), (Some("7"), None));
        assert_eq!(
            FunctionCreate::schema()["properties"]["package"],
            json!({"type": "string", "format": "binary"})
        );
    }
}
