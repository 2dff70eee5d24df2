//! The pool driven through the execution seam with the in-memory sandbox (`fake.rs`): the
//! scaling rule as it plays out under concurrency, revisions, binds, how runs end, admission
//! load, and the pre-started pool. No process, no Python, no root.

use std::sync::Arc;
use std::time::Duration;

use qinling_executor::{
    Definition, End, ExecutionContext, Executor, FunctionKey, RunRequest, ServerLimits,
};
use qinling_types::{Input, RuntimeKind};
use serde_json::json;

use crate::fake::{self, FAIL_BIND, FakeSandbox, MemoryPackages};
use crate::{Pool, PoolConfig};

struct Fixture {
    pool: Pool,
    sandbox: Arc<FakeSandbox>,
}

fn fixture(config: PoolConfig) -> Fixture {
    let sandbox = Arc::new(FakeSandbox::default());
    let packages = Arc::new(MemoryPackages::default());
    packages.put("good", b"a package");
    packages.put("bad", FAIL_BIND);
    let launchers = fake::launchers(&[RuntimeKind::Python3]);
    let pool = Pool::new(sandbox.clone(), config, launchers, packages);
    Fixture { pool, sandbox }
}

fn config() -> PoolConfig {
    PoolConfig {
        pool_size: 0,
        function_concurrency: 3,
        max_workers_per_function: 10,
        ..PoolConfig::default()
    }
}

fn definition(package: &str) -> Definition {
    Definition {
        runtime_id: "rt".into(),
        kind: RuntimeKind::Python3,
        package_sha256: package.into(),
        entry: "main.main".into(),
        cpu_millis: 100,
        memory_bytes: 64 << 20,
        timeout: Duration::from_secs(2),
        network: false,
        execution_mode: qinling_types::ExecutionMode::Fork,
    }
}

fn request(function: &str, d: &Definition, n: usize, kwargs: serde_json::Value) -> RunRequest {
    let Input::Kwargs(map) = Input::parse(Some(&kwargs.to_string())) else {
        panic!("kwargs must be an object")
    };
    RunRequest {
        key: FunctionKey {
            function_id: function.into(),
            version: 0,
        },
        definition: d.clone(),
        input: Input::Kwargs(map),
        context: ExecutionContext {
            execution_id: format!("{function}-e{n}"),
            function_id: function.into(),
            function_version: 0,
            project_id: "p".into(),
            request_id: None,
            traceparent: None,
        },
        limits: ServerLimits {
            log_bytes: 1 << 20,
            nofile: 1024,
            nproc: 128,
            fsize: 1 << 20,
        },
    }
}

/// Runs `n` executions of `function` at once, each `sleep_ms` long; returns how they ended.
async fn burst(f: &Fixture, function: &str, n: usize, sleep_ms: u64) -> Vec<End> {
    let d = definition("good");
    let runs: Vec<_> = (0..n)
        .map(|i| {
            let pool = f.pool.clone();
            let req = request(function, &d, i, json!({"sleep_ms": sleep_ms}));
            tokio::spawn(async move { Executor::run(&pool, &req).await.end })
        })
        .collect();
    let mut ends = Vec::new();
    for r in runs {
        ends.push(r.await.unwrap());
    }
    ends
}

#[tokio::test]
async fn concurrency_decides_how_many_workers() {
    let f = fixture(config());
    // Three at once fit one worker (function_concurrency 3); six need two.
    assert_eq!(burst(&f, "three", 3, 300).await, vec![End::Success; 3]);
    assert_eq!(f.pool.workers("three", None).len(), 1);
    assert_eq!(f.sandbox.launched(), 1);
    assert_eq!(burst(&f, "six", 6, 300).await, vec![End::Success; 6]);
    assert_eq!(f.pool.workers("six", None).len(), 2);
    assert_eq!(f.sandbox.launched(), 3);
    // Warm: the next execution reuses a worker.
    assert_eq!(burst(&f, "three", 1, 0).await, vec![End::Success]);
    assert_eq!(f.sandbox.launched(), 3);
}

#[tokio::test]
async fn a_new_revision_gets_new_workers() {
    let f = fixture(config());
    let old = definition("good");
    let r = Executor::run(&f.pool, &request("f", &old, 0, json!({}))).await;
    assert_eq!(r.end, End::Success);
    assert!(r.cold_start.is_some(), "the first run binds a worker");
    let again = Executor::run(&f.pool, &request("f", &old, 1, json!({}))).await;
    assert!(again.cold_start.is_none(), "the second run is warm");
    let new = Definition {
        memory_bytes: 128 << 20,
        ..old
    };
    let r = Executor::run(&f.pool, &request("f", &new, 2, json!({}))).await;
    assert!(
        r.cold_start.is_some(),
        "a changed definition binds a new worker"
    );
    assert_eq!(f.sandbox.launched(), 2);
    assert_eq!(
        f.pool.workers("f", None).len(),
        1,
        "the stale worker is gone"
    );
    // The bound worker got the function's limits.
    let limits = f.sandbox.limits();
    assert!(limits.values().any(|l| l.memory_bytes == 128 << 20));
}

#[tokio::test]
async fn runs_end_as_the_worker_reports() {
    let f = fixture(config());
    let d = definition("good");
    let ok = Executor::run(&f.pool, &request("f", &d, 0, json!({"x": 1}))).await;
    assert_eq!(ok.end, End::Success);
    assert_eq!(ok.output["echo"], json!({"x": 1}));
    assert_eq!(ok.output["context"]["execution_id"], "f-e0");
    assert_eq!(
        ok.logs,
        "Start execution: f-e0\nfake log\nFinished execution: f-e0\n"
    );
    assert_eq!(
        (ok.cpu, ok.memory_peak_kb),
        (Some(Duration::from_millis(1)), Some(2048))
    );
    // (kwargs, end)
    let cases = [
        (json!({"fail": true}), End::Failed),
        (json!({"sleep_ms": 5000}), End::Timeout),
        (json!({"oom": true}), End::OutOfResources),
        (json!({"die": true}), End::Crashed),
    ];
    for (i, (kwargs, end)) in cases.into_iter().enumerate() {
        let r = Executor::run(&f.pool, &request("f", &d, i + 1, kwargs.clone())).await;
        assert_eq!(r.end, end, "{kwargs}");
    }
    // The worker that died is replaced at the next execution.
    let r = Executor::run(&f.pool, &request("f", &d, 9, json!({}))).await;
    assert_eq!(r.end, End::Success);
    assert!(r.cold_start.is_some());
}

#[tokio::test]
async fn a_failed_bind_is_a_load_failure_with_its_log() {
    let f = fixture(config());
    let r = Executor::run(&f.pool, &request("f", &definition("bad"), 0, json!({}))).await;
    assert_eq!(r.end, End::LoadFailed("No module named 'missing'".into()));
    assert_eq!(
        r.logs,
        "Start execution: f-e0\nTraceback: import failed\nFinished execution: f-e0\n"
    );
    assert!(f.pool.workers("f", None).is_empty());
    // A package that cannot be read leaves nothing to run.
    let r = Executor::run(&f.pool, &request("g", &definition("missing"), 0, json!({}))).await;
    assert_eq!(r.end, End::Unavailable);
}

#[tokio::test]
async fn load_reports_capacity_and_waiters() {
    let f = fixture(PoolConfig {
        function_concurrency: 1,
        max_workers_per_function: 1,
        ..config()
    });
    let key = FunctionKey {
        function_id: "busy".into(),
        version: 0,
    };
    assert_eq!(f.pool.load(&key), None);
    let runs = tokio::spawn({
        let f = Fixture {
            pool: f.pool.clone(),
            sandbox: f.sandbox.clone(),
        };
        async move { burst(&f, "busy", 3, 400).await }
    });
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let load = f.pool.load(&key);
        if let Some(l) = load
            && l.running == 1
            && l.waiting == 2
        {
            assert!(l.at_capacity);
            assert_eq!(l.workers, Some(1));
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "load never showed the burst: {load:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(runs.await.unwrap(), vec![End::Success; 3]);
    let l = f.pool.load(&key).unwrap();
    assert_eq!((l.running, l.waiting), (0, 0));
}

#[tokio::test]
async fn the_pool_is_filled_and_used() {
    let f = fixture(PoolConfig {
        pool_size: 2,
        ..config()
    });
    Executor::add_runtime(&f.pool, "rt", RuntimeKind::Python3);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    while f.pool.capacity("rt").map(|c| c.available) != Some(2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool was not filled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(f.sandbox.launched(), 2);
    let r = Executor::run(&f.pool, &request("f", &definition("good"), 0, json!({}))).await;
    assert_eq!(r.end, End::Success);
    // The execution took a pre-started worker; the refill starts its replacement.
    while f.pool.capacity("rt").map(|c| c.available) != Some(2) {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the pool was not refilled"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    assert_eq!(f.sandbox.launched(), 3);
    Executor::remove_runtime(&f.pool, "rt");
    assert_eq!(f.pool.capacity("rt"), None);
    assert!(Executor::probe(&f.pool, RuntimeKind::Python3).await.is_ok());
    assert!(Executor::probe(&f.pool, RuntimeKind::Nodejs).await.is_err());
}

/// A sandbox whose every launch fails, counting the attempts.
#[derive(Default)]
struct BrokenSandbox {
    attempts: std::sync::atomic::AtomicUsize,
}

impl qinling_sandbox::Sandbox for BrokenSandbox {
    fn name(&self) -> &'static str {
        "broken"
    }

    fn launch(
        &self,
        _spec: &qinling_sandbox::LaunchSpec,
    ) -> Result<qinling_sandbox::SandboxedProcess, qinling_sandbox::SandboxError> {
        self.attempts
            .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
        Err(qinling_sandbox::SandboxError::Unavailable(
            "no cgroups for this uid".into(),
        ))
    }

    fn unenforced(&self) -> Vec<String> {
        Vec::new()
    }

    fn network_unavailable(&self) -> Option<String> {
        None
    }
}

/// A pool whose workers cannot start backs off (1 s, 2 s, 4 s, … up to a minute) instead of
/// trying `pool_size` launches every second.
#[tokio::test]
async fn a_pool_whose_workers_fail_to_start_backs_off() {
    let sandbox = Arc::new(BrokenSandbox::default());
    let pool = Pool::new(
        sandbox.clone(),
        PoolConfig {
            pool_size: 3,
            ..config()
        },
        fake::launchers(&[RuntimeKind::Python3]),
        Arc::new(MemoryPackages::default()),
    );
    pool.add_runtime("rt", RuntimeKind::Python3);
    tokio::time::sleep(Duration::from_millis(3500)).await;
    let attempts = sandbox.attempts.load(std::sync::atomic::Ordering::SeqCst);
    // Without the backoff: 3 launches a second, at least 9 by now. With it: at t≈0 and t≈2 s.
    assert!((1..=3).contains(&attempts), "{attempts} launches in 3.5 s");
}
