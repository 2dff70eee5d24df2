//! `qinling run PATH`: a function run on this machine without a server — the same engine,
//! executors, sandbox, shims and limits as `qinling serve` (built by `serve::executors`),
//! on a throwaway SQLite database in a temporary folder. The result goes to stdout, the log to
//! stderr, and the exit code says how it ended (0 success, 1 failed, 124 timeout, 2 the run
//! could not start, 130 interrupted). `--watch` runs again when the files change, `--serve PORT` answers HTTP
//! requests with the function, `--debug` (python3) and `--inspect` (nodejs) run the handler
//! outside the sandbox under the language's debugger.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use anyhow::{Context, bail};
use clap::Args;
use qinling_cli::function::Limits;
use qinling_cli::package::{Package, folder_files, guess_entry, guess_runtime};
use qinling_cli::project::{MANIFEST, Manifest};
use qinling_engine::{CreateExecution, CreateFunction, Engine, ExecutionTarget, UpdateFunction};
use qinling_executor::Packages;
use qinling_types::{Execution, ExecutionStatus, FunctionId, RequestContext, RuntimeStatus};

use crate::serve::{self, Config};

#[derive(Debug, Args)]
pub struct RunArgs {
    /// A source file (hello.py, hello.js), an executable (custom), a .wasm module, a zip, or a
    /// function folder (with a qinling.toml, or a main.py / index.js / handler).
    pub path: PathBuf,
    /// The runtime (default: guessed from the path, or the folder's qinling.toml).
    #[arg(long, value_parser = ["python3", "nodejs", "custom", "wasm"])]
    pub runtime: Option<String>,
    /// `module.function` (default: from the file name, `hello.py` → `hello.main`).
    #[arg(long)]
    pub entry: Option<String>,
    /// The input (`-`: standard input, `@FILE`: a file): a JSON object becomes keyword
    /// arguments, anything else one argument.
    #[arg(long, value_parser = qinling_cli::input_arg)]
    pub input: Option<String>,
    #[command(flatten)]
    pub limits: Limits,
    /// Run again whenever the files change (Ctrl-C to stop).
    #[arg(long)]
    pub watch: bool,
    /// Answer HTTP requests on 127.0.0.1:PORT instead of running once: a request's body is
    /// the input, the response the result (200, 500 failed, 504 timeout).
    #[arg(long, value_name = "PORT")]
    pub serve: Option<u16>,
    /// python3: run the handler outside the sandbox and stop in pdb on an exception.
    #[arg(long, conflicts_with_all = ["inspect", "serve", "watch"])]
    pub debug: bool,
    /// nodejs: run the handler outside the sandbox under `node --inspect-brk` and say how to
    /// attach a debugger.
    #[arg(long, conflicts_with_all = ["debug", "serve", "watch"])]
    pub inspect: bool,
    /// Run as a plain process of your user, without the sandbox (when this machine cannot
    /// give one: no root and no user namespaces).
    #[arg(long, env = "QINLING_INSECURE_NO_SANDBOX")]
    pub insecure_no_sandbox: bool,
    /// The python3 interpreter.
    #[arg(long, env = "QINLING_PYTHON", default_value = "python3")]
    pub python: PathBuf,
    /// The node executable.
    #[arg(long, env = "QINLING_NODE", default_value = "node")]
    pub node: PathBuf,
}

/// Exit codes besides 0 (success).
const FAILED: u8 = 1;
const CANNOT_RUN: u8 = 2;
const TIMED_OUT: u8 = 124;
/// 128 + SIGINT, as shells report an interrupted command.
const INTERRUPTED: u8 = 130;

pub fn main(args: RunArgs) -> ExitCode {
    init_logging();
    let rt = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
        Ok(rt) => rt,
        Err(error) => {
            eprintln!("qinling run: cannot start the async runtime: {error}");
            return ExitCode::from(CANNOT_RUN);
        }
    };
    match rt.block_on(run(args)) {
        Ok(code) => ExitCode::from(code),
        Err(error) => {
            eprintln!("qinling run: {error:#}");
            ExitCode::from(CANNOT_RUN)
        }
    }
}

/// Warnings and errors only (`QINLING_LOG` overrides): stderr is the function's log here.
fn init_logging() {
    let filter = tracing_subscriber::EnvFilter::try_from_env("QINLING_LOG")
        .unwrap_or_else(|_| "warn".into());
    tracing_subscriber::fmt()
        .with_env_filter(filter)
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
}

/// What runs: the path's runtime, entry and limits (flags over the manifest over guesses).
#[derive(Debug, Clone)]
struct Spec {
    path: PathBuf,
    name: String,
    runtime: String,
    entry: Option<String>,
    manifest: Option<Manifest>,
    cpu: Option<u64>,
    memory_size: Option<u64>,
    timeout: Option<u64>,
    network: Option<bool>,
    execution_mode: Option<String>,
}

impl Spec {
    fn of(args: &RunArgs) -> anyhow::Result<Spec> {
        let path = &args.path;
        if !path.exists() {
            bail!("{} does not exist", path.display());
        }
        let manifest = if path.is_dir() && path.join(MANIFEST).is_file() {
            Some(Manifest::load(path)?)
        } else {
            None
        };
        let m = manifest.clone().unwrap_or_default();
        let runtime = args
            .runtime
            .clone()
            .or_else(|| manifest.as_ref().map(|m| m.runtime.clone()))
            .or_else(|| guess_runtime(path).map(str::to_string))
            .with_context(|| {
                format!(
                    "cannot tell the runtime of {}: pass --runtime python3|nodejs|custom|wasm",
                    path.display()
                )
            })?;
        let entry = args
            .entry
            .clone()
            .or(m.entry.clone())
            .or_else(|| guess_entry(path));
        let name = if m.name.is_empty() {
            let stem = path
                .canonicalize()
                .ok()
                .and_then(|p| p.file_stem().map(|s| s.to_string_lossy().into_owned()))
                .unwrap_or_else(|| "function".into());
            stem.chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() || c == '-' || c == '_' {
                        c
                    } else {
                        '_'
                    }
                })
                .collect()
        } else {
            m.name.clone()
        };
        Ok(Spec {
            path: path.clone(),
            name,
            runtime,
            entry,
            cpu: args.limits.cpu.or(m.cpu),
            memory_size: args.limits.memory_size.or(m.memory_size),
            timeout: args.limits.timeout.or(m.timeout),
            network: args.limits.network.or(m.network),
            execution_mode: args
                .limits
                .execution_mode
                .clone()
                .or(m.execution_mode.clone()),
            manifest,
        })
    }

    /// The package, built afresh from the files.
    fn package(&self) -> anyhow::Result<Vec<u8>> {
        let package = match &self.manifest {
            Some(manifest) => manifest.package(&self.path)?,
            None => Package::from_path(&self.path)?,
        };
        Ok(package.data)
    }

    /// What changes when the files change: each file's path, size and time.
    fn fingerprint(&self) -> Vec<(PathBuf, u64, Option<SystemTime>)> {
        let files = if self.path.is_dir() {
            let mut files = folder_files(&self.path)
                .unwrap_or_default()
                .into_iter()
                .map(|f| self.path.join(f))
                .collect::<Vec<_>>();
            if let Some(package) = self.manifest.as_ref().and_then(|m| m.package.as_ref()) {
                files.push(self.path.join(package));
            }
            files
        } else {
            vec![self.path.clone()]
        };
        files
            .into_iter()
            .map(|f| {
                let meta = std::fs::metadata(&f).ok();
                let size = meta.as_ref().map_or(0, |m| m.len());
                let time = meta.and_then(|m| m.modified().ok());
                (f, size, time)
            })
            .collect()
    }
}

/// The platform in this process, holding one function.
struct Local {
    engine: Engine,
    function: FunctionId,
    ctx: RequestContext,
    _data_dir: tempfile::TempDir,
}

impl Local {
    async fn start(args: &RunArgs, spec: &Spec) -> anyhow::Result<Local> {
        let data_dir = tempfile::Builder::new()
            .prefix("qinling-run-")
            .tempdir()
            .context("creating a temporary data directory")?;
        let cfg = Config {
            data_dir: data_dir.path().to_path_buf(),
            pool_size: 0,
            python: args.python.clone(),
            node: args.node.clone(),
            insecure_no_sandbox: args.insecure_no_sandbox,
            ..Config::default()
        };
        let sandbox = serve::choose_sandbox(&cfg)?;
        let store = qinling_store::Store::connect(&cfg.database()?)
            .await
            .context("opening the scratch database")?;
        let packages = qinling_engine::PackageStore::open(&cfg.data_dir.join("packages"))
            .context("opening the package directory")?;
        let package_source: Arc<dyn Packages> = Arc::new(packages.clone());
        let executors = serve::executors(&cfg, sandbox, package_source)?;
        let engine = Engine::start_with_queue(
            store,
            Arc::new(executors),
            packages,
            cfg.engine_config("local".into(), "local".into()),
            qinling_engine::LocalQueue::new(),
        )
        .await?;
        let ctx = RequestContext::unauthenticated("req-local".into());
        let runtime = engine
            .list_runtimes(&ctx)
            .await?
            .into_iter()
            .find(|r| r.name.as_deref() == Some(spec.runtime.as_str()))
            .with_context(|| format!("no runtime named {}", spec.runtime))?;
        if runtime.status != RuntimeStatus::Available {
            // SAFETY: geteuid has no preconditions.
            let root = unsafe { libc::geteuid() } == 0;
            let hint = match spec.runtime.as_str() {
                _ if !root && !args.insecure_no_sandbox => {
                    " (the error above says why: without root the sandbox needs user namespaces and a delegated cgroup; --insecure-no-sandbox runs your own code without isolation)"
                }
                "nodejs" => " (is `node` installed? --node or QINLING_NODE names it)",
                "python3" | "custom" => " (--python or QINLING_PYTHON names the interpreter)",
                _ => "",
            };
            bail!("the {} runtime is not available here{hint}", spec.runtime);
        }
        let text = |v: Option<u64>| v.map(|v| v.to_string());
        let function = engine
            .create_function(
                &ctx,
                CreateFunction {
                    name: Some(spec.name.clone()),
                    runtime_id: Some(runtime.id),
                    entry: spec.entry.clone(),
                    cpu: text(spec.cpu),
                    memory_size: text(spec.memory_size),
                    timeout: text(spec.timeout),
                    network: spec.network.map(|n| n.to_string()),
                    execution_mode: spec.execution_mode.clone(),
                    package: Some(spec.package()?),
                    ..CreateFunction::default()
                },
            )
            .await?;
        Ok(Local {
            engine,
            function: function.id,
            ctx,
            _data_dir: data_dir,
        })
    }

    async fn invoke(&self, input: Option<String>) -> anyhow::Result<Execution> {
        Ok(self
            .engine
            .create_execution(
                &self.ctx,
                CreateExecution {
                    target: ExecutionTarget::Function {
                        id: self.function.clone(),
                        version: 0,
                    },
                    description: None,
                    sync: true,
                    input,
                    trace: None,
                },
            )
            .await?)
    }

    async fn reload(&self, spec: &Spec) -> anyhow::Result<()> {
        self.engine
            .update_function(
                &self.ctx,
                &self.function,
                UpdateFunction {
                    package: Some(spec.package()?),
                    ..UpdateFunction::default()
                },
            )
            .await?;
        Ok(())
    }

    async fn stop(self) {
        self.engine.shutdown(Duration::from_secs(1)).await;
    }
}

/// How an execution ended, as this command reports it.
struct Ended {
    code: u8,
    /// The function's output as text (a JSON string's text, any other JSON value as JSON).
    output: String,
}

fn ended(execution: &Execution) -> Ended {
    let result: serde_json::Value = execution
        .result
        .as_deref()
        .and_then(|r| serde_json::from_str(r).ok())
        .unwrap_or_default();
    let output = match result.get("output") {
        Some(serde_json::Value::String(s)) => s.clone(),
        Some(serde_json::Value::Null) | None => String::new(),
        Some(other) => other.to_string(),
    };
    let code = match execution.status {
        ExecutionStatus::Success => 0,
        _ if output == "Function execution timeout." => TIMED_OUT,
        _ => FAILED,
    };
    Ended { code, output }
}

/// The log on stderr, the output on stdout (and on stderr too when it is an error message).
fn report(execution: &Execution) -> u8 {
    if let Some(log) = execution.logs.as_deref().filter(|l| !l.is_empty()) {
        eprint!("{log}");
        if !log.ends_with('\n') {
            eprintln!();
        }
    }
    let ended = ended(execution);
    if ended.code == 0 {
        println!("{}", ended.output);
    } else {
        eprintln!(
            "qinling run: {}: {}",
            execution.status.as_str(),
            ended.output
        );
    }
    ended.code
}

async fn run(args: RunArgs) -> anyhow::Result<u8> {
    let spec = Spec::of(&args)?;
    if args.debug || args.inspect {
        return debug(&args, &spec).await;
    }
    let local = Local::start(&args, &spec).await?;
    let code = if let Some(port) = args.serve {
        let served = serve_http(&local, &spec, port, args.watch).await;
        local.stop().await;
        served?;
        0
    } else if args.watch {
        watch(&local, &spec, args.input.clone()).await;
        local.stop().await;
        0
    } else {
        // Ctrl-C stops the run and cleans up (workers, the temporary data directory).
        let execution = tokio::select! {
            execution = local.invoke(args.input.clone()) => Some(execution),
            _ = tokio::signal::ctrl_c() => None,
        };
        local.stop().await;
        match execution {
            Some(execution) => report(&execution?),
            None => {
                eprintln!("qinling run: interrupted");
                INTERRUPTED
            }
        }
    };
    Ok(code)
}

/// Runs, then again on every change, until Ctrl-C.
async fn watch(local: &Local, spec: &Spec, input: Option<String>) {
    let mut seen = spec.fingerprint();
    let once = async {
        match local.invoke(input.clone()).await {
            Ok(execution) => {
                report(&execution);
            }
            Err(error) => eprintln!("qinling run: {error:#}"),
        }
        eprintln!(
            "qinling run: watching {} (Ctrl-C to stop)",
            spec.path.display()
        );
    };
    tokio::select! {
        () = once => {}
        _ = tokio::signal::ctrl_c() => return,
    }
    let changes = async {
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = spec.fingerprint();
            if now == seen {
                continue;
            }
            seen = now;
            eprintln!(
                "qinling run: {} changed; running again",
                spec.path.display()
            );
            match local.reload(spec).await {
                Ok(()) => match local.invoke(input.clone()).await {
                    Ok(execution) => {
                        report(&execution);
                    }
                    Err(error) => eprintln!("qinling run: {error:#}"),
                },
                Err(error) => eprintln!("qinling run: {error:#}"),
            }
        }
    };
    tokio::select! {
        () = changes => {}
        _ = tokio::signal::ctrl_c() => {}
    }
}

/// `--serve PORT`: every request's body is an input; the response is the result.
async fn serve_http(local: &Local, spec: &Spec, port: u16, watch: bool) -> anyhow::Result<()> {
    use axum::http::{HeaderValue, StatusCode};
    use axum::response::IntoResponse;
    let addr = SocketAddr::from(([127, 0, 0, 1], port));
    let listener = tokio::net::TcpListener::bind(addr)
        .await
        .with_context(|| format!("listening on {addr}"))?;
    let engine_side = Arc::new((
        local.engine.clone(),
        local.function.clone(),
        local.ctx.clone(),
    ));
    let app = axum::Router::new().fallback(move |body: axum::body::Bytes| {
        let side = engine_side.clone();
        async move {
            let input = String::from_utf8_lossy(&body).trim().to_string();
            let input = (!input.is_empty()).then_some(input);
            let (engine, function, ctx) = &*side;
            let created = engine
                .create_execution(
                    ctx,
                    CreateExecution {
                        target: ExecutionTarget::Function {
                            id: function.clone(),
                            version: 0,
                        },
                        description: None,
                        sync: true,
                        input,
                        trace: None,
                    },
                )
                .await;
            let execution = match created {
                Ok(execution) => execution,
                Err(error) => {
                    return (StatusCode::BAD_REQUEST, format!("{error}\n")).into_response();
                }
            };
            if let Some(log) = execution.logs.as_deref() {
                eprint!("{log}");
            }
            let ended = ended(&execution);
            let status = match ended.code {
                0 => StatusCode::OK,
                TIMED_OUT => StatusCode::GATEWAY_TIMEOUT,
                _ => StatusCode::INTERNAL_SERVER_ERROR,
            };
            let json = serde_json::from_str::<serde_json::Value>(&ended.output).is_ok();
            let mut response = (status, ended.output).into_response();
            let headers = response.headers_mut();
            if json {
                headers.insert("content-type", HeaderValue::from_static("application/json"));
            }
            if let Ok(id) = HeaderValue::from_str(execution.id.as_str()) {
                headers.insert("x-qinling-execution-id", id);
            }
            response
        }
    });
    eprintln!(
        "qinling run: serving {} on http://{} (the request body is the input; Ctrl-C to stop)",
        spec.path.display(),
        listener.local_addr()?
    );
    let server = axum::serve(listener, app).with_graceful_shutdown(async {
        let _ = tokio::signal::ctrl_c().await;
    });
    if !watch {
        return Ok(server.await?);
    }
    let reloads = async {
        let mut seen = spec.fingerprint();
        loop {
            tokio::time::sleep(Duration::from_millis(250)).await;
            let now = spec.fingerprint();
            if now != seen {
                seen = now;
                match local.reload(spec).await {
                    Ok(()) => eprintln!("qinling run: {} changed; reloaded", spec.path.display()),
                    Err(error) => eprintln!("qinling run: {error:#}"),
                }
            }
        }
    };
    tokio::select! {
        served = server => Ok(served?),
        () = reloads => Ok(()),
    }
}

/// `--debug` / `--inspect`: the handler in the language's debugger, outside the sandbox (a
/// debugger needs your terminal and your processes), as your user.
async fn debug(args: &RunArgs, spec: &Spec) -> anyhow::Result<u8> {
    let (root, _unpacked) = source_root(spec)?;
    // Absolute, so `require` takes it as a path and not a package name.
    let root = root
        .canonicalize()
        .with_context(|| format!("cannot read {}", root.display()))?;
    let entry = spec
        .entry
        .clone()
        .with_context(|| "no entry: pass --entry module.function".to_string())?;
    let (module, function) = entry
        .rsplit_once('.')
        .with_context(|| format!("the entry {entry} is not module.function"))?;
    let input = args.input.clone().unwrap_or_default();
    eprintln!("qinling run: debugging {entry} OUTSIDE the sandbox, as your user (no limits apply)");
    let mut command = match (spec.runtime.as_str(), args.debug) {
        ("python3", true) => {
            #[expect(
                clippy::disallowed_methods,
                reason = "a debugger runs outside the sandbox, on the developer's terminal"
            )]
            let mut c = tokio::process::Command::new(&args.python);
            c.arg("-c").arg(PY_DEBUG);
            c
        }
        ("nodejs", false) => {
            #[expect(
                clippy::disallowed_methods,
                reason = "a debugger runs outside the sandbox, on the developer's terminal"
            )]
            let mut c = tokio::process::Command::new(&args.node);
            c.arg("--inspect-brk=127.0.0.1:9229")
                .arg("-e")
                .arg(NODE_DEBUG);
            eprintln!(
                "qinling run: attach a debugger to 127.0.0.1:9229 (chrome://inspect, VS Code's \"Attach\", or `node inspect 127.0.0.1:9229`); it waits for one before the first line"
            );
            c
        }
        (runtime, true) => {
            bail!("--debug is for python3 functions (this one is {runtime}; nodejs has --inspect)")
        }
        (runtime, false) => {
            bail!("--inspect is for nodejs functions (this one is {runtime}; python3 has --debug)")
        }
    };
    command
        .env("QINLING_DEBUG_ROOT", &root)
        .env("QINLING_DEBUG_MODULE", module)
        .env("QINLING_DEBUG_FUNCTION", function)
        .env("QINLING_DEBUG_INPUT", input)
        .current_dir(&root);
    let status = command
        .status()
        .await
        .with_context(|| format!("starting {}", spec.runtime))?;
    Ok(if status.success() { 0 } else { FAILED })
}

/// The folder the handler's source is in: the path's folder, or a zip unpacked.
fn source_root(spec: &Spec) -> anyhow::Result<(PathBuf, Option<tempfile::TempDir>)> {
    let path = &spec.path;
    if path.is_dir() {
        return Ok((path.clone(), None));
    }
    let data = std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))?;
    if data.starts_with(b"PK") {
        let dir = tempfile::tempdir()?;
        zip::ZipArchive::new(std::io::Cursor::new(data))?
            .extract(dir.path())
            .context("unpacking the zip")?;
        return Ok((dir.path().to_path_buf(), Some(dir)));
    }
    let parent = path
        .parent()
        .filter(|p| !p.as_os_str().is_empty())
        .unwrap_or(Path::new("."));
    Ok((parent.to_path_buf(), None))
}

/// The python3 debug driver: the input as the platform passes it (a JSON object as keyword
/// arguments, anything else as one argument), pdb's post-mortem on an exception.
const PY_DEBUG: &str = r#"
import importlib, json, os, pdb, sys, traceback
sys.path.insert(0, os.environ["QINLING_DEBUG_ROOT"])
raw = os.environ["QINLING_DEBUG_INPUT"]
try:
    data = json.loads(raw) if raw else None
except ValueError:
    data = raw
handler = getattr(importlib.import_module(os.environ["QINLING_DEBUG_MODULE"]), os.environ["QINLING_DEBUG_FUNCTION"])
try:
    result = handler(**data) if isinstance(data, dict) else (handler(data) if raw else handler())
except Exception:
    traceback.print_exc()
    print("qinling run: the function raised; pdb's post-mortem follows (q to quit)", file=sys.stderr)
    pdb.post_mortem(sys.exc_info()[2])
    sys.exit(1)
print(result if isinstance(result, str) else json.dumps(result))
"#;

/// The nodejs debug driver: `handler(context, input)`, awaited.
const NODE_DEBUG: &str = r#"
const path = require('path');
const e = process.env;
const raw = e.QINLING_DEBUG_INPUT;
let input = null;
if (raw) { try { input = JSON.parse(raw); } catch (_) { input = raw; } }
const handler = require(path.join(e.QINLING_DEBUG_ROOT, e.QINLING_DEBUG_MODULE))[e.QINLING_DEBUG_FUNCTION];
Promise.resolve().then(() => handler({}, input)).then(
  (r) => console.log(typeof r === 'string' ? r : JSON.stringify(r)),
  (err) => { console.error(err); process.exitCode = 1; });
"#;
