//! The engine's Prometheus metrics, through the `metrics` facade (the server installs the
//! exporter; without one every call is a no-op, so tests and tools need nothing).
//!
//! Every family is described ([`describe`]: the exporter's `# HELP` and `# TYPE` lines).
//! Series name functions and runtimes by id and, beside it, by name (`function_name`,
//! `runtime_name`; a rename starts new series). Counters an alert would watch exist at zero
//! before their first event: each runtime's OOM kills once it is registered, each reason of
//! sandbox failures from the start, and every status of a function's executions from its
//! first execution on.
//!
//! Cardinality is bounded: per-function and per-project label values are admitted up to
//! [`MAX_LABEL_VALUES`] distinct values each for the life of the process; later ones are
//! reported under [`OTHER`] (names too). Everything else is labelled by closed sets
//! (status, runtime, reason) or not at all.

use std::collections::{HashMap, HashSet};
use std::sync::Mutex;
use std::time::Duration;

use qinling_types::{ExecutionStatus, Outcome};

/// Distinct values a high-cardinality label (function, project) may take.
pub const MAX_LABEL_VALUES: usize = 1000;
/// The label value for everything beyond [`MAX_LABEL_VALUES`].
pub const OTHER: &str = "_other";

/// The statuses an execution ends with: each one's counter exists from a function's first
/// execution.
const END_STATUSES: [ExecutionStatus; 3] = [
    ExecutionStatus::Success,
    ExecutionStatus::Failed,
    ExecutionStatus::Error,
];

/// Every reason [`Metrics::sandbox_failure`] is called with.
const SANDBOX_FAILURE_REASONS: [&str; 1] = ["no_worker"];

/// Sets the `# HELP` text (and so the `# TYPE`) of each of the engine's families. Call once
/// the recorder is installed.
pub fn describe() {
    use metrics::{Unit, describe_counter, describe_gauge, describe_histogram};
    describe_counter!(
        "qinling_executions_total",
        "Executions that ended, by project, function, runtime and status (success, failed, error)."
    );
    describe_histogram!(
        "qinling_execution_duration_seconds",
        Unit::Seconds,
        "How long ended executions ran, by runtime and status."
    );
    describe_histogram!(
        "qinling_cold_start_seconds",
        Unit::Seconds,
        "Time to get a worker for an execution that found none warm, by runtime."
    );
    describe_counter!(
        "qinling_oom_kills_total",
        "Executions ended for too much resource consumption (memory, processes), by runtime."
    );
    describe_counter!(
        "qinling_sandbox_failures_total",
        "Executions that found no worker (a sandbox that could not start or bind), by reason."
    );
    describe_gauge!(
        "qinling_async_queue_depth",
        "Accepted async executions not yet started."
    );
    describe_gauge!(
        "qinling_function_workers",
        "Workers bound to each function (all its versions)."
    );
    describe_gauge!(
        "qinling_pool_workers",
        "Pre-started workers of each runtime: available now, and the pool's target."
    );
    for reason in SANDBOX_FAILURE_REASONS {
        metrics::counter!("qinling_sandbox_failures_total", "reason" => reason).increment(0);
    }
}

/// Admits label values up to a bound.
#[derive(Debug)]
pub struct LabelLimiter {
    seen: Mutex<HashSet<String>>,
    max: usize,
}

/// A label value from a [`LabelLimiter`].
#[derive(Debug, PartialEq)]
pub struct Admitted {
    pub label: String,
    /// Whether the value was seen for the first time.
    pub new: bool,
}

impl LabelLimiter {
    pub fn new(max: usize) -> Self {
        Self {
            seen: Mutex::new(HashSet::new()),
            max,
        }
    }

    /// `value` if it was seen before or there is room for it, else [`OTHER`].
    pub fn label(&self, value: &str) -> String {
        self.admit(value).label
    }

    /// [`label`](Self::label), saying whether `value` was admitted just now.
    pub fn admit(&self, value: &str) -> Admitted {
        let mut seen = self.seen.lock().expect("label limiter lock");
        if seen.contains(value) {
            return Admitted {
                label: value.to_string(),
                new: false,
            };
        }
        if seen.len() < self.max {
            seen.insert(value.to_string());
            return Admitted {
                label: value.to_string(),
                new: true,
            };
        }
        Admitted {
            label: OTHER.to_string(),
            new: false,
        }
    }
}

/// The engine's metric labels and recorders.
#[derive(Debug)]
pub struct Metrics {
    functions: LabelLimiter,
    projects: LabelLimiter,
    /// Admitted function id → its name when it last ran (for the workers gauge).
    function_names: Mutex<HashMap<String, String>>,
    /// Registered runtime id → its name.
    runtime_names: Mutex<HashMap<String, String>>,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            functions: LabelLimiter::new(MAX_LABEL_VALUES),
            projects: LabelLimiter::new(MAX_LABEL_VALUES),
            function_names: Mutex::new(HashMap::new()),
            runtime_names: Mutex::new(HashMap::new()),
        }
    }
}

impl Metrics {
    /// A runtime registered (or renamed): its name labels its series from now on, and its
    /// OOM-kill counter exists at zero.
    pub fn runtime(&self, id: &str, name: Option<&str>) {
        let name = name.unwrap_or_default().to_string();
        self.runtime_names
            .lock()
            .expect("runtime names lock")
            .insert(id.to_string(), name.clone());
        metrics::counter!("qinling_oom_kills_total", "runtime" => id.to_string(), "runtime_name" => name)
            .increment(0);
    }

    fn runtime_name(&self, id: &str) -> String {
        self.runtime_names
            .lock()
            .expect("runtime names lock")
            .get(id)
            .cloned()
            .unwrap_or_default()
    }

    /// One finished execution of the function `function` (id) named `name`.
    pub fn execution(
        &self,
        project: &str,
        (function, name): (&str, Option<&str>),
        runtime: &str,
        outcome: &Outcome,
    ) {
        let project = self.projects.label(project);
        let admitted = self.functions.admit(function);
        let name = if admitted.label == OTHER {
            OTHER.to_string()
        } else {
            let name = name.unwrap_or_default().to_string();
            self.function_names
                .lock()
                .expect("function names lock")
                .insert(function.to_string(), name.clone());
            name
        };
        let runtime_name = self.runtime_name(runtime);
        let counter = |status: &'static str| {
            metrics::counter!(
                "qinling_executions_total",
                "project" => project.clone(),
                "function" => admitted.label.clone(),
                "function_name" => name.clone(),
                "runtime" => runtime.to_string(),
                "runtime_name" => runtime_name.clone(),
                "status" => status,
            )
        };
        if admitted.new {
            for status in END_STATUSES {
                counter(status.as_str()).increment(0);
            }
        }
        let status = outcome.status.as_str();
        counter(status).increment(1);
        metrics::histogram!(
            "qinling_execution_duration_seconds",
            "runtime" => runtime.to_string(),
            "runtime_name" => runtime_name,
            "status" => status,
        )
        .record(outcome.duration);
    }

    /// A worker added for an execution (the time it took to get one).
    pub fn cold_start(&self, runtime: &str, took: Duration) {
        metrics::histogram!(
            "qinling_cold_start_seconds",
            "runtime" => runtime.to_string(),
            "runtime_name" => self.runtime_name(runtime),
        )
        .record(took.as_secs_f64());
    }

    /// An execution ended for too much resource consumption.
    pub fn oom_kill(&self, runtime: &str) {
        metrics::counter!(
            "qinling_oom_kills_total",
            "runtime" => runtime.to_string(),
            "runtime_name" => self.runtime_name(runtime),
        )
        .increment(1);
    }

    /// A worker that could not be started or bound (`reason`: one of
    /// [`SANDBOX_FAILURE_REASONS`]).
    pub fn sandbox_failure(&self, reason: &'static str) {
        debug_assert!(SANDBOX_FAILURE_REASONS.contains(&reason), "{reason}");
        metrics::counter!("qinling_sandbox_failures_total", "reason" => reason).increment(1);
    }

    /// Sets the gauges read from current state (called before each scrape).
    pub fn gauges(
        &self,
        queued: i64,
        function_workers: &[(String, usize)],
        pools: &[(String, usize, usize)],
    ) {
        metrics::gauge!("qinling_async_queue_depth").set(queued as f64);
        let mut per_function: HashMap<String, usize> = HashMap::new();
        for (function, n) in function_workers {
            *per_function
                .entry(self.functions.label(function))
                .or_default() += n;
        }
        for (function, n) in per_function {
            let name = if function == OTHER {
                OTHER.to_string()
            } else {
                self.function_names
                    .lock()
                    .expect("function names lock")
                    .get(&function)
                    .cloned()
                    .unwrap_or_default()
            };
            metrics::gauge!("qinling_function_workers", "function" => function, "function_name" => name)
                .set(n as f64);
        }
        for (runtime, available, total) in pools {
            let name = self.runtime_name(runtime);
            metrics::gauge!("qinling_pool_workers", "runtime" => runtime.clone(), "runtime_name" => name.clone(), "state" => "available").set(*available as f64);
            metrics::gauge!("qinling_pool_workers", "runtime" => runtime.clone(), "runtime_name" => name, "state" => "target").set(*total as f64);
        }
    }
}

impl crate::Engine {
    /// The engine's metric recorders.
    pub(crate) fn metrics(&self) -> &Metrics {
        &self.inner.metrics
    }

    /// Sets the gauges from the current state of the executors and the queue; call before
    /// rendering a scrape.
    pub async fn refresh_metrics(&self) {
        let queued = match self.inner.store.queued_executions().await {
            Ok(n) => n,
            Err(error) => {
                tracing::warn!(%error, "could not count queued executions for metrics");
                0
            }
        };
        let stats = self.inner.executor.stats();
        self.inner
            .metrics
            .gauges(queued, &stats.workers_per_function, &stats.pools);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limiter_admits_up_to_the_bound_then_reports_other() {
        let l = LabelLimiter::new(2);
        assert_eq!(l.label("a"), "a");
        assert_eq!(l.label("b"), "b");
        assert_eq!(l.label("c"), OTHER);
        assert_eq!(l.label("a"), "a", "values seen before keep their label");
        assert_eq!(l.label("d"), OTHER);
        let l = LabelLimiter::new(1);
        let first = |label: &str, new| Admitted {
            label: label.into(),
            new,
        };
        assert_eq!(l.admit("a"), first("a", true));
        assert_eq!(l.admit("a"), first("a", false));
        assert_eq!(l.admit("b"), first(OTHER, false));
    }
}
