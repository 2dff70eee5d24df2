//! Warm workers. Per runtime, a pool of pre-started, unbound workers (interpreter already up);
//! per function version, the bound workers that serve it. [`Pool::lease`] applies Qinling's
//! scaling rule — add a worker when a version has none or when running executions per worker
//! would exceed `function_concurrency` — and hands out the least-loaded worker.
//!
//! The pool never touches the store and never names a sandbox backend: it gets an
//! `Arc<dyn Sandbox>` and a [`Launcher`] per runtime kind from the server binary.

mod protocol;
mod worker;

use std::collections::{HashMap, VecDeque};
use std::ffi::OsString;
use std::future::Future;
use std::path::PathBuf;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qinling_sandbox::{LaunchSpec, Sandbox, SandboxError};
use qinling_types::RuntimeKind;
use tokio::sync::Notify;

pub use protocol::{ExecReply, Rlimits};
pub use qinling_sandbox::Limits;
pub use worker::{ExecRequest, Worker};

#[derive(Debug, thiserror::Error)]
pub enum PoolError {
    #[error("sandbox failure")]
    Sandbox(#[source] SandboxError),
    #[error("worker died: {0}")]
    WorkerDied(String),
    #[error("worker protocol error: {0}")]
    Protocol(String),
    /// The function could not be loaded (module or function missing, import error).
    #[error("{error}")]
    Bind { error: String, logs: String },
    #[error("worker did not answer in time")]
    Timeout,
    #[error("no launcher for runtime kind {0}")]
    NoLauncher(&'static str),
    #[error("loading the package failed: {0}")]
    Package(String),
}

/// Why an execution cannot be admitted now.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Saturated {
    pub workers: usize,
    pub running: usize,
    pub waiting: usize,
}

/// How to start a worker of one runtime kind.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub read_only_paths: Vec<PathBuf>,
    /// The sandbox's pid 1 reaps orphans around the program (see `LaunchSpec::reaper`).
    pub reaper: bool,
}

/// Pool settings.
#[derive(Debug, Clone)]
pub struct PoolConfig {
    /// Pre-started workers kept per runtime (0 = pool off: every worker starts on demand).
    pub pool_size: usize,
    /// Running executions per worker above which another worker is added.
    pub function_concurrency: usize,
    /// How long a starting worker may take to say it is ready.
    pub ready_timeout: Duration,
    /// How long loading a function (unzip + import) may take.
    pub bind_timeout: Duration,
    /// Limits of an unbound pool worker.
    pub pool_limits: Limits,
    /// Whether functions may be given outbound network access at all (an operator's switch;
    /// pre-started pool workers never have it).
    pub allow_network: bool,
    /// Most workers one function version may have (its concurrency limit is this times
    /// `function_concurrency`); beyond, executions wait for a free slot.
    pub max_workers_per_function: usize,
    /// Most sync executions of one function version waiting for a slot; beyond, new ones
    /// are refused (HTTP 429).
    pub max_waiting_per_function: usize,
    /// A function worker idle this long is released (scale to zero).
    pub idle_timeout: Duration,
}

impl Default for PoolConfig {
    fn default() -> Self {
        Self {
            pool_size: 3,
            function_concurrency: 3,
            ready_timeout: Duration::from_secs(20),
            bind_timeout: Duration::from_secs(60),
            pool_limits: Limits {
                memory_bytes: 256 * 1024 * 1024,
                cpu_millis: 1000,
                ..Limits::default()
            },
            allow_network: true,
            max_workers_per_function: 10,
            max_waiting_per_function: 100,
            idle_timeout: Duration::from_secs(3600),
        }
    }
}

/// Identifies the workers of one function version.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct FunctionKey {
    pub function_id: String,
    pub version: i64,
}

/// What binding a worker to a function needs; loaded only when a worker must be added.
#[derive(Debug, Clone)]
pub struct BindSpec {
    pub runtime_id: String,
    pub kind: RuntimeKind,
    pub entry: String,
    pub package: Arc<Vec<u8>>,
    pub limits: Limits,
    /// Outbound network access: such a worker is started for the function, never taken from
    /// the runtime's pool (pool workers have none).
    pub network: bool,
}

/// A worker handed to one execution; dropping it ends the execution's claim.
pub struct Lease {
    pub worker: Arc<Worker>,
    fw: Arc<FunctionWorkers>,
    /// Whether a worker was added for this execution (a cold start).
    pub cold: bool,
}

impl Drop for Lease {
    fn drop(&mut self) {
        let mut s = self.fw.state.lock().expect("function workers lock");
        s.running = s.running.saturating_sub(1);
        self.worker
            .leases
            .fetch_sub(1, std::sync::atomic::Ordering::SeqCst);
        drop(s);
        // A slot is free: an execution waiting for one may take it.
        self.fw.changed.notify_waiters();
    }
}

#[derive(Default)]
struct FunctionWorkers {
    state: Mutex<FwState>,
    changed: Notify,
}

#[derive(Default)]
struct FwState {
    /// What the workers were bound to (package hash, entry, limits); a change retires them.
    revision: String,
    workers: Vec<Arc<Worker>>,
    running: usize,
    starting: usize,
}

struct RuntimePool {
    kind: RuntimeKind,
    idle: VecDeque<Arc<Worker>>,
    starting: usize,
}

struct Inner {
    sandbox: Arc<dyn Sandbox>,
    config: PoolConfig,
    launchers: HashMap<RuntimeKind, Launcher>,
    runtimes: Mutex<HashMap<String, RuntimePool>>,
    functions: Mutex<HashMap<FunctionKey, Arc<FunctionWorkers>>>,
    refill: Arc<Notify>,
    counter: AtomicU64,
}

/// The worker pool. Cheap to clone.
#[derive(Clone)]
pub struct Pool {
    inner: Arc<Inner>,
}

/// One row of the worker listing.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct WorkerInfo {
    pub function_id: String,
    pub function_version: i64,
    pub worker_name: String,
}

/// Capacity of a runtime's pool.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Capacity {
    pub total: usize,
    pub available: usize,
}

enum Decision {
    Use(Arc<Worker>),
    Scale,
    Wait,
}

impl Pool {
    pub fn new(
        sandbox: Arc<dyn Sandbox>,
        config: PoolConfig,
        launchers: HashMap<RuntimeKind, Launcher>,
    ) -> Pool {
        let inner = Arc::new(Inner {
            sandbox,
            config,
            launchers,
            runtimes: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            refill: Arc::new(Notify::new()),
            counter: AtomicU64::new(0),
        });
        let weak = Arc::downgrade(&inner);
        let refill = inner.refill.clone();
        tokio::spawn(async move {
            // The refill reconciler: keeps each runtime's pool at its size. Runs on demand
            // and once a second; holds only a weak reference so the pool can be dropped.
            loop {
                let Some(inner) = weak.upgrade() else { return };
                let pool = Pool { inner };
                pool.reap_idle();
                pool.refill_once().await;
                drop(pool);
                let _ = tokio::time::timeout(Duration::from_secs(1), refill.notified()).await;
            }
        });
        Pool { inner }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    pub fn sandbox_name(&self) -> &'static str {
        self.inner.sandbox.name()
    }

    /// Why functions cannot be given outbound network access here, or `None` when they can.
    pub fn network_unavailable(&self) -> Option<String> {
        if !self.inner.config.allow_network {
            return Some(
                "outbound network access for functions is disabled on this server (allow_network = false)".into(),
            );
        }
        self.inner.sandbox.network_unavailable()
    }

    /// Registers a runtime so that its pool is filled (a runtime that runs in process has
    /// no pool, but the pool still answers its kind). Idempotent.
    pub fn add_runtime(&self, runtime_id: &str, kind: RuntimeKind) {
        self.inner
            .runtimes
            .lock()
            .expect("runtimes lock")
            .entry(runtime_id.to_string())
            .or_insert_with(|| RuntimePool {
                kind,
                idle: VecDeque::new(),
                starting: 0,
            });
        self.inner.refill.notify_one();
    }

    /// The kind of a registered runtime.
    pub fn runtime_kind(&self, runtime_id: &str) -> Option<RuntimeKind> {
        let runtimes = self.inner.runtimes.lock().expect("runtimes lock");
        runtimes.get(runtime_id).map(|rp| rp.kind)
    }

    /// Stops a runtime's pool workers.
    pub fn remove_runtime(&self, runtime_id: &str) {
        let removed = self
            .inner
            .runtimes
            .lock()
            .expect("runtimes lock")
            .remove(runtime_id);
        if let Some(rp) = removed {
            for w in rp.idle {
                w.kill();
            }
        }
    }

    /// Pool capacity of a runtime: pre-started workers and how many are free.
    pub fn capacity(&self, runtime_id: &str) -> Option<Capacity> {
        let runtimes = self.inner.runtimes.lock().expect("runtimes lock");
        let rp = runtimes.get(runtime_id)?;
        let available = rp.idle.iter().filter(|w| !w.is_dead()).count();
        Some(Capacity {
            total: self.pool_size(rp.kind).max(available),
            available,
        })
    }

    /// Bound workers per function (id, count; versions summed) and each runtime's pool
    /// (id, available, target), for metrics.
    pub fn stats(&self) -> (Vec<(String, usize)>, Vec<(String, usize, usize)>) {
        let mut per_function: HashMap<String, usize> = HashMap::new();
        for (key, fw) in self.inner.functions.lock().expect("functions lock").iter() {
            let n = fw
                .state
                .lock()
                .expect("function workers lock")
                .workers
                .iter()
                .filter(|w| !w.is_dead())
                .count();
            *per_function.entry(key.function_id.clone()).or_default() += n;
        }
        let pools = self
            .inner
            .runtimes
            .lock()
            .expect("runtimes lock")
            .iter()
            .map(|(id, rp)| {
                (
                    id.clone(),
                    rp.idle.iter().filter(|w| !w.is_dead()).count(),
                    self.pool_size(rp.kind),
                )
            })
            .collect();
        (per_function.into_iter().collect(), pools)
    }

    /// Waits until every registered runtime's pool is full (or `timeout` passes).
    pub async fn wait_filled(&self, timeout: Duration) -> bool {
        let deadline = tokio::time::Instant::now() + timeout;
        loop {
            let full = {
                let runtimes = self.inner.runtimes.lock().expect("runtimes lock");
                runtimes
                    .values()
                    .all(|rp| rp.idle.len() >= self.pool_size(rp.kind))
            };
            if full {
                return true;
            }
            if tokio::time::Instant::now() >= deadline {
                return false;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }

    /// Pre-started workers wanted for a runtime of `kind`: none for a runtime whose
    /// executions run in the server's process.
    fn pool_size(&self, kind: RuntimeKind) -> usize {
        if kind.runs_in_process() {
            0
        } else {
            self.inner.config.pool_size
        }
    }

    async fn refill_once(&self) {
        let todo: Vec<(String, RuntimeKind)> = {
            let mut runtimes = self.inner.runtimes.lock().expect("runtimes lock");
            let mut todo = Vec::new();
            for (id, rp) in runtimes.iter_mut() {
                let want = self.pool_size(rp.kind);
                rp.idle.retain(|w| !w.is_dead());
                while rp.idle.len() + rp.starting < want {
                    rp.starting += 1;
                    todo.push((id.clone(), rp.kind));
                }
            }
            todo
        };
        for (runtime_id, kind) in todo {
            let started = self
                .launch(kind, &self.inner.config.pool_limits, false)
                .await;
            let mut runtimes = self.inner.runtimes.lock().expect("runtimes lock");
            match (runtimes.get_mut(&runtime_id), started) {
                (Some(rp), Ok(w)) => {
                    rp.starting -= 1;
                    rp.idle.push_back(w);
                }
                (Some(rp), Err(error)) => {
                    rp.starting -= 1;
                    tracing::warn!(%error, runtime_id = %runtime_id, "pool worker failed to start");
                }
                (None, Ok(w)) => w.kill(),
                (None, Err(_)) => {}
            }
        }
    }

    async fn launch(
        &self,
        kind: RuntimeKind,
        limits: &Limits,
        network: bool,
    ) -> Result<Arc<Worker>, PoolError> {
        let launcher = self
            .inner
            .launchers
            .get(&kind)
            .ok_or(PoolError::NoLauncher(kind.as_str()))?;
        let n = self.inner.counter.fetch_add(1, Ordering::Relaxed);
        let name = format!("{}-{n}", kind.as_str());
        let spec = LaunchSpec {
            name: name.clone(),
            program: launcher.program.clone(),
            args: launcher.args.clone(),
            env: launcher.env.clone(),
            read_only_paths: launcher.read_only_paths.clone(),
            limits: *limits,
            network,
            reaper: launcher.reaper,
        };
        let proc = self
            .inner
            .sandbox
            .launch(&spec)
            .map_err(PoolError::Sandbox)?;
        Worker::start(name, proc, self.inner.config.ready_timeout).await
    }

    /// A worker for one execution of `key`, adding one if the scaling rule says so.
    /// `revision` names what the workers must be bound to; `load` is called only when a
    /// worker has to be bound.
    pub async fn lease<F, Fut>(
        &self,
        key: &FunctionKey,
        revision: &str,
        load: F,
    ) -> Result<Lease, PoolError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BindSpec, PoolError>>,
    {
        let fw = self
            .inner
            .functions
            .lock()
            .expect("functions lock")
            .entry(key.clone())
            .or_default()
            .clone();
        fw.state.lock().expect("function workers lock").running += 1;
        // From here on the running count is ours; the guard gives it back on every early return.
        let mut claim = Claim {
            fw: fw.clone(),
            armed: true,
        };
        let mut load = Some(load);
        loop {
            let notified = fw.changed.notified();
            let decision = {
                let mut s = fw.state.lock().expect("function workers lock");
                if s.revision != revision {
                    // Workers bound to an older definition serve no new executions; busy
                    // ones finish what they run and die when their last lease drops.
                    s.workers.clear();
                    s.revision = revision.to_string();
                }
                s.workers.retain(|w| !w.is_dead());
                let n = s.workers.len() + s.starting;
                let cfg = &self.inner.config;
                if n == 0
                    || (s.running > n * cfg.function_concurrency
                        && n < cfg.max_workers_per_function)
                {
                    s.starting += 1;
                    Decision::Scale
                } else if let Some(w) = s
                    .workers
                    .iter()
                    .filter(|w| w.leases() < self.inner.config.function_concurrency)
                    .min_by_key(|w| w.leases())
                    .cloned()
                {
                    // Counted under the lock, so a burst of waiters woken together spreads
                    // over the workers instead of piling onto the first one ready.
                    w.leases.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    Decision::Use(w)
                } else {
                    Decision::Wait
                }
            };
            match decision {
                Decision::Use(worker) => {
                    claim.armed = false;
                    return Ok(Lease {
                        worker,
                        fw: fw.clone(),
                        cold: false,
                    });
                }
                Decision::Wait => notified.await,
                Decision::Scale => {
                    let started = match load.take() {
                        Some(load) => match load().await {
                            Ok(spec) => self.start_bound(key, &spec).await,
                            Err(e) => Err(e),
                        },
                        None => Err(PoolError::Protocol(
                            "scale-up requested twice for one execution".into(),
                        )),
                    };
                    let mut s = fw.state.lock().expect("function workers lock");
                    s.starting -= 1;
                    fw.changed.notify_waiters();
                    let worker = started?;
                    worker
                        .leases
                        .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
                    if s.revision == revision {
                        s.workers.push(worker.clone());
                    }
                    drop(s);
                    claim.armed = false;
                    return Ok(Lease {
                        worker,
                        fw: fw.clone(),
                        cold: true,
                    });
                }
            }
        }
    }

    /// Takes a pre-started worker of the runtime (or starts one) and binds it.
    async fn start_bound(
        &self,
        key: &FunctionKey,
        spec: &BindSpec,
    ) -> Result<Arc<Worker>, PoolError> {
        let pooled = if spec.network {
            None
        } else {
            let mut runtimes = self.inner.runtimes.lock().expect("runtimes lock");
            let mut found = None;
            if let Some(rp) = runtimes.get_mut(&spec.runtime_id) {
                while let Some(w) = rp.idle.pop_front() {
                    if !w.is_dead() {
                        found = Some(w);
                        break;
                    }
                }
            }
            found
        };
        self.inner.refill.notify_one();
        let worker = match pooled {
            Some(w) => w,
            None => self.launch(spec.kind, &spec.limits, spec.network).await?,
        };
        worker.set_limits(&spec.limits)?;
        if let Err(e) = worker
            .bind(
                &spec.entry,
                &spec.package,
                &key.function_id,
                key.version,
                self.inner.config.bind_timeout,
            )
            .await
        {
            worker.kill();
            return Err(e);
        }
        tracing::debug!(worker = %worker.name, function_id = %key.function_id, version = key.version, "worker bound");
        Ok(worker)
    }

    /// Whether a new sync execution of `key` would wait beyond the bound: every worker the
    /// function may have is there and busy, and `max_waiting_per_function` already wait.
    pub fn saturated(&self, key: &FunctionKey) -> Option<Saturated> {
        let functions = self.inner.functions.lock().expect("functions lock");
        let fw = functions.get(key)?;
        let s = fw.state.lock().expect("function workers lock");
        let cfg = &self.inner.config;
        let workers = s.workers.len() + s.starting;
        let leased: usize = s.workers.iter().map(|w| w.leases()).sum();
        let waiting = s.running.saturating_sub(leased);
        (workers >= cfg.max_workers_per_function && waiting >= cfg.max_waiting_per_function)
            .then_some(Saturated {
                workers,
                running: leased,
                waiting,
            })
    }

    /// Adds `count` workers bound to `spec` (at most up to `max_workers_per_function`), and
    /// returns once they are ready, or with the first failure. The workers start at once,
    /// each in a task of its own that records its outcome even if the caller goes away
    /// (a dropped request must not leave `starting` counted for ever).
    pub async fn scale_up(
        &self,
        key: &FunctionKey,
        revision: &str,
        spec: &BindSpec,
        count: usize,
    ) -> Result<(), PoolError> {
        let fw = self
            .inner
            .functions
            .lock()
            .expect("functions lock")
            .entry(key.clone())
            .or_default()
            .clone();
        let todo = {
            let mut s = fw.state.lock().expect("function workers lock");
            if s.revision != revision {
                s.workers.clear();
                s.revision = revision.to_string();
            }
            s.workers.retain(|w| !w.is_dead());
            let room = self
                .inner
                .config
                .max_workers_per_function
                .saturating_sub(s.workers.len() + s.starting);
            let todo = count.min(room);
            s.starting += todo;
            todo
        };
        let starts: Vec<_> = (0..todo)
            .map(|_| {
                let (pool, fw, key, spec) = (self.clone(), fw.clone(), key.clone(), spec.clone());
                let revision = revision.to_string();
                tokio::spawn(async move {
                    let started = pool.start_bound(&key, &spec).await;
                    let mut s = fw.state.lock().expect("function workers lock");
                    s.starting -= 1;
                    let result = match started {
                        Ok(w) if s.revision == revision => {
                            s.workers.push(w);
                            Ok(())
                        }
                        Ok(w) => {
                            w.kill();
                            Ok(())
                        }
                        Err(e) => Err(e),
                    };
                    drop(s);
                    fw.changed.notify_waiters();
                    result
                })
            })
            .collect();
        let mut result = Ok(());
        for start in starts {
            let started = start
                .await
                .unwrap_or_else(|e| Err(PoolError::Protocol(format!("worker start task: {e}"))));
            if result.is_ok() {
                result = started;
            }
        }
        result
    }

    /// Removes up to `count` workers of `key`, the least busy first, never the last one.
    /// A removed worker that is running executions finishes them first.
    pub fn scale_down(&self, key: &FunctionKey, count: usize) {
        let functions = self.inner.functions.lock().expect("functions lock");
        let Some(fw) = functions.get(key) else { return };
        let mut s = fw.state.lock().expect("function workers lock");
        s.workers.retain(|w| !w.is_dead());
        let remove = count.min(s.workers.len().saturating_sub(1));
        s.workers.sort_by_key(|w| std::cmp::Reverse(w.leases()));
        for _ in 0..remove {
            if let Some(w) = s.workers.pop()
                && w.leases() == 0
            {
                w.kill();
            }
        }
    }

    /// The idle reconciler: releases function workers unused for `idle_timeout`.
    fn reap_idle(&self) {
        let idle_timeout = self.inner.config.idle_timeout;
        let mut functions = self.inner.functions.lock().expect("functions lock");
        functions.retain(|key, fw| {
            let mut s = fw.state.lock().expect("function workers lock");
            s.workers.retain(|w| {
                let expired = !w.is_dead() && w.leases() == 0 && w.idle_for() >= idle_timeout;
                if expired {
                    tracing::info!(worker = %w.name, function_id = %key.function_id, version = key.version, "releasing an idle worker");
                    w.kill();
                }
                !expired && !w.is_dead()
            });
            // Forget functions with nothing left, unless an execution is on its way.
            !(s.workers.is_empty() && s.running == 0 && s.starting == 0)
        });
    }

    /// The workers bound to a function (all versions, or one).
    pub fn workers(&self, function_id: &str, version: Option<i64>) -> Vec<WorkerInfo> {
        let functions = self.inner.functions.lock().expect("functions lock");
        let mut out = Vec::new();
        for (key, fw) in functions.iter() {
            if key.function_id != function_id || version.is_some_and(|v| v != key.version) {
                continue;
            }
            let s = fw.state.lock().expect("function workers lock");
            for w in s.workers.iter().filter(|w| !w.is_dead()) {
                out.push(WorkerInfo {
                    function_id: key.function_id.clone(),
                    function_version: key.version,
                    worker_name: w.name.clone(),
                });
            }
        }
        out.sort_by(|a, b| {
            (a.function_version, &a.worker_name).cmp(&(b.function_version, &b.worker_name))
        });
        out
    }

    /// Releases every worker of a function (all versions, or one). Workers running an
    /// execution finish it first: they are dropped from the set and die with their last lease.
    pub fn release(&self, function_id: &str, version: Option<i64>) {
        let mut functions = self.inner.functions.lock().expect("functions lock");
        functions.retain(|key, fw| {
            if key.function_id != function_id || version.is_some_and(|v| v != key.version) {
                return true;
            }
            let mut s = fw.state.lock().expect("function workers lock");
            for w in s.workers.drain(..) {
                if w.in_flight() == 0 {
                    w.kill();
                }
            }
            s.revision.clear();
            false
        });
    }

    /// Kills every worker (shutdown).
    pub fn shutdown(&self) {
        let functions: Vec<_> = self
            .inner
            .functions
            .lock()
            .expect("functions lock")
            .drain()
            .collect();
        for (_, fw) in functions {
            for w in fw
                .state
                .lock()
                .expect("function workers lock")
                .workers
                .drain(..)
            {
                w.kill();
            }
        }
        let runtimes: Vec<_> = self
            .inner
            .runtimes
            .lock()
            .expect("runtimes lock")
            .drain()
            .collect();
        for (_, rp) in runtimes {
            for w in rp.idle {
                w.kill();
            }
        }
    }
}

/// Gives back a lease's running count if the lease is never handed out.
struct Claim {
    fw: Arc<FunctionWorkers>,
    armed: bool,
}

impl Drop for Claim {
    fn drop(&mut self) {
        if self.armed {
            let mut s = self.fw.state.lock().expect("function workers lock");
            s.running = s.running.saturating_sub(1);
        }
    }
}

impl Pool {
    /// Checks that workers of `kind` start: launches one and keeps it in the runtime's
    /// pool if the pool has room, else stops it.
    pub async fn probe(&self, kind: RuntimeKind) -> Result<(), PoolError> {
        let worker = self
            .launch(kind, &self.inner.config.pool_limits, false)
            .await?;
        worker.kill();
        Ok(())
    }
}

/// The runtime shims, embedded so the binary is self-contained.
pub mod shims {
    /// The python3 worker shim (`shims/python3.py`).
    pub const PYTHON3: &str = include_str!("../shims/python3.py");
    /// The nodejs worker shim (`shims/nodejs.js`): a supervisor and its executors.
    pub const NODEJS: &str = include_str!("../shims/nodejs.js");
    /// The custom-runtime worker shim (`shims/custom.py`): runs the package's own executable.
    pub const CUSTOM: &str = include_str!("../shims/custom.py");
}
