//! The one helper every test goes through: start a server, make packages, call the API.

use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

pub struct Server {
    pub url: String,
    pub data_dir: PathBuf,
    /// The server's PostgreSQL database, when the suite runs on PostgreSQL
    /// ([`database_under_test`]); `None`: SQLite in `data_dir`.
    pub database: Option<String>,
    _tmp: Option<tempfile::TempDir>,
    child: Option<Child>,
    pub log: Arc<Mutex<Vec<String>>>,
    pub http: reqwest::blocking::Client,
    args: Vec<String>,
}

/// Options of a test server.
#[derive(Debug, Clone)]
pub struct Opts {
    pub pool_size: usize,
    pub extra: Vec<String>,
    /// A database URL for `--database`; `None`: the one under test ([`database_under_test`]).
    pub database: Option<String>,
}

impl Default for Opts {
    fn default() -> Self {
        Opts {
            pool_size: 1,
            extra: vec![],
            database: None,
        }
    }
}

/// Whether the jail can run here; otherwise tests use `--insecure-no-sandbox` and say so.
pub fn sandbox_args() -> Vec<String> {
    if std::env::var_os("QINLING_TEST_INSECURE").is_some() {
        eprintln!("note: QINLING_TEST_INSECURE is set: running functions without the sandbox");
        return vec!["--insecure-no-sandbox".into()];
    }
    vec![]
}

/// `QINLING_TEST_DATABASE=postgres` runs the whole suite on PostgreSQL: each server gets a
/// fresh database on the server `QINLING_TEST_POSTGRES` names (`scripts/postgres.sh`).
/// Otherwise (the default) each server has SQLite in its data directory.
pub fn database_under_test() -> Option<String> {
    match std::env::var("QINLING_TEST_DATABASE").as_deref() {
        Ok("postgres") => {
            let admin = std::env::var(qinling_store::testing::ENV).unwrap_or_else(|_| {
                panic!(
                    "QINLING_TEST_DATABASE=postgres needs {} (an admin URL; scripts/postgres.sh start)",
                    qinling_store::testing::ENV
                )
            });
            let rt = tokio::runtime::Builder::new_current_thread()
                .enable_all()
                .build()
                .unwrap();
            Some(
                rt.block_on(qinling_store::testing::scratch_database(&admin))
                    .expect("a scratch PostgreSQL database"),
            )
        }
        Ok("sqlite") | Ok("") | Err(_) => None,
        Ok(other) => panic!("QINLING_TEST_DATABASE must be sqlite or postgres, not {other}"),
    }
}

impl Server {
    pub fn start() -> Server {
        Self::start_with(Opts::default())
    }

    pub fn start_with(opts: Opts) -> Server {
        let tmp = tempfile::tempdir().expect("temp dir");
        let data_dir = tmp.path().to_path_buf();
        let mut args = vec!["--pool-size".to_string(), opts.pool_size.to_string()];
        let database = opts.database.clone().or_else(database_under_test);
        if let Some(url) = &database {
            args.extend(["--database".to_string(), url.clone()]);
        }
        args.extend(sandbox_args());
        args.extend(opts.extra);
        let mut s = Server {
            url: String::new(),
            data_dir,
            database,
            _tmp: Some(tmp),
            child: None,
            log: Arc::new(Mutex::new(Vec::new())),
            http: reqwest::blocking::Client::builder()
                .timeout(Duration::from_secs(120))
                .build()
                .unwrap(),
            args,
        };
        s.spawn();
        s
    }

    fn spawn(&mut self) {
        let mut cmd = Command::new(env!("CARGO_BIN_EXE_qinling"));
        cmd.arg("serve")
            .arg("--data-dir")
            .arg(&self.data_dir)
            .arg("--listen")
            .arg("127.0.0.1:0")
            .args(&self.args)
            .env("QINLING_LOG", "info")
            .env_remove("QINLING_CONFIG")
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        let mut child = cmd.spawn().expect("start qinling serve");
        let stderr = child.stderr.take().unwrap();
        let (tx, rx) = std::sync::mpsc::channel();
        let log = self.log.clone();
        std::thread::spawn(move || {
            let mut tx = Some(tx);
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if let Some(pos) = line.find("listen=")
                    && let Some(tx) = tx.take()
                {
                    let addr = line[pos + 7..]
                        .split_whitespace()
                        .next()
                        .unwrap_or("")
                        .to_string();
                    let _ = tx.send(addr);
                }
                log.lock().unwrap().push(line);
            }
        });
        let addr = match rx.recv_timeout(Duration::from_secs(60)) {
            Ok(addr) => addr,
            Err(_) => {
                let _ = child.kill();
                panic!(
                    "server did not start:\n{}",
                    self.log.lock().unwrap().join("\n")
                );
            }
        };
        self.url = format!("http://{addr}");
        self.child = Some(child);
    }

    /// Whether the server process is up (not killed or terminated by the test).
    pub fn is_running(&self) -> bool {
        self.child.is_some()
    }

    /// Kills the server with SIGKILL (no graceful shutdown).
    pub fn kill9(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }

    /// Stops with SIGTERM and waits for a graceful exit.
    pub fn terminate(&mut self) -> std::process::ExitStatus {
        let mut c = self.child.take().expect("server running");
        // SAFETY: kill(2) on our own child's pid.
        unsafe {
            libc_kill(c.id() as i32, 15);
        }
        c.wait().unwrap()
    }

    /// Starts the server again on the same data directory.
    pub fn restart(&mut self) {
        self.kill9();
        self.spawn();
    }

    pub fn logs(&self) -> String {
        self.log.lock().unwrap().join("\n")
    }

    pub fn get(&self, path: &str) -> (u16, Value) {
        let r = self.http.get(format!("{}{path}", self.url)).send().unwrap();
        parse(r)
    }

    pub fn get_raw(&self, path: &str) -> reqwest::blocking::Response {
        self.http.get(format!("{}{path}", self.url)).send().unwrap()
    }

    pub fn post(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .post(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap();
        parse(r)
    }

    pub fn put(&self, path: &str, body: Value) -> (u16, Value) {
        let r = self
            .http
            .put(format!("{}{path}", self.url))
            .json(&body)
            .send()
            .unwrap();
        parse(r)
    }

    pub fn delete(&self, path: &str) -> (u16, Value) {
        let r = self
            .http
            .delete(format!("{}{path}", self.url))
            .send()
            .unwrap();
        parse(r)
    }

    /// The built-in python3 runtime's id, once it is available.
    pub fn python_runtime(&self) -> String {
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, body) = self.get("/v1/runtimes");
            if let Some(r) = body["runtimes"]
                .as_array()
                .and_then(|rs| rs.iter().find(|r| r["name"] == "python3"))
            {
                if r["status"] == "available" {
                    return r["id"].as_str().unwrap().to_string();
                }
                assert_ne!(
                    r["status"],
                    "error",
                    "python3 runtime failed:\n{}",
                    self.logs()
                );
            }
            assert!(
                Instant::now() < deadline,
                "python3 runtime never became available:\n{}",
                self.logs()
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Creates a function from one python source file; returns the function JSON.
    pub fn create_function(
        &self,
        file: &str,
        source: &str,
        entry: &str,
        extra: &[(&str, &str)],
    ) -> Value {
        let runtime = self.python_runtime();
        let zip = zip_of(&[(file, source)]);
        let (status, body) = self.create_function_raw(&runtime, zip, entry, extra);
        assert_eq!(status, 201, "function create failed: {body}");
        body
    }

    pub fn create_function_raw(
        &self,
        runtime: &str,
        zip: Vec<u8>,
        entry: &str,
        extra: &[(&str, &str)],
    ) -> (u16, Value) {
        let mut form = reqwest::blocking::multipart::Form::new()
            .text("runtime_id", runtime.to_string())
            .text("code", r#"{"source": "package"}"#.to_string())
            .text("entry", entry.to_string())
            .part(
                "package",
                reqwest::blocking::multipart::Part::bytes(zip).file_name("package.zip"),
            );
        for (k, v) in extra {
            form = form.text(k.to_string(), v.to_string());
        }
        let r = self
            .http
            .post(format!("{}/v1/functions", self.url))
            .multipart(form)
            .send()
            .unwrap();
        parse(r)
    }

    /// Runs a function synchronously; returns the execution JSON.
    pub fn execute(&self, function_id: &str, input: Option<&str>) -> Value {
        let mut body = serde_json::json!({"function_id": function_id});
        if let Some(i) = input {
            body["input"] = Value::String(i.to_string());
        }
        let (status, e) = self.post("/v1/executions", body);
        assert_eq!(status, 201, "execution create failed: {e}");
        e
    }

    /// The log of an execution (empty for 204).
    pub fn log(&self, execution_id: &str) -> String {
        let r = self.get_raw(&format!("/v1/executions/{execution_id}/log"));
        r.text().unwrap()
    }

    /// Polls an execution until it leaves `running`.
    pub fn wait_execution(&self, id: &str, within: Duration) -> Value {
        let deadline = Instant::now() + within;
        loop {
            let (status, e) = self.get(&format!("/v1/executions/{id}"));
            assert_eq!(status, 200, "{e}");
            if e["status"] != "running" {
                return e;
            }
            assert!(
                Instant::now() < deadline,
                "execution {id} still running after {within:?}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    /// Files in the package directory.
    pub fn package_files(&self) -> Vec<PathBuf> {
        let mut out = Vec::new();
        walk(&self.data_dir.join("packages"), &mut out);
        out.sort();
        out
    }
}

pub fn walk(dir: &Path, out: &mut Vec<PathBuf>) {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return;
    };
    for e in entries.flatten() {
        let p = e.path();
        if p.is_dir() {
            walk(&p, out);
        } else {
            out.push(p);
        }
    }
}

impl Drop for Server {
    fn drop(&mut self) {
        if let Some(mut c) = self.child.take() {
            let _ = c.kill();
            let _ = c.wait();
        }
    }
}

unsafe extern "C" {
    #[link_name = "kill"]
    fn libc_kill(pid: i32, sig: i32) -> i32;
}

pub fn parse(r: reqwest::blocking::Response) -> (u16, Value) {
    let status = r.status().as_u16();
    let text = r.text().unwrap();
    let body = if text.is_empty() {
        Value::Null
    } else {
        serde_json::from_str(&text).unwrap_or(Value::String(text))
    };
    (status, body)
}

/// A zip of (name, content) pairs.
pub fn zip_of(files: &[(&str, &str)]) -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    {
        let mut w = zip::ZipWriter::new(&mut buf);
        for (name, content) in files {
            w.start_file(*name, zip::write::SimpleFileOptions::default())
                .unwrap();
            w.write_all(content.as_bytes()).unwrap();
        }
        w.finish().unwrap();
    }
    buf.into_inner()
}

/// The parsed `result` field of an execution.
pub fn result(e: &Value) -> Value {
    serde_json::from_str(e["result"].as_str().unwrap_or("null")).unwrap()
}

pub const HELLO: &str = "def main(name='World', **kwargs):\n    print('Hello, %s' % name)\n    return 'Hello, %s' % name\n";

/// Updates `fid`'s entry to `entry` and asserts the update is refused with a 400 whose
/// message contains `says`.
pub fn assert_entry_refused(s: &Server, fid: &str, entry: &str, says: &str) {
    let (status, body) = s.put(&format!("/v1/functions/{fid}"), json!({"entry": entry}));
    assert_eq!(status, 400, "{body}");
    assert!(
        body["faultstring"]
            .as_str()
            .unwrap_or_default()
            .contains(says),
        "{body}"
    );
}
