//! The execution seam: the one trait, [`Executor`], that every place an execution can run
//! implements — the pooled native workers (jail or plain process), wasm in the server's
//! process, and later another node of a cluster, a microVM or a pod — and the neutral
//! nouns that cross it: what runs ([`Definition`], [`RunRequest`]), what happened
//! ([`Report`], [`End`]), how busy a function is ([`Load`]) and where its package comes
//! from ([`Packages`]).
//!
//! The engine depends on this crate only; the server binary is the one place that chooses
//! implementations and puts them behind one [`Executors`] router (by runtime kind). An
//! executor never touches the store and never decides what an execution's outcome means:
//! it reports how the run ended, and the engine maps that to the recorded outcome once.

mod router;
pub mod slots;
pub mod tempfiles;

use std::sync::Arc;
use std::time::Duration;

use qinling_types::{ExecutionMode, Input, RuntimeKind};

pub use router::Executors;

/// Identifies the executions (and workers) of one function version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionKey {
    pub function_id: String,
    pub version: i64,
}

/// Everything that decides how a function version runs: its runtime, package, entry and
/// limits. Workers (or compiled modules) made for one definition never serve another.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Definition {
    pub runtime_id: String,
    pub kind: RuntimeKind,
    /// SHA-256 (hex) of the package.
    pub package_sha256: String,
    /// The entry, defaults applied (`main.main`, a wasm module's name).
    pub entry: String,
    /// CPU in thousandths of a core.
    pub cpu_millis: u32,
    pub memory_bytes: u64,
    pub timeout: Duration,
    /// Outbound network access.
    pub network: bool,
    /// A fresh process per execution, or the worker's long-lived one (told to the worker at
    /// bind; executors without workers run every execution afresh).
    pub execution_mode: ExecutionMode,
}

/// What a function version's workers are bound to: a change of package, entry, limits,
/// network access or execution mode retires them. Only [`Revision::of`] makes one, so two
/// revisions are equal exactly when what they were made of is.
#[derive(Debug, Clone, PartialEq, Eq, Hash, Default)]
pub struct Revision(String);

impl Revision {
    pub fn of(d: &Definition) -> Revision {
        Revision(format!(
            "{}:{}:{}:{}:{}:{}",
            d.package_sha256,
            d.entry,
            d.cpu_millis,
            d.memory_bytes,
            if d.network { "net" } else { "lo" },
            d.execution_mode,
        ))
    }

    /// The revision of nothing: no worker is bound to it.
    pub fn none() -> Revision {
        Revision(String::new())
    }
}

/// What an execution is told about itself (the `context` of the runtimes' conventions).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize)]
pub struct ExecutionContext {
    pub execution_id: String,
    pub function_id: String,
    pub function_version: i64,
    pub project_id: String,
    pub request_id: Option<String>,
    /// The W3C `traceparent` of the execution's `run` span: a function's own spans with this
    /// parent join the execution's trace.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub traceparent: Option<String>,
}

/// Per-execution limits that are the server's, not the function's.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerLimits {
    /// Bytes of log (and of a wasm module's stdout) kept per execution.
    pub log_bytes: usize,
    /// Per-process rlimits of an execution's processes.
    pub nofile: u64,
    pub nproc: u64,
    pub fsize: u64,
}

/// One execution to run.
#[derive(Debug, Clone)]
pub struct RunRequest {
    pub key: FunctionKey,
    pub definition: Definition,
    pub input: Input,
    pub context: ExecutionContext,
    pub limits: ServerLimits,
}

impl RunRequest {
    pub fn execution_id(&self) -> &str {
        &self.context.execution_id
    }
}

/// How a run ended, as the executor saw it. The engine maps each to the recorded status and
/// the text the user reads (`Outcome`), in one place.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// The function returned; [`Report::output`] is its result.
    Success,
    /// The function failed on its own (an exception, a non-zero exit, a trap);
    /// [`Report::output`] says how.
    Failed,
    /// The function ran out of time.
    Timeout,
    /// The function hit a memory or process limit and was stopped for it.
    OutOfResources,
    /// The function could not be loaded (module or entry missing, import error): the text
    /// says why; [`Report::logs`] holds what loading printed.
    LoadFailed(String),
    /// The function's worker failed under it (died, broke the protocol).
    Crashed,
    /// The place that was running it went away (a cluster node was lost): the text says
    /// which, for the user. Whether the function ran, and how far, is unknown.
    Lost(String),
    /// Nothing could run it (no worker could be started, no executor for its runtime).
    Unavailable,
}

/// What a run did.
#[derive(Debug, Clone)]
pub struct Report {
    pub end: End,
    /// The result (for [`End::Success`]) or the runtime's own account of a failure.
    pub output: serde_json::Value,
    /// The execution log, between the `Start execution`/`Finished execution` markers
    /// ([`framed_log`]); empty when the function never started.
    pub logs: String,
    pub duration: Duration,
    /// CPU time the execution used, where the executor measures it.
    pub cpu: Option<Duration>,
    /// Peak memory of the execution in KiB, where measured.
    pub memory_peak_kb: Option<u64>,
    /// Set when this run had to start something first (a worker bound, a module
    /// instantiated the first time): how long that took.
    pub cold_start: Option<Duration>,
}

impl Report {
    /// A run that ended before the function could start.
    pub fn ended(end: End) -> Report {
        Report {
            end,
            output: serde_json::Value::Null,
            logs: String::new(),
            duration: Duration::ZERO,
            cpu: None,
            memory_peak_kb: None,
            cold_start: None,
        }
    }
}

/// An execution log with its markers: `Start execution: <id>`, the body (ending in a line
/// break unless empty), `Finished execution: <id>`.
pub fn framed_log(execution_id: &str, body: &str) -> String {
    let mut log = format!("Start execution: {execution_id}\n");
    log.push_str(body);
    if !body.is_empty() && !body.ends_with('\n') {
        log.push('\n');
    }
    log.push_str(&format!("Finished execution: {execution_id}\n"));
    log
}

/// How busy a function version is, for admission: whether it runs as many executions as
/// it may (`at_capacity`), and how many run and wait.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Load {
    /// Workers it has (starting ones included), for executors that keep workers.
    pub workers: Option<usize>,
    pub running: usize,
    pub waiting: usize,
    /// No further execution can start before one ends.
    pub at_capacity: bool,
}

/// Capacity of a runtime's pre-started workers.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub total: usize,
    pub available: usize,
}

/// One row of the worker listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub function_id: String,
    pub function_version: i64,
    pub worker_name: String,
    /// The cluster node the worker lives on (`None`: a server on its own).
    pub node: Option<String>,
}

/// A node of the platform: one `qinling serve` (on its own, or one of a cluster).
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NodeInfo {
    pub id: String,
    pub name: String,
    /// Its API's base URL, as it announces it.
    pub address: String,
    /// The qinling version it runs.
    pub version: String,
    /// What it may run at once: `64 workers` or `8000 millicpu`.
    pub capacity: String,
    /// Executions running on it.
    pub running: u64,
    /// Function workers bound on it.
    pub workers: u64,
    /// When it last announced itself (RFC 3339).
    pub last_heartbeat: String,
    /// `up`; `lost` for a node whose heartbeats stopped.
    pub status: String,
}

/// Gauges for metrics: bound workers per function (versions summed) and each runtime's
/// pool (id, available, target).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Stats {
    pub workers_per_function: Vec<(String, usize)>,
    pub pools: Vec<(String, usize, usize)>,
}

impl Stats {
    fn merge(&mut self, other: Stats) {
        self.workers_per_function.extend(other.workers_per_function);
        self.pools.extend(other.pools);
    }
}

/// Where executors get a function's package from (the engine's package store).
#[async_trait::async_trait]
pub trait Packages: Send + Sync + 'static {
    async fn get(&self, sha256: &str) -> Result<Arc<Vec<u8>>, ExecutorError>;
}

#[derive(Debug, thiserror::Error)]
pub enum ExecutorError {
    /// The package cannot run on this runtime; the text says why, for the user.
    #[error("{0}")]
    Invalid(String),
    /// Too large to run (a package member past the size limit); the text says which.
    #[error("{0}")]
    TooLarge(String),
    /// No executor here runs this runtime kind, or it is not set up.
    #[error("{0}")]
    Unavailable(String),
    /// Something failed that the caller cannot fix.
    #[error("{what}: {message}")]
    Internal { what: String, message: String },
}

impl ExecutorError {
    /// An internal failure of `what`, with `err` and every cause below it (a sandbox's
    /// reasons live in its errors' sources).
    pub fn internal(what: impl Into<String>, err: impl std::error::Error) -> ExecutorError {
        ExecutorError::Internal {
            what: what.into(),
            message: describe(&err),
        }
    }
}

/// An error and its causes, joined with `: `.
pub fn describe(err: &dyn std::error::Error) -> String {
    let mut text = err.to_string();
    let mut cause = err.source();
    while let Some(c) = cause {
        text.push_str(": ");
        text.push_str(&c.to_string());
        cause = c.source();
    }
    text
}

/// A place where executions run. Every method is keyed by what the engine knows (a
/// function version's key and definition, a runtime's id and kind); an executor that does
/// not keep what a method asks about answers as if empty.
#[async_trait::async_trait]
pub trait Executor: Send + Sync + 'static {
    /// A short name for logs (`pool`, `wasm`, …).
    fn name(&self) -> &'static str;

    /// Checks a package before a function of `kind` is created or updated with it, so a
    /// package that cannot run is refused before anything is stored; returns the entry it
    /// will run when the executor chooses one (a wasm package's module), else `None`.
    async fn prepare(
        &self,
        kind: RuntimeKind,
        package: Arc<Vec<u8>>,
        sha256: &str,
        entry: Option<&str>,
    ) -> Result<Option<String>, ExecutorError>;

    /// How busy `key` is, if it has run here.
    fn load(&self, key: &FunctionKey) -> Option<Load>;

    /// Runs one execution. Never fails: every problem is an [`End`].
    async fn run(&self, req: &RunRequest) -> Report;

    /// Starts serving a runtime (a pool of pre-started workers, where kept). Idempotent.
    fn add_runtime(&self, runtime_id: &str, kind: RuntimeKind);
    /// Stops serving a runtime.
    fn remove_runtime(&self, runtime_id: &str);
    /// Whether executions of `kind` can run here: `Err` says why not.
    async fn probe(&self, kind: RuntimeKind) -> Result<(), ExecutorError>;
    /// A runtime's pre-started workers, where kept.
    fn capacity(&self, runtime_id: &str) -> Option<Capacity>;
    /// Why functions of `kind` cannot be given outbound network access here.
    fn network_unavailable(&self, kind: RuntimeKind) -> Option<String>;

    /// The workers bound to a function (all versions, or one).
    async fn workers(&self, function_id: &str, version: Option<i64>) -> Vec<WorkerInfo>;
    /// Adds up to `count` workers for `key`, bound to `definition`, and returns once they
    /// are ready (or with the first failure). A no-op where there are no workers.
    async fn scale_up(
        &self,
        key: &FunctionKey,
        definition: &Definition,
        count: usize,
    ) -> Result<(), ExecutorError>;
    /// Removes up to `count` workers of `key`, never the last one.
    fn scale_down(&self, key: &FunctionKey, count: usize);
    /// Releases what serves a function (all versions, or one); what runs finishes first.
    fn release(&self, function_id: &str, version: Option<i64>);
    /// Drops what `definition` keeps warm besides workers (a compiled module in memory), so
    /// the next execution starts afresh.
    fn evict(&self, definition: &Definition);
    /// Forgets everything made from a removed package (compiled artefacts); done when it
    /// returns.
    async fn forget_package(&self, sha256: &str);

    fn stats(&self) -> Stats;
    /// The nodes executions run on, where this executor spans several (a cluster); empty
    /// for a server on its own.
    async fn nodes(&self) -> Vec<NodeInfo> {
        Vec::new()
    }
    /// Stops every worker (server shutdown).
    fn shutdown(&self);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Debug, thiserror::Error)]
    #[error("sandbox failure")]
    struct Outer(#[source] std::io::Error);

    #[test]
    fn internal_errors_keep_their_causes() {
        let e = ExecutorError::internal(
            "scaling up function f",
            Outer(std::io::Error::other("cannot set up the jail: EPERM")),
        );
        assert_eq!(
            e.to_string(),
            "scaling up function f: sandbox failure: cannot set up the jail: EPERM"
        );
    }

    #[test]
    fn every_part_of_a_definition_that_binds_a_worker_is_in_its_revision() {
        let d = Definition {
            runtime_id: "rt".into(),
            kind: RuntimeKind::Python3,
            package_sha256: "ab".into(),
            entry: "main.main".into(),
            cpu_millis: 100,
            memory_bytes: 1 << 25,
            timeout: Duration::from_secs(5),
            network: false,
            execution_mode: ExecutionMode::Fork,
        };
        let changed = [
            Definition {
                package_sha256: "cd".into(),
                ..d.clone()
            },
            Definition {
                entry: "other.main".into(),
                ..d.clone()
            },
            Definition {
                cpu_millis: 200,
                ..d.clone()
            },
            Definition {
                memory_bytes: 1 << 26,
                ..d.clone()
            },
            Definition {
                network: true,
                ..d.clone()
            },
            Definition {
                execution_mode: ExecutionMode::Reuse,
                ..d.clone()
            },
        ];
        for other in &changed {
            assert_ne!(Revision::of(other), Revision::of(&d), "{other:?}");
        }
        // The timeout is per execution: workers keep serving when only it changes.
        let longer = Definition {
            timeout: Duration::from_secs(9),
            ..d.clone()
        };
        assert_eq!(Revision::of(&longer), Revision::of(&d));
    }
}
