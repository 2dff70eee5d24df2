//! Functions of the wasm runtime, as the engine sees them: which module of a package runs
//! (a raw `.wasm` package, or the `.wasm` a zip's entry names), compiling it at function
//! create and update (an invalid module is a 400 that says why), running executions on
//! the in-process runtime (`qinling-wasm`) instead of pool workers, bounding how many run
//! at once per function version as the pool bounds workers, and mapping what a run did
//! to an [`Outcome`].

use std::borrow::Cow;
use std::collections::HashMap;
use std::io::Read;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qinling_pool::FunctionKey;
use qinling_types::{Error, Execution, ExecutionStatus, Function, Input, Outcome};
use qinling_wasm::{End, ExecRequest, Module, ModuleKey, Report, WasmError, WasmRuntime};

use crate::Engine;
use crate::executions::{FAILED_MSG, RESOURCE_MSG, TIMEOUT_MSG};

/// The first bytes of every WebAssembly binary module.
pub(crate) const WASM_MAGIC: &[u8] = b"\0asm";

/// The entry of a wasm function created with a raw module and no entry (it is the guest's
/// `argv[0]`).
pub(crate) const DEFAULT_ENTRY: &str = "main.wasm";

/// The module a wasm function runs, and the name it has in the package. A raw module is
/// itself (named `entry`); in a zip it is the member `entry` names, else the only `.wasm`
/// member. `max` bounds the unpacked size (a zip's member can claim any size).
pub(crate) fn module_of<'a>(
    package: &'a [u8],
    entry: Option<&str>,
    max: u64,
) -> Result<(String, Cow<'a, [u8]>), Error> {
    let entry = entry.filter(|e| !e.is_empty());
    if package.starts_with(WASM_MAGIC) {
        let name = entry.unwrap_or(DEFAULT_ENTRY).to_string();
        return Ok((name, Cow::Borrowed(package)));
    }
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).map_err(|_| {
        Error::input(
            "A wasm function's package is a WebAssembly module (.wasm) or a ZIP package containing one.",
        )
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(|n| n.ok().map(|n| n.into_owned()))
        .collect();
    let name = match entry.filter(|e| names.iter().any(|n| n == e)) {
        Some(e) => e.to_string(),
        None => {
            let modules: Vec<&String> = names.iter().filter(|n| n.ends_with(".wasm")).collect();
            match modules.as_slice() {
                [one] => (*one).clone(),
                [] => {
                    return Err(Error::input(
                        "The package contains no WebAssembly module (.wasm).",
                    ));
                }
                several => {
                    return Err(Error::input(format!(
                        "The package contains several WebAssembly modules ({}); name the one to run with the entry.",
                        several
                            .iter()
                            .map(|s| s.as_str())
                            .collect::<Vec<_>>()
                            .join(", ")
                    )));
                }
            }
        }
    };
    let member = zip
        .by_name(&name)
        .map_err(|_| Error::input(format!("Package entry '{name}' cannot be read.")))?;
    let mut bytes = Vec::new();
    member
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| Error::input(format!("Package entry '{name}' cannot be read.")))?;
    if bytes.len() as u64 > max {
        return Err(Error::TooLarge(format!(
            "The module '{name}' is larger than the maximum of {max} bytes."
        )));
    }
    Ok((name, Cow::Owned(bytes)))
}

impl Engine {
    pub(crate) fn wasm(&self) -> Option<&WasmRuntime> {
        self.inner.config.wasm.as_ref()
    }

    /// Compiles the module a wasm function will run (so an invalid one is refused before
    /// anything is stored) and returns its name in the package.
    pub(crate) async fn compile_wasm(
        &self,
        package: &[u8],
        package_sha256: &str,
        entry: Option<&str>,
    ) -> Result<String, Error> {
        let wasm = self
            .wasm()
            .ok_or_else(|| Error::Conflict("The wasm runtime is not available.".into()))?
            .clone();
        let (name, bytes) = module_of(package, entry, self.inner.config.max_package_bytes)?;
        let key = ModuleKey {
            package: package_sha256.to_string(),
            entry: entry.filter(|e| !e.is_empty()).unwrap_or(&name).to_string(),
        };
        let bytes = bytes.into_owned();
        let compiled = tokio::task::spawn_blocking(move || wasm.compile(&key, &bytes))
            .await
            .map_err(|e| Error::internal("compiling the wasm module", e))?;
        match compiled {
            Ok(_) => Ok(name),
            Err(WasmError::Invalid(why)) => Err(Error::input(format!(
                "The package is not a WebAssembly module Qinling can run: {why}"
            ))),
            Err(e) => Err(Error::internal("compiling the wasm module", e)),
        }
    }

    /// The compiled module of `function`: from memory, else from its artefact on disk,
    /// else compiled from the package (after a restart whose wasmtime changed).
    async fn wasm_module(
        &self,
        wasm: &WasmRuntime,
        function: &Function,
    ) -> Result<Arc<Module>, Error> {
        let key = ModuleKey {
            package: function.package_sha256.clone(),
            entry: function.entry_or_default().to_string(),
        };
        if let Some(m) = wasm.cached(&key) {
            return Ok(m);
        }
        let packages = self.inner.packages.clone();
        let max = self.inner.config.max_package_bytes;
        let wasm = wasm.clone();
        let loaded = tokio::task::spawn_blocking(move || {
            if let Some(m) = wasm.load(&key) {
                return Ok(m);
            }
            let package = packages.get(&key.package)?;
            let (_, bytes) = module_of(&package, Some(&key.entry), max)?;
            wasm.compile(&key, &bytes)
                .map_err(|e| Error::internal("compiling the wasm module", e))
        });
        loaded
            .await
            .map_err(|e| Error::internal("loading the wasm module", e))?
    }

    /// Runs one execution of a wasm function in this process. Never fails: every problem
    /// becomes an outcome the user can read.
    pub(crate) async fn run_wasm(&self, execution: &Execution, function: &Function) -> Outcome {
        let Some(wasm) = self.wasm() else {
            tracing::error!(execution_id = %execution.id, "a wasm execution on a server without the wasm runtime");
            return Outcome::error(ExecutionStatus::Error, FAILED_MSG);
        };
        let key = FunctionKey {
            function_id: function.id.clone(),
            version: execution.function_version,
        };
        let _slot = self.inner.wasm_slots.acquire(&key, self.wasm_limit()).await;
        let module = match self.wasm_module(wasm, function).await {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, execution_id = %execution.id, function_id = %function.id, "wasm module cannot be loaded");
                return Outcome {
                    logs: format!(
                        "Start execution: {id}\nFinished execution: {id}\n",
                        id = execution.id
                    ),
                    ..Outcome::error(
                        ExecutionStatus::Failed,
                        &format!(
                            "Failed to load function {}: {error}",
                            function.entry_or_default()
                        ),
                    )
                };
            }
        };
        let stdin = match execution.parsed_input() {
            Input::None => Vec::new(),
            Input::Kwargs(map) => serde_json::to_vec(&map).unwrap_or_default(),
            Input::Positional(raw) => {
                serde_json::to_vec(&serde_json::Value::String(raw)).unwrap_or_default()
            }
        };
        let timeout = Duration::from_secs(function.timeout as u64);
        let req = ExecRequest {
            stdin,
            args: vec![function.entry_or_default().to_string()],
            memory_bytes: function.memory_size,
            timeout,
            cpu_millis: Some(function.cpu),
            output_limit: self.inner.config.log_limit,
        };
        let report = wasm.execute(&module, req).await;
        if report.cold {
            let runtime = function.runtime_id.as_deref().unwrap_or_default();
            self.metrics().cold_start(runtime, report.instantiate);
        }
        outcome_of(&execution.id, report, timeout)
    }

    /// In-flight executions one wasm function version may have: the same bound as a
    /// pooled function's (its worker cap times `function_concurrency`).
    fn wasm_limit(&self) -> Limit {
        let cfg = self.inner.pool.config();
        Limit {
            running: (cfg.max_workers_per_function * cfg.function_concurrency).max(1),
            waiting: cfg.max_waiting_per_function,
        }
    }

    /// Refuses a sync execution of a wasm function version that runs as many executions as
    /// it may with as many waiting; `None` admits it.
    pub(crate) fn wasm_saturated(&self, key: &FunctionKey) -> Option<Error> {
        let limit = self.wasm_limit();
        let (running, waiting) = self.inner.wasm_slots.load(key)?;
        (running >= limit.running && waiting >= limit.waiting).then(|| {
            Error::TooMany(format!(
                "Function {} is at its concurrency limit: {running} executions run and {waiting} more are waiting. Retry later, or run it asynchronously.",
                key.function_id
            ))
        })
    }

    /// Forgets a removed package's compiled modules, in memory and on disk.
    pub(crate) fn forget_wasm(&self, package_sha256: &str) {
        if let Some(wasm) = self.wasm() {
            wasm.forget(package_sha256);
        }
    }
}

/// Maps a run to an outcome, as the custom runtime does with a process: stdout is the
/// result (JSON if it parses, else the trimmed text; nothing is `null`), stderr the log
/// between the markers, exit status 0 success.
fn outcome_of(execution_id: &str, r: Report, timeout: Duration) -> Outcome {
    let mut logs = format!("Start execution: {execution_id}\n");
    logs.push_str(&String::from_utf8_lossy(&r.stderr));
    if !logs.ends_with('\n') {
        logs.push('\n');
    }
    if r.stderr_dropped > 0 {
        logs.push_str(&format!(
            "[log truncated: {} bytes more]\n",
            r.stderr_dropped
        ));
    }
    let text = String::from_utf8_lossy(&r.stdout);
    let text = text.trim();
    let output = if text.is_empty() {
        serde_json::Value::Null
    } else {
        serde_json::from_str(text).unwrap_or_else(|_| serde_json::Value::String(text.to_string()))
    };
    let message = |m: &str| serde_json::Value::String(m.to_string());
    let (status, output, duration) = match r.end {
        _ if r.stdout_dropped > 0 => (ExecutionStatus::Failed, message(RESOURCE_MSG), r.duration),
        End::Exit(0) => (ExecutionStatus::Success, output, r.duration),
        End::Exit(code) => {
            let output = if output.is_null() {
                message(&format!("The function's module exited with status {code}."))
            } else {
                output
            };
            (ExecutionStatus::Failed, output, r.duration)
        }
        End::Trap { message: m, detail } => {
            logs.push_str(&format!("{m}\n"));
            if let Some(d) = detail {
                logs.push_str(d.trim_end());
                logs.push('\n');
            }
            (ExecutionStatus::Failed, message(&m), r.duration)
        }
        End::Timeout => (ExecutionStatus::Failed, message(TIMEOUT_MSG), timeout),
        End::MemoryLimit => (ExecutionStatus::Failed, message(RESOURCE_MSG), r.duration),
    };
    logs.push_str(&format!("Finished execution: {execution_id}\n"));
    Outcome {
        status,
        output,
        duration: duration.as_secs_f64(),
        logs,
        cpu_ms: Some(r.cpu.as_millis() as u64),
        memory_peak_kb: Some(r.memory_peak_bytes / 1024),
    }
}

/// How many executions of one function version may run, and wait, at once.
#[derive(Debug, Clone, Copy)]
pub(crate) struct Limit {
    running: usize,
    waiting: usize,
}

/// Most function versions tracked; past it, idle ones are dropped.
const MAX_TRACKED: usize = 10_000;

/// In-flight wasm executions per function version: the stand-in for the pool's workers,
/// so the concurrency limit and the 429 hold for wasm functions too.
#[derive(Default)]
pub(crate) struct Slots(Mutex<HashMap<FunctionKey, Arc<Slot>>>);

struct Slot {
    /// One permit per execution that may run; waiters queue in order.
    permits: Arc<tokio::sync::Semaphore>,
    limit: usize,
    waiting: AtomicUsize,
}

/// One execution's claim on a slot of its function version; dropping it frees the slot.
pub(crate) struct SlotGuard {
    _permit: tokio::sync::OwnedSemaphorePermit,
    _slot: Arc<Slot>,
}

/// Counts a waiting execution for as long as it waits (also when it is cancelled).
struct Waiting<'a>(&'a AtomicUsize);

impl Drop for Waiting<'_> {
    fn drop(&mut self) {
        self.0.fetch_sub(1, Ordering::SeqCst);
    }
}

impl Slots {
    /// Running and waiting executions of `key`, if it has had any.
    fn load(&self, key: &FunctionKey) -> Option<(usize, usize)> {
        let map = self.0.lock().expect("wasm slots lock");
        let s = map.get(key)?;
        let running = s.limit.saturating_sub(s.permits.available_permits());
        Some((running, s.waiting.load(Ordering::SeqCst)))
    }

    /// Waits until `key` runs fewer than `limit.running` executions and claims a slot.
    async fn acquire(&self, key: &FunctionKey, limit: Limit) -> SlotGuard {
        let slot = {
            let mut map = self.0.lock().expect("wasm slots lock");
            if map.len() >= MAX_TRACKED && !map.contains_key(key) {
                map.retain(|_, s| Arc::strong_count(s) > 1);
            }
            map.entry(key.clone())
                .or_insert_with(|| {
                    Arc::new(Slot {
                        permits: Arc::new(tokio::sync::Semaphore::new(limit.running)),
                        limit: limit.running,
                        waiting: AtomicUsize::new(0),
                    })
                })
                .clone()
        };
        slot.waiting.fetch_add(1, Ordering::SeqCst);
        let waiting = Waiting(&slot.waiting);
        let permit = slot
            .permits
            .clone()
            .acquire_owned()
            .await
            .expect("wasm slot semaphores are never closed");
        drop(waiting);
        SlotGuard {
            _permit: permit,
            _slot: slot,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::packages::tests::zip_of;

    #[test]
    fn which_module_runs() {
        let raw = b"\0asm\x01\0\0\0".to_vec();
        let one = zip_of(&[("hello.wasm", "\0asm1"), ("README", "x")]);
        let two = zip_of(&[("a.wasm", "\0asmA"), ("b/b.wasm", "\0asmB")]);
        let none = zip_of(&[("hello.py", "x")]);
        // (package, entry, name and bytes or error)
        type Case<'a> = (
            &'a [u8],
            Option<&'a str>,
            Result<(&'a str, &'a [u8]), &'a str>,
        );
        let cases: Vec<Case> = vec![
            (&raw, None, Ok(("main.wasm", &raw))),
            (&raw, Some("tool.wasm"), Ok(("tool.wasm", &raw))),
            (&one, None, Ok(("hello.wasm", b"\0asm1"))),
            (&one, Some("main.main"), Ok(("hello.wasm", b"\0asm1"))),
            (&two, Some("b/b.wasm"), Ok(("b/b.wasm", b"\0asmB"))),
            (
                &two,
                None,
                Err(
                    "The package contains several WebAssembly modules (a.wasm, b/b.wasm); name the one to run with the entry.",
                ),
            ),
            (
                &none,
                None,
                Err("The package contains no WebAssembly module (.wasm)."),
            ),
            (
                b"hello",
                None,
                Err(
                    "A wasm function's package is a WebAssembly module (.wasm) or a ZIP package containing one.",
                ),
            ),
        ];
        for (i, (package, entry, expect)) in cases.into_iter().enumerate() {
            let got = module_of(package, entry, 1024)
                .map(|(n, b)| (n, b.into_owned()))
                .map_err(|e| e.to_string());
            let expect = expect
                .map(|(n, b)| (n.to_string(), b.to_vec()))
                .map_err(str::to_string);
            assert_eq!(got, expect, "case {i}");
        }
        let big = zip_of(&[("big.wasm", &"x".repeat(2000))]);
        assert!(matches!(
            module_of(&big, None, 1024),
            Err(Error::TooLarge(_))
        ));
    }

    fn report(end: End, stdout: &str, stderr: &str) -> Report {
        Report {
            end,
            stdout: stdout.as_bytes().to_vec(),
            stderr: stderr.as_bytes().to_vec(),
            stdout_dropped: 0,
            stderr_dropped: 0,
            duration: Duration::from_millis(12),
            cpu: Duration::from_millis(3),
            memory_peak_bytes: 65536,
            cold: false,
            instantiate: Duration::ZERO,
        }
    }

    #[test]
    fn outcomes() {
        let timeout = Duration::from_secs(5);
        let trap = End::Trap {
            message: "wasm trap: unreachable".into(),
            detail: Some("    0: main\n".into()),
        };
        let mut flood = report(End::Exit(0), "[1,", "");
        flood.stdout_dropped = 10;
        let mut noisy = report(End::Exit(0), "1", "ab");
        noisy.stderr_dropped = 5;
        // (report, status, output, log between the markers)
        let cases: Vec<(Report, ExecutionStatus, serde_json::Value, &str)> = vec![
            (
                report(End::Exit(0), " {\"a\": 1}\n", "hi\n"),
                ExecutionStatus::Success,
                serde_json::json!({"a": 1}),
                "hi\n",
            ),
            (
                report(End::Exit(0), "plain text\n", ""),
                ExecutionStatus::Success,
                "plain text".into(),
                "",
            ),
            (
                report(End::Exit(0), "", "no newline"),
                ExecutionStatus::Success,
                serde_json::Value::Null,
                "no newline\n",
            ),
            (
                report(End::Exit(3), "bad input", ""),
                ExecutionStatus::Failed,
                "bad input".into(),
                "",
            ),
            (
                report(End::Exit(2), "", ""),
                ExecutionStatus::Failed,
                "The function's module exited with status 2.".into(),
                "",
            ),
            (
                report(trap, "", "about to fail\n"),
                ExecutionStatus::Failed,
                "wasm trap: unreachable".into(),
                "about to fail\nwasm trap: unreachable\n    0: main\n",
            ),
            (
                report(End::Timeout, "", "spinning\n"),
                ExecutionStatus::Failed,
                TIMEOUT_MSG.into(),
                "spinning\n",
            ),
            (
                report(End::MemoryLimit, "", ""),
                ExecutionStatus::Failed,
                RESOURCE_MSG.into(),
                "",
            ),
            (flood, ExecutionStatus::Failed, RESOURCE_MSG.into(), ""),
            (
                noisy,
                ExecutionStatus::Success,
                1.into(),
                "ab\n[log truncated: 5 bytes more]\n",
            ),
        ];
        for (i, (r, status, output, log)) in cases.into_iter().enumerate() {
            let timed_out = r.end == End::Timeout;
            let o = outcome_of("e1", r, timeout);
            assert_eq!((o.status, &o.output), (status, &output), "case {i}");
            assert_eq!(
                o.logs,
                format!("Start execution: e1\n{log}Finished execution: e1\n"),
                "case {i}"
            );
            assert_eq!(o.duration, if timed_out { 5.0 } else { 0.012 }, "case {i}");
            assert_eq!(
                (o.cpu_ms, o.memory_peak_kb),
                (Some(3), Some(64)),
                "case {i}"
            );
        }
    }

    #[tokio::test]
    async fn slots_bound_running_executions() {
        let slots = Arc::new(Slots::default());
        let key = FunctionKey {
            function_id: "f".into(),
            version: 0,
        };
        let limit = Limit {
            running: 2,
            waiting: 1,
        };
        assert_eq!(slots.load(&key), None);
        let a = slots.acquire(&key, limit).await;
        let _b = slots.acquire(&key, limit).await;
        assert_eq!(slots.load(&key), Some((2, 0)));
        let waiter = {
            let slots = slots.clone();
            let key = key.clone();
            tokio::spawn(async move { slots.acquire(&key, limit).await })
        };
        while slots.load(&key) != Some((2, 1)) {
            tokio::task::yield_now().await;
        }
        drop(a);
        let _c = tokio::time::timeout(Duration::from_secs(5), waiter)
            .await
            .expect("the waiter got the freed slot")
            .unwrap();
        assert_eq!(slots.load(&key), Some((2, 0)));
    }
}
