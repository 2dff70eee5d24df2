//! The cost of tracing (`--traces`): a warm python3 function on a server without
//! `--otlp-endpoint` and on one exporting every execution's spans to a collector — here a
//! sink in this process that accepts OTLP/HTTP requests and counts them (it decodes nothing:
//! the cost measured is the server's) — with the same load: latency with one client and
//! throughput with N, each server's cpu per execution, and the spans the sink received.

use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use anyhow::Context;
use serde_json::{Value, json};

use super::measure::{client, latency, throughput};
use super::modes::stat_fields;
use super::{BenchArgs, HELLO, Proc, create_function, execution_target, runtime_id};

/// Requests and bytes the sink was sent.
#[derive(Default)]
struct Received {
    requests: AtomicU64,
    bytes: AtomicU64,
}

/// An OTLP/HTTP endpoint that answers 200 to every export and counts it.
async fn sink() -> anyhow::Result<(String, Arc<Received>)> {
    use axum::routing::post;
    let received = Arc::new(Received::default());
    let counted = received.clone();
    let app = axum::Router::new().route(
        "/v1/traces",
        post(move |body: axum::body::Bytes| {
            let counted = counted.clone();
            async move {
                counted.requests.fetch_add(1, Ordering::Relaxed);
                counted
                    .bytes
                    .fetch_add(body.len() as u64, Ordering::Relaxed);
                axum::http::StatusCode::OK
            }
        }),
    );
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}", listener.local_addr()?);
    tokio::spawn(async move { axum::serve(listener, app).await });
    Ok((url, received))
}

/// Cpu ms of a process's own threads (utime + stime).
fn cpu_ms(pid: u32) -> f64 {
    // SAFETY: sysconf has no preconditions.
    let hz = unsafe { libc::sysconf(libc::_SC_CLK_TCK) }.max(1) as f64;
    let Some(f) = stat_fields(pid) else {
        return 0.0;
    };
    let t = |i: usize| f.get(i).and_then(|v| v.parse::<f64>().ok()).unwrap_or(0.0);
    (t(11) + t(12)) * 1000.0 / hz
}

/// One server's row: latency, throughput, server cpu per execution.
async fn row(args: &BenchArgs, extra: Vec<String>) -> anyhow::Result<Value> {
    let server = Proc::serve(3, &extra).await?;
    let pid = server.pid().context("server pid")?;
    let c = client();
    let rt = runtime_id(&c, &server.url).await?;
    let f = create_function(&c, &server.url, &rt, HELLO).await?;
    let target = execution_target(&server.url, &f);
    let lat = latency(&target, args.requests).await?;
    let before = cpu_ms(pid);
    let tp = throughput(&target, args.clients, args.duration).await?;
    let server_cpu = cpu_ms(pid) - before;
    Ok(json!({
        "latency": lat,
        "throughput": tp,
        "server_cpu_ms_per_execution": server_cpu / (tp.requests.max(1) as f64),
    }))
}

/// The rows without and with export, and their ratios.
pub(super) async fn compare(args: &BenchArgs) -> anyhow::Result<Value> {
    let (url, received) = sink().await?;
    eprintln!("== traces: a warm python3 function without span export");
    let off = row(args, args.serve_args.clone()).await?;
    eprintln!("== traces: the same with every execution's spans exported over OTLP");
    let mut extra = args.serve_args.clone();
    extra.extend(["--otlp-endpoint".to_string(), url]);
    let on = row(args, extra).await?;
    // The last batch leaves within the exporter's linger (0.5 s).
    tokio::time::sleep(std::time::Duration::from_secs(1)).await;
    let ratio = |path: &[&str]| {
        let get = |v: &Value| {
            path.iter()
                .fold(v, |v, k| &v[*k])
                .as_f64()
                .unwrap_or(f64::NAN)
        };
        get(&on) / get(&off)
    };
    Ok(json!({
        "off": off,
        "on": on,
        "p50_ratio_on_to_off": ratio(&["latency", "p50_ms"]),
        "p99_ratio_on_to_off": ratio(&["latency", "p99_ms"]),
        "throughput_ratio_on_to_off": ratio(&["throughput", "per_second"]),
        "server_cpu_ratio_on_to_off": ratio(&["server_cpu_ms_per_execution"]),
        "collector": {"requests": received.requests.load(Ordering::Relaxed),
                      "bytes": received.bytes.load(Ordering::Relaxed)},
    }))
}

/// The table's lines for the comparison (nothing when it was not measured).
pub(super) fn print(t: &Value) {
    if t.is_null() {
        return;
    }
    let f = |v: &Value| v.as_f64().map_or("-".to_string(), |x| format!("{x:.2}"));
    println!("tracing: off / on (every execution's spans exported over OTLP)");
    println!(
        "  warm python3 p50 ms {} / {} ({}x), p99 ms {} / {} ({}x)",
        f(&t["off"]["latency"]["p50_ms"]),
        f(&t["on"]["latency"]["p50_ms"]),
        f(&t["p50_ratio_on_to_off"]),
        f(&t["off"]["latency"]["p99_ms"]),
        f(&t["on"]["latency"]["p99_ms"]),
        f(&t["p99_ratio_on_to_off"]),
    );
    println!(
        "  throughput /s {} / {} ({}x); server cpu ms per execution {} / {} ({}x)",
        f(&t["off"]["throughput"]["per_second"]),
        f(&t["on"]["throughput"]["per_second"]),
        f(&t["throughput_ratio_on_to_off"]),
        f(&t["off"]["server_cpu_ms_per_execution"]),
        f(&t["on"]["server_cpu_ms_per_execution"]),
        f(&t["server_cpu_ratio_on_to_off"]),
    );
    println!(
        "  collector received {} requests, {} bytes",
        t["collector"]["requests"], t["collector"]["bytes"]
    );
    println!();
}
