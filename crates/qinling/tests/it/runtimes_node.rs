//! The nodejs runtime's conformance tests, mirroring the python3 ones in `executions.rs`:
//! result, input forms, log with markers, exceptions, timeouts, the memory limit,
//! concurrency in one worker and warm reuse.

use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Server, assert_entry_refused, result, zip_of};

/// The id of the built-in runtime called `name`, once it is available.
pub fn runtime_named(s: &Server, name: &str) -> String {
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, body) = s.get("/v1/runtimes");
        if let Some(r) = body["runtimes"]
            .as_array()
            .and_then(|rs| rs.iter().find(|r| r["name"] == name))
        {
            if r["status"] == "available" {
                return r["id"].as_str().unwrap().to_string();
            }
            assert_ne!(r["status"], "error", "{name} runtime failed:\n{}", s.logs());
        }
        assert!(
            Instant::now() < deadline,
            "{name} runtime never became available:\n{}",
            s.logs()
        );
        std::thread::sleep(Duration::from_millis(50));
    }
}

/// Creates a nodejs function from one source file; returns the function JSON.
fn create_node(s: &Server, file: &str, source: &str, entry: &str, extra: &[(&str, &str)]) -> Value {
    let runtime = runtime_named(s, "nodejs");
    let (status, body) = s.create_function_raw(&runtime, zip_of(&[(file, source)]), entry, extra);
    assert_eq!(status, 201, "function create failed: {body}");
    body
}

const HELLO_JS: &str = r#"
exports.main = (context, input) => {
  const name = input === null ? 'World' : (typeof input === 'string' ? input : input.name);
  console.log(`Hello, ${name}`);
  return `Hello, ${name}`;
};
"#;

#[test]
fn node_result_input_forms_and_log() {
    let s = Server::start();
    let f = create_node(&s, "hello.js", HELLO_JS, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let e = s.execute(fid, Some(r#"{"name": "Qinling"}"#));
    assert_eq!(e["status"], "success", "{e}");
    let r = result(&e);
    assert_eq!(r["output"], "Hello, Qinling");
    assert!(r["duration"].as_f64().unwrap() < 5.0, "{r}");
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        s.log(id),
        format!("Start execution: {id}\nHello, Qinling\nFinished execution: {id}\n")
    );
    let e = s.execute(fid, Some("Bob"));
    assert_eq!(
        (e["input"].clone(), result(&e)["output"].clone()),
        (json!("Bob"), json!("Hello, Bob")),
        "a positional input is the raw string"
    );
    let e = s.execute(fid, None);
    assert_eq!(
        result(&e)["output"],
        json!("Hello, World"),
        "no input is null"
    );
}

#[test]
fn node_calling_convention_and_failures() {
    let s = Server::start();
    let src = r#"
exports.context = (context, input) => ({ execution_id: context.execution_id, input });
exports.later = async (context, input) => {
  await new Promise((r) => setTimeout(r, 50));
  return { sum: input.a + 2, list: [1, "two", null] };
};
exports.promise = () => Promise.resolve(7);
exports.boom = () => { console.log('about to fail'); throw new Error('boom happened'); };
exports.rejects = async () => { throw new TypeError('bad type'); };
exports.stderr = () => { console.error('to stderr'); };
exports.spin = () => { console.log('spinning'); for (;;) {} };
exports.sleepy = (c, input) => new Promise((r) => setTimeout(() => r('woke'), input.ms));
exports.pid = () => process.pid;
exports.circular = () => { const o = {}; o.self = o; return o; };
exports.exit = () => process.exit(3);
"#;
    // The most cpu: a timeout replaces the executor, and starting Node at 0.1 cpu can take
    // seconds where first touches of memory are slow (a fresh VM).
    let f = create_node(
        &s,
        "mod.js",
        src,
        "mod.context",
        &[("timeout", "1"), ("cpu", "300")],
    );
    let fid = f["id"].as_str().unwrap();
    let set_entry = |entry: &str| {
        let (status, body) = s.put(&format!("/v1/functions/{fid}"), json!({"entry": entry}));
        assert_eq!(status, 200, "{body}");
    };
    let e = s.execute(fid, Some(r#"{"x": 1}"#));
    assert_eq!(
        result(&e)["output"],
        json!({"execution_id": e["id"], "input": {"x": 1}})
    );

    set_entry("mod.later");
    let e = s.execute(fid, Some(r#"{"a": 40}"#));
    assert_eq!(
        result(&e)["output"],
        json!({"sum": 42, "list": [1, "two", null]}),
        "async functions are awaited"
    );
    set_entry("mod.promise");
    assert_eq!(result(&s.execute(fid, None))["output"], json!(7));

    set_entry("mod.boom");
    let e = s.execute(fid, None);
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (json!("failed"), json!("boom happened"))
    );
    let log = s.log(e["id"].as_str().unwrap());
    assert!(
        log.contains("about to fail\nError: boom happened\n    at ") && log.contains("mod.js"),
        "{log}"
    );

    set_entry("mod.rejects");
    let e = s.execute(fid, None);
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (json!("failed"), json!("bad type"))
    );
    assert!(
        s.log(e["id"].as_str().unwrap())
            .contains("TypeError: bad type")
    );

    set_entry("mod.stderr");
    let e = s.execute(fid, None);
    assert_eq!(result(&e)["output"], Value::Null);
    assert!(
        s.log(e["id"].as_str().unwrap()).contains("to stderr\n"),
        "stderr is captured too"
    );

    set_entry("mod.circular");
    let e = s.execute(fid, None);
    assert_eq!(e["status"], "failed");
    assert!(
        result(&e)["output"]
            .as_str()
            .unwrap()
            .starts_with("The function's return value is not JSON serializable"),
        "{e}"
    );

    set_entry("mod.spin");
    let e = s.execute(fid, None);
    let r = result(&e);
    assert_eq!(
        (e["status"].clone(), r["output"].clone()),
        (json!("failed"), json!("Function execution timeout.")),
        "a busy loop is killed at the timeout"
    );
    assert!(r["duration"].as_f64().unwrap() >= 1.0, "{r}");
    assert!(
        s.log(e["id"].as_str().unwrap()).contains("spinning"),
        "output before the kill is kept"
    );
    set_entry("mod.sleepy");
    let e = s.execute(fid, Some(r#"{"ms": 3000}"#));
    assert_eq!(
        result(&e)["output"],
        json!("Function execution timeout."),
        "{e}"
    );
    let e = s.execute(fid, Some(r#"{"ms": 10}"#));
    assert_eq!(
        result(&e)["output"],
        "woke",
        "the worker survives a timeout: {e}"
    );

    set_entry("mod.exit");
    let e = s.execute(fid, None);
    assert_eq!(e["status"], "failed", "{e}");

    set_entry("mod.pid");
    let first = result(&s.execute(fid, None))["output"].clone();
    let second = result(&s.execute(fid, None))["output"].clone();
    assert_eq!(first, second, "executions reuse the warm executor");

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
fn node_memory_limit() {
    let s = Server::start();
    let src = r#"
exports.hog = () => {
  const chunks = [];
  for (let i = 0; i < 64; i++) chunks.push(Buffer.alloc(8 << 20, 1));
  return chunks.length;
};
exports.small = () => 'fine';
"#;
    // A generous timeout: under a loaded machine the cgroup's reclaim before the OOM kill can
    // take seconds at the default 0.1 cpu.
    let f = create_node(
        &s,
        "m.js",
        src,
        "m.hog",
        &[("memory_size", "67108864"), ("timeout", "60")],
    );
    let fid = f["id"].as_str().unwrap();
    let e = s.execute(fid, None);
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (
            json!("failed"),
            json!("Function execution failed because of too much resource consumption")
        ),
        "512 MiB do not fit in 64 MiB"
    );
    let (status, body) = s.put(&format!("/v1/functions/{fid}"), json!({"entry": "m.small"}));
    assert_eq!(status, 200, "{body}");
    assert_eq!(result(&s.execute(fid, None))["output"], "fine");
}

#[test]
fn node_concurrent_executions_share_one_worker_with_separate_logs() {
    let s = Server::start();
    let src = r#"
exports.main = async (context, input) => {
  for (let i = 0; i < 5; i++) {
    console.log(input.name, i);
    await new Promise((r) => setTimeout(r, 100));
  }
  return process.ppid;
};
"#;
    // Each Node executor costs ~8 MiB: three at once need more than the 32 MiB default. The
    // most cpu, as two executors start here, slowly at 0.1 cpu on a fresh VM.
    let f = create_node(
        &s,
        "c.js",
        src,
        "c.main",
        &[("memory_size", "134217728"), ("cpu", "300")],
    );
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
    let mut supervisors = std::collections::HashSet::new();
    for h in handles {
        let (name, e) = h.join().unwrap();
        assert_eq!(e["status"], "success", "{e}");
        supervisors.insert(result(&e)["output"].clone());
        let id = e["id"].as_str().unwrap();
        let expected: String = (0..5).map(|i| format!("{name} {i}\n")).collect();
        assert_eq!(
            s.log(id),
            format!("Start execution: {id}\n{expected}Finished execution: {id}\n")
        );
    }
    assert_eq!(
        supervisors.len(),
        1,
        "three concurrent executions ran in one worker"
    );
}
