//! The pool as an [`Executor`]: a run leases a worker of the function version (binding one
//! when the scaling rule adds it, with the package from the [`qinling_executor::Packages`]
//! source), sends the execution over the worker protocol and turns the shim's reply — or
//! the worker's failure — into a [`Report`].

use std::sync::Arc;
use std::time::{Duration, Instant};

use qinling_executor::{
    Capacity, Definition, End, Executor, ExecutorError, FunctionKey, Load, Report, Revision,
    RunRequest, Stats, WorkerInfo, describe, framed_log,
};
use qinling_types::{Input, RuntimeKind};

use crate::{BindSpec, ExecReply, ExecRequest, Limits, Pool, PoolError, Rlimits};

impl Pool {
    /// Everything needed to bind a worker to `d`: its package, entry and limits.
    async fn bind_spec(&self, d: &Definition) -> Result<BindSpec, PoolError> {
        let package = self
            .inner
            .packages
            .get(&d.package_sha256)
            .await
            .map_err(|e| PoolError::Package(e.to_string()))?;
        Ok(BindSpec {
            runtime_id: d.runtime_id.clone(),
            kind: d.kind,
            entry: d.entry.clone(),
            package,
            limits: Limits {
                memory_bytes: d.memory_bytes,
                cpu_millis: d.cpu_millis,
                ..self.inner.config.pool_limits
            },
            network: d.network,
            execution_mode: d.execution_mode,
        })
    }
}

/// The worker-protocol request of one run.
fn exec_request(req: &RunRequest) -> ExecRequest {
    let (kwargs, args) = match &req.input {
        Input::None => (None, vec![]),
        Input::Kwargs(map) => (Some(map.clone()), vec![]),
        Input::Positional(raw) => (None, vec![raw.clone()]),
    };
    ExecRequest {
        execution_id: req.execution_id().to_string(),
        kwargs,
        args,
        timeout: req.definition.timeout,
        context: serde_json::to_value(&req.context).unwrap_or_default(),
        rlimits: Rlimits {
            nofile: req.limits.nofile,
            nproc: req.limits.nproc,
            fsize: req.limits.fsize,
        },
        log_limit: req.limits.log_bytes,
    }
}

/// How the shim's reply ends the run; `oom` says whether the worker's memory limit was hit
/// meanwhile (a failure then is the limit's doing, unless it was a timeout).
fn report_of(reply: ExecReply, oom: bool, cold_start: Option<Duration>) -> Report {
    let end = match reply.reason.as_str() {
        _ if reply.success => End::Success,
        "timeout" => End::Timeout,
        _ if oom => End::OutOfResources,
        "resource" => End::OutOfResources,
        _ => End::Failed,
    };
    Report {
        end,
        output: reply.output,
        logs: reply.logs,
        duration: Duration::from_secs_f64(reply.duration.max(0.0)),
        cpu: reply.cpu_ms.map(Duration::from_millis),
        memory_peak_kb: reply.max_rss_kb,
        cold_start,
    }
}

fn internal(what: &str, e: PoolError) -> ExecutorError {
    ExecutorError::internal(what, e)
}

#[async_trait::async_trait]
impl Executor for Pool {
    fn name(&self) -> &'static str {
        "pool"
    }

    async fn prepare(
        &self,
        _kind: RuntimeKind,
        _package: Arc<Vec<u8>>,
        _sha256: &str,
        _entry: Option<&str>,
    ) -> Result<Option<String>, ExecutorError> {
        // The shim loads the package at bind; an entry that does not import fails the
        // execution with the import error, as upstream's does.
        Ok(None)
    }

    fn load(&self, key: &FunctionKey) -> Option<Load> {
        Pool::load(self, key)
    }

    async fn run(&self, req: &RunRequest) -> Report {
        let d = &req.definition;
        let started = Instant::now();
        let lease = match self
            .lease(&req.key, &Revision::of(d), || self.bind_spec(d))
            .await
        {
            Ok(lease) => lease,
            Err(PoolError::Bind { error, logs }) => {
                return Report {
                    logs: framed_log(req.execution_id(), &logs),
                    ..Report::ended(End::LoadFailed(error))
                };
            }
            Err(error) => {
                tracing::error!(%error, execution_id = %req.execution_id(), function_id = %req.key.function_id, "no worker for execution");
                return Report::ended(End::Unavailable);
            }
        };
        let cold_start = lease.cold.then(|| started.elapsed());
        let oom_before = lease.worker.usage().oom_kills;
        let result = lease.worker.execute(&exec_request(req)).await;
        let oom = lease.worker.usage().oom_kills > oom_before;
        match result {
            Ok(reply) => report_of(reply, oom, cold_start),
            Err(PoolError::Timeout) => Report {
                duration: d.timeout,
                cold_start,
                ..Report::ended(End::Timeout)
            },
            Err(error) => {
                tracing::warn!(%error, execution_id = %req.execution_id(), oom, "worker failed during execution");
                Report {
                    cold_start,
                    ..Report::ended(if oom {
                        End::OutOfResources
                    } else {
                        End::Crashed
                    })
                }
            }
        }
    }

    fn add_runtime(&self, runtime_id: &str, kind: RuntimeKind) {
        Pool::add_runtime(self, runtime_id, kind)
    }

    fn remove_runtime(&self, runtime_id: &str) {
        Pool::remove_runtime(self, runtime_id)
    }

    async fn probe(&self, kind: RuntimeKind) -> Result<(), ExecutorError> {
        Pool::probe(self, kind)
            .await
            .map_err(|e| ExecutorError::Unavailable(describe(&e)))
    }

    fn capacity(&self, runtime_id: &str) -> Option<Capacity> {
        Pool::capacity(self, runtime_id)
    }

    fn network_unavailable(&self, _kind: RuntimeKind) -> Option<String> {
        Pool::network_unavailable(self)
    }

    async fn workers(&self, function_id: &str, version: Option<i64>) -> Vec<WorkerInfo> {
        Pool::workers(self, function_id, version)
    }

    async fn scale_up(
        &self,
        key: &FunctionKey,
        definition: &Definition,
        count: usize,
    ) -> Result<(), ExecutorError> {
        let spec = self
            .bind_spec(definition)
            .await
            .map_err(|e| internal("loading the function package", e))?;
        Pool::scale_up(self, key, &Revision::of(definition), &spec, count)
            .await
            .map_err(|e| internal(&format!("scaling up function {}", key.function_id), e))
    }

    fn scale_down(&self, key: &FunctionKey, count: usize) {
        Pool::scale_down(self, key, count)
    }

    fn release(&self, function_id: &str, version: Option<i64>) {
        Pool::release(self, function_id, version)
    }

    fn evict(&self, _definition: &Definition) {}

    async fn forget_package(&self, _sha256: &str) {}

    fn stats(&self) -> Stats {
        Pool::stats(self)
    }

    fn shutdown(&self) {
        Pool::shutdown(self)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn reply(success: bool, reason: &str) -> ExecReply {
        ExecReply {
            id: "e".into(),
            success,
            output: "out".into(),
            duration: 0.25,
            logs: "log".into(),
            cpu_ms: Some(3),
            max_rss_kb: Some(1024),
            reason: reason.into(),
        }
    }

    #[test]
    fn replies_end_runs() {
        // (success, reason, oom, end)
        let cases = [
            (true, "ok", false, End::Success),
            (true, "ok", true, End::Success),
            (false, "exception", false, End::Failed),
            (false, "exception", true, End::OutOfResources),
            (false, "resource", false, End::OutOfResources),
            (false, "timeout", false, End::Timeout),
            (false, "timeout", true, End::Timeout),
            (false, "unserializable", false, End::Failed),
        ];
        for (success, reason, oom, end) in cases {
            let r = report_of(reply(success, reason), oom, None);
            assert_eq!(r.end, end, "{success} {reason} {oom}");
            assert_eq!(
                (r.duration, r.cpu, r.memory_peak_kb),
                (
                    Duration::from_millis(250),
                    Some(Duration::from_millis(3)),
                    Some(1024)
                )
            );
        }
    }
}
