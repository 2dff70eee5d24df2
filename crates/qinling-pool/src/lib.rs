//! Warm workers: the pooled native executor. Per runtime, a pool of pre-started, unbound
//! workers (interpreter already up); per function version, the bound workers that serve it.
//! [`Pool::lease`] applies Qinling's scaling rule (`scaling.rs`) under the version's lock
//! and hands out the least-loaded worker; `executor.rs` makes the pool one
//! [`qinling_executor::Executor`] among others.
//!
//! The pool never touches the store and never names a sandbox backend: it gets an
//! `Arc<dyn Sandbox>`, a [`Launcher`] per runtime kind and the package source from the
//! server binary. `config.rs` holds its settings, `reconcile.rs` the two reconcilers (idle
//! release, pool refill), `worker.rs` one worker and its protocol channel.

mod config;
mod executor;
#[cfg(any(test, feature = "fake"))]
pub mod fake;
mod reconcile;
mod scaling;
#[cfg(test)]
mod tests;
mod worker;

use std::collections::{HashMap, VecDeque};
use std::future::Future;
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};

use qinling_executor::{Capacity, FunctionKey, Load, Packages, Revision, Stats, WorkerInfo};
use qinling_sandbox::{LaunchSpec, Sandbox, SandboxError};
use qinling_types::RuntimeKind;
use tokio::sync::Notify;

pub use config::PoolConfig;
pub use qinling_runtimes::Launcher;
pub use qinling_runtimes::protocol::{ExecReply, Rlimits};
pub use qinling_sandbox::Limits;
pub use worker::{ExecRequest, Worker};

use scaling::{Bounds, Decision, View};

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
    /// Told to the worker at bind: a fresh process per execution, or its long-lived one.
    pub execution_mode: qinling_types::ExecutionMode,
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
        self.worker.leases.fetch_sub(1, Ordering::SeqCst);
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
    /// What the workers were bound to; a change retires them.
    revision: Revision,
    workers: Vec<Arc<Worker>>,
    running: usize,
    starting: usize,
}

impl FwState {
    /// Moves to `revision` (workers bound to another serve no new executions: busy ones
    /// finish what they run and die with their last lease) and forgets dead workers.
    fn settle(&mut self, revision: &Revision) {
        if self.revision != *revision {
            self.workers.clear();
            self.revision = revision.clone();
        }
        self.workers.retain(|w| !w.is_dead());
    }

    fn leases(&self) -> Vec<usize> {
        self.workers.iter().map(|w| w.leases()).collect()
    }
}

struct RuntimePool {
    kind: RuntimeKind,
    idle: VecDeque<Arc<Worker>>,
    starting: usize,
    /// Refills that failed in a row; the next waits `2^failures` s (at most a minute), and
    /// only a new reason is logged (`reconcile.rs`).
    failures: u32,
    retry_at: Option<std::time::Instant>,
    last_error: Option<String>,
}

struct Inner {
    sandbox: Arc<dyn Sandbox>,
    config: PoolConfig,
    launchers: HashMap<RuntimeKind, Launcher>,
    packages: Arc<dyn Packages>,
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

impl Pool {
    /// A pool that starts workers of the kinds in `launchers` in `sandbox`, and loads
    /// functions' packages from `packages`. Starts the reconcilers.
    pub fn new(
        sandbox: Arc<dyn Sandbox>,
        config: PoolConfig,
        launchers: HashMap<RuntimeKind, Launcher>,
        packages: Arc<dyn Packages>,
    ) -> Pool {
        let inner = Arc::new(Inner {
            sandbox,
            config,
            launchers,
            packages,
            runtimes: Mutex::new(HashMap::new()),
            functions: Mutex::new(HashMap::new()),
            refill: Arc::new(Notify::new()),
            counter: AtomicU64::new(0),
        });
        reconcile::start(&inner);
        Pool { inner }
    }

    pub fn config(&self) -> &PoolConfig {
        &self.inner.config
    }

    fn bounds(&self) -> Bounds {
        Bounds {
            concurrency: self.inner.config.function_concurrency,
            max_workers: self.inner.config.max_workers_per_function,
        }
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

    /// Registers a runtime so that its pool is filled. Idempotent.
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
                failures: 0,
                retry_at: None,
                last_error: None,
            });
        self.inner.refill.notify_one();
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
            total: self.inner.config.pool_size.max(available),
            available,
        })
    }

    /// Bound workers per function and each runtime's pool, for metrics.
    pub fn stats(&self) -> Stats {
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
                    self.inner.config.pool_size,
                )
            })
            .collect();
        Stats {
            workers_per_function: per_function.into_iter().collect(),
            pools,
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

    fn function_workers(&self, key: &FunctionKey) -> Arc<FunctionWorkers> {
        self.inner
            .functions
            .lock()
            .expect("functions lock")
            .entry(key.clone())
            .or_default()
            .clone()
    }

    /// A worker for one execution of `key`, adding one if the scaling rule says so.
    /// `revision` names what the workers must be bound to; `load` is called only when a
    /// worker has to be bound.
    pub async fn lease<F, Fut>(
        &self,
        key: &FunctionKey,
        revision: &Revision,
        load: F,
    ) -> Result<Lease, PoolError>
    where
        F: FnOnce() -> Fut,
        Fut: Future<Output = Result<BindSpec, PoolError>>,
    {
        let fw = self.function_workers(key);
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
                s.settle(revision);
                let leases = s.leases();
                let view = View {
                    leases: &leases,
                    starting: s.starting,
                    running: s.running,
                };
                match scaling::decide(view, self.bounds()) {
                    Decision::Scale => {
                        s.starting += 1;
                        None
                    }
                    Decision::Use(i) => {
                        // Counted under the lock, so a burst of waiters woken together
                        // spreads over the workers instead of piling onto the first one ready.
                        let w = s.workers[i].clone();
                        w.leases.fetch_add(1, Ordering::SeqCst);
                        Some(Some(w))
                    }
                    Decision::Wait => Some(None),
                }
            };
            match decision {
                Some(Some(worker)) => {
                    claim.armed = false;
                    return Ok(Lease {
                        worker,
                        fw: fw.clone(),
                        cold: false,
                    });
                }
                Some(None) => notified.await,
                None => {
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
                    worker.leases.fetch_add(1, Ordering::SeqCst);
                    if s.revision == *revision {
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
                spec.execution_mode,
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

    /// How busy `key` is, for admission (see `scaling::load`).
    pub fn load(&self, key: &FunctionKey) -> Option<Load> {
        let functions = self.inner.functions.lock().expect("functions lock");
        let fw = functions.get(key)?;
        let s = fw.state.lock().expect("function workers lock");
        let leases = s.leases();
        let view = View {
            leases: &leases,
            starting: s.starting,
            running: s.running,
        };
        Some(scaling::load(view, self.bounds()))
    }

    /// Adds `count` workers bound to `spec` (at most up to `max_workers_per_function`), and
    /// returns once they are ready, or with the first failure. The workers start at once,
    /// each in a task of its own that records its outcome even if the caller goes away
    /// (a dropped request must not leave `starting` counted for ever).
    pub async fn scale_up(
        &self,
        key: &FunctionKey,
        revision: &Revision,
        spec: &BindSpec,
        count: usize,
    ) -> Result<(), PoolError> {
        let fw = self.function_workers(key);
        let todo = {
            let mut s = fw.state.lock().expect("function workers lock");
            s.settle(revision);
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
                let revision = revision.clone();
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
                    node: None,
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
            s.revision = Revision::none();
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

    /// Checks that workers of `kind` start: launches one (with the pool's limits) and
    /// stops it again.
    pub async fn probe(&self, kind: RuntimeKind) -> Result<(), PoolError> {
        let worker = self
            .launch(kind, &self.inner.config.pool_limits, false)
            .await?;
        worker.kill();
        Ok(())
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
