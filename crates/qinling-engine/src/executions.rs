//! Executions: admission (resolve, validate, record), the sync and async ways to a run
//! (`run.rs` runs one), the durable async queue and recovery after a restart.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qinling_store::{NewExecution, Scope};
use qinling_types::trace::{TraceContext, TraceParent};
use qinling_types::{
    Error, Execution, ExecutionStatus, Function, Input, Outcome, RequestContext, RuntimeStatus,
    Timestamp, new_id,
};
use qinling_types::{ExecutionId, FunctionId};

use crate::Engine;
use crate::aliases::ExecutionTarget;
use crate::scope::{self, ExecutionQuery, OwnProject};

/// An execution-create request (from the API, a job tick or a webhook).
#[derive(Debug, Clone)]
pub struct CreateExecution {
    /// What to run; an alias is resolved in the acting project when the execution is created.
    pub target: ExecutionTarget,
    pub description: Option<String>,
    pub sync: bool,
    /// The `input` text as given (checked for size, then parsed once).
    pub input: Option<String>,
    /// The caller's trace (a request's `traceparent`), which the execution joins.
    pub trace: Option<TraceParent>,
}

/// A [`CreateExecution`] with its target resolved to a function version.
#[derive(Debug, Clone)]
struct Resolved {
    /// The execution's id when the caller fixes it (a job tick), else a fresh one.
    id: Option<String>,
    function_id: FunctionId,
    function_version: i64,
    function_alias: Option<String>,
    description: Option<String>,
    sync: bool,
    input: Option<String>,
    trace: TraceContext,
}

/// How long a queued execution waits before its claim is tried again when the database is
/// unreachable.
const CLAIM_RETRY: Duration = Duration::from_secs(1);

/// How often a running async execution tells its queue it is still at it.
const WORKING_EVERY: Duration = Duration::from_secs(5);

/// How long an outcome's recording is retried while the database is unreachable.
const FINISH_PATIENCE: Duration = Duration::from_secs(600);

impl Engine {
    pub async fn create_execution(
        &self,
        ctx: &RequestContext,
        req: CreateExecution,
    ) -> Result<Execution, Error> {
        self.create_execution_as(ctx, req, None).await
    }

    /// [`Engine::create_execution`] with the new row's id fixed by the caller: recording a
    /// second execution with the same id fails, which makes a job tick fire once however
    /// many nodes try it (`jobs.rs`).
    pub(crate) async fn create_execution_as(
        &self,
        ctx: &RequestContext,
        req: CreateExecution,
        id: Option<String>,
    ) -> Result<Execution, Error> {
        let trace = TraceContext::new(
            req.trace,
            *uuid::Uuid::new_v4().as_bytes(),
            crate::trace::wall_nanos(),
        );
        crate::text::check_description("description", req.description.as_deref())?;
        let (function_id, function_version) =
            self.resolve_target(&ctx.project_id, &req.target).await?;
        let req = Resolved {
            id,
            function_id,
            function_version,
            function_alias: req.target.alias().map(str::to_string),
            description: req.description,
            sync: req.sync,
            input: req.input,
            trace,
        };
        if let Some(input) = &req.input {
            let max = self.inner.config.max_input_bytes;
            if input.len() > max {
                return Err(Error::TooLarge(format!(
                    "Execution input is {} bytes, larger than the maximum of {max} bytes.",
                    input.len()
                )));
            }
        }
        // The hot path: version 0 of a function whose definition is cached. The cache is
        // checked by the insert itself, which refuses the row if the definition changed or
        // its runtime is no longer available; the full checks below then decide.
        let mut refused = None;
        // How quotas admit this execution; a reserved local slot is held until the
        // execution's row is written.
        let mut admit = None;
        if req.function_version == 0
            && let Some(function) = self.inner.definitions.get(&req.function_id)
        {
            if !scope::visible(ctx, &function.project_id) {
                return Err(Error::not_found("Function", &req.function_id));
            }
            admit = Some(self.check_execution_quota(&ctx.project_id).await?);
            if req.sync {
                self.admit(&function.id, 0)?;
            }
            let new = new_execution(&function, &req, ctx);
            match self
                .record(new, Some(function.updated_at), admit.as_ref())
                .await?
            {
                Ok(execution) => {
                    drop(admit);
                    return self.start_execution(execution, &function).await;
                }
                Err(new) => {
                    self.inner.definitions.forget(&function.id);
                    refused = Some(new);
                }
            }
        }
        let function = self.get_function(ctx, &req.function_id).await?;
        self.inner.definitions.put(&function);
        if refused.is_none() {
            // (A refused row has been counted against the quota already, and holds its slot.)
            admit = Some(self.check_execution_quota(&ctx.project_id).await?);
        }
        // Version N runs its own snapshot of the definition (`versions.rs`).
        let function = self
            .function_at_version(function, req.function_version)
            .await?;
        let runtime_id = function.runtime_id.as_deref().unwrap_or_default();
        let runtime = self
            .inner
            .store
            .get_runtime(runtime_id, &Scope::All)
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
        let new = refused.unwrap_or_else(|| new_execution(&function, &req, ctx));
        let execution = self
            .record(new, None, admit.as_ref())
            .await?
            .map_err(|_| Error::not_found("Function", &function.id))?;
        drop(admit);
        self.start_execution(execution, &function).await
    }

    /// After an execution is recorded: hands an async one to the dispatcher, runs a sync
    /// one and records its outcome.
    async fn start_execution(
        &self,
        execution: Execution,
        function: &Function,
    ) -> Result<Execution, Error> {
        let admitted = crate::trace::wall_nanos();
        if !execution.sync {
            // The row is durable before we answer; the dispatcher (or recovery after a
            // crash) runs it.
            self.enqueue(execution.id.clone()).await;
            return Ok(execution);
        }
        // Run and record in a task of its own, so that a client hanging up (which drops this
        // request's future) neither leaves the row `running` nor cuts a worker start short;
        // shutdown waits for it as for async executions.
        let engine = self.clone();
        let function = function.clone();
        let guard = self.inner.tasks.enter();
        let task = tokio::spawn(async move {
            let _guard = guard;
            let (outcome, run) = engine.run(&execution, &function).await;
            let memory_size = function.memory_size;
            let finished = match engine
                .inner
                .store
                .finish_execution(&execution.id, &outcome, Some(memory_size))
                .await
            {
                Ok(finished) => finished,
                // The database went away while the function ran: the caller gets the
                // outcome now, and it is recorded as soon as the database is back.
                Err(qinling_store::StoreError::Unavailable(_)) => {
                    let (engine, id, outcome) =
                        (engine.clone(), execution.id.clone(), outcome.clone());
                    let guard = engine.inner.tasks.enter();
                    tokio::spawn(async move {
                        let _guard = guard;
                        engine
                            .finish_durably(&id, &outcome, Some(memory_size))
                            .await
                    });
                    None
                }
                Err(e) => return Err(e.into()),
            };
            engine.export_trace(
                &execution,
                &outcome,
                crate::trace::Marks {
                    admitted,
                    run,
                    recorded: crate::trace::wall_nanos(),
                },
            );
            Ok(apply(execution, outcome, memory_size, finished))
        });
        task.await
            .map_err(|e| Error::internal("running a sync execution", e))?
    }

    /// Offers a recorded async execution to the queue, in the background: the row is
    /// durable, so the caller need not wait for a queue that is slow or away (a cluster's
    /// NATS restarting); while the queue cannot take it, it is offered again with backoff.
    /// If this server stops first, recovery (or another node's sweep of old queued rows)
    /// offers it again.
    pub(crate) async fn enqueue(&self, id: ExecutionId) {
        let engine = self.clone();
        let guard = self.inner.tasks.enter();
        tokio::spawn(async move {
            let _guard = guard;
            let mut pause = Duration::from_millis(200);
            loop {
                match engine.inner.queue.push(&id).await {
                    Ok(()) => return,
                    Err(error) => {
                        tracing::warn!(%error, execution_id = %id, "the async queue did not take the execution; offering it again in {pause:?}");
                    }
                }
                tokio::time::sleep(pause).await;
                if engine.inner.async_slots.is_closed() {
                    return;
                }
                pause = (pause * 2).min(Duration::from_secs(5));
            }
        });
    }

    /// The async dispatcher: runs queued executions as the queue hands them over, at most
    /// `async_concurrency` at once (it takes the next only when a slot is free, so in a
    /// cluster an idle node takes what a busy one leaves).
    pub(crate) async fn dispatch(self) {
        loop {
            let Ok(permit) = self.inner.async_slots.clone().acquire_owned().await else {
                return;
            };
            let Some(delivery) = self.inner.queue.next().await else {
                return;
            };
            let engine = self.clone();
            let guard = self.inner.tasks.enter();
            tokio::spawn(async move {
                let id = delivery.id().clone();
                let run = engine.run_queued(&id);
                tokio::pin!(run);
                let result = loop {
                    tokio::select! {
                        result = &mut run => break result,
                        _ = tokio::time::sleep(WORKING_EVERY) => delivery.working().await,
                    }
                };
                match result {
                    Ok(()) => delivery.done().await,
                    // Not claimed: the row is still queued. Try again once the database
                    // answers (the row is durable, so a restart would also run it).
                    Err(Error::Unavailable(_)) => {
                        tracing::warn!(execution_id = %id, "database unavailable; the execution stays queued and is retried");
                        delivery.retry(CLAIM_RETRY).await;
                    }
                    Err(error) => {
                        tracing::error!(%error, execution_id = %id, "async execution failed to run");
                        delivery.done().await;
                    }
                }
                drop(permit);
                drop(guard);
            });
        }
    }

    async fn run_queued(&self, id: &ExecutionId) -> Result<(), Error> {
        // One statement claims the row and reads it with its function's `updated_at`.
        let Some(claimed) = self.inner.store.claim_execution(id).await? else {
            return Ok(());
        };
        // Claimed: from here on the row is ours, so whatever happens it gets an outcome.
        let (outcome, memory_size, run) = match self.run_claimed(&claimed).await {
            Ok(done) => done,
            Err(e) => (
                Outcome::error(
                    ExecutionStatus::Error,
                    &format!("The execution could not start: {e}"),
                ),
                None,
                None,
            ),
        };
        self.finish_durably(id, &outcome, memory_size).await;
        let execution = &claimed.execution;
        self.export_trace(
            execution,
            &outcome,
            crate::trace::Marks {
                admitted: crate::trace::nanos_of(execution.created_at),
                run,
                recorded: crate::trace::wall_nanos(),
            },
        );
        Ok(())
    }

    /// Runs a claimed execution: the outcome, the memory limit of the definition that ran
    /// and what the run's trace needs (none if none ran).
    async fn run_claimed(
        &self,
        claimed: &qinling_store::Claimed,
    ) -> Result<(Outcome, Option<u64>, Option<crate::trace::RunMarks>), Error> {
        let execution = &claimed.execution;
        let function = match claimed.function_updated_at {
            None => None,
            Some(updated_at) => match self.inner.definitions.get(&execution.function_id) {
                Some(f) if f.updated_at == updated_at => Some(f),
                _ => {
                    let fresh = self
                        .inner
                        .store
                        .get_function(&execution.function_id, &Scope::All)
                        .await?;
                    fresh.map(|f| self.inner.definitions.put(&f))
                }
            },
        };
        let function = match function {
            Some(function) if execution.function_version == 0 => function,
            Some(function) => match self
                .function_at_version(Function::clone(&function), execution.function_version)
                .await
            {
                Ok(function) => Arc::new(function),
                Err(Error::NotFound { .. }) => {
                    return Ok((
                        Outcome::error(
                            ExecutionStatus::Error,
                            "The function version was deleted before the execution could run.",
                        ),
                        None,
                        None,
                    ));
                }
                Err(e) => return Err(e),
            },
            None => {
                return Ok((
                    Outcome::error(
                        ExecutionStatus::Error,
                        "The function was deleted before the execution could run.",
                    ),
                    None,
                    None,
                ));
            }
        };
        let (outcome, run) = self.run(execution, &function).await;
        Ok((outcome, Some(function.memory_size), run))
    }

    /// Records an outcome, retrying while the database is unreachable (with backoff, for up
    /// to [`FINISH_PATIENCE`]): an execution that ran must not lose its result to an outage.
    /// Past that, or on any other error, the row stays `started` and the next start's
    /// recovery marks it failed.
    async fn finish_durably(&self, id: &str, outcome: &Outcome, memory_size: Option<u64>) {
        let deadline = tokio::time::Instant::now() + FINISH_PATIENCE;
        let mut pause = Duration::from_millis(100);
        loop {
            match self
                .inner
                .store
                .finish_execution(id, outcome, memory_size)
                .await
            {
                Ok(_) => return,
                Err(qinling_store::StoreError::Unavailable(error))
                    if tokio::time::Instant::now() + pause < deadline =>
                {
                    tracing::warn!(%error, execution_id = %id, "database unavailable; recording the outcome again in {pause:?}");
                    tokio::time::sleep(pause).await;
                    pause = (pause * 2).min(Duration::from_secs(5));
                }
                Err(error) => {
                    tracing::error!(%error, execution_id = %id, "the outcome could not be recorded");
                    return;
                }
            }
        }
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
            self.enqueue(ExecutionId::from(id)).await;
        }
        Ok(())
    }

    pub async fn get_execution(
        &self,
        ctx: &RequestContext,
        id: &ExecutionId,
    ) -> Result<Execution, Error> {
        self.inner
            .store
            .get_execution(id, &scope::by_id(ctx))
            .await?
            .ok_or_else(|| Error::not_found("Execution", id))
    }

    pub async fn list_executions(
        &self,
        ctx: &RequestContext,
        q: &ExecutionQuery,
    ) -> Result<Vec<Execution>, Error> {
        let scope = scope::for_list(ctx, &q.projects, OwnProject::Refused)?;
        Ok(self
            .inner
            .store
            .list_executions(&scope, &q.filter())
            .await?)
    }

    pub async fn delete_execution(
        &self,
        ctx: &RequestContext,
        id: &ExecutionId,
    ) -> Result<(), Error> {
        self.get_execution(ctx, id).await?;
        self.inner.store.delete_execution(id).await?;
        Ok(())
    }
}

/// The execution row as it reads after `outcome` of a run with `memory_size` was recorded at
/// `finished` (now, if the row was deleted meanwhile).
fn apply(
    mut e: Execution,
    outcome: Outcome,
    memory_size: u64,
    finished: Option<Timestamp>,
) -> Execution {
    e.status = outcome.status;
    e.duration_ms = Some(outcome.duration_ms());
    e.memory_size = Some(memory_size as i64);
    e.result = Some(outcome.result_json());
    e.logs = Some(outcome.logs);
    e.cpu_ms = outcome.cpu_ms.map(|v| v as i64);
    e.memory_peak_kb = outcome.memory_peak_kb.map(|v| v as i64);
    e.cold_start_ms = outcome.cold_start_ms.map(|v| v as i64);
    e.updated_at = Some(finished.unwrap_or_else(qinling_types::now));
    e
}

/// The row to record for `req` of `function`, made by the request `ctx`.
fn new_execution(function: &Function, req: &Resolved, ctx: &RequestContext) -> NewExecution {
    NewExecution {
        id: req.id.clone().unwrap_or_else(new_id),
        function_id: function.id.as_str().to_owned(),
        function_version: req.function_version,
        function_alias: req.function_alias.clone(),
        description: req.description.clone(),
        sync: req.sync,
        input: Input::parse(req.input.as_deref()),
        project_id: function.project_id.clone(),
        request_id: Some(ctx.request_id.clone()),
        trace: Some(req.trace),
    }
}

/// Most definitions kept; past it the cache starts afresh.
const MAX_DEFINITIONS: usize = 10_000;

/// Function definitions (version 0) by id, as last read from the store, so that an
/// execution needs no read before it is recorded. Never trusted on its own: an execution
/// admitted with a cached definition is recorded only if the function row still has the same
/// `updated_at` and an available runtime (`Store::insert_execution_if_unchanged`), and a
/// claimed async execution compares its function's current `updated_at`; so a change made by
/// this engine or another is noticed at the next use, and nothing needs to invalidate it.
#[derive(Default)]
pub(crate) struct DefinitionCache(Mutex<HashMap<FunctionId, Arc<Function>>>);

impl DefinitionCache {
    fn get(&self, id: &str) -> Option<Arc<Function>> {
        self.0.lock().expect("definitions lock").get(id).cloned()
    }

    fn put(&self, function: &Function) -> Arc<Function> {
        let f = Arc::new(function.clone());
        let mut map = self.0.lock().expect("definitions lock");
        if map.len() >= MAX_DEFINITIONS && !map.contains_key(&f.id) {
            map.clear();
        }
        map.insert(f.id.clone(), f.clone());
        f
    }

    fn forget(&self, id: &str) {
        self.0.lock().expect("definitions lock").remove(id);
    }
}
