//! Execution traces end to end: a server with `--otlp-endpoint` exports to a real OTLP/HTTP
//! receiver (`tests/otlp/receiver.py`, decoding with the OpenTelemetry project's own
//! protocol types), one trace per execution with its phases as spans, joined to the
//! caller's `traceparent`, and the function handed the context to join it too.

use std::collections::BTreeSet;
use std::io::{BufRead, BufReader};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{Opts, Server};

/// The receiver process; killed on drop.
struct Receiver {
    child: Child,
    spans: PathBuf,
    port: u16,
    _dir: tempfile::TempDir,
}

impl Drop for Receiver {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

impl Receiver {
    /// Starts the receiver, or says why it cannot (no venv with opentelemetry-proto).
    fn start() -> Option<Receiver> {
        let root = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../..");
        let venv = std::env::var_os("OTLP_VENV")
            .map(PathBuf::from)
            .unwrap_or_else(|| root.join(".venv-otlp/bin"));
        let python = venv.join("python");
        if !python.exists() {
            eprintln!(
                "SKIPPED the OTLP trace test: no venv with opentelemetry-proto at {} \
                 (run scripts/setup-otlp-venv.sh, or set OTLP_VENV)",
                venv.display()
            );
            return None;
        }
        let dir = tempfile::tempdir().unwrap();
        let spans = dir.path().join("spans.jsonl");
        let mut child = Command::new(python)
            .arg(root.join("tests/otlp/receiver.py"))
            .arg(&spans)
            .stdout(Stdio::piped())
            .spawn()
            .expect("starting the OTLP receiver");
        let mut line = String::new();
        BufReader::new(child.stdout.take().unwrap())
            .read_line(&mut line)
            .unwrap();
        let port = line.trim().parse().expect("the receiver's port");
        Some(Receiver {
            child,
            spans,
            port,
            _dir: dir,
        })
    }

    /// The spans of `trace_id` received so far.
    fn trace(&self, trace_id: &str) -> Vec<Value> {
        let text = std::fs::read_to_string(&self.spans).unwrap_or_default();
        // Only whole lines: the receiver may be writing the next one as we read.
        let whole = text.rfind('\n').map_or("", |end| &text[..end]);
        whole
            .lines()
            .map(|l| serde_json::from_str::<Value>(l).unwrap())
            .filter(|s| s["trace_id"] == trace_id)
            .collect()
    }

    /// Waits until `trace_id` has at least `n` spans.
    fn wait(&self, trace_id: &str, n: usize) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.trace(trace_id);
            if spans.len() >= n || Instant::now() > deadline {
                return spans;
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

impl Receiver {
    /// Waits for the spans of execution `id` in `trace_id`: its execution span and the
    /// children under it (at least the four every run has).
    fn execution(&self, trace_id: &str, id: &str) -> Vec<Value> {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let spans = self.trace(trace_id);
            let root = spans
                .iter()
                .find(|s| s["name"] == "execution" && s["attributes"]["faas.invocation_id"] == id);
            if let Some(root) = root {
                let mine: Vec<Value> = spans
                    .iter()
                    .filter(|s| s == &root || s["parent_span_id"] == root["span_id"])
                    .cloned()
                    .collect();
                if mine.len() >= 5 || Instant::now() > deadline {
                    return mine;
                }
            } else if Instant::now() > deadline {
                panic!("no execution span of {id} in {spans:#?}");
            }
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

fn names(spans: &[Value]) -> BTreeSet<String> {
    spans
        .iter()
        .map(|s| s["name"].as_str().unwrap().to_string())
        .collect()
}

fn named<'a>(spans: &'a [Value], name: &str) -> &'a Value {
    spans
        .iter()
        .find(|s| s["name"] == name)
        .unwrap_or_else(|| panic!("no {name} span in {spans:#?}"))
}

/// Every span but the root is the root's child, and inside it.
fn check_tree(spans: &[Value]) -> &Value {
    let root = named(spans, "execution");
    assert_eq!(root["kind"], "SPAN_KIND_SERVER");
    for s in spans {
        assert!(s["start"].as_u64() <= s["end"].as_u64(), "{s}");
        if s["name"] != "execution" {
            assert_eq!(s["parent_span_id"], root["span_id"], "{s}");
            assert_eq!(s["kind"], "SPAN_KIND_INTERNAL", "{s}");
            assert!(s["start"].as_u64() >= root["start"].as_u64(), "{s}");
            assert!(s["end"].as_u64() <= root["end"].as_u64(), "{s}");
        }
        assert_eq!(s["resource"]["service.name"], "qinling", "{s}");
        assert_eq!(s["scope"], "qinling", "{s}");
    }
    root
}

#[test]
fn executions_export_one_trace_each_joined_to_the_callers() {
    let Some(receiver) = Receiver::start() else {
        return;
    };
    let s = Server::start_with(Opts {
        extra: vec![
            "--otlp-endpoint".into(),
            format!("http://127.0.0.1:{}", receiver.port),
        ],
        ..Opts::default()
    });
    let f = s.create_function(
        "traced.py",
        "def main(fail=False, context=None, **kw):\n    if fail:\n        raise ValueError('asked to')\n    return context['traceparent']\n",
        "traced.main",
        &[("name", "traced")],
    );
    let fid = f["id"].as_str().unwrap();

    // Sync, with the caller's trace: the execution span is the caller's span's child.
    let caller_trace = "4bf92f3577b34da6a3ce929d0e0e4736";
    let caller_span = "00f067aa0ba902b7";
    let r = s
        .http
        .post(format!("{}/v1/executions", s.url))
        .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
        .json(&json!({"function_id": fid}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let e: Value = r.json().unwrap();
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(e["trace_id"], caller_trace, "{e}");
    let spans = receiver.wait(caller_trace, 6);
    assert_eq!(
        names(&spans),
        [
            "admission",
            "cold_start",
            "execution",
            "queue",
            "record",
            "run"
        ]
        .map(String::from)
        .into(),
        "{spans:#?}"
    );
    assert_eq!(spans.len(), 6, "one trace, each span once: {spans:#?}");
    let root = check_tree(&spans);
    assert_eq!(root["parent_span_id"], caller_span);
    assert_eq!(root["status"], "STATUS_CODE_UNSET");
    assert_eq!(root["attributes"]["faas.invocation_id"], e["id"]);
    assert_eq!(root["attributes"]["faas.name"], "traced");
    assert_eq!(root["attributes"]["faas.coldstart"], true);
    assert_eq!(root["attributes"]["qinling.function.id"], fid);
    // The function was handed the run span as its parent.
    let run = named(&spans, "run");
    let output: Value = serde_json::from_str(e["result"].as_str().unwrap()).unwrap();
    assert_eq!(
        output["output"],
        format!("00-{caller_trace}-{}-01", run["span_id"].as_str().unwrap())
    );

    // Async, no caller trace: a trace of its own, whose id the record shows; a failure
    // shows as the execution span's error.
    let (status, e) = s.post(
        "/v1/executions",
        json!({"function_id": fid, "sync": false, "input": "{\"fail\": true}"}),
    );
    assert_eq!(status, 201, "{e}");
    let e = s.wait_execution(e["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(e["status"], "failed", "{e}");
    let trace = e["trace_id"].as_str().expect("a trace id").to_string();
    assert_eq!(trace.len(), 32);
    assert_ne!(trace, caller_trace);
    let spans = receiver.wait(&trace, 5);
    assert_eq!(
        names(&spans),
        ["admission", "execution", "queue", "record", "run"]
            .map(String::from)
            .into(),
        "warm now, so no cold start: {spans:#?}"
    );
    let root = check_tree(&spans);
    assert_eq!(root["parent_span_id"], "");
    assert_eq!(root["status"], "STATUS_CODE_ERROR");
    assert!(
        root["status_message"]
            .as_str()
            .unwrap()
            .contains("asked to"),
        "{root}"
    );
    assert_eq!(root["attributes"]["qinling.execution.status"], "failed");

    // The trace id is on every read of the record.
    let (_, again) = s.get(&format!("/v1/executions/{}", e["id"].as_str().unwrap()));
    assert_eq!(again["trace_id"], trace.as_str());

    // Every runtime hands the function its run span: nodejs in `context`, custom (and wasm,
    // tested in its crate) as the `TRACEPARENT` environment variable.
    for (runtime, file, source, entry) in [
        (
            "nodejs",
            "tp.js",
            "exports.main = (context, input) => context.traceparent;\n",
            "tp.main",
        ),
        (
            "custom",
            "handler",
            "#!/bin/sh\nprintf '\"%s\"\\n' \"$TRACEPARENT\"\n",
            "handler",
        ),
    ] {
        let rt = crate::runtimes_node::runtime_named(&s, runtime);
        let (status, f) =
            s.create_function_raw(&rt, crate::harness::zip_of(&[(file, source)]), entry, &[]);
        assert_eq!(status, 201, "{runtime}: {f}");
        let r = s
            .http
            .post(format!("{}/v1/executions", s.url))
            .header("traceparent", format!("00-{caller_trace}-{caller_span}-01"))
            .json(&json!({"function_id": f["id"]}))
            .send()
            .unwrap();
        let e: Value = r.json().unwrap();
        assert_eq!(e["status"], "success", "{runtime}: {e}");
        let spans = receiver.execution(caller_trace, e["id"].as_str().unwrap());
        let run = named(&spans, "run");
        let output: Value = serde_json::from_str(e["result"].as_str().unwrap()).unwrap();
        assert_eq!(
            output["output"],
            format!("00-{caller_trace}-{}-01", run["span_id"].as_str().unwrap()),
            "{runtime}"
        );
    }

    // An invalid traceparent starts a new trace instead of failing the request.
    let r = s
        .http
        .post(format!("{}/v1/executions", s.url))
        .header("traceparent", "00-not-a-trace-01")
        .json(&json!({"function_id": fid}))
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 201);
    let e: Value = r.json().unwrap();
    assert_eq!(e["status"], "success", "{e}");
    assert_ne!(e["trace_id"], caller_trace);
    assert_eq!(receiver.wait(e["trace_id"].as_str().unwrap(), 5).len(), 5);
}
