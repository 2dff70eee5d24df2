//! The custom runtime's conformance tests (a package carrying its own executable, here shell
//! scripts with a shebang), mirroring the python3 ones in `executions.rs`: result, input
//! forms, log, failures, timeout, the memory limit, concurrency in one worker, warm reuse.

use serde_json::{Value, json};

use crate::harness::{Server, assert_entry_refused, result, zip_of};
use crate::runtimes_node::runtime_named;

fn create_custom(s: &Server, files: &[(&str, &str)], entry: &str, extra: &[(&str, &str)]) -> Value {
    let runtime = runtime_named(s, "custom");
    let (status, body) = s.create_function_raw(&runtime, zip_of(files), entry, extra);
    assert_eq!(status, 201, "function create failed: {body}");
    body
}

/// Echoes its input back inside an object, logs to stderr, and behaves as the input asks.
const HANDLER: &str = r#"#!/bin/sh
input=$(cat)
echo "got $input" >&2
case "$input" in
  '"text"') echo "plain words"; exit 0 ;;
  '"fail"') echo "it broke" >&2; exit 3 ;;
  '"sleep"') echo "sleeping" >&2; sleep 10 ;;
  '"hog"') x=$(head -c 300000000 /dev/zero | tr '\000' a); echo "${#x}" ;;
  '"shim"') echo "$PPID"; exit 0 ;;
  '"slow"') for i in 1 2 3 4 5; do echo "line $i" >&2; sleep 0.1; done; echo "$PPID"; exit 0 ;;
esac
printf '{"input": %s}\n' "$input"
"#;

#[test]
fn custom_result_input_forms_and_log() {
    let s = Server::start();
    let f = create_custom(
        &s,
        &[("bin/handler", HANDLER)],
        "bin/handler",
        &[("timeout", "1")],
    );
    let fid = f["id"].as_str().unwrap();
    let e = s.execute(fid, Some(r#"{"name": "Qinling"}"#));
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(result(&e)["output"], json!({"input": {"name": "Qinling"}}));
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        s.log(id),
        format!("Start execution: {id}\ngot {{\"name\": \"Qinling\"}}\nFinished execution: {id}\n")
    );
    let e = s.execute(fid, Some("Bob"));
    assert_eq!(
        result(&e)["output"],
        json!({"input": "Bob"}),
        "positional: a JSON string"
    );
    let e = s.execute(fid, None);
    assert_eq!(result(&e)["output"], json!({"input": null}));
    let e = s.execute(fid, Some("text"));
    assert_eq!(
        result(&e)["output"],
        json!("plain words"),
        "stdout that is not JSON is a string"
    );

    let e = s.execute(fid, Some("fail"));
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (
            json!("failed"),
            json!("The function's process exited with status 3.")
        )
    );
    assert!(s.log(e["id"].as_str().unwrap()).contains("it broke\n"));

    let e = s.execute(fid, Some("sleep"));
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

    let first = result(&s.execute(fid, Some("shim")))["output"].clone();
    let second = result(&s.execute(fid, Some("shim")))["output"].clone();
    assert_eq!(first, second, "executions reuse the warm worker");

    // An entry that is not in the package is refused at update, with a message that says why.
    assert_entry_refused(&s, fid, "bin/nope", "the package has no file 'bin/nope'");
}

#[test]
fn custom_memory_limit_and_concurrency() {
    let s = Server::start();
    // A generous timeout: on a loaded machine the cgroup's reclaim before the OOM kill can
    // take seconds at the default 0.1 cpu.
    let f = create_custom(
        &s,
        &[("handler.sh", HANDLER)],
        "handler.sh",
        &[("memory_size", "67108864"), ("timeout", "60")],
    );
    let fid = f["id"].as_str().unwrap().to_string();
    let e = s.execute(&fid, Some("hog"));
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (
            json!("failed"),
            json!("Function execution failed because of too much resource consumption")
        ),
        "300 MB do not fit in 64 MiB: {}",
        s.log(e["id"].as_str().unwrap())
    );
    let handles: Vec<_> = (0..3)
        .map(|_| {
            let (url, fid) = (s.url.clone(), fid.clone());
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let r = c
                    .post(format!("{url}/v1/executions"))
                    .json(&json!({"function_id": fid, "input": "slow"}))
                    .send()
                    .unwrap();
                crate::harness::parse(r).1
            })
        })
        .collect();
    let mut shims = std::collections::HashSet::new();
    for h in handles {
        let e = h.join().unwrap();
        assert_eq!(e["status"], "success", "{e}");
        shims.insert(result(&e)["output"].clone());
        let id = e["id"].as_str().unwrap();
        let expected: String = (1..=5).map(|i| format!("line {i}\n")).collect();
        assert_eq!(
            s.log(id),
            format!("Start execution: {id}\ngot \"slow\"\n{expected}Finished execution: {id}\n")
        );
    }
    assert_eq!(
        shims.len(),
        1,
        "three concurrent executions ran in one worker"
    );
}
