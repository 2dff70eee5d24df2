//! The engine's Prometheus metrics, through the `metrics` facade (the server installs the
//! exporter; without one every call is a no-op, so tests and tools need nothing).
//!
//! Cardinality is bounded: per-function and per-project label values are admitted up to
//! [`MAX_LABEL_VALUES`] distinct values each for the life of the process; later ones are
//! reported under [`OTHER`]. Everything else is labelled by closed sets (status, runtime,
//! reason) or not at all.

use std::collections::HashSet;
use std::sync::Mutex;
use std::time::Duration;

use qinling_types::Outcome;

/// Distinct values a high-cardinality label (function, project) may take.
pub const MAX_LABEL_VALUES: usize = 1000;
/// The label value for everything beyond [`MAX_LABEL_VALUES`].
pub const OTHER: &str = "_other";

/// Admits label values up to a bound.
#[derive(Debug)]
pub struct LabelLimiter {
    seen: Mutex<HashSet<String>>,
    max: usize,
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
        let mut seen = self.seen.lock().expect("label limiter lock");
        if seen.contains(value) {
            return value.to_string();
        }
        if seen.len() < self.max {
            seen.insert(value.to_string());
            return value.to_string();
        }
        OTHER.to_string()
    }
}

/// The engine's metric labels and recorders.
#[derive(Debug)]
pub struct Metrics {
    functions: LabelLimiter,
    projects: LabelLimiter,
}

impl Default for Metrics {
    fn default() -> Self {
        Self {
            functions: LabelLimiter::new(MAX_LABEL_VALUES),
            projects: LabelLimiter::new(MAX_LABEL_VALUES),
        }
    }
}

impl Metrics {
    /// One finished execution.
    pub fn execution(&self, project: &str, function: &str, runtime: &str, outcome: &Outcome) {
        let status = outcome.status.as_str();
        metrics::counter!(
            "qinling_executions_total",
            "project" => self.projects.label(project),
            "function" => self.functions.label(function),
            "runtime" => runtime.to_string(),
            "status" => status,
        )
        .increment(1);
        metrics::histogram!("qinling_execution_duration_seconds", "runtime" => runtime.to_string(), "status" => status)
            .record(outcome.duration);
    }

    /// A worker added for an execution (the time it took to get one).
    pub fn cold_start(&self, runtime: &str, took: Duration) {
        metrics::histogram!("qinling_cold_start_seconds", "runtime" => runtime.to_string())
            .record(took.as_secs_f64());
    }

    /// An execution whose worker hit its memory limit.
    pub fn oom_kill(&self, runtime: &str) {
        metrics::counter!("qinling_oom_kills_total", "runtime" => runtime.to_string()).increment(1);
    }

    /// A worker that could not be started or bound (`reason`: a closed set).
    pub fn sandbox_failure(&self, reason: &'static str) {
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
        let mut per_function: std::collections::HashMap<String, usize> =
            std::collections::HashMap::new();
        for (function, n) in function_workers {
            *per_function
                .entry(self.functions.label(function))
                .or_default() += n;
        }
        for (function, n) in per_function {
            metrics::gauge!("qinling_function_workers", "function" => function).set(n as f64);
        }
        for (runtime, available, total) in pools {
            metrics::gauge!("qinling_pool_workers", "runtime" => runtime.clone(), "state" => "available").set(*available as f64);
            metrics::gauge!("qinling_pool_workers", "runtime" => runtime.clone(), "state" => "target").set(*total as f64);
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
    }
}
