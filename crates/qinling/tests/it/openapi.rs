//! The OpenAPI document against the live server: it is served, and every documented
//! operation reaches a handler (never the router's "no such resource" or "method not allowed").

use crate::harness::Server;

#[test]
fn every_documented_operation_reaches_a_handler() {
    let s = Server::start();
    let (status, served) = s.get("/v1/openapi.json");
    assert_eq!(status, 200);
    assert_eq!(
        served,
        qinling_api::openapi::document(),
        "the served document is the generated one"
    );
    let missing = "00000000-0000-0000-0000-000000000000";
    for (method, path) in qinling_api::openapi::operations() {
        let url = format!("{}{}", s.url, path.replace("{id}", missing));
        let method = reqwest::Method::from_bytes(method.to_uppercase().as_bytes()).unwrap();
        let r = s
            .http
            .request(method.clone(), &url)
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .unwrap();
        let status = r.status().as_u16();
        let body = r.text().unwrap();
        assert_ne!(status, 405, "{method} {path}: {body}");
        assert!(
            !body.contains("The resource could not be found."),
            "{method} {path} hit the router's fallback: {status} {body}"
        );
        assert!(status < 500, "{method} {path}: {status} {body}");
    }
}
