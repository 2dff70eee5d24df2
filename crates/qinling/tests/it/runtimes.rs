//! Discovery and `/v1/runtimes`.

use serde_json::{Value, json};

use crate::harness::Server;

#[test]
fn discovery_documents() {
    let s = Server::start();
    let (status, body) = s.get("/");
    assert_eq!(status, 200);
    let host = s.url.trim_start_matches("http://");
    assert_eq!(
        body,
        json!({"versions": [{"id": "v1.0", "status": "CURRENT", "links": [{"href": format!("http://{host}/v1"), "target": "v1", "rel": "self"}]}]})
    );
    assert_eq!(
        s.get("/v1/"),
        (200, json!({"uri": format!("http://{host}/v1")}))
    );
    let client = reqwest::blocking::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let r = client.get(format!("{}/v1", s.url)).send().unwrap();
    assert_eq!(r.status().as_u16(), 302);
    assert_eq!(r.headers()["location"], "/v1/");
    let r = s.get_raw("/v1/nothing-here");
    assert_eq!(r.status().as_u16(), 404);
    assert!(r.headers().contains_key("x-openstack-request-id"));
}

#[test]
fn runtime_lifecycle() {
    let s = Server::start();
    let (status, r) = s.post("/v1/runtimes", json!({"image": "openstackqinling/python3-runtime:0.0.2", "name": "py", "description": "d"}));
    assert_eq!(status, 201, "{r}");
    assert_eq!(r["status"], "creating");
    let keys: Vec<&str> = r.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "image",
            "description",
            "is_public",
            "trusted",
            "status",
            "project_id",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(
        (
            r["is_public"].clone(),
            r["trusted"].clone(),
            r["project_id"].clone(),
            r["updated_at"].clone()
        ),
        (json!(true), json!(true), json!("default"), json!(null))
    );
    let created = r["created_at"].as_str().unwrap();
    assert!(
        created.len() == 20 && created.ends_with('Z') && created.as_bytes()[10] == b'T',
        "{created}"
    );
    let id = r["id"].as_str().unwrap().to_string();

    // It becomes available once a worker has started.
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(30);
    loop {
        let (_, r) = s.get(&format!("/v1/runtimes/{id}"));
        if r["status"] == "available" {
            break;
        }
        assert!(
            std::time::Instant::now() < deadline,
            "runtime stuck in {}:\n{}",
            r["status"],
            s.logs()
        );
        std::thread::sleep(std::time::Duration::from_millis(50));
    }
    let (status, list) = s.get("/v1/runtimes");
    assert_eq!(status, 200);
    let names: Vec<&str> = list["runtimes"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["name"].as_str().unwrap())
        .collect();
    assert_eq!(
        names,
        ["python3", "nodejs", "custom", "wasm", "py"],
        "built-ins first, then ours, in creation order"
    );

    let (status, r) = s.put(
        &format!("/v1/runtimes/{id}"),
        json!({"name": "renamed", "description": null}),
    );
    assert_eq!(
        (status, r["name"].clone(), r["description"].clone()),
        (200, json!("renamed"), Value::Null),
        "JSON null clears a field, as WSME does"
    );
    let (status, r) = s.put(
        &format!("/v1/runtimes/{id}"),
        json!({"description": "back"}),
    );
    assert_eq!(
        (status, r["name"].clone(), r["description"].clone()),
        (200, json!("renamed"), json!("back")),
        "an absent field stays as it was"
    );
    assert!(r["updated_at"].is_string());

    let (status, pool) = s.get(&format!("/v1/runtimes/{id}/pool"));
    assert_eq!(status, 200);
    assert_eq!(pool["name"], json!(id));
    assert_eq!(pool["capacity"]["total"], json!(1));

    assert_eq!(s.delete(&format!("/v1/runtimes/{id}")).0, 204);
    assert_eq!(
        s.get(&format!("/v1/runtimes/{id}")),
        (
            404,
            json!({"faultcode": "Client", "faultstring": format!("Runtime not found [id={id}]"), "debuginfo": null})
        )
    );
}

#[test]
fn runtime_bad_requests() {
    let s = Server::start();
    let fault = |msg: &str| json!({"faultcode": "Client", "faultstring": msg, "debuginfo": null});
    let cases = [
        (json!({}), "Required param is missing. Required: {'image'}"),
        (
            json!({"image": "python3", "bogus": 1}),
            "Unknown attribute for argument runtime: bogus",
        ),
        (
            json!({"image": "python3", "status": "available"}),
            "Invalid input for field/attribute status. Value: 'available'. Cannot set read only field.",
        ),
        (
            json!({"image": "python3", "is_public": "no"}),
            "Invalid input for field/attribute is_public. Value: 'no'. Wrong type. Expected 'bool', got 'str'",
        ),
        (
            json!({"image": "busybox"}),
            "Unknown runtime image 'busybox'. Built-in runtimes: python3 (any image name starting with 'python', e.g. 'python3' or 'openstackqinling/python3-runtime'), nodejs (any image name starting with 'node', e.g. 'nodejs'), custom (the package's own executable; image 'custom'), wasm (a WASI preview-1 command module; image 'wasm').",
        ),
    ];
    for (body, msg) in cases {
        assert_eq!(
            s.post("/v1/runtimes", body.clone()),
            (400, fault(msg)),
            "{body}"
        );
    }
    let r = s
        .http
        .post(format!("{}/v1/runtimes", s.url))
        .header("content-type", "application/x-www-form-urlencoded")
        .body("image=python3")
        .send()
        .unwrap();
    assert_eq!(
        crate::harness::parse(r),
        (400, fault("Unknown argument: \"image\""))
    );
    assert_eq!(
        s.get("/v1/runtimes?limit=1"),
        (400, fault("Unknown argument: \"limit\""))
    );
    // A runtime in use cannot be deleted.
    let f = s.create_function("hello.py", crate::harness::HELLO, "hello.main", &[]);
    let rt = f["runtime_id"].as_str().unwrap();
    assert_eq!(
        s.delete(&format!("/v1/runtimes/{rt}")),
        (403, fault(&format!("Runtime {rt} is still in use.")))
    );
    let (_, list) = s.get("/v1/runtimes");
    assert_eq!(
        list["runtimes"].as_array().unwrap().len(),
        4,
        "nothing was created by the bad requests"
    );
}
