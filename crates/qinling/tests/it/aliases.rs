//! Function aliases (reference §3.5): validation (404/400 instead of upstream's 500),
//! executions through an alias, updates with the client's string version, the weighted
//! second version (each execution records the version it ran), and delete rules.

use std::collections::HashSet;

use serde_json::json;

use crate::harness::{HELLO, Server, result, zip_of};
use crate::versions::{V2, create_version, update_function};

#[test]
fn aliases_resolve_validate_and_split() {
    let s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap();
    assert_eq!(create_version(&s, fid).0, 201);
    update_function(
        &s,
        fid,
        &[("entry", "second.main")],
        Some(zip_of(&[("second.py", V2)])),
    );
    assert_eq!(create_version(&s, fid).0, 201);

    // Validation.
    let cases = [
        (json!({"function_id": fid}), 400, "Required param is missing. Required: {'name', 'function_id'}".to_string()),
        (json!({"name": "x", "function_id": "nope"}), 404, "Function not found [id=nope]".to_string()),
        (json!({"name": "x", "function_id": fid, "function_version": 5}), 404, format!("FunctionVersion not found [function_id={fid}, version_number=5]")),
        (json!({"name": "x", "function_id": fid, "function_version": 1, "additional_version": 2}), 400, "additional_version and additional_version_weight go together: send both or neither.".to_string()),
        (json!({"name": "x", "function_id": fid, "function_version": 1, "additional_version": 2, "additional_version_weight": 100}), 400, "additional_version_weight 100 is out of range: give the percent of executions (1 to 99) that go to additional_version.".to_string()),
        (json!({"name": "x", "function_id": fid, "function_version": 1, "additional_version": 1, "additional_version_weight": 10}), 400, "additional_version must differ from function_version.".to_string()),
    ];
    for (body, status, message) in cases {
        let (got, e) = s.post("/v1/aliases", body.clone());
        assert_eq!(
            (got, e["faultstring"].as_str().unwrap_or("")),
            (status, message.as_str()),
            "{body}"
        );
    }

    let (status, a) = s.post(
        "/v1/aliases",
        json!({"name": "prod", "function_id": fid, "function_version": 1, "description": "prod"}),
    );
    assert_eq!(status, 201, "{a}");
    assert_eq!(a["function_version"], 1);
    assert!(a["updated_at"].is_null());
    for dup in [
        json!({"name": "prod", "function_id": fid, "function_version": 2}),
        json!({"name": "other", "function_id": fid, "function_version": 1}),
    ] {
        let (status, e) = s.post("/v1/aliases", dup);
        assert_eq!(status, 400, "{e}");
        assert!(
            e["faultstring"]
                .as_str()
                .unwrap()
                .starts_with("Duplicate entry for function_aliases"),
            "{e}"
        );
    }

    let (status, e) = s.post("/v1/executions", json!({"function_alias": "prod"}));
    assert_eq!(status, 201, "{e}");
    assert_eq!(
        (e["function_alias"].as_str(), e["function_version"].as_i64()),
        (Some("prod"), Some(1))
    );
    assert_eq!(e["function_id"], fid);
    assert_eq!(result(&e)["output"], "Hello, World");
    let (status, e) = s.post("/v1/executions", json!({"function_alias": "nope"}));
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (404, Some("FunctionAlias not found [name=nope]"))
    );

    // The client sends the version of an update as a JSON string.
    let (status, a) = s.put(
        "/v1/aliases/prod",
        json!({"function_id": null, "function_version": "2", "description": null}),
    );
    assert_eq!(status, 200, "{a}");
    assert_eq!(
        (a["function_version"].as_i64(), a["description"].as_str()),
        (Some(2), Some("prod"))
    );
    assert!(a["updated_at"].is_string());
    let (_, e) = s.post("/v1/executions", json!({"function_alias": "prod"}));
    assert_eq!(result(&e)["output"], "second");

    // Weighted: half of the executions go to version 2; each records the one it ran.
    let (status, a) = s.post(
        "/v1/aliases",
        json!({"name": "canary", "function_id": fid, "function_version": 1,
               "additional_version": 2, "additional_version_weight": 50}),
    );
    assert_eq!(status, 201, "{a}");
    assert_eq!(
        (
            a["additional_version"].as_i64(),
            a["additional_version_weight"].as_i64()
        ),
        (Some(2), Some(50))
    );
    let mut seen = HashSet::new();
    for _ in 0..24 {
        let (status, e) = s.post("/v1/executions", json!({"function_alias": "canary"}));
        assert_eq!(status, 201, "{e}");
        let version = e["function_version"].as_i64().unwrap();
        let expect = if version == 1 {
            "Hello, World"
        } else {
            "second"
        };
        assert_eq!(
            result(&e)["output"],
            expect,
            "version {version} ran its own code"
        );
        seen.insert(version);
    }
    assert_eq!(
        seen,
        HashSet::from([1, 2]),
        "a 50% split used both versions"
    );
    // Removing the split sends everything to the main version.
    let (status, a) = s.put(
        "/v1/aliases/canary",
        json!({"additional_version": null, "additional_version_weight": null}),
    );
    assert_eq!(status, 200, "{a}");
    assert!(a["additional_version"].is_null());
    for _ in 0..5 {
        let (_, e) = s.post("/v1/executions", json!({"function_alias": "canary"}));
        assert_eq!(e["function_version"], 1);
    }

    let (_, list) = s.get("/v1/aliases");
    let names: Vec<_> = list["function_aliases"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| a["name"].as_str().unwrap().to_string())
        .collect();
    assert_eq!(names, vec!["prod", "canary"]);
    assert_eq!(s.get("/v1/aliases/canary").0, 200);
    let (status, e) = s.get("/v1/aliases/gone");
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (404, Some("FunctionAlias not found [name=gone]"))
    );

    // An alias used by a webhook cannot be deleted.
    let (status, w) = s.post("/v1/webhooks", json!({"function_alias": "prod"}));
    assert_eq!(status, 201, "{w}");
    assert!(
        w["function_id"].is_null() && w["function_version"].is_null(),
        "{w}"
    );
    let (status, e) = s.delete("/v1/aliases/prod");
    assert_eq!(
        (status, e["faultstring"].as_str()),
        (403, Some("The alias is still associated with webhook(s)."))
    );
    assert_eq!(
        s.delete(&format!("/v1/webhooks/{}", w["id"].as_str().unwrap()))
            .0,
        204
    );
    assert_eq!(s.delete("/v1/aliases/prod").0, 204);
    assert_eq!(s.get("/v1/aliases/prod").0, 404);
}
