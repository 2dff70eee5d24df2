//! Durability: after `kill -9` of the server and a restart, every execution ends in a
//! terminal state — none is lost, none stays `running`.

use std::time::Duration;

use serde_json::json;

use crate::harness::{Opts, Server};

#[test]
fn kill9_and_restart_leaves_no_execution_running() {
    let mut s = Server::start_with(Opts {
        pool_size: 0,
        ..Opts::default()
    });
    let f = s.create_function(
        "slow.py",
        "import time\ndef main(n=0, **kw):\n    time.sleep(1.5)\n    return n\n",
        "slow.main",
        &[],
    );
    let fid = f["id"].as_str().unwrap().to_string();
    // More than the dispatcher runs at once, so some are still queued at the kill.
    let ids: Vec<String> = (0..40)
        .map(|n| {
            let (status, e) = s.post(
                "/v1/executions",
                json!({"function_id": fid, "sync": false, "input": format!("{{\"n\": {n}}}")}),
            );
            assert_eq!(status, 201);
            e["id"].as_str().unwrap().to_string()
        })
        .collect();
    std::thread::sleep(Duration::from_millis(700));
    s.restart();
    let mut counts = std::collections::BTreeMap::new();
    for id in &ids {
        let e = s.wait_execution(id, Duration::from_secs(120));
        *counts
            .entry(e["status"].as_str().unwrap().to_string())
            .or_insert(0) += 1;
        if e["status"] == "error" {
            let out = crate::harness::result(&e)["output"].clone();
            assert_eq!(
                out,
                json!("The server stopped while the execution was running; it was not completed.")
            );
        }
    }
    let failed: Vec<String> = ids
        .iter()
        .map(|id| s.get(&format!("/v1/executions/{id}")).1)
        .filter(|e| e["status"] == "failed")
        .map(|e| e.to_string())
        .take(2)
        .collect();
    assert!(
        failed.is_empty(),
        "no execution fails: {failed:?}\n{}",
        s.logs()
    );
    let total: usize = counts.values().sum();
    assert_eq!(total, 40, "{counts:?}");
    assert!(
        counts.get("success").copied().unwrap_or(0) > 0,
        "queued executions ran after the restart: {counts:?}"
    );
    let (_, list) = s.get("/v1/executions?status=running");
    assert_eq!(list["executions"].as_array().unwrap().len(), 0);
}

#[test]
fn sigterm_is_graceful() {
    let mut s = Server::start();
    let f = s.create_function("hello.py", crate::harness::HELLO, "hello.main", &[]);
    s.execute(f["id"].as_str().unwrap(), None);
    let status = s.terminate();
    assert!(status.success(), "exit status {status:?}:\n{}", s.logs());
    assert!(s.logs().contains("shutting down"), "{}", s.logs());
}
