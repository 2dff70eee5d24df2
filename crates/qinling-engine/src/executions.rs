//! Executions: admission (resolve, validate, record), running on a leased worker, the
//! durable async queue and recovery after a restart.

use std::time::Duration;

use qinling_pool::{ExecReply, ExecRequest, FunctionKey, PoolError, Rlimits};
use qinling_store::{ExecutionFilter, NewExecution, Scope};
use qinling_types::{
    Error, Execution, ExecutionStatus, Function, Input, Outcome, RequestContext,
    RuntimeStatus, new_id,
};
use tokio::sync::mpsc;

use crate::Engine;

/// A validated execution-create request.
#[derive(Debug, Clone)]
pub struct CreateExecution {
    pub function_id: String,
    pub function_version: i64,
    pub function_alias: Option<String>,
    pub description: Option<String>,
    pub sync: bool,
    pub input: Option<String>,
}

const TIMEOUT_MSG: &str = "Function execution timeout.";
const RESOURCE_MSG: &str = "Function execution failed because of too much resource consumption";
const FAILED_MSG: &str = "Function execution failed.";

impl Engine {
    pub async fn create_execution(
        &self,
        ctx: &RequestContext,
        req: CreateExecution,
    ) -> Result<Execution, Error> {
        if let Some(input) = &req.input {
            let max = self.inner.config.max_input_bytes;
            if input.len() > max {
                return Err(Error::TooLarge(format!(
                    "Execution input is {} bytes, larger than the maximum of {max} bytes.",
                    input.len()
                )));
            }
        }
        let function = self.get_function(ctx, &req.function_id).await?;
        if req.function_version != 0 {
            return Err(Error::NotFound {
                kind: "FunctionVersion",
                key: format!(
                    "function_id={}, version_number={}",
                    function.id, req.function_version
                ),
            });
        }
        let runtime_id = function.runtime_id.clone().unwrap_or_default();
        let runtime = self
            .inner
            .store
            .get_runtime(&runtime_id, &Scope::All)
            .await?;
        match runtime {
            Some(r) if r.status == RuntimeStatus::Available => {}
            _ => {
                return Err(Error::Conflict(format!(
                    "Runtime {runtime_id} is not available."
                )));
            }
        }
        if req.sync {
            self.admit(&function.id, req.function_version)?;
        }
        let input = Input::parse(req.input.as_deref());
        let new = NewExecution {
            id: new_id(),
            function_id: function.id.clone(),
            function_version: req.function_version,
            function_alias: req.function_alias,
            description: req.description,
            sync: req.sync,
            input: input.to_wire(),
            project_id: function.project_id.clone(),
        };
        let execution = self
            .inner
            .store
            .insert_execution(&new)
            .await?
            .ok_or_else(|| Error::not_found("Function", &function.id))?;
        if !req.sync {
            // The row is durable before we answer; the dispatcher (or recovery after a
            // crash) runs it.
            let _ = self.inner.queue.send(execution.id.clone());
            return Ok(execution);
        }
        let outcome = self
            .run(&execution, &function, ctx.request_id.as_str())
            .await;
        let finished = self
            .inner
            .store
            .finish_execution(&execution.id, &outcome)
            .await?;
        Ok(finished.unwrap_or_else(|| apply(execution, &outcome)))
    }

    /// Runs one recorded execution on a worker and reports what happened. Never fails: every
    /// platform problem becomes an outcome the user can read.
    async fn run(&self, execution: &Execution, function: &Function, request_id: &str) -> Outcome {
        let key = FunctionKey {
            function_id: function.id.clone(),
            version: execution.function_version,
        };
        let revision = Self::revision(function);
        let load = || async { self.bind_spec(function) };
        let lease = match self.inner.pool.lease(&key, &revision, load).await {
            Ok(lease) => lease,
            Err(PoolError::Bind { error, logs }) => {
                let mut log = format!("Start execution: {}\n", execution.id);
                log.push_str(&logs);
                if !logs.is_empty() && !logs.ends_with('\n') {
                    log.push('\n');
                }
                log.push_str(&format!("Finished execution: {}\n", execution.id));
                return Outcome {
                    logs: log,
                    ..Outcome::error(
                        ExecutionStatus::Failed,
                        &format!(
                            "Failed to load function {}: {error}",
                            function.entry_or_default()
                        ),
                    )
                };
            }
            Err(error) => {
                tracing::error!(%error, execution_id = %execution.id, function_id = %function.id, "no worker for execution");
                return Outcome::error(ExecutionStatus::Error, FAILED_MSG);
            }
        };
        let (kwargs, args) = match execution.parsed_input() {
            Input::None => (None, vec![]),
            Input::Kwargs(map) => (Some(map), vec![]),
            Input::Positional(raw) => (None, vec![raw]),
        };
        let cfg = &self.inner.config;
        let req = ExecRequest {
            execution_id: execution.id.clone(),
            kwargs,
            args,
            timeout: Duration::from_secs(function.timeout as u64),
            context: serde_json::json!({
                "execution_id": execution.id,
                "function_id": function.id,
                "function_version": execution.function_version,
                "project_id": function.project_id,
                "request_id": request_id,
            }),
            rlimits: Rlimits {
                nofile: cfg.rlimit_nofile,
                nproc: cfg.rlimit_nproc,
                fsize: cfg.rlimit_fsize,
            },
            log_limit: cfg.log_limit,
        };
        let oom_before = lease.worker.usage().oom_kills;
        match lease.worker.execute(&req).await {
            Ok(reply) => {
                let oom = lease.worker.usage().oom_kills > oom_before;
                outcome_of(reply, oom)
            }
            Err(PoolError::Timeout) => Outcome {
                duration: function.timeout as f64,
                ..Outcome::error(ExecutionStatus::Failed, TIMEOUT_MSG)
            },
            Err(error) => {
                let oom = lease.worker.usage().oom_kills > oom_before;
                tracing::warn!(%error, execution_id = %execution.id, oom, "worker failed during execution");
                Outcome::error(
                    ExecutionStatus::Failed,
                    if oom { RESOURCE_MSG } else { FAILED_MSG },
                )
            }
        }
    }

    /// The async dispatcher: runs queued executions, at most `async_concurrency` at once.
    pub(crate) async fn dispatch(self, mut rx: mpsc::UnboundedReceiver<String>) {
        while let Some(id) = rx.recv().await {
            let Ok(permit) = self.inner.async_slots.clone().acquire_owned().await else {
                return;
            };
            let engine = self.clone();
            let guard = self.inner.tasks.enter();
            tokio::spawn(async move {
                if let Err(error) = engine.run_queued(&id).await {
                    tracing::error!(%error, execution_id = %id, "async execution failed to run");
                }
                drop(permit);
                drop(guard);
            });
        }
    }

    async fn run_queued(&self, id: &str) -> Result<(), Error> {
        if !self.inner.store.claim_execution(id).await? {
            return Ok(());
        }
        let Some(execution) = self.inner.store.get_execution(id, &Scope::All).await? else {
            return Ok(());
        };
        let outcome = match self
            .inner
            .store
            .get_function(&execution.function_id, &Scope::All)
            .await?
        {
            Some(function) => self.run(&execution, &function, "async").await,
            None => Outcome::error(
                ExecutionStatus::Error,
                "The function was deleted before the execution could run.",
            ),
        };
        self.inner.store.finish_execution(id, &outcome).await?;
        Ok(())
    }

    /// After a restart: fails what was running, requeues what was accepted but not started.
    pub(crate) async fn recover(&self) -> Result<(), Error> {
        let (failed, queued) = self
            .inner
            .store
            .recover_executions(
                "The server stopped while the execution was running; it was not completed.",
            )
            .await?;
        if failed > 0 || !queued.is_empty() {
            tracing::info!(
                failed,
                requeued = queued.len(),
                "recovered executions from the previous run"
            );
        }
        for id in queued {
            let _ = self.inner.queue.send(id);
        }
        Ok(())
    }

    pub async fn get_execution(&self, ctx: &RequestContext, id: &str) -> Result<Execution, Error> {
        let scope = if ctx.is_admin {
            Scope::All
        } else {
            Scope::Project(ctx.project_id.clone())
        };
        self.inner
            .store
            .get_execution(id, &scope)
            .await?
            .ok_or_else(|| Error::not_found("Execution", id))
    }

    pub async fn list_executions(
        &self,
        scope: &Scope,
        filter: &ExecutionFilter,
    ) -> Result<Vec<Execution>, Error> {
        Ok(self.inner.store.list_executions(scope, filter).await?)
    }

    pub async fn delete_execution(&self, ctx: &RequestContext, id: &str) -> Result<(), Error> {
        self.get_execution(ctx, id).await?;
        self.inner.store.delete_execution(id).await?;
        Ok(())
    }
}

/// Maps the shim's report to an outcome.
fn outcome_of(reply: ExecReply, oom: bool) -> Outcome {
    let status = if reply.success {
        ExecutionStatus::Success
    } else {
        ExecutionStatus::Failed
    };
    let output = if !reply.success && oom && reply.reason != "timeout" {
        serde_json::Value::String(RESOURCE_MSG.into())
    } else {
        reply.output
    };
    Outcome {
        status,
        output,
        duration: reply.duration,
        logs: reply.logs,
        cpu_ms: reply.cpu_ms,
        memory_peak_kb: reply.max_rss_kb,
    }
}

/// The execution row as it would read after `outcome`, when the row was deleted meanwhile.
fn apply(mut e: Execution, outcome: &Outcome) -> Execution {
    e.status = outcome.status;
    e.result = Some(outcome.result_json());
    e.logs = Some(outcome.logs.clone());
    e.updated_at = Some(qinling_types::now());
    e
}
