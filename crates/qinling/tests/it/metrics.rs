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
        None
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
