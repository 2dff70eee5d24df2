//! `qinling bench`: the platform's speed, measured end to end through the HTTP API.
//!
//! It starts real servers (this binary's `serve`, on temporary data directories and free
//! ports) and a floor server (`bench-floor`: a minimal axum hello-world on the same stack,
//! tokio + hyper + serde_json, with no store and no worker), drives them with a closed-loop
//! load generator over keep-alive connections (reqwest/hyper; one connection per client;
//! every latency recorded, percentiles exact), discards a warm-up, and prints a table and a
//! JSON document: warm sync latency, throughput with many clients, first execution of new
//! functions with the pool on and off, async acceptance and drain, the memory of an idle warm
//! worker, and each ratio to the floor measured in the same run. With `--database`, the same
//! warm rows and async run on SQLite and on PostgreSQL (`stores.rs`); with `--cluster N`, one
//! node against N on NATS, and the forwarding overhead (`cluster.rs`); with `--traces`, what exporting spans costs
//! (`traces.rs`).

use std::path::PathBuf;
use std::process::{ExitCode, Stdio};
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use clap::Args;
use serde_json::{Value, json};
use tokio::io::{AsyncBufReadExt, BufReader};

mod cluster;
mod floor;
mod measure;
mod modes;
mod stores;
mod traces;

pub use floor::floor_main;
use measure::{Dist, Target, Throughput, client, dist, latency, post_json, throughput};

#[derive(Debug, Args)]
pub struct BenchArgs {
    /// Seconds of the throughput run (after a one-second warm-up).
    #[arg(long, default_value_t = 10)]
    pub duration: u64,
    /// Concurrent keep-alive clients of the throughput run.
    #[arg(long, default_value_t = 16)]
    pub clients: usize,
    /// Measured requests of the single-client latency run (after 10% warm-up).
    #[arg(long, default_value_t = 2000)]
    pub requests: usize,
    /// New functions whose first execution is timed, with the pool on and off.
    #[arg(long, default_value_t = 50)]
    pub new_functions: usize,
    /// Async executions queued at once for the acceptance/drain run.
    #[arg(long, default_value_t = 10_000)]
    pub async_executions: usize,
    /// Also write the JSON document to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Extra arguments for every `qinling serve` started (e.g. `--insecure-no-sandbox`).
    #[arg(long = "serve-arg", allow_hyphen_values = true)]
    pub serve_args: Vec<String>,
    /// Measure only these runtimes (repeatable: python3, nodejs, custom, wasm); the floor
    /// is always measured. Default: all.
    #[arg(long = "runtime")]
    pub runtimes: Vec<String>,
    /// Also compare the stores: the admin URL of a PostgreSQL server
    /// (`postgres://user@host/postgres`) on which fresh databases are created. The python3
    /// and wasm warm rows and the async run are then measured on SQLite and on PostgreSQL,
    /// and a 20 MiB package is written to and read from PostgreSQL and the local disk.
    #[arg(long)]
    pub database: Option<String>,
    /// Also compare one node with a cluster of this many (needs `--database` and
    /// `nats-server` on PATH): throughput over all nodes, async drain, and the cost of
    /// forwarding an execution to its home node over NATS.
    #[arg(long, requires = "database", value_parser = clap::value_parser!(u64).range(2..=16))]
    pub cluster: Option<u64>,
    /// Also measure what tracing costs: a warm python3 function with and without every
    /// execution's spans exported over OTLP (to a sink in the benchmark).
    #[arg(long)]
    pub traces: bool,
}

impl BenchArgs {
    fn measures(&self, runtime: &str) -> bool {
        self.runtimes.is_empty() || self.runtimes.iter().any(|r| r == runtime)
    }
}

pub fn main(args: BenchArgs) -> ExitCode {
    let rt = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .expect("tokio runtime");
    match rt.block_on(run(args)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("bench failed: {e:#}");
            ExitCode::FAILURE
        }
    }
}

/// A server process started for the benchmark; killed on drop.
struct Proc {
    child: tokio::process::Child,
    url: String,
    _dir: Option<tempfile::TempDir>,
}

impl Proc {
    async fn start(args: Vec<String>, dir: Option<tempfile::TempDir>) -> anyhow::Result<Proc> {
        let exe = std::env::current_exe().context("locating the qinling binary")?;
        #[expect(
            clippy::disallowed_methods,
            reason = "the benchmark starts the server binary, not a function worker"
        )]
        let mut child = tokio::process::Command::new(exe)
            .args(&args)
            .env("QINLING_LOG", "warn,qinling::serve=info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .kill_on_drop(true)
            .spawn()
            .context("starting a server")?;
        let mut lines = BufReader::new(child.stderr.take().expect("piped stderr")).lines();
        let url = tokio::time::timeout(Duration::from_secs(60), async {
            while let Some(line) = lines.next_line().await? {
                if let Some(pos) = line.find("listen=") {
                    let addr = line[pos + 7..]
                        .split_whitespace()
                        .next()
                        .unwrap_or_default()
                        .to_string();
                    return Ok(format!("http://{addr}"));
                }
                eprintln!("  server: {line}");
            }
            bail!("the server exited before listening")
        })
        .await
        .context("waiting for the server to listen")??;
        // Keep draining its log so it never blocks on a full pipe.
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Proc {
            child,
            url,
            _dir: dir,
        })
    }

    async fn serve(pool_size: usize, extra: &[String]) -> anyhow::Result<Proc> {
        let dir = tempfile::tempdir()?;
        let mut args: Vec<String> = ["serve", "--listen", "127.0.0.1:0", "--data-dir"]
            .map(String::from)
            .into();
        args.push(dir.path().display().to_string());
        args.extend(["--pool-size".to_string(), pool_size.to_string()]);
        args.extend(extra.iter().cloned());
        Proc::start(args, Some(dir)).await
    }

    fn pid(&self) -> Option<u32> {
        self.child.id()
    }
}

fn zip_of(name: &str, source: &str) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    // Executable, for the custom runtime's entry.
    let options = zip::write::SimpleFileOptions::default().unix_permissions(0o755);
    w.start_file(name, options).expect("zip entry");
    w.write_all(source.as_bytes()).expect("zip write");
    w.finish().expect("zip finish").into_inner()
}

async fn runtime_id(c: &reqwest::Client, base: &str) -> anyhow::Result<String> {
    runtime_named(c, base, "python3").await
}

/// The id of the built-in runtime `name`, waiting (up to 30 s) for it to be available.
async fn runtime_named(c: &reqwest::Client, base: &str, name: &str) -> anyhow::Result<String> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = c
            .get(format!("{base}/v1/runtimes"))
            .send()
            .await?
            .json()
            .await?;
        let found = v["runtimes"].as_array().and_then(|a| {
            a.iter()
                .find(|r| r["name"] == name && r["status"] == "available")
        });
        if let Some(id) = found.and_then(|r| r["id"].as_str()) {
            return Ok(id.to_string());
        }
        if Instant::now() > deadline {
            bail!("the built-in {name} runtime is not available: {v}");
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn create_function(
    c: &reqwest::Client,
    base: &str,
    runtime: &str,
    source: &str,
) -> anyhow::Result<String> {
    create_function_in(c, base, runtime, zip_of("main.py", source), "main.main").await
}

async fn create_function_in(
    c: &reqwest::Client,
    base: &str,
    runtime: &str,
    package: Vec<u8>,
    entry: &str,
) -> anyhow::Result<String> {
    create_function_with(c, base, runtime, package, entry, &[]).await
}

/// [`create_function_in`] with more form fields.
async fn create_function_with(
    c: &reqwest::Client,
    base: &str,
    runtime: &str,
    package: Vec<u8>,
    entry: &str,
    fields: &[(&str, &str)],
) -> anyhow::Result<String> {
    let mut form = reqwest::multipart::Form::new()
        .text("runtime_id", runtime.to_string())
        .text("code", r#"{"source": "package"}"#)
        .text("entry", entry.to_string())
        // The largest cpu share and memory the API allows (reference §4: 100–300 millicpu,
        // up to 128 MiB), so the worker's cgroup limits are not what is measured (a node
        // worker with several executors does not fit the 32 MiB default).
        .text("cpu", BENCH_CPU.to_string())
        .text("memory_size", BENCH_MEMORY.to_string())
        .part(
            "package",
            reqwest::multipart::Part::bytes(package).file_name("package"),
        );
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    let r = c
        .post(format!("{base}/v1/functions"))
        .multipart(form)
        .send()
        .await?;
    let status = r.status();
    let v: Value = r.json().await?;
    if !status.is_success() {
        bail!("creating a function: {status}: {v}");
    }
    Ok(v["id"].as_str().context("function id")?.to_string())
}

/// The cpu (millicpu) of every benchmark function.
const BENCH_CPU: u32 = 300;

/// The memory_size (bytes) of every benchmark function.
const BENCH_MEMORY: u64 = 128 * 1024 * 1024;

const HELLO: &str = "def main(name='World', **kwargs):\n    return 'Hello, %s' % name\n";

/// The nodejs hello-world of the execution-mode rows.
const BENCH_HELLO_JS: &str = "exports.main = (context, input) => `Hello, ${input.name}`;\n";

fn execution_target(base: &str, function_id: &str) -> Target {
    Target {
        url: format!("{base}/v1/executions"),
        body: json!({"function_id": function_id, "sync": true, "input": "{\"name\": \"bench\"}"}),
    }
}

/// Waits until the runtime's pool is full again (after a bound worker left it).
async fn wait_pool_full(c: &reqwest::Client, base: &str, runtime: &str) -> anyhow::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let v: Value = c
            .get(format!("{base}/v1/runtimes/{runtime}/pool"))
            .send()
            .await?
            .json()
            .await?;
        if v["capacity"]["available"] == v["capacity"]["total"] {
            return Ok(());
        }
        if Instant::now() > deadline {
            bail!("the pool did not refill within 30 s: {v}");
        }
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

/// First-execution latency of `n` newly created functions.
async fn first_executions(pool_size: usize, n: usize, extra: &[String]) -> anyhow::Result<Dist> {
    let server = Proc::serve(pool_size, extra).await?;
    let c = client();
    let rt = runtime_id(&c, &server.url).await?;
    let mut out = Vec::with_capacity(n);
    for i in 0..n {
        let id = create_function(
            &c,
            &server.url,
            &rt,
            &format!("N = {i}\ndef main(**kwargs):\n    return N\n"),
        )
        .await?;
        if pool_size > 0 {
            wait_pool_full(&c, &server.url, &rt).await?;
        }
        let t = execution_target(&server.url, &id);
        let start = Instant::now();
        t.call(&c).await?;
        out.push(start.elapsed());
    }
    Ok(dist(out))
}

/// A runtime measured with the same rows as python3: its hello function, by name.
struct RuntimeBench {
    name: &'static str,
    entry: &'static str,
    /// The package of the `i`-th new function (each distinct, so each is a new package).
    package: fn(usize) -> Vec<u8>,
}

const OTHER_RUNTIMES: &[RuntimeBench] = &[
    RuntimeBench {
        name: "nodejs",
        entry: "main.main",
        package: |i| {
            zip_of(
                "main.js",
                &format!(
                    "const N = {i};\nexports.main = (context, input) => `Hello, ${{input.name}} ${{N}}`;\n"
                ),
            )
        },
    },
    RuntimeBench {
        name: "custom",
        entry: "handler",
        package: |i| zip_of("handler", &format!("#!/bin/sh\n# {i}\necho '\"Hello\"'\n")),
    },
    RuntimeBench {
        name: "wasm",
        entry: "hello.wasm",
        package: wasm_hello,
    },
];

/// The wasm hello-world (a bare module), made distinct by a data segment holding `i`.
fn wasm_hello(i: usize) -> Vec<u8> {
    let memory = "(memory (export \"memory\") 1)";
    let wat = qinling_wasm::examples::HELLO.replace(
        memory,
        &format!("{memory}\n  (data (i32.const 512) \"{i}\")"),
    );
    wat::parse_str(wat).expect("the wasm hello-world compiles")
}

/// Warm latency, throughput and the first execution of new functions (pool on) of one
/// runtime other than python3.
async fn runtime_rows(rb: &RuntimeBench, args: &BenchArgs) -> anyhow::Result<Value> {
    let extra = &args.serve_args;
    let server = Proc::serve(3, extra).await?;
    let c = client();
    let rt = runtime_named(&c, &server.url, rb.name).await?;
    let hello = create_function_in(&c, &server.url, &rt, (rb.package)(0), rb.entry).await?;
    let target = execution_target(&server.url, &hello);
    let warm = latency(&target, args.requests).await?;
    let tp = throughput(&target, args.clients, args.duration).await?;
    let mut first = Vec::with_capacity(args.new_functions);
    for i in 1..=args.new_functions {
        let id = create_function_in(&c, &server.url, &rt, (rb.package)(i), rb.entry).await?;
        wait_pool_full(&c, &server.url, &rt).await?;
        let t = execution_target(&server.url, &id);
        let start = Instant::now();
        t.call(&c).await?;
        first.push(start.elapsed());
    }
    Ok(json!({"latency": warm, "throughput": tp, "first_execution_pool_on": dist(first)}))
}

#[derive(Debug, serde::Serialize)]
struct AsyncRun {
    executions: usize,
    accept_seconds: f64,
    accepted_per_second: f64,
    drain_seconds: f64,
    drained_per_second: f64,
    succeeded: usize,
}

async fn async_run(
    base: &str,
    function_id: &str,
    n: usize,
    clients: usize,
) -> anyhow::Result<AsyncRun> {
    let url = format!("{base}/v1/executions");
    let body = json!({"function_id": function_id, "sync": false, "input": "{\"name\": \"async\"}"});
    let start = Instant::now();
    let per = n.div_ceil(clients);
    let tasks: Vec<_> = (0..clients)
        .map(|k| {
            let (url, body) = (url.clone(), body.clone());
            let count = per.min(n.saturating_sub(k * per));
            tokio::spawn(async move {
                let c = client();
                for _ in 0..count {
                    post_json(&c, &url, &body).await?;
                }
                anyhow::Ok(())
            })
        })
        .collect();
    for t in tasks {
        t.await??;
    }
    let accepted = start.elapsed();
    let c = client();
    let list = |status: &'static str| {
        let c = c.clone();
        let url = format!("{base}/v1/executions?function_id={function_id}&status={status}");
        async move {
            let v: Value = c.get(url).send().await?.json().await?;
            anyhow::Ok(v["executions"].as_array().map_or(0, Vec::len))
        }
    };
    let deadline = Instant::now() + Duration::from_secs(600);
    while list("running").await? > 0 {
        if Instant::now() > deadline {
            bail!("async executions did not drain within 600 s");
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let drained = start.elapsed();
    let succeeded = list("success").await?;
    Ok(AsyncRun {
        executions: n,
        accept_seconds: accepted.as_secs_f64(),
        accepted_per_second: n as f64 / accepted.as_secs_f64(),
        drain_seconds: drained.as_secs_f64(),
        drained_per_second: n as f64 / drained.as_secs_f64(),
        succeeded,
    })
}

/// Memory of the server's workers: per worker (a child process tree of the server), the
/// resident set and the proportional set (shared pages split among their users).
#[derive(Debug, serde::Serialize)]
struct WorkerMemory {
    workers: usize,
    rss_mib_median: f64,
    pss_mib_median: f64,
}

fn worker_memory(server_pid: u32) -> WorkerMemory {
    let children = modes::children_by_parent();
    let kb = |pid: u32, file: &str, key: &str| -> u64 {
        std::fs::read_to_string(format!("/proc/{pid}/{file}"))
            .unwrap_or_default()
            .lines()
            .find_map(|l| {
                l.strip_prefix(key)
                    .and_then(|v| v.split_whitespace().next())
                    .and_then(|v| v.parse().ok())
            })
            .unwrap_or(0)
    };
    let mut rss = Vec::new();
    let mut pss = Vec::new();
    for &worker in children
        .get(&server_pid)
        .map(Vec::as_slice)
        .unwrap_or_default()
    {
        let (mut r, mut p) = (0, 0);
        let mut stack = vec![worker];
        while let Some(pid) = stack.pop() {
            r += kb(pid, "status", "VmRSS:");
            p += kb(pid, "smaps_rollup", "Pss:");
            stack.extend(children.get(&pid).map(Vec::as_slice).unwrap_or_default());
        }
        rss.push(r);
        pss.push(p);
    }
    let median = |mut v: Vec<u64>| {
        v.sort_unstable();
        v.get(v.len() / 2).map_or(f64::NAN, |&k| k as f64 / 1024.0)
    };
    WorkerMemory {
        workers: rss.len(),
        rss_mib_median: median(rss),
        pss_mib_median: median(pss),
    }
}

async fn run(args: BenchArgs) -> anyhow::Result<()> {
    let extra = &args.serve_args;
    eprintln!("== floor: a minimal axum hello-world");
    let floor = Proc::start(
        vec![
            "bench-floor".into(),
            "--listen".into(),
            "127.0.0.1:0".into(),
        ],
        None,
    )
    .await?;
    let floor_target = Target {
        url: format!("{}/v1/executions", floor.url),
        body: json!({"function_id": "floor", "sync": true, "input": "{\"name\": \"bench\"}"}),
    };
    let floor_latency = latency(&floor_target, args.requests).await?;
    let floor_tp = throughput(&floor_target, args.clients, args.duration).await?;
    drop(floor);

    let mut report = serde_json::Map::new();
    report.insert(
        "sandbox".into(),
        json!(if extra.iter().any(|a| a == "--insecure-no-sandbox") {
            "none (--insecure-no-sandbox)"
        } else {
            "jail"
        }),
    );
    report.insert(
        "floor".into(),
        json!({"latency": floor_latency, "throughput": floor_tp}),
    );
    if args.measures("python3") {
        let python = python_rows(&args, &floor_latency, &floor_tp).await?;
        report.extend(python.as_object().cloned().unwrap_or_default());
    }
    let mut runtimes = serde_json::Map::new();
    for rb in OTHER_RUNTIMES.iter().filter(|rb| args.measures(rb.name)) {
        eprintln!("== {} runtime: warm function and new functions", rb.name);
        runtimes.insert(rb.name.into(), runtime_rows(rb, &args).await?);
    }
    report.insert("runtimes".into(), Value::Object(runtimes));
    report.insert("execution_modes".into(), modes::compare(&args).await?);
    if args.traces {
        report.insert("traces".into(), traces::compare(&args).await?);
    }
    if let Some(admin) = &args.database {
        let stores = stores::compare(&args, admin, &floor_latency, &floor_tp).await?;
        report.insert("stores".into(), stores);
        if let Some(n) = args.cluster {
            report.insert(
                "cluster".into(),
                cluster::compare(&args, n as usize, admin).await?,
            );
        }
    }
    let report = Value::Object(report);
    print_table(&report);
    traces::print(&report["traces"]);
    let text = serde_json::to_string_pretty(&report)?;
    println!("{text}");
    if let Some(path) = &args.json {
        std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?;
    }
    Ok(())
}

/// The python3 rows: warm latency and throughput (with their ratios to the floor), async
/// acceptance and drain, the idle worker's memory, first executions with the pool on and off.
async fn python_rows(
    args: &BenchArgs,
    floor_latency: &Dist,
    floor_tp: &Throughput,
) -> anyhow::Result<Value> {
    let extra = &args.serve_args;
    eprintln!("== warm python3 function");
    let server = Proc::serve(3, extra).await?;
    let c = client();
    let rt = runtime_id(&c, &server.url).await?;
    let hello = create_function(&c, &server.url, &rt, HELLO).await?;
    let target = execution_target(&server.url, &hello);
    let warm_latency = latency(&target, args.requests).await?;
    let tp = throughput(&target, args.clients, args.duration).await?;
    // Recorded: every execution the load generator saw succeed is in the store.
    let listed: Value = c
        .get(format!("{}/v1/executions?function_id={hello}", server.url))
        .send()
        .await?
        .json()
        .await?;
    let recorded = listed["executions"].as_array().map_or(0, Vec::len);
    let memory = worker_memory(server.pid().context("server pid")?);

    eprintln!("== async: {} executions", args.async_executions);
    let async_fn = create_function(&c, &server.url, &rt, HELLO).await?;
    let asynchronous =
        async_run(&server.url, &async_fn, args.async_executions, args.clients).await?;
    drop(server);

    eprintln!(
        "== first execution of {} new functions, pool on",
        args.new_functions
    );
    let first_pool = first_executions(3, args.new_functions, extra).await?;
    eprintln!(
        "== first execution of {} new functions, pool off",
        args.new_functions
    );
    let first_cold = first_executions(0, args.new_functions, extra).await?;

    Ok(json!({
        "warm_sync": {"latency": warm_latency, "throughput": tp, "executions_recorded": recorded,
                      "p50_ratio_to_floor": warm_latency.p50_ms / floor_latency.p50_ms,
                      "p99_ratio_to_floor": warm_latency.p99_ms / floor_latency.p99_ms,
                      "throughput_ratio_to_floor": tp.per_second / floor_tp.per_second},
        "first_execution": {"pool_on": first_pool, "pool_off": first_cold,
                            "pool_speedup_p50": first_cold.p50_ms / first_pool.p50_ms},
        "async": asynchronous,
        "idle_warm_worker": memory,
    }))
}

fn print_table(r: &Value) {
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    // Rows of runtimes left out with `--runtime` are not printed.
    let row = |name: &str, d: &Value| {
        if d.is_null() {
            return;
        }
        println!(
            "{name:<40} {:>9} {:>9} {:>9} {:>9}",
            f(&d["p50_ms"]),
            f(&d["p90_ms"]),
            f(&d["p99_ms"]),
            d["n"]
        )
    };
    println!("sandbox: {}", r["sandbox"].as_str().unwrap_or_default());
    println!(
        "{:<40} {:>9} {:>9} {:>9} {:>9}",
        "latency (ms)", "p50", "p90", "p99", "n"
    );
    row("floor, 1 client", &r["floor"]["latency"]);
    row("warm python3 sync, 1 client", &r["warm_sync"]["latency"]);
    row("floor, N clients", &r["floor"]["throughput"]["latency"]);
    row(
        "warm python3 sync, N clients",
        &r["warm_sync"]["throughput"]["latency"],
    );
    row("first execution, pool on", &r["first_execution"]["pool_on"]);
    row(
        "first execution, pool off",
        &r["first_execution"]["pool_off"],
    );
    if let Some(rts) = r["runtimes"].as_object() {
        for (name, v) in rts {
            row(&format!("warm {name} sync, 1 client"), &v["latency"]);
            row(
                &format!("warm {name} sync, N clients"),
                &v["throughput"]["latency"],
            );
            row(
                &format!("{name} first execution, pool on"),
                &v["first_execution_pool_on"],
            );
        }
    }
    modes::print(&r["execution_modes"], &row);
    if !r["stores"].is_null() {
        stores::print(&r["stores"], &row);
    }
    if !r["cluster"].is_null() {
        cluster::print(&r["cluster"], &row);
    }
    println!();
    println!("{:<40} {:>12}", "throughput", "req/s");
    println!(
        "{:<40} {:>12}",
        "floor",
        f(&r["floor"]["throughput"]["per_second"])
    );
    let python = !r["warm_sync"].is_null();
    if python {
        println!(
            "{:<40} {:>12}",
            "warm python3 sync (recorded executions)",
            f(&r["warm_sync"]["throughput"]["per_second"])
        );
    }
    if let Some(rts) = r["runtimes"].as_object() {
        for (name, v) in rts {
            println!(
                "{:<40} {:>12}",
                format!("warm {name} sync (recorded executions)"),
                f(&v["throughput"]["per_second"])
            );
        }
    }
    modes::print_costs(&r["execution_modes"]);
    if !python {
        println!();
        return;
    }
    println!(
        "{:<40} {:>12}",
        "async accepted",
        f(&r["async"]["accepted_per_second"])
    );
    println!(
        "{:<40} {:>12}",
        "async drained (end to end)",
        f(&r["async"]["drained_per_second"])
    );
    println!();
    println!(
        "ratios to floor: p50 {}x, p99 {}x, throughput {}; pool speed-up of first execution (p50): {}x",
        f(&r["warm_sync"]["p50_ratio_to_floor"]),
        f(&r["warm_sync"]["p99_ratio_to_floor"]),
        f(&r["warm_sync"]["throughput_ratio_to_floor"]),
        f(&r["first_execution"]["pool_speedup_p50"])
    );
    println!(
        "idle warm worker: RSS {} MiB, PSS {} MiB (median of {} workers, whole sandbox process tree)",
        f(&r["idle_warm_worker"]["rss_mib_median"]),
        f(&r["idle_warm_worker"]["pss_mib_median"]),
        r["idle_warm_worker"]["workers"]
    );
    println!();
}
