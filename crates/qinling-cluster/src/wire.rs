//! What nodes say to each other over NATS: requests to one node (run this, list your
//! workers, scale), its replies, and broadcasts to every node (release a function's
//! workers, forget a package). JSON, with the executor seam's nouns in their own serde
//! shapes here, so the seam's types carry no wire format.

use std::time::Duration;

use qinling_executor::{
    Definition, End, ExecutionContext, FunctionKey, Report, RunRequest, ServerLimits, WorkerInfo,
};
use qinling_types::{ExecutionMode, Input, RuntimeKind};
use serde::{Deserialize, Serialize};

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum Request {
    /// Run an execution. Unless `must_accept`, a node at its capacity (or at the version's
    /// worker cap) answers [`Reply::Busy`] at once, and the caller tries the next node.
    Run {
        run: Run,
        must_accept: bool,
    },
    Workers {
        function_id: String,
        version: Option<i64>,
    },
    ScaleUp {
        key: Key,
        definition: Def,
        count: usize,
    },
    ScaleDown {
        key: Key,
        count: usize,
    },
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "reply", rename_all = "snake_case")]
pub enum Reply {
    Report(Rep),
    Busy,
    Workers { workers: Vec<Worker> },
    Done,
    Error { message: String },
}

/// To every node: `from` applies it itself.
#[derive(Debug, Serialize, Deserialize)]
pub struct Broadcast {
    pub from: String,
    pub op: BroadcastOp,
}

#[derive(Debug, Serialize, Deserialize)]
#[serde(tag = "op", rename_all = "snake_case")]
pub enum BroadcastOp {
    Release {
        function_id: String,
        version: Option<i64>,
    },
    Evict {
        definition: Def,
    },
    Forget {
        sha256: String,
    },
    RemoveRuntime {
        runtime_id: String,
    },
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Key {
    pub function_id: String,
    pub version: i64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Def {
    pub runtime_id: String,
    pub kind: String,
    pub package_sha256: String,
    pub entry: String,
    pub cpu_millis: u32,
    pub memory_bytes: u64,
    pub timeout_ms: u64,
    pub network: bool,
    /// Absent from a node of a build before execution modes: the kind's default, which is
    /// how such a node's workers ran.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<ExecutionMode>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Run {
    pub key: Key,
    pub definition: Def,
    /// The input as the wire shows it; parsed back it is the same [`Input`].
    pub input: Option<String>,
    pub execution_id: String,
    pub project_id: String,
    pub request_id: Option<String>,
    /// Absent from a node of a build before traces.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
    pub log_bytes: usize,
    pub nofile: u64,
    pub nproc: u64,
    pub fsize: u64,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Rep {
    /// `success`, `failed`, `timeout`, `out_of_resources`, `load_failed`, `crashed`,
    /// `lost`, `unavailable`.
    pub end: String,
    /// The text of `load_failed` and `lost`.
    #[serde(default)]
    pub why: String,
    pub output: serde_json::Value,
    pub logs: String,
    pub duration_us: u64,
    pub cpu_us: Option<u64>,
    pub memory_peak_kb: Option<u64>,
    pub cold_start_us: Option<u64>,
}

#[derive(Debug, Serialize, Deserialize)]
pub struct Worker {
    pub function_id: String,
    pub function_version: i64,
    pub worker_name: String,
}

impl From<&FunctionKey> for Key {
    fn from(k: &FunctionKey) -> Key {
        Key {
            function_id: k.function_id.clone(),
            version: k.version,
        }
    }
}

impl From<Key> for FunctionKey {
    fn from(k: Key) -> FunctionKey {
        FunctionKey {
            function_id: k.function_id,
            version: k.version,
        }
    }
}

impl From<&Definition> for Def {
    fn from(d: &Definition) -> Def {
        Def {
            runtime_id: d.runtime_id.clone(),
            kind: d.kind.as_str().to_string(),
            package_sha256: d.package_sha256.clone(),
            entry: d.entry.clone(),
            cpu_millis: d.cpu_millis,
            memory_bytes: d.memory_bytes,
            timeout_ms: d.timeout.as_millis() as u64,
            network: d.network,
            execution_mode: Some(d.execution_mode),
        }
    }
}

impl Def {
    pub fn definition(self) -> Result<Definition, String> {
        let kind = RuntimeKind::from_image(&self.kind)
            .ok_or_else(|| format!("unknown runtime kind '{}'", self.kind))?;
        Ok(Definition {
            runtime_id: self.runtime_id,
            kind,
            package_sha256: self.package_sha256,
            entry: self.entry,
            cpu_millis: self.cpu_millis,
            memory_bytes: self.memory_bytes,
            timeout: Duration::from_millis(self.timeout_ms),
            network: self.network,
            execution_mode: self
                .execution_mode
                .unwrap_or_else(|| kind.default_execution_mode()),
        })
    }
}

impl From<&RunRequest> for Run {
    fn from(r: &RunRequest) -> Run {
        Run {
            key: (&r.key).into(),
            definition: (&r.definition).into(),
            input: r.input.to_wire(),
            execution_id: r.context.execution_id.clone(),
            project_id: r.context.project_id.clone(),
            request_id: r.context.request_id.clone(),
            traceparent: r.context.traceparent.clone(),
            log_bytes: r.limits.log_bytes,
            nofile: r.limits.nofile,
            nproc: r.limits.nproc,
            fsize: r.limits.fsize,
        }
    }
}

impl Run {
    pub fn request(self) -> Result<RunRequest, String> {
        let definition = self.definition.definition()?;
        Ok(RunRequest {
            context: ExecutionContext {
                execution_id: self.execution_id,
                function_id: self.key.function_id.clone(),
                function_version: self.key.version,
                project_id: self.project_id,
                request_id: self.request_id,
                traceparent: self.traceparent,
            },
            key: self.key.into(),
            definition,
            input: Input::parse(self.input.as_deref()),
            limits: ServerLimits {
                log_bytes: self.log_bytes,
                nofile: self.nofile,
                nproc: self.nproc,
                fsize: self.fsize,
            },
        })
    }
}

impl From<&Report> for Rep {
    fn from(r: &Report) -> Rep {
        let (end, why) = match &r.end {
            End::Success => ("success", String::new()),
            End::Failed => ("failed", String::new()),
            End::Timeout => ("timeout", String::new()),
            End::OutOfResources => ("out_of_resources", String::new()),
            End::LoadFailed(why) => ("load_failed", why.clone()),
            End::Crashed => ("crashed", String::new()),
            End::Lost(why) => ("lost", why.clone()),
            End::Unavailable => ("unavailable", String::new()),
        };
        Rep {
            end: end.to_string(),
            why,
            output: r.output.clone(),
            logs: r.logs.clone(),
            duration_us: r.duration.as_micros() as u64,
            cpu_us: r.cpu.map(|d| d.as_micros() as u64),
            memory_peak_kb: r.memory_peak_kb,
            cold_start_us: r.cold_start.map(|d| d.as_micros() as u64),
        }
    }
}

impl From<Rep> for Report {
    fn from(r: Rep) -> Report {
        let end = match r.end.as_str() {
            "success" => End::Success,
            "failed" => End::Failed,
            "timeout" => End::Timeout,
            "out_of_resources" => End::OutOfResources,
            "load_failed" => End::LoadFailed(r.why),
            "crashed" => End::Crashed,
            "lost" => End::Lost(r.why),
            _ => End::Unavailable,
        };
        Report {
            end,
            output: r.output,
            logs: r.logs,
            duration: Duration::from_micros(r.duration_us),
            cpu: r.cpu_us.map(Duration::from_micros),
            memory_peak_kb: r.memory_peak_kb,
            cold_start: r.cold_start_us.map(Duration::from_micros),
        }
    }
}

impl Worker {
    pub fn info(self, node: &str) -> WorkerInfo {
        WorkerInfo {
            function_id: self.function_id,
            function_version: self.function_version,
            worker_name: self.worker_name,
            node: Some(node.to_string()),
        }
    }
}

impl From<&WorkerInfo> for Worker {
    fn from(w: &WorkerInfo) -> Worker {
        Worker {
            function_id: w.function_id.clone(),
            function_version: w.function_version,
            worker_name: w.worker_name.clone(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_run_request_crosses_the_wire_unchanged() {
        for input in [
            Input::None,
            Input::parse(Some(r#"{"name": "Ünïcode", "n": 1.5, "l": [1, null]}"#)),
            Input::Positional("plain text".into()),
            Input::Positional("[1, 2]".into()),
        ] {
            let req = RunRequest {
                key: FunctionKey {
                    function_id: "f".into(),
                    version: 2,
                },
                definition: Definition {
                    runtime_id: "rt".into(),
                    kind: RuntimeKind::Wasm,
                    package_sha256: "ab".into(),
                    entry: "main.wasm".into(),
                    cpu_millis: 250,
                    memory_bytes: 1 << 25,
                    timeout: Duration::from_millis(1500),
                    network: true,
                    execution_mode: ExecutionMode::Reuse,
                },
                input,
                context: ExecutionContext {
                    execution_id: "e".into(),
                    function_id: "f".into(),
                    function_version: 2,
                    project_id: "p".into(),
                    request_id: Some("req-1".into()),
                    traceparent: Some(
                        "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01".into(),
                    ),
                },
                limits: ServerLimits {
                    log_bytes: 10,
                    nofile: 11,
                    nproc: 12,
                    fsize: 13,
                },
            };
            let json = serde_json::to_vec(&Request::Run {
                run: (&req).into(),
                must_accept: false,
            })
            .unwrap();
            let Request::Run { run, .. } = serde_json::from_slice(&json).unwrap() else {
                panic!("not a run")
            };
            let back = run.request().unwrap();
            assert_eq!(back.key, req.key);
            assert_eq!(back.definition, req.definition);
            assert_eq!(back.input, req.input);
            assert_eq!(back.context, req.context);
            assert_eq!(back.limits, req.limits);
        }
        // A definition from a node that knows no execution modes runs in the kind's default.
        let old = serde_json::json!({"runtime_id": "rt", "kind": "nodejs", "package_sha256": "ab",
            "entry": "main.main", "cpu_millis": 100, "memory_bytes": 1, "timeout_ms": 1,
            "network": false});
        let def: Def = serde_json::from_value(old).unwrap();
        assert_eq!(
            def.definition().unwrap().execution_mode,
            ExecutionMode::Reuse
        );
    }

    #[test]
    fn every_end_crosses_the_wire_unchanged() {
        for end in [
            End::Success,
            End::Failed,
            End::Timeout,
            End::OutOfResources,
            End::LoadFailed("no module".into()),
            End::Crashed,
            End::Lost("node n2 lost".into()),
            End::Unavailable,
        ] {
            let mut r = Report::ended(end.clone());
            r.cpu = Some(Duration::from_micros(7));
            r.logs = "log".into();
            let back: Report =
                serde_json::from_value::<Rep>(serde_json::to_value(Rep::from(&r)).unwrap())
                    .unwrap()
                    .into();
            assert_eq!(back.end, end);
            assert_eq!(back.cpu, r.cpu);
            assert_eq!(back.logs, "log");
        }
    }
}
