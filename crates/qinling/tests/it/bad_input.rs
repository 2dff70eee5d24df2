//! Bad input: each case gets a clear 4xx and leaves the store and the package directory as
//! they were.

use serde_json::{Value, json};

use crate::harness::{HELLO, Opts, Server, zip_of};

/// The visible state: functions, executions and package files.
fn snapshot(s: &Server) -> (Value, Value, Vec<std::path::PathBuf>) {
    (
        s.get("/v1/functions").1,
        s.get("/v1/executions").1,
        s.package_files(),
    )
}

fn symlink_zip() -> Vec<u8> {
    let mut buf = std::io::Cursor::new(Vec::new());
    let mut w = zip::ZipWriter::new(&mut buf);
    w.add_symlink(
        "hello.py",
        "/etc/shadow",
        zip::write::SimpleFileOptions::default(),
    )
    .unwrap();
    w.finish().unwrap();
    buf.into_inner()
}

#[test]
fn function_create_rejections() {
    let s = Server::start_with(Opts {
        extra: vec!["--max-package-bytes".into(), "4096".into()],
        ..Opts::default()
    });
    let rt = s.python_runtime();
    s.create_function("hello.py", HELLO, "hello.main", &[]);
    let before = snapshot(&s);
    let big = {
        // Incompressible content so the zip itself is larger than 4096 bytes.
        let mut x: u64 = 1;
        let noise: String = (0..12000)
            .map(|_| {
                x = x.wrapping_mul(6364136223846793005).wrapping_add(1);
                (b'a' + (x >> 59) as u8 % 26) as char
            })
            .collect();
        zip_of(&[(
            "big.py",
            &format!("X = '{noise}'\ndef main(**kw): return 1\n"),
        )])
    };
    let form = |code: &str, pkg: Option<Vec<u8>>, extra: &[(&str, &str)]| {
        let mut f = reqwest::blocking::multipart::Form::new()
            .text("runtime_id", rt.clone())
            .text("code", code.to_string());
        if let Some(p) = pkg {
            f = f.part(
                "package",
                reqwest::blocking::multipart::Part::bytes(p).file_name("p.zip"),
            );
        }
        for (k, v) in extra {
            f = f.text(k.to_string(), v.to_string());
        }
        f
    };
    let pkg = r#"{"source": "package"}"#;
    let good = || Some(zip_of(&[("hello.py", HELLO)]));
    let cases: Vec<(&str, reqwest::blocking::multipart::Form, u16, String)> = vec![
        ("no code", reqwest::blocking::multipart::Form::new().text("runtime_id", rt.clone()), 400, "Required param is missing. Required: {'code'}".into()),
        ("code not json", form("{nope", good(), &[]), 400, "Invalid code '{nope': it must be a JSON object such as {\"source\": \"package\"}.".into()),
        ("bad source", form(r#"{"source": "ftp"}"#, good(), &[]), 400, "Invalid code source specified, available sources: package, swift, image".into()),
        ("swift", form(r#"{"source": "swift", "swift": {}}"#, good(), &[]), 400, "Swift object not supported.".into()),
        ("no package", form(pkg, None, &[]), 400, "Package is required for a function of source 'package': send it in the 'package' form field.".into()),
        ("corrupt package", form(pkg, Some(b"not a zip at all".to_vec()), &[]), 400, "Package is not a valid ZIP package.".into()),
        ("zip slip", form(pkg, Some(zip_of(&[("../../etc/cron.d/x", "boom")])), &[]), 400, "Package entry '../../etc/cron.d/x' points outside the package root; use relative paths without '..'.".into()),
        ("symlink", form(pkg, Some(symlink_zip()), &[]), 400, "Package entry 'hello.py' is a symbolic link; symlinks are not allowed in packages.".into()),
        ("md5 mismatch", form(r#"{"source": "package", "md5sum": "00000000000000000000000000000000"}"#, good(), &[]), 400, "Package md5 mismatch.".into()),
        ("timeout range", form(pkg, good(), &[("timeout", "301")]), 400, "timeout resource limitation not within the allowable range: 1 ~ 300(seconds).".into()),
        ("cpu not int", form(pkg, good(), &[("cpu", "lots")]), 400, "Invalid cpu resource specified. An integer is required.".into()),
        ("memory range", form(pkg, good(), &[("memory_size", "1024")]), 400, "memory resource limitation not within the allowable range: 33554432 ~ 134217728(bytes).".into()),
        ("unknown runtime", reqwest::blocking::multipart::Form::new().text("runtime_id", "00000000-0000-0000-0000-000000000000").text("code", pkg).part("package", reqwest::blocking::multipart::Part::bytes(zip_of(&[("a.py", "")])).file_name("p.zip")), 404, "Runtime not found [id=00000000-0000-0000-0000-000000000000]".into()),
        ("too large", form(pkg, Some(big), &[]), 413, "Package is LEN bytes, larger than the maximum of 4096 bytes.".into()),
    ];
    for (what, form, status, msg) in cases {
        let (got_status, body) = crate::harness::parse(
            s.http
                .post(format!("{}/v1/functions", s.url))
                .multipart(form)
                .send()
                .unwrap(),
        );
        let got = body["faultstring"].as_str().unwrap_or_default().to_string();
        let msg = if msg.contains("LEN") {
            let len: String = got
                .chars()
                .skip("Package is ".len())
                .take_while(char::is_ascii_digit)
                .collect();
            msg.replace("LEN", &len)
        } else {
            msg
        };
        assert_eq!(
            (got_status, got.as_str()),
            (status, msg.as_str()),
            "{what}: {body}"
        );
        assert_eq!(
            body.as_object().map(|o| o.len()),
            Some(1),
            "{what}: pecan error bodies carry only faultstring"
        );
    }
    // Far over the request limit: refused while reading, with a 413 that names the limit.
    let huge = vec![0u8; 3 * 1024 * 1024];
    let (status, body) = crate::harness::parse(
        s.http
            .post(format!("{}/v1/functions", s.url))
            .multipart(form(pkg, Some(huge), &[]))
            .send()
            .unwrap(),
    );
    assert_eq!(status, 413, "{body}");
    let r = s
        .http
        .post(format!("{}/v1/functions", s.url))
        .header("content-type", "text/plain")
        .body("hi")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 415);
    assert_eq!(snapshot(&s), before, "nothing changed");
}

#[test]
fn execution_rejections() {
    let s = Server::start_with(Opts {
        extra: vec!["--max-input-bytes".into(), "100".into()],
        ..Opts::default()
    });
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    let before = snapshot(&s);
    let fault = |msg: &str| json!({"faultcode": "Client", "faultstring": msg, "debuginfo": null});
    let missing = "00000000-0000-0000-0000-000000000000";
    let cases = [
        (
            json!({}),
            400,
            fault("Either function_alias or function_id must be provided."),
        ),
        (
            json!({"function_id": missing}),
            404,
            fault(&format!("Function not found [id={missing}]")),
        ),
        (
            json!({"function_id": fid, "input": {"a": 1}}),
            400,
            fault(
                "Invalid input for field/attribute input. Value: '{\"a\":1}'. Wrong type. Expected 'str', got 'dict'",
            ),
        ),
        (
            json!({"function_id": fid, "sync": "yes"}),
            400,
            fault(
                "Invalid input for field/attribute sync. Value: 'yes'. Wrong type. Expected 'bool', got 'str'",
            ),
        ),
        (
            json!({"function_id": fid, "bogus": 1}),
            400,
            fault("Unknown attribute for argument execution: bogus"),
        ),
        (
            json!({"function_id": fid, "status": "success"}),
            400,
            fault(
                "Invalid input for field/attribute status. Value: 'success'. Cannot set read only field.",
            ),
        ),
        (
            json!({"function_id": fid, "function_version": 3}),
            404,
            fault(&format!(
                "FunctionVersion not found [function_id={fid}, version_number=3]"
            )),
        ),
        (
            json!({"function_id": fid, "input": "x".repeat(101)}),
            413,
            json!({"faultcode": "Client", "faultstring": "Execution input is 101 bytes, larger than the maximum of 100 bytes.", "debuginfo": null}),
        ),
    ];
    for (body, status, expect) in cases {
        assert_eq!(
            s.post("/v1/executions", body.clone()),
            (status, expect),
            "{body}"
        );
    }
    let r = s
        .http
        .post(format!("{}/v1/executions", s.url))
        .header("content-type", "application/json")
        .body("{\"function_id\": ")
        .send()
        .unwrap();
    let (status, body) = crate::harness::parse(r);
    assert_eq!(status, 400);
    assert!(
        body["faultstring"]
            .as_str()
            .unwrap()
            .starts_with("Request body is not valid JSON"),
        "{body}"
    );
    let r = s
        .http
        .post(format!("{}/v1/executions", s.url))
        .form(&[("function_id", fid)])
        .send()
        .unwrap();
    assert_eq!(
        crate::harness::parse(r),
        (400, fault("Unknown argument: \"function_id\""))
    );
    assert_eq!(snapshot(&s), before, "nothing was recorded");
    for path in ["/v1/executions/nope", "/v1/runtimes/nope"] {
        assert_eq!(s.get(path).0, 404, "{path}");
    }
}
