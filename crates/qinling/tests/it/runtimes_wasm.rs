//! The wasm runtime's conformance tests, mirroring the python3 ones in `executions.rs` and
//! the custom runtime's: result, input forms, log, failures (trap, exit status), timeout,
//! the memory limit, concurrency, warm reuse; plus what is wasm's own: modules compiled at
//! create (an invalid one is a 400 that says why), a bare module or a zip, compiled
//! artefacts that survive a restart and go with their package. The modules are the WAT
//! examples of `qinling-wasm`, compiled here by the `wat` crate.

use std::path::PathBuf;

use qinling_wasm::examples;
use serde_json::{Value, json};

use crate::harness::{Opts, Server, result, zip_of};
use crate::runtimes_node::runtime_named;

fn wasm(wat: &str) -> Vec<u8> {
    wat::parse_str(wat).unwrap()
}

/// Creates a wasm function from a package (a bare module or a zip); asserts a 201.
fn create_wasm(s: &Server, package: Vec<u8>, entry: &str, extra: &[(&str, &str)]) -> Value {
    let runtime = runtime_named(s, "wasm");
    let (status, body) = s.create_function_raw(&runtime, package, entry, extra);
    assert_eq!(status, 201, "function create failed: {body}");
    body
}

/// The compiled artefacts in the server's data directory.
fn artefacts(s: &Server) -> Vec<PathBuf> {
    let mut out = Vec::new();
    crate::harness::walk(&s.data_dir.join("wasm"), &mut out);
    out.retain(|p| p.extension().is_some_and(|e| e == "cwasm"));
    out.sort();
    out
}

fn status_and_output(e: &Value) -> (Value, Value) {
    (e["status"].clone(), result(e)["output"].clone())
}

#[test]
fn wasm_result_input_forms_log_and_warm_reuse() {
    let s = Server::start();
    let f = create_wasm(&s, wasm(examples::ECHO), "", &[]);
    assert_eq!(f["entry"], "main.wasm", "a bare module's default entry");
    let fid = f["id"].as_str().unwrap();
    let rt = f["runtime_id"].as_str().unwrap();
    assert_eq!(artefacts(&s).len(), 1, "compiled at create");

    let e = s.execute(fid, Some(r#"{"name": "Qinling"}"#));
    assert_eq!(
        status_and_output(&e),
        (json!("success"), json!({"name": "Qinling"})),
        "{e}"
    );
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        s.log(id),
        format!("Start execution: {id}\nlog: hello from wasm\nFinished execution: {id}\n")
    );
    assert!(e["memory_peak_kb"].as_u64().unwrap() >= 64, "{e}");
    let e = s.execute(fid, Some("Bob"));
    assert_eq!(
        result(&e)["output"],
        json!("Bob"),
        "positional: a JSON string on stdin"
    );
    let e = s.execute(fid, None);
    assert_eq!(result(&e)["output"], Value::Null, "no input: empty stdin");

    // Warm reuse: one cold start (the first instantiation) for all of them, no new artefact.
    let text = s.get_raw("/metrics").text().unwrap();
    assert_eq!(
        crate::metrics::sample(
            &text,
            "qinling_cold_start_seconds_count",
            &[("runtime", rt)]
        ),
        Some(1.0),
        "{text}"
    );
    assert_eq!(artefacts(&s).len(), 1);
    // No workers: executions run in the server.
    let (status, w) = s.get(&format!("/v1/functions/{fid}/workers"));
    assert_eq!((status, w["workers"].clone()), (200, json!([])));
    let (status, pool) = s.get(&format!("/v1/runtimes/{rt}/pool"));
    assert_eq!(
        (status, pool["capacity"].clone()),
        (200, json!({"total": 0, "available": 0}))
    );
}

#[test]
fn wasm_failures_timeout_and_memory_limit() {
    let s = Server::start();
    let trap = create_wasm(&s, wasm(examples::TRAP), "", &[]);
    let e = s.execute(trap["id"].as_str().unwrap(), None);
    let (status, output) = status_and_output(&e);
    assert_eq!(status, "failed", "{e}");
    assert!(output.as_str().unwrap().contains("unreachable"), "{output}");
    let id = e["id"].as_str().unwrap();
    let log = s.log(id);
    assert!(
        log.starts_with(&format!("Start execution: {id}\nabout to fail\nwasm trap:"))
            && log.ends_with(&format!("Finished execution: {id}\n")),
        "the log has the output and the trap: {log}"
    );

    let exit = create_wasm(&s, wasm(examples::EXIT), "", &[]);
    let e = s.execute(exit["id"].as_str().unwrap(), None);
    assert_eq!(status_and_output(&e), (json!("failed"), json!("bad input")));

    let spin = create_wasm(&s, wasm(examples::SPIN), "", &[("timeout", "1")]);
    let e = s.execute(spin["id"].as_str().unwrap(), None);
    assert_eq!(
        status_and_output(&e),
        (json!("failed"), json!("Function execution timeout."))
    );
    assert!(result(&e)["duration"].as_f64().unwrap() >= 1.0, "{e}");
    assert!(s.log(e["id"].as_str().unwrap()).contains("spinning\n"));
    // The default cpu (100 millicpu) holds: a tenth of the wall time, plus 10 ms of burst
    // and what the last slice before a check overran (one epoch tick, more when the ticker
    // thread is late on a loaded machine). Unthrottled, the loop would use ~1000 ms.
    let (cpu, wall) = (
        e["cpu_ms"].as_u64().unwrap(),
        e["duration_ms"].as_u64().unwrap(),
    );
    assert!(
        cpu <= wall / 10 + 75,
        "{cpu} ms of CPU in {wall} ms at 100 millicpu: {e}"
    );

    let grow = create_wasm(&s, wasm(examples::GROW), "", &[("memory_size", "33554432")]);
    let e = s.execute(grow["id"].as_str().unwrap(), None);
    assert_eq!(
        status_and_output(&e),
        (
            json!("failed"),
            json!("Function execution failed because of too much resource consumption")
        )
    );
    assert_eq!(e["memory_peak_kb"], json!(32 * 1024), "{e}");

    // The server is unharmed: a busy loop and a memory hog later, others still run.
    let echo = create_wasm(&s, wasm(examples::ECHO), "", &[]);
    let e = s.execute(echo["id"].as_str().unwrap(), Some("[1, 2]"));
    assert_eq!(status_and_output(&e), (json!("success"), json!("[1, 2]")));
}

#[test]
fn wasm_zip_package_and_concurrency() {
    let s = Server::start();
    // A zip's single module is found without an entry.
    let mut zip = std::io::Cursor::new(Vec::new());
    {
        use std::io::Write;
        let mut w = zip::ZipWriter::new(&mut zip);
        let opts = zip::write::SimpleFileOptions::default();
        w.start_file("README", opts).unwrap();
        w.write_all(b"an echo").unwrap();
        w.start_file("fn/echo.wasm", opts).unwrap();
        w.write_all(&wasm(examples::ECHO)).unwrap();
        w.finish().unwrap();
    }
    let f = create_wasm(&s, zip.into_inner(), "", &[]);
    assert_eq!(f["entry"], "fn/echo.wasm");
    let fid = f["id"].as_str().unwrap().to_string();
    let handles: Vec<_> = (0..6)
        .map(|i| {
            let (url, fid) = (s.url.clone(), fid.clone());
            std::thread::spawn(move || {
                let c = reqwest::blocking::Client::new();
                let r = c
                    .post(format!("{url}/v1/executions"))
                    .json(&json!({"function_id": fid, "input": format!("{{\"n\": {i}}}")}))
                    .send()
                    .unwrap();
                (i, crate::harness::parse(r).1)
            })
        })
        .collect();
    for h in handles {
        let (i, e) = h.join().unwrap();
        assert_eq!(status_and_output(&e), (json!("success"), json!({"n": i})));
        let id = e["id"].as_str().unwrap();
        assert_eq!(
            s.log(id),
            format!("Start execution: {id}\nlog: hello from wasm\nFinished execution: {id}\n")
        );
    }
}

#[test]
fn wasm_concurrency_limit_is_a_429() {
    let s = Server::start_with(Opts {
        extra: [
            "--max-workers-per-function",
            "1",
            "--function-concurrency",
            "1",
            "--max-waiting-per-function",
            "0",
        ]
        .map(String::from)
        .to_vec(),
        ..Opts::default()
    });
    let f = create_wasm(&s, wasm(examples::SPIN), "", &[("timeout", "3")]);
    let fid = f["id"].as_str().unwrap().to_string();
    // An async execution is never refused (it waits for the slot in the durable queue).
    let (status, busy) = s.post("/v1/executions", json!({"function_id": fid, "sync": false}));
    assert_eq!(status, 201, "{busy}");
    // Two clients each keep a sync execution going: once one runs, the other's next request
    // is refused. (Two requests arriving together may both get in, one waiting for the
    // slot; they then end 3 s apart, and the first to end is refused on its next try.)
    let stop = std::sync::atomic::AtomicBool::new(false);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(60);
    let refusals: Vec<Value> = std::thread::scope(|scope| {
        let client = || {
            while !stop.load(std::sync::atomic::Ordering::SeqCst) {
                let (status, body) = s.post("/v1/executions", json!({"function_id": fid}));
                if status == 429 {
                    stop.store(true, std::sync::atomic::Ordering::SeqCst);
                    return Some(body);
                }
                assert_eq!(status, 201, "{body}");
                assert!(
                    std::time::Instant::now() < deadline,
                    "never refused: {body}"
                );
            }
            None
        };
        let clients = [scope.spawn(client), scope.spawn(client)];
        clients
            .into_iter()
            .filter_map(|c| c.join().unwrap())
            .collect()
    });
    assert!(!refusals.is_empty(), "never refused");
    for body in refusals {
        assert!(
            body["faultstring"]
                .as_str()
                .unwrap()
                .contains("is at its concurrency limit"),
            "{body}"
        );
    }
    let e = s.wait_execution(
        busy["id"].as_str().unwrap(),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(result(&e)["output"], "Function execution timeout.");
}

#[test]
fn wasm_invalid_modules_are_refused_with_the_reason() {
    let s = Server::start();
    let runtime = runtime_named(&s, "wasm");
    let env_import = r#"(module (import "env" "f" (func)) (func (export "_start")))"#;
    let reactor = r#"(module (func (export "_initialize")))"#;
    let cases: Vec<(&str, Vec<u8>, &str)> = vec![
        (
            "truncated module",
            b"\0asm\x01\0\0\0\x01".to_vec(),
            "The package is not a WebAssembly module Qinling can run: ",
        ),
        (
            "foreign import",
            wasm(env_import),
            "The package is not a WebAssembly module Qinling can run: the module imports `env::f`; a function's module may import only WASI preview 1 (`wasi_snapshot_preview1`)",
        ),
        (
            "no _start",
            wasm(reactor),
            "The package is not a WebAssembly module Qinling can run: the module has no `_start` function",
        ),
        (
            "zip without a module",
            zip_of(&[("hello.py", "x")]),
            "The package contains no WebAssembly module (.wasm).",
        ),
        (
            "neither",
            b"hello".to_vec(),
            "Package is not a valid ZIP package.",
        ),
    ];
    for (what, package, expect) in cases {
        let (status, body) = s.create_function_raw(&runtime, package, "", &[]);
        assert_eq!(status, 400, "{what}: {body}");
        let msg = body["faultstring"].as_str().unwrap();
        assert!(msg.starts_with(expect), "{what}: {msg}");
    }
    assert!(artefacts(&s).is_empty(), "nothing was compiled or kept");
    let (_, list) = s.get("/v1/functions");
    assert_eq!(list["functions"], json!([]));

    // An update with an invalid module changes nothing.
    let f = create_wasm(&s, wasm(examples::HELLO), "", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, body) =
        crate::versions::update_function_raw(&s, fid, &[], Some((wasm(reactor), "f.wasm")));
    assert_eq!(status, 400, "{body}");
    let e = s.execute(fid, None);
    assert_eq!(
        status_and_output(&e),
        (json!("success"), json!("Hello, World"))
    );
}

#[test]
fn wasm_artefacts_survive_a_restart_and_go_with_the_function() {
    let mut s = Server::start();
    let f = create_wasm(&s, wasm(examples::HELLO), "hello", &[]);
    let fid = f["id"].as_str().unwrap().to_string();
    let before = artefacts(&s);
    assert_eq!(before.len(), 1);
    let written = std::fs::metadata(&before[0]).unwrap().modified().unwrap();
    s.restart();
    let e = s.execute(&fid, None);
    assert_eq!(
        status_and_output(&e),
        (json!("success"), json!("Hello, World"))
    );
    assert_eq!(artefacts(&s), before);
    assert_eq!(
        std::fs::metadata(&before[0]).unwrap().modified().unwrap(),
        written,
        "loaded, not recompiled"
    );
    assert_eq!(s.delete(&format!("/v1/functions/{fid}")).0, 204);
    assert!(
        artefacts(&s).is_empty(),
        "the artefact went with the package"
    );
    assert!(s.package_files().is_empty());
}
