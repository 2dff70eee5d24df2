//! The platform on PostgreSQL, where SQLite has no counterpart: two servers sharing one
//! database (and so its packages), and the database going away under a running server.
//! Needs a PostgreSQL server (`scripts/postgres.sh`, which `.ci/run` uses); without one each
//! test says SKIPPED and why.

use std::path::PathBuf;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::json;

use crate::harness::{Opts, Server};

fn scratch_database() -> Option<String> {
    let admin = qinling_store::testing::postgres_admin()?;
    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    Some(
        rt.block_on(qinling_store::testing::scratch_database(&admin))
            .unwrap(),
    )
}

fn on(database: &str) -> Server {
    Server::start_with(Opts {
        database: Some(database.to_string()),
        ..Opts::default()
    })
}

const HELLO: &str = "def main(name='x', **kw):\n    return 'hello ' + name\n";

#[test]
fn two_servers_share_functions_packages_and_executions() {
    let Some(db) = scratch_database() else {
        eprintln!("SKIPPED: two_servers_share_functions_packages_and_executions needs PostgreSQL");
        return;
    };
    let a = on(&db);
    let b = on(&db);
    let f = a.create_function("hello.py", HELLO, "hello.main", &[]);
    let id = f["id"].as_str().unwrap();
    // B never saw the upload: it runs the package A stored, fetched from the database.
    assert!(b.package_files().is_empty());
    let e = b.execute(id, Some(r#"{"name": "b"}"#));
    assert_eq!(e["status"], "success", "{e}\n{}", b.logs());
    assert_eq!(crate::harness::result(&e)["output"], "hello b");
    assert_eq!(
        b.package_files().len(),
        1,
        "cached on B after the first run"
    );
    // An async execution accepted by A is in B's list.
    let (status, queued) = a.post(
        "/v1/executions",
        json!({"function_id": id, "sync": false, "input": "{\"name\": \"q\"}"}),
    );
    assert_eq!(status, 201, "{queued}");
    let done = b.wait_execution(queued["id"].as_str().unwrap(), Duration::from_secs(60));
    assert_eq!(done["status"], "success", "{done}");
    let (_, list) = b.get("/v1/executions");
    assert_eq!(list["executions"].as_array().unwrap().len(), 2);
    // Deleted on B: gone for A, package and all.
    assert_eq!(b.delete(&format!("/v1/functions/{id}")).0, 204);
    assert_eq!(a.get(&format!("/v1/functions/{id}")).0, 404);
    let again = a.create_function("hello.py", HELLO, "hello.main", &[]);
    assert_ne!(again["id"], f["id"]);
}

/// A PostgreSQL server of this test's own, which it can stop and start.
struct OwnPostgres {
    dir: PathBuf,
    url: String,
}

impl OwnPostgres {
    fn start() -> Option<OwnPostgres> {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg("start")
            .output()
            .unwrap();
        if !out.status.success() {
            eprintln!(
                "SKIPPED: a PostgreSQL server of its own could not be started: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            return None;
        }
        let exports = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_string()
        };
        Some(OwnPostgres {
            dir: PathBuf::from(var("QINLING_TEST_PGDATA")),
            url: var("QINLING_TEST_POSTGRES"),
        })
    }

    fn control(&self, what: &str) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
        let out = Command::new("bash")
            .arg(script)
            .arg(what)
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "postgres.sh {what}: {}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for OwnPostgres {
    fn drop(&mut self) {
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/../../scripts/postgres.sh");
        let _ = Command::new("bash")
            .arg(script)
            .arg("stop")
            .arg(&self.dir)
            .output();
    }
}

#[test]
fn a_database_outage_is_a_503_loses_nothing_and_heals_by_itself() {
    if qinling_store::testing::postgres_admin().is_none() {
        eprintln!("SKIPPED: the outage test needs PostgreSQL (scripts/postgres.sh)");
        return;
    }
    let Some(pg) = OwnPostgres::start() else {
        return;
    };
    let s = Server::start_with(Opts {
        database: Some(pg.url.clone()),
        extra: vec!["--database-acquire-timeout".into(), "2".into()],
        ..Opts::default()
    });
    let slow = "import time\ndef main(**kw):\n    time.sleep(3)\n    return 'slept'\n";
    let f = s.create_function("slow.py", slow, "slow.main", &[]);
    let id = f["id"].as_str().unwrap().to_string();
    // Accepted before the outage: some start running, the rest wait in the queue.
    let accepted: Vec<String> = (0..6)
        .map(|_| {
            let (status, e) = s.post("/v1/executions", json!({"function_id": id, "sync": false}));
            assert_eq!(status, 201, "{e}");
            e["id"].as_str().unwrap().to_string()
        })
        .collect();

    pg.control("pause");
    // Every request that needs the database gets a clear 503, quickly.
    for (method, path) in [
        ("GET", "/v1/functions".to_string()),
        ("POST", "/v1/executions".to_string()),
    ] {
        let started = Instant::now();
        let (status, body) = match method {
            "GET" => s.get(&path),
            _ => s.post(&path, json!({"function_id": id})),
        };
        assert_eq!(status, 503, "{method} {path}: {body}");
        assert_eq!(
            body["faultstring"], "The database is unavailable; try again shortly.",
            "{body}"
        );
        assert!(
            started.elapsed() < Duration::from_secs(15),
            "{method} {path} took {:?}",
            started.elapsed()
        );
    }
    // Liveness holds; readiness says why not.
    assert_eq!(s.get("/healthz").0, 200);
    let (status, body) = s.get("/readyz");
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["status"], "unavailable", "{body}");
    assert!(
        body["reason"].as_str().is_some_and(|r| !r.is_empty()),
        "{body}"
    );
    // The running ones finish meanwhile; their outcomes wait for the database.
    std::thread::sleep(Duration::from_secs(4));
    pg.control("resume");

    // The server heals by itself: no restart, and every accepted execution succeeds.
    let deadline = Instant::now() + Duration::from_secs(60);
    while s.get("/v1/functions").0 != 200 {
        assert!(
            Instant::now() < deadline,
            "still failing after the database came back"
        );
        std::thread::sleep(Duration::from_millis(200));
    }
    assert_eq!(s.get("/readyz"), (200, json!({"status": "ready"})));
    for e in &accepted {
        let done = s.wait_execution(e, Duration::from_secs(120));
        assert_eq!(done["status"], "success", "{done}\n{}", s.logs());
    }
    let e = s.execute(&id, None);
    assert_eq!(e["status"], "success", "{e}");
}
