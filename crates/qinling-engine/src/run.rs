//! The one run path: an execution and the definition it runs become a
//! [`RunRequest`](qinling_executor::RunRequest) for the executor (whichever place runs the
//! function's runtime), and what the executor reports becomes the recorded [`Outcome`] —
//! the one mapping of how a run ended to the status and the text a user reads.

use std::time::Duration;

use qinling_executor::{
    Definition, End, ExecutionContext, FunctionKey, Report, RunRequest, ServerLimits,
};
use qinling_types::{Error, Execution, ExecutionStatus, Function, Outcome};

use crate::Engine;
use crate::trace::{RunMarks, wall_nanos};
use qinling_types::trace::span_id;

pub(crate) const TIMEOUT_MSG: &str = "Function execution timeout.";
pub(crate) const RESOURCE_MSG: &str =
    "Function execution failed because of too much resource consumption";
pub(crate) const FAILED_MSG: &str = "Function execution failed.";

impl Engine {
    /// What runs when `function` (a definition at some version) runs: its runtime's kind,
    /// package, entry and limits. `Err` if its runtime is not registered here.
    pub(crate) fn definition(&self, function: &Function) -> Result<Definition, Error> {
        let runtime_id = function
            .runtime_id
            .as_deref()
            .unwrap_or_default()
            .to_string();
        let kind = self
            .runtime_kind(&runtime_id)
            .ok_or_else(|| Error::Conflict(format!("Runtime {runtime_id} is not available.")))?;
        Ok(Definition {
            runtime_id,
            kind,
            package_sha256: function.package_sha256.clone(),
            entry: function.entry_or_default().to_string(),
            cpu_millis: function.cpu,
            memory_bytes: function.memory_size,
            timeout: Duration::from_secs(u64::from(function.timeout)),
            network: function.network,
            execution_mode: function.execution_mode,
        })
    }

    /// Runs one recorded execution and reports what happened (and, if it ran, the marks its
    /// trace needs), and counts it in the metrics. Never fails: every platform problem
    /// becomes an outcome the user can read.
    pub(crate) async fn run(
        &self,
        execution: &Execution,
        function: &Function,
    ) -> (Outcome, Option<RunMarks>) {
        let runtime = function.runtime_id.as_deref().unwrap_or_default();
        self.learn_runtime(runtime).await;
        let mut marks = None;
        let outcome = match self.definition(function) {
            Ok(definition) => {
                let req = self.run_request(execution, function, definition);
                let asked = wall_nanos();
                let report = self.inner.executor.run(&req).await;
                marks = Some(RunMarks {
                    asked,
                    answered: wall_nanos(),
                    cold_start: report.cold_start,
                    ran: report.duration,
                    function_name: function.name.clone(),
                    runtime_id: runtime.to_string(),
                });
                if let Some(cold) = report.cold_start {
                    self.metrics().cold_start(runtime, cold);
                }
                match report.end {
                    End::Unavailable => self.metrics().sandbox_failure("no_worker"),
                    End::OutOfResources => self.metrics().oom_kill(runtime),
                    _ => {}
                }
                outcome_of(report, &req.definition)
            }
            Err(error) => {
                tracing::error!(%error, execution_id = %execution.id, "an execution of an unregistered runtime");
                self.metrics().sandbox_failure("no_worker");
                Outcome::error(ExecutionStatus::Error, FAILED_MSG)
            }
        };
        self.metrics().execution(
            &execution.project_id,
            (function.id.as_str(), function.name.as_deref()),
            runtime,
            &outcome,
        );
        (outcome, marks)
    }

    fn run_request(
        &self,
        execution: &Execution,
        function: &Function,
        definition: Definition,
    ) -> RunRequest {
        let cfg = &self.inner.config;
        RunRequest {
            key: FunctionKey {
                function_id: function.id.as_str().to_owned(),
                version: execution.function_version,
            },
            definition,
            input: execution.parsed_input(),
            context: ExecutionContext {
                execution_id: execution.id.as_str().to_owned(),
                function_id: function.id.as_str().to_owned(),
                function_version: execution.function_version,
                project_id: function.project_id.clone(),
                request_id: execution.request_id.clone(),
                traceparent: execution
                    .trace
                    .map(|t| t.traceparent_for(span_id(execution.id.as_str(), "run"))),
            },
            limits: ServerLimits {
                log_bytes: cfg.log_limit,
                nofile: cfg.rlimit_nofile,
                nproc: cfg.rlimit_nproc,
                fsize: cfg.rlimit_fsize,
            },
        }
    }
}

/// How a run ended → the recorded outcome: its status, and the output a user reads
/// (the function's own for success and failure, Qinling's fixed texts for the limits).
fn outcome_of(r: Report, definition: &Definition) -> Outcome {
    let text = |m: &str| serde_json::Value::String(m.to_string());
    let (status, output) = match r.end {
        End::Success => (ExecutionStatus::Success, r.output),
        End::Failed => (ExecutionStatus::Failed, r.output),
        End::Timeout => (ExecutionStatus::Failed, text(TIMEOUT_MSG)),
        End::OutOfResources => (ExecutionStatus::Failed, text(RESOURCE_MSG)),
        End::LoadFailed(error) => (
            ExecutionStatus::Failed,
            text(&format!(
                "Failed to load function {}: {error}",
                definition.entry
            )),
        ),
        End::Crashed => (ExecutionStatus::Failed, text(FAILED_MSG)),
        End::Lost(why) => (ExecutionStatus::Error, text(&why)),
        End::Unavailable => (ExecutionStatus::Error, text(FAILED_MSG)),
    };
    Outcome {
        status,
        output,
        duration: r.duration.as_secs_f64(),
        logs: r.logs,
        cpu_ms: r.cpu.map(|c| c.as_millis() as u64),
        memory_peak_kb: r.memory_peak_kb,
        cold_start_ms: r.cold_start.map(|c| c.as_millis() as u64),
    }
}

#[cfg(test)]
mod tests {
    use qinling_types::RuntimeKind;

    use super::*;

    fn report(end: End) -> Report {
        Report {
            end,
            output: serde_json::json!({"a": 1}),
            logs: "Start execution: e\nFinished execution: e\n".into(),
            duration: Duration::from_millis(1500),
            cpu: Some(Duration::from_millis(7)),
            memory_peak_kb: Some(64),
            cold_start: None,
        }
    }

    #[test]
    fn reports_map_to_outcomes() {
        let d = Definition {
            runtime_id: "r".into(),
            kind: RuntimeKind::Python3,
            package_sha256: "00".into(),
            entry: "hello.main".into(),
            cpu_millis: 100,
            memory_bytes: 1 << 25,
            timeout: Duration::from_secs(5),
            network: false,
            execution_mode: qinling_types::ExecutionMode::Fork,
        };
        let own = serde_json::json!({"a": 1});
        // (end, status, output)
        let cases = [
            (End::Success, ExecutionStatus::Success, own.clone()),
            (End::Failed, ExecutionStatus::Failed, own),
            (End::Timeout, ExecutionStatus::Failed, TIMEOUT_MSG.into()),
            (
                End::OutOfResources,
                ExecutionStatus::Failed,
                RESOURCE_MSG.into(),
            ),
            (
                End::LoadFailed("No module named 'hello'".into()),
                ExecutionStatus::Failed,
                "Failed to load function hello.main: No module named 'hello'".into(),
            ),
            (End::Crashed, ExecutionStatus::Failed, FAILED_MSG.into()),
            (End::Unavailable, ExecutionStatus::Error, FAILED_MSG.into()),
        ];
        for (end, status, output) in cases {
            let o = outcome_of(report(end.clone()), &d);
            assert_eq!((o.status, &o.output), (status, &output), "{end:?}");
            assert_eq!(
                (o.duration, o.cpu_ms, o.memory_peak_kb),
                (1.5, Some(7), Some(64)),
                "{end:?}"
            );
            assert_eq!(o.logs, "Start execution: e\nFinished execution: e\n");
        }
    }
}
