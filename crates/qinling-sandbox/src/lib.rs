//! The sandbox seam: how a worker process is started and confined.
//!
//! The pool sees only [`Sandbox`] and [`SandboxedProcess`]; which backend runs a worker (a
//! plain process for `--insecure-no-sandbox`, the Linux jail, later a microVM or a
//! Kubernetes pod) is chosen once, by the server binary. A sandboxed process is a byte
//! channel to its owner (for a process: its stdin and stdout) carrying the framed worker
//! protocol, a [`Control`] handle and its [`Exit`]; nothing of `tokio::process` shows, so a
//! test can drive the pool with an in-memory fake. This crate knows nothing of the
//! protocol, nor of the store.

// Every unsafe block says why it is sound (checked by clippy in CI).
#![deny(clippy::undocumented_unsafe_blocks)]

pub mod jail;
mod process;

use std::ffi::OsString;
use std::path::PathBuf;
use std::process::ExitStatus;

use tokio::io::{AsyncRead, AsyncWrite};
use tokio::sync::watch;

pub use jail::{JailConfig, JailSandbox};
pub use process::ProcessSandbox;

/// Resource limits for one worker. Memory, cpu and pids are enforced per worker (cgroups where
/// the backend has them); files and file size are per process (rlimits).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Limits {
    /// Memory limit of the whole worker, in bytes.
    pub memory_bytes: u64,
    /// CPU quota in millicpu (1000 = one core).
    pub cpu_millis: u32,
    /// Maximum number of processes (and threads) in the worker.
    pub pids: u32,
    /// Maximum open files per process.
    pub nofile: u64,
    /// Maximum size of a file a process may write, in bytes.
    pub fsize_bytes: u64,
    /// Size cap of the worker's private writable `/tmp`, in bytes.
    pub tmp_bytes: u64,
}

impl Default for Limits {
    fn default() -> Self {
        Self {
            memory_bytes: 32 * 1024 * 1024,
            cpu_millis: 100,
            pids: 128,
            nofile: 1024,
            fsize_bytes: 500 * 1024 * 1024,
            tmp_bytes: 64 * 1024 * 1024,
        }
    }
}

/// What to start inside a sandbox.
#[derive(Debug, Clone)]
pub struct LaunchSpec {
    /// A name for logs and cgroup paths, unique among live workers (e.g. the worker id).
    pub name: String,
    /// The program to run (an absolute host path, e.g. `/usr/bin/python3`).
    pub program: PathBuf,
    pub args: Vec<OsString>,
    /// The complete environment of the process (nothing is inherited from the server).
    pub env: Vec<(OsString, OsString)>,
    /// Host paths the runtime needs to see, read-only (interpreter prefix, its libraries, the
    /// runtime shim). The backend adds the system basics (`/usr`, `/lib*`, `/bin`, …).
    pub read_only_paths: Vec<PathBuf>,
    /// Limits in force from the start; [`SandboxedProcess::set_limits`] changes them later,
    /// when a pre-started worker is bound to a function.
    pub limits: Limits,
    /// Whether the worker may open outbound network connections (beyond its own loopback).
    pub network: bool,
    /// Whether the sandbox's pid 1 should be a reaper that runs the program as its child and
    /// reaps every orphan, rather than the program itself. For runtimes that cannot reap
    /// processes they did not start (Node.js); others reap as child subreapers themselves.
    pub reaper: bool,
}

/// Resource use of a worker as the backend measures it.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Usage {
    /// Peak memory of the worker since it started, in bytes, where known.
    pub memory_peak_bytes: Option<u64>,
    /// Number of times the memory limit was hit and a process was killed for it.
    pub oom_kills: u64,
}

/// The worker's side of the channel: what it writes (its stdout).
pub type Reader = Box<dyn AsyncRead + Send + Unpin>;
/// The owner's side of the channel: what the worker reads (its stdin).
pub type Writer = Box<dyn AsyncWrite + Send + Unpin>;

/// A started worker.
pub struct SandboxedProcess {
    /// The host pid of its main process, where it has one.
    pub pid: Option<u32>,
    /// Bytes to the worker.
    pub stdin: Writer,
    /// Bytes from the worker.
    pub stdout: Reader,
    /// Backend-specific handle: limits, usage and clean-up.
    pub control: Box<dyn Control>,
    /// Resolves when the worker's main process has exited (and was reaped).
    pub exit: Exit,
}

impl std::fmt::Debug for SandboxedProcess {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SandboxedProcess")
            .field("pid", &self.pid)
            .finish()
    }
}

/// The end of a worker's main process. A started child is owned by a task that reaps it as
/// soon as it exits (no zombie is ever left, whoever holds the worker) and publishes its
/// status here.
#[derive(Debug, Clone)]
pub struct Exit(watch::Receiver<Option<ExitStatus>>);

impl Exit {
    /// Reaps `child` in a task of its own (it must run inside a tokio runtime).
    pub fn of_child(mut child: tokio::process::Child) -> Exit {
        let (tx, exit) = Exit::channel();
        tokio::spawn(async move {
            if let Ok(status) = child.wait().await {
                let _ = tx.send(Some(status));
            }
        });
        exit
    }

    /// An exit that the holder of the sender reports (an in-memory worker's).
    pub fn channel() -> (watch::Sender<Option<ExitStatus>>, Exit) {
        let (tx, rx) = watch::channel(None);
        (tx, Exit(rx))
    }

    /// Waits for the exit; `None` if it can no longer be known (the reaper went away).
    pub async fn wait(&mut self) -> Option<ExitStatus> {
        self.0.wait_for(Option::is_some).await.ok().and_then(|s| *s)
    }

    /// Whether the main process has exited.
    pub fn has_exited(&self) -> bool {
        self.0.borrow().is_some()
    }
}

/// Backend-specific control over a started worker. Dropping it releases what the backend
/// holds for the worker (cgroups, mounts); the process itself is killed by its owner.
pub trait Control: Send + Sync {
    /// Changes the worker's limits (bind of a pre-started worker to a function).
    fn set_limits(&self, limits: &Limits) -> Result<(), SandboxError>;
    /// Current resource use.
    fn usage(&self) -> Usage;
    /// Kills every process of the worker, its main process included, and any that left its
    /// process group.
    fn kill_all(&self);
}

/// A way to start workers.
pub trait Sandbox: Send + Sync + 'static {
    /// A short name for logs and the API (`process`, `jail`, …).
    fn name(&self) -> &'static str;
    /// Starts a worker. The process must be running when this returns; it is not yet known
    /// whether the runtime inside has started successfully.
    fn launch(&self, spec: &LaunchSpec) -> Result<SandboxedProcess, SandboxError>;
    /// Limits this backend cannot enforce on this machine, stated once at start-up.
    fn unenforced(&self) -> Vec<String>;
    /// Why launches with [`LaunchSpec::network`] cannot work on this machine, or `None` when
    /// they can.
    fn network_unavailable(&self) -> Option<String>;
}

#[derive(Debug, thiserror::Error)]
pub enum SandboxError {
    #[error("cannot start worker {name}")]
    Spawn {
        name: String,
        #[source]
        source: std::io::Error,
    },
    #[error("cannot apply {what} to worker")]
    Limit {
        what: &'static str,
        #[source]
        source: std::io::Error,
    },
    #[error("sandbox is not available: {0}")]
    Unavailable(String),
    /// The jail could not be built; `reason` names the failed step and the kernel's answer
    /// (it comes from the jail's init, another process, as text).
    #[error("cannot set up the jail of worker {name}: {reason}")]
    Jail { name: String, reason: String },
}
