//! Function versions (reference §3.4): numbering, the unchanged-definition and 10-version
//! limits, full snapshots (executing version N is unaffected by later function updates),
//! per-version counts, download, the worker API of a version, delete rules and package
//! clean-up.

use serde_json::{Value, json};

use crate::harness::{HELLO, Server, result, zip_of};

pub const V2: &str = "def main(**kwargs):\n    return 'second'\n";

/// `PUT /v1/functions/{id}` with form fields and, optionally, a new package.
pub fn update_function(
    s: &Server,
    fid: &str,
    fields: &[(&str, &str)],
    zip: Option<Vec<u8>>,
) -> Value {
    let (status, body) = update_function_raw(s, fid, fields, zip.map(|z| (z, "package.zip")));
    assert_eq!(status, 200, "function update failed: {body}");
    body
}

/// `PUT /v1/functions/{fid}` as a form with `fields` and an optional package (its bytes
/// and file name); the status and body, whatever they are.
pub fn update_function_raw(
    s: &Server,
    fid: &str,
    fields: &[(&str, &str)],
    package: Option<(Vec<u8>, &str)>,
) -> (u16, Value) {
    let mut form = reqwest::blocking::multipart::Form::new();
    for (k, v) in fields {
        form = form.text(k.to_string(), v.to_string());
    }
    if let Some((bytes, name)) = package {
        form = form.part(
            "package",
            reqwest::blocking::multipart::Part::bytes(bytes).file_name(name.to_string()),
        );
    }
    let r = s
        .http
        .put(format!("{}/v1/functions/{fid}", s.url))
        .multipart(form)
        .send()
        .unwrap();
    crate::harness::parse(r)
}

pub fn create_version(s: &Server, fid: &str) -> (u16, Value) {
    s.post(
        &format!("/v1/functions/{fid}/versions"),
        json!({"description": null}),
    )
}

fn exec_version(s: &Server, fid: &str, n: i64) -> (u16, Value) {
    s.post(
        "/v1/executions",
        json!({"function_id": fid, "function_version": n}),
    )
}

#[test]
fn versions_are_full_snapshots() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let original_zip = s
        .get_raw(&format!("/v1/functions/{fid}?download=true"))
        .bytes()
        .unwrap();

    let (status, v1) = create_version(&s, fid);
    assert_eq!(status, 201, "{v1}");
    assert_eq!(v1["version_number"], 1);
    assert_eq!(v1["count"], 0);
    assert_eq!(v1["function_id"], fid);
    assert_eq!(v1["entry"], "hello.main");
    let (status, again) = create_version(&s, fid);
    assert_eq!(status, 403, "{again}");
    assert_eq!(
        again["faultstring"],
        "Function package not changed since the latest version 1."
    );

    // Change package, entry and timeout: version 1 must keep running the old definition.
    update_function(
        &s,
        fid,
        &[("entry", "second.main"), ("timeout", "9")],
        Some(zip_of(&[("second.py", V2)])),
    );
    let (status, e1) = exec_version(&s, fid, 1);
    assert_eq!(status, 201, "{e1}");
    assert_eq!(e1["status"], "success", "{e1}");
    assert_eq!(e1["function_version"], 1);
    assert_eq!(result(&e1)["output"], "Hello, World");
    let e0 = s.execute(fid, None);
    assert_eq!(result(&e0)["output"], "second");
    assert_eq!(e0["function_version"], 0);

    // Counts: on the version for version 1, on the function for version 0.
    let (_, v1) = s.get(&format!("/v1/functions/{fid}/versions/1"));
    assert_eq!(v1["count"], 1);
    assert_eq!(v1["timeout"], 5, "the snapshot keeps the old timeout");
    let (_, f) = s.get(&format!("/v1/functions/{fid}"));
    assert_eq!(f["count"], 1);
    assert_eq!(f["latest_version"], 1);

    // Unknown versions.
    let (status, e) = exec_version(&s, fid, 7);
    assert_eq!(status, 404, "{e}");
    assert_eq!(
        e["faultstring"],
        format!("FunctionVersion not found [function_id={fid}, version_number=7]")
    );
    let (status, e) = s.get(&format!("/v1/functions/{fid}/versions/7"));
    assert_eq!((status, e["faultstring"].is_string()), (404, true));
    assert!(e.get("faultcode").is_none(), "show is plain pecan: {e}");
    let (status, _) = s.get(&format!("/v1/functions/{fid}/versions/x"));
    assert_eq!(status, 400);

    // Download: version 1 is the original package.
    let r = s.get_raw(&format!("/v1/functions/{fid}/versions/1?download=true"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{fid}_1\"").as_str()
    );
    assert_eq!(r.bytes().unwrap(), original_zip);

    let (status, v2) = create_version(&s, fid);
    assert_eq!(status, 201, "{v2}");
    assert_eq!(v2["version_number"], 2);
    let (_, list) = s.get(&format!("/v1/functions/{fid}/versions"));
    let numbers: Vec<_> = list["function_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["version_number"].as_i64().unwrap())
        .collect();
    assert_eq!(numbers, vec![1, 2]);

    // Deleting the latest version lowers latest_version; the number is reused.
    let (status, _) = s.delete(&format!("/v1/functions/{fid}/versions/2"));
    assert_eq!(status, 204);
    let (_, f) = s.get(&format!("/v1/functions/{fid}"));
    assert_eq!(f["latest_version"], 1);
    let (status, v2) = create_version(&s, fid);
    assert_eq!((status, v2["version_number"].as_i64()), (201, Some(2)));

    // Deleting the function deletes its versions and every package they used.
    let (status, body) = s.delete(&format!("/v1/functions/{fid}"));
    assert_eq!(status, 204, "{body}");
    assert!(s.package_files().is_empty(), "{:?}", s.package_files());
}

#[test]
fn at_most_ten_versions() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    for n in 1..=10 {
        let (status, v) = create_version(&s, fid);
        assert_eq!(
            (status, v["version_number"].as_i64()),
            (201, Some(n)),
            "{v}"
        );
        // A changed definition (here: the timeout) allows the next version.
        update_function(&s, fid, &[("timeout", &(n + 10).to_string())], None);
    }
    let (status, v) = create_version(&s, fid);
    assert_eq!(status, 403, "{v}");
    assert_eq!(
        v["faultstring"],
        "Can not exceed maximum number(10) of versions"
    );
}

#[test]
fn version_workers_and_delete_rules() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    assert_eq!(create_version(&s, fid).0, 201);
    let workers = |v: i64| {
        let (status, w) = s.get(&format!(
            "/v1/functions/{fid}/workers/?function_version={v}"
        ));
        assert_eq!(status, 200, "{w}");
        w["workers"].as_array().unwrap().len()
    };
    assert_eq!(exec_version(&s, fid, 1).0, 201);
    assert_eq!(workers(1), 1);
    assert_eq!(workers(0), 0);
    let (status, _) = s.post(
        &format!("/v1/functions/{fid}/versions/1/detach"),
        json!(null),
    );
    assert_eq!(status, 202);
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(5);
    while workers(1) != 0 {
        assert!(
            std::time::Instant::now() < deadline,
            "version workers not released"
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, body) = s.post(
        &format!("/v1/functions/{fid}/versions/1/scale_up"),
        json!({"count": 2}),
    );
    assert_eq!(status, 202, "{body}");
    assert_eq!(workers(1), 2);
    let (status, _) = s.post(
        &format!("/v1/functions/{fid}/versions/1/scale_down"),
        json!({"count": 5}),
    );
    assert_eq!(status, 202);
    assert_eq!(workers(1), 1, "scale down never removes the last worker");
    let (status, body) = s.post(
        &format!("/v1/functions/{fid}/versions/9/scale_up"),
        json!({"count": 1}),
    );
    assert_eq!(status, 404, "{body}");

    // A version in use by an alias, a webhook or a job cannot be deleted; nor its function.
    let (status, a) = s.post(
        "/v1/aliases",
        json!({"name": "pinned", "function_id": fid, "function_version": 1}),
    );
    assert_eq!(status, 201, "{a}");
    let (status, e) = s.delete(&format!("/v1/functions/{fid}/versions/1"));
    assert_eq!(status, 403);
    assert_eq!(
        e["faultstring"],
        "The function version is still associated with alias."
    );
    let (status, e) = s.delete(&format!("/v1/functions/{fid}"));
    assert_eq!(status, 403, "{e}");
    assert_eq!(s.delete("/v1/aliases/pinned").0, 204);
    let (status, w) = s.post(
        "/v1/webhooks",
        json!({"function_id": fid, "function_version": 1}),
    );
    assert_eq!(status, 201, "{w}");
    let (status, e) = s.delete(&format!("/v1/functions/{fid}/versions/1"));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (
            403,
            Some("The function version is still associated with webhook.")
        )
    );
    assert_eq!(
        s.delete(&format!("/v1/webhooks/{}", w["id"].as_str().unwrap()))
            .0,
        204
    );
    let (status, _) = s.delete(&format!("/v1/functions/{fid}/versions/1"));
    assert_eq!(status, 204);
    assert_eq!(workers(1), 0, "deleting a version releases its workers");
}

/// A version snapshots the execution mode: version 1 keeps `fork` after the function
/// changes to `reuse` (and still runs), and the mode alone makes a new definition.
#[test]
fn a_version_snapshots_the_execution_mode() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let (status, v1) = create_version(&s, fid);
    assert_eq!((status, v1["execution_mode"].clone()), (201, json!("fork")));

    let f = update_function(&s, fid, &[("execution_mode", "reuse")], None);
    assert_eq!(f["execution_mode"], "reuse");
    let (_, v1) = s.get(&format!("/v1/functions/{fid}/versions/1"));
    assert_eq!(v1["execution_mode"], "fork", "{v1}");
    let (status, e1) = exec_version(&s, fid, 1);
    assert_eq!(
        (status, e1["status"].clone()),
        (201, json!("success")),
        "{e1}"
    );

    let (status, v2) = create_version(&s, fid);
    assert_eq!(
        status, 201,
        "only the mode changed, yet a new version: {v2}"
    );
    assert_eq!(v2["execution_mode"], "reuse");
    let (_, list) = s.get(&format!("/v1/functions/{fid}/versions"));
    let modes: Vec<_> = list["function_versions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v["execution_mode"].clone())
        .collect();
    assert_eq!(modes, vec![json!("fork"), json!("reuse")]);
}
