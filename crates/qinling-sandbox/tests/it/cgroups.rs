//! The worker's cgroups on this machine: live limit changes, kill_all, clean-up, the v2 group.

use std::os::unix::process::ExitStatusExt;

use qinling_sandbox::Limits;

use crate::*;

/// Starts `sh` printing `ready` and waiting for stdin.
async fn waiting_worker(
    sb: &JailSandbox,
    script: &str,
    limits: Limits,
) -> (SandboxedProcess, BufReader<qinling_sandbox::Reader>) {
    let mut spec = sh(&format!("{script} echo ready; read x"));
    spec.limits = limits;
    let mut p = launch(sb, &spec);
    let stdout = std::mem::replace(&mut p.stdout, dummy_stdout());
    let mut out = BufReader::new(stdout);
    assert_eq!(read_line(&mut out).await, "ready");
    (p, out)
}

/// A placeholder stdout (an empty reader), so the real one can be read through a BufReader.
fn dummy_stdout() -> qinling_sandbox::Reader {
    Box::new(tokio::io::empty())
}

#[tokio::test]
async fn set_limits_rewrites_a_live_worker() {
    require_root!();
    let sb = sandbox();
    let (p, _out) = waiting_worker(
        &sb,
        "",
        Limits {
            memory_bytes: 32 << 20,
            ..Limits::default()
        },
    )
    .await;
    let monitor = p.pid.unwrap();
    let mem = cgroup_dir(monitor, "memory").expect("memory cgroup");
    let memsw = mem.join("memory.memsw.limit_in_bytes");
    let files: Vec<PathBuf> = [mem.join("memory.limit_in_bytes"), memsw.clone()]
        .into_iter()
        .chain(std::iter::once(mem.join("memory.max")))
        .filter(|f| f.exists())
        .collect();
    assert!(
        !files.is_empty(),
        "no memory limit file in {}",
        mem.display()
    );
    for (bytes, label) in [(64u64 << 20, "raise"), (16 << 20, "lower")] {
        p.control
            .set_limits(&Limits {
                memory_bytes: bytes,
                ..Limits::default()
            })
            .unwrap();
        for f in &files {
            assert_eq!(read(f), bytes.to_string(), "{label}: {}", f.display());
        }
    }
    let cpu = cgroup_dir(monitor, "cpu").expect("cpu cgroup");
    p.control
        .set_limits(&Limits {
            cpu_millis: 250,
            pids: 20,
            ..Limits::default()
        })
        .unwrap();
    if cpu.join("cpu.cfs_quota_us").exists() {
        assert_eq!(read(&cpu.join("cpu.cfs_quota_us")), "25000");
        assert_eq!(read(&cpu.join("cpu.cfs_period_us")), "100000");
    } else {
        assert_eq!(read(&cpu.join("cpu.max")), "25000 100000");
    }
    let pids = cgroup_dir(monitor, "pids").expect("pids cgroup");
    assert_eq!(
        read(&pids.join("pids.max")),
        "21",
        "the limit plus the jail's monitor"
    );
}

#[tokio::test]
async fn kill_all_leaves_no_process() {
    require_root!();
    let sb = sandbox();
    // Processes that left the runtime's process group and session, and a daemonised one.
    let script = "setsid sleep 100 & (sleep 100 &); sleep 100 &";
    let (mut p, _out) = waiting_worker(&sb, script, Limits::default()).await;
    let monitor = p.pid.unwrap();
    let dirs: Vec<PathBuf> = ["", "memory", "pids"]
        .iter()
        .filter_map(|c| cgroup_dir(monitor, c))
        .collect();
    let members = |dir: &PathBuf| -> Vec<u32> {
        read(&dir.join("cgroup.procs"))
            .lines()
            .filter_map(|l| l.parse().ok())
            .collect()
    };
    let before = members(&dirs[0]);
    assert!(
        before.len() >= 5,
        "monitor, sh and three sleeps: {before:?}"
    );
    // (state, start time) of a pid: the start time tells the same process from a new one
    // that got its pid once it was reaped (CI starts processes fast enough to reuse pids).
    let stat = |pid: u32| -> Option<(char, String)> {
        let text = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
        let (_, rest) = text.rsplit_once(") ")?;
        let fields: Vec<&str> = rest.split_whitespace().collect();
        Some((fields.first()?.chars().next()?, fields.get(19)?.to_string()))
    };
    let started: Vec<(u32, Option<String>)> = before
        .iter()
        .filter(|pid| **pid != monitor)
        .map(|pid| (*pid, stat(*pid).map(|(_, start)| start)))
        .collect();
    p.control.kill_all();
    for dir in &dirs {
        assert_eq!(members(dir), Vec::<u32>::new(), "{}", dir.display());
    }
    for (pid, start) in started {
        // Gone (or its pid reused by another process), or dead and waiting for its parent
        // (the host's init) to reap it.
        let now = stat(pid);
        let survived = matches!((&now, &start), (Some((state, s)), Some(was))
            if s == was && *state != 'Z' && *state != 'X');
        assert!(!survived, "{pid} survived: {now:?}");
    }
    assert_eq!(p.exit.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

/// A worker that has used up its cpu quota (here, processes spinning at the smallest quota)
/// still dies at once: the quota is lifted once every process has SIGKILL pending, since a
/// throttled process cannot even exit.
#[tokio::test]
async fn kill_all_is_prompt_for_a_throttled_worker() {
    require_root!();
    let sb = sandbox();
    let script = "i=0; while [ $i -lt 60 ]; do (while :; do :; done) & i=$((i+1)); done;";
    let (mut p, _out) = waiting_worker(&sb, script, Limits::default()).await;
    let monitor = p.pid.unwrap();
    let pids = cgroup_dir(monitor, "pids").expect("pids cgroup");
    let throttled = Limits {
        cpu_millis: 10,
        ..Limits::default()
    };
    p.control.set_limits(&throttled).unwrap();
    tokio::time::sleep(Duration::from_millis(300)).await;
    let members = read(&pids.join("cgroup.procs")).lines().count();
    assert!(members > 60, "{members} members");
    let t0 = std::time::Instant::now();
    p.control.kill_all();
    let took = t0.elapsed();
    assert_eq!(read(&pids.join("cgroup.procs")), "", "members left");
    assert!(took < Duration::from_millis(500), "kill_all took {took:?}");
    assert_eq!(p.exit.wait().await.unwrap().signal(), Some(libc::SIGKILL));
}

#[tokio::test]
async fn dropping_the_worker_removes_its_cgroups() {
    require_root!();
    let sb = sandbox();
    let (p, out) = waiting_worker(&sb, "sleep 100 &", Limits::default()).await;
    let monitor = p.pid.unwrap();
    let dirs: Vec<PathBuf> = ["", "memory", "cpu", "pids"]
        .iter()
        .filter_map(|c| cgroup_dir(monitor, c))
        .collect();
    assert_eq!(dirs.len(), 4, "{dirs:?}");
    assert!(dirs.iter().all(|d| d.exists()));
    drop(out);
    drop(p);
    for d in &dirs {
        assert!(!d.exists(), "{} left behind", d.display());
    }
}

/// Inside, the cgroup namespace makes the worker's cgroup the root.
#[tokio::test]
async fn cgroup_namespace_hides_the_hierarchy() {
    require_root!();
    let sb = sandbox();
    let out = run(&sb, &sh("cat /proc/self/cgroup")).await;
    assert!(!out.stdout.is_empty());
    for line in out.stdout.lines() {
        assert!(line.ends_with(":/"), "{line}");
    }
}

/// The v2 code path on this machine: a v2 group for every worker whenever a writable cgroup2
/// hierarchy exists (membership and `cgroup.kill`), and the limits there when it offers the
/// controllers. Where it does not, the v2 limit code is covered by the unit tests on a fake
/// tree (`cgroup::tests::v2_path_writes_limits_and_reads_usage`).
#[tokio::test]
async fn cgroup_v2_where_the_kernel_offers_it() {
    require_root!();
    let unified = Path::new("/sys/fs/cgroup/unified");
    let root = if unified.join("cgroup.controllers").exists() {
        unified
    } else {
        Path::new("/sys/fs/cgroup")
    };
    if !root.join("cgroup.controllers").exists() {
        eprintln!("skipping cgroup_v2_where_the_kernel_offers_it: no cgroup2 mount here");
        return;
    }
    let offered = read(&root.join("cgroup.controllers"));
    let sb = sandbox();
    let (p, _out) = waiting_worker(
        &sb,
        "",
        Limits {
            memory_bytes: 48 << 20,
            ..Limits::default()
        },
    )
    .await;
    let monitor = p.pid.unwrap();
    let v2 = cgroup_dir(monitor, "").expect("a v2 group");
    assert!(v2.join("cgroup.kill").exists());
    assert!(
        read(&v2.join("cgroup.procs"))
            .lines()
            .any(|l| l == monitor.to_string())
    );
    let usable: Vec<&str> = offered
        .split_whitespace()
        .filter(|c| ["memory", "cpu", "pids"].contains(c))
        .collect();
    if usable.contains(&"memory") {
        assert_eq!(read(&v2.join("memory.max")), (48u64 << 20).to_string());
    }
    if usable.len() < 3 {
        eprintln!(
            "skipping the v2 limits part: cgroup v2 here offers only [{offered}]; memory/cpu/pids limits ran on v1, and the v2 limit code is unit-tested on a fake tree"
        );
    }
    p.control.kill_all();
    assert_eq!(read(&v2.join("cgroup.procs")), "");
}
