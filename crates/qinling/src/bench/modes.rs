//! The execution modes' rows (issue 17): python3 and nodejs functions in `fork` and `reuse`
//! mode, each on a server of its own — warm latency with one client, throughput with N
//! clients (recorded executions), and what one execution costs in cpu: the server's own (its
//! threads) and the workers' (every process under the server, live or already reaped), read
//! from /proc around each run, so the cost of each layer is visible beside the latency.

use std::collections::HashMap;

use anyhow::Context;
use serde_json::{Value, json};

use super::measure::{Dist, client, latency, throughput};
use super::{
    BENCH_HELLO_JS, BenchArgs, HELLO, Proc, create_function_with, execution_target, runtime_named,
    worker_memory, zip_of,
};

/// Cpu time (ms) of the server's own threads and of everything under it.
#[derive(Debug, Clone, Copy)]
struct Cpu {
    server_ms: f64,
    workers_ms: f64,
}

/// The fields of /proc/<pid>/stat after the command name.
pub(super) fn stat_fields(pid: u32) -> Option<Vec<String>> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    let (_, rest) = stat.rsplit_once(')')?;
    Some(rest.split_whitespace().map(str::to_string).collect())
}

/// Every live process's children, by parent pid.
pub(super) fn children_by_parent() -> HashMap<u32, Vec<u32>> {
    let mut children: HashMap<u32, Vec<u32>> = HashMap::new();
    for entry in std::fs::read_dir("/proc").into_iter().flatten().flatten() {
        let Ok(pid) = entry.file_name().to_string_lossy().parse::<u32>() else {
            continue;
        };
        if let Some(ppid) = stat_fields(pid).and_then(|f| f.get(1)?.parse().ok()) {
            children.entry(ppid).or_default().push(pid);
        }
    }
    children
}

fn cpu_of(server: u32) -> Cpu {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let ticks =
        |f: &[String], i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    let ms = |t: f64| t * 1000.0 / hz;
    let Some(own) = stat_fields(server) else {
        return Cpu {
            server_ms: 0.0,
            workers_ms: 0.0,
        };
    };
    // utime, stime, cutime, cstime are fields 14-17 of stat: 11-14 after the name.
    let server_ms = ms(ticks(&own, 11) + ticks(&own, 12));
    // Reaped children (retired workers) are in the server's cutime/cstime; live ones are
    // summed with what they reaped in turn.
    let mut workers = ticks(&own, 13) + ticks(&own, 14);
    let children = children_by_parent();
    let mut stack: Vec<u32> = children.get(&server).cloned().unwrap_or_default();
    while let Some(pid) = stack.pop() {
        if let Some(f) = stat_fields(pid) {
            workers += ticks(&f, 11) + ticks(&f, 12) + ticks(&f, 13) + ticks(&f, 14);
        }
        stack.extend(children.get(&pid).map(Vec::as_slice).unwrap_or_default());
    }
    Cpu {
        server_ms,
        workers_ms: ms(workers),
    }
}

/// The cpu of `n` executions between two readings, per execution.
fn per_execution(before: Cpu, after: Cpu, n: u64) -> Value {
    let n = n.max(1) as f64;
    let server = (after.server_ms - before.server_ms) / n;
    let workers = (after.workers_ms - before.workers_ms) / n;
    json!({"server_ms": server, "workers_ms": workers, "total_ms": server + workers})
}

/// One runtime in one mode: its rows.
async fn mode_rows(args: &BenchArgs, runtime: &str, mode: &str) -> anyhow::Result<Value> {
    let server = Proc::serve(3, &args.serve_args).await?;
    let pid = server.pid().context("server pid")?;
    let c = client();
    let rt = runtime_named(&c, &server.url, runtime).await?;
    let (package, entry) = if runtime == "nodejs" {
        (zip_of("main.js", BENCH_HELLO_JS), "main.main")
    } else {
        (zip_of("main.py", HELLO), "main.main")
    };
    let f = create_function_with(
        &c,
        &server.url,
        &rt,
        package,
        entry,
        &[("execution_mode", mode)],
    )
    .await?;
    let target = execution_target(&server.url, &f);
    // A nodejs execution in fork mode starts Node: fewer of them, or the row takes minutes.
    let requests = if runtime == "nodejs" && mode == "fork" {
        args.requests.min(200)
    } else {
        args.requests
    };
    let before = cpu_of(pid);
    let one: Dist = latency(&target, requests).await?;
    let after_one = cpu_of(pid);
    let tp = throughput(&target, args.clients, args.duration).await?;
    let after_tp = cpu_of(pid);
    // The latency run made requests + its 10% warm-up; the throughput run its count plus a
    // one-second warm-up it does not report, so its per-execution figures are a little high.
    let one_cpu = per_execution(before, after_one, (requests + requests / 10 + 1) as u64);
    let tp_cpu = per_execution(after_one, after_tp, tp.requests);
    // Idle: what a warm worker costs at rest, once the burst's extra processes have gone (a
    // python3 worker in reuse mode keeps one after 3 s idle).
    tokio::time::sleep(std::time::Duration::from_secs(4)).await;
    let memory = worker_memory(pid);
    Ok(json!({
        "latency": one, "cpu_per_execution_1_client": one_cpu,
        "throughput": tp, "cpu_per_execution_n_clients": tp_cpu,
        "idle_workers": memory,
    }))
}

/// The rows of python3 and nodejs (those `--runtime` selects) in both modes.
pub(super) async fn compare(args: &BenchArgs) -> anyhow::Result<Value> {
    let mut out = serde_json::Map::new();
    for runtime in ["python3", "nodejs"]
        .into_iter()
        .filter(|r| args.measures(r))
    {
        for mode in ["fork", "reuse"] {
            eprintln!("== {runtime}, execution_mode {mode}");
            out.insert(
                format!("{runtime} {mode}"),
                mode_rows(args, runtime, mode).await?,
            );
        }
    }
    Ok(Value::Object(out))
}

pub(super) fn print(r: &Value, row: &dyn Fn(&str, &Value)) {
    let Some(modes) = r.as_object() else { return };
    for (name, v) in modes {
        row(&format!("{name}, 1 client"), &v["latency"]);
        row(&format!("{name}, N clients"), &v["throughput"]["latency"]);
    }
}

pub(super) fn print_costs(r: &Value) {
    let Some(modes) = r.as_object() else { return };
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.3}"));
    println!();
    println!(
        "{:<28} {:>10} {:>14} {:>14} {:>14} {:>12}",
        "execution mode", "req/s", "cpu/exec 1c", "server N", "workers N", "idle PSS MiB"
    );
    for (name, v) in modes {
        let n = &v["cpu_per_execution_n_clients"];
        println!(
            "{:<28} {:>10} {:>14} {:>14} {:>14} {:>12}",
            name,
            f(&v["throughput"]["per_second"]),
            f(&v["cpu_per_execution_1_client"]["total_ms"]),
            f(&n["server_ms"]),
            f(&n["workers_ms"]),
            f(&v["idle_workers"]["pss_mib_median"]),
        );
    }
    println!("(cpu in ms per execution: with 1 client, server+workers; with N clients, each)");
}
