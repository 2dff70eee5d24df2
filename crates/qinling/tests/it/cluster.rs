//! A cluster of `qinling serve` nodes on a real NATS server with JetStream and a real
//! PostgreSQL database, on loopback: functions created on one node run through any node,
//! executions concentrate on a version's home node and spill over when it is full, a node
//! killed with SIGKILL under load loses no accepted execution and leaves none `running`, a
//! NATS restart under load loses nothing, a forwarded sync execution whose node dies ends at
//! once with an error, and a cron job fires exactly its count while nodes die and return.
//! Needs `nats-server` and PostgreSQL (`.ci/run` installs both); without them each test says
//! SKIPPED and why.

use std::collections::{HashMap, HashSet};
use std::path::PathBuf;
use std::process::Command;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use serde_json::{Value, json};

use crate::harness::{HELLO, Opts, Server};

/// A NATS server of the test's own (`scripts/nats.sh`).
struct Nats {
    dir: PathBuf,
    url: String,
}

impl Nats {
    fn start() -> Result<Nats, String> {
        let out = Command::new("bash")
            .arg(script("nats.sh"))
            .arg("start")
            .output()
            .map_err(|e| e.to_string())?;
        if !out.status.success() {
            return Err(String::from_utf8_lossy(&out.stderr).into_owned());
        }
        let exports = String::from_utf8(out.stdout).unwrap();
        let var = |name: &str| {
            exports
                .lines()
                .find_map(|l| l.strip_prefix(&format!("export {name}=")))
                .unwrap()
                .to_string()
        };
        Ok(Nats {
            dir: PathBuf::from(var("QINLING_TEST_NATSDIR")),
            url: var("QINLING_TEST_NATS"),
        })
    }

    fn restart(&self) {
        let out = Command::new("bash")
            .arg(script("nats.sh"))
            .arg("restart")
            .arg(&self.dir)
            .output()
            .unwrap();
        assert!(
            out.status.success(),
            "{}",
            String::from_utf8_lossy(&out.stderr)
        );
    }
}

impl Drop for Nats {
    fn drop(&mut self) {
        let _ = Command::new("bash")
            .arg(script("nats.sh"))
            .arg("stop")
            .arg(&self.dir)
            .status();
    }
}

fn script(name: &str) -> String {
    format!("{}/../../scripts/{name}", env!("CARGO_MANIFEST_DIR"))
}

/// Seconds of silence after which the tests' nodes are lost: short, so the tests are quick,
/// but beats every second leave room for a machine busy with the rest of the suite.
const NODE_TIMEOUT: u64 = 5;

struct Cluster {
    nodes: Vec<Server>,
    nats: Nats,
}

impl Cluster {
    /// `n` nodes on one NATS server and one fresh database, each with `extra` flags; `None`
    /// (having said SKIPPED) where NATS or PostgreSQL is missing.
    fn start(test: &str, n: usize, extra: &[&str]) -> Option<Cluster> {
        if std::env::var("QINLING_TEST_DATABASE").as_deref() == Ok("postgres") {
            eprintln!(
                "SKIPPED: {test}: the cluster tests always run on PostgreSQL, in the suite's first pass"
            );
            return None;
        }
        let Some(admin) = qinling_store::testing::postgres_admin() else {
            eprintln!(
                "SKIPPED: {test} needs PostgreSQL ({} unset)",
                qinling_store::testing::ENV
            );
            return None;
        };
        let nats = match Nats::start() {
            Ok(nats) => nats,
            Err(why) => {
                eprintln!("SKIPPED: {test} needs nats-server: {why}");
                return None;
            }
        };
        let db = tokio::runtime::Builder::new_current_thread()
            .enable_all()
            .build()
            .unwrap()
            .block_on(qinling_store::testing::scratch_database(&admin))
            .unwrap();
        let mut c = Cluster {
            nodes: Vec::new(),
            nats,
        };
        // The harness sets the pool size itself.
        let pool_size = extra
            .iter()
            .position(|a| *a == "--pool-size")
            .map(|i| extra[i + 1].parse().expect("a pool size"));
        let extra: Vec<&str> = match extra.iter().position(|a| *a == "--pool-size") {
            Some(i) => [&extra[..i], &extra[i + 2..]].concat(),
            None => extra.to_vec(),
        };
        for i in 1..=n {
            let mut args: Vec<String> = vec![
                "--cluster".into(),
                c.nats.url.clone(),
                "--node-name".into(),
                format!("n{i}"),
                "--node-timeout".into(),
                NODE_TIMEOUT.to_string(),
            ];
            args.extend(extra.iter().map(|s| s.to_string()));
            // The first node alone first: it migrates and registers the runtimes.
            let mut opts = Opts {
                database: Some(db.clone()),
                extra: args,
                ..Opts::default()
            };
            if let Some(size) = pool_size {
                opts.pool_size = size;
            }
            c.nodes.push(Server::start_with(opts));
        }
        c.wait_up(n);
        Some(c)
    }

    /// Waits until every node sees `n` nodes up.
    fn wait_up(&self, n: usize) {
        let deadline = Instant::now() + Duration::from_secs(30);
        for node in self.nodes.iter().filter(|s| s.is_running()) {
            loop {
                let up = up_nodes(node);
                if up.len() == n {
                    break;
                }
                assert!(
                    Instant::now() < deadline,
                    "{} sees {up:?} up, not {n} nodes\n{}",
                    node.url,
                    self.logs()
                );
                std::thread::sleep(Duration::from_millis(100));
            }
        }
    }

    fn logs(&self) -> String {
        self.nodes
            .iter()
            .enumerate()
            .map(|(i, s)| format!("--- n{} ---\n{}", i + 1, s.logs()))
            .collect::<Vec<_>>()
            .join("\n")
    }
}

fn up_nodes(s: &Server) -> Vec<String> {
    let (status, body) = s.get("/v1/nodes");
    assert_eq!(status, 200, "{body}");
    body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|n| n["status"] == "up")
        .map(|n| n["name"].as_str().unwrap().to_string())
        .collect()
}

/// The workers of a function, by node name.
fn workers_by_node(s: &Server, fid: &str) -> HashMap<String, usize> {
    let (status, body) = s.get(&format!("/v1/functions/{fid}/workers"));
    assert_eq!(status, 200, "{body}");
    let mut out = HashMap::new();
    for w in body["workers"].as_array().unwrap() {
        *out.entry(w["node"].as_str().unwrap().to_string())
            .or_default() += 1;
    }
    out
}

/// Every execution, by id.
fn executions(s: &Server) -> HashMap<String, Value> {
    let (status, body) = s.get("/v1/executions");
    assert_eq!(status, 200, "{body}");
    body["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| (e["id"].as_str().unwrap().to_string(), e.clone()))
        .collect()
}

/// Waits until no execution is `running`; returns them all.
fn settle(s: &Server, within: Duration) -> HashMap<String, Value> {
    let deadline = Instant::now() + within;
    loop {
        let all = executions(s);
        let running: Vec<&String> = all
            .iter()
            .filter(|(_, e)| e["status"] == "running")
            .map(|(id, _)| id)
            .collect();
        if running.is_empty() {
            return all;
        }
        assert!(
            Instant::now() < deadline,
            "{} executions still running after {within:?}, e.g. {}",
            running.len(),
            running[0]
        );
        std::thread::sleep(Duration::from_millis(250));
    }
}

const SLEEPY: &str =
    "import time\ndef main(secs=1, **kw):\n    time.sleep(float(secs))\n    return 'slept'\n";

#[test]
fn a_function_created_on_one_node_runs_through_every_node() {
    let Some(c) = Cluster::start(
        "a_function_created_on_one_node_runs_through_every_node",
        3,
        &[],
    ) else {
        return;
    };
    let f = c.nodes[0].create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    for (i, node) in c.nodes.iter().enumerate() {
        for _ in 0..5 {
            let e = node.execute(fid, Some(&format!(r#"{{"name": "n{}"}}"#, i + 1)));
            assert_eq!(e["status"], "success", "{e}\n{}", c.logs());
            assert_eq!(
                crate::harness::result(&e)["output"],
                format!("Hello, n{}", i + 1)
            );
        }
    }
    // One home ran them all: one worker, on one node, listed by every node.
    for node in &c.nodes {
        let workers = workers_by_node(node, fid);
        assert_eq!(workers.values().sum::<usize>(), 1, "{workers:?}");
    }
    // The package came from the database once to the node that ran it, never again.
    for node in &c.nodes {
        assert!(
            node.package_files().len() <= 1,
            "{:?}",
            node.package_files()
        );
    }
    // Every node lists the three, with their addresses.
    let (_, body) = c.nodes[2].get("/v1/nodes");
    let nodes = body["nodes"].as_array().unwrap();
    let names: Vec<&str> = nodes.iter().map(|n| n["name"].as_str().unwrap()).collect();
    assert_eq!(names, ["n1", "n2", "n3"], "{body}");
    for (n, s) in nodes.iter().zip(&c.nodes) {
        assert_eq!(n["address"], s.url.as_str(), "{n}");
        assert_eq!(n["status"], "up");
        assert_eq!(n["capacity"], "64 workers");
        assert!(n["last_heartbeat"].as_str().unwrap().ends_with('Z'), "{n}");
    }
    // Metrics say which node they are from.
    let metrics = c.nodes[1].get_raw("/metrics").text().unwrap();
    assert!(metrics.contains("node=\"n2\""), "{metrics}");
    // The runtime pool sums the nodes (pool size 1 each). A node that does not answer
    // within the list timeout (a loaded machine) is left out of that answer, so ask again.
    let runtime = c.nodes[0].python_runtime();
    let deadline = Instant::now() + Duration::from_secs(30);
    loop {
        let (_, pool) = c.nodes[0].get(&format!("/v1/runtimes/{runtime}/pool"));
        if pool["capacity"]["total"] == 3 {
            break;
        }
        assert!(Instant::now() < deadline, "{pool}");
        std::thread::sleep(Duration::from_millis(500));
    }
}

#[test]
fn executions_stay_on_the_home_node_and_spill_over_when_it_is_full() {
    let Some(c) = Cluster::start(
        "executions_stay_on_the_home_node_and_spill_over_when_it_is_full",
        3,
        &[
            "--max-workers-per-function",
            "1",
            "--function-concurrency",
            "1",
        ],
    ) else {
        return;
    };
    let f = c.nodes[0].create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    // 200 sequential executions through the nodes in turn: one warm worker serves them all.
    for i in 0..200 {
        let e = c.nodes[i % 3].execute(fid, None);
        assert_eq!(e["status"], "success", "{e}\n{}", c.logs());
    }
    let workers = workers_by_node(&c.nodes[1], fid);
    assert_eq!(workers.len(), 1, "one node: {workers:?}");
    assert_eq!(
        workers.values().sum::<usize>(),
        1,
        "one worker: {workers:?}"
    );
    // A burst beyond the home's cap (one worker running one execution) spills over.
    let slow = c.nodes[0].create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let sid = slow["id"].as_str().unwrap().to_string();
    let urls: Vec<String> = c.nodes.iter().map(|s| s.url.clone()).collect();
    let threads: Vec<_> = (0..6)
        .map(|i| {
            let (url, sid) = (urls[i % 3].clone(), sid.clone());
            std::thread::spawn(move || {
                let http = reqwest::blocking::Client::builder()
                    .timeout(Duration::from_secs(120))
                    .build()
                    .unwrap();
                let r = http
                    .post(format!("{url}/v1/executions"))
                    .json(&json!({"function_id": sid, "input": "{\"secs\": 2}"}))
                    .send()
                    .unwrap();
                r.json::<Value>().unwrap()
            })
        })
        .collect();
    for t in threads {
        let e = t.join().unwrap();
        assert_eq!(e["status"], "success", "{e}");
    }
    let workers = workers_by_node(&c.nodes[0], &sid);
    assert!(
        workers.len() >= 2,
        "spilled over to a second node: {workers:?}"
    );
    assert!(
        workers.values().all(|n| *n == 1),
        "at most one per node: {workers:?}"
    );
}

#[test]
fn a_node_killed_under_load_loses_no_accepted_execution() {
    let Some(mut c) = Cluster::start(
        "a_node_killed_under_load_loses_no_accepted_execution",
        3,
        &["--pool-size", "2"],
    ) else {
        return;
    };
    // Functions whose homes are spread over the nodes.
    let fids: Vec<String> = (0..6)
        .map(|_| {
            c.nodes[0].create_function("hello.py", HELLO, "hello.main", &[])["id"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    for fid in &fids {
        assert_eq!(c.nodes[0].execute(fid, None)["status"], "success");
    }
    let urls: Vec<String> = c.nodes.iter().map(|s| s.url.clone()).collect();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let sync_done = Arc::new(Mutex::new(Vec::<Value>::new()));
    let http = || {
        reqwest::blocking::Client::builder()
            .timeout(Duration::from_secs(120))
            .build()
            .unwrap()
    };
    // 2,000 async executions from 4 clients, 200 sync ones from 20, over every node.
    let mut threads = Vec::new();
    for t in 0..4 {
        let (urls, fids, accepted) = (urls.clone(), fids.clone(), accepted.clone());
        let http = http();
        threads.push(std::thread::spawn(move || {
            for i in 0..500 {
                let url = &urls[(t + i) % 3];
                let body = json!({"function_id": fids[i % fids.len()], "sync": false});
                if let Ok(r) = http.post(format!("{url}/v1/executions")).json(&body).send()
                    && r.status().as_u16() == 201
                {
                    let e: Value = r.json().unwrap();
                    accepted
                        .lock()
                        .unwrap()
                        .push(e["id"].as_str().unwrap().to_string());
                }
            }
        }));
    }
    for t in 0..20 {
        let (urls, fids, sync_done) = (urls.clone(), fids.clone(), sync_done.clone());
        let http = http();
        threads.push(std::thread::spawn(move || {
            for i in 0..10 {
                let url = &urls[(t + i) % 3];
                let body = json!({"function_id": fids[(t + i) % fids.len()]});
                if let Ok(r) = http.post(format!("{url}/v1/executions")).json(&body).send()
                    && r.status().as_u16() == 201
                {
                    sync_done.lock().unwrap().push(r.json().unwrap());
                }
            }
        }));
    }
    std::thread::sleep(Duration::from_millis(1500));
    c.nodes[1].kill9();
    for t in threads {
        t.join().unwrap();
    }
    let accepted = accepted.lock().unwrap().clone();
    let sync_done = sync_done.lock().unwrap().clone();
    assert!(accepted.len() > 500, "only {} accepted", accepted.len());
    assert!(
        sync_done.len() > 50,
        "only {} sync answered",
        sync_done.len()
    );
    // Within a bounded time nothing is running, and every accepted execution is there once.
    let all = settle(&c.nodes[0], Duration::from_secs(180));
    let ids: HashSet<&String> = accepted.iter().collect();
    assert_eq!(ids.len(), accepted.len(), "an id accepted twice");
    // Every answered execution is there, once; beyond them only the few whose answers died
    // with n2 (a request per client at most).
    let warm = fids.len();
    let answered = warm + accepted.len() + sync_done.len();
    for e in &sync_done {
        assert!(all.contains_key(e["id"].as_str().unwrap()), "{e}");
    }
    assert!(
        all.len() >= answered && all.len() <= answered + 24,
        "{} rows: warm-up {warm}, async {}, sync {}",
        all.len(),
        accepted.len(),
        sync_done.len()
    );
    let mut lost = 0;
    for id in &accepted {
        let e = &all[id];
        match e["status"].as_str() {
            Some("success") => {}
            Some("error") => {
                let why = e["result"].as_str().unwrap_or_default();
                assert!(why.contains("n2") && why.contains("lost"), "{e}");
                lost += 1;
            }
            other => panic!("{other:?}: {e}"),
        }
    }
    // At most what was running on n2 when it died is lost: its own dispatcher's and what
    // the other two forwarded to it (32 async slots each).
    assert!(lost <= 96, "{lost} async executions lost with the node");
    for e in &sync_done {
        match e["status"].as_str() {
            Some("success") => {}
            Some("error") => {
                let why = e["result"].as_str().unwrap_or_default();
                assert!(why.contains("lost"), "{e}");
            }
            other => panic!("{other:?}: {e}"),
        }
    }
    // The survivors answer, and n2's functions run elsewhere.
    for fid in &fids {
        for node in [&c.nodes[0], &c.nodes[2]] {
            let e = node.execute(fid, None);
            assert_eq!(e["status"], "success", "{e}\n{}", c.logs());
        }
    }
    let (_, body) = c.nodes[0].get("/v1/nodes");
    let n2 = body["nodes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["name"] == "n2")
        .cloned();
    assert_eq!(
        n2.map(|n| n["status"].clone()),
        Some(json!("lost")),
        "{body}"
    );
    // It comes back and rejoins.
    c.nodes[1].restart();
    c.wait_up(3);
}

#[test]
fn a_sync_caller_whose_execution_was_forwarded_to_a_dying_node_gets_an_error_at_once() {
    let Some(mut c) = Cluster::start(
        "a_sync_caller_whose_execution_was_forwarded_to_a_dying_node_gets_an_error_at_once",
        2,
        &[],
    ) else {
        return;
    };
    let f = c.nodes[0].create_function("sleepy.py", SLEEPY, "sleepy.main", &[]);
    let fid = f["id"].as_str().unwrap().to_string();
    // Warm it, and learn its home.
    assert_eq!(
        c.nodes[0].execute(&fid, Some("{\"secs\": 0}"))["status"],
        "success"
    );
    let home: usize = {
        let workers = workers_by_node(&c.nodes[0], &fid);
        let name = workers.keys().next().unwrap().clone();
        name[1..].parse::<usize>().unwrap() - 1
    };
    let other = 1 - home;
    let url = c.nodes[other].url.clone();
    let caller = std::thread::spawn(move || {
        let started = Instant::now();
        let r = reqwest::blocking::Client::new()
            .post(format!("{url}/v1/executions"))
            .json(&json!({"function_id": fid, "input": "{\"secs\": 60}"}))
            .timeout(Duration::from_secs(120))
            .send()
            .unwrap();
        (
            r.status().as_u16(),
            r.json::<Value>().unwrap(),
            started.elapsed(),
        )
    });
    std::thread::sleep(Duration::from_secs(2));
    c.nodes[home].kill9();
    let (status, e, took) = caller.join().unwrap();
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "error", "{e}");
    let why = e["result"].as_str().unwrap();
    assert!(
        why.contains(&format!("n{}", home + 1)) && why.contains("lost"),
        "{why}"
    );
    assert!(
        took < Duration::from_secs(30),
        "answered after {took:?}, not at once"
    );
    // Recorded so too.
    let (_, row) = c.nodes[other].get(&format!("/v1/executions/{}", e["id"].as_str().unwrap()));
    assert_eq!(row["status"], "error", "{row}");
}

#[test]
fn nats_restarted_under_load_loses_no_accepted_execution() {
    let Some(c) = Cluster::start(
        "nats_restarted_under_load_loses_no_accepted_execution",
        2,
        &[],
    ) else {
        return;
    };
    let f = c.nodes[0].create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap().to_string();
    let urls: Vec<String> = c.nodes.iter().map(|s| s.url.clone()).collect();
    let accepted = Arc::new(Mutex::new(Vec::<String>::new()));
    let submitter = {
        let (accepted, fid) = (accepted.clone(), fid.clone());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::new();
            let until = Instant::now() + Duration::from_secs(6);
            let mut i = 0;
            while Instant::now() < until {
                let body = json!({"function_id": fid, "sync": false});
                let r = http
                    .post(format!("{}/v1/executions", urls[i % 2]))
                    .json(&body)
                    .send()
                    .unwrap();
                assert_eq!(r.status().as_u16(), 201, "accepting does not need NATS");
                let e: Value = r.json().unwrap();
                accepted
                    .lock()
                    .unwrap()
                    .push(e["id"].as_str().unwrap().to_string());
                i += 1;
                std::thread::sleep(Duration::from_millis(10));
            }
        })
    };
    std::thread::sleep(Duration::from_secs(2));
    c.nats.restart();
    submitter.join().unwrap();
    // Sync executions work again through both nodes.
    for node in &c.nodes {
        assert_eq!(
            node.execute(&fid, None)["status"],
            "success",
            "{}",
            c.logs()
        );
    }
    let accepted = accepted.lock().unwrap().clone();
    assert!(accepted.len() > 100, "only {} accepted", accepted.len());
    let all = settle(&c.nodes[0], Duration::from_secs(120));
    for id in &accepted {
        assert_eq!(all[id]["status"], "success", "{}\n{}", all[id], c.logs());
    }
}

#[test]
fn a_cron_job_fires_exactly_its_count_while_nodes_die_and_return() {
    let Some(mut c) = Cluster::start(
        "a_cron_job_fires_exactly_its_count_while_nodes_die_and_return",
        3,
        &[],
    ) else {
        return;
    };
    let f = c.nodes[0].create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, j) = c.nodes[0].post(
        "/v1/jobs",
        // A pattern that never comes due during the test (Jan 1st): every tick is one the
        // test brings forward, so a slow run cannot meet a natural one too.
        json!({"function_id": fid, "pattern": "0 0 1 1 *", "count": 3}),
    );
    assert_eq!(status, 201, "{j}");
    let jid = j["id"].as_str().unwrap().to_string();
    let in_secs =
        |secs: u64| qinling_types::format_ts(qinling_types::now() + Duration::from_secs(secs));
    // Each tick brought forward, with a node killed before it and the previous one back.
    for (tick, victim) in [(1, 0usize), (2, 1), (3, 2)] {
        c.nodes[victim].kill9();
        let alive = &c.nodes[(victim + 1) % 3];
        let (status, j) = alive.put(
            &format!("/v1/jobs/{jid}"),
            json!({"next_execution_time": in_secs(1)}),
        );
        assert_eq!(status, 200, "{j}");
        let deadline = Instant::now() + Duration::from_secs(30);
        loop {
            let (_, j) = alive.get(&format!("/v1/jobs/{jid}"));
            if j["count"] == 3 - tick {
                break;
            }
            assert!(
                Instant::now() < deadline,
                "tick {tick} never fired: {j}\n{}",
                c.logs()
            );
            std::thread::sleep(Duration::from_millis(100));
        }
        // The tick's execution ends before the next node dies: one killed while running it
        // would rightly end `error` (at most once for a started execution), which is another
        // test's subject; this one counts ticks.
        settle(alive, Duration::from_secs(60));
        c.nodes[victim].restart();
    }
    std::thread::sleep(Duration::from_secs(3));
    let (_, j) = c.nodes[0].get(&format!("/v1/jobs/{jid}"));
    assert_eq!(j["status"], "done", "{j}");
    let (_, list) = c.nodes[1].get(&format!("/v1/executions?description=has:{jid}"));
    let runs = list["executions"].as_array().unwrap();
    assert_eq!(runs.len(), 3, "exactly 3 executions: {list}");
    let all = settle(&c.nodes[2], Duration::from_secs(60));
    for e in runs {
        assert_eq!(all[e["id"].as_str().unwrap()]["status"], "success", "{e}");
    }
}
