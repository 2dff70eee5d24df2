//! Usage for billing and the request id on executions (issue 8), end to end: the usage
//! aggregates equal the sums over the executions' own records (counts exactly, GiB-seconds
//! as memory limit × duration), as JSON, CSV and through `qinling usage`; ranges include and
//! exclude as documented; bad input is a 400 that says what to send; a non-admin sees only
//! their own project.

use std::collections::BTreeMap;
use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{Opts, Server, parse, result, zip_of};

const SLEEPY: &str = "import time\n\ndef main(fail=False, **kwargs):\n    time.sleep(0.05)\n    if fail:\n        raise ValueError('asked to fail')\n    return 'done'\n";

const MIB: i64 = 1 << 20;

/// Posts an execution with our own request id; returns the execution.
fn run(s: &Server, function_id: &str, input: Option<&str>, sync: bool, request_id: &str) -> Value {
    let mut body = json!({"function_id": function_id, "sync": sync});
    if let Some(i) = input {
        body["input"] = json!(i);
    }
    let r = s
        .http
        .post(format!("{}/v1/executions", s.url))
        .header("X-Openstack-Request-Id", request_id)
        .json(&body)
        .send()
        .unwrap();
    assert_eq!(r.headers()["x-openstack-request-id"], request_id);
    let (status, e) = parse(r);
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["request_id"], request_id, "{e}");
    if sync {
        e
    } else {
        s.wait_execution(e["id"].as_str().unwrap(), Duration::from_secs(60))
    }
}

/// The sums a usage row must show, computed from execution records.
#[derive(Debug, Default, Clone, PartialEq)]
struct Sums {
    executions: i64,
    succeeded: i64,
    failed: i64,
    duration_ms: i64,
    cpu_ms: i64,
    gib_seconds: f64,
    peak_kb: Option<i64>,
}

impl Sums {
    fn add(&mut self, e: &Value) {
        self.executions += 1;
        match e["status"].as_str().unwrap() {
            "success" => self.succeeded += 1,
            "failed" => self.failed += 1,
            other => panic!("unexpected status {other}: {e}"),
        }
        let duration_ms = e["duration_ms"].as_i64().unwrap();
        self.duration_ms += duration_ms;
        self.cpu_ms += e["cpu_ms"].as_i64().unwrap_or(0);
        let memory = e["memory_size"].as_i64().unwrap();
        self.gib_seconds += memory as f64 / (1u64 << 30) as f64 * duration_ms as f64 / 1000.0;
        if let Some(kb) = e["memory_peak_kb"].as_i64() {
            self.peak_kb = Some(self.peak_kb.map_or(kb, |p| p.max(kb)));
        }
    }

    /// Asserts that a usage row (or the totals) shows these sums.
    fn check(&self, row: &Value) {
        let what = format!("{row} vs {self:?}");
        assert_eq!(row["executions"], self.executions, "{what}");
        assert_eq!(row["succeeded"], self.succeeded, "{what}");
        assert_eq!(row["failed"], self.failed, "{what}");
        assert_eq!(row["errored"], 0, "{what}");
        let close = |v: &Value, want: f64| (v.as_f64().unwrap() - want).abs() < 1e-9;
        assert!(
            close(&row["duration_s"], self.duration_ms as f64 / 1000.0),
            "{what}"
        );
        assert!(close(&row["cpu_s"], self.cpu_ms as f64 / 1000.0), "{what}");
        assert!(close(&row["gb_seconds"], self.gib_seconds), "{what}");
        assert!(self.gib_seconds > 0.0, "{what}");
        assert_eq!(row["memory_peak_max_kb"].as_i64(), self.peak_kb, "{what}");
    }
}

/// Checks an execution's own usage fields against its result and its function.
fn check_record(e: &Value, memory_size: i64) {
    let duration = result(e)["duration"].as_f64().unwrap();
    assert_eq!(
        e["duration_ms"].as_i64(),
        Some((duration * 1000.0).round() as i64),
        "{e}"
    );
    assert!(
        e["duration_ms"].as_i64().unwrap() >= 50,
        "it sleeps 50 ms: {e}"
    );
    assert_eq!(e["memory_size"], memory_size, "{e}");
}

/// Parses CSV without quoted fields (ids and numbers only) into header → value maps.
fn csv_rows(text: &str) -> Vec<BTreeMap<String, String>> {
    let mut lines = text.split("\r\n").filter(|l| !l.is_empty());
    let header: Vec<&str> = lines.next().expect("a header line").split(',').collect();
    lines
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            assert_eq!(fields.len(), header.len(), "{l}");
            header
                .iter()
                .zip(fields)
                .map(|(h, f)| (h.to_string(), f.to_string()))
                .collect()
        })
        .collect()
}

fn qinling(s: &Server, args: &[&str]) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_qinling"))
        .args(args)
        .env("QINLING_URL", &s.url)
        .env_remove("QINLING_TOKEN")
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "qinling {args:?}: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).unwrap()
}

#[test]
fn usage_matches_the_executions_that_ran() {
    let s = Server::start();
    let small = s.create_function(
        "sleepy.py",
        SLEEPY,
        "sleepy.main",
        &[("memory_size", "33554432")],
    );
    let big = s.create_function(
        "sleepy.py",
        SLEEPY,
        "sleepy.main",
        &[("memory_size", "134217728"), ("name", "big")],
    );
    let (small, big) = (small["id"].as_str().unwrap(), big["id"].as_str().unwrap());

    // Small: two successes and a failure, one of them async; big: one success, one failure.
    let mut records = vec![
        (small, run(&s, small, None, true, "req-usage-1")),
        (
            small,
            run(&s, small, Some("{\"fail\": true}"), true, "req-usage-2"),
        ),
        (small, run(&s, small, None, false, "req-usage-3")),
        (big, run(&s, big, None, true, "req-usage-4")),
        (
            big,
            run(&s, big, Some("{\"fail\": true}"), false, "req-usage-5"),
        ),
    ];
    // What each execution recorded, as GET shows it.
    for (_, e) in &mut records {
        let (status, shown) = s.get(&format!("/v1/executions/{}", e["id"].as_str().unwrap()));
        assert_eq!(status, 200);
        *e = shown;
    }
    let mut want: BTreeMap<&str, Sums> = BTreeMap::new();
    for (f, e) in &records {
        check_record(e, if *f == small { 32 * MIB } else { 128 * MIB });
        want.entry(*f).or_default().add(e);
    }
    assert_eq!(
        (want[small].succeeded, want[small].failed, want[big].failed),
        (2, 1, 1)
    );
    // Requests ids stay with their executions (async ones: the POST's).
    let ids: Vec<&str> = records
        .iter()
        .map(|(_, e)| e["request_id"].as_str().unwrap())
        .collect();
    assert_eq!(
        ids,
        [
            "req-usage-1",
            "req-usage-2",
            "req-usage-3",
            "req-usage-4",
            "req-usage-5"
        ]
    );

    let (status, usage) = s.get("/v1/usage");
    assert_eq!(status, 200, "{usage}");
    assert_eq!(
        (&usage["group_by"], &usage["since"]),
        (&json!("function"), &Value::Null)
    );
    let rows = usage["usage"].as_array().unwrap();
    assert_eq!(rows.len(), 2, "{usage}");
    let mut total = Sums::default();
    for row in rows {
        let f = row["function_id"].as_str().unwrap();
        assert_eq!(row["project_id"], "default");
        want[f].check(row);
        for (g, e) in &records {
            if *g == f {
                total.add(e);
            }
        }
    }
    total.check(&usage["totals"]);
    let names: Vec<&Value> = rows.iter().map(|r| &r["function_name"]).collect();
    assert!(
        names.contains(&&json!("big")) && names.contains(&&Value::Null),
        "{names:?}"
    );

    // Per project: one row with the totals; one function: its row only.
    let (_, by_project) = s.get("/v1/usage?group_by=project");
    assert_eq!(by_project["usage"].as_array().unwrap().len(), 1);
    assert!(by_project["usage"][0]["function_id"].is_null());
    total.check(&by_project["usage"][0]);
    let (_, one) = s.get(&format!("/v1/usage?function_id={big}"));
    assert_eq!(one["usage"].as_array().unwrap().len(), 1);
    want[big].check(&one["usage"][0]);
    want[big].check(&one["totals"]);

    // CSV, asked for either way, carries the same numbers.
    let csv_of = |r: reqwest::blocking::Response| {
        assert_eq!(r.status().as_u16(), 200);
        assert!(
            r.headers()["content-type"]
                .to_str()
                .unwrap()
                .starts_with("text/csv")
        );
        r.text().unwrap()
    };
    let text = csv_of(s.get_raw("/v1/usage?format=csv"));
    let accepted = csv_of(
        s.http
            .get(format!("{}/v1/usage", s.url))
            .header("Accept", "text/csv")
            .send()
            .unwrap(),
    );
    assert_eq!(text.lines().next(), accepted.lines().next());
    assert_eq!(
        text.lines().next().unwrap(),
        "project_id,function_id,function_name,executions,succeeded,failed,errored,duration_s,cpu_s,gb_seconds,memory_peak_max_kb"
    );
    let lines = csv_rows(&text);
    assert_eq!(lines.len(), 2);
    for (line, row) in lines.iter().zip(rows) {
        for (k, v) in line {
            let json_value = match &row[k.as_str()] {
                Value::Null => String::new(),
                Value::String(s) => s.clone(),
                n => n.to_string(),
            };
            assert_eq!(v, &json_value, "{k}");
        }
    }

    // Ranges: since inclusive, until exclusive, the answer's `until` exact to reuse.
    let t0 = usage["until"].as_str().unwrap().to_string();
    let later = run(&s, small, None, true, "req-usage-6");
    let (_, after) = s.get(&format!("/v1/usage?since={t0}"));
    assert_eq!(after["usage"].as_array().unwrap().len(), 1, "{after}");
    assert_eq!(after["usage"][0]["function_id"], small);
    assert_eq!(after["totals"]["executions"], 1);
    let (_, before) = s.get(&format!("/v1/usage?until={t0}"));
    total.check(&before["totals"]);
    let (_, all) = s.get("/v1/usage?since=2000-01-01");
    assert_eq!(all["totals"]["executions"], 6);
    assert_eq!(all["since"], "2000-01-01T00:00:00Z");
    let (_, none) = s.get(&format!(
        "/v1/usage?until=2000-01-01&since={}",
        "1999-12-31T23:00:00%2B00:00"
    ));
    assert_eq!(
        (
            none["usage"].as_array().unwrap().len(),
            &none["totals"]["executions"]
        ),
        (0, &json!(0))
    );
    assert_eq!(later["request_id"], "req-usage-6");

    // Bad input: a 400 that says what to send.
    for (query, says) in [
        ("since=yesterday", "Invalid since 'yesterday'"),
        ("until=2026-02-30", "Invalid until '2026-02-30'"),
        ("since=2026-11-02&until=2026-11-01", "is after until"),
        ("group_by=runtime", "use function or project"),
        ("format=xml", "use json or csv"),
        ("from=2026-01-01", "Unknown argument"),
    ] {
        let (status, body) = s.get(&format!("/v1/usage?{query}"));
        assert_eq!(status, 400, "{query}: {body}");
        let message = body["faultstring"].as_str().unwrap();
        assert!(message.contains(says), "{query}: {message}");
        if query.starts_with("since=y") {
            assert!(
                message.contains("2026-11-28T06:48:38Z") && message.contains("2026-11-28"),
                "{message}"
            );
        }
    }

    // The CLI: JSON is the server's answer, CSV its CSV, the table ends with the totals.
    let cli_json: Value =
        serde_json::from_str(&qinling(&s, &["usage", "--until", &t0, "-f", "json"])).unwrap();
    assert_eq!(cli_json["usage"], usage["usage"]);
    assert_eq!(cli_json["totals"], usage["totals"]);
    let cli_csv = qinling(&s, &["usage", "--until", &t0, "--format", "csv"]);
    assert_eq!(cli_csv, text);
    let table = qinling(
        &s,
        &["usage", "--function", "big", "--group-by", "function"],
    );
    let body: Vec<&str> = table.lines().filter(|l| l.starts_with("| ")).collect();
    assert_eq!(body.len(), 3, "header, big, total:\n{table}");
    assert!(
        body[1].starts_with(&format!("| default    | {big} | big ")),
        "{table}"
    );
    assert!(body[2].starts_with("| total "), "{table}");
    let executions = |line: &str| line.split('|').nth(4).unwrap().trim().to_string();
    assert_eq!(
        (executions(body[1]), executions(body[2])),
        ("2".into(), "2".into())
    );
    let by_project = qinling(
        &s,
        &[
            "usage",
            "--group-by",
            "project",
            "--since",
            "2000-01-01",
            "-f",
            "csv",
        ],
    );
    let lines = csv_rows(&by_project);
    assert_eq!((lines.len(), lines[0]["executions"].as_str()), (1, "6"));
    // `execution show` shows the request id.
    let shown = qinling(&s, &["execution", "show", later["id"].as_str().unwrap()]);
    assert!(
        shown.contains("| request_id ") && shown.contains("req-usage-6"),
        "{shown}"
    );
    // The function sees the request id in its context, async executions included.
    let echo = s.create_function(
        "echo.py",
        "def main(context=None, **kwargs):\n    return context['request_id']\n",
        "echo.main",
        &[],
    );
    let echo = echo["id"].as_str().unwrap();
    for (sync, rid) in [(true, "req-ctx-sync"), (false, "req-ctx-async")] {
        let e = run(&s, echo, None, sync, rid);
        assert_eq!(result(&e)["output"], rid, "{e}");
    }
}

/// A token of `project` with `roles` (user `u`, an hour).
fn token(s: &Server, project: &str, roles: &str) -> String {
    crate::auth::make_token(s, project, "u", roles, "1h")
}

fn get_as(s: &Server, token: &str, path: &str) -> (u16, Value) {
    parse(
        s.http
            .get(format!("{}{path}", s.url))
            .header("X-Auth-Token", token)
            .send()
            .unwrap(),
    )
}

#[test]
fn each_project_sees_its_own_usage() {
    let s = Server::start_with(Opts {
        extra: vec!["--auth".into(), "token".into()],
        ..Opts::default()
    });
    let (a, b, admin) = (
        token(&s, "pa", "member"),
        token(&s, "pb", "member"),
        token(&s, "ops", "admin"),
    );
    let runtime = {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let (_, body) = get_as(&s, &admin, "/v1/runtimes");
            if let Some(r) = body["runtimes"].as_array().and_then(|rs| {
                rs.iter()
                    .find(|r| r["name"] == "python3" && r["status"] == "available")
            }) {
                break r["id"].as_str().unwrap().to_string();
            }
            assert!(std::time::Instant::now() < deadline, "no python3 runtime");
            std::thread::sleep(Duration::from_millis(50));
        }
    };
    // Project a runs twice, project b once (one a webhook's, with the invoke's request id).
    let mut functions = BTreeMap::new();
    for (who, project) in [(&a, "pa"), (&b, "pb")] {
        let form = reqwest::blocking::multipart::Form::new()
            .text("runtime_id", runtime.clone())
            .text("code", r#"{"source": "package"}"#)
            .text("entry", "sleepy.main")
            .part(
                "package",
                reqwest::blocking::multipart::Part::bytes(zip_of(&[("sleepy.py", SLEEPY)]))
                    .file_name("package.zip"),
            );
        let (status, f) = parse(
            s.http
                .post(format!("{}/v1/functions", s.url))
                .header("X-Auth-Token", who.as_str())
                .multipart(form)
                .send()
                .unwrap(),
        );
        assert_eq!(status, 201, "{f}");
        functions.insert(project, f["id"].as_str().unwrap().to_string());
    }
    let post = |who: &str, path: &str, body: Value, rid: &str| {
        parse(
            s.http
                .post(format!("{}{path}", s.url))
                .header("X-Auth-Token", who)
                .header("X-Openstack-Request-Id", rid)
                .json(&body)
                .send()
                .unwrap(),
        )
    };
    for i in 0..2 {
        let (status, e) = post(
            &a,
            "/v1/executions",
            json!({"function_id": functions["pa"]}),
            &format!("req-a-{i}"),
        );
        assert_eq!((status, &e["status"]), (201, &json!("success")), "{e}");
    }
    let (status, hook) = post(
        &b,
        "/v1/webhooks",
        json!({"function_id": functions["pb"]}),
        "req-b-hook",
    );
    assert_eq!(status, 201, "{hook}");
    let (status, invoked) = post(
        "",
        &format!("/v1/webhooks/{}/invoke", hook["id"].as_str().unwrap()),
        json!({}),
        "req-b-invoke",
    );
    assert_eq!(status, 202, "{invoked}");
    let eid = invoked["execution_id"].as_str().unwrap();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let e = loop {
        let (_, e) = get_as(&s, &b, &format!("/v1/executions/{eid}"));
        if e["status"] != "running" {
            break e;
        }
        assert!(std::time::Instant::now() < deadline, "{e}");
        std::thread::sleep(Duration::from_millis(50));
    };
    assert_eq!(
        (&e["status"], &e["request_id"]),
        (&json!("success"), &json!("req-b-invoke")),
        "{e}"
    );

    let projects = |body: &Value| -> Vec<(String, i64)> {
        body["usage"]
            .as_array()
            .unwrap_or_else(|| panic!("{body}"))
            .iter()
            .map(|r| {
                (
                    r["project_id"].as_str().unwrap().to_string(),
                    r["executions"].as_i64().unwrap(),
                )
            })
            .collect()
    };
    let (status, mine) = get_as(&s, &a, "/v1/usage");
    assert_eq!(status, 200, "{mine}");
    assert_eq!(projects(&mine), [("pa".to_string(), 2)]);
    assert_eq!(
        projects(&get_as(&s, &a, "/v1/usage?project_id=pa").1),
        [("pa".to_string(), 2)]
    );
    assert_eq!(
        projects(&get_as(&s, &b, "/v1/usage").1),
        [("pb".to_string(), 1)]
    );
    for path in [
        "/v1/usage?project_id=pb",
        "/v1/usage?all_projects=true",
        "/v1/usage?project_id=pa&project_id=pb",
    ] {
        let (status, body) = get_as(&s, &a, path);
        assert_eq!(status, 403, "{path}: {body}");
    }
    // Admins read any project, or all.
    let (status, all) = get_as(&s, &admin, "/v1/usage?all_projects=1");
    assert_eq!(status, 200, "{all}");
    assert_eq!(
        projects(&all),
        [("pa".to_string(), 2), ("pb".to_string(), 1)]
    );
    assert_eq!(all["totals"]["executions"], 3);
    assert_eq!(
        projects(&get_as(&s, &admin, "/v1/usage?project_id=pb&group_by=project").1),
        [("pb".to_string(), 1)]
    );
    assert_eq!(
        projects(&get_as(&s, &admin, "/v1/usage").1),
        Vec::<(String, i64)>::new(),
        "an admin's own project ran nothing"
    );
}
