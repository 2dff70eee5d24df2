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

/// `qinling function version`, `alias`, `job` and `webhook` against a live server.
#[test]
fn versions_aliases_jobs_and_webhooks_through_the_cli() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.py");
    std::fs::write(&file, crate::harness::HELLO).unwrap();
    let file = file.to_str().unwrap();
    let f = json(
        &s,
        &[
            "function",
            "create",
            "--runtime",
            "python3",
            "--name",
            "hi",
            "--entry",
            "hello.main",
            "--file",
            file,
        ],
    );
    let fid = f["id"].as_str().unwrap();

    let v = json(
        &s,
        &[
            "function",
            "version",
            "create",
            "hi",
            "--description",
            "first",
        ],
    );
    assert_eq!(
        (v["version_number"].as_i64(), v["description"].as_str()),
        (Some(1), Some("first"))
    );
    let out = qinling(&s, &["function", "version", "create", "hi"]);
    assert!(!out.status.success());
    assert!(
        String::from_utf8_lossy(&out.stderr)
            .contains("Function package not changed since the latest version 1. (HTTP 403)"),
        "{out:?}"
    );
    let list = json(&s, &["function", "version", "list", "hi"]);
    assert_eq!(list.as_array().unwrap().len(), 1);
    let zip = dir.path().join("v1.zip");
    ok(
        &s,
        &[
            "function",
            "version",
            "download",
            "hi",
            "1",
            "-o",
            zip.to_str().unwrap(),
        ],
    );
    assert!(std::fs::metadata(&zip).unwrap().len() > 0);

    let a = json(
        &s,
        &[
            "alias",
            "create",
            "prod",
            "--function",
            "hi",
            "--version",
            "1",
        ],
    );
    assert_eq!(a["function_version"], 1);
    let e = json(
        &s,
        &[
            "execution",
            "create",
            "--alias",
            "prod",
            "--input",
            "{\"name\": \"cli\"}",
        ],
    );
    assert_eq!(
        (e["status"].as_str(), e["function_version"].as_i64()),
        (Some("success"), Some(1))
    );
    let a = json(&s, &["alias", "update", "prod", "--description", "live"]);
    assert_eq!(a["description"], "live");
    let a = json(
        &s,
        &[
            "alias",
            "update",
            "prod",
            "--additional-version",
            "0",
            "--weight",
            "30",
        ],
    );
    assert_eq!(
        (&a["additional_version"], &a["additional_version_weight"]),
        (&serde_json::json!(0), &serde_json::json!(30)),
        "{a}"
    );
    let a = json(&s, &["alias", "update", "prod", "--no-split"]);
    assert_eq!(
        (&a["additional_version"], &a["additional_version_weight"]),
        (&serde_json::Value::Null, &serde_json::Value::Null),
        "{a}"
    );
    assert_eq!(
        a["description"], "live",
        "an update keeps what it does not name"
    );
    assert!(ok(&s, &["alias", "list"]).contains("prod"));

    let w = json(&s, &["webhook", "create", "--alias", "prod"]);
    let wid = w["id"].as_str().unwrap();
    assert!(
        w["webhook_url"]
            .as_str()
            .unwrap()
            .ends_with(&format!("/v1/webhooks/{wid}/invoke"))
    );
    let inv = json(&s, &["webhook", "invoke", wid, "--param", "name=hook"]);
    let e = s.wait_execution(
        inv["execution_id"].as_str().unwrap(),
        std::time::Duration::from_secs(30),
    );
    assert_eq!(e["description"], format!("Created by Webhook {wid}"));
    assert!(s.log(e["id"].as_str().unwrap()).contains("Hello, hook"));
    // --input: the whole body as JSON; anything else is refused before it is sent.
    let inv = json(
        &s,
        &["webhook", "invoke", wid, "--input", r#"{"name": "body"}"#],
    );
    let e = s.wait_execution(
        inv["execution_id"].as_str().unwrap(),
        std::time::Duration::from_secs(30),
    );
    assert!(s.log(e["id"].as_str().unwrap()).contains("Hello, body"));
    let out = qinling(&s, &["webhook", "invoke", wid, "--input", "not json"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("must be JSON"));

    let j = json(
        &s,
        &[
            "job",
            "create",
            "--function",
            fid,
            "--name",
            "nightly",
            "--pattern",
            "0 3 * * *",
            "--input",
            "{}",
        ],
    );
    assert_eq!(
        (j["status"].as_str(), j["pattern"].as_str()),
        (Some("running"), Some("0 3 * * *"))
    );
    assert_eq!(json(&s, &["job", "pause", "nightly"])["status"], "paused");
    assert_eq!(json(&s, &["job", "resume", "nightly"])["status"], "running");
    assert!(ok(&s, &["job", "list"]).contains("nightly"));

    let out = qinling(&s, &["alias", "delete", "prod"]);
    assert!(!out.status.success(), "an alias used by a webhook is kept");
    ok(&s, &["webhook", "delete", wid]);
    assert!(
        ok(&s, &["alias", "delete", "prod"])
            .contains("Request to delete alias prod has been accepted.")
    );
    ok(&s, &["job", "delete", "nightly"]);
    ok(&s, &["function", "version", "delete", "hi", "1"]);
    assert!(
        json(&s, &["function", "version", "list", "hi"])
            .as_array()
            .unwrap()
            .is_empty()
    );
}

/// The shell block of the README's five-minute tour, as written there.
fn readme_tour() -> String {
    let readme = std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md"))
        .expect("read README.md");
    let tour = &readme[readme
        .find("## A five-minute tour")
        .expect("README has a tour")..];
    let start = tour.find("```sh\n").expect("the tour has a shell block") + "```sh\n".len();
    let end = start + tour[start..].find("\n```").expect("the block ends");
    tour[start..end].to_string()
}

/// Every command of the README's tour, run verbatim by bash (stopping at the first that
/// fails) in a fresh folder against a fresh server, with `qinling` on `PATH` as the tour's
/// first line puts it there; the folder has the repository's `examples/` as the tour expects.
#[test]
fn the_readme_tour_runs_verbatim() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    std::os::unix::fs::symlink(
        concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"),
        dir.path().join("examples"),
    )
    .unwrap();
    let bin_dir = std::path::Path::new(env!("CARGO_BIN_EXE_qinling"))
        .parent()
        .unwrap()
        .to_path_buf();
    let path = format!(
        "{}:{}",
        bin_dir.display(),
        std::env::var("PATH").unwrap_or_default()
    );
    let script = format!("set -euo pipefail\nset -x\n{}", readme_tour());
    let out = Command::new("bash")
        .arg("-c")
        .arg(&script)
        .current_dir(dir.path())
        .env("PATH", path)
        .env("QINLING_URL", &s.url)
        .env_remove("QINLING_TOKEN")
        .output()
        .expect("run bash");
    let (stdout, stderr) = (
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr),
    );
    assert!(
        out.status.success(),
        "the README tour failed:\n--- stderr\n{stderr}\n--- stdout\n{stdout}"
    );
    for expected in [
        "Hello, Qinling",
        "Finished execution",
        "Hello, Node",
        "\"got\"",
        "wasm",
    ] {
        assert!(stdout.contains(expected), "no {expected:?} in:\n{stdout}");
    }
    assert!(
        !stdout
            .lines()
            .any(|l| l.contains("status") && (l.contains("failed") || l.contains("error"))),
        "a tour execution failed:\n{stdout}"
    );
}

/// `examples/wasm/echo.wasm`, which the tour uses, is `echo.wat` next to it compiled
/// (`QINLING_BLESS=1` rewrites it).
#[test]
fn the_shipped_wasm_example_is_its_source_compiled() {
    let dir = std::path::Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm"));
    let built = wat::parse_file(dir.join("echo.wat")).unwrap();
    if std::env::var_os("QINLING_BLESS").is_some() {
        std::fs::write(dir.join("echo.wasm"), &built).unwrap();
    }
    assert_eq!(
        std::fs::read(dir.join("echo.wasm")).unwrap_or_default(),
        built,
        "examples/wasm/echo.wasm is not echo.wat compiled: run this test with QINLING_BLESS=1"
    );
}

/// `qinling login` checks and saves a profile; later commands use it without `--url`.
#[test]
fn login_saves_a_profile_that_later_commands_use() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("qinling/config.toml");
    let cli = |args: &[&str]| {
        Command::new(env!("CARGO_BIN_EXE_qinling"))
            .args(args)
            .env("QINLING_CLI_CONFIG", &config)
            .env_remove("QINLING_URL")
            .env_remove("QINLING_TOKEN")
            .env_remove("QINLING_PROFILE")
            .output()
            .expect("run qinling")
    };
    let out = cli(&["function", "list", "--profile", "dev"]);
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("no profile 'dev'") && stderr.contains("qinling login"),
        "{stderr}"
    );

    // A server that does not answer: nothing is saved.
    let out = cli(&["login", "--url", "http://127.0.0.1:9", "--profile", "dev"]);
    assert!(!out.status.success());
    assert!(!config.exists());

    let out = cli(&["login", "--url", &s.url, "--profile", "dev"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    use std::os::unix::fs::PermissionsExt;
    let mode = std::fs::metadata(&config).unwrap().permissions().mode() & 0o777;
    assert_eq!(mode, 0o600, "the file holds tokens");
    let out = cli(&[
        "runtime",
        "list",
        "--profile",
        "dev",
        "-f",
        "value",
        "-c",
        "name",
    ]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    assert!(String::from_utf8_lossy(&out.stdout).contains("python3"));
    // Without --profile, `default` applies: none yet, so the built-in URL (nothing there).
    let out = cli(&["login", "--url", &s.url]);
    assert!(out.status.success());
    let out = cli(&["runtime", "list", "-f", "value", "-c", "name"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(
        saved.contains("[profiles.dev]") && saved.contains("[profiles.default]"),
        "{saved}"
    );
}

#[test]
fn completion_scripts_and_the_manual_page() {
    let run = |args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_qinling"))
            .args(args)
            .output()
            .unwrap();
        assert!(out.status.success(), "{args:?}");
        String::from_utf8(out.stdout).unwrap()
    };
    let bash = run(&["completion", "bash"]);
    assert!(
        bash.contains("_qinling") && bash.contains("deploy"),
        "{bash}"
    );
    for shell in ["zsh", "fish"] {
        assert!(run(&["completion", shell]).contains("function"));
    }
    let man = run(&["man"]);
    assert!(
        man.contains(".TH qinling 1") && man.contains("deploy"),
        "{man}"
    );
    let dir = tempfile::tempdir().unwrap();
    run(&["man", "--dir", dir.path().to_str().unwrap()]);
    assert!(dir.path().join("qinling-function-create.1").is_file());
}

/// `qinling logs FUNCTION` shows the latest executions' logs; `--follow` the new ones as they
/// finish; `execution log --follow` waits for a running execution's end.
#[test]
fn logs_of_a_function_and_following_them() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("speak.py");
    std::fs::write(
        &file,
        "import time\ndef main(word='none', wait=0, **kwargs):\n    time.sleep(wait)\n    print('said', word)\n    return word\n",
    )
    .unwrap();
    ok(
        &s,
        &[
            "function",
            "create",
            "--name",
            "speak",
            "--runtime",
            "python3",
            "--file",
            file.to_str().unwrap(),
        ],
    );
    for word in ["one", "two", "three"] {
        ok(
            &s,
            &[
                "function",
                "invoke",
                "speak",
                "--input",
                &format!(r#"{{"word": "{word}"}}"#),
            ],
        );
    }
    let logs = ok(&s, &["logs", "speak", "--last", "2"]);
    assert!(!logs.contains("said one"), "{logs}");
    assert!(
        logs.contains("said two") && logs.contains("said three"),
        "{logs}"
    );
    assert!(
        logs.find("said two") < logs.find("said three"),
        "oldest first: {logs}"
    );

    let mut follow = Command::new(env!("CARGO_BIN_EXE_qinling"))
        .args(["logs", "speak", "--last", "0", "--follow"])
        .env("QINLING_URL", &s.url)
        .env_remove("QINLING_TOKEN")
        .stdout(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    let stdout = follow.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        use std::io::BufRead;
        for line in std::io::BufReader::new(stdout)
            .lines()
            .map_while(Result::ok)
        {
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    std::thread::sleep(std::time::Duration::from_millis(1500));
    ok(
        &s,
        &[
            "function",
            "invoke",
            "speak",
            "--input",
            r#"{"word": "four"}"#,
        ],
    );
    let mut seen = Vec::new();
    loop {
        let line = rx
            .recv_timeout(std::time::Duration::from_secs(20))
            .unwrap_or_else(|_| panic!("--follow never printed the new log: {seen:?}"));
        if line.contains("said four") {
            break;
        }
        seen.push(line);
    }
    assert!(
        !seen.iter().any(|l| l.contains("said three")),
        "--last 0 shows no old log: {seen:?}"
    );
    follow.kill().unwrap();
    follow.wait().unwrap();

    // An async execution still running: `execution log --follow` waits for its end.
    let out = json(
        &s,
        &[
            "function",
            "invoke",
            "speak",
            "--async",
            "--input",
            r#"{"word": "late", "wait": 2}"#,
        ],
    );
    let id = out["id"].as_str().unwrap().to_string();
    let log = ok(&s, &["execution", "log", &id, "--follow"]);
    assert!(log.contains("said late"), "{log}");
}

/// `qinling function create|update --execution-mode`: sent, shown and listed; a value the
/// server refuses comes back with its reason, one the CLI does not know never leaves it.
#[test]
fn the_execution_mode_through_the_cli() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("hello.py");
    std::fs::write(&file, crate::harness::HELLO).unwrap();
    let file = file.to_str().unwrap();
    let create = |extra: &[&'static str]| -> Vec<&str> {
        let mut args = vec![
            "function",
            "create",
            "--runtime",
            "python3",
            "--name",
            "modal",
            "--entry",
            "hello.main",
            "--file",
            file,
        ];
        args.extend_from_slice(extra);
        args
    };
    let f = json(&s, &create(&["--execution-mode", "reuse"]));
    assert_eq!(f["execution_mode"], "reuse", "{f}");
    let shown = ok(&s, &["function", "show", "modal"]);
    assert!(
        shown
            .lines()
            .any(|l| l.contains("execution_mode") && l.contains("reuse")),
        "{shown}"
    );
    let listed = ok(&s, &["function", "list"]);
    assert!(
        listed.contains("execution_mode") && listed.contains("reuse"),
        "{listed}"
    );
    let f = json(
        &s,
        &["function", "update", "modal", "--execution-mode", "fork"],
    );
    assert_eq!(f["execution_mode"], "fork", "{f}");
    assert_eq!(
        json(&s, &["function", "show", "modal"])["execution_mode"],
        "fork"
    );

    let out = qinling(&s, &create(&["--execution-mode", "spawn"]));
    assert_eq!(out.status.code(), Some(2), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("[possible values: fork, reuse]"),
        "{stderr}"
    );

    let handler = dir.path().join("handler");
    std::fs::write(&handler, "#!/bin/sh\necho 1\n").unwrap();
    let out = qinling(
        &s,
        &[
            "function",
            "create",
            "--runtime",
            "custom",
            "--entry",
            "handler",
            "--file",
            handler.to_str().unwrap(),
            "--execution-mode",
            "reuse",
        ],
    );
    assert!(!out.status.success(), "{out:?}");
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("is not supported by the custom runtime") && stderr.contains("(HTTP 400)"),
        "{stderr}"
    );
}
