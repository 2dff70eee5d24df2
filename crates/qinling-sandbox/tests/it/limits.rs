//! The limits a jail enforces: memory (with the OOM kill reported), pids, cpu quota.

use std::os::unix::process::ExitStatusExt;

use qinling_sandbox::Limits;

use crate::*;

#[tokio::test]
async fn memory_limit_kills_and_usage_reports_it() {
    require_root!();
    let sb = sandbox();
    let mut spec = py("x = b'x' * (256 << 20); print('survived')");
    spec.limits.memory_bytes = 64 << 20;
    let mut p = launch(&sb, &spec);
    drop(p.stdin);
    let mut stdout = String::new();
    p.stdout.read_to_string(&mut stdout).await.unwrap();
    let status = p.exit.wait().await.unwrap();
    assert_eq!(stdout, "");
    assert_eq!(status.signal(), Some(libc::SIGKILL), "{status:?}");
    let usage = p.control.usage();
    assert!(usage.oom_kills >= 1, "{usage:?}");
    let peak = usage.memory_peak_bytes.expect("peak memory");
    assert!(peak > 32 << 20 && peak <= 65 << 20, "peak {peak}");
}

const FORKER: &str = r#"
import os, errno, sys, time
sys.stdin.readline()
n = 0
try:
    for i in range(200):
        pid = os.fork()
        if pid == 0:
            time.sleep(60)
            os._exit(0)
        n += 1
    print(n, 'no limit')
except OSError as e:
    print(n, errno.errorcode[e.errno])
sys.stdout.flush()
sys.stdin.readline()
"#;

/// A fork bomb stops at the limit: first the launch limit (cgroup and RLIMIT_NPROC), then a
/// lower cgroup limit set on the live worker, which the rlimit alone would not enforce.
#[tokio::test]
async fn pids_limit_stops_a_fork_bomb() {
    require_root!();
    let sb = sandbox();
    for (launch_pids, live_pids, want) in [(8, None, 7), (64, Some(4), 3)] {
        let mut spec = py(FORKER);
        spec.limits.pids = launch_pids;
        let mut p = launch(&sb, &spec);
        if let Some(pids) = live_pids {
            p.control
                .set_limits(&Limits {
                    pids,
                    ..spec.limits
                })
                .unwrap();
        }
        p.stdin.write_all(b"go\n").await.unwrap();
        let mut out = BufReader::new(p.stdout);
        // The runtime and the jail's monitor count: `pids` processes in all, runtime included.
        assert_eq!(read_line(&mut out).await, format!("{want} EAGAIN"));
        p.control.kill_all();
        assert_eq!(p.exit.wait().await.unwrap().signal(), Some(libc::SIGKILL));
    }
    // The host is fine.
    assert!(
        std::fs::read_to_string("/proc/self/status")
            .unwrap()
            .contains("State:")
    );
}

const BURNER: &str = r#"
import sys, time
def burn():
    t0 = time.monotonic(); c0 = time.process_time()
    while time.monotonic() - t0 < 1.0:
        pass
    return (time.process_time() - c0) / (time.monotonic() - t0)
print(round(burn(), 3), flush=True)
sys.stdin.readline()
print(round(burn(), 3), flush=True)
"#;

#[tokio::test]
async fn cpu_quota_throttles_and_can_be_raised() {
    require_root!();
    let sb = sandbox();
    let mut spec = py(BURNER);
    spec.limits.cpu_millis = 100;
    let mut p = launch(&sb, &spec);
    let mut out = BufReader::new(p.stdout);
    let share: f64 = read_line(&mut out).await.parse().unwrap();
    eprintln!("100 millicpu: {share} of a core");
    assert!(
        (0.03..=0.2).contains(&share),
        "100 millicpu used {share} of a core"
    );
    p.control
        .set_limits(&Limits {
            cpu_millis: 600,
            ..spec.limits
        })
        .unwrap();
    p.stdin.write_all(b"again\n").await.unwrap();
    let share: f64 = read_line(&mut out).await.parse().unwrap();
    eprintln!("600 millicpu: {share} of a core");
    assert!(
        share > 0.25 && share <= 0.7,
        "600 millicpu used {share} of a core"
    );
}
