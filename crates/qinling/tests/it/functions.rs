//! `/v1/functions`: create, list, show, download, update, delete.

use serde_json::json;

use crate::harness::{HELLO, Opts, Server, zip_of};

#[test]
fn create_show_list_download_delete() {
    let s = Server::start();
    let zip = zip_of(&[("hello.py", HELLO)]);
    let md5 = md5_hex(&zip);
    let runtime = s.python_runtime();
    let form = reqwest::blocking::multipart::Form::new()
        .text("runtime_id", runtime.clone())
        .text(
            "code",
            format!(r#"{{"source": "package", "md5sum": "{md5}"}}"#),
        )
        .text("name", "hello")
        .text("entry", "hello.main")
        .text("timeout", "7")
        .part(
            "package",
            reqwest::blocking::multipart::Part::bytes(zip.clone()).file_name("hello.zip"),
        );
    let (status, f) = crate::harness::parse(
        s.http
            .post(format!("{}/v1/functions", s.url))
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 201, "{f}");
    let keys: Vec<&str> = f.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(
        keys,
        [
            "id",
            "name",
            "description",
            "cpu",
            "memory_size",
            "timeout",
            "network",
            "execution_mode",
            "runtime_id",
            "code",
            "entry",
            "count",
            "latest_version",
            "project_id",
            "created_at",
            "updated_at"
        ]
    );
    assert_eq!(f["code"], json!({"source": "package", "md5sum": md5}));
    assert_eq!(
        (
            f["cpu"].clone(),
            f["memory_size"].clone(),
            f["timeout"].clone()
        ),
        (json!(100), json!(33554432), json!(7))
    );
    assert_eq!(
        (
            f["count"].clone(),
            f["latest_version"].clone(),
            f["runtime_id"].clone()
        ),
        (json!(0), json!(0), json!(runtime))
    );
    let id = f["id"].as_str().unwrap().to_string();

    let (status, shown) = s.get(&format!("/v1/functions/{id}"));
    assert_eq!(
        (status, shown["code"].clone()),
        (200, json!({"source": "package", "md5sum": md5}))
    );
    let (_, list) = s.get("/v1/functions");
    let listed = &list["functions"][0];
    assert_eq!(
        listed["code"],
        json!(format!(r#"{{"source": "package", "md5sum": "{md5}"}}"#)),
        "code is a string in lists"
    );
    assert_eq!(
        s.get("/v1/functions?all_projects=true").1["functions"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    assert_eq!(s.get("/v1/functions?name=x").0, 400);

    let r = s.get_raw(&format!("/v1/functions/{id}?download=true"));
    assert_eq!(r.status().as_u16(), 200);
    assert_eq!(r.headers()["content-type"], "application/zip");
    assert_eq!(
        r.headers()["content-disposition"],
        format!("attachment; filename=\"{id}\"").as_str()
    );
    assert_eq!(r.bytes().unwrap().to_vec(), zip);
    assert_eq!(s.package_files().len(), 1);

    assert_eq!(s.delete(&format!("/v1/functions/{id}")).0, 204);
    assert_eq!(
        s.get(&format!("/v1/functions/{id}")),
        (
            404,
            json!({"faultstring": format!("Function not found [id={id}]")})
        )
    );
    assert_eq!(
        s.delete(&format!("/v1/functions/{id}")),
        (
            404,
            json!({"faultcode": "Client", "faultstring": format!("Function not found [id={id}]"), "debuginfo": null})
        )
    );
    assert!(
        s.package_files().is_empty(),
        "the package is removed with its last function"
    );
}

#[test]
fn update_replaces_code_and_limits() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let id = f["id"].as_str().unwrap();
    let e = s.execute(id, Some(r#"{"name": "v1"}"#));
    assert_eq!(crate::harness::result(&e)["output"], "Hello, v1");

    // Metadata-only update (form, as the CLI sends it).
    let r = s
        .http
        .put(format!("{}/v1/functions/{id}", s.url))
        .form(&[("name", "n2"), ("timeout", "9")])
        .send()
        .unwrap();
    let (status, body) = crate::harness::parse(r);
    assert_eq!(
        (status, body["name"].clone(), body["timeout"].clone()),
        (200, json!("n2"), json!(9))
    );

    // A new package (multipart, `source=package` as the CLI flattens it) runs at once.
    let v2 = "def main(**kwargs):\n    return 'version two'\n";
    let form = reqwest::blocking::multipart::Form::new()
        .text("source", "package")
        .text("entry", "hello.main")
        .part(
            "package",
            reqwest::blocking::multipart::Part::bytes(zip_of(&[("hello.py", v2)]))
                .file_name("p.zip"),
        );
    let (status, body) = crate::harness::parse(
        s.http
            .put(format!("{}/v1/functions/{id}", s.url))
            .multipart(form)
            .send()
            .unwrap(),
    );
    assert_eq!(status, 200, "{body}");
    assert_ne!(body["code"]["md5sum"], f["code"]["md5sum"]);
    let e = s.execute(id, None);
    assert_eq!(crate::harness::result(&e)["output"], "version two");
    assert_eq!(s.package_files().len(), 1, "the old package is gone");

    // JSON updates work too; out-of-range values are refused with upstream's words.
    assert_eq!(
        s.put(
            &format!("/v1/functions/{id}"),
            json!({"memory_size": 67108864})
        )
        .1["memory_size"],
        json!(67108864)
    );
    assert_eq!(
        s.put(&format!("/v1/functions/{id}"), json!({"cpu": 50})),
        (
            400,
            json!({"faultstring": "cpu resource limitation not within the allowable range: 100 ~ 300(millicpu)."})
        )
    );
    let (status, body) = s.put(
        &format!("/v1/functions/{id}"),
        json!({"code": {"source": "package", "md5sum": body["code"]["md5sum"]}}),
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"faultstring": "The function code checksum is not changed."})
        )
    );
    let (_, shown) = s.get(&format!("/v1/functions/{id}"));
    assert_eq!(shown["count"], json!(2));
}

/// `network` (our extension): off by default, a boolean, shown on the function and its
/// versions, and refused where the operator turned it off.
#[test]
fn network_access_is_explicit() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let id = f["id"].as_str().unwrap();
    assert_eq!(f["network"], json!(false));
    let (status, body) = s.put(&format!("/v1/functions/{id}"), json!({"network": "maybe"}));
    assert_eq!(
        (status, body),
        (
            400,
            json!({"faultstring": "Invalid value for network: 'maybe'. Expected true or false."})
        )
    );
    let (status, body) = s.post(&format!("/v1/functions/{id}/versions"), json!({}));
    assert_eq!(
        (status, body["network"].clone()),
        (201, json!(false)),
        "{body}"
    );
    let zip = zip_of(&[("hello.py", HELLO)]);

    let closed = Server::start_with(Opts {
        extra: vec!["--allow-network".into(), "false".into()],
        ..Opts::default()
    });
    let runtime_closed = closed.python_runtime();
    let (status, body) = closed.create_function_raw(
        &runtime_closed,
        zip.clone(),
        "hello.main",
        &[("network", "true")],
    );
    assert_eq!(
        (status, body),
        (
            400,
            json!({"faultstring": "This function cannot have network access: outbound network access for functions is disabled on this server (allow_network = false)."})
        )
    );
    let (status, body) =
        closed.create_function_raw(&runtime_closed, zip, "hello.main", &[("network", "false")]);
    assert_eq!(
        (status, body["network"].clone()),
        (201, json!(false)),
        "{body}"
    );
}

/// `execution_mode` (our extension, issue 17): each runtime kind's default when absent
/// (python3 fork, nodejs reuse, custom and wasm fork), `reuse` where the runtime supports
/// it, sent as a multipart, JSON or urlencoded field; a bad value and `reuse` on custom or
/// wasm are 400s that say why.
#[test]
fn execution_mode_defaults_per_runtime_and_is_checked() {
    let s = Server::start();
    let zip = zip_of(&[("hello.py", HELLO)]);
    let python = s.python_runtime();
    let mode_of = |body: &serde_json::Value| body["execution_mode"].clone();

    // Defaults: the body always shows the concrete mode.
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    assert_eq!(mode_of(&f), json!("fork"), "{f}");
    let node = crate::runtimes_node::runtime_named(&s, "nodejs");
    let js = zip_of(&[("hello.js", "exports.main = () => 'hi';\n")]);
    let (status, f) = s.create_function_raw(&node, js, "hello.main", &[]);
    assert_eq!((status, mode_of(&f)), (201, json!("reuse")), "{f}");
    let custom = crate::runtimes_node::runtime_named(&s, "custom");
    let handler = zip_of(&[("handler", "#!/bin/sh\necho 1\n")]);
    let (status, f) = s.create_function_raw(&custom, handler.clone(), "handler", &[]);
    assert_eq!((status, mode_of(&f)), (201, json!("fork")), "{f}");

    // Asked for in a multipart create: kept, shown, listed.
    let (status, f) = s.create_function_raw(
        &python,
        zip.clone(),
        "hello.main",
        &[("execution_mode", "reuse")],
    );
    assert_eq!((status, mode_of(&f)), (201, json!("reuse")), "{f}");
    let id = f["id"].as_str().unwrap().to_string();
    assert_eq!(
        mode_of(&s.get(&format!("/v1/functions/{id}")).1),
        json!("reuse")
    );
    let (_, list) = s.get("/v1/functions");
    let listed = list["functions"]
        .as_array()
        .unwrap()
        .iter()
        .find(|f| f["id"] == id.as_str())
        .unwrap();
    assert_eq!(mode_of(listed), json!("reuse"));

    // JSON and urlencoded updates.
    let (status, f) = s.put(
        &format!("/v1/functions/{id}"),
        json!({"execution_mode": "fork"}),
    );
    assert_eq!((status, mode_of(&f)), (200, json!("fork")), "{f}");
    let r = s
        .http
        .put(format!("{}/v1/functions/{id}", s.url))
        .form(&[("execution_mode", "reuse")])
        .send()
        .unwrap();
    let (status, f) = crate::harness::parse(r);
    assert_eq!((status, mode_of(&f)), (200, json!("reuse")), "{f}");
    // An update without the field keeps it.
    let (status, f) = s.put(&format!("/v1/functions/{id}"), json!({"timeout": "9"}));
    assert_eq!((status, mode_of(&f)), (200, json!("reuse")), "{f}");

    // A bad value, in a multipart create, a JSON create and a JSON update.
    let bad = json!({"faultstring": "execution_mode must be 'fork' or 'reuse', not 'xyz'"});
    let (status, body) = s.create_function_raw(
        &python,
        zip.clone(),
        "hello.main",
        &[("execution_mode", "xyz")],
    );
    assert_eq!((status, body), (400, bad.clone()));
    let (status, body) = s.post(
        "/v1/functions",
        json!({"runtime_id": python, "code": "{\"source\": \"package\"}", "execution_mode": "xyz"}),
    );
    assert_eq!((status, body), (400, bad.clone()));
    let (status, body) = s.put(
        &format!("/v1/functions/{id}"),
        json!({"execution_mode": "xyz"}),
    );
    assert_eq!((status, body), (400, bad));
    assert_eq!(
        mode_of(&s.get(&format!("/v1/functions/{id}")).1),
        json!("reuse")
    );

    // `reuse` where the runtime cannot: on create and on update, with why and what to do.
    let (status, body) =
        s.create_function_raw(&custom, handler, "handler", &[("execution_mode", "reuse")]);
    assert_eq!(
        (status, body),
        (
            400,
            json!({"faultstring": "execution_mode 'reuse' is not supported by the custom runtime: each execution runs the package's executable as a new process; use 'fork' or leave execution_mode out."})
        )
    );
    let (status, custom_fn) = s.create_function_raw(
        &custom,
        zip_of(&[("handler", "#!/bin/sh\necho 1\n")]),
        "handler",
        &[("execution_mode", "fork")],
    );
    assert_eq!(status, 201, "{custom_fn}");
    let (status, body) = s.put(
        &format!("/v1/functions/{}", custom_fn["id"].as_str().unwrap()),
        json!({"execution_mode": "reuse"}),
    );
    assert_eq!(status, 400, "{body}");
    assert!(
        body["faultstring"]
            .as_str()
            .unwrap()
            .contains("not supported by the custom runtime"),
        "{body}"
    );
    let wasm = crate::runtimes_node::runtime_named(&s, "wasm");
    let (status, body) =
        s.create_function_raw(&wasm, zip.clone(), "", &[("execution_mode", "reuse")]);
    assert_eq!(
        (status, body),
        (
            400,
            json!({"faultstring": "execution_mode 'reuse' is not supported by the wasm runtime: each execution gets a fresh WebAssembly instance; use 'fork' or leave execution_mode out."})
        )
    );
}

fn md5_hex(bytes: &[u8]) -> String {
    use md5::Digest;
    hex::encode(md5::Md5::digest(bytes))
}
