//! The wasm runtime as an [`Executor`]: which module of a package runs (a bare `.wasm`
//! package, or the `.wasm` a zip's entry names), compiling it when a function is created or
//! updated (an invalid module is refused with wasmtime's reason), running executions in
//! fresh instances in this process with at most as many in flight per function version as
//! a pooled function may have (`Slots`), and reporting how each ended by the runtime
//! convention: stdout is the result (JSON if it parses, else the trimmed text), stderr the
//! log, exit status 0 success.

use std::borrow::Cow;
use std::collections::HashSet;
use std::io::Read;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use qinling_executor::slots::Slots;
use qinling_executor::{
    Capacity, Definition, End as RunEnd, Executor, ExecutorError, FunctionKey, Load, Packages,
    Report as RunReport, RunRequest, Stats, WorkerInfo, framed_log,
};
use qinling_types::{Input, RuntimeKind};

use crate::{End, ExecRequest, Module, ModuleKey, Report, WasmError, WasmRuntime};

/// The first bytes of every WebAssembly binary module.
const WASM_MAGIC: &[u8] = b"\0asm";

/// The entry of a wasm function created with a raw module and no entry (it is the guest's
/// `argv[0]`).
const DEFAULT_ENTRY: &str = "main.wasm";

/// Runs wasm functions in this process.
pub struct WasmExecutor {
    runtime: WasmRuntime,
    packages: Arc<dyn Packages>,
    /// In-flight executions per function version.
    slots: Slots,
    /// The largest module a package may hold.
    max_module_bytes: u64,
    /// Runtimes registered here (they keep no workers; listed for capacity and metrics).
    runtimes: Mutex<HashSet<String>>,
}

impl WasmExecutor {
    /// `in_flight` bounds the executions of one function version that run at once (the
    /// same bound a pooled function has: its worker cap times its concurrency).
    pub fn new(
        runtime: WasmRuntime,
        packages: Arc<dyn Packages>,
        in_flight: usize,
        max_module_bytes: u64,
    ) -> WasmExecutor {
        WasmExecutor {
            runtime,
            packages,
            slots: Slots::new(in_flight),
            max_module_bytes,
            runtimes: Mutex::new(HashSet::new()),
        }
    }

    fn key(d: &Definition) -> ModuleKey {
        ModuleKey {
            package: d.package_sha256.clone(),
            entry: d.entry.clone(),
        }
    }

    /// The compiled module of `d`: from memory, else from its artefact on disk, else
    /// compiled from the package (after a restart whose wasmtime changed).
    async fn module(&self, d: &Definition) -> Result<Arc<Module>, ExecutorError> {
        let key = Self::key(d);
        if let Some(m) = self.runtime.cached(&key) {
            return Ok(m);
        }
        let runtime = self.runtime.clone();
        let probe = key.clone();
        let loaded = tokio::task::spawn_blocking(move || runtime.load(&probe))
            .await
            .map_err(|e| ExecutorError::internal("loading the wasm module", e))?;
        if let Some(m) = loaded {
            return Ok(m);
        }
        let package = self.packages.get(&key.package).await?;
        let (runtime, max) = (self.runtime.clone(), self.max_module_bytes);
        tokio::task::spawn_blocking(move || {
            let (_, bytes) = module_of(&package, Some(&key.entry), max)?;
            runtime
                .compile(&key, &bytes)
                .map_err(|e| ExecutorError::internal("compiling the wasm module", e))
        })
        .await
        .map_err(|e| ExecutorError::internal("loading the wasm module", e))?
    }
}

/// The module a wasm function runs, and the name it has in the package. A raw module is
/// itself (named `entry`); in a zip it is the member `entry` names, else the only `.wasm`
/// member. `max` bounds the unpacked size (a zip's member can claim any size).
pub(crate) fn module_of<'a>(
    package: &'a [u8],
    entry: Option<&str>,
    max: u64,
) -> Result<(String, Cow<'a, [u8]>), ExecutorError> {
    let entry = entry.filter(|e| !e.is_empty());
    if package.starts_with(WASM_MAGIC) {
        let name = entry.unwrap_or(DEFAULT_ENTRY).to_string();
        return Ok((name, Cow::Borrowed(package)));
    }
    let invalid = |m: String| ExecutorError::Invalid(m);
    let mut zip = zip::ZipArchive::new(std::io::Cursor::new(package)).map_err(|_| {
        invalid("A wasm function's package is a WebAssembly module (.wasm) or a ZIP package containing one.".into())
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
                    return Err(invalid(
                        "The package contains no WebAssembly module (.wasm).".into(),
                    ));
                }
                several => {
                    return Err(invalid(format!(
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
    let unreadable = || invalid(format!("Package entry '{name}' cannot be read."));
    let member = zip.by_name(&name).map_err(|_| unreadable())?;
    let mut bytes = Vec::new();
    member
        .take(max + 1)
        .read_to_end(&mut bytes)
        .map_err(|_| unreadable())?;
    if bytes.len() as u64 > max {
        return Err(ExecutorError::TooLarge(format!(
            "The module '{name}' is larger than the maximum of {max} bytes."
        )));
    }
    Ok((name, Cow::Owned(bytes)))
}

/// The guest's stdin: the input as JSON (an object, or the raw text as a JSON string).
fn stdin_of(input: &Input) -> Vec<u8> {
    match input {
        Input::None => Vec::new(),
        Input::Kwargs(map) => serde_json::to_vec(map).unwrap_or_default(),
        Input::Positional(raw) => {
            serde_json::to_vec(&serde_json::Value::String(raw.clone())).unwrap_or_default()
        }
    }
}

/// How a run of a module ended, by the runtime convention.
fn report_of(execution_id: &str, r: Report, timeout: Duration) -> RunReport {
    let mut log = String::from_utf8_lossy(&r.stderr).into_owned();
    if !log.is_empty() && !log.ends_with('\n') {
        log.push('\n');
    }
    if r.stderr_dropped > 0 {
        log.push_str(&format!(
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
    let (end, output, duration) = match r.end {
        _ if r.stdout_dropped > 0 => (RunEnd::OutOfResources, output, r.duration),
        End::Exit(0) => (RunEnd::Success, output, r.duration),
        End::Exit(code) => {
            let output = if output.is_null() {
                message(&format!("The function's module exited with status {code}."))
            } else {
                output
            };
            (RunEnd::Failed, output, r.duration)
        }
        End::Trap { message: m, detail } => {
            log.push_str(&format!("{m}\n"));
            if let Some(d) = detail {
                log.push_str(d.trim_end());
                log.push('\n');
            }
            (RunEnd::Failed, message(&m), r.duration)
        }
        End::Timeout => (RunEnd::Timeout, output, timeout),
        End::MemoryLimit => (RunEnd::OutOfResources, output, r.duration),
    };
    RunReport {
        end,
        output,
        logs: framed_log(execution_id, &log),
        duration,
        cpu: Some(r.cpu),
        memory_peak_kb: Some(r.memory_peak_bytes / 1024),
        cold_start: r.cold.then_some(r.instantiate),
    }
}

fn internal(what: &str, e: WasmError) -> ExecutorError {
    ExecutorError::internal(what, e)
}

#[async_trait::async_trait]
impl Executor for WasmExecutor {
    fn name(&self) -> &'static str {
        "wasm"
    }

    /// Compiles the module the function will run, so an invalid one is refused before
    /// anything is stored; returns its name in the package.
    async fn prepare(
        &self,
        _kind: RuntimeKind,
        package: Arc<Vec<u8>>,
        sha256: &str,
        entry: Option<&str>,
    ) -> Result<Option<String>, ExecutorError> {
        let (runtime, max) = (self.runtime.clone(), self.max_module_bytes);
        let (sha256, entry) = (sha256.to_string(), entry.map(str::to_string));
        let compiled = tokio::task::spawn_blocking(move || {
            let (name, bytes) = module_of(&package, entry.as_deref(), max)?;
            let key = ModuleKey {
                package: sha256,
                entry: entry.unwrap_or_else(|| name.clone()),
            };
            match runtime.compile(&key, &bytes) {
                Ok(_) => Ok(name),
                Err(WasmError::Invalid(why)) => Err(ExecutorError::Invalid(format!(
                    "The package is not a WebAssembly module Qinling can run: {why}"
                ))),
                Err(e) => Err(internal("compiling the wasm module", e)),
            }
        })
        .await
        .map_err(|e| ExecutorError::internal("compiling the wasm module", e))?;
        compiled.map(Some)
    }

    fn load(&self, key: &FunctionKey) -> Option<Load> {
        self.slots.load(key)
    }

    async fn run(&self, req: &RunRequest) -> RunReport {
        let d = &req.definition;
        let _slot = self.slots.acquire(&req.key).await;
        let module = match self.module(d).await {
            Ok(m) => m,
            Err(error) => {
                tracing::warn!(%error, execution_id = %req.execution_id(), function_id = %req.key.function_id, "wasm module cannot be loaded");
                return RunReport {
                    logs: framed_log(req.execution_id(), ""),
                    ..RunReport::ended(RunEnd::LoadFailed(error.to_string()))
                };
            }
        };
        let exec = ExecRequest {
            stdin: stdin_of(&req.input),
            args: vec![d.entry.clone()],
            // The execution's trace, as OpenTelemetry's environment carrier names it.
            env: req
                .context
                .traceparent
                .iter()
                .map(|t| ("TRACEPARENT".to_string(), t.clone()))
                .collect(),
            memory_bytes: d.memory_bytes,
            timeout: d.timeout,
            cpu_millis: Some(d.cpu_millis),
            output_limit: req.limits.log_bytes,
        };
        let report = self.runtime.execute(&module, exec).await;
        report_of(req.execution_id(), report, d.timeout)
    }

    fn add_runtime(&self, runtime_id: &str, _kind: RuntimeKind) {
        self.runtimes
            .lock()
            .expect("runtimes lock")
            .insert(runtime_id.to_string());
    }

    fn remove_runtime(&self, runtime_id: &str) {
        self.runtimes
            .lock()
            .expect("runtimes lock")
            .remove(runtime_id);
    }

    /// Nothing to start: the runtime is there, as this executor was built.
    async fn probe(&self, _kind: RuntimeKind) -> Result<(), ExecutorError> {
        Ok(())
    }

    /// A wasm runtime keeps no pre-started workers.
    fn capacity(&self, runtime_id: &str) -> Option<Capacity> {
        let runtimes = self.runtimes.lock().expect("runtimes lock");
        runtimes.contains(runtime_id).then_some(Capacity {
            total: 0,
            available: 0,
        })
    }

    /// A module gets no socket whatever the function's `network` says.
    fn network_unavailable(&self, _kind: RuntimeKind) -> Option<String> {
        None
    }

    async fn workers(&self, _function_id: &str, _version: Option<i64>) -> Vec<WorkerInfo> {
        Vec::new()
    }

    async fn scale_up(
        &self,
        _key: &FunctionKey,
        _definition: &Definition,
        _count: usize,
    ) -> Result<(), ExecutorError> {
        Ok(())
    }

    fn scale_down(&self, _key: &FunctionKey, _count: usize) {}

    fn release(&self, _function_id: &str, _version: Option<i64>) {}

    /// The compiled module leaves memory (it is loaded again from its artefact).
    fn evict(&self, definition: &Definition) {
        self.runtime.evict(&Self::key(definition));
    }

    /// Drops the package's modules from memory and removes its artefacts from disk (a
    /// directory walk, so on the blocking pool).
    async fn forget_package(&self, sha256: &str) {
        let (runtime, sha256) = (self.runtime.clone(), sha256.to_string());
        if let Err(error) = tokio::task::spawn_blocking(move || runtime.forget(&sha256)).await {
            tracing::warn!(%error, "forgetting a package's wasm artefacts failed");
        }
    }

    fn stats(&self) -> Stats {
        let runtimes = self.runtimes.lock().expect("runtimes lock");
        Stats {
            workers_per_function: Vec::new(),
            pools: runtimes.iter().map(|id| (id.clone(), 0, 0)).collect(),
        }
    }

    fn shutdown(&self) {}
}

#[cfg(test)]
mod tests {
    use std::io::Write;

    use super::*;

    /// Builds a zip from (name, content) pairs.
    fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
        let mut buf = std::io::Cursor::new(Vec::new());
        {
            let mut w = zip::ZipWriter::new(&mut buf);
            for (name, content) in files {
                w.start_file(*name, zip::write::SimpleFileOptions::default())
                    .unwrap();
                w.write_all(content.as_bytes()).unwrap();
            }
            w.finish().unwrap();
        }
        buf.into_inner()
    }

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
            Err(ExecutorError::TooLarge(_))
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
    fn reports() {
        let timeout = Duration::from_secs(5);
        let trap = End::Trap {
            message: "wasm trap: unreachable".into(),
            detail: Some("    0: main\n".into()),
        };
        let mut flood = report(End::Exit(0), "[1,", "");
        flood.stdout_dropped = 10;
        let mut noisy = report(End::Exit(0), "1", "ab");
        noisy.stderr_dropped = 5;
        let json = |v: serde_json::Value| v;
        // (report, end, output, log between the markers)
        let cases: Vec<(Report, RunEnd, serde_json::Value, &str)> = vec![
            (
                report(End::Exit(0), " {\"a\": 1}\n", "hi\n"),
                RunEnd::Success,
                json(serde_json::json!({"a": 1})),
                "hi\n",
            ),
            (
                report(End::Exit(0), "plain text\n", ""),
                RunEnd::Success,
                "plain text".into(),
                "",
            ),
            (
                report(End::Exit(0), "", "no newline"),
                RunEnd::Success,
                serde_json::Value::Null,
                "no newline\n",
            ),
            (
                report(End::Exit(3), "bad input", ""),
                RunEnd::Failed,
                "bad input".into(),
                "",
            ),
            (
                report(End::Exit(2), "", ""),
                RunEnd::Failed,
                "The function's module exited with status 2.".into(),
                "",
            ),
            (
                report(trap, "", "about to fail\n"),
                RunEnd::Failed,
                "wasm trap: unreachable".into(),
                "about to fail\nwasm trap: unreachable\n    0: main\n",
            ),
            (
                report(End::Timeout, "", "spinning\n"),
                RunEnd::Timeout,
                serde_json::Value::Null,
                "spinning\n",
            ),
            (
                report(End::MemoryLimit, "", ""),
                RunEnd::OutOfResources,
                serde_json::Value::Null,
                "",
            ),
            (flood, RunEnd::OutOfResources, "[1,".into(), ""),
            (
                noisy,
                RunEnd::Success,
                1.into(),
                "ab\n[log truncated: 5 bytes more]\n",
            ),
        ];
        for (i, (r, end, output, log)) in cases.into_iter().enumerate() {
            let timed_out = r.end == End::Timeout;
            let o = report_of("e1", r, timeout);
            assert_eq!((&o.end, &o.output), (&end, &output), "case {i}");
            assert_eq!(
                o.logs,
                format!("Start execution: e1\n{log}Finished execution: e1\n"),
                "case {i}"
            );
            assert_eq!(
                o.duration,
                if timed_out {
                    timeout
                } else {
                    Duration::from_millis(12)
                },
                "case {i}"
            );
            assert_eq!(
                (o.cpu, o.memory_peak_kb),
                (Some(Duration::from_millis(3)), Some(64)),
                "case {i}"
            );
        }
    }
}
