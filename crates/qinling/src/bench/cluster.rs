//! `qinling bench --cluster N --database <admin URL>`: one node against N, in the same run,
//! on one NATS server (started here from `nats-server` on `PATH`, with JetStream in a
//! temporary directory) and a fresh PostgreSQL database per size. For each size: python3 and
//! wasm sync throughput with the clients spread over the nodes, and async acceptance and
//! drain (all nodes pull from the queue). For N nodes also the forwarding overhead: the same
//! function's single-client latency called on its home node and on another node, whose
//! requests cross NATS to the home and back.

use std::process::Stdio;
use std::time::{Duration, Instant};

use anyhow::{Context, bail};
use serde_json::{Value, json};

use super::measure::{Target, client, latency, throughput_over};
use super::{
    BenchArgs, HELLO, OTHER_RUNTIMES, Proc, async_run, create_function, create_function_in,
    execution_target, runtime_id, runtime_named,
};

/// A NATS server for the benchmark; killed on drop.
struct Nats {
    _child: tokio::process::Child,
    url: String,
    _dir: tempfile::TempDir,
}

impl Nats {
    async fn start() -> anyhow::Result<Nats> {
        let dir = tempfile::tempdir()?;
        let port = std::net::TcpListener::bind("127.0.0.1:0")?
            .local_addr()?
            .port();
        let conf = dir.path().join("nats.conf");
        std::fs::write(
            &conf,
            format!(
                "listen: 127.0.0.1:{port}\nmax_payload: 8MB\njetstream {{ store_dir: \"{}\" }}\n",
                dir.path().join("js").display()
            ),
        )?;
        #[expect(
            clippy::disallowed_methods,
            reason = "the benchmark starts a NATS server, not a function worker"
        )]
        let child = tokio::process::Command::new("nats-server")
            .arg("-c")
            .arg(&conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .kill_on_drop(true)
            .spawn()
            .context("starting nats-server (apt-get install nats-server)")?;
        let deadline = Instant::now() + Duration::from_secs(10);
        while tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_err()
        {
            if Instant::now() > deadline {
                bail!("nats-server did not listen within 10 s");
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        Ok(Nats {
            _child: child,
            url: format!("nats://127.0.0.1:{port}"),
            _dir: dir,
        })
    }
}

/// `n` nodes on `database` and `nats`, started one after the other, all seeing each other.
async fn nodes(
    args: &BenchArgs,
    n: usize,
    database: &str,
    nats: &str,
) -> anyhow::Result<Vec<Proc>> {
    let mut out = Vec::new();
    for i in 1..=n {
        let mut extra = args.serve_args.clone();
        extra.extend([
            "--database".to_string(),
            database.to_string(),
            "--cluster".to_string(),
            nats.to_string(),
            "--node-name".to_string(),
            format!("n{i}"),
        ]);
        out.push(Proc::serve(3, &extra).await?);
    }
    let c = client();
    let deadline = Instant::now() + Duration::from_secs(30);
    for node in &out {
        loop {
            let v: Value = c
                .get(format!("{}/v1/nodes", node.url))
                .send()
                .await?
                .json()
                .await?;
            let up = v["nodes"]
                .as_array()
                .map_or(0, |a| a.iter().filter(|n| n["status"] == "up").count());
            if up == n {
                break;
            }
            if Instant::now() > deadline {
                bail!("{} sees {up} of {n} nodes: {v}", node.url);
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }
    Ok(out)
}

/// The rows of a cluster of `n` nodes.
async fn rows(args: &BenchArgs, n: usize, admin: &str, nats: &str) -> anyhow::Result<Value> {
    let database = qinling_store::testing::scratch_database(admin).await?;
    let nodes = nodes(args, n, &database, nats).await?;
    let c = client();
    let first = &nodes[0].url;
    let python = runtime_id(&c, first).await?;
    let hello = create_function(&c, first, &python, HELLO).await?;
    let targets: Vec<Target> = nodes
        .iter()
        .map(|p| execution_target(&p.url, &hello))
        .collect();
    let py_tp = throughput_over(&targets, args.clients, args.duration).await?;
    let wasm = OTHER_RUNTIMES
        .iter()
        .find(|r| r.name == "wasm")
        .expect("the wasm bench runtime");
    let wasm_rt = runtime_named(&c, first, wasm.name).await?;
    let wasm_fn = create_function_in(&c, first, &wasm_rt, (wasm.package)(0), wasm.entry).await?;
    let targets: Vec<Target> = nodes
        .iter()
        .map(|p| execution_target(&p.url, &wasm_fn))
        .collect();
    let wasm_tp = throughput_over(&targets, args.clients, args.duration).await?;
    let async_fn = create_function(&c, first, &python, HELLO).await?;
    let asynchronous = async_run(first, &async_fn, args.async_executions, args.clients).await?;
    let mut out = json!({
        "nodes": n,
        "python3_throughput": py_tp,
        "wasm_throughput": wasm_tp,
        "async": asynchronous,
    });
    if n > 1 {
        out["forwarding"] = forwarding(args, &nodes, &hello).await?;
    }
    Ok(out)
}

/// The same warm function called on its home node and on another node.
async fn forwarding(args: &BenchArgs, nodes: &[Proc], function: &str) -> anyhow::Result<Value> {
    let c = client();
    let workers: Value = c
        .get(format!("{}/v1/functions/{function}/workers", nodes[0].url))
        .send()
        .await?
        .json()
        .await?;
    let home_name = workers["workers"][0]["node"]
        .as_str()
        .context("the function has a worker")?
        .to_string();
    let home: usize = home_name[1..].parse::<usize>()? - 1;
    let other = (home + 1) % nodes.len();
    let local = latency(&execution_target(&nodes[home].url, function), args.requests).await?;
    let forwarded = latency(
        &execution_target(&nodes[other].url, function),
        args.requests,
    )
    .await?;
    Ok(json!({
        "home": home_name,
        "local": local,
        "forwarded": forwarded,
        "p50_overhead_ms": forwarded.p50_ms - local.p50_ms,
        "p99_overhead_ms": forwarded.p99_ms - local.p99_ms,
    }))
}

/// One node against `n`, in the same run.
pub(super) async fn compare(args: &BenchArgs, n: usize, admin: &str) -> anyhow::Result<Value> {
    let nats = Nats::start().await?;
    eprintln!("== cluster: 1 node");
    let one = rows(args, 1, admin, &nats.url).await?;
    eprintln!("== cluster: {n} nodes");
    let many = rows(args, n, admin, &nats.url).await?;
    let ratio = |k: &str| {
        many[k]["per_second"].as_f64().unwrap_or(0.0)
            / one[k]["per_second"].as_f64().unwrap_or(f64::NAN)
    };
    Ok(json!({
        "one": one,
        "many": many,
        "python3_throughput_ratio": ratio("python3_throughput"),
        "wasm_throughput_ratio": ratio("wasm_throughput"),
        "async_drain_ratio": many["async"]["drained_per_second"].as_f64().unwrap_or(0.0)
            / one["async"]["drained_per_second"].as_f64().unwrap_or(f64::NAN),
    }))
}

pub(super) fn print(r: &Value, row: &dyn Fn(&str, &Value)) {
    let n = r["many"]["nodes"].as_u64().unwrap_or(0);
    for (label, v) in [("1 node", &r["one"]), (&*format!("{n} nodes"), &r["many"])] {
        println!(
            "cluster, {label}: throughput python3 {:.0}/s, wasm {:.0}/s; async {} accepted at {:.0}/s, drained at {:.0}/s",
            v["python3_throughput"]["per_second"]
                .as_f64()
                .unwrap_or(0.0),
            v["wasm_throughput"]["per_second"].as_f64().unwrap_or(0.0),
            v["async"]["executions"],
            v["async"]["accepted_per_second"].as_f64().unwrap_or(0.0),
            v["async"]["drained_per_second"].as_f64().unwrap_or(0.0),
        );
    }
    let f = &r["many"]["forwarding"];
    row("cluster: python3 on its home node", &f["local"]);
    row("cluster: python3 forwarded over NATS", &f["forwarded"]);
    println!(
        "cluster: {n} nodes / 1 node: python3 {:.2}x, wasm {:.2}x, async drain {:.2}x; forwarding adds p50 {:.3} ms, p99 {:.3} ms",
        r["python3_throughput_ratio"].as_f64().unwrap_or(0.0),
        r["wasm_throughput_ratio"].as_f64().unwrap_or(0.0),
        r["async_drain_ratio"].as_f64().unwrap_or(0.0),
        f["p50_overhead_ms"].as_f64().unwrap_or(0.0),
        f["p99_overhead_ms"].as_f64().unwrap_or(0.0),
    );
}
