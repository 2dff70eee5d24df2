//! Multi-tenancy end to end (issue 7): the three auth modes, upstream's 401s and exempt paths,
//! the admin-only policy, the cross-tenant matrix (project B acting on project A's objects
//! gets 404 or 403 and never sees them), and quotas. Keystone tests run against a real
//! Keystone when `QINLING_TEST_KEYSTONE_URL` is set (scripts/keystone.sh), and say SKIPPED
//! otherwise.

use std::process::Command;
use std::time::Duration;

use serde_json::{Value, json};

use crate::harness::{HELLO, Opts, Server, parse, zip_of};

/// A caller with a token.
struct As<'a> {
    srv: &'a Server,
    token: String,
}

impl<'a> As<'a> {
    fn new(srv: &'a Server, token: &str) -> Self {
        As {
            srv,
            token: token.to_string(),
        }
    }

    fn send(&self, r: reqwest::blocking::RequestBuilder) -> (u16, Value) {
        parse(r.header("X-Auth-Token", &self.token).send().unwrap())
    }

    fn url(&self, path: &str) -> String {
        format!("{}{path}", self.srv.url)
    }

    fn get(&self, path: &str) -> (u16, Value) {
        self.send(self.srv.http.get(self.url(path)))
    }

    fn post(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.srv.http.post(self.url(path)).json(&body))
    }

    fn put(&self, path: &str, body: Value) -> (u16, Value) {
        self.send(self.srv.http.put(self.url(path)).json(&body))
    }

    fn delete(&self, path: &str) -> (u16, Value) {
        self.send(self.srv.http.delete(self.url(path)))
    }

    fn create_function(&self, runtime: &str, name: &str) -> (u16, Value) {
        self.create_source(runtime, name, "hello.py", HELLO)
    }

    /// A function of one Python file `file` (entry `<module>.main`).
    fn create_source(&self, runtime: &str, name: &str, file: &str, source: &str) -> (u16, Value) {
        let module = file.trim_end_matches(".py");
        let form = reqwest::blocking::multipart::Form::new()
            .text("runtime_id", runtime.to_string())
            .text("name", name.to_string())
            .text("code", r#"{"source": "package"}"#.to_string())
            .text("entry", format!("{module}.main"))
            .part(
                "package",
                reqwest::blocking::multipart::Part::bytes(zip_of(&[(file, source)]))
                    .file_name("package.zip"),
            );
        self.send(
            self.srv
                .http
                .post(self.url("/v1/functions"))
                .multipart(form),
        )
    }

    fn update_package(&self, id: &str, zip: Vec<u8>) -> (u16, Value) {
        let form = reqwest::blocking::multipart::Form::new().part(
            "package",
            reqwest::blocking::multipart::Part::bytes(zip).file_name("package.zip"),
        );
        self.send(
            self.srv
                .http
                .put(self.url(&format!("/v1/functions/{id}")))
                .multipart(form),
        )
    }

    /// The built-in python3 runtime's id, once available.
    fn python_runtime(&self) -> String {
        let deadline = std::time::Instant::now() + Duration::from_secs(90);
        loop {
            let (status, body) = self.get("/v1/runtimes");
            assert_eq!(status, 200, "{body}");
            if let Some(r) = body["runtimes"]
                .as_array()
                .unwrap()
                .iter()
                .find(|r| r["name"] == "python3" && r["status"] == "available")
            {
                return r["id"].as_str().unwrap().to_string();
            }
            assert!(std::time::Instant::now() < deadline, "no python3 runtime");
            std::thread::sleep(Duration::from_millis(50));
        }
    }
}

/// `qinling token create` on the server's data directory; returns the secret.
pub(crate) fn make_token(
    srv: &Server,
    project: &str,
    user: &str,
    roles: &str,
    expires_in: &str,
) -> String {
    let out = Command::new(env!("CARGO_BIN_EXE_qinling"))
        .args(["token", "create", "--project", project, "--user", user])
        .args(["--roles", roles, "--expires-in", expires_in])
        .arg("--data-dir")
        .arg(&srv.data_dir)
        .args(srv.database.iter().flat_map(|url| ["--database", url]))
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let secret = String::from_utf8(out.stdout).unwrap().trim().to_string();
    assert!(secret.starts_with("qnl_"), "{secret}");
    secret
}

fn token_cli(srv: &Server, args: &[&str]) -> (bool, String) {
    let out = Command::new(env!("CARGO_BIN_EXE_qinling"))
        .arg("token")
        .args(args)
        .arg("--data-dir")
        .arg(&srv.data_dir)
        .args(srv.database.iter().flat_map(|url| ["--database", url]))
        .output()
        .unwrap();
    (
        out.status.success(),
        String::from_utf8_lossy(&out.stdout).to_string() + &String::from_utf8_lossy(&out.stderr),
    )
}

fn token_server(extra: &[&str]) -> Server {
    let mut args = vec!["--auth".to_string(), "token".to_string()];
    args.extend(extra.iter().map(|s| s.to_string()));
    Server::start_with(Opts {
        extra: args,
        ..Opts::default()
    })
}

fn faultstring(body: &Value) -> String {
    body["faultstring"].as_str().unwrap_or_default().to_string()
}

#[test]
fn token_mode_authenticates_like_keystonemiddleware() {
    let srv = token_server(&[]);
    // Exempt paths, exactly as upstream.
    assert_eq!(srv.get("/").0, 200);
    assert_eq!(srv.get("/v1/").0, 200);
    let (status, _) = srv.post(
        "/v1/webhooks/540f420d-c5de-4b0b-b144-1b2510107918/invoke",
        json!({}),
    );
    assert_ne!(status, 401, "webhook invoke needs no token");
    for path in [
        "/v1",
        "/v1/functions",
        "/v1/runtimes",
        "/v1/nothing-here",
        "/metrics",
    ] {
        assert_eq!(srv.get(path).0, 401, "{path}");
    }

    // No token: HTML by default (the client strips tags), WebOb JSON when asked for.
    let r = srv.get_raw("/v1/functions");
    assert_eq!(r.status().as_u16(), 401);
    assert_eq!(
        r.headers()["server-error-message"],
        "Failed to validate access token: Authentication required"
    );
    assert!(r.text().unwrap().contains("Authentication required"));
    let r = srv
        .http
        .get(format!("{}/v1/functions", srv.url))
        .header("Accept", "application/json")
        .send()
        .unwrap();
    let (status, body) = parse(r);
    assert_eq!(status, 401);
    assert_eq!(body["code"], 401);
    assert_eq!(body["title"], "Unauthorized");
    assert_eq!(
        body["description"],
        "Failed to validate access token: Authentication required"
    );

    // A wrong token.
    let (status, body) = As::new(&srv, "qnl_0000").get("/v1/functions");
    assert_eq!(status, 401);
    assert!(
        body.as_str().unwrap().contains("Auth token is invalid"),
        "{body}"
    );

    // A good one, also as a bearer token; then revoked.
    let secret = make_token(&srv, "pa", "ua", "member", "1h");
    assert_eq!(As::new(&srv, &secret).get("/v1/functions").0, 200);
    let r = srv
        .http
        .get(format!("{}/v1/functions", srv.url))
        .bearer_auth(&secret)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 200);
    // Health and readiness need no token (load balancers have none).
    for path in ["/healthz", "/readyz"] {
        let r = srv.http.get(format!("{}{path}", srv.url)).send().unwrap();
        assert_eq!(r.status().as_u16(), 200, "{path}");
    }
    let (ok, list) = token_cli(&srv, &["list"]);
    assert!(ok, "{list}");
    assert!(list.contains("active") && list.contains("member"), "{list}");
    assert!(!list.contains(&secret), "token list must not show secrets");
    let (ok, list) = token_cli(&srv, &["list", "-f", "json"]);
    assert!(ok, "{list}");
    let rows: serde_json::Value = serde_json::from_str(&list).unwrap();
    let row = rows
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["project"] == "pa")
        .unwrap_or_else(|| panic!("{list}"));
    assert_eq!(
        (
            row["user"].as_str(),
            row["roles"].as_str(),
            row["state"].as_str()
        ),
        (Some("ua"), Some("member"), Some("active"))
    );
    let id = row["id"].as_str().unwrap().to_string();
    let (ok, ids) = token_cli(&srv, &["list", "-f", "value", "-c", "id"]);
    assert!(ok && ids.lines().any(|l| l.trim() == id), "{ids}");
    let (ok, out) = token_cli(&srv, &["revoke", &id]);
    assert!(ok, "{out}");
    assert_eq!(As::new(&srv, &secret).get("/v1/functions").0, 401);
    let (ok, out) = token_cli(&srv, &["revoke", &id]);
    assert!(!ok, "revoking twice is an error: {out}");
    assert!(token_cli(&srv, &["list"]).1.contains("revoked"));

    // Expiry.
    let short = make_token(&srv, "pa", "ua", "member", "1s");
    std::thread::sleep(Duration::from_millis(2100));
    assert_eq!(As::new(&srv, &short).get("/v1/functions").0, 401);

    // Bad CLI input is a clear error.
    let (ok, out) = token_cli(
        &srv,
        &[
            "create",
            "--project",
            "p",
            "--user",
            "u",
            "--expires-in",
            "soon",
        ],
    );
    assert!(!ok && out.contains("Invalid lifetime 'soon'"), "{out}");
}

#[test]
fn none_mode_is_admin_of_default_and_ignores_tokens() {
    let srv = Server::start();
    let (status, body) = As::new(&srv, "anything").get("/v1/functions?all_projects=true");
    assert_eq!(status, 200, "{body}");
    assert_eq!(srv.get("/v1/runtimes").0, 200);
    let (status, q) = srv.get("/v1/quotas/default");
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["quota"]["enforced"], false, "{q}");
    assert!(srv.logs().contains("auth=none"), "{}", srv.logs());
}

#[test]
fn policy_keeps_admin_actions_for_admins() {
    let srv = token_server(&[]);
    let admin = As::new(&srv, &make_token(&srv, "ops", "root", "admin", "1h"));
    let member = As::new(&srv, &make_token(&srv, "pa", "ua", "member", "1h"));
    let runtime = member.python_runtime();
    let (status, f) = member.create_function(&runtime, "mine");
    assert_eq!(status, 201, "{f}");
    let fid = f["id"].as_str().unwrap();

    let refused: Vec<(&str, String, Option<Value>)> = vec![
        (
            "POST",
            "/v1/runtimes".into(),
            Some(json!({"image": "python3"})),
        ),
        (
            "PUT",
            format!("/v1/runtimes/{runtime}"),
            Some(json!({"name": "x"})),
        ),
        ("DELETE", format!("/v1/runtimes/{runtime}"), None),
        ("GET", format!("/v1/runtimes/{runtime}/pool"), None),
        ("GET", format!("/v1/functions/{fid}/workers"), None),
        (
            "POST",
            format!("/v1/functions/{fid}/scale_up"),
            Some(json!({"count": 1})),
        ),
        (
            "POST",
            format!("/v1/functions/{fid}/scale_down"),
            Some(json!({"count": 1})),
        ),
        ("POST", format!("/v1/functions/{fid}/detach"), None),
        ("GET", "/v1/functions?all_projects=true".into(), None),
        ("GET", "/v1/functions?project_id=pa".into(), None),
        ("GET", "/v1/executions?all_projects=true".into(), None),
        ("GET", "/v1/executions?project_id=ops".into(), None),
        ("GET", "/metrics".into(), None),
        (
            "PUT",
            "/v1/quotas/pa".into(),
            Some(json!({"functions": 1000})),
        ),
    ];
    for (method, path, body) in &refused {
        let (status, answer) = match *method {
            "GET" => member.get(path),
            "POST" => member.post(path, body.clone().unwrap_or(json!({}))),
            "PUT" => member.put(path, body.clone().unwrap()),
            _ => member.delete(path),
        };
        assert_eq!(status, 403, "member {method} {path}: {answer}");
        assert_eq!(
            faultstring(&answer),
            "Operation not allowed",
            "{method} {path}"
        );
    }
    // Upstream's 500 on a non-admin `project_id` filter (§9.2) is a 403 here, even for the
    // caller's own project.
    assert_eq!(member.get("/v1/functions?project_id=pa").0, 403);

    // The same requests by an admin pass the policy.
    assert_eq!(admin.get(&format!("/v1/runtimes/{runtime}/pool")).0, 200);
    assert_eq!(admin.get(&format!("/v1/functions/{fid}/workers")).0, 200);
    assert_eq!(
        admin
            .post(&format!("/v1/functions/{fid}/detach"), json!({}))
            .0,
        202
    );
    let (status, all) = admin.get("/v1/functions?all_projects=true");
    assert_eq!(status, 200);
    assert!(all.to_string().contains(fid));
    let (status, by_project) = admin.get("/v1/functions?project_id=pa");
    assert_eq!(status, 200);
    assert_eq!(by_project["functions"].as_array().unwrap().len(), 1);
    assert_eq!(admin.get("/metrics").0, 200);
    let (status, rt) = admin.post(
        "/v1/runtimes",
        json!({"image": "python3", "name": "private", "is_public": false}),
    );
    assert_eq!(status, 201, "{rt}");
    // Admin reads another project's function by id (upstream's insecure_aware) but cannot
    // delete it (owner only, even for admins).
    assert_eq!(admin.get(&format!("/v1/functions/{fid}")).0, 200);
    let (status, body) = admin.delete(&format!("/v1/functions/{fid}"));
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        faultstring(&body),
        "Function can only be deleted by its owner."
    );
    // Members read runtimes.
    assert_eq!(member.get(&format!("/v1/runtimes/{runtime}")).0, 200);
    // ... but not another project's private runtime.
    let private = rt["id"].as_str().unwrap();
    assert_eq!(member.get(&format!("/v1/runtimes/{private}")).0, 404);
    assert!(!member.get("/v1/runtimes").1.to_string().contains(private));
}

#[test]
fn policy_file_overrides_defaults() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("policy.json");
    std::fs::write(
        &file,
        r#"{"runtime_pool:get_all": "role:operator", "function:create": "!"}"#,
    )
    .unwrap();
    let srv = token_server(&["--policy-file", file.to_str().unwrap()]);
    let operator = As::new(&srv, &make_token(&srv, "pa", "op", "operator", "1h"));
    let admin = As::new(&srv, &make_token(&srv, "ops", "root", "admin", "1h"));
    let runtime = operator.python_runtime();
    assert_eq!(operator.get(&format!("/v1/runtimes/{runtime}/pool")).0, 200);
    assert_eq!(admin.get(&format!("/v1/runtimes/{runtime}/pool")).0, 403);
    assert_eq!(admin.create_function(&runtime, "f").0, 403);

    // A bad policy file stops the server from starting, with the reason.
    std::fs::write(&file, r#"{"runtime:create": "role:"}"#).unwrap();
    let out = Command::new(env!("CARGO_BIN_EXE_qinling"))
        .args([
            "serve",
            "--auth",
            "token",
            "--listen",
            "127.0.0.1:0",
            "--policy-file",
        ])
        .arg(&file)
        .arg("--data-dir")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(!out.status.success());
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(err.contains("runtime:create"), "{err}");
}

/// Creates `what` as `owner` and returns the path of the new object, or None when the server
/// has no such resource (yet).
fn try_create(owner: &As<'_>, path: &str, body: Value, id_key: &str) -> Option<String> {
    let (status, b) = owner.post(path, body);
    if status == 404 && b.get("code").is_some() {
        eprintln!("note: {path} is not served here; not part of the matrix");
        return None;
    }
    assert_eq!(status, 201, "create {path}: {b}");
    Some(
        b[id_key]
            .as_str()
            .unwrap_or_else(|| panic!("{b}"))
            .to_string(),
    )
}

#[test]
fn cross_tenant_matrix() {
    let srv = token_server(&[]);
    let a = As::new(
        &srv,
        &make_token(&srv, "project-a", "alice", "member", "1h"),
    );
    let b = As::new(&srv, &make_token(&srv, "project-b", "bob", "member", "1h"));
    let runtime = a.python_runtime();
    let secret_name = "a-secret-function-name";
    let (status, f) = a.create_function(&runtime, secret_name);
    assert_eq!(status, 201, "{f}");
    let fid = f["id"].as_str().unwrap().to_string();
    let (status, e) = a.post(
        "/v1/executions",
        json!({"function_id": fid, "input": "{\"name\": \"A\"}"}),
    );
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "success", "{e}");
    let eid = e["id"].as_str().unwrap().to_string();

    // Resources that may exist (versions, aliases, webhooks, jobs).
    let (vstatus, vbody) = a.post(&format!("/v1/functions/{fid}/versions"), json!({}));
    let version_n = match vstatus {
        201 => vbody["version_number"].as_i64(),
        404 if vbody.get("code").is_some() => {
            eprintln!("note: function versions are not served here; not part of the matrix");
            None
        }
        other => panic!("version create: {other} {vbody}"),
    };
    let alias = try_create(
        &a,
        "/v1/aliases",
        json!({"name": "a-alias", "function_id": fid, "function_version": 0}),
        "name",
    );
    let webhook = try_create(
        &a,
        "/v1/webhooks",
        json!({"function_id": fid, "function_version": 0}),
        "id",
    );
    let job = try_create(
        &a,
        "/v1/jobs",
        json!({"function_id": fid, "pattern": "0 0 1 1 *", "name": "a-job"}),
        "id",
    );

    // (method, path, body, allowed statuses): B acting on A's objects.
    let mut cases: Vec<(&str, String, Value, &[u16])> = vec![
        ("GET", format!("/v1/functions/{fid}"), json!(null), &[404]),
        (
            "GET",
            format!("/v1/functions/{fid}?download=true"),
            json!(null),
            &[404],
        ),
        (
            "PUT",
            format!("/v1/functions/{fid}"),
            json!({"name": "stolen"}),
            &[404],
        ),
        (
            "DELETE",
            format!("/v1/functions/{fid}"),
            json!(null),
            &[404, 403],
        ),
        (
            "GET",
            format!("/v1/functions/{fid}/workers"),
            json!(null),
            &[403, 404],
        ),
        (
            "POST",
            format!("/v1/functions/{fid}/scale_up"),
            json!({"count": 1}),
            &[403, 404],
        ),
        (
            "POST",
            format!("/v1/functions/{fid}/scale_down"),
            json!({"count": 1}),
            &[403, 404],
        ),
        (
            "POST",
            format!("/v1/functions/{fid}/detach"),
            json!({}),
            &[403, 404],
        ),
        (
            "POST",
            "/v1/executions".into(),
            json!({"function_id": fid}),
            &[404],
        ),
        (
            "POST",
            "/v1/executions".into(),
            json!({"function_id": fid, "sync": false}),
            &[404],
        ),
        ("GET", format!("/v1/executions/{eid}"), json!(null), &[404]),
        (
            "GET",
            format!("/v1/executions/{eid}/log"),
            json!(null),
            &[404],
        ),
        (
            "DELETE",
            format!("/v1/executions/{eid}"),
            json!(null),
            &[404],
        ),
        (
            "GET",
            format!("/v1/functions/{fid}/versions"),
            json!(null),
            &[404],
        ),
        (
            "POST",
            format!("/v1/functions/{fid}/versions"),
            json!({}),
            &[404],
        ),
        ("GET", "/v1/quotas/project-a".into(), json!(null), &[403]),
        (
            "PUT",
            "/v1/quotas/project-a".into(),
            json!({"functions": 0}),
            &[403],
        ),
    ];
    if let Some(n) = version_n {
        cases.push((
            "GET",
            format!("/v1/functions/{fid}/versions/{n}"),
            json!(null),
            &[404],
        ));
        cases.push((
            "GET",
            format!("/v1/functions/{fid}/versions/{n}?download=true"),
            json!(null),
            &[404],
        ));
        cases.push((
            "DELETE",
            format!("/v1/functions/{fid}/versions/{n}"),
            json!(null),
            &[404],
        ));
        cases.push((
            "POST",
            format!("/v1/functions/{fid}/versions/{n}/scale_up"),
            json!({"count": 1}),
            &[403, 404],
        ));
        cases.push((
            "POST",
            format!("/v1/functions/{fid}/versions/{n}/detach"),
            json!({}),
            &[403, 404],
        ));
        cases.push((
            "POST",
            "/v1/executions".into(),
            json!({"function_id": fid, "function_version": n}),
            &[404],
        ));
    }
    if alias.is_some() {
        cases.push(("GET", "/v1/aliases/a-alias".into(), json!(null), &[404]));
        cases.push((
            "PUT",
            "/v1/aliases/a-alias".into(),
            json!({"description": "x"}),
            &[404],
        ));
        cases.push(("DELETE", "/v1/aliases/a-alias".into(), json!(null), &[404]));
        cases.push((
            "POST",
            "/v1/executions".into(),
            json!({"function_alias": "a-alias"}),
            &[404],
        ));
        cases.push((
            "POST",
            "/v1/aliases".into(),
            json!({"name": "b-alias", "function_id": fid}),
            &[404],
        ));
    }
    if let Some(w) = &webhook {
        cases.push(("GET", format!("/v1/webhooks/{w}"), json!(null), &[404]));
        cases.push((
            "PUT",
            format!("/v1/webhooks/{w}"),
            json!({"description": "x"}),
            &[404],
        ));
        cases.push(("DELETE", format!("/v1/webhooks/{w}"), json!(null), &[404]));
        cases.push((
            "POST",
            "/v1/webhooks".into(),
            json!({"function_id": fid, "function_version": 0}),
            &[404],
        ));
    }
    if let Some(j) = &job {
        cases.push(("GET", format!("/v1/jobs/{j}"), json!(null), &[404]));
        cases.push((
            "PUT",
            format!("/v1/jobs/{j}"),
            json!({"status": "paused"}),
            &[404],
        ));
        cases.push(("DELETE", format!("/v1/jobs/{j}"), json!(null), &[404]));
        cases.push((
            "POST",
            "/v1/jobs".into(),
            json!({"function_id": fid, "pattern": "0 0 1 1 *"}),
            &[404],
        ));
    }
    for (method, path, body, allowed) in &cases {
        let (status, answer) = match *method {
            "GET" => b.get(path),
            "POST" => b.post(path, body.clone()),
            "PUT" => b.put(path, body.clone()),
            _ => b.delete(path),
        };
        assert!(
            allowed.contains(&status),
            "B {method} {path}: got {status} {answer}, want one of {allowed:?}"
        );
        let text = answer.to_string();
        assert!(
            !text.contains(secret_name) && !text.contains("project-a") && !text.contains("alice"),
            "B {method} {path} leaks A: {text}"
        );
    }

    // B's listings show nothing of A's.
    let mut lists = vec![
        "/v1/functions".to_string(),
        "/v1/executions".into(),
        format!("/v1/executions?function_id={fid}"),
        "/v1/runtimes".into(),
    ];
    for (present, path) in [
        (alias.is_some(), "/v1/aliases"),
        (webhook.is_some(), "/v1/webhooks"),
        (job.is_some(), "/v1/jobs"),
    ] {
        if present {
            lists.push(path.into());
        }
    }
    for path in &lists {
        let (status, body) = b.get(path);
        assert_eq!(status, 200, "B GET {path}: {body}");
        let text = body.to_string();
        for leak in [fid.as_str(), eid.as_str(), secret_name, "project-a"] {
            assert!(!text.contains(leak), "B GET {path} shows {leak}: {text}");
        }
    }

    // A still has everything, untouched.
    let (status, mine) = a.get(&format!("/v1/functions/{fid}"));
    assert_eq!(status, 200);
    assert_eq!(mine["name"], secret_name);
    assert_eq!(a.get(&format!("/v1/executions/{eid}")).0, 200);
    assert!(a.get("/v1/executions").1.to_string().contains(&eid));
}

#[test]
fn quotas_are_enforced_per_project_and_name_the_limit() {
    let srv = token_server(&[]);
    let admin = As::new(&srv, &make_token(&srv, "ops", "root", "admin", "1h"));
    let a = As::new(
        &srv,
        &make_token(&srv, "project-a", "alice", "member", "1h"),
    );
    let b = As::new(&srv, &make_token(&srv, "project-b", "bob", "member", "1h"));
    let runtime = a.python_runtime();

    // Reading one's own quota is allowed; the defaults apply and are enforced.
    let (status, q) = a.get("/v1/quotas/project-a");
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["quota"]["enforced"], true);
    assert_eq!(q["quota"]["limits"]["functions"], 100);
    assert_eq!(q["quota"]["usage"]["functions"], 0);

    // Bad quota changes are 400s that say what is wrong.
    let (status, body) = admin.put("/v1/quotas/project-a", json!({"lambdas": 1}));
    assert_eq!(status, 400);
    assert!(
        faultstring(&body).contains("Unknown quota 'lambdas'"),
        "{body}"
    );
    let (status, body) = admin.put("/v1/quotas/project-a", json!({"functions": -5}));
    assert_eq!(status, 400, "{body}");
    let (status, body) = admin.put("/v1/quotas/project-a", json!({"functions": "ten"}));
    assert_eq!(status, 400, "{body}");

    // functions → 403.
    let (status, q) = admin.put("/v1/quotas/project-a", json!({"functions": 1}));
    assert_eq!(status, 200, "{q}");
    assert_eq!(q["quota"]["limits"]["functions"], 1);
    let (status, f) = a.create_function(&runtime, "one");
    assert_eq!(status, 201, "{f}");
    let fid = f["id"].as_str().unwrap().to_string();
    let (status, body) = a.create_function(&runtime, "two");
    assert_eq!(status, 403, "{body}");
    assert_eq!(
        faultstring(&body),
        "Quota exceeded for functions: limit 1, in use 1."
    );
    // Another project is not affected.
    assert_eq!(b.create_function(&runtime, "b-one").0, 201);

    // package_bytes → 413.
    let used = a.get("/v1/quotas/project-a").1["quota"]["usage"]["package_bytes"]
        .as_i64()
        .unwrap();
    admin.put("/v1/quotas/project-a", json!({"package_bytes": used + 10}));
    let big = zip_of(&[("hello.py", HELLO), ("pad.txt", &"x".repeat(5000))]);
    let (status, body) = a.update_package(&fid, big);
    assert_eq!(status, 413, "{body}");
    assert!(
        faultstring(&body).starts_with(&format!(
            "Quota exceeded for package_bytes: limit {}, in use {used}, requested",
            used + 10
        )),
        "{body}"
    );

    // executions_per_minute → 429.
    admin.put("/v1/quotas/project-a", json!({"executions_per_minute": 2}));
    for _ in 0..2 {
        let (status, e) = a.post("/v1/executions", json!({"function_id": fid}));
        assert_eq!(status, 201, "{e}");
    }
    let (status, body) = a.post("/v1/executions", json!({"function_id": fid}));
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        faultstring(&body),
        "Quota exceeded for executions_per_minute: limit 2, in use 2."
    );
    assert_eq!(
        a.get("/v1/quotas/project-a").1["quota"]["usage"]["executions_per_minute"],
        2
    );

    // concurrent_executions → 429.
    admin.put(
        "/v1/quotas/project-a",
        json!({"executions_per_minute": null, "concurrent_executions": 0}),
    );
    let (status, body) = a.post("/v1/executions", json!({"function_id": fid}));
    assert_eq!(status, 429, "{body}");
    assert_eq!(
        faultstring(&body),
        "Quota exceeded for concurrent_executions: limit 0, in use 0."
    );

    // workers → 403 on scale_up.
    admin.put("/v1/quotas/project-a", json!({"workers": 0}));
    let (status, body) = admin.post(
        &format!("/v1/functions/{fid}/scale_up"),
        json!({"count": 2}),
    );
    assert_eq!(status, 403, "{body}");
    assert!(
        faultstring(&body).starts_with("Quota exceeded for workers: limit 0, in use "),
        "{body}"
    );

    // Reset to the defaults.
    let r = srv
        .http
        .delete(format!("{}/v1/quotas/project-a", srv.url))
        .header("X-Auth-Token", &admin.token)
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 204);
    let (_, q) = a.get("/v1/quotas/project-a");
    assert_eq!(q["quota"]["limits"]["functions"], 100, "{q}");
    assert_eq!(a.post("/v1/executions", json!({"function_id": fid})).0, 201);
}

/// Keystone URL and the credentials scripts/keystone.sh created, or None (and SKIPPED).
struct Keystone {
    url: String,
    password: String,
}

fn keystone() -> Option<Keystone> {
    match std::env::var("QINLING_TEST_KEYSTONE_URL") {
        Ok(url) if !url.is_empty() => Some(Keystone {
            url,
            password: std::env::var("QINLING_TEST_KEYSTONE_PASSWORD")
                .unwrap_or_else(|_| "qinling-test".into()),
        }),
        _ => {
            eprintln!(
                "SKIPPED: keystone tests: QINLING_TEST_KEYSTONE_URL is not set (run scripts/keystone.sh start)"
            );
            None
        }
    }
}

impl Keystone {
    /// A project-scoped token for `user` in `project` (password auth).
    fn token(&self, user: &str, project: &str) -> String {
        let body = json!({"auth": {
            "identity": {"methods": ["password"], "password": {"user": {
                "name": user, "password": self.password, "domain": {"id": "default"}}}},
            "scope": {"project": {"name": project, "domain": {"id": "default"}}}}});
        let r = reqwest::blocking::Client::new()
            .post(format!("{}/v3/auth/tokens", self.url))
            .json(&body)
            .send()
            .unwrap();
        assert_eq!(r.status().as_u16(), 201, "keystone login of {user}");
        r.headers()["x-subject-token"].to_str().unwrap().to_string()
    }
}

#[test]
fn keystone_mode_with_a_real_keystone() {
    let Some(ks) = keystone() else {
        return;
    };
    let srv = Server::start_with(Opts {
        extra: vec![
            "--auth".into(),
            "keystone".into(),
            "--keystone-url".into(),
            ks.url.clone(),
        ],
        ..Opts::default()
    });
    let admin = As::new(&srv, &ks.token("admin", "admin"));
    let a = As::new(&srv, &ks.token("qinling-a", "qinling-a"));
    let b = As::new(&srv, &ks.token("qinling-b", "qinling-b"));

    // 401s, as keystonemiddleware answers them.
    assert_eq!(srv.get("/v1/functions").0, 401);
    let r = srv
        .http
        .get(format!("{}/v1/functions", srv.url))
        .header("X-Auth-Token", "gAAAAAnot-a-token")
        .send()
        .unwrap();
    assert_eq!(r.status().as_u16(), 401);
    assert!(
        r.headers()["www-authenticate"]
            .to_str()
            .unwrap()
            .starts_with("Keystone uri="),
    );
    assert_eq!(srv.get("/v1/").0, 200);

    // Roles map to policy: only the admin role creates runtimes and lists all projects.
    let runtime = a.python_runtime();
    assert_eq!(a.post("/v1/runtimes", json!({"image": "python3"})).0, 403);
    assert_eq!(a.get("/v1/functions?all_projects=true").0, 403);
    assert_eq!(admin.get("/v1/functions?all_projects=true").0, 200);

    // Projects are Keystone's: A's function is A's, and B cannot see or run it.
    let (status, f) = a.create_function(&runtime, "ks-a-function");
    assert_eq!(status, 201, "{f}");
    let fid = f["id"].as_str().unwrap();
    assert_ne!(f["project_id"], "default");
    let (status, e) = a.post("/v1/executions", json!({"function_id": fid}));
    assert_eq!(status, 201, "{e}");
    assert_eq!(e["status"], "success", "{e}");
    assert_eq!(b.get(&format!("/v1/functions/{fid}")).0, 404);
    assert_eq!(b.post("/v1/executions", json!({"function_id": fid})).0, 404);
    assert!(!b.get("/v1/functions").1.to_string().contains(fid));
    assert!(
        admin
            .get("/v1/functions?all_projects=true")
            .1
            .to_string()
            .contains(fid)
    );
    assert_eq!(a.delete(&format!("/v1/functions/{fid}")).0, 204);
}

/// What a function gets of its caller's rights: a `context` naming only its own execution,
/// function and project — no token, no credentials in its environment — and no way to the
/// API, which listens on the host's loopback, outside the sandbox's network namespace.
#[test]
fn a_function_gets_no_rights_of_its_caller() {
    let srv = token_server(&[]);
    let admin_token = make_token(&srv, "ops", "root", "admin", "1h");
    let alice_token = make_token(&srv, "project-a", "alice", "member", "1h");
    let a = As::new(&srv, &alice_token);
    let runtime = a.python_runtime();
    let source = r#"
import errno, os, socket

def main(context=None, port=0, **kw):
    out = {"context": context, "env": dict(os.environ)}
    try:
        socket.create_connection(("127.0.0.1", int(port)), timeout=2).close()
        out["api"] = "connected"
    except OSError as e:
        out["api"] = errno.errorcode.get(e.errno, str(e))
    return out
"#;
    let (status, f) = a.create_source(&runtime, "spy", "spy.py", source);
    assert_eq!(status, 201, "{f}");
    let port = srv.url.rsplit(':').next().unwrap().to_string();
    let (status, e) = a.post(
        "/v1/executions",
        json!({"function_id": f["id"], "input": json!({"port": port}).to_string()}),
    );
    assert_eq!(
        (status, e["status"].clone()),
        (201, json!("success")),
        "{e}"
    );
    let out: Value = serde_json::from_str(e["result"].as_str().unwrap()).unwrap();
    let out = &out["output"];

    let context = out["context"].as_object().unwrap();
    let mut keys: Vec<&str> = context.keys().map(String::as_str).collect();
    keys.sort_unstable();
    assert_eq!(
        keys,
        [
            "execution_id",
            "function_id",
            "function_version",
            "os_session",
            "project_id",
            "request_id",
            "traceparent"
        ]
    );
    // Upstream's key for a Keystone session made from the function's trust: always none here.
    assert_eq!(context["os_session"], Value::Null);
    assert_eq!(context["project_id"], "project-a");
    assert_eq!(context["execution_id"], e["id"]);
    assert_eq!(context["function_id"], f["id"]);
    let seen = out.to_string();
    for secret in [&admin_token, &alice_token] {
        assert!(
            !seen.contains(secret.as_str()),
            "a token reached the function: {seen}"
        );
    }
    assert!(
        !seen.contains("qnl_"),
        "token material reached the function: {seen}"
    );
    assert!(
        !seen.to_lowercase().contains("auth"),
        "auth settings reached the function: {seen}"
    );
    if std::env::var_os("QINLING_TEST_INSECURE").is_some() {
        eprintln!(
            "note: QINLING_TEST_INSECURE runs functions unsandboxed; not checking that the API is out of reach"
        );
    } else {
        assert_eq!(out["api"], "ECONNREFUSED", "{out}");
    }
}

/// `qinling quota show|set|reset` against a token-mode server: admins change limits, members
/// read their own, and the new limit holds for the next create.
#[test]
fn quota_cli() {
    let srv = token_server(&[]);
    let admin = make_token(&srv, "ops", "root", "admin", "1h");
    let member = make_token(&srv, "project-a", "alice", "member", "1h");
    let runtime = As::new(&srv, &member).python_runtime();
    let cli = |token: &str, args: &[&str]| {
        let out = Command::new(env!("CARGO_BIN_EXE_qinling"))
            .args(args)
            .env("QINLING_URL", &srv.url)
            .env("QINLING_TOKEN", token)
            .output()
            .unwrap();
        (
            out.status.success(),
            String::from_utf8_lossy(&out.stdout).to_string(),
            String::from_utf8_lossy(&out.stderr).to_string(),
        )
    };

    let (ok, _, err) = cli(&member, &["quota", "set", "project-a", "--functions", "5"]);
    assert!(!ok, "a member changed a quota");
    assert!(
        err.contains("403")
            || err.to_lowercase().contains("not allowed")
            || err.to_lowercase().contains("policy"),
        "{err}"
    );

    let (ok, out, err) = cli(
        &admin,
        &[
            "quota",
            "set",
            "project-a",
            "--functions",
            "1",
            "--workers",
            "-1",
        ],
    );
    assert!(ok, "{err}");
    assert!(out.contains("project project-a"), "{out}");
    assert!(out.contains("| workers "), "{out}");
    assert!(out.contains("unlimited"), "{out}");

    let (ok, out, err) = cli(&member, &["quota", "show", "project-a", "-f", "json"]);
    assert!(ok, "{err}");
    let q: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(q["limits"]["functions"], 1, "{q}");
    assert_eq!(q["usage"]["functions"], 0, "{q}");

    let a = As::new(&srv, &member);
    assert_eq!(a.create_function(&runtime, "one").0, 201);
    let (status, body) = a.create_function(&runtime, "two");
    assert_eq!(
        (status, faultstring(&body)),
        (
            403,
            "Quota exceeded for functions: limit 1, in use 1.".to_string()
        )
    );

    let (ok, _, err) = cli(&admin, &["quota", "reset", "project-a"]);
    assert!(ok, "{err}");
    let (ok, out, err) = cli(&member, &["quota", "show", "project-a", "-f", "json"]);
    assert!(ok, "{err}");
    let q: Value = serde_json::from_str(&out).unwrap();
    assert_eq!(q["limits"]["functions"], 100, "{q}");
    assert_eq!(q["usage"]["functions"], 1, "{q}");
    assert_eq!(a.create_function(&runtime, "two").0, 201);

    let (ok, _, err) = cli(&admin, &["quota", "set", "project-a", "--functions", "ten"]);
    assert!(!ok);
    assert!(err.contains("-1 for unlimited"), "{err}");
}

/// A burst of concurrent executions never overshoots `concurrent_executions`: each request
/// reserves its slot before counting, so in-flight ones see each other.
#[test]
fn concurrent_execution_quota_holds_under_a_burst() {
    let srv = token_server(&[]);
    let admin = As::new(&srv, &make_token(&srv, "ops", "root", "admin", "1h"));
    let member = make_token(&srv, "project-a", "alice", "member", "1h");
    let a = As::new(&srv, &member);
    let runtime = a.python_runtime();
    let (status, f) = a.create_source(
        &runtime,
        "slow",
        "slow.py",
        "import time\ndef main(**kw):\n    time.sleep(4)\n    return 'done'\n",
    );
    assert_eq!(status, 201, "{f}");
    let limit = 4;
    let (status, q) = admin.put(
        "/v1/quotas/project-a",
        json!({"concurrent_executions": limit}),
    );
    assert_eq!(status, 200, "{q}");
    let fid = f["id"].as_str().unwrap().to_string();
    let barrier = std::sync::Arc::new(std::sync::Barrier::new(16));
    let answers: Vec<(u16, Value)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..16)
            .map(|_| {
                let (barrier, fid, a) = (barrier.clone(), fid.clone(), &a);
                scope.spawn(move || {
                    barrier.wait();
                    a.post("/v1/executions", json!({"function_id": fid, "sync": false}))
                })
            })
            .collect();
        handles.into_iter().map(|h| h.join().unwrap()).collect()
    });
    let accepted = answers.iter().filter(|(s, _)| *s == 201).count();
    assert!(
        (1..=limit).contains(&accepted),
        "{accepted} of 16 accepted with a limit of {limit}: {answers:?}"
    );
    for (status, body) in answers.iter().filter(|(s, _)| *s != 201) {
        assert_eq!(*status, 429, "{body}");
        assert!(
            faultstring(body).starts_with("Quota exceeded for concurrent_executions: limit 4"),
            "{body}"
        );
    }
    let (_, q) = a.get("/v1/quotas/project-a");
    assert!(
        q["quota"]["usage"]["concurrent_executions"]
            .as_i64()
            .unwrap()
            <= limit as i64,
        "{q}"
    );
}
