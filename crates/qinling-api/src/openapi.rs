//! The OpenAPI 3 description of the v1 API, built from the route table (`routes.rs`, which
//! also builds the router, so nothing is documented that is not served). The document is
//! served at `GET /v1/openapi.json`, printed by `qinling openapi`, and checked into the
//! repository as `docs/openapi.json`; a test fails when the file is stale.

use serde_json::{Map, Value, json};

use crate::routes::ROUTES;

/// The OpenAPI description of one route (`routes.rs`).
pub(crate) struct Doc {
    pub summary: &'static str,
    /// Query parameters (all optional strings).
    pub query: &'static [&'static str],
    pub body: Body,
    /// (status, description, schema ref or `None` for no body).
    pub responses: &'static [(u16, &'static str, Option<&'static str>)],
}

pub(crate) enum Body {
    None,
    Json(&'static str),
    /// A multipart or urlencoded form (functions).
    Form(&'static str),
}

/// Errors every JSON-body operation may answer (added to those it lists).
const WSME_ERRORS: &[(u16, &str, Option<&str>)] = &[
    (400, "Bad request", Some("Fault")),
    (404, "Not found", Some("Fault")),
];

/// The documented routes, in the table's order.
fn ops() -> impl Iterator<Item = (&'static str, &'static str, &'static Doc)> {
    ROUTES
        .iter()
        .filter_map(|r| r.doc.as_ref().map(|d| (r.method.as_str(), r.path, d)))
}

fn schemas() -> Value {
    // Bodies of no fixed shape: the metrics text, this document and a webhook's keyword
    // arguments (any JSON object).
    let mut out = json!({
        "Text": {"type": "string"},
        "Object": {"type": "object"},
    });
    // Every other body is a qinling-wire type: its schema comes from the type.
    use qinling_wire::Object;
    fn add<T: Object>(out: &mut Value) {
        out[T::NAME] = T::schema();
    }
    add::<qinling_wire::Fault>(&mut out);
    add::<qinling_wire::PecanFault>(&mut out);
    add::<qinling_wire::Versions>(&mut out);
    add::<qinling_wire::ApiVersion>(&mut out);
    add::<qinling_wire::Link>(&mut out);
    add::<qinling_wire::Resources>(&mut out);
    add::<qinling_wire::Runtime>(&mut out);
    add::<qinling_wire::RuntimeList>(&mut out);
    add::<qinling_wire::RuntimeCreate>(&mut out);
    add::<qinling_wire::RuntimeUpdate>(&mut out);
    add::<qinling_wire::Pool>(&mut out);
    add::<qinling_wire::PoolCapacity>(&mut out);
    add::<qinling_wire::Function>(&mut out);
    add::<qinling_wire::FunctionList>(&mut out);
    add::<qinling_wire::FunctionCreate>(&mut out);
    add::<qinling_wire::FunctionUpdate>(&mut out);
    add::<qinling_wire::FunctionStats>(&mut out);
    add::<qinling_wire::StatsPoint>(&mut out);
    add::<qinling_wire::Worker>(&mut out);
    add::<qinling_wire::WorkerList>(&mut out);
    add::<qinling_wire::NodeList>(&mut out);
    add::<qinling_wire::Node>(&mut out);
    add::<qinling_wire::Scale>(&mut out);
    // The upper bound of a scale is the engine's, which the wire crate cannot name.
    out["Scale"]["properties"]["count"]["maximum"] = json!(qinling_engine::MAX_SCALE_COUNT);
    add::<qinling_wire::Execution>(&mut out);
    add::<qinling_wire::ExecutionList>(&mut out);
    add::<qinling_wire::ExecutionCreate>(&mut out);
    add::<qinling_wire::UsageSums>(&mut out);
    add::<qinling_wire::UsageRow>(&mut out);
    add::<qinling_wire::Usage>(&mut out);
    add::<qinling_wire::Version>(&mut out);
    add::<qinling_wire::VersionList>(&mut out);
    add::<qinling_wire::VersionCreate>(&mut out);
    add::<qinling_wire::Alias>(&mut out);
    add::<qinling_wire::AliasList>(&mut out);
    add::<qinling_wire::AliasBody>(&mut out);
    add::<qinling_wire::JobBody>(&mut out);
    add::<qinling_wire::WebhookBody>(&mut out);
    add::<qinling_wire::Job>(&mut out);
    add::<qinling_wire::JobList>(&mut out);
    add::<qinling_wire::Webhook>(&mut out);
    add::<qinling_wire::WebhookList>(&mut out);
    add::<qinling_wire::WebhookInvoked>(&mut out);
    add::<qinling_wire::QuotaLimits>(&mut out);
    add::<qinling_wire::QuotaUpdate>(&mut out);
    add::<qinling_wire::QuotaSet>(&mut out);
    add::<qinling_wire::Quota>(&mut out);
    out
}

/// The whole document.
pub fn document() -> Value {
    let mut paths = Map::new();
    for (method, path, op) in ops() {
        let mut o = Map::new();
        o.insert("summary".into(), json!(op.summary));
        o.insert("operationId".into(), json!(operation_id(method, path)));
        let mut params: Vec<Value> = Vec::new();
        for seg in path.split('/').filter(|s| s.starts_with('{')) {
            let name = seg.trim_matches(|c| c == '{' || c == '}');
            params.push(
                json!({"name": name, "in": "path", "required": true, "schema": {"type": "string"}}),
            );
        }
        for q in op.query {
            params.push(
                json!({"name": q, "in": "query", "required": false, "schema": {"type": "string"}}),
            );
        }
        if !params.is_empty() {
            o.insert("parameters".into(), Value::Array(params));
        }
        match op.body {
            Body::None => {}
            Body::Json(schema) => {
                o.insert("requestBody".into(), json!({"required": true, "content": {"application/json": {"schema": {"$ref": format!("#/components/schemas/{schema}")}}}}));
            }
            Body::Form(schema) => {
                let r = json!({"schema": {"$ref": format!("#/components/schemas/{schema}")}});
                o.insert("requestBody".into(), json!({"required": true, "content": {"multipart/form-data": r, "application/x-www-form-urlencoded": r}}));
            }
        }
        let mut responses = Map::new();
        let extra: &[(u16, &str, Option<&str>)] = if matches!(op.body, Body::Json(_)) {
            WSME_ERRORS
        } else {
            &[]
        };
        for (status, description, schema) in op.responses.iter().chain(extra) {
            if responses.contains_key(&status.to_string()) {
                continue;
            }
            let mut r = json!({"description": description});
            if let Some(schema) = schema {
                let ctype = if *schema == "Text" {
                    "text/plain"
                } else {
                    "application/json"
                };
                r["content"] =
                    json!({ctype: {"schema": {"$ref": format!("#/components/schemas/{schema}")}}});
            }
            responses.insert(status.to_string(), r);
        }
        o.insert("responses".into(), Value::Object(responses));
        let entry = paths.entry(path.to_string()).or_insert_with(|| json!({}));
        entry[method] = Value::Object(o);
    }
    json!({
        "openapi": "3.0.3",
        "info": {
            "title": "Qinling API",
            "version": "v1",
            "description": "OpenStack Qinling's REST API v1, as served by Qinling-in-Rust. Differences from upstream: docs/compat.md."
        },
        "paths": paths,
        "components": {"schemas": schemas()},
    })
}

fn operation_id(method: &str, path: &str) -> String {
    let mut id = method.to_string();
    for seg in path.split('/').filter(|s| !s.is_empty()) {
        let seg = seg
            .trim_matches(|c| c == '{' || c == '}')
            .replace(['.', '_'], " ");
        for word in seg.split(' ') {
            let mut c = word.chars();
            if let Some(first) = c.next() {
                id.push(first.to_ascii_uppercase());
                id.extend(c);
            }
        }
    }
    id
}

/// The documented (method, path) pairs.
pub fn operations() -> Vec<(&'static str, &'static str)> {
    ops().map(|(method, path, _)| (method, path)).collect()
}

pub(crate) async fn serve() -> axum::Json<Value> {
    axum::Json(document())
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeSet;

    use super::*;

    #[test]
    fn the_checked_in_document_is_current() {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let generated = serde_json::to_string_pretty(&document()).unwrap() + "\n";
        if std::env::var_os("QINLING_BLESS").is_some() {
            std::fs::write(path, &generated).unwrap();
        }
        let on_disk = std::fs::read_to_string(path).unwrap_or_default();
        assert!(
            on_disk == generated,
            "docs/openapi.json is stale: run `QINLING_BLESS=1 cargo test -p qinling-api openapi` (or `qinling openapi > docs/openapi.json`) and commit it"
        );
    }

    /// Every `$ref` of the document names a schema it has.
    #[test]
    fn every_reference_resolves() {
        fn refs(v: &Value, out: &mut Vec<String>) {
            match v {
                Value::Object(m) => {
                    if let Some(Value::String(r)) = m.get("$ref") {
                        out.push(r.clone());
                    }
                    m.values().for_each(|v| refs(v, out));
                }
                Value::Array(a) => a.iter().for_each(|v| refs(v, out)),
                _ => {}
            }
        }
        let doc = document();
        let mut found = Vec::new();
        refs(&doc, &mut found);
        assert!(!found.is_empty());
        for r in found {
            let name = r.strip_prefix("#/components/schemas/").unwrap_or(&r);
            assert!(
                doc["components"]["schemas"].get(name).is_some(),
                "{r} names no schema"
            );
        }
        assert_eq!(
            doc["components"]["schemas"]["Scale"]["properties"]["count"]["maximum"],
            json!(qinling_engine::MAX_SCALE_COUNT)
        );
    }

    #[test]
    fn operation_ids_are_unique() {
        let ids: Vec<String> = ops().map(|(m, p, _)| operation_id(m, p)).collect();
        let unique: BTreeSet<&String> = ids.iter().collect();
        assert_eq!(unique.len(), ids.len(), "{ids:?}");
    }
}
