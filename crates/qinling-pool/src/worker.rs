//! One worker: a runtime shim in a sandbox, bound to at most one function version, serving
//! many executions at once over the framed protocol. A reader task routes each `result`
//! to the execution waiting for it; when the process dies, every waiter gets an error.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use qinling_sandbox::{Control, Limits, SandboxedProcess, Usage, Writer};
use tokio::sync::oneshot;

use crate::PoolError;
use qinling_runtimes::protocol::{ExecReply, Reply, Request, Rlimits, read_frame, write_frame};

/// Everything one execution needs from the worker.
#[derive(Debug, Clone)]
pub struct ExecRequest {
    pub execution_id: String,
    pub kwargs: Option<serde_json::Map<String, serde_json::Value>>,
    pub args: Vec<String>,
    pub timeout: Duration,
    pub context: serde_json::Value,
    pub rlimits: Rlimits,
    pub log_limit: usize,
}

type Waiter = oneshot::Sender<Result<Reply, PoolError>>;

struct Shared {
    /// Waiters keyed by execution id; the bind and ping waiters use reserved keys.
    waiters: Mutex<HashMap<String, Waiter>>,
    dead: AtomicBool,
}

impl Shared {
    fn fail_all(&self, why: &str) {
        self.dead.store(true, Ordering::SeqCst);
        let waiters: Vec<Waiter> = self
            .waiters
            .lock()
            .expect("waiters lock")
            .drain()
            .map(|(_, w)| w)
            .collect();
        for w in waiters {
            let _ = w.send(Err(PoolError::WorkerDied(why.to_string())));
        }
    }
}

const BIND_KEY: &str = "\0bind";
const READY_KEY: &str = "\0ready";
const PONG_KEY: &str = "\0pong";

/// A running worker.
pub struct Worker {
    pub name: String,
    pid: Option<u32>,
    stdin: tokio::sync::Mutex<Writer>,
    shared: Arc<Shared>,
    control: Box<dyn Control>,
    in_flight: AtomicUsize,
    /// Executions leased to this worker (waiting to send or running); the pool's scaling
    /// rule counts these, under the function's lock.
    pub(crate) leases: AtomicUsize,
    last_used: Mutex<Instant>,
}

impl std::fmt::Debug for Worker {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("name", &self.name)
            .field("pid", &self.pid)
            .finish()
    }
}

impl Worker {
    /// Takes over a launched process and waits (up to `ready_timeout`) for the shim's `ready`.
    pub async fn start(
        name: String,
        proc: SandboxedProcess,
        ready_timeout: Duration,
    ) -> Result<Arc<Worker>, PoolError> {
        let SandboxedProcess {
            pid,
            stdin,
            mut stdout,
            control,
            exit: _,
        } = proc;
        let shared = Arc::new(Shared {
            waiters: Mutex::new(HashMap::new()),
            dead: AtomicBool::new(false),
        });
        let (ready_tx, ready_rx) = oneshot::channel();
        shared
            .waiters
            .lock()
            .expect("waiters lock")
            .insert(READY_KEY.into(), ready_tx);
        let worker = Arc::new(Worker {
            name: name.clone(),
            pid,
            stdin: tokio::sync::Mutex::new(stdin),
            shared: shared.clone(),
            control,
            in_flight: AtomicUsize::new(0),
            leases: AtomicUsize::new(0),
            last_used: Mutex::new(Instant::now()),
        });
        tokio::spawn(async move {
            let why = loop {
                match read_frame(&mut stdout).await {
                    Ok(Some(frame)) => match serde_json::from_slice::<Reply>(&frame) {
                        Ok(reply) => route(&shared, reply),
                        Err(e) => break format!("bad message from worker: {e}"),
                    },
                    Ok(None) => break "worker exited".to_string(),
                    Err(e) => break format!("reading from worker: {e}"),
                }
            };
            tracing::debug!(worker = %name, reason = %why, "worker channel closed");
            shared.fail_all(&why);
        });
        match tokio::time::timeout(ready_timeout, ready_rx).await {
            Ok(Ok(Ok(Reply::Ready {}))) => Ok(worker),
            Ok(Ok(Ok(other))) => {
                worker.kill();
                Err(PoolError::Protocol(format!(
                    "expected ready, got {other:?}"
                )))
            }
            Ok(Ok(Err(e))) => {
                worker.kill();
                Err(e)
            }
            Ok(Err(_)) => {
                worker.kill();
                Err(PoolError::WorkerDied(
                    "worker exited before it was ready".into(),
                ))
            }
            Err(_) => {
                worker.kill();
                Err(PoolError::WorkerDied(format!(
                    "worker not ready within {ready_timeout:?}"
                )))
            }
        }
    }

    pub fn is_dead(&self) -> bool {
        self.shared.dead.load(Ordering::SeqCst)
    }

    pub fn pid(&self) -> Option<u32> {
        self.pid
    }

    /// Executions leased to this worker now.
    pub fn leases(&self) -> usize {
        self.leases.load(Ordering::SeqCst)
    }

    pub fn in_flight(&self) -> usize {
        self.in_flight.load(Ordering::SeqCst)
    }

    pub fn idle_for(&self) -> Duration {
        if self.in_flight() > 0 {
            return Duration::ZERO;
        }
        self.last_used.lock().expect("last_used lock").elapsed()
    }

    pub fn usage(&self) -> Usage {
        self.control.usage()
    }

    pub fn set_limits(&self, limits: &Limits) -> Result<(), PoolError> {
        self.control.set_limits(limits).map_err(PoolError::Sandbox)
    }

    /// Kills the worker and everything it started (the sandbox reaps its main process).
    /// Idempotent.
    pub fn kill(&self) {
        self.control.kill_all();
        self.shared.fail_all("worker was killed");
    }

    async fn send(
        &self,
        key: &str,
        msg: &Request<'_>,
        raw: Option<&[u8]>,
    ) -> Result<oneshot::Receiver<Result<Reply, PoolError>>, PoolError> {
        if self.is_dead() {
            return Err(PoolError::WorkerDied("worker is gone".into()));
        }
        let (tx, rx) = oneshot::channel();
        self.shared
            .waiters
            .lock()
            .expect("waiters lock")
            .insert(key.to_string(), tx);
        let payload = serde_json::to_vec(msg).map_err(|e| PoolError::Protocol(e.to_string()))?;
        let mut stdin = self.stdin.lock().await;
        let written = async {
            write_frame(&mut *stdin, &payload).await?;
            if let Some(raw) = raw {
                write_frame(&mut *stdin, raw).await?;
            }
            Ok::<_, std::io::Error>(())
        }
        .await;
        drop(stdin);
        if let Err(e) = written {
            self.shared
                .waiters
                .lock()
                .expect("waiters lock")
                .remove(key);
            self.kill();
            return Err(PoolError::WorkerDied(format!("writing to worker: {e}")));
        }
        Ok(rx)
    }

    /// Hands the function's package to the worker and imports its entry.
    pub async fn bind(
        &self,
        entry: &str,
        package: &[u8],
        function_id: &str,
        function_version: i64,
        mode: qinling_types::ExecutionMode,
        timeout: Duration,
    ) -> Result<(), PoolError> {
        let msg = Request::Bind {
            entry,
            package_size: package.len(),
            function_id,
            function_version,
            mode,
        };
        let rx = match self.send(BIND_KEY, &msg, Some(package)).await {
            Ok(rx) => rx,
            Err(PoolError::WorkerDied(_)) => return Err(self.died_binding(package.len())),
            Err(e) => return Err(e),
        };
        match tokio::time::timeout(timeout, rx).await {
            Ok(Ok(Ok(Reply::Bound { ok: true, .. }))) => Ok(()),
            Ok(Ok(Ok(Reply::Bound {
                ok: false,
                error,
                logs,
            }))) => Err(PoolError::Bind {
                error: error.unwrap_or_else(|| "the function could not be loaded".into()),
                logs: logs.unwrap_or_default(),
            }),
            Ok(Ok(Ok(other))) => Err(PoolError::Protocol(format!(
                "expected bound, got {other:?}"
            ))),
            Ok(Ok(Err(PoolError::WorkerDied(_))) | Err(_)) => Err(self.died_binding(package.len())),
            Ok(Ok(Err(e))) => Err(e),
            Err(_) => {
                self.kill();
                Err(PoolError::Bind {
                    error: format!(
                        "loading the function took longer than {}s",
                        timeout.as_secs()
                    ),
                    logs: String::new(),
                })
            }
        }
    }

    /// Why a worker that died during its bind did: almost always the memory limit (the
    /// unpacked files in /tmp count in it). Said as a load failure, so the user reads why
    /// instead of "Function execution failed.".
    fn died_binding(&self, package_bytes: usize) -> PoolError {
        PoolError::Bind {
            error: format!(
                "the worker {} while unpacking and loading the package ({package_bytes} bytes): the unpacked package and what its import allocates must fit in the function's memory_size; give the function more memory or make the package smaller",
                if self.usage().oom_kills > 0 {
                    "ran out of memory"
                } else {
                    "ended"
                },
            ),
            logs: String::new(),
        }
    }

    /// Runs one execution. The shim enforces the timeout; if it does not answer within the
    /// timeout plus a grace period, the worker can no longer be trusted and is killed.
    pub async fn execute(&self, req: &ExecRequest) -> Result<ExecReply, PoolError> {
        self.in_flight.fetch_add(1, Ordering::SeqCst);
        let result = self.execute_inner(req).await;
        *self.last_used.lock().expect("last_used lock") = Instant::now();
        self.in_flight.fetch_sub(1, Ordering::SeqCst);
        result
    }

    async fn execute_inner(&self, req: &ExecRequest) -> Result<ExecReply, PoolError> {
        let msg = Request::Exec {
            id: &req.execution_id,
            kwargs: req.kwargs.as_ref(),
            args: req.args.iter().map(String::as_str).collect(),
            timeout_ms: req.timeout.as_millis() as u64,
            context: &req.context,
            rlimits: req.rlimits,
            log_limit: req.log_limit,
        };
        let rx = self.send(&req.execution_id, &msg, None).await?;
        let grace = Duration::from_secs(5);
        match tokio::time::timeout(req.timeout + grace, rx).await {
            Ok(Ok(Ok(Reply::Result(reply)))) => Ok(reply),
            Ok(Ok(Ok(other))) => Err(PoolError::Protocol(format!(
                "expected result, got {other:?}"
            ))),
            Ok(Ok(Err(e))) => Err(e),
            Ok(Err(_)) => Err(PoolError::WorkerDied("worker dropped the execution".into())),
            Err(_) => {
                tracing::warn!(worker = %self.name, execution_id = %req.execution_id, "worker missed an execution deadline; killing it");
                self.kill();
                Err(PoolError::Timeout)
            }
        }
    }

    /// Asks the worker whether it is alive.
    pub async fn ping(&self, timeout: Duration) -> bool {
        let Ok(rx) = self.send(PONG_KEY, &Request::Ping, None).await else {
            return false;
        };
        matches!(
            tokio::time::timeout(timeout, rx).await,
            Ok(Ok(Ok(Reply::Pong {})))
        )
    }
}

impl Drop for Worker {
    fn drop(&mut self) {
        self.control.kill_all();
    }
}

fn route(shared: &Shared, reply: Reply) {
    let key = match &reply {
        Reply::Ready {} => READY_KEY.to_string(),
        Reply::Bound { .. } => BIND_KEY.to_string(),
        Reply::Pong {} => PONG_KEY.to_string(),
        Reply::Result(r) => r.id.clone(),
        Reply::Error { error } => {
            tracing::warn!(%error, "worker reported a protocol error");
            return;
        }
    };
    let waiter = shared.waiters.lock().expect("waiters lock").remove(&key);
    if let Some(w) = waiter {
        let _ = w.send(Ok(reply));
    }
}
