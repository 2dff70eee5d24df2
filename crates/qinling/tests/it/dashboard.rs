//! The dashboard's server side: its files under `/ui` (open, with a strict Content Security
//! Policy, while the API stays closed) and the live statistics its charts read,
//! `GET /v1/functions/{id}/stats`. The page itself is tested in a real browser by
//! `tests/ui/dashboard_test.py`.

use serde_json::json;

use crate::harness::{Opts, Server};

#[test]
fn the_dashboard_files_are_served_openly_and_strictly() {
    let s = Server::start_with(Opts {
        extra: vec!["--auth".into(), "token".into()],
        ..Opts::default()
    });
    let no_redirects = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = no_redirects.get(format!("{}/ui", s.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 308);
    assert_eq!(r.headers()["location"], "/ui/");
    for (path, kind, has) in [
        ("/ui/", "text/html", "<script src=\"app.js\">"),
        ("/ui/app.js", "text/javascript", "X-Auth-Token"),
        ("/ui/app.css", "text/css", "font"),
    ] {
        let r = s.get_raw(path);
        assert_eq!(r.status().as_u16(), 200, "{path}");
        let h = r.headers().clone();
        assert!(
            h["content-type"].to_str().unwrap().starts_with(kind),
            "{path}: {h:?}"
        );
        let csp = h["content-security-policy"].to_str().unwrap();
        assert!(
            csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"),
            "{csp}"
        );
        assert!(!csp.contains("unsafe"), "{csp}");
        assert_eq!(h["x-content-type-options"], "nosniff");
        assert!(r.text().unwrap().contains(has), "{path}");
    }
    // Nothing else is served from there, and the API still wants a token.
    for path in ["/ui/secret", "/ui/../v1/functions", "/ui/a/b"] {
        let status = s.get_raw(path).status().as_u16();
        assert!(status == 404 || status == 401, "{path}: {status}");
    }
    assert_eq!(s.get_raw("/v1/functions").status().as_u16(), 401);
}

#[test]
fn function_stats_count_what_finished_by_step() {
    let s = Server::start();
    let f = s.create_function(
        "st.py",
        "def main(fail=False, **kw):\n    if fail:\n        raise ValueError('no')\n    return 1\n",
        "st.main",
        &[],
    );
    let fid = f["id"].as_str().unwrap();
    for input in [None, None, Some(r#"{"fail": true}"#)] {
        s.execute(fid, input);
    }
    let (status, st) = s.get(&format!("/v1/functions/{fid}/stats"));
    assert_eq!(status, 200, "{st}");
    assert_eq!(st["minutes"], 5);
    assert_eq!(st["points"].as_array().unwrap().len(), 60);
    assert_eq!(st["step_seconds"], 5.0);
    let t = &st["totals"];
    assert_eq!(
        (
            t["executions"].clone(),
            t["failed"].clone(),
            t["errors"].clone(),
            t["cold_starts"].clone()
        ),
        (json!(3), json!(1), json!(0), json!(1)),
        "{st}"
    );
    assert!(t["p50_ms"].is_i64() && t["p99_ms"].as_i64() >= t["p50_ms"].as_i64());
    let summed: i64 = st["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| p["executions"].as_i64().unwrap())
        .sum();
    assert_eq!(summed, 3, "every execution is in a step");
    assert_eq!(st["workers"], 1);
    assert_eq!(st["truncated"], false);

    let (status, st) = s.get(&format!("/v1/functions/{fid}/stats?minutes=60"));
    assert_eq!((status, st["step_seconds"].clone()), (200, json!(60.0)));
    for bad in ["0", "61", "x", "-1"] {
        let (status, body) = s.get(&format!("/v1/functions/{fid}/stats?minutes={bad}"));
        assert_eq!(status, 400, "{bad}: {body}");
        assert!(body.to_string().contains("minutes must be"), "{body}");
    }
    let (status, _) = s.get(&format!("/v1/functions/{fid}/stats?window=5"));
    assert_eq!(status, 400);
    let (status, _) = s.get("/v1/functions/no-such-function/stats");
    assert_eq!(status, 404);
}
