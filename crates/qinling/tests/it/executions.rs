//! `/v1/executions`: sync and async runs, the calling convention, logs, failures, timeouts,
//! concurrency in one worker, warm reuse, filters.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{HELLO, Server, assert_entry_refused, result};

#[test]
fn sync_execution_result_and_log() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let e = s.execute(fid, Some(r#"{"name": "Qinling"}"#));
    let keys: Vec<&str> = e.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "function_id",
            "function_version",
            "function_alias",
            "description",
            "status",
            "sync",
            "input",
            "result",
            "cpu_ms",
            "memory_peak_kb",
            "duration_ms",
            "memory_size",
            "cold_start_ms",
            "request_id",
            "trace_id",
            "project_id",
            "created_at",
            "updated_at"
        ]
    );
    // The usage fields are there in the POST's answer already (extras beyond upstream).
    assert_eq!(e["memory_size"], f["memory_size"]);
    assert!(e["duration_ms"].is_i64() && e["request_id"].as_str().unwrap().starts_with("req-"));
    // The first execution started the function's worker (the last below finds it warm).
    assert!(e["cold_start_ms"].is_i64(), "{e}");
    assert_eq!(e["trace_id"].as_str().map(str::len), Some(32), "{e}");
    assert_eq!(
        (e["status"].clone(), e["sync"].clone(), e["input"].clone()),
        (
            json!("success"),
            json!(true),
            json!(r#"{"name": "Qinling"}"#)
        )
    );
    let r = result(&e);
    assert_eq!(r["output"], "Hello, Qinling");
    assert!(r["duration"].as_f64().unwrap() < 5.0);
    assert!(
        e["result"]
            .as_str()
            .unwrap()
            .starts_with(r#"{"output": "Hello, Qinling", "duration": "#),
        "python-style JSON: {}",
        e["result"]
    );
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        s.log(id),
        format!("Start execution: {id}\nHello, Qinling\nFinished execution: {id}\n")
    );
    let r = s.get_raw(&format!("/v1/executions/{id}/log"));
    assert_eq!(r.headers()["content-type"], "text/plain; charset=UTF-8");
    let r = s
        .http
        .get(format!("{}/v1/executions/{id}/log", s.url))
        .header("accept", "application/json")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 406);

    // Positional input, and no input at all.
    let e = s.execute(fid, Some("Bob"));
    assert_eq!(
        (e["input"].clone(), result(&e)["output"].clone()),
        (json!("Bob"), json!("Hello, Bob"))
    );
    let e = s.execute(fid, None);
    assert_eq!(
        (e["input"].clone(), result(&e)["output"].clone()),
        (json!(null), json!("Hello, World"))
    );
    assert_eq!(e["cold_start_ms"], Value::Null, "warm: {e}");
    let (_, shown) = s.get(&format!("/v1/functions/{fid}"));
    assert_eq!(shown["count"], json!(3));
}

#[test]
fn calling_convention_and_failures() {
    let s = Server::start();
    let src = r#"
import os, sys, time

def no_context(a, b=2):
    return {"sum": a + b}

def with_context(context, **kwargs):
    return {"execution_id": context["execution_id"], "kwargs": sorted(kwargs)}

def boom(**kwargs):
    print("about to fail")
    raise ValueError("boom happened")

def stderr(**kwargs):
    sys.stderr.write("to stderr\n")
    return None

def sleepy(seconds=3, **kwargs):
    print("sleeping", flush=True)
    time.sleep(float(seconds))
    return "woke"

def zygote(**kwargs):
    return os.getppid()
"#;
    let f = s.create_function("mod.py", src, "mod.no_context", &[("timeout", "1")]);
    let fid = f["id"].as_str().unwrap();
    let set_entry = |entry: &str| {
        let (status, body) = s.put(&format!("/v1/functions/{fid}"), json!({"entry": entry}));
        assert_eq!(status, 200, "{body}");
    };
    let e = s.execute(fid, Some(r#"{"a": 40}"#));
    assert_eq!(
        result(&e)["output"],
        json!({"sum": 42}),
        "a function without **kwargs gets no context"
    );

    set_entry("mod.with_context");
    let e = s.execute(fid, Some(r#"{"x": 1}"#));
    assert_eq!(
        result(&e)["output"],
        json!({"execution_id": e["id"], "kwargs": ["x"]})
    );

    set_entry("mod.boom");
    let e = s.execute(fid, None);
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (json!("failed"), json!("boom happened"))
    );
    let log = s.log(e["id"].as_str().unwrap());
    assert!(
        log.contains("about to fail\nTraceback (most recent call last):")
            && log.contains("ValueError: boom happened"),
        "{log}"
    );

    set_entry("mod.stderr");
    let e = s.execute(fid, None);
    assert!(
        s.log(e["id"].as_str().unwrap()).contains("to stderr\n"),
        "stderr is captured too"
    );

    set_entry("mod.sleepy");
    let e = s.execute(fid, Some(r#"{"seconds": 5}"#));
    let r = result(&e);
    assert_eq!(
        (e["status"].clone(), r["output"].clone()),
        (json!("failed"), json!("Function execution timeout."))
    );
    assert!(r["duration"].as_f64().unwrap() >= 1.0, "{r}");
    assert!(
        s.log(e["id"].as_str().unwrap()).contains("sleeping"),
        "output before the kill is kept"
    );
    let e = s.execute(fid, Some(r#"{"seconds": 0.1}"#));
    assert_eq!(
        result(&e)["output"],
        "woke",
        "the worker survives a timeout"
    );

    set_entry("mod.zygote");
    let first = result(&s.execute(fid, None))["output"].clone();
    let second = result(&s.execute(fid, None))["output"].clone();
    assert_eq!(first, second, "executions reuse the warm worker");

    // A module that is not in the package is refused at update (issue 16: an entry resolves
    // inside the package or not at all).
    assert_entry_refused(
        &s,
        fid,
        "nope.main",
        "Invalid entry 'nope.main': the package has no module 'nope'",
    );
    set_entry("mod.missing");
    let e = s.execute(fid, None);
    let out = result(&e)["output"].as_str().unwrap().to_string();
    assert!(
        out.starts_with("Failed to load function mod.missing: ") && out.contains("missing"),
        "{out}"
    );
}

#[test]
fn concurrent_executions_share_one_worker_with_separate_logs() {
    let s = Server::start();
    let src = "import time, os\ndef main(name, **kwargs):\n    for i in range(5):\n        print(name, i, flush=True)\n        time.sleep(0.1)\n    return os.getppid()\n";
    let f = s.create_function("c.py", src, "c.main", &[]);
    let fid = f["id"].as_str().unwrap().to_string();
    s.execute(&fid, Some(r#"{"name": "warm"}"#));
    let handles: Vec<_> = ["alpha", "beta", "gamma"]
        .into_iter()
        .map(|name| {
            let (url, fid) = (s.url.clone(), fid.clone());
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let r = c
                    .post(format!("{url}/v1/executions"))
                    .json(&json!({"function_id": fid, "input": format!(r#"{{"name": "{name}"}}"#)}))
                    .send()
                    .unwrap();
                (name, crate::harness::parse(r).1)
            })
        })
        .collect();
    let mut zygotes = std::collections::HashSet::new();
    for h in handles {
        let (name, e) = h.join().unwrap();
        assert_eq!(e["status"], "success", "{e}");
        zygotes.insert(result(&e)["output"].clone());
        let id = e["id"].as_str().unwrap();
        let expected: String = (0..5).map(|i| format!("{name} {i}\n")).collect();
        assert_eq!(
            s.log(id),
            format!("Start execution: {id}\n{expected}Finished execution: {id}\n")
        );
    }
    assert_eq!(
        zygotes.len(),
        1,
        "three concurrent executions ran in one worker"
    );
}

#[test]
fn async_executions_and_filters() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, e) = s.post(
        "/v1/executions",
        json!({"function_id": fid, "sync": false, "input": "async", "description": "async one"}),
    );
    assert_eq!(
        (
            status,
            e["status"].clone(),
            e["result"].clone(),
            e["updated_at"].clone()
        ),
        (201, json!("running"), Value::Null, Value::Null)
    );
    let done = s.wait_execution(e["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(
        (done["status"].clone(), result(&done)["output"].clone()),
        (json!("success"), json!("Hello, async"))
    );
    let (_, failing) = s.post(
        "/v1/executions",
        json!({"function_id": fid, "input": "{\"bogus\": 1, \"name\": 2}", "description": "x"}),
    );
    assert_eq!(failing["status"], "success");

    let ids = |q: &str| -> Vec<String> {
        let (status, body) = s.get(&format!("/v1/executions{q}"));
        assert_eq!(status, 200, "{body}");
        body["executions"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| e["description"].as_str().unwrap_or("").to_string())
            .collect()
    };
    assert_eq!(ids(""), ["async one", "x"]);
    assert_eq!(ids("?description=has:sync"), ["async one"]);
    assert_eq!(ids("?description=neq:x"), ["async one"]);
    assert_eq!(ids("?description=in:x,y"), ["x"]);
    assert_eq!(ids("?description=nin:x,y"), ["async one"]);
    assert_eq!(ids(&format!("?function_id={fid}&status=success")).len(), 2);
    assert_eq!(ids("?status=failed").len(), 0);
    assert_eq!(s.get("/v1/executions?sort_key=x").0, 400);

    let id = done["id"].as_str().unwrap();
    assert_eq!(s.delete(&format!("/v1/executions/{id}")).0, 204);
    assert_eq!(
        s.get(&format!("/v1/executions/{id}")),
        (
            404,
            json!({"faultcode": "Client", "faultstring": format!("Execution not found [id={id}]"), "debuginfo": null})
        )
    );
    assert_eq!(
        s.get(&format!("/v1/executions/{id}/log")).1,
        json!({"faultstring": format!("Execution not found [id={id}]")})
    );
}

#[test]
fn empty_log_is_204() {
    let s = Server::start();
    // A function that loads but whose log is lost is impossible here (logs are unbuffered),
    // so an execution still queued behind a long one stands in for "no log yet".
    let f = s.create_function(
        "slow.py",
        "import time\ndef main(**kw):\n    time.sleep(2)\n",
        "slow.main",
        &[],
    );
    let (_, e) = s.post(
        "/v1/executions",
        json!({"function_id": f["id"], "sync": false}),
    );
    let r = s.get_raw(&format!("/v1/executions/{}/log", e["id"].as_str().unwrap()));
    assert_eq!(r.status().as_u16(), 204);
    assert_eq!(r.text().unwrap(), "");
}

/// The hot path records executions through the store's group-commit writer and admits them
/// with cached function definitions: the answer to a sync run is the row as recorded, every
/// execution is counted once, and a changed function is noticed at the next execution, sync
/// or async, and a deleted or unavailable one refused as before.
#[test]
fn recorded_rows_and_definitions_follow_changes() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let e = s.execute(fid, Some(r#"{"name": "one"}"#));
    let (_, shown) = s.get(&format!("/v1/executions/{}", e["id"].as_str().unwrap()));
    assert_eq!(shown, e, "the sync answer is the recorded row");

    // Many at once, sync and async: each recorded and counted exactly once.
    std::thread::scope(|scope| {
        for k in 0..8 {
            let s = &s;
            scope.spawn(move || {
                for i in 0..5 {
                    let (status, e) = s.post(
                        "/v1/executions",
                        json!({"function_id": fid, "sync": k % 2 == 0, "input": format!("{k}-{i}")}),
                    );
                    assert_eq!(status, 201, "{e}");
                }
            });
        }
    });
    let (_, all) = s.get(&format!("/v1/executions?function_id={fid}"));
    let all = all["executions"].as_array().unwrap().clone();
    assert_eq!(all.len(), 41);
    for e in &all {
        let done = s.wait_execution(e["id"].as_str().unwrap(), Duration::from_secs(30));
        let name = match e["input"].as_str().unwrap() {
            r#"{"name": "one"}"# => "one",
            positional => positional,
        };
        assert_eq!(result(&done)["output"], format!("Hello, {name}"));
    }
    assert_eq!(s.get(&format!("/v1/functions/{fid}")).1["count"], json!(41));

    // A new package: the next executions, async as well as sync, run it.
    let v2 = "def main(**kwargs):\n    return 'version two'\n";
    let form = reqwest::blocking::multipart::Form::new()
        .text("source", "package")
        .text("entry", "hello.main")
        .part(
            "package",
            reqwest::blocking::multipart::Part::bytes(crate::harness::zip_of(&[("hello.py", v2)]))
                .file_name("p.zip"),
        );
    let r = s
        .http
        .put(format!("{}/v1/functions/{fid}", s.url))
        .multipart(form)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    let (_, a) = s.post("/v1/executions", json!({"function_id": fid, "sync": false}));
    let a = s.wait_execution(a["id"].as_str().unwrap(), Duration::from_secs(30));
    assert_eq!(result(&a)["output"], "version two");
    assert_eq!(result(&s.execute(fid, None))["output"], "version two");

    // Deleted: refused, though its definition was cached.
    let (_, list) = s.get(&format!("/v1/executions?function_id={fid}"));
    for e in list["executions"].as_array().unwrap() {
        s.delete(&format!("/v1/executions/{}", e["id"].as_str().unwrap()));
    }
    assert_eq!(s.delete(&format!("/v1/functions/{fid}")).0, 204);
    let (status, body) = s.post("/v1/executions", json!({"function_id": fid}));
    assert_eq!(status, 404, "{body}");
}

/// A sync execution whose client hangs up still runs to its end and is recorded: the row is
/// not left `running`, and the function keeps working.
#[test]
fn a_sync_execution_outlives_its_client() {
    let s = Server::start();
    let src = "import time\ndef main(**kw):\n    time.sleep(2)\n    return 'done'\n";
    let f = s.create_function("slow.py", src, "slow.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let impatient = reqwest::blocking::Client::builder()
        .timeout(Duration::from_millis(500))
        .build()
        .unwrap();
    let hung_up = impatient
        .post(format!("{}/v1/executions", s.url))
        .json(&json!({"function_id": fid}))
        .send();
    assert!(hung_up.is_err(), "the client should have timed out");
    let (status, list) = s.get(&format!("/v1/executions?function_id={fid}"));
    assert_eq!(status, 200, "{list}");
    let id = list["executions"][0]["id"].as_str().unwrap().to_string();
    let e = s.wait_execution(&id, Duration::from_secs(30));
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (json!("success"), json!("done")),
        "{e}"
    );
    assert_eq!(result(&s.execute(fid, None))["output"], "done");
}
