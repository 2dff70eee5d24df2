//! An in-memory sandbox for tests (feature `fake`): a "worker" is a task that speaks the
//! worker protocol over an in-memory byte channel, so the pool's scaling rule and the
//! engine's run path can be tested in seconds with no Python, no process and no root.
//!
//! The fake shim answers `ready`, binds any package except one whose bytes are
//! [`FAIL_BIND`] (an import error, with a log) or a bind with a `mode` other than `fork` or
//! `reuse` (absent is `fork`, as for the real shims; [`FakeSandbox::modes`] tells which mode
//! each worker was bound in), and runs each execution in a task of its
//! own, driven by the execution's keyword arguments: `sleep_ms` (how long it runs; past
//! the timeout it times out), `fail` (a raised error), `oom` (ends as out of resources),
//! `die` (the worker exits mid-execution); anything else is echoed back as the result.

use std::collections::HashMap;
use std::os::unix::process::ExitStatusExt;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qinling_executor::{ExecutorError, Packages};
use qinling_sandbox::{
    Control, Exit, LaunchSpec, Limits, Sandbox, SandboxError, SandboxedProcess, Usage,
};
use serde_json::{Value, json};
use tokio::io::{AsyncWrite, WriteHalf};
use tokio::sync::Notify;

use qinling_runtimes::protocol::{read_frame, write_frame};

/// A package whose bind fails with an import error.
pub const FAIL_BIND: &[u8] = b"fail-bind";

/// Launchers for `kinds` that this sandbox accepts (it starts no program).
pub fn launchers(
    kinds: &[qinling_types::RuntimeKind],
) -> HashMap<qinling_types::RuntimeKind, crate::Launcher> {
    let launcher = crate::Launcher {
        program: "/fake".into(),
        args: vec![],
        env: vec![],
        read_only_paths: vec![],
        reaper: false,
    };
    kinds.iter().map(|k| (*k, launcher.clone())).collect()
}

/// Starts in-memory workers and counts them.
#[derive(Default)]
pub struct FakeSandbox {
    launched: AtomicUsize,
    /// Names of launched workers with the limits they were last given.
    limits: Arc<Mutex<HashMap<String, Limits>>>,
    /// Names of bound workers with the execution mode of their bind.
    modes: Arc<Mutex<HashMap<String, String>>>,
}

impl FakeSandbox {
    /// Workers launched so far.
    pub fn launched(&self) -> usize {
        self.launched.load(Ordering::SeqCst)
    }

    /// The limits each worker has now, by name.
    pub fn limits(&self) -> HashMap<String, Limits> {
        self.limits.lock().expect("limits lock").clone()
    }

    /// The execution mode (`fork`, `reuse`) each bound worker was bound in, by name.
    pub fn modes(&self) -> HashMap<String, String> {
        self.modes.lock().expect("modes lock").clone()
    }
}

struct FakeControl {
    name: String,
    kill: Arc<Notify>,
    limits: Arc<Mutex<HashMap<String, Limits>>>,
    oom_kills: Arc<AtomicUsize>,
}

impl Control for FakeControl {
    fn set_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        self.limits
            .lock()
            .expect("limits lock")
            .insert(self.name.clone(), *limits);
        Ok(())
    }

    fn usage(&self) -> Usage {
        Usage {
            memory_peak_bytes: None,
            oom_kills: self.oom_kills.load(Ordering::SeqCst) as u64,
        }
    }

    fn kill_all(&self) {
        self.kill.notify_one();
    }
}

impl Sandbox for FakeSandbox {
    fn name(&self) -> &'static str {
        "fake"
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<SandboxedProcess, SandboxError> {
        self.launched.fetch_add(1, Ordering::SeqCst);
        self.limits
            .lock()
            .expect("limits lock")
            .insert(spec.name.clone(), spec.limits);
        let (ours, theirs) = tokio::io::duplex(1 << 16);
        let (read, write) = tokio::io::split(ours);
        let (exit_tx, exit) = Exit::channel();
        let kill = Arc::new(Notify::new());
        let oom_kills = Arc::new(AtomicUsize::new(0));
        let bound = Bound {
            name: spec.name.clone(),
            modes: self.modes.clone(),
        };
        let shim = shim(theirs, oom_kills.clone(), bound);
        let killed = kill.clone();
        tokio::spawn(async move {
            let status = tokio::select! {
                () = shim => ExitStatusExt::from_raw(0),
                () = killed.notified() => ExitStatusExt::from_raw(libc_sigkill()),
            };
            let _ = exit_tx.send(Some(status));
        });
        Ok(SandboxedProcess {
            pid: None,
            stdin: Box::new(write),
            stdout: Box::new(read),
            control: Box::new(FakeControl {
                name: spec.name.clone(),
                kill,
                limits: self.limits.clone(),
                oom_kills,
            }),
            exit,
        })
    }

    fn unenforced(&self) -> Vec<String> {
        vec!["everything: this is an in-memory fake".into()]
    }

    fn network_unavailable(&self) -> Option<String> {
        None
    }
}

/// The raw wait status of a process killed by SIGKILL.
fn libc_sigkill() -> i32 {
    9
}

type Out = Arc<tokio::sync::Mutex<WriteHalf<tokio::io::DuplexStream>>>;

async fn send<W: AsyncWrite + Unpin>(out: &tokio::sync::Mutex<W>, msg: Value) -> bool {
    let bytes = serde_json::to_vec(&msg).expect("json");
    write_frame(&mut *out.lock().await, &bytes).await.is_ok()
}

/// Where a fake worker records the mode it was bound in.
struct Bound {
    name: String,
    modes: Arc<Mutex<HashMap<String, String>>>,
}

/// The fake shim: returns when the channel closes or an execution asks it to die.
async fn shim(stream: tokio::io::DuplexStream, oom_kills: Arc<AtomicUsize>, bound: Bound) {
    let (mut input, output) = tokio::io::split(stream);
    let out: Out = Arc::new(tokio::sync::Mutex::new(output));
    let die = Arc::new(Notify::new());
    if !send(&out, json!({"op": "ready"})).await {
        return;
    }
    loop {
        let frame = tokio::select! {
            f = read_frame(&mut input) => f,
            () = die.notified() => return,
        };
        let Ok(Some(frame)) = frame else { return };
        let Ok(msg) = serde_json::from_slice::<Value>(&frame) else {
            return;
        };
        match msg["op"].as_str() {
            Some("bind") => {
                let Ok(Some(package)) = read_frame(&mut input).await else {
                    return;
                };
                let mode = msg["mode"].as_str().unwrap_or("fork");
                let reply = if package == FAIL_BIND {
                    json!({"op": "bound", "ok": false, "error": "No module named 'missing'",
                           "logs": "Traceback: import failed"})
                } else if !matches!(mode, "fork" | "reuse") {
                    json!({"op": "bound", "ok": false, "error": format!("unknown mode '{mode}'"),
                           "logs": ""})
                } else {
                    bound
                        .modes
                        .lock()
                        .expect("modes lock")
                        .insert(bound.name.clone(), mode.to_string());
                    json!({"op": "bound", "ok": true})
                };
                send(&out, reply).await;
            }
            Some("ping") => {
                send(&out, json!({"op": "pong"})).await;
            }
            Some("exec") => {
                let (out, die, oom_kills) = (out.clone(), die.clone(), oom_kills.clone());
                tokio::spawn(async move { execute(msg, out, die, oom_kills).await });
            }
            _ => return,
        }
    }
}

async fn execute(msg: Value, out: Out, die: Arc<Notify>, oom_kills: Arc<AtomicUsize>) {
    let id = msg["id"].as_str().unwrap_or_default().to_string();
    let kwargs = msg["kwargs"].clone();
    let timeout = Duration::from_millis(msg["timeout_ms"].as_u64().unwrap_or(0));
    let sleep = Duration::from_millis(kwargs["sleep_ms"].as_u64().unwrap_or(0));
    tokio::time::sleep(sleep.min(timeout)).await;
    if kwargs["die"] == true {
        die.notify_one();
        return;
    }
    let log = format!("Start execution: {id}\nfake log\nFinished execution: {id}\n");
    let (success, output, reason) = if sleep > timeout {
        (false, json!("Function execution timeout."), "timeout")
    } else if kwargs["oom"] == true {
        oom_kills.fetch_add(1, Ordering::SeqCst);
        (false, json!("killed"), "exception")
    } else if kwargs["fail"] == true {
        (false, json!("ValueError: asked to fail"), "exception")
    } else {
        let echo = match (&kwargs, msg["args"].get(0)) {
            (Value::Null, Some(arg)) => arg.clone(),
            (kwargs, _) => kwargs.clone(),
        };
        (true, json!({"echo": echo, "context": msg["context"]}), "ok")
    };
    send(
        &out,
        json!({"op": "result", "id": id, "success": success, "output": output,
               "duration": sleep.min(timeout).as_secs_f64(), "logs": log,
               "cpu_ms": 1, "max_rss_kb": 2048, "reason": reason}),
    )
    .await;
}

/// Packages kept in memory, by SHA-256.
#[derive(Default)]
pub struct MemoryPackages(Mutex<HashMap<String, Arc<Vec<u8>>>>);

impl MemoryPackages {
    pub fn put(&self, sha256: &str, bytes: &[u8]) {
        self.0
            .lock()
            .expect("packages lock")
            .insert(sha256.to_string(), Arc::new(bytes.to_vec()));
    }
}

#[async_trait::async_trait]
impl Packages for MemoryPackages {
    async fn get(&self, sha256: &str) -> Result<Arc<Vec<u8>>, ExecutorError> {
        self.0
            .lock()
            .expect("packages lock")
            .get(sha256)
            .cloned()
            .ok_or_else(|| {
                ExecutorError::internal(
                    "reading a package",
                    std::io::Error::other(format!("no package {sha256}")),
                )
            })
    }
}
