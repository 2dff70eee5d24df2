//! Autoscaling and the worker API (reference §3.3): Qinling's scaling rule (3 concurrent
//! executions → 1 worker, 6 → 2), scale up/down, detach, idle release with pool refill, and
//! the per-function concurrency limit with its 429.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Opts, Server};

const SLEEPY: &str =
    "import time\ndef main(secs=1, **kw):\n    time.sleep(float(secs))\n    return 'slept'\n";

fn worker_names(s: &Server, fid: &str) -> Vec<String> {
    worker_names_at(s, &format!("/v1/functions/{fid}/workers"))
}

/// The names of the workers a workers listing (`path`, with its query) shows.
fn worker_names_at(s: &Server, path: &str) -> Vec<String> {
    let (status, w) = s.get(path);
    assert_eq!(status, 200, "{w}");
    w["workers"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| w["worker_name"].as_str().unwrap().to_string())
        .collect()
}

/// Runs `n` sync executions at once; returns them and the most workers the function had
/// while they ran (sampled until the last one answers, so a slow worker start still counts).
fn concurrent(s: &Server, fid: &str, n: usize, secs: f64) -> (Vec<Value>, usize) {
    std::thread::scope(|scope| {
        let handles: Vec<_> = (0..n)
            .map(|_| {
                scope.spawn(|| {
                    s.post(
                        "/v1/executions",
                        json!({"function_id": fid, "input": format!("{{\"secs\": {secs}}}")}),
                    )
                })
            })
            .collect();
        let mut during = 0;
        while !handles.iter().all(|h| h.is_finished()) {
            during = during.max(worker_names(s, fid).len());
            std::thread::sleep(Duration::from_millis(100));
        }
        let results = handles
            .into_iter()
            .map(|h| {
                let (status, e) = h.join().unwrap();
                assert_eq!(status, 201, "{e}");
                e
            })
            .collect();
        (results, during)
    })
}

#[test]
fn scaling_rule_3_to_1_and_6_to_2() {
    let s = Server::start();
    let f = s.create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let fid = f["id"].as_str().unwrap();

    let (results, during) = concurrent(&s, fid, 3, 4.0);
    assert!(
        results.iter().all(|e| e["status"] == "success"),
        "{results:?}"
    );
    assert_eq!(
        during, 1,
        "3 concurrent executions are served by exactly 1 worker"
    );

    let (status, _) = s.post(&format!("/v1/functions/{fid}/detach"), json!(null));
    assert_eq!(status, 202);
    let (results, during) = concurrent(&s, fid, 6, 4.0);
    assert!(
        results.iter().all(|e| e["status"] == "success"),
        "{results:?}"
    );
    assert_eq!(
        during, 2,
        "6 concurrent executions are served by exactly 2 workers"
    );
}

#[test]
fn scale_up_down_and_detach() {
    let s = Server::start();
    let f = s.create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let fid = f["id"].as_str().unwrap();
    assert!(
        worker_names(&s, fid).is_empty(),
        "no worker before the first execution"
    );

    let (status, body) = s.post(
        &format!("/v1/functions/{fid}/scale_up"),
        json!({"count": 3}),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(
        worker_names(&s, fid).len(),
        3,
        "scale_up returns once the workers are ready"
    );
    let (_, w) = s.get(&format!("/v1/functions/{fid}/workers?function_version=0"));
    assert_eq!(w["workers"][0]["function_id"], fid);
    assert_eq!(w["workers"][0]["function_version"], 0);
    let (_, w) = s.get(&format!("/v1/functions/{fid}/workers/?function_version=1"));
    assert_eq!(w["workers"], json!([]), "version 1 has no workers");

    let (status, _) = s.post(
        &format!("/v1/functions/{fid}/scale_down"),
        json!({"count": 1}),
    );
    assert_eq!(status, 202);
    assert_eq!(worker_names(&s, fid).len(), 2);
    let (status, _) = s.post(
        &format!("/v1/functions/{fid}/scale_down"),
        json!({"count": 10}),
    );
    assert_eq!(status, 202);
    let left = worker_names(&s, fid);
    assert_eq!(left.len(), 1, "scale_down never removes the last worker");

    // The remaining worker serves executions.
    let e = s.execute(fid, Some(r#"{"secs": 0}"#));
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(worker_names(&s, fid), left);

    let (status, body) = s.post(&format!("/v1/functions/{fid}/detach"), json!(null));
    assert_eq!((status, body), (202, Value::Null), "202 with an empty body");
    let deadline = Instant::now() + Duration::from_secs(5);
    while !worker_names(&s, fid).is_empty() {
        assert!(
            Instant::now() < deadline,
            "workers still listed 5 s after detach"
        );
        std::thread::sleep(Duration::from_millis(50));
    }
    let e = s.execute(fid, Some(r#"{"secs": 0}"#));
    assert_eq!(e["status"], "success", "{e}");
    let fresh = worker_names(&s, fid);
    assert_eq!(fresh.len(), 1);
    assert_ne!(
        fresh, left,
        "the next execution after detach starts a fresh worker"
    );
}

#[test]
fn worker_api_bad_requests() {
    let s = Server::start();
    let f = s.create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let cases = [
        (
            json!({}),
            "Invalid input for field/attribute count. Value: 'None'. Mandatory field missing: send {\"count\": n} with n >= 1.",
        ),
        (
            json!({"count": 0}),
            "Invalid input for field/attribute count. Value: '0'. Value should be greater or equal to 1",
        ),
        (
            json!({"count": 1000}),
            "Invalid input for field/attribute count. Value: '1000'. Value should be lower or equal to 100",
        ),
        (
            json!({"count": "2"}),
            "Invalid input for field/attribute count. Value: '2'. Wrong type. Expected 'int', got 'str'",
        ),
        (
            json!({"count": 1, "x": 1}),
            "Unknown attribute for argument scaleinfo: x",
        ),
    ];
    for verb in ["scale_up", "scale_down"] {
        for (body, msg) in &cases {
            let (status, r) = s.post(&format!("/v1/functions/{fid}/{verb}"), body.clone());
            assert_eq!(
                (status, r["faultstring"].as_str().unwrap_or_default()),
                (400, *msg),
                "{verb} {body}: {r}"
            );
            assert_eq!(r["faultcode"], "Client");
        }
    }
    let missing = "00000000-0000-0000-0000-000000000000";
    for (path, body) in [
        ("scale_up", json!({"count": 1})),
        ("scale_down", json!({"count": 1})),
        ("detach", json!(null)),
    ] {
        let (status, r) = s.post(&format!("/v1/functions/{missing}/{path}"), body);
        assert_eq!(
            (status, r["faultstring"].as_str().unwrap_or_default()),
            (404, format!("Function not found [id={missing}]").as_str())
        );
    }
    let (status, r) = s.get(&format!("/v1/functions/{missing}/workers"));
    assert_eq!(status, 404, "{r}");
    let (status, r) = s.get(&format!("/v1/functions/{fid}/workers?function_version=x"));
    assert_eq!(status, 400, "{r}");
    let (status, r) = s.get(&format!("/v1/functions/{fid}/workers?name=x"));
    assert_eq!(
        (status, r["faultstring"].as_str().unwrap_or_default()),
        (400, "Unknown argument: \"name\"")
    );
    assert!(
        worker_names(&s, fid).is_empty(),
        "bad requests started nothing"
    );
}

#[test]
fn idle_workers_are_released_and_the_pool_refills() {
    let s = Server::start_with(Opts {
        pool_size: 2,
        extra: vec!["--worker-idle-timeout".into(), "1".into()],
        ..Opts::default()
    });
    let rt = s.python_runtime();
    let f = s.create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let e = s.execute(fid, Some(r#"{"secs": 0}"#));
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(worker_names(&s, fid).len(), 1);
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let (_, pool) = s.get(&format!("/v1/runtimes/{rt}/pool"));
        let released = worker_names(&s, fid).is_empty();
        if released && pool["capacity"]["available"] == 2 {
            assert_eq!(pool["capacity"]["total"], 2, "{pool}");
            break;
        }
        assert!(
            Instant::now() < deadline,
            "idle worker not released or pool not refilled: {pool}\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    // Scaled to zero, the function still runs.
    let e = s.execute(fid, Some(r#"{"secs": 0}"#));
    assert_eq!(e["status"], "success", "{e}");
}

#[test]
fn concurrency_limit_queues_then_refuses() {
    let s = Server::start_with(Opts {
        pool_size: 1,
        extra: [
            "--function-concurrency",
            "1",
            "--max-workers-per-function",
            "1",
            "--max-waiting-per-function",
            "1",
        ]
        .map(String::from)
        .into(),
        ..Opts::default()
    });
    let f = s.create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (first, second, third) = std::thread::scope(|scope| {
        let run = || {
            s.post(
                "/v1/executions",
                json!({"function_id": fid, "input": "{\"secs\": 2}"}),
            )
        };
        let first = scope.spawn(run);
        // The first holds the only slot once its worker is bound (listed); only then does
        // the second wait behind it (a loaded machine may take long to bind).
        let deadline = std::time::Instant::now() + Duration::from_secs(30);
        while worker_names(&s, fid).is_empty() && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_millis(20));
        }
        std::thread::sleep(Duration::from_millis(100));
        let second = scope.spawn(run);
        std::thread::sleep(Duration::from_millis(300));
        let third = s.post(
            "/v1/executions",
            json!({"function_id": fid, "input": "{\"secs\": 0}"}),
        );
        (first.join().unwrap(), second.join().unwrap(), third)
    });
    assert_eq!(
        (first.0, first.1["status"].as_str()),
        (201, Some("success")),
        "{first:?}"
    );
    assert_eq!(
        (second.0, second.1["status"].as_str()),
        (201, Some("success")),
        "the second waited for the slot: {second:?}"
    );
    assert_eq!(third.0, 429, "{third:?}");
    let msg = third.1["faultstring"].as_str().unwrap_or_default();
    assert!(
        msg.contains("concurrency limit") && msg.contains(fid),
        "{msg}"
    );
    assert_eq!(
        worker_names(&s, fid).len(),
        1,
        "never more workers than the limit"
    );
    // Refused executions are not recorded.
    let (_, list) = s.get(&format!("/v1/executions?function_id={fid}"));
    assert_eq!(list["executions"].as_array().unwrap().len(), 2);
}

/// Changing a function's execution mode retires the workers bound in the old one: the update
/// releases them, and the next execution runs on a new worker (bound in the new mode).
/// Version 1's worker, bound to its own snapshot, stays; an update that keeps the mode
/// retires nothing.
#[test]
fn changing_the_execution_mode_retires_the_workers() {
    let s = Server::start();
    let f = s.create_function("hello.py", crate::harness::HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, v1) = crate::versions::create_version(&s, fid);
    assert_eq!(status, 201, "{v1}");
    assert_eq!(s.execute(fid, None)["status"], "success");
    // Version 0's workers (the function's own).
    let worker_names = |s: &Server, fid: &str| {
        worker_names_at(
            s,
            &format!("/v1/functions/{fid}/workers?function_version=0"),
        )
    };
    let before = worker_names(&s, fid);
    assert_eq!(before.len(), 1, "{before:?}");
    let (status, e1) = s.post(
        "/v1/executions",
        json!({"function_id": fid, "function_version": 1}),
    );
    assert_eq!(
        (status, e1["status"].clone()),
        (201, json!("success")),
        "{e1}"
    );
    let version_1 = |s: &Server| {
        let (status, w) = s.get(&format!("/v1/functions/{fid}/workers?function_version=1"));
        assert_eq!(status, 200, "{w}");
        w["workers"].clone()
    };
    let v1_workers = version_1(&s);
    assert_eq!(v1_workers.as_array().unwrap().len(), 1, "{v1_workers}");

    let (status, f) = s.put(
        &format!("/v1/functions/{fid}"),
        json!({"execution_mode": "reuse"}),
    );
    assert_eq!((status, f["execution_mode"].clone()), (200, json!("reuse")));
    assert_eq!(
        worker_names(&s, fid),
        Vec::<String>::new(),
        "retired at the update"
    );
    assert_eq!(version_1(&s), v1_workers, "version 1 keeps its worker");

    assert_eq!(s.execute(fid, None)["status"], "success");
    let after = worker_names(&s, fid);
    assert_eq!(after.len(), 1, "{after:?}");
    assert!(!after.contains(&before[0]), "{before:?} → {after:?}");

    // The same mode again changes nothing.
    let (status, _) = s.put(
        &format!("/v1/functions/{fid}"),
        json!({"execution_mode": "reuse"}),
    );
    assert_eq!(status, 200);
    assert_eq!(worker_names(&s, fid), after);
}
