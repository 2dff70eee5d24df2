//! Function workers as the engine sees them: admission of sync executions (the one 429
//! rule, over the [`Load`](qinling_executor::Load) any executor reports) and the admin
//! operations of reference §3.3 and §3.4 — list, scale up, scale down, detach, per function
//! version — passed to the executor that runs the function's runtime.

use qinling_executor::{FunctionKey, WorkerInfo};
use qinling_types::{Error, FunctionId, RequestContext, RuntimeKind};

use crate::Engine;

/// The most workers one scale-up request may add.
pub const MAX_SCALE_COUNT: usize = 100;

impl Engine {
    /// The kind of a registered runtime.
    pub(crate) fn runtime_kind(&self, runtime_id: &str) -> Option<RuntimeKind> {
        self.inner
            .kinds
            .read()
            .expect("runtime kinds lock")
            .get(runtime_id)
            .copied()
    }

    /// Refuses a sync execution when its function version runs as many executions as it
    /// may and enough already wait (async ones wait in the durable queue instead).
    pub(crate) fn admit(&self, function_id: &str, version: i64) -> Result<(), Error> {
        let key = FunctionKey {
            function_id: function_id.to_string(),
            version,
        };
        let Some(load) = self.inner.executor.load(&key) else {
            return Ok(());
        };
        if !load.at_capacity || load.waiting < self.inner.config.max_waiting_per_function {
            return Ok(());
        }
        let running = match load.workers {
            Some(workers) => format!("{workers} workers run {} executions", load.running),
            None => format!("{} executions run", load.running),
        };
        Err(Error::TooMany(format!(
            "Function {function_id} is at its concurrency limit: {running} and {} more are waiting. Retry later, or run it asynchronously.",
            load.waiting
        )))
    }

    /// The workers of a function, all versions or one.
    pub async fn function_workers(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        version: Option<i64>,
    ) -> Result<Vec<WorkerInfo>, Error> {
        self.get_function(ctx, id).await?;
        Ok(self.inner.executor.workers(id, version).await)
    }

    /// Adds `count` workers to a version of a function (0: the function itself), bound to
    /// that version's definition and ready, and returns once they are (or the first failure).
    pub async fn scale_up(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        version: i64,
        count: usize,
    ) -> Result<(), Error> {
        let function = self.get_function(ctx, id).await?;
        let function = self.function_at_version(function, version).await?;
        self.learn_runtime(function.runtime_id.as_deref().unwrap_or_default())
            .await;
        let definition = self.definition(&function)?;
        if definition.kind.runs_in_process() {
            // No workers to add: every execution gets its own instance.
            return Ok(());
        }
        self.check_worker_quota(&function.project_id, count).await?;
        let key = FunctionKey {
            function_id: function.id.as_str().to_owned(),
            version,
        };
        self.inner
            .executor
            .scale_up(&key, &definition, count)
            .await
            .map_err(|e| Error::internal(format!("scaling up function {id}"), e))
    }

    /// Removes up to `count` workers of a version of a function, never the last one.
    pub async fn scale_down(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        version: i64,
        count: usize,
    ) -> Result<(), Error> {
        let function = self.get_function(ctx, id).await?;
        let function = self.function_at_version(function, version).await?;
        self.inner.executor.scale_down(
            &FunctionKey {
                function_id: function.id.into_string(),
                version,
            },
            count,
        );
        Ok(())
    }

    /// Releases every worker of a version of a function; the next execution starts afresh
    /// (for a wasm function: its compiled module leaves memory and is loaded again).
    pub async fn detach(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        version: i64,
    ) -> Result<(), Error> {
        let function = self.get_function(ctx, id).await?;
        let function = self.function_at_version(function, version).await?;
        if let Ok(definition) = self.definition(&function) {
            self.inner.executor.evict(&definition);
        }
        self.inner.executor.release(&function.id, Some(version));
        Ok(())
    }
}
