//! The engine: every operation of the v1 API below the HTTP edge. It resolves and validates
//! (ranges, ownership, states), records through the store, keeps packages, admits
//! executions and runs them through the one execution seam, an
//! [`Executor`](qinling_executor::Executor) — synchronously for the caller, or from the
//! durable queue for async executions — and maps what a run reports to the recorded
//! outcome, once (`executions.rs`).
//!
//! Invariants: the engine speaks domain types and [`qinling_types::Error`], never HTTP; it
//! depends on the executor trait only, never on an executor (pool, wasm) or a sandbox
//! backend: the server binary chooses those.

mod aliases;
pub mod auth;
mod entry;
mod executions;
mod functions;
pub mod jobs;
pub mod metrics;
pub mod nodes;
pub mod packages;
pub mod queue;
pub mod quotas;
mod run;
mod runtimes;
pub mod scope;
pub mod stats;
pub mod text;
mod trace;
pub mod usage;
mod versions;
pub mod webhooks;
mod workers;

use std::collections::HashMap;
use std::sync::{Arc, RwLock};
use std::time::Duration;

use qinling_executor::Executor;
use qinling_store::Store;
use qinling_types::{LimitRanges, RuntimeKind};
use tokio::sync::{Mutex, Semaphore};

pub use aliases::{CreateAlias, ExecutionTarget, UpdateAlias};
pub use executions::CreateExecution;
pub use functions::{CreateFunction, UpdateFunction};
pub use jobs::{CreateJob, UpdateJob};
pub use packages::{PackageId, PackageStore};
pub use queue::{AsyncQueue, Delivery, LocalQueue};
pub use runtimes::{CreateRuntime, UpdateRuntime};
pub use scope::{ExecutionQuery, ListQuery};
pub use webhooks::{UpdateWebhook, WebhookTarget};
pub use workers::MAX_SCALE_COUNT;

/// Engine settings.
#[derive(Debug, Clone)]
pub struct EngineConfig {
    pub limits: LimitRanges,
    /// Largest accepted package, in bytes.
    pub max_package_bytes: u64,
    /// Most members a zip package may have.
    pub max_package_entries: u64,
    /// Largest total size of a zip package's members once unpacked, in bytes: a worker
    /// unpacks the package into its `/tmp` (64 MiB by default, counted in its memory).
    pub max_unpacked_package_bytes: u64,
    /// Largest accepted execution input, in bytes.
    pub max_input_bytes: usize,
    /// Largest log kept per execution, in bytes.
    pub log_limit: usize,
    /// Async executions running at once.
    pub async_concurrency: usize,
    /// Per-execution rlimits.
    pub rlimit_nofile: u64,
    pub rlimit_nproc: u64,
    pub rlimit_fsize: u64,
    /// Per-project quotas (`quotas.rs`).
    pub quotas: quotas::QuotaConfig,
    /// Invocations of one webhook allowed per minute; 0 is unlimited (`webhooks.rs`).
    pub webhook_invocations_per_minute: u32,
    /// Whether this engine runs the job ticker (`jobs.rs`).
    pub job_ticker: bool,
    /// Most sync executions of one function version waiting to run while it is at its
    /// concurrency limit; beyond, new ones are refused (HTTP 429).
    pub max_waiting_per_function: usize,
    /// This server's name and API address, for `GET /v1/nodes` on a server on its own.
    pub node_name: String,
    pub node_address: String,
    /// Where executions' spans go (`trace.rs`); `None`: nowhere (tracing is off, though
    /// every execution still gets a trace id and hands a `traceparent` to its function).
    pub spans: Option<Arc<dyn qinling_types::trace::SpanSink>>,
}

impl Default for EngineConfig {
    fn default() -> Self {
        Self {
            limits: LimitRanges::default(),
            max_package_bytes: 50 * 1024 * 1024,
            max_package_entries: 10_000,
            max_unpacked_package_bytes: 64 * 1024 * 1024,
            max_input_bytes: 1024 * 1024,
            log_limit: 1024 * 1024,
            async_concurrency: 32,
            rlimit_nofile: 1024,
            rlimit_nproc: 128,
            rlimit_fsize: 524_288_000,
            quotas: quotas::QuotaConfig::default(),
            webhook_invocations_per_minute: 60,
            job_ticker: true,
            max_waiting_per_function: 100,
            node_name: String::new(),
            node_address: String::new(),
            spans: None,
        }
    }
}

struct Inner {
    store: Store,
    /// Where executions run: the server's executors behind one router.
    executor: Arc<dyn Executor>,
    packages: PackageStore,
    /// The kind of each registered runtime (from its image), by runtime id.
    kinds: RwLock<HashMap<String, RuntimeKind>>,
    config: EngineConfig,
    /// Serializes package writes and deletions with the rows that reference them, so that a
    /// package is never removed while a new function is about to use it.
    package_lock: Mutex<()>,
    /// Where accepted async executions wait (`queue.rs`).
    queue: Arc<dyn AsyncQueue>,
    async_slots: Arc<Semaphore>,
    tasks: tokio_util_lite::TaskCounter,
    /// Function definitions for the execution hot path (`executions.rs`).
    definitions: executions::DefinitionCache,
    /// Executions started per project in the last minute (quota `executions_per_minute`).
    rate: quotas::RateWindow,
    /// Executions being admitted, per project (see `quotas.rs`).
    slots: std::sync::Arc<quotas::Slots>,
    metrics: metrics::Metrics,
    /// Recent invocations per webhook.
    webhook_rate: webhooks::RateLimiter,
}

/// The engine. Cheap to clone.
#[derive(Clone)]
pub struct Engine {
    inner: Arc<Inner>,
}

impl Engine {
    /// Builds the engine, recovers executions left by a previous run and starts the async
    /// dispatcher and the job ticker.
    pub async fn start(
        store: Store,
        executor: Arc<dyn Executor>,
        packages: PackageStore,
        config: EngineConfig,
    ) -> Result<Engine, qinling_types::Error> {
        Engine::start_with_queue(store, executor, packages, config, LocalQueue::new()).await
    }

    /// [`Engine::start`] with async executions on `queue` (a cluster's shared queue).
    pub async fn start_with_queue(
        store: Store,
        executor: Arc<dyn Executor>,
        packages: PackageStore,
        config: EngineConfig,
        queue: Arc<dyn AsyncQueue>,
    ) -> Result<Engine, qinling_types::Error> {
        let webhook_rate = webhooks::RateLimiter::new(
            config.webhook_invocations_per_minute,
            Duration::from_secs(60),
        );
        let engine = Engine {
            inner: Arc::new(Inner {
                store,
                executor,
                packages,
                kinds: RwLock::new(HashMap::new()),
                async_slots: Arc::new(Semaphore::new(config.async_concurrency.max(1))),
                config,
                package_lock: Mutex::new(()),
                queue,
                tasks: tokio_util_lite::TaskCounter::default(),
                definitions: executions::DefinitionCache::default(),
                rate: quotas::RateWindow::default(),
                slots: Default::default(),
                metrics: metrics::Metrics::default(),
                webhook_rate,
            }),
        };
        engine.restore_runtimes().await?;
        engine.recover().await?;
        tokio::spawn(engine.clone().dispatch());
        if engine.inner.config.job_ticker {
            tokio::spawn(engine.clone().job_ticker());
        }
        Ok(engine)
    }

    pub fn store(&self) -> &Store {
        &self.inner.store
    }

    pub fn executor(&self) -> &Arc<dyn Executor> {
        &self.inner.executor
    }

    pub fn config(&self) -> &EngineConfig {
        &self.inner.config
    }

    /// Graceful stop: no new async executions start; waits up to `grace` for running ones,
    /// then kills every worker. What did not finish is failed by recovery at the next start.
    pub async fn shutdown(&self, grace: Duration) {
        self.inner.async_slots.close();
        let deadline = tokio::time::Instant::now() + grace;
        while self.inner.tasks.count() > 0 && tokio::time::Instant::now() < deadline {
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
        self.inner.executor.shutdown();
    }
}

mod tokio_util_lite {
    //! A counter of running background tasks, for graceful shutdown.
    use std::sync::Arc;
    use std::sync::atomic::{AtomicUsize, Ordering};

    #[derive(Debug, Default, Clone)]
    pub struct TaskCounter(Arc<AtomicUsize>);

    pub struct TaskGuard(Arc<AtomicUsize>);

    impl TaskCounter {
        pub fn enter(&self) -> TaskGuard {
            self.0.fetch_add(1, Ordering::SeqCst);
            TaskGuard(self.0.clone())
        }

        pub fn count(&self) -> usize {
            self.0.load(Ordering::SeqCst)
        }
    }

    impl Drop for TaskGuard {
        fn drop(&mut self) {
            self.0.fetch_sub(1, Ordering::SeqCst);
        }
    }
}
