//! `/metrics` after a known sequence of requests and executions: counts and statuses exact.

use serde_json::json;

use crate::harness::Server;

/// The value of the sample `name{…}` whose labels include all of `labels`; `None` if absent.
pub(crate) fn sample(text: &str, name: &str, labels: &[(&str, &str)]) -> Option<f64> {
    text.lines()
        .filter(|l| !l.starts_with('#'))
        .find_map(|line| {
            let (series, value) = line.rsplit_once(' ')?;
            let (metric, rest) = series.split_once('{').unwrap_or((series, "}"));
            if metric != name {
                return None;
            }
            let all = labels
                .iter()
                .all(|(k, v)| rest.contains(&format!("{k}=\"{v}\"")));
            all.then(|| value.parse().ok()).flatten()
        })
}

#[test]
fn metrics_count_executions_requests_and_workers_exactly() {
    let s = Server::start();
    let rt = s.python_runtime();
    let ok = s.create_function("ok.py", "def main(**kw):\n    return 1\n", "ok.main", &[]);
    let bad = s.create_function(
        "bad.py",
        "def main(**kw):\n    raise ValueError('no')\n",
        "bad.main",
        &[],
    );
    let (ok, bad) = (ok["id"].as_str().unwrap(), bad["id"].as_str().unwrap());
    for _ in 0..3 {
        assert_eq!(s.execute(ok, None)["status"], "success");
    }
    for _ in 0..2 {
        assert_eq!(s.execute(bad, None)["status"], "failed");
    }
    let (status, _) = s.get("/no/such/path");
    assert_eq!(status, 404);

    let r = s.get_raw("/metrics");
    assert_eq!(r.status().as_u16(), 200);
    assert!(
        r.headers()["content-type"]
            .to_str()
            .unwrap()
            .starts_with("text/plain")
    );
    let text = r.text().unwrap();
    let get = |name: &str, labels: &[(&str, &str)]| {
        sample(&text, name, labels).unwrap_or_else(|| panic!("no {name} {labels:?} in:\n{text}"))
    };

    assert_eq!(
        get(
            "qinling_executions_total",
            &[
                ("function", ok),
                ("status", "success"),
                ("project", "default"),
                ("runtime", &rt)
            ]
        ),
        3.0
    );
    assert_eq!(
        get(
            "qinling_executions_total",
            &[("function", bad), ("status", "failed")]
        ),
        2.0
    );
    assert_eq!(
        sample(
            &text,
            "qinling_executions_total",
            &[("function", ok), ("status", "failed")]
        ),
        Some(0.0),
        "every ending status is counted from a function's first execution"
    );
    assert_eq!(
        get(
            "qinling_execution_duration_seconds_count",
            &[("runtime", &rt), ("status", "success")]
        ),
        3.0
    );
    assert_eq!(
        get("qinling_cold_start_seconds_count", &[("runtime", &rt)]),
        2.0,
        "one cold start per function"
    );
    assert_eq!(
        get(
            "qinling_http_requests_total",
            &[
                ("route", "/v1/executions"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        5.0
    );
    assert_eq!(
        get(
            "qinling_http_requests_total",
            &[
                ("route", "/v1/functions"),
                ("method", "POST"),
                ("status", "201")
            ]
        ),
        2.0
    );
    assert_eq!(
        get(
            "qinling_http_requests_total",
            &[("route", "unmatched"), ("status", "404")]
        ),
        1.0
    );
    assert_eq!(get("qinling_function_workers", &[("function", ok)]), 1.0);
    assert_eq!(get("qinling_async_queue_depth", &[]), 0.0);
    assert!(
        get(
            "qinling_pool_workers",
            &[("runtime", &rt), ("state", "target")]
        ) >= 1.0
    );

    // An async execution shows in the counts once it has run.
    let (status, e) = s.post("/v1/executions", json!({"function_id": ok, "sync": false}));
    assert_eq!(status, 201);
    s.wait_execution(
        e["id"].as_str().unwrap(),
        std::time::Duration::from_secs(30),
    );
    let text = s.get_raw("/metrics").text().unwrap();
    assert_eq!(
        sample(
            &text,
            "qinling_executions_total",
            &[("function", ok), ("status", "success")]
        ),
        Some(4.0)
    );
}

#[test]
fn function_count_is_exact_under_concurrency() {
    let s = Server::start();
    let f = s.create_function("ok.py", "def main(**kw):\n    return 1\n", "ok.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let async_ids: Vec<String> = (0..30)
        .map(|_| {
            let (status, e) = s.post("/v1/executions", json!({"function_id": fid, "sync": false}));
            assert_eq!(status, 201, "{e}");
            e["id"].as_str().unwrap().to_string()
        })
        .collect();
    std::thread::scope(|scope| {
        for _ in 0..10 {
            scope.spawn(|| assert_eq!(s.execute(fid, None)["status"], "success"));
        }
    });
    for id in &async_ids {
        s.wait_execution(id, std::time::Duration::from_secs(60));
    }
    let (_, f) = s.get(&format!("/v1/functions/{fid}"));
    assert_eq!(f["count"], 40, "{f}");
    let text = s.get_raw("/metrics").text().unwrap();
    assert_eq!(
        sample(
            &text,
            "qinling_executions_total",
            &[("function", fid), ("status", "success")]
        ),
        Some(40.0)
    );
}

/// The name of the family a sample line belongs to (a histogram's `_bucket`, `_sum` and
/// `_count` belong to the histogram).
fn family<'a>(line: &'a str, histograms: &[&str]) -> &'a str {
    let name = line.split(['{', ' ']).next().unwrap_or(line);
    for suffix in ["_bucket", "_sum", "_count"] {
        if let Some(base) = name.strip_suffix(suffix)
            && histograms.contains(&base)
        {
            return base;
        }
    }
    name
}

#[test]
fn every_family_is_described_named_and_present_from_start() {
    let s = Server::start();
    let rt = s.python_runtime();

    // Before any execution: the counters an alert watches exist, at zero.
    let text = s.get_raw("/metrics").text().unwrap();
    assert_eq!(
        sample(
            &text,
            "qinling_oom_kills_total",
            &[("runtime", &rt), ("runtime_name", "python3")]
        ),
        Some(0.0),
        "{text}"
    );
    assert_eq!(
        sample(
            &text,
            "qinling_sandbox_failures_total",
            &[("reason", "no_worker")]
        ),
        Some(0.0),
        "{text}"
    );

    // A function that runs out of memory: its executions are counted under its name, every
    // ending status exists from its first execution, and the OOM counter moves.
    let hog = s.create_function(
        "hog.py",
        "def main(**kw):\n    b = b'x' * (200 << 20)\n    return len(b)\n",
        "hog.main",
        &[("name", "memory-hog"), ("memory_size", "33554432")],
    );
    let hog = hog["id"].as_str().unwrap();
    let e = s.execute(hog, None);
    assert_eq!(e["status"], "failed", "{e}");
    let text = s.get_raw("/metrics").text().unwrap();
    let count = |status: &str| {
        sample(
            &text,
            "qinling_executions_total",
            &[
                ("function", hog),
                ("function_name", "memory-hog"),
                ("runtime", &rt),
                ("runtime_name", "python3"),
                ("status", status),
            ],
        )
    };
    assert_eq!(
        (count("success"), count("failed"), count("error")),
        (Some(0.0), Some(1.0), Some(0.0)),
        "{text}"
    );
    assert_eq!(
        sample(&text, "qinling_oom_kills_total", &[("runtime", &rt)]),
        Some(1.0),
        "{text}"
    );
    assert!(
        sample(
            &text,
            "qinling_function_workers",
            &[("function", hog), ("function_name", "memory-hog")]
        )
        .is_some(),
        "{text}"
    );

    // Every family has its HELP and TYPE lines.
    let histograms: Vec<&str> = text
        .lines()
        .filter_map(|l| l.strip_prefix("# TYPE "))
        .filter_map(|l| l.strip_suffix(" histogram"))
        .collect();
    let families: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| family(l, &histograms))
        .collect();
    assert!(families.len() >= 10, "{families:?}");
    for f in &families {
        for kind in ["HELP", "TYPE"] {
            assert!(
                text.lines()
                    .any(|l| l.starts_with(&format!("# {kind} {f} "))),
                "no # {kind} for {f} in:\n{text}"
            );
        }
    }

    // And Prometheus's own linter accepts the page.
    if let Some(out) = promtool(&["check", "metrics"], Some(&text)) {
        assert!(
            out.status.success(),
            "promtool check metrics: {out:?}\n{text}"
        );
    }

    // The monitoring examples in docs/ name only series this page has.
    let samples: std::collections::BTreeSet<&str> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .filter_map(|l| l.split(['{', ' ']).next())
        .collect();
    for file in ["alerts.yml", "grafana-dashboard.json"] {
        let doc = std::fs::read_to_string(docs().join(file)).unwrap();
        let named = doc
            .match_indices("qinling_")
            .map(|(at, _)| {
                let rest = &doc[at..];
                let end = rest
                    .find(|c: char| !(c.is_ascii_alphanumeric() || c == '_'))
                    .unwrap_or(rest.len());
                &rest[..end]
            })
            .filter(|name| !name.ends_with('_'));
        let mut n = 0;
        for name in named {
            n += 1;
            assert!(
                samples.contains(name),
                "docs/monitoring/{file} names {name}, which /metrics does not have:\n{text}"
            );
        }
        assert!(n >= 8, "{file}: {n} series named");
    }
}

/// `docs/monitoring`.
fn docs() -> std::path::PathBuf {
    std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../docs/monitoring")
}

/// Runs Prometheus's `promtool` with `args` (and `stdin`); `None`, saying so, if it is not
/// installed.
fn promtool(args: &[&str], stdin: Option<&str>) -> Option<std::process::Output> {
    use std::io::Write;
    use std::process::{Command, Stdio};
    let child = Command::new("promtool")
        .args(args)
        .current_dir(docs())
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn();
    let mut child = match child {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            eprintln!(
                "SKIPPED promtool {}: promtool is not installed (Debian package `prometheus`; \
                 .ci/run installs it)",
                args.join(" ")
            );
            return None;
        }
        other => other.expect("promtool"),
    };
    let mut input = child.stdin.take().unwrap();
    input.write_all(stdin.unwrap_or("").as_bytes()).unwrap();
    drop(input);
    Some(child.wait_with_output().unwrap())
}

#[test]
fn the_example_alerts_and_dashboard_are_valid_promql_and_the_alerts_fire() {
    let ok = |out: std::process::Output| {
        assert!(
            out.status.success(),
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        )
    };
    if let Some(out) = promtool(&["check", "rules", "alerts.yml"], None) {
        ok(out);
    }
    if let Some(out) = promtool(&["test", "rules", "alerts.test.yml"], None) {
        ok(out);
    }
    // Each of the dashboard's queries, with Grafana's variables given values, as a recording
    // rule: `promtool check rules` parses it.
    let dash: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(docs().join("grafana-dashboard.json")).unwrap(),
    )
    .expect("the dashboard is JSON");
    let mut rules = String::from("groups:\n  - name: dashboard\n    rules:\n");
    let mut n = 0;
    for panel in dash["panels"].as_array().expect("panels") {
        for target in panel["targets"].as_array().expect("targets") {
            let expr = target["expr"]
                .as_str()
                .expect("expr")
                .replace("$__rate_interval", "5m")
                .replace("$project", ".*");
            n += 1;
            rules += &format!(
                "      - record: qinling:dashboard_{n}\n        expr: {}\n",
                serde_json::Value::String(expr)
            );
        }
    }
    assert!(n >= 10, "{n} queries");
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("dashboard-rules.yml");
    std::fs::write(&path, &rules).unwrap();
    if let Some(out) = promtool(&["check", "rules", path.to_str().unwrap()], None) {
        ok(out);
    }
}
