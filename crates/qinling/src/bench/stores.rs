//! `qinling bench --database <admin URL>`: the same platform on its two stores, in the same
//! run and against the same floor. For SQLite and then PostgreSQL (a fresh database on the
//! server the URL names): python3 and wasm warm latency and throughput, and async acceptance
//! and drain. Then where a 20 MiB package is kept: written to and read back from PostgreSQL
//! (where servers sharing the database keep packages) beside the local disk (a lone
//! server's store, and every server's cache).

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use super::measure::{Dist, Throughput, client, dist, latency, throughput};
use super::{
    BenchArgs, HELLO, OTHER_RUNTIMES, Proc, async_run, create_function, create_function_in,
    execution_target, runtime_id, runtime_named,
};

/// The rows of one store: `database` is `None` for SQLite, else a database URL.
async fn rows(args: &BenchArgs, database: Option<String>) -> anyhow::Result<Value> {
    let mut extra = args.serve_args.clone();
    if let Some(url) = database {
        extra.extend(["--database".to_string(), url]);
    }
    let server = Proc::serve(3, &extra).await?;
    let c = client();
    let python = runtime_id(&c, &server.url).await?;
    let hello = create_function(&c, &server.url, &python, HELLO).await?;
    let target = execution_target(&server.url, &hello);
    let py_latency = latency(&target, args.requests).await?;
    let py_tp = throughput(&target, args.clients, args.duration).await?;
    let wasm = OTHER_RUNTIMES
        .iter()
        .find(|r| r.name == "wasm")
        .expect("the wasm bench runtime");
    let wasm_rt = runtime_named(&c, &server.url, wasm.name).await?;
    let wasm_fn =
        create_function_in(&c, &server.url, &wasm_rt, (wasm.package)(0), wasm.entry).await?;
    let target = execution_target(&server.url, &wasm_fn);
    let wasm_latency = latency(&target, args.requests).await?;
    let wasm_tp = throughput(&target, args.clients, args.duration).await?;
    let async_fn = create_function(&c, &server.url, &python, HELLO).await?;
    let asynchronous =
        async_run(&server.url, &async_fn, args.async_executions, args.clients).await?;
    Ok(json!({
        "python3": {"latency": py_latency, "throughput": py_tp},
        "wasm": {"latency": wasm_latency, "throughput": wasm_tp},
        "async": asynchronous,
    }))
}

/// SQLite, PostgreSQL, and the 20 MiB package, each against the floor.
pub(super) async fn compare(
    args: &BenchArgs,
    admin: &str,
    floor_latency: &Dist,
    floor_tp: &Throughput,
) -> anyhow::Result<Value> {
    eprintln!("== stores: SQLite");
    let sqlite = rows(args, None).await?;
    eprintln!("== stores: PostgreSQL");
    let url = qinling_store::testing::scratch_database(admin).await?;
    let postgres = rows(args, Some(url)).await?;
    eprintln!("== packages: 20 MiB in PostgreSQL and on local disk");
    let packages = package_rows(admin).await?;
    let ratios = |v: &Value| {
        json!({
            "python3_p50_ratio_to_floor": v["python3"]["latency"]["p50_ms"].as_f64().unwrap_or(0.0) / floor_latency.p50_ms,
            "wasm_p50_ratio_to_floor": v["wasm"]["latency"]["p50_ms"].as_f64().unwrap_or(0.0) / floor_latency.p50_ms,
            "python3_throughput_ratio_to_floor": v["python3"]["throughput"]["per_second"].as_f64().unwrap_or(0.0) / floor_tp.per_second,
            "wasm_throughput_ratio_to_floor": v["wasm"]["throughput"]["per_second"].as_f64().unwrap_or(0.0) / floor_tp.per_second,
        })
    };
    Ok(json!({
        "sqlite": sqlite, "sqlite_ratios": ratios(&sqlite),
        "postgres": postgres, "postgres_ratios": ratios(&postgres),
        "package_20mib": packages,
    }))
}

/// Five writes and reads of distinct incompressible 20 MiB packages: into PostgreSQL and
/// back, and to the local disk (write, fsync, rename: as the package store does) and back.
async fn package_rows(admin: &str) -> anyhow::Result<Value> {
    const SIZE: usize = 20 << 20;
    let url = qinling_store::testing::scratch_database(admin).await?;
    let store = qinling_store::Store::open_postgres(&qinling_store::PgConfig::new(url)).await?;
    let dir = tempfile::tempdir()?;
    let (mut pg_put, mut pg_get, mut disk_put, mut disk_get) = (vec![], vec![], vec![], vec![]);
    let mut seed = 0x9e37_79b9_7f4a_7c15u64;
    for i in 0..5 {
        let bytes: Vec<u8> = (0..SIZE)
            .map(|_| {
                seed ^= seed << 13;
                seed ^= seed >> 7;
                seed ^= seed << 17;
                seed as u8
            })
            .collect();
        let name = format!("bench-{i}");
        let t = Instant::now();
        store.put_package(&name, &bytes).await?;
        pg_put.push(t.elapsed());
        let t = Instant::now();
        let back = store.get_package(&name).await?;
        pg_get.push(t.elapsed());
        anyhow::ensure!(
            back.as_deref() == Some(&bytes[..]),
            "package read back differs"
        );
        let path = dir.path().join(&name);
        let (p, b) = (path.clone(), bytes.clone());
        let t = Instant::now();
        tokio::task::spawn_blocking(move || -> std::io::Result<()> {
            use std::io::Write;
            let tmp = p.with_extension("tmp");
            let mut f = std::fs::File::create(&tmp)?;
            f.write_all(&b)?;
            f.sync_all()?;
            std::fs::rename(&tmp, &p)
        })
        .await??;
        disk_put.push(t.elapsed());
        let t = Instant::now();
        let back = tokio::task::spawn_blocking(move || std::fs::read(path)).await??;
        disk_get.push(t.elapsed());
        anyhow::ensure!(back == bytes, "package read back differs");
    }
    store.close().await;
    let ms = |d: Vec<Duration>| dist(d);
    Ok(json!({
        "postgres_write": ms(pg_put), "postgres_read": ms(pg_get),
        "disk_write_fsync": ms(disk_put), "disk_read": ms(disk_get),
    }))
}

/// The table rows of [`compare`]'s report.
pub(super) fn print(r: &Value, row: &dyn Fn(&str, &Value)) {
    for store in ["sqlite", "postgres"] {
        let s = &r[store];
        row(
            &format!("{store}: python3, 1 client"),
            &s["python3"]["latency"],
        );
        row(
            &format!("{store}: python3, N clients"),
            &s["python3"]["throughput"]["latency"],
        );
        row(&format!("{store}: wasm, 1 client"), &s["wasm"]["latency"]);
        row(
            &format!("{store}: wasm, N clients"),
            &s["wasm"]["throughput"]["latency"],
        );
        println!(
            "{store}: throughput python3 {:.0}/s, wasm {:.0}/s; async {} accepted at {:.0}/s, drained at {:.0}/s",
            s["python3"]["throughput"]["per_second"]
                .as_f64()
                .unwrap_or(0.0),
            s["wasm"]["throughput"]["per_second"]
                .as_f64()
                .unwrap_or(0.0),
            s["async"]["executions"],
            s["async"]["accepted_per_second"].as_f64().unwrap_or(0.0),
            s["async"]["drained_per_second"].as_f64().unwrap_or(0.0),
        );
    }
    let p = &r["package_20mib"];
    row("package 20 MiB: PostgreSQL write", &p["postgres_write"]);
    row("package 20 MiB: PostgreSQL read", &p["postgres_read"]);
    row("package 20 MiB: disk write+fsync", &p["disk_write_fsync"]);
    row("package 20 MiB: disk read", &p["disk_read"]);
}
