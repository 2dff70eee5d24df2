//! The engine's run path end to end below HTTP, with the real store (SQLite in a temporary
//! directory) and the real pool, but the in-memory sandbox (`qinling-pool`'s `fake`
//! feature): recorded executions, sync and async, how each kind of end is recorded, and
//! the 429 admission rule. No process, no Python, no root; seconds.

use std::sync::Arc;
use std::time::Duration;

use qinling_engine::{
    CreateExecution, CreateFunction, Engine, EngineConfig, ExecutionTarget, PackageStore,
    UpdateFunction,
};
use qinling_executor::{Executor, Executors, FunctionKey, Packages};
use qinling_pool::fake::{self, FakeSandbox};
use qinling_pool::{Pool, PoolConfig};
use qinling_types::{
    Error, Execution, ExecutionStatus, RequestContext, RuntimeId, RuntimeKind, RuntimeStatus,
};

struct Fixture {
    engine: Engine,
    sandbox: Arc<FakeSandbox>,
    runtime_id: RuntimeId,
    _dir: tempfile::TempDir,
}

fn ctx() -> RequestContext {
    RequestContext::unauthenticated("req-test".into())
}

async fn fixture(pool: PoolConfig, engine: EngineConfig) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let store = qinling_store::Store::open(&dir.path().join("db.sqlite"))
        .await
        .unwrap();
    let packages = PackageStore::open(&dir.path().join("packages")).unwrap();
    let sandbox = Arc::new(FakeSandbox::default());
    let source: Arc<dyn Packages> = Arc::new(packages.clone());
    let pool = Pool::new(
        sandbox.clone(),
        pool,
        fake::launchers(&[RuntimeKind::Python3]),
        source,
    );
    let executor: Arc<dyn Executor> =
        Arc::new(Executors::new().with(&[RuntimeKind::Python3], Arc::new(pool)));
    let engine = Engine::start(store, executor, packages, engine)
        .await
        .unwrap();
    let runtimes = engine.list_runtimes(&ctx()).await.unwrap();
    let python = runtimes
        .iter()
        .find(|r| r.image == "python3")
        .expect("the built-in python3 runtime");
    assert_eq!(python.status, RuntimeStatus::Available);
    // Kinds with no executor here cannot run functions.
    let wasm = runtimes.iter().find(|r| r.image == "wasm").unwrap();
    assert_eq!(wasm.status, RuntimeStatus::Error);
    let runtime_id = python.id.clone();
    Fixture {
        engine,
        sandbox,
        runtime_id,
        _dir: dir,
    }
}

fn zip() -> Vec<u8> {
    use std::io::Write;
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    w.start_file("main.py", zip::write::SimpleFileOptions::default())
        .unwrap();
    w.write_all(b"def main(**kw): return kw").unwrap();
    w.finish().unwrap();
    buf.into_inner()
}

async fn function(f: &Fixture, timeout: &str) -> String {
    let req = CreateFunction {
        name: Some("f".into()),
        runtime_id: Some(f.runtime_id.clone()),
        timeout: Some(timeout.into()),
        package: Some(zip()),
        ..Default::default()
    };
    f.engine
        .create_function(&ctx(), req)
        .await
        .unwrap()
        .id
        .into_string()
}

async fn execute(
    f: &Fixture,
    function_id: &str,
    sync: bool,
    input: &str,
) -> Result<Execution, Error> {
    let req = CreateExecution {
        target: ExecutionTarget::Function {
            id: function_id.into(),
            version: 0,
        },
        description: None,
        sync,
        input: Some(input.into()),
        trace: None,
    };
    f.engine.create_execution(&ctx(), req).await
}

#[tokio::test]
async fn executions_are_run_and_recorded() {
    let f = fixture(PoolConfig::default(), EngineConfig::default()).await;
    let id = function(&f, "1").await;
    let e = execute(&f, &id, true, r#"{"name": "fake"}"#).await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Success);
    let result: serde_json::Value = serde_json::from_str(e.result.as_deref().unwrap()).unwrap();
    assert_eq!(
        result["output"]["echo"],
        serde_json::json!({"name": "fake"})
    );
    assert_eq!(result["output"]["context"]["function_id"], id.as_str());
    assert_eq!(result["output"]["context"]["request_id"], "req-test");
    assert_eq!(
        e.logs.as_deref(),
        Some(
            format!(
                "Start execution: {0}\nfake log\nFinished execution: {0}\n",
                e.id
            )
            .as_str()
        )
    );
    // What the API reads back is what was returned.
    let stored = f.engine.get_execution(&ctx(), &e.id).await.unwrap();
    assert_eq!((stored.status, &stored.result), (e.status, &e.result));
    assert_eq!(stored.memory_peak_kb, Some(2048));

    // (input, status, output text)
    let cases = [
        (
            r#"{"fail": true}"#,
            ExecutionStatus::Failed,
            "ValueError: asked to fail",
        ),
        (
            r#"{"sleep_ms": 3000}"#,
            ExecutionStatus::Failed,
            "Function execution timeout.",
        ),
        (
            r#"{"oom": true}"#,
            ExecutionStatus::Failed,
            "Function execution failed because of too much resource consumption",
        ),
        (
            r#"{"die": true}"#,
            ExecutionStatus::Failed,
            "Function execution failed.",
        ),
    ];
    for (input, status, output) in cases {
        let e = execute(&f, &id, true, input).await.unwrap();
        let result: serde_json::Value = serde_json::from_str(e.result.as_deref().unwrap()).unwrap();
        assert_eq!(
            (e.status, result["output"].as_str()),
            (status, Some(output)),
            "{input}"
        );
    }
}

/// The execution mode reaches the worker in its bind, and a change of mode retires the
/// workers bound in the old one: they are released at once, and the next execution binds a
/// new worker in the new mode. Version 1 keeps the mode it snapshotted.
#[tokio::test]
async fn a_mode_change_rebinds_in_the_new_mode() {
    let f = fixture(PoolConfig::default(), EngineConfig::default()).await;
    let id = function(&f, "1").await;
    let fid = qinling_types::FunctionId::from(id.clone());
    let workers = || async {
        let mut names: Vec<String> = f
            .engine
            .function_workers(&ctx(), &fid, None)
            .await
            .unwrap()
            .into_iter()
            .map(|w| w.worker_name)
            .collect();
        names.sort();
        names
    };
    let e = execute(&f, &id, true, "{}").await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Success);
    let before = workers().await;
    assert_eq!(before.len(), 1);
    assert_eq!(f.sandbox.modes()[&before[0]], "fork");
    f.engine.create_version(&ctx(), &fid, None).await.unwrap();

    let update = |mode: &str| UpdateFunction {
        execution_mode: Some(mode.into()),
        ..Default::default()
    };
    let updated = f
        .engine
        .update_function(&ctx(), &fid, update("reuse"))
        .await
        .unwrap();
    assert_eq!(updated.execution_mode, qinling_types::ExecutionMode::Reuse);
    assert_eq!(
        workers().await,
        Vec::<String>::new(),
        "retired at the update"
    );
    let e = execute(&f, &id, true, "{}").await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Success);
    let after = workers().await;
    assert_eq!(after.len(), 1);
    assert_ne!(after, before);
    assert_eq!(f.sandbox.modes()[&after[0]], "reuse");

    // The same mode again changes nothing: the worker stays.
    f.engine
        .update_function(&ctx(), &fid, update("reuse"))
        .await
        .unwrap();
    assert_eq!(workers().await, after);

    // Version 1 snapshotted `fork`: its worker is bound in it.
    let req = CreateExecution {
        target: ExecutionTarget::Function {
            id: id.as_str().into(),
            version: 1,
        },
        description: None,
        sync: true,
        input: None,
        trace: None,
    };
    let e = f.engine.create_execution(&ctx(), req).await.unwrap();
    assert_eq!(e.status, ExecutionStatus::Success);
    let v1 = f
        .engine
        .function_workers(&ctx(), &fid, Some(1))
        .await
        .unwrap();
    assert_eq!(f.sandbox.modes()[&v1[0].worker_name], "fork");

    let bad = f
        .engine
        .update_function(&ctx(), &fid, update("spawn"))
        .await
        .unwrap_err();
    assert_eq!(
        bad.to_string(),
        "execution_mode must be 'fork' or 'reuse', not 'spawn'"
    );
}

#[tokio::test]
async fn async_executions_run_from_the_queue() {
    let f = fixture(PoolConfig::default(), EngineConfig::default()).await;
    let id = function(&f, "1").await;
    let accepted = execute(&f, &id, false, "positional").await.unwrap();
    assert_eq!(accepted.status, ExecutionStatus::Running);
    let deadline = tokio::time::Instant::now() + Duration::from_secs(10);
    let done = loop {
        let e = f.engine.get_execution(&ctx(), &accepted.id).await.unwrap();
        if e.status != ExecutionStatus::Running {
            break e;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "the async execution never ran"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    };
    assert_eq!(done.status, ExecutionStatus::Success);
    let result: serde_json::Value = serde_json::from_str(done.result.as_deref().unwrap()).unwrap();
    assert_eq!(result["output"]["echo"], "positional");
}

#[tokio::test]
async fn a_saturated_function_refuses_sync_executions() {
    let pool = PoolConfig {
        pool_size: 0,
        function_concurrency: 1,
        max_workers_per_function: 1,
        ..PoolConfig::default()
    };
    let engine = EngineConfig {
        max_waiting_per_function: 1,
        ..EngineConfig::default()
    };
    let f = Arc::new(fixture(pool, engine).await);
    let id = function(&f, "5").await;
    // One runs, one waits: the function is at its limit with its waiting room full.
    let busy: Vec<_> = (0..2)
        .map(|_| {
            let (f, id) = (f.clone(), id.clone());
            tokio::spawn(async move { execute(&f, &id, true, r#"{"sleep_ms": 800}"#).await })
        })
        .collect();
    let key = FunctionKey {
        function_id: id.clone(),
        version: 0,
    };
    let deadline = tokio::time::Instant::now() + Duration::from_secs(5);
    loop {
        let load = f.engine.executor().load(&key);
        if load.is_some_and(|l| l.at_capacity && l.running == 1 && l.waiting == 1) {
            break;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "never saturated: {load:?}"
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    let refused = match execute(&f, &id, true, "{}").await {
        Err(Error::TooMany(why)) => why,
        other => panic!("expected a 429, got {other:?}"),
    };
    assert_eq!(
        refused,
        format!(
            "Function {id} is at its concurrency limit: 1 workers run 1 executions and 1 more are waiting. Retry later, or run it asynchronously."
        )
    );
    for b in busy {
        assert_eq!(b.await.unwrap().unwrap().status, ExecutionStatus::Success);
    }
    // Async executions are never refused: they wait in the queue.
    assert!(execute(&f, &id, false, "{}").await.is_ok());
    assert_eq!(
        f.sandbox.launched(),
        2,
        "the probe's worker and the function's one"
    );
}

/// Spans, as the server's OTLP exporter would receive them.
#[derive(Debug, Default)]
struct Collected(std::sync::Mutex<Vec<qinling_types::trace::Span>>);

impl qinling_types::trace::SpanSink for Collected {
    fn export(&self, spans: Vec<qinling_types::trace::Span>) {
        self.0.lock().unwrap().extend(spans);
    }
}

/// Each execution joins the caller's trace (or starts one), shows its trace id, hands its
/// function a `traceparent` under its `run` span, and — sampled — exports one span per
/// phase under its `execution` span, sync or async; unsampled, it exports nothing.
#[tokio::test]
async fn executions_are_traced() {
    use qinling_types::trace::{TraceParent, hex, span_id};
    let sink = Arc::new(Collected::default());
    let f = fixture(
        PoolConfig::default(),
        EngineConfig {
            spans: Some(sink.clone()),
            ..Default::default()
        },
    )
    .await;
    let id = function(&f, "5").await;
    let parent =
        TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01").unwrap();
    let run = |sync: bool, trace: Option<TraceParent>| {
        let req = CreateExecution {
            target: ExecutionTarget::Function {
                id: id.as_str().into(),
                version: 0,
            },
            description: None,
            sync,
            input: None,
            trace,
        };
        let engine = f.engine.clone();
        async move { engine.create_execution(&ctx(), req).await.unwrap() }
    };
    let spans_of = |e: &Execution| -> Vec<qinling_types::trace::Span> {
        let trace = e.trace.unwrap().trace_id;
        let mut spans: Vec<_> = sink
            .0
            .lock()
            .unwrap()
            .iter()
            // This execution's spans: its trace, and the ids derived from its id.
            .filter(|s| s.trace_id == trace && s.span_id == span_id(e.id.as_str(), &s.name))
            .cloned()
            .collect();
        spans.sort_by_key(|s| s.start_unix_nanos);
        spans
    };

    // Sync, in the caller's trace.
    let e = run(true, Some(parent)).await;
    assert_eq!(e.status, ExecutionStatus::Success);
    let trace = e.trace.expect("a trace");
    assert_eq!(hex(&trace.trace_id), "4bf92f3577b34da6a3ce929d0e0e4736");
    let result: serde_json::Value = serde_json::from_str(e.result.as_deref().unwrap()).unwrap();
    assert_eq!(
        result["output"]["context"]["traceparent"],
        format!(
            "00-4bf92f3577b34da6a3ce929d0e0e4736-{}-01",
            hex(&span_id(e.id.as_str(), "run"))
        )
    );
    let spans = spans_of(&e);
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        [
            "admission",
            "cold_start",
            "execution",
            "queue",
            "record",
            "run"
        ],
        "{spans:#?}"
    );
    let root = spans.iter().find(|s| s.name == "execution").unwrap();
    assert_eq!(root.parent, Some(parent.span_id));
    for s in &spans {
        if s.name != "execution" {
            assert_eq!(s.parent, Some(root.span_id), "{}", s.name);
        }
        assert!(s.start_unix_nanos >= root.start_unix_nanos, "{}", s.name);
        assert!(s.end_unix_nanos <= root.end_unix_nanos, "{}", s.name);
        assert!(s.end_unix_nanos >= s.start_unix_nanos, "{}", s.name);
    }
    // The stored row says the same.
    let stored = f.engine.get_execution(&ctx(), &e.id).await.unwrap();
    assert_eq!(stored.trace, e.trace);

    // Async, in a trace of its own: exported once it has run; warm now, so no cold start.
    let e = run(false, None).await;
    assert!(e.trace.unwrap().parent.is_none());
    assert_ne!(e.trace.unwrap().trace_id, trace.trace_id);
    let deadline = std::time::Instant::now() + Duration::from_secs(20);
    while spans_of(&e).len() < 5 && std::time::Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let spans = spans_of(&e);
    let mut names: Vec<&str> = spans.iter().map(|s| s.name.as_str()).collect();
    names.sort();
    assert_eq!(
        names,
        ["admission", "execution", "queue", "record", "run"],
        "{spans:#?}"
    );
    assert_eq!(
        spans.iter().find(|s| s.name == "execution").unwrap().parent,
        None
    );

    // Not sampled by the caller: the function still gets the context, nothing is exported.
    let before = sink.0.lock().unwrap().len();
    let unsampled =
        TraceParent::parse("00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-00").unwrap();
    let e = run(true, Some(unsampled)).await;
    let result: serde_json::Value = serde_json::from_str(e.result.as_deref().unwrap()).unwrap();
    assert!(
        result["output"]["context"]["traceparent"]
            .as_str()
            .unwrap()
            .ends_with("-00")
    );
    assert_eq!(sink.0.lock().unwrap().len(), before);
}
