//! The resources of the v1 API as the domain sees them. Wire rendering (which fields are
//! strings, which objects) is the api crate's business; the store maps rows to these.

use serde::{Deserialize, Serialize};

use crate::{ExecutionId, FunctionId, RuntimeId, Timestamp};

/// Lifecycle of a runtime (reference §3.2).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum RuntimeStatus {
    Creating,
    Available,
    Upgrading,
    Deleting,
    Error,
}

impl RuntimeStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeStatus::Creating => "creating",
            RuntimeStatus::Available => "available",
            RuntimeStatus::Upgrading => "upgrading",
            RuntimeStatus::Deleting => "deleting",
            RuntimeStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "creating" => RuntimeStatus::Creating,
            "available" => RuntimeStatus::Available,
            "upgrading" => RuntimeStatus::Upgrading,
            "deleting" => RuntimeStatus::Deleting,
            "error" => RuntimeStatus::Error,
            _ => return None,
        })
    }
}

/// Which runtime shim serves a runtime's workers, derived from its `image` string so that
/// upstream images (`openstackqinling/python3-runtime:0.0.2`) keep working.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum RuntimeKind {
    Python3,
    /// Node.js: `handler(context, input)` in warm executor processes (`shims/nodejs.js`).
    Nodejs,
    /// A package carrying its own executable: stdin JSON in, stdout result out (`shims/custom.py`).
    Custom,
    /// A WASI preview-1 command module run in-process by wasmtime (`qinling-wasm`): no
    /// workers, no shim.
    Wasm,
}

impl RuntimeKind {
    /// The kind an image name denotes, or `None` when no built-in runtime matches.
    pub fn from_image(image: &str) -> Option<Self> {
        let lower = image.to_ascii_lowercase();
        let name = lower.rsplit('/').next().unwrap_or(&lower);
        if name.starts_with("python") {
            Some(RuntimeKind::Python3)
        } else if name.starts_with("node") {
            Some(RuntimeKind::Nodejs)
        } else if name.starts_with("custom") {
            Some(RuntimeKind::Custom)
        } else if name.starts_with("wasm") || name.starts_with("wasi") {
            Some(RuntimeKind::Wasm)
        } else {
            None
        }
    }

    pub fn as_str(self) -> &'static str {
        match self {
            RuntimeKind::Python3 => "python3",
            RuntimeKind::Nodejs => "nodejs",
            RuntimeKind::Custom => "custom",
            RuntimeKind::Wasm => "wasm",
        }
    }

    /// Whether executions run in the server's own process rather than on pool workers:
    /// such a runtime has no pre-started workers and no launcher.
    pub fn runs_in_process(self) -> bool {
        matches!(self, RuntimeKind::Wasm)
    }

    /// The execution mode a function of this kind gets when it names none: what upstream's
    /// server for the runtime did (python3 forked a process per execution; nodejs `require`d
    /// the module once in a long-lived process), `fork` for the kinds that know no other.
    pub fn default_execution_mode(self) -> ExecutionMode {
        match self {
            RuntimeKind::Nodejs => ExecutionMode::Reuse,
            RuntimeKind::Python3 | RuntimeKind::Custom | RuntimeKind::Wasm => ExecutionMode::Fork,
        }
    }

    /// Whether functions of this kind may run in `mode`; `Err` says why not (the end of a
    /// sentence: "… is not supported by the custom runtime: {why}").
    pub fn supports(self, mode: ExecutionMode) -> Result<(), &'static str> {
        match (self, mode) {
            (_, ExecutionMode::Fork) | (RuntimeKind::Python3 | RuntimeKind::Nodejs, _) => Ok(()),
            (RuntimeKind::Custom, ExecutionMode::Reuse) => {
                Err("each execution runs the package's executable as a new process")
            }
            (RuntimeKind::Wasm, ExecutionMode::Reuse) => {
                Err("each execution gets a fresh WebAssembly instance")
            }
        }
    }
}

/// How a function's executions use its worker's process (issue 17): `fork` runs each in a
/// fresh process, `reuse` runs them in the worker's long-lived process, so module state
/// persists between the executions of one worker. The default depends on the runtime's
/// kind ([`RuntimeKind::default_execution_mode`]).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionMode {
    #[default]
    Fork,
    Reuse,
}

impl ExecutionMode {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionMode::Fork => "fork",
            ExecutionMode::Reuse => "reuse",
        }
    }
}

impl std::fmt::Display for ExecutionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.as_str())
    }
}

/// A text that is not an execution mode; its message names the two that are.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BadExecutionMode(pub String);

impl std::fmt::Display for BadExecutionMode {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "execution_mode must be 'fork' or 'reuse', not '{}'",
            self.0
        )
    }
}

impl std::error::Error for BadExecutionMode {}

impl std::str::FromStr for ExecutionMode {
    type Err = BadExecutionMode;

    fn from_str(s: &str) -> Result<Self, Self::Err> {
        match s {
            "fork" => Ok(ExecutionMode::Fork),
            "reuse" => Ok(ExecutionMode::Reuse),
            other => Err(BadExecutionMode(other.to_string())),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Runtime {
    pub id: RuntimeId,
    pub name: Option<String>,
    pub image: String,
    pub description: Option<String>,
    pub is_public: bool,
    pub trusted: bool,
    pub status: RuntimeStatus,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

/// Where a function's code comes from. Only packages are executable here; `image` and `swift`
/// are recognised so that the right error can be given.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Code {
    Package { md5sum: String },
}

impl Code {
    /// The `code` object as the wire shows it.
    pub fn to_json(&self) -> serde_json::Value {
        match self {
            Code::Package { md5sum } => serde_json::json!({"source": "package", "md5sum": md5sum}),
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Function {
    pub id: FunctionId,
    pub name: Option<String>,
    pub description: Option<String>,
    pub runtime_id: Option<RuntimeId>,
    pub code: Code,
    /// SHA-256 of the package: its key in the content-addressed package store.
    pub package_sha256: String,
    pub package_size: u64,
    pub entry: Option<String>,
    pub cpu: u32,
    pub memory_size: u64,
    pub timeout: u32,
    /// Whether the function's workers may open outbound connections (our extension; off by
    /// default, as upstream's functions had no network policy of their own).
    pub network: bool,
    /// A fresh process per execution, or the worker's long-lived one (our extension).
    pub execution_mode: ExecutionMode,
    pub count: i64,
    pub latest_version: i64,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

impl Function {
    /// The entry point, with upstream's default.
    pub fn entry_or_default(&self) -> &str {
        self.entry
            .as_deref()
            .filter(|e| !e.is_empty())
            .unwrap_or("main.main")
    }
}

/// Status of an execution (reference §3.6).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum ExecutionStatus {
    Running,
    Success,
    Failed,
    Error,
}

impl ExecutionStatus {
    pub fn as_str(self) -> &'static str {
        match self {
            ExecutionStatus::Running => "running",
            ExecutionStatus::Success => "success",
            ExecutionStatus::Failed => "failed",
            ExecutionStatus::Error => "error",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "running" => ExecutionStatus::Running,
            "success" => ExecutionStatus::Success,
            "failed" => ExecutionStatus::Failed,
            "error" => ExecutionStatus::Error,
            _ => return None,
        })
    }
}

/// How the function receives an execution's input (reference §3.6).
#[derive(Debug, Clone, PartialEq)]
pub enum Input {
    /// No input: the function is called with no arguments besides `context`.
    None,
    /// A JSON object: its keys become keyword arguments.
    Kwargs(serde_json::Map<String, serde_json::Value>),
    /// Anything else: the raw string is one positional argument.
    Positional(String),
}

impl Input {
    /// Parses the `input` string of an execution request.
    pub fn parse(raw: Option<&str>) -> Input {
        let Some(raw) = raw else { return Input::None };
        match serde_json::from_str::<serde_json::Value>(raw) {
            Ok(serde_json::Value::Null) => Input::None,
            Ok(serde_json::Value::Object(map)) => Input::Kwargs(map),
            _ => Input::Positional(raw.to_string()),
        }
    }

    /// The `input` field as the wire shows it: the raw string for positional input,
    /// a Python-style `json.dumps` of the object otherwise.
    pub fn to_wire(&self) -> Option<String> {
        match self {
            Input::None => None,
            Input::Kwargs(map) => Some(crate::model::py_json(&serde_json::Value::Object(
                map.clone(),
            ))),
            Input::Positional(raw) => Some(raw.clone()),
        }
    }
}

/// Renders JSON the way Python's `json.dumps` does by default (`", "` and `": "` separators,
/// non-ASCII escaped), which is how upstream shows `input` and `result`.
pub fn py_json(value: &serde_json::Value) -> String {
    let mut out = String::new();
    write_py_json(value, &mut out);
    out
}

fn write_py_json(value: &serde_json::Value, out: &mut String) {
    use serde_json::Value;
    match value {
        Value::Null => out.push_str("null"),
        Value::Bool(b) => out.push_str(if *b { "true" } else { "false" }),
        Value::Number(n) => out.push_str(&n.to_string()),
        Value::String(s) => write_py_str(s, out),
        Value::Array(items) => {
            out.push('[');
            for (i, item) in items.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_json(item, out);
            }
            out.push(']');
        }
        Value::Object(map) => {
            out.push('{');
            for (i, (k, v)) in map.iter().enumerate() {
                if i > 0 {
                    out.push_str(", ");
                }
                write_py_str(k, out);
                out.push_str(": ");
                write_py_json(v, out);
            }
            out.push('}');
        }
    }
}

fn write_py_str(s: &str, out: &mut String) {
    use std::fmt::Write;
    out.push('"');
    for c in s.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{08}' => out.push_str("\\b"),
            '\u{0c}' => out.push_str("\\f"),
            c if (c as u32) < 0x20 || (c as u32) > 0x7e => {
                let mut buf = [0u16; 2];
                for unit in c.encode_utf16(&mut buf) {
                    let _ = write!(out, "\\u{unit:04x}");
                }
            }
            c => out.push(c),
        }
    }
    out.push('"');
}

/// What the runtime reported for one execution.
#[derive(Debug, Clone, PartialEq)]
pub struct Outcome {
    pub status: ExecutionStatus,
    /// The function's return value, or the error message.
    pub output: serde_json::Value,
    /// Seconds, 3 decimals.
    pub duration: f64,
    pub logs: String,
    pub cpu_ms: Option<u64>,
    pub memory_peak_kb: Option<u64>,
    /// Milliseconds spent starting a worker for it (`None`: it found one warm).
    pub cold_start_ms: Option<u64>,
}

impl Outcome {
    /// The `result` field: `{"output": …, "duration": …}` as upstream renders it.
    pub fn result_json(&self) -> String {
        let mut map = serde_json::Map::new();
        map.insert("output".into(), self.output.clone());
        let d = serde_json::Number::from_f64((self.duration * 1000.0).round() / 1000.0)
            .unwrap_or_else(|| serde_json::Number::from(0));
        map.insert("duration".into(), serde_json::Value::Number(d));
        py_json(&serde_json::Value::Object(map))
    }

    /// The duration in whole milliseconds, as `result` shows it (3 decimals of a second);
    /// never negative.
    pub fn duration_ms(&self) -> i64 {
        let ms = (self.duration * 1000.0).round();
        if ms.is_finite() && ms > 0.0 {
            ms as i64
        } else {
            0
        }
    }

    /// A platform-side failure with a message and no log.
    pub fn error(status: ExecutionStatus, message: &str) -> Self {
        Outcome {
            status,
            output: serde_json::Value::String(message.to_string()),
            duration: 0.0,
            logs: String::new(),
            cpu_ms: None,
            memory_peak_kb: None,
            cold_start_ms: None,
        }
    }
}

#[derive(Debug, Clone, PartialEq)]
pub struct Execution {
    pub id: ExecutionId,
    pub function_id: FunctionId,
    pub function_version: i64,
    pub function_alias: Option<String>,
    pub description: Option<String>,
    pub status: ExecutionStatus,
    pub sync: bool,
    /// The input, parsed once when the execution was created (or read from its stored wire
    /// text, [`Input::to_wire`]).
    pub input: Input,
    /// The `result` field (a JSON string), once finished.
    pub result: Option<String>,
    pub logs: Option<String>,
    pub cpu_ms: Option<i64>,
    pub memory_peak_kb: Option<i64>,
    /// Milliseconds the function ran (the `duration` of `result`), once finished.
    pub duration_ms: Option<i64>,
    /// Bytes: the memory limit of the definition it ran, once finished; `None` when nothing
    /// ran. Usage bills `memory_size × duration` (`GiB-seconds`).
    pub memory_size: Option<i64>,
    /// Milliseconds it waited for a worker to be started for it; `None` when it found one
    /// warm (or nothing ran).
    pub cold_start_ms: Option<i64>,
    /// The request that created it (`X-Openstack-Request-Id`); `None` on rows older than
    /// the column.
    pub request_id: Option<String>,
    /// The trace it belongs to; `None` on rows older than the column.
    pub trace: Option<crate::trace::TraceContext>,
    pub project_id: String,
    pub created_at: Timestamp,
    pub updated_at: Option<Timestamp>,
}

impl Execution {
    /// How the function receives the input of this execution (a copy of the parsed input).
    pub fn parsed_input(&self) -> Input {
        self.input.clone()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_rules() {
        let cases: &[(Option<&str>, &str)] = &[
            (None, "none"),
            (Some("null"), "none"),
            (Some("{}"), "kwargs {}"),
            (
                Some("{\"a\": 1,\"b\":[1,2]}"),
                "kwargs {\"a\": 1, \"b\": [1, 2]}",
            ),
            (Some("Qinling"), "positional Qinling"),
            (Some("42"), "positional 42"),
            (Some("1.5"), "positional 1.5"),
            (Some("[1, 2]"), "positional [1, 2]"),
        ];
        for (raw, expect) in cases {
            let got = match Input::parse(*raw) {
                Input::None => "none".to_string(),
                i @ Input::Kwargs(_) => format!("kwargs {}", i.to_wire().unwrap()),
                Input::Positional(s) => format!("positional {s}"),
            };
            assert_eq!(&got, expect, "{raw:?}");
        }
    }

    #[test]
    fn py_json_matches_python() {
        let v: serde_json::Value =
            serde_json::from_str(r#"{"output":"Hello, Bob ü\n","n":[1,2.5,null,true]}"#).unwrap();
        assert_eq!(
            py_json(&v),
            r#"{"output": "Hello, Bob \u00fc\n", "n": [1, 2.5, null, true]}"#
        );
    }

    #[test]
    fn result_rounds_duration() {
        let o = Outcome {
            duration: 0.0123456,
            ..Outcome::error(ExecutionStatus::Success, "x")
        };
        assert_eq!(o.result_json(), r#"{"output": "x", "duration": 0.012}"#);
        assert_eq!(o.duration_ms(), 12);
        let odd = |duration| {
            Outcome {
                duration,
                ..o.clone()
            }
            .duration_ms()
        };
        assert_eq!((odd(2.0006), odd(-1.0), odd(f64::NAN)), (2001, 0, 0));
    }

    #[test]
    fn runtime_kind_from_image() {
        assert_eq!(
            RuntimeKind::from_image("openstackqinling/python3-runtime:0.0.2"),
            Some(RuntimeKind::Python3)
        );
        assert_eq!(
            RuntimeKind::from_image("python3"),
            Some(RuntimeKind::Python3)
        );
        assert_eq!(RuntimeKind::from_image("busybox"), None);
        assert_eq!(
            RuntimeKind::from_image("openstackqinling/nodejs-runtime:0.0.1"),
            Some(RuntimeKind::Nodejs)
        );
        assert_eq!(RuntimeKind::from_image("nodejs"), Some(RuntimeKind::Nodejs));
        assert_eq!(RuntimeKind::from_image("custom"), Some(RuntimeKind::Custom));
        assert_eq!(RuntimeKind::from_image("wasm"), Some(RuntimeKind::Wasm));
        assert_eq!(RuntimeKind::from_image("WASI-p1"), Some(RuntimeKind::Wasm));
        assert!(RuntimeKind::Wasm.runs_in_process());
        assert!(!RuntimeKind::Python3.runs_in_process());
    }

    #[test]
    fn execution_modes() {
        use ExecutionMode::{Fork, Reuse};
        assert_eq!("fork".parse(), Ok(Fork));
        assert_eq!("reuse".parse(), Ok(Reuse));
        assert_eq!(
            "Reuse".parse::<ExecutionMode>().unwrap_err().to_string(),
            "execution_mode must be 'fork' or 'reuse', not 'Reuse'"
        );
        assert_eq!((Fork.as_str(), Reuse.to_string()), ("fork", "reuse".into()));
        assert_eq!(serde_json::to_value(Reuse).unwrap(), "reuse");
        assert_eq!(
            serde_json::from_str::<ExecutionMode>("\"fork\"").unwrap(),
            Fork
        );
        // The defaults are upstream's behaviour per runtime.
        let defaults = [
            RuntimeKind::Python3,
            RuntimeKind::Nodejs,
            RuntimeKind::Custom,
            RuntimeKind::Wasm,
        ]
        .map(|k| (k.default_execution_mode(), k.supports(Reuse).is_ok()));
        assert_eq!(
            defaults,
            [(Fork, true), (Reuse, true), (Fork, false), (Fork, false)]
        );
    }
}
