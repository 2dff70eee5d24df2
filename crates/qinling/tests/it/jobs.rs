//! Jobs (reference §3.7) through the API with short periods: a one-time job fires once and is
//! `done`; a `count` 2 cron job ends `done` after exactly 2 executions (its ticks brought
//! forward with `next_execution_time`); a due job survives a restart and fires once; pause
//! and resume; validation. The schedule arithmetic and exactly-once claiming are unit-tested
//! in `qinling-engine` (`jobs.rs`) with an injected time.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{HELLO, Server};

/// A wire time `secs` seconds from now.
fn in_secs(secs: u64) -> String {
    qinling_types::format_ts(qinling_types::now() + Duration::from_secs(secs))
}

fn job_executions(s: &Server, jid: &str) -> Vec<Value> {
    let (_, list) = s.get(&format!("/v1/executions?description=has:{jid}"));
    list["executions"].as_array().unwrap().clone()
}

/// Polls a job until `pred` holds.
fn wait_job(s: &Server, jid: &str, within: Duration, pred: impl Fn(&Value) -> bool) -> Value {
    let deadline = Instant::now() + within;
    loop {
        let (status, j) = s.get(&format!("/v1/jobs/{jid}"));
        assert_eq!(status, 200, "{j}");
        if pred(&j) {
            return j;
        }
        assert!(Instant::now() < deadline, "job {jid} never got there: {j}");
        std::thread::sleep(Duration::from_millis(100));
    }
}

#[test]
fn one_time_job_fires_once_even_across_a_restart() {
    let mut s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, j) = s.post(
        "/v1/jobs",
        json!({"name": "oneshot", "function_id": fid, "function_input": "{\"name\": \"job\"}",
               "first_execution_time": in_secs(3), "pattern": null, "count": null}),
    );
    assert_eq!(status, 201, "{j}");
    let jid = j["id"].as_str().unwrap().to_string();
    assert_eq!(
        (j["status"].as_str(), j["count"].as_i64()),
        (Some("running"), Some(1))
    );
    assert_eq!(j["first_execution_time"], j["next_execution_time"]);
    // The server goes down before the job is due and comes back after: it fires once.
    s.kill9();
    std::thread::sleep(Duration::from_secs(4));
    s.restart();
    let j = wait_job(&s, &jid, Duration::from_secs(10), |j| j["status"] == "done");
    assert_eq!(j["count"], 0);
    let deadline = Instant::now() + Duration::from_secs(20);
    let e = loop {
        let es = job_executions(&s, &jid);
        assert!(es.len() <= 1, "{es:?}");
        if let Some(e) = es.first().filter(|e| e["status"] != "running") {
            break e.clone();
        }
        assert!(
            Instant::now() < deadline,
            "the job's execution never finished"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(e["description"], format!("Created by Job {jid}"));
    assert_eq!(e["request_id"], format!("req-job-{jid}"));
    assert_eq!(e["sync"], false);
    assert!(s.log(e["id"].as_str().unwrap()).contains("Hello, job"));
    std::thread::sleep(Duration::from_secs(1));
    assert_eq!(job_executions(&s, &jid).len(), 1, "fired exactly once");
    let (status, e) = s.put(&format!("/v1/jobs/{jid}"), json!({"status": "running"}));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (400, Some("Can not update a finished job."))
    );
}

#[test]
fn cron_job_with_count_two_is_done_after_two_executions() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, j) = s.post(
        "/v1/jobs",
        json!({"function_id": fid, "function_version": 0, "pattern": "* * * * *", "count": 2}),
    );
    assert_eq!(status, 201, "{j}");
    let jid = j["id"].as_str().unwrap().to_string();
    assert!(
        j["next_execution_time"].as_str().unwrap().ends_with(":00Z"),
        "aligned to the pattern: {j}"
    );
    for left in [1, 0] {
        // Bring the next tick forward instead of waiting for the minute.
        let (status, j) = s.put(
            &format!("/v1/jobs/{jid}"),
            json!({"next_execution_time": in_secs(1)}),
        );
        assert_eq!(status, 200, "{j}");
        let j = wait_job(&s, &jid, Duration::from_secs(10), |j| j["count"] == left);
        if left == 1 {
            assert_eq!(j["status"], "running");
            assert!(
                j["next_execution_time"].as_str().unwrap().ends_with(":00Z"),
                "{j}"
            );
        } else {
            assert_eq!(j["status"], "done");
        }
    }
    std::thread::sleep(Duration::from_secs(2));
    assert_eq!(job_executions(&s, &jid).len(), 2, "exactly 2 executions");
}

#[test]
fn pause_resume_and_validation() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let cases = [
        (
            json!({"pattern": "* * * * *"}),
            "Either function_alias or function_id must be provided.",
        ),
        (
            json!({"function_id": fid}),
            "pattern or first_execution_time must be specified.",
        ),
        (
            json!({"function_id": fid, "pattern": "* * * *"}),
            "The specified pattern is not valid: * * * *",
        ),
        (
            json!({"function_id": fid, "first_execution_time": in_secs(60), "count": 2}),
            "pattern must be provided if count is greater than 1.",
        ),
        (
            json!({"function_id": fid, "first_execution_time": "2001-01-01T00:00:00Z"}),
            "Execution time 2001-01-01T00:00:00Z is in the past: give a time from now on (UTC).",
        ),
        (
            json!({"function_id": fid, "first_execution_time": "not a date"}),
            "Invalid time 'not a date': use ISO 8601, e.g. 2026-11-28T06:48:38Z or '2026-11-28 06:48:38' (UTC).",
        ),
    ];
    for (body, message) in cases {
        let (status, e) = s.post("/v1/jobs", body.clone());
        assert_eq!(
            (status, e["faultstring"].as_str()),
            (400, Some(message)),
            "{body}"
        );
    }
    let (status, _) = s.post(
        "/v1/jobs",
        json!({"function_id": fid, "function_version": 4, "pattern": "* * * * *"}),
    );
    assert_eq!(status, 404);
    let (status, _) = s.post(
        "/v1/jobs",
        json!({"function_alias": "nope", "pattern": "* * * * *"}),
    );
    assert_eq!(status, 404);

    let (status, j) = s.post(
        "/v1/jobs",
        json!({"function_id": fid, "pattern": "0 0 1 1 *"}),
    );
    assert_eq!(status, 201, "{j}");
    let jid = j["id"].as_str().unwrap();
    assert!(j["count"].is_null());
    let (status, j) = s.put(&format!("/v1/jobs/{jid}"), json!({"name": null, "status": "paused", "pattern": null, "next_execution_time": null, "function_input": null}));
    assert_eq!((status, j["status"].as_str()), (200, Some("paused")), "{j}");
    let (status, e) = s.put(&format!("/v1/jobs/{jid}"), json!({"status": "done"}));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (
            400,
            Some("Invalid status: use running, paused or cancelled.")
        )
    );
    let (status, e) = s.put(&format!("/v1/jobs/{jid}"), json!({"pattern": ""}));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (400, Some("Can not change job type."))
    );
    let (status, j) = s.put(
        &format!("/v1/jobs/{jid}"),
        json!({"status": "running", "pattern": "*/5 * * * *"}),
    );
    assert_eq!(
        (status, j["status"].as_str()),
        (200, Some("running")),
        "{j}"
    );
    let minute: u32 = j["next_execution_time"].as_str().unwrap()[14..16]
        .parse()
        .unwrap();
    assert_eq!(minute % 5, 0, "rescheduled on the new pattern: {j}");

    let (_, list) = s.get("/v1/jobs");
    assert_eq!(list["jobs"].as_array().unwrap().len(), 1);
    let (status, e) = s.delete(&format!("/v1/functions/{fid}"));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (
            403,
            Some("The function is still associated with running job(s).")
        )
    );
    assert_eq!(s.delete(&format!("/v1/jobs/{jid}")).0, 204);
    let (status, e) = s.get(&format!("/v1/jobs/{jid}"));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (404, Some(format!("Job not found [id={jid}]").as_str()))
    );
}
