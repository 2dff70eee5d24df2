//! The README's tour, run through the `qinling` CLI binary against a live server: what a
//! newcomer types must work as written.

use std::process::{Command, Output};

use serde_json::Value;

use crate::harness::Server;

fn qinling(s: &Server, args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_qinling"))
        .args(args)
        .env("QINLING_URL", &s.url)
        .env_remove("QINLING_TOKEN")
        .output()
        .expect("run qinling")
}

/// Runs a command that must succeed and returns its stdout.
fn ok(s: &Server, args: &[&str]) -> String {
    let out = qinling(s, args);
    assert!(
        out.status.success(),
        "qinling {args:?} failed: {}\n{}",
        String::from_utf8_lossy(&out.stderr),
        String::from_utf8_lossy(&out.stdout)
    );
    String::from_utf8(out.stdout).unwrap()
}

fn json(s: &Server, args: &[&str]) -> Value {
    let mut all = args.to_vec();
    all.extend(["-f", "json"]);
    let text = ok(s, &all);
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{args:?} printed no JSON ({e}): {text}"))
}

#[test]
fn readme_tour_through_the_cli() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.py");
    std::fs::write(
        &file,
        "def main(name='World', **kwargs):\n    print('Hello, %s' % name)\n    return 'Hello, %s' % name\n",
    )
    .unwrap();

    assert!(ok(&s, &["runtime", "list"]).contains("python3"));
    let f = json(
        &s,
        &[
            "function",
            "create",
            "--name",
            "hello",
            "--runtime",
            "python3",
            "--entry",
            "hello.main",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    assert_eq!(f["name"], "hello", "{f}");

    let e = json(
        &s,
        &[
            "function",
            "invoke",
            "hello",
            "--input",
            r#"{"name": "Qinling"}"#,
        ],
    );
    assert_eq!(e["status"], "success", "{e}");
    assert!(e["result"].to_string().contains("Hello, Qinling"), "{e}");
    let id = e["id"].as_str().unwrap().to_string();

    assert!(ok(&s, &["execution", "list"]).contains(&id));
    let log = ok(&s, &["execution", "log", &id]);
    assert!(
        log.contains(&format!("Start execution: {id}"))
            && log.contains("Hello, Qinling")
            && log.contains(&format!("Finished execution: {id}")),
        "{log}"
    );

    let a = json(
        &s,
        &["function", "invoke", "hello", "--input", "Bob", "--async"],
    );
    let done = s.wait_execution(
        a["id"].as_str().unwrap(),
        std::time::Duration::from_secs(60),
    );
    assert_eq!(done["status"], "success", "{done}");
    assert!(
        done["result"].as_str().unwrap().contains("Hello, Bob"),
        "{done}"
    );

    // Errors print the server's message and exit non-zero.
    let out = qinling(&s, &["function", "show", "no-such-function"]);
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("no-such-function"), "{err}");

    // The worker commands (admin).
    ok(&s, &["function", "scale-up", "hello", "--count", "2"]);
    let workers = json(&s, &["function", "workers", "hello"]);
    assert!(
        workers.as_array().is_some_and(|w| w.len() >= 2),
        "{workers}"
    );
    ok(&s, &["function", "scale-down", "hello", "--count", "5"]);
    assert_eq!(
        json(&s, &["function", "workers", "hello"])
            .as_array()
            .map(Vec::len),
        Some(1)
    );
    ok(&s, &["function", "detach", "hello"]);
    assert_eq!(
        json(&s, &["function", "workers", "hello"])
            .as_array()
            .map(Vec::len),
        Some(0)
    );

    ok(&s, &["function", "delete", "hello"]);
    let (_, list) = s.get("/v1/functions");
    assert_eq!(list["functions"].as_array().unwrap().len(), 0);
}
