//! Function workers as the engine sees them: what a worker of a function is bound to (its
//! revision and bind spec, shared by executions and the worker API) and the admin operations
//! of reference §3.3 and §3.4 — list, scale up, scale down, detach, per function version.

use std::sync::Arc;

use qinling_pool::Limits;
use qinling_pool::{BindSpec, FunctionKey, PoolError, WorkerInfo};
use qinling_types::FunctionId;
use qinling_types::{Error, Function, RequestContext};

use crate::Engine;

/// The most workers one scale-up request may add.
pub const MAX_SCALE_COUNT: usize = 100;

impl Engine {
    /// What a function's workers are bound to; a change (new package, entry, limits or
    /// network access) retires the bound workers.
    pub(crate) fn revision(function: &Function) -> String {
        format!(
            "{}:{}:{}:{}:{}",
            function.package_sha256,
            function.entry_or_default(),
            function.cpu,
            function.memory_size,
            if function.network { "net" } else { "lo" }
        )
    }

    /// Everything needed to bind a worker to `function`: its package, entry and limits.
    pub(crate) fn bind_spec(&self, function: &Function) -> Result<BindSpec, PoolError> {
        let package = self
            .inner
            .packages
            .get(&function.package_sha256)
            .map_err(|e| PoolError::Package(e.to_string()))?;
        let runtime_id = function.runtime_id.clone().unwrap_or_default();
        // The pool knows every registered runtime's kind (from its image).
        let kind = self
            .inner
            .pool
            .runtime_kind(&runtime_id)
            .ok_or(PoolError::NoLauncher("unregistered runtime"))?;
        Ok(BindSpec {
            runtime_id,
            kind,
            entry: function.entry_or_default().to_string(),
            package: Arc::new(package),
            limits: Limits {
                memory_bytes: function.memory_size,
                cpu_millis: function.cpu,
                ..self.inner.pool.config().pool_limits
            },
            network: function.network,
        })
    }

    /// Refuses a sync execution when its function is at its concurrency limit and enough
    /// executions already wait (async ones wait in the durable queue instead).
    pub(crate) fn admit(&self, function_id: &str, version: i64) -> Result<(), Error> {
        let key = FunctionKey {
            function_id: function_id.to_string(),
            version,
        };
        if let Some(refused) = self.wasm_saturated(&key) {
            return Err(refused);
        }
        match self.inner.pool.saturated(&key) {
            None => Ok(()),
            Some(s) => Err(Error::TooMany(format!(
                "Function {function_id} is at its concurrency limit: {} workers run {} executions and {} more are waiting. Retry later, or run it asynchronously.",
                s.workers, s.running, s.waiting
            ))),
        }
    }

    /// The workers of a function, all versions or one.
    pub async fn function_workers(
        &self,
        ctx: &RequestContext,
        id: &FunctionId,
        version: Option<i64>,
    ) -> Result<Vec<WorkerInfo>, Error> {
        self.get_function(ctx, id).await?;
        Ok(self.inner.pool.workers(id, version))
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
        if self.runs_in_process(&function) {
            // A wasm function has no workers to add: every execution gets its own instance.
            return Ok(());
        }
        self.check_worker_quota(&function.project_id, count).await?;
        let key = FunctionKey {
            function_id: function.id.clone(),
            version,
        };
        let spec = self
            .bind_spec(&function)
            .map_err(|e| Error::internal("loading the function package", e))?;
        self.inner
            .pool
            .scale_up(&key, &Self::revision(&function), &spec, count)
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
        self.inner.pool.scale_down(
            &FunctionKey {
                function_id: function.id,
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
        if self.runs_in_process(&function)
            && let Some(wasm) = self.wasm()
        {
            wasm.evict(&qinling_wasm::ModuleKey {
                package: function.package_sha256.clone(),
                entry: function.entry_or_default().to_string(),
            });
        }
        self.inner.pool.release(&function.id, Some(version));
        Ok(())
    }

    /// Whether `function`'s runtime runs executions in this process (wasm).
    pub(crate) fn runs_in_process(&self, function: &Function) -> bool {
        let runtime_id = function.runtime_id.as_deref().unwrap_or_default();
        self.inner
            .pool
            .runtime_kind(runtime_id)
            .is_some_and(|k| k.runs_in_process())
    }
}
