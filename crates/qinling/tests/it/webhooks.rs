//! Webhooks (reference §3.8): `webhook_url` from the configured public URL, unauthenticated
//! invocation with form, query and JSON parameters turned into keyword arguments, the
//! execution it creates, a webhook without a version (upstream's 500), targets by version and
//! alias, updates, and the per-webhook rate limit.

use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{HELLO, Opts, Server, parse};
use crate::versions::create_version;

fn invoke_form(s: &Server, id: &str, query: &str, form: &[(&str, &str)]) -> (u16, Value) {
    let r = s
        .http
        .post(format!("{}/v1/webhooks/{id}/invoke{query}", s.url))
        .form(form)
        .send()
        .unwrap();
    parse(r)
}

#[test]
fn webhooks_invoke_functions() {
    let s = Server::start_with(Opts {
        extra: vec![
            "--public-url".into(),
            "https://faas.example.com:8443/".into(),
            "--webhook-invocations-per-minute".into(),
            "4".into(),
        ],
        ..Opts::default()
    });
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();

    // No function_version: stored null, runs version 0 (upstream answered 500 on invoke).
    let (status, w) = s.post(
        "/v1/webhooks",
        json!({"function_id": fid, "description": "hook"}),
    );
    assert_eq!(status, 201, "{w}");
    let wid = w["id"].as_str().unwrap();
    assert!(w["function_version"].is_null());
    assert_eq!(
        w["webhook_url"],
        format!("https://faas.example.com:8443/v1/webhooks/{wid}/invoke")
    );

    let (status, body) = invoke_form(&s, wid, "", &[("name", "qinling")]);
    assert_eq!(status, 202, "{body}");
    let eid = body["execution_id"].as_str().unwrap();
    assert_eq!(body.as_object().unwrap().len(), 1, "{body}");
    let e = s.wait_execution(eid, Duration::from_secs(30));
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(e["description"], format!("Created by Webhook {wid}"));
    assert_eq!(e["input"], "{\"name\": \"qinling\"}");
    assert_eq!(
        (e["sync"].as_bool(), e["function_version"].as_i64()),
        (Some(false), Some(0))
    );
    assert!(s.log(eid).contains("Hello, qinling"));
    let (_, list) = s.get(&format!("/v1/executions?description=has:{wid}"));
    let ids: Vec<_> = list["executions"]
        .as_array()
        .unwrap()
        .iter()
        .map(|e| e["id"].as_str().unwrap())
        .collect();
    assert_eq!(ids, vec![eid]);

    // Query plus repeated form keys, and a JSON object.
    let (status, body) = invoke_form(&s, wid, "?q=1", &[("a", "1"), ("a", "2")]);
    assert_eq!(status, 202, "{body}");
    let e = s.wait_execution(
        body["execution_id"].as_str().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(e["input"], "{\"q\": \"1\", \"a\": [\"1\", \"2\"]}");
    let (status, body) = s.post(
        &format!("/v1/webhooks/{wid}/invoke"),
        json!({"name": "jsonbody"}),
    );
    assert_eq!(status, 202, "{body}");
    let e = s.wait_execution(
        body["execution_id"].as_str().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(e["input"], "{\"name\": \"jsonbody\"}");
    assert!(s.log(e["id"].as_str().unwrap()).contains("Hello, jsonbody"));

    // Rate limit: 4 per minute per webhook; the 5th is refused and makes no execution.
    let (status, _) = invoke_form(&s, wid, "", &[]);
    assert_eq!(status, 202);
    let (status, e) = invoke_form(&s, wid, "", &[]);
    assert_eq!(status, 429, "{e}");
    assert_eq!(
        e["faultstring"],
        format!("Webhook {wid} was invoked more than 4 times in the last minute; retry later.")
    );
    let (_, list) = s.get(&format!("/v1/executions?description=has:{wid}"));
    assert_eq!(list["executions"].as_array().unwrap().len(), 4);

    // Errors.
    let missing = "00000000-0000-0000-0000-000000000000";
    let (status, e) = invoke_form(&s, missing, "", &[]);
    assert_eq!(status, 404);
    assert_eq!(
        e,
        json!({"faultstring": format!("Webhook not found [id={missing}]")})
    );
    let (status, e) = s.post("/v1/webhooks", json!({"description": "x"}));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (
            400,
            Some("Either function_alias or function_id must be provided.")
        )
    );
    let (status, _) = s.post(
        "/v1/webhooks",
        json!({"function_id": fid, "function_version": 3}),
    );
    assert_eq!(status, 404);

    // A webhook on a version, then re-pointed at an alias (which clears function and version).
    assert_eq!(create_version(&s, fid).0, 201);
    let (status, w2) = s.post(
        "/v1/webhooks",
        json!({"function_id": fid, "function_version": 1}),
    );
    assert_eq!(status, 201, "{w2}");
    let w2id = w2["id"].as_str().unwrap();
    let (_, body) = invoke_form(&s, w2id, "", &[("name", "version_test")]);
    let e = s.wait_execution(
        body["execution_id"].as_str().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(
        (e["status"].as_str(), e["function_version"].as_i64()),
        (Some("success"), Some(1))
    );
    assert_eq!(
        s.post(
            "/v1/aliases",
            json!({"name": "live", "function_id": fid, "function_version": 1})
        )
        .0,
        201
    );
    let (status, w2) = s.put(
        &format!("/v1/webhooks/{w2id}"),
        json!({"function_alias": "live"}),
    );
    assert_eq!(status, 200, "{w2}");
    assert_eq!(
        (w2["function_alias"].as_str(), w2["function_id"].is_null()),
        (Some("live"), true)
    );
    let (_, body) = invoke_form(&s, w2id, "", &[("name", "alias_test")]);
    let e = s.wait_execution(
        body["execution_id"].as_str().unwrap(),
        Duration::from_secs(30),
    );
    assert_eq!(
        (e["function_alias"].as_str(), e["function_version"].as_i64()),
        (Some("live"), Some(1))
    );
    assert!(
        s.log(e["id"].as_str().unwrap())
            .contains("Hello, alias_test")
    );

    let (_, list) = s.get("/v1/webhooks");
    assert_eq!(list["webhooks"].as_array().unwrap().len(), 2);
    let (status, e) = s.delete(&format!("/v1/functions/{fid}"));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (
            403,
            Some("The function is still associated with webhook(s).")
        )
    );
    assert_eq!(s.delete(&format!("/v1/webhooks/{wid}")).0, 204);
    assert_eq!(s.get(&format!("/v1/webhooks/{wid}")).0, 404);
}
