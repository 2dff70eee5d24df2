//! Spawn-to-ready time of a Python worker, plain process against the jail. Ignored by
//! default; run with `cargo test -p qinling-sandbox --release --test it -- --ignored --nocapture spawn_bench`.

use std::time::Instant;

use qinling_sandbox::{ProcessSandbox, Sandbox};

use crate::*;

async fn median_ready_ms(sb: &dyn Sandbox, spec: &LaunchSpec, n: usize) -> (f64, f64) {
    let mut times = Vec::with_capacity(n);
    for _ in 0..n {
        let t0 = Instant::now();
        let mut p = sb.launch(spec).unwrap_or_else(|e| panic!("{}", chain(&e)));
        let mut out = BufReader::new(p.stdout);
        assert_eq!(read_line(&mut out).await, "1");
        times.push(t0.elapsed().as_secs_f64() * 1000.0);
        drop(p.stdin);
        let _ = p.exit.wait().await;
    }
    times.sort_by(|a, b| a.partial_cmp(b).unwrap());
    (times[n / 2], times[n * 9 / 10])
}

#[tokio::test]
#[ignore = "benchmark"]
async fn spawn_bench() {
    require_root!();
    let slirp = qinling_sandbox::jail::find_slirp4netns();
    let jail = JailSandbox::new(JailConfig {
        slirp4netns: slirp.clone(),
        ..sandbox_config()
    })
    .unwrap();
    // The jail as it was before issue 16 (one id shared by the runtime and its executions, no
    // capabilities kept), for the price of the execution ids, measured in the same run.
    let one_id = JailSandbox::new(JailConfig {
        exec_ids: false,
        ..sandbox_config()
    })
    .unwrap();
    let n = 30;
    // Two cores: the quota does not slow start-up (the default 100 millicpu would: see below).
    let unthrottled = |mut spec: LaunchSpec| {
        spec.limits.cpu_millis = 2000;
        spec
    };
    for (label, spec) in [
        ("python3 -c 'print(1)'", unthrottled(py("print(1)"))),
        ("sh -c 'echo 1'", unthrottled(sh("echo 1"))),
    ] {
        let (p50, p90) = median_ready_ms(&ProcessSandbox, &spec, n).await;
        eprintln!("{label:24} process: median {p50:6.2} ms  p90 {p90:6.2} ms  ({n} launches)");
        let (p50, p90) = median_ready_ms(&jail, &spec, n).await;
        eprintln!("{label:24} jail:    median {p50:6.2} ms  p90 {p90:6.2} ms  ({n} launches)");
        let (p50, p90) = median_ready_ms(&one_id, &spec, n).await;
        eprintln!(
            "{label:24} jail, one id (before #16): median {p50:6.2} ms  p90 {p90:6.2} ms  ({n} launches)"
        );
        if slirp.is_none() {
            eprintln!("{label:24} jail+net: skipped, slirp4netns is not installed");
            continue;
        }
        let mut net = spec.clone();
        net.network = true;
        let (p50, p90) = median_ready_ms(&jail, &net, n).await;
        eprintln!("{label:24} jail+net: median {p50:6.2} ms  p90 {p90:6.2} ms  ({n} launches)");
    }
    let (p50, p90) = median_ready_ms(&jail, &py("print(1)"), n).await;
    eprintln!(
        "python3, default limits   jail:    median {p50:6.2} ms  p90 {p90:6.2} ms  (100 millicpu)"
    );
}
