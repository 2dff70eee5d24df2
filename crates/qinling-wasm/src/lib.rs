//! The wasm runtime: WASI preview-1 command modules run in this process, in wasmtime, with
//! no external binary. A module is compiled once ([`WasmRuntime::compile`], at function
//! create or update) and kept compiled in memory and on disk (`cache.rs`); each execution
//! gets a fresh instance from the pooling allocator ([`WasmRuntime::execute`]): its input
//! on stdin, its result on stdout, its log on stderr (`capture.rs`), its linear memory
//! limited by a [`wasmtime::ResourceLimiter`] and its time by epoch interruption (a ticker
//! thread advances the epoch; a running guest yields to the async executor at every tick,
//! so the timeout can stop it, and a host call it waits in, at any tick).
//!
//! What a guest gets: stdin, stdout, stderr, `args = [entry]`, an empty environment, the
//! clocks and randomness. No preopened directory, no socket: WASI calls on paths or
//! sockets fail with `EBADF`/`ENOTSUP`-style errnos.
//!
//! [`WasmExecutor`] (`executor.rs`) puts this runtime behind the execution seam; below it,
//! the runtime knows nothing of functions, executions or the store, and the executor knows
//! them only as the seam's neutral nouns.

mod cache;
mod capture;
pub mod examples;
mod executor;

use std::future::Future;
use std::path::PathBuf;
use std::pin::Pin;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use wasmtime::{
    Config, Engine, ExternType, InstanceAllocationStrategy, InstancePre, Linker,
    PoolingAllocationConfig, ResourceLimiter, Store, Trap, WasmBacktrace,
};
use wasmtime_wasi::WasiCtxBuilder;
use wasmtime_wasi::p1::WasiP1Ctx;
use wasmtime_wasi::p2::pipe::MemoryInputPipe;

use crate::capture::Capture;

pub use executor::WasmExecutor;

/// The only import module a function's module may use.
const WASI_P1: &str = "wasi_snapshot_preview1";

/// Settings of the wasm runtime.
#[derive(Debug, Clone)]
pub struct WasmConfig {
    /// Where precompiled modules are kept between starts (`<data-dir>/wasm`).
    pub cache_dir: PathBuf,
    /// The largest linear memory any function may have (the top of the memory range).
    pub max_memory_bytes: u64,
    /// Instances that may exist at once (the pooling allocator's slots); further
    /// executions wait for one.
    pub max_instances: u32,
    /// Compiled modules kept in memory; the least recently used is dropped first (it is
    /// loaded again from its artefact on disk when needed).
    pub cached_modules: usize,
    /// How often the epoch advances: the granularity of timeouts and of yielding.
    pub epoch_tick: Duration,
}

impl WasmConfig {
    /// Defaults for a cache directory.
    pub fn new(cache_dir: PathBuf) -> WasmConfig {
        WasmConfig {
            cache_dir,
            max_memory_bytes: 128 * 1024 * 1024,
            max_instances: 128,
            cached_modules: 256,
            epoch_tick: Duration::from_millis(2),
        }
    }
}

#[derive(Debug, thiserror::Error)]
pub enum WasmError {
    /// Not a module this runtime can run; the text says why, for the user.
    #[error("{0}")]
    Invalid(String),
    #[error("setting up the wasm engine")]
    Setup(#[source] Box<dyn std::error::Error + Send + Sync>),
    #[error("opening the wasm module cache {path}")]
    Cache {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// Names a compiled module: the package it came from and the entry that chose it.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct ModuleKey {
    /// SHA-256 (hex) of the function's package.
    pub package: String,
    pub entry: String,
}

/// A compiled module, linked against WASI and ready to instantiate.
pub struct Module {
    pre: InstancePre<State>,
    /// Whether an execution has instantiated it yet (the first one is the cold start).
    used: AtomicBool,
}

/// One execution's request.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    /// The guest's stdin (the execution input as JSON; empty for none).
    pub stdin: Vec<u8>,
    /// The guest's arguments (`[entry]`).
    pub args: Vec<String>,
    /// The guest's environment variables (`TRACEPARENT` when the execution is traced).
    pub env: Vec<(String, String)>,
    /// Limit of the guest's linear memory, in bytes.
    pub memory_bytes: u64,
    pub timeout: Duration,
    /// CPU the execution may use, in thousandths of a CPU (the function's `cpu`); `None`
    /// for no limit. Enforced as the native sandbox's CFS quota is: a budget of
    /// `cpu/1000 × elapsed` plus one period's worth of burst ([`CPU_PERIOD`]); past it the
    /// guest is paused (at its next epoch tick) until the budget has caught up.
    pub cpu_millis: Option<u32>,
    /// Bytes of stdout, and of stderr, kept; the rest is dropped and counted.
    pub output_limit: usize,
}

/// The period of the CPU budget: an execution may run ahead of its share by this period's
/// worth of CPU (10 ms at 100 millicpu), as under the native sandbox's CFS quota.
pub const CPU_PERIOD: Duration = Duration::from_millis(100);

/// How an execution ended.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum End {
    /// `_start` returned (0) or the guest called `proc_exit(code)`.
    Exit(i32),
    /// A trap, or an error raised by a host call: `message` for the user, `detail` (the
    /// wasm backtrace) for the log.
    Trap {
        message: String,
        detail: Option<String>,
    },
    /// The timeout passed first.
    Timeout,
    /// The guest asked for more linear memory than its limit and then failed.
    MemoryLimit,
}

/// What an execution did.
#[derive(Debug, Clone)]
pub struct Report {
    pub end: End,
    pub stdout: Vec<u8>,
    pub stderr: Vec<u8>,
    /// Bytes of stdout and of stderr dropped beyond the output limit.
    pub stdout_dropped: u64,
    pub stderr_dropped: u64,
    /// From instantiation to the end.
    pub duration: Duration,
    /// CPU time of the threads that ran the execution, while they ran it.
    pub cpu: Duration,
    /// The largest linear memory the instance had, in bytes.
    pub memory_peak_bytes: u64,
    /// Whether this was the first instantiation of the module in this process, and how
    /// long instantiating took.
    pub cold: bool,
    pub instantiate: Duration,
}

/// A store's data: the guest's WASI context and its memory limiter.
struct State {
    wasi: WasiP1Ctx,
    limits: Limits,
}

/// Enforces the memory limit and remembers the peak and any refusal.
struct Limits {
    memory_bytes: usize,
    peak: usize,
    refused: bool,
}

impl ResourceLimiter for Limits {
    fn memory_growing(
        &mut self,
        _current: usize,
        desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        if desired > self.memory_bytes {
            self.refused = true;
            return Ok(false);
        }
        self.peak = self.peak.max(desired);
        Ok(true)
    }

    fn table_growing(
        &mut self,
        _current: usize,
        _desired: usize,
        _maximum: Option<usize>,
    ) -> wasmtime::Result<bool> {
        // Tables are bounded by the pooling allocator's `table_elements`.
        Ok(true)
    }
}

struct Inner {
    engine: Engine,
    linker: Linker<State>,
    memory: cache::Memory,
    artefacts: cache::Artefacts,
    slots: tokio::sync::Semaphore,
}

/// The wasm runtime. Cheap to clone.
#[derive(Clone)]
pub struct WasmRuntime {
    inner: Arc<Inner>,
}

impl std::fmt::Debug for WasmRuntime {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("WasmRuntime")
            .field("cached_modules", &self.inner.memory.len())
            .finish_non_exhaustive()
    }
}

impl WasmRuntime {
    /// Builds the engine (pooling allocator, epoch interruption), links WASI and starts the
    /// epoch ticker, which stops when the runtime is dropped.
    pub fn new(cfg: WasmConfig) -> Result<WasmRuntime, WasmError> {
        let setup = |e: wasmtime::Error| WasmError::Setup(e.into());
        let mut pooling = PoolingAllocationConfig::default();
        pooling
            .total_core_instances(cfg.max_instances)
            .total_memories(cfg.max_instances)
            .total_tables(cfg.max_instances)
            .total_stacks(cfg.max_instances)
            .max_memory_size(usize::try_from(cfg.max_memory_bytes).unwrap_or(usize::MAX));
        let mut config = Config::new();
        config
            .epoch_interruption(true)
            .allocation_strategy(InstanceAllocationStrategy::Pooling(pooling));
        let engine = Engine::new(&config).map_err(setup)?;
        let mut linker = Linker::new(&engine);
        wasmtime_wasi::p1::add_to_linker_async(&mut linker, |s: &mut State| &mut s.wasi)
            .map_err(setup)?;
        let artefacts =
            cache::Artefacts::open(&cfg.cache_dir).map_err(|source| WasmError::Cache {
                path: cfg.cache_dir.clone(),
                source,
            })?;
        let weak = engine.weak();
        let tick = cfg.epoch_tick;
        std::thread::Builder::new()
            .name("wasm-epoch".into())
            .spawn(move || {
                // The only clock of wasm timeouts; ends with the engine.
                loop {
                    std::thread::sleep(tick);
                    match weak.upgrade() {
                        Some(engine) => engine.increment_epoch(),
                        None => return,
                    }
                }
            })
            .map_err(|e| WasmError::Setup(e.into()))?;
        Ok(WasmRuntime {
            inner: Arc::new(Inner {
                engine,
                linker,
                memory: cache::Memory::new(cfg.cached_modules),
                artefacts,
                slots: tokio::sync::Semaphore::new(cfg.max_instances.max(1) as usize),
            }),
        })
    }

    /// Compiles `wasm` for `key`, checks that it is a WASI preview-1 command this runtime
    /// can link, keeps it in memory and writes its artefact to disk. CPU-heavy: call it
    /// off the async executor (`spawn_blocking`).
    pub fn compile(&self, key: &ModuleKey, wasm: &[u8]) -> Result<Arc<Module>, WasmError> {
        let module = wasmtime::Module::new(&self.inner.engine, wasm)
            .map_err(|e| WasmError::Invalid(format!("{e:#}")))?;
        let module = self.link(module)?;
        self.inner.artefacts.store(key, module.pre.module());
        self.inner.memory.put(key.clone(), module.clone());
        Ok(module)
    }

    /// Checks a compiled module's imports and exports and links it.
    fn link(&self, module: wasmtime::Module) -> Result<Arc<Module>, WasmError> {
        for import in module.imports() {
            if import.module() != WASI_P1 {
                return Err(WasmError::Invalid(format!(
                    "the module imports `{}::{}`; a function's module may import only WASI preview 1 (`{WASI_P1}`)",
                    import.module(),
                    import.name()
                )));
            }
        }
        match module.get_export("_start") {
            Some(ExternType::Func(f)) if f.params().len() == 0 && f.results().len() == 0 => {}
            _ => {
                return Err(WasmError::Invalid(
                    "the module has no `_start` function: a function must be a WASI preview-1 command module (e.g. built with `cargo build --target wasm32-wasip1`)".into(),
                ));
            }
        }
        let pre = self
            .inner
            .linker
            .instantiate_pre(&module)
            .map_err(|e| WasmError::Invalid(format!("{e:#}")))?;
        Ok(Arc::new(Module {
            pre,
            used: AtomicBool::new(false),
        }))
    }

    /// The compiled module of `key` if it is in memory.
    pub fn cached(&self, key: &ModuleKey) -> Option<Arc<Module>> {
        self.inner.memory.get(key)
    }

    /// The compiled module of `key` from memory, else from its artefact on disk; `None`
    /// when neither has it (the caller compiles it from the package). May read and map a
    /// file: call it off the async executor.
    pub fn load(&self, key: &ModuleKey) -> Option<Arc<Module>> {
        if let Some(m) = self.inner.memory.get(key) {
            return Some(m);
        }
        let module = self.inner.artefacts.load(&self.inner.engine, key)?;
        match self.link(module) {
            Ok(m) => {
                self.inner.memory.put(key.clone(), m.clone());
                Some(m)
            }
            Err(error) => {
                tracing::warn!(%error, package = %key.package, "a cached wasm module no longer links; recompiling");
                None
            }
        }
    }

    /// Drops one module from memory (its artefact stays): the next execution loads it again.
    pub fn evict(&self, key: &ModuleKey) {
        self.inner.memory.remove(&key.package, Some(&key.entry));
    }

    /// Forgets every module of a package, in memory and on disk (the package is gone).
    pub fn forget(&self, package: &str) {
        self.inner.memory.remove(package, None);
        self.inner.artefacts.remove(package);
    }

    /// Runs one execution of `module` in a fresh instance. Never fails: whatever happens
    /// is in the report.
    pub async fn execute(&self, module: &Module, req: ExecRequest) -> Report {
        let _slot = self.inner.slots.acquire().await;
        let stdout = Capture::new(req.output_limit);
        let stderr = Capture::new(req.output_limit);
        let wasi = WasiCtxBuilder::new()
            .stdin(MemoryInputPipe::new(req.stdin))
            .stdout(stdout.clone())
            .stderr(stderr.clone())
            .args(&req.args)
            .envs(&req.env)
            .build_p1();
        let limits = Limits {
            memory_bytes: usize::try_from(req.memory_bytes).unwrap_or(usize::MAX),
            peak: 0,
            refused: false,
        };
        let mut store = Store::new(&self.inner.engine, State { wasi, limits });
        store.limiter(|s| &mut s.limits);
        // At every tick the guest yields to the executor, so the timeout below can end it
        // (and the other tasks of this thread get to run).
        store.set_epoch_deadline(1);
        store.epoch_deadline_async_yield_and_update(1);
        let cold = !module.used.swap(true, Ordering::Relaxed);
        let started = Instant::now();
        let mut instantiate = Duration::ZERO;
        let run = async {
            let instance = module.pre.instantiate_async(&mut store).await?;
            instantiate = started.elapsed();
            let start = instance.get_typed_func::<(), ()>(&mut store, "_start")?;
            start.call_async(&mut store, ()).await
        };
        let share = req.cpu_millis.map(|m| f64::from(m.max(1)) / 1000.0);
        let (result, cpu) = Governed::new(run, started, req.timeout, share).await;
        let duration = started.elapsed();
        let limits = &store.data().limits;
        let end = match result {
            None => End::Timeout,
            Some(Ok(())) => End::Exit(0),
            Some(Err(e)) => match e.downcast_ref::<wasmtime_wasi::I32Exit>() {
                Some(exit) if exit.0 == 0 || !limits.refused => End::Exit(exit.0),
                _ if limits.refused => End::MemoryLimit,
                _ => trap(&e),
            },
        };
        let (stdout, stdout_dropped) = stdout.take();
        let (stderr, stderr_dropped) = stderr.take();
        Report {
            end,
            stdout,
            stderr,
            stdout_dropped,
            stderr_dropped,
            duration,
            cpu,
            memory_peak_bytes: limits.peak as u64,
            cold,
            instantiate,
        }
    }
}

/// The user's view of a failed run: the trap's message, and its wasm backtrace for the log.
fn trap(e: &wasmtime::Error) -> End {
    let message = match e.downcast_ref::<Trap>() {
        Some(t) => format!("wasm trap: {t}"),
        None => format!("{e:#}"),
    };
    let detail = e.downcast_ref::<WasmBacktrace>().map(|bt| bt.to_string());
    End::Trap { message, detail }
}

/// A running execution under its deadline and CPU budget: adds up the CPU time of the
/// threads that poll it, while they do; ends with `None` at the deadline; and, with a
/// share, pauses it whenever it has used more than `share × elapsed` plus one
/// [`CPU_PERIOD`] of burst, until the budget has caught up. The guest yields at every
/// epoch tick, so it overdraws by at most a tick's worth of CPU.
struct Governed<F> {
    inner: Pin<Box<F>>,
    cpu: Duration,
    started: Instant,
    share: Option<f64>,
    deadline: Pin<Box<tokio::time::Sleep>>,
    pause: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl<F: Future> Governed<F> {
    /// Governs `inner`, an execution that started at `started`, for `timeout` from then.
    fn new(inner: F, started: Instant, timeout: Duration, share: Option<f64>) -> Governed<F> {
        Governed {
            inner: Box::pin(inner),
            cpu: Duration::ZERO,
            started,
            share,
            deadline: Box::pin(tokio::time::sleep_until((started + timeout).into())),
            pause: None,
        }
    }
}

fn thread_cpu() -> Duration {
    let t = rustix::time::clock_gettime(rustix::time::ClockId::ThreadCPUTime);
    Duration::new(t.tv_sec as u64, t.tv_nsec as u32)
}

/// When an execution that has used `cpu` may run again, as an offset from its start: the
/// instant its budget (`share` of the elapsed time, plus one period's burst) covers `cpu`.
/// `None` while it is within its budget at `elapsed`.
fn resume_at(cpu: Duration, elapsed: Duration, share: f64) -> Option<Duration> {
    let burst = CPU_PERIOD.as_secs_f64() * share;
    let owed = cpu.as_secs_f64() - burst;
    (owed > elapsed.as_secs_f64() * share).then(|| Duration::from_secs_f64(owed / share))
}

impl<F: Future> Future for Governed<F> {
    type Output = (Option<F::Output>, Duration);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        if self.deadline.as_mut().poll(cx).is_ready() {
            return Poll::Ready((None, self.cpu));
        }
        if let Some(pause) = self.pause.as_mut() {
            if pause.as_mut().poll(cx).is_pending() {
                return Poll::Pending;
            }
            self.pause = None;
        }
        let before = thread_cpu();
        let polled = self.inner.as_mut().poll(cx);
        let spent = thread_cpu().saturating_sub(before);
        self.cpu += spent;
        if let Poll::Ready(out) = polled {
            return Poll::Ready((Some(out), self.cpu));
        }
        if let Some(share) = self.share
            && let Some(at) = resume_at(self.cpu, self.started.elapsed(), share)
        {
            let mut pause = Box::pin(tokio::time::sleep_until((self.started + at).into()));
            if pause.as_mut().poll(cx).is_pending() {
                self.pause = Some(pause);
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests;
