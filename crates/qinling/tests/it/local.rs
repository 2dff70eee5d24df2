//! `qinling run` (a function run locally, no server), and `qinling init` → `run` → `deploy` →
//! invoke for every runtime's template, through the binary as a developer types it.

use std::io::{BufRead, BufReader, Write};
use std::path::Path;
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use crate::harness::{Server, sandbox_args};

fn qinling_in(dir: &Path, args: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_qinling"));
    command
        .args(args)
        .current_dir(dir)
        .env_remove("QINLING_TOKEN")
        .env_remove("QINLING_LOG");
    if sandbox_args().iter().any(|a| a == "--insecure-no-sandbox") {
        command.env("QINLING_INSECURE_NO_SANDBOX", "true");
    }
    command
}

fn run_in(dir: &Path, args: &[&str]) -> Output {
    qinling_in(dir, args).output().expect("run qinling")
}

fn text(bytes: &[u8]) -> String {
    String::from_utf8_lossy(bytes).into_owned()
}

fn write(path: &Path, content: &str) {
    std::fs::write(path, content).unwrap();
}

#[test]
fn run_prints_the_result_the_log_and_an_exit_code_that_says_how_it_ended() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("hello.py"),
        "def main(name='World', **kwargs):\n    print('log line for', name)\n    return {'hello': name}\n",
    );
    let out = run_in(d, &["run", "hello.py", "--input", r#"{"name": "local"}"#]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), r#"{"hello":"local"}"#);
    assert!(
        text(&out.stderr).contains("log line for local"),
        "{}",
        text(&out.stderr)
    );

    // --input @file and --input - (stdin).
    write(&d.join("input.json"), "{\"name\": \"from a file\"}\n");
    let out = run_in(d, &["run", "hello.py", "--input", "@input.json"]);
    assert_eq!(
        text(&out.stdout).trim(),
        r#"{"hello":"from a file"}"#,
        "{}",
        text(&out.stderr)
    );
    let mut child = qinling_in(d, &["run", "hello.py", "--input", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"{\"name\": \"stdin\"}\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(
        text(&out.stdout).trim(),
        r#"{"hello":"stdin"}"#,
        "{}",
        text(&out.stderr)
    );

    // An exception: exit 1, the traceback in the log.
    write(
        &d.join("bad.py"),
        "def main(**kwargs):\n    raise ValueError('boom here')\n",
    );
    let out = run_in(d, &["run", "bad.py"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = text(&out.stderr);
    assert!(stderr.contains("ValueError: boom here"), "{stderr}");
    assert!(text(&out.stdout).is_empty());

    // --debug: the handler outside the sandbox, in pdb at the exception (here told to quit).
    let mut child = qinling_in(d, &["run", "bad.py", "--debug"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(b"p 6 * 7\nq\n")
        .unwrap();
    let out = child.wait_with_output().unwrap();
    assert_eq!(out.status.code(), Some(1));
    let (stdout, stderr) = (text(&out.stdout), text(&out.stderr));
    assert!(
        stdout.contains("(Pdb)") && stdout.contains("42"),
        "{stdout}"
    );
    assert!(
        stderr.contains("OUTSIDE the sandbox") && stderr.contains("boom here"),
        "{stderr}"
    );

    // The timeout: exit 124 and the platform's message.
    write(
        &d.join("slow.py"),
        "import time\ndef main(**kwargs):\n    time.sleep(30)\n",
    );
    let started = Instant::now();
    let out = run_in(d, &["run", "slow.py", "--timeout", "1"]);
    assert_eq!(out.status.code(), Some(124), "{}", text(&out.stderr));
    assert!(text(&out.stderr).contains("Function execution timeout."));
    assert!(
        started.elapsed() < Duration::from_secs(25),
        "the timeout was not enforced"
    );

    // A bad path or runtime: exit 2 with what to do.
    let out = run_in(d, &["run", "nope.py"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(text(&out.stderr).contains("nope.py does not exist"));
    write(&d.join("notes.txt"), "x");
    let out = run_in(d, &["run", "notes.txt"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(
        text(&out.stderr).contains("--runtime"),
        "{}",
        text(&out.stderr)
    );
}

#[test]
fn run_enforces_the_memory_limit() {
    if sandbox_args().iter().any(|a| a == "--insecure-no-sandbox") {
        eprintln!("SKIPPED: without the sandbox no memory limit is enforced");
        return;
    }
    if unsafe { libc::geteuid() } != 0 {
        eprintln!("SKIPPED: the jail's cgroup memory limit needs root");
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("hog.py"),
        "def main(**kwargs):\n    blocks = []\n    for _ in range(64):\n        blocks.append(bytearray(16 * 1024 * 1024))\n    return len(blocks)\n",
    );
    let out = run_in(dir.path(), &["run", "hog.py", "--memory-size", "67108864"]);
    let stderr = text(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("too much resource consumption"), "{stderr}");
}

/// Reads lines from a child's stream until one satisfies `want` or the deadline passes.
fn read_until(lines: &mut impl Iterator<Item = String>, want: impl Fn(&str) -> bool) -> String {
    for line in lines {
        if want(&line) {
            return line;
        }
    }
    panic!("the stream ended before the line was seen");
}

#[test]
fn run_watch_runs_again_when_the_file_changes() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("greet.py");
    write(&file, "def main(**kwargs):\n    return 'first version'\n");
    let mut child = qinling_in(dir.path(), &["run", "greet.py", "--watch"])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .unwrap();
    let stdout = child.stdout.take().unwrap();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if tx.send(line).is_err() {
                break;
            }
        }
    });
    let mut lines = std::iter::from_fn(|| rx.recv_timeout(Duration::from_secs(60)).ok());
    read_until(&mut lines, |l| l.contains("first version"));
    // A different size, so the change shows whatever the file system's time resolution.
    write(
        &file,
        "def main(**kwargs):\n    return 'the second version'\n",
    );
    read_until(&mut lines, |l| l.contains("the second version"));
    child.kill().unwrap();
    child.wait().unwrap();
}

#[test]
fn run_serve_answers_http_requests_with_the_function() {
    let dir = tempfile::tempdir().unwrap();
    write(
        &dir.path().join("api.py"),
        "def main(name='nobody', **kwargs):\n    if name == 'fail':\n        raise RuntimeError('asked to')\n    return {'hi': name}\n",
    );
    let mut child = qinling_in(dir.path(), &["run", "api.py", "--serve", "0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let stderr = child.stderr.take().unwrap();
    let mut lines = BufReader::new(stderr).lines().map_while(Result::ok);
    let line = read_until(&mut lines, |l| l.contains("serving"));
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("http://"))
        .expect("the address")
        .to_string();
    std::thread::spawn(move || for _ in lines {});
    let client = reqwest::blocking::Client::new();
    let response = client.post(&url).body(r#"{"name": "web"}"#).send().unwrap();
    assert_eq!(response.status(), 200);
    assert!(response.headers().contains_key("x-qinling-execution-id"));
    assert_eq!(response.json::<serde_json::Value>().unwrap()["hi"], "web");
    let response = client
        .post(&url)
        .body(r#"{"name": "fail"}"#)
        .send()
        .unwrap();
    assert_eq!(response.status(), 500);
    assert!(response.text().unwrap().contains("asked to"));
    child.kill().unwrap();
    child.wait().unwrap();
}

/// Whether rustc here can build for wasm32-wasip1 (the target is an optional component).
fn wasm_target_installed() -> bool {
    Command::new("rustc")
        .args(["--print", "target-libdir", "--target", "wasm32-wasip1"])
        .output()
        .is_ok_and(|o| o.status.success() && Path::new(text(&o.stdout).trim()).exists())
}

#[test]
fn init_run_deploy_and_invoke_every_runtime() {
    let s = Server::start();
    let dir = tempfile::tempdir().unwrap();
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    for runtime in ["python3", "nodejs", "custom", "wasm"] {
        if runtime == "nodejs" && !node {
            eprintln!("SKIPPED: nodejs template: no `node` on PATH");
            continue;
        }
        let name = format!("tpl-{runtime}");
        let out = run_in(dir.path(), &["init", &name, "--runtime", runtime]);
        assert!(
            out.status.success(),
            "init {runtime}: {}",
            text(&out.stderr)
        );
        assert!(text(&out.stdout).contains("qinling deploy"));
        let folder = dir.path().join(&name);
        // The template's own test, in the language's own runner.
        let test = match runtime {
            "python3" => Some(
                Command::new("python3")
                    .args(["-m", "unittest"])
                    .current_dir(&folder)
                    .output(),
            ),
            "nodejs" => Some(
                Command::new("node")
                    .arg("--test")
                    .current_dir(&folder)
                    .output(),
            ),
            "custom" => Some(Command::new("./test.sh").current_dir(&folder).output()),
            _ => None,
        };
        if let Some(test) = test {
            let test = test.unwrap();
            assert!(
                test.status.success(),
                "{runtime}'s template test failed: {}{}",
                text(&test.stdout),
                text(&test.stderr)
            );
        }
        if runtime == "wasm" {
            // Not built yet: run and deploy say how to build it.
            let out = run_in(&folder, &["run", "."]);
            assert_eq!(out.status.code(), Some(2));
            assert!(
                text(&out.stderr).contains("wasm32-wasip1"),
                "{}",
                text(&out.stderr)
            );
            let wasm = folder.join("target/wasm32-wasip1/release/tpl_wasm.wasm");
            std::fs::create_dir_all(wasm.parent().unwrap()).unwrap();
            if wasm_target_installed() {
                let build = Command::new("cargo")
                    .args(["build", "--release", "--target", "wasm32-wasip1"])
                    .current_dir(&folder)
                    .output()
                    .unwrap();
                assert!(build.status.success(), "{}", text(&build.stderr));
            } else {
                eprintln!(
                    "note: no wasm32-wasip1 target here; the wasm template's build is replaced by examples/wasm/echo.wasm"
                );
                std::fs::copy(
                    concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples/wasm/echo.wasm"),
                    &wasm,
                )
                .unwrap();
            }
        }
        let out = run_in(&folder, &["run", ".", "--input", "@input.json"]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "run {runtime}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("Qinling"),
            "run {runtime} printed {}",
            text(&out.stdout)
        );
        let deploy = |expect: &str| {
            let out = run_in(&folder, &["deploy", "--url", &s.url]);
            assert!(
                out.status.success(),
                "deploy {runtime}: {}",
                text(&out.stderr)
            );
            let said = text(&out.stdout);
            assert!(said.contains(expect), "{said}");
            assert!(
                said.contains(&format!("qinling function invoke {name}")),
                "{said}"
            );
        };
        deploy("Created function");
        let out = run_in(
            &folder,
            &[
                "function",
                "invoke",
                &name,
                "--input",
                "@input.json",
                "--url",
                &s.url,
            ],
        );
        assert!(
            out.status.success(),
            "invoke {runtime}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains("Qinling"),
            "{}",
            text(&out.stdout)
        );
        // A second deploy updates the same function.
        deploy("Updated function");
    }
}

/// Every folder of `examples/` runs as its README says.
#[test]
fn every_shipped_example_runs() {
    let examples = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../examples"));
    let node = Command::new("node")
        .arg("--version")
        .output()
        .is_ok_and(|o| o.status.success());
    for (folder, expected) in [
        ("python3", "Hello, ex"),
        ("nodejs", "Hello, ex"),
        ("custom", r#"{"got":{"name":"ex"}}"#),
        ("wasm", r#"{"name":"ex"}"#),
    ] {
        if folder == "nodejs" && !node {
            eprintln!("SKIPPED: examples/nodejs: no `node` on PATH");
            continue;
        }
        let out = run_in(examples, &["run", folder, "--input", r#"{"name": "ex"}"#]);
        assert_eq!(
            out.status.code(),
            Some(0),
            "{folder}: {}",
            text(&out.stderr)
        );
        assert!(
            text(&out.stdout).contains(expected),
            "{folder}: {}",
            text(&out.stdout)
        );
    }
}

/// `qinling run --execution-mode` and the manifest's `execution_mode`: the flag wins over the
/// manifest, the runtime's refusal of `reuse` is said, and a bad value never leaves the CLI.
#[test]
fn run_takes_the_execution_mode_from_the_flag_or_the_manifest() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    write(
        &d.join("hello.py"),
        "def main(**kwargs):\n    return 'hi'\n",
    );
    let out = run_in(d, &["run", "hello.py", "--execution-mode", "reuse"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "hi");

    let out = run_in(d, &["run", "hello.py", "--execution-mode", "spawn"]);
    assert_eq!(out.status.code(), Some(2), "stderr: {}", text(&out.stderr));
    assert!(
        text(&out.stderr).contains("[possible values: fork, reuse]"),
        "{}",
        text(&out.stderr)
    );

    let f = d.join("custom-fn");
    std::fs::create_dir(&f).unwrap();
    write(&f.join("handler"), "#!/bin/sh\necho '\"custom\"'\n");
    use std::os::unix::fs::PermissionsExt;
    std::fs::set_permissions(f.join("handler"), std::fs::Permissions::from_mode(0o755)).unwrap();
    write(
        &f.join("qinling.toml"),
        "name = \"c\"\nruntime = \"custom\"\nentry = \"handler\"\nexecution_mode = \"reuse\"\n",
    );
    let out = run_in(&f, &["run", "."]);
    assert_ne!(out.status.code(), Some(0), "stdout: {}", text(&out.stdout));
    assert!(
        text(&out.stderr).contains(
            "execution_mode 'reuse' is not supported by the custom runtime: each execution runs the package's executable as a new process"
        ),
        "{}",
        text(&out.stderr)
    );
    let out = run_in(&f, &["run", ".", "--execution-mode", "fork"]);
    assert_eq!(out.status.code(), Some(0), "stderr: {}", text(&out.stderr));
    assert_eq!(text(&out.stdout).trim(), "custom");
}
