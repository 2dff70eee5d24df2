//! Issue 16, end to end: the hardening properties, each proven by attacks written as a
//! hostile caller would (several per property) and by the compatibility case upstream's
//! CPU-limit function needs. Cases that need the jail skip with a printed reason under
//! `QINLING_TEST_INSECURE`.

use serde_json::{Value, json};

use crate::harness::{HELLO, Server, result, zip_of};

/// Upstream's CPU-limit test function in substance: 50,000 digits of pi as one integer,
/// printed whole (a 50,000-digit int-to-text conversion) and returned as its first digits.
const PI_DIGITS: &str = r#"
def pi_digits(n):
    # Machin's formula in fixed point, with guard digits.
    scale = 10 ** (n + 10)
    def arctan_inv(x):
        total = term = scale // x
        x2, k, sign = x * x, 1, -1
        while term:
            term //= x2
            k += 2
            total += sign * (term // k)
            sign = -sign
        return total
    return (16 * arctan_inv(5) - 4 * arctan_inv(239)) // 10 ** 10

def main(number=50000, **kwargs):
    pi = pi_digits(number)
    print(pi)
    return str(pi)[:15]
"#;

/// Property 8: the python3 runtime runs a function that prints a 50,000-digit integer
/// (Python >= 3.11 refuses int-to-text conversions past 4,300 digits by default).
#[test]
fn python_prints_a_50000_digit_integer() {
    let s = Server::start();
    let f = s.create_function(
        "test_python_cpu_limit.py",
        PI_DIGITS,
        "test_python_cpu_limit.main",
        &[("cpu", "300"), ("timeout", "180")],
    );
    let e = s.execute(f["id"].as_str().unwrap(), None);
    let id = e["id"].as_str().unwrap();
    assert_eq!(
        (e["status"].clone(), result(&e)["output"].clone()),
        (json!("success"), json!("314159265358979")),
        "{e}\nlog: {}",
        s.log(id)
    );
    let log = s.log(id);
    assert!(log.contains("3141592653"), "{log}");
}

/// Asserts a 400 whose message names the problem (`needle`), and that nothing was stored.
#[track_caller]
fn assert_refused(what: &str, (status, body): (u16, Value), needle: &str) {
    assert_eq!(status, 400, "{what}: {body}");
    let msg = body["faultstring"].as_str().unwrap_or("");
    assert!(
        msg.contains(needle),
        "{what}: {msg:?} should mention {needle:?}"
    );
}

/// Property 5: names and descriptions of every resource refuse control characters (NUL,
/// an escape sequence, a line break in a name, DEL) and overlong text, at create and at
/// update, with a 400 that says which field and why; nothing bad is stored.
#[test]
fn names_and_descriptions_are_validated() {
    let s = Server::start();
    let runtime = s.python_runtime();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap().to_string();
    let long = "n".repeat(256);
    let bad_names: [(&str, &str); 5] = [
        ("NUL", "evil\0name"),
        ("escape sequence", "\u{1b}[2J\u{1b}[Hcleared"),
        ("line break", "two\nlines"),
        ("DEL", "del\u{7f}"),
        ("256 characters", &long),
    ];
    let bad_descriptions: [(&str, &str); 3] = [
        ("NUL", "a\0b"),
        ("escape sequence", "\u{1b}]0;title\u{7}"),
        ("256 characters", &long),
    ];
    let why = |what: &str| {
        if what == "256 characters" {
            "at most 255"
        } else {
            "control character"
        }
    };
    for (what, name) in bad_names {
        // Function create (multipart) and update (JSON).
        let (status, body) = s.create_function_raw(
            &runtime,
            zip_of(&[("hello.py", HELLO)]),
            "hello.main",
            &[("name", name)],
        );
        assert_refused(
            &format!("function create, name {what}"),
            (status, body),
            why(what),
        );
        assert_refused(
            &format!("function update, name {what}"),
            s.put(&format!("/v1/functions/{fid}"), json!({ "name": name })),
            why(what),
        );
        assert_refused(
            &format!("runtime create, name {what}"),
            s.post(
                "/v1/runtimes",
                json!({"image": "openstackqinling/python3-runtime:0.0.2", "name": name}),
            ),
            why(what),
        );
        assert_refused(
            &format!("runtime update, name {what}"),
            s.put(&format!("/v1/runtimes/{runtime}"), json!({ "name": name })),
            why(what),
        );
        assert_refused(
            &format!("job create, name {what}"),
            s.post(
                "/v1/jobs",
                json!({"name": name, "function_id": fid, "pattern": "0 0 1 1 *"}),
            ),
            why(what),
        );
        assert_refused(
            &format!("alias create, name {what}"),
            s.post(
                "/v1/aliases",
                json!({"name": name, "function_id": fid, "function_version": 0}),
            ),
            why(what),
        );
    }
    // One of each to update.
    let (status, job) = s.post(
        "/v1/jobs",
        json!({"name": "ok", "function_id": fid, "pattern": "0 0 1 1 *"}),
    );
    assert_eq!(status, 201, "{job}");
    let jid = job["id"].as_str().unwrap();
    let (status, a) = s.post(
        "/v1/aliases",
        json!({"name": "ok", "function_id": fid, "function_version": 0}),
    );
    assert_eq!(status, 201, "{a}");
    let (status, w) = s.post("/v1/webhooks", json!({"function_id": fid}));
    assert_eq!(status, 201, "{w}");
    let wid = w["id"].as_str().unwrap();
    for (what, name) in bad_names {
        assert_refused(
            &format!("job update, name {what}"),
            s.put(&format!("/v1/jobs/{jid}"), json!({ "name": name })),
            why(what),
        );
    }
    for (what, d) in bad_descriptions {
        let (status, body) = s.create_function_raw(
            &runtime,
            zip_of(&[("hello.py", HELLO)]),
            "hello.main",
            &[("description", d)],
        );
        assert_refused(
            &format!("function create, description {what}"),
            (status, body),
            why(what),
        );
        for (label, result) in [
            ("function update", s.put(&format!("/v1/functions/{fid}"), json!({ "description": d }))),
            (
                "runtime create",
                s.post(
                    "/v1/runtimes",
                    json!({"image": "openstackqinling/python3-runtime:0.0.2", "description": d}),
                ),
            ),
            ("runtime update", s.put(&format!("/v1/runtimes/{runtime}"), json!({ "description": d }))),
            ("webhook create", s.post("/v1/webhooks", json!({"function_id": fid, "description": d}))),
            ("webhook update", s.put(&format!("/v1/webhooks/{wid}"), json!({ "description": d }))),
            (
                "alias create",
                s.post(
                    "/v1/aliases",
                    json!({"name": "ok2", "function_id": fid, "function_version": 0, "description": d}),
                ),
            ),
            ("alias update", s.put("/v1/aliases/ok", json!({ "description": d }))),
            (
                "execution create",
                s.post("/v1/executions", json!({"function_id": fid, "description": d})),
            ),
            (
                "version create",
                s.post(&format!("/v1/functions/{fid}/versions"), json!({ "description": d })),
            ),
        ] {
            assert_refused(&format!("{label}, description {what}"), result, why(what));
        }
    }
    // Nothing bad was stored, and ordinary text (tabs and line breaks in a description,
    // 255 characters, non-ASCII) is still accepted.
    let (_, f) = s.get(&format!("/v1/functions/{fid}"));
    assert!(f["name"].is_null(), "{f}");
    let (_, execs) = s.get("/v1/executions");
    assert_eq!(execs["executions"], json!([]), "{execs}");
    let fine = "é".repeat(255);
    let (status, body) = s.put(
        &format!("/v1/functions/{fid}"),
        json!({"name": fine, "description": "two\nlines\tand a tab"}),
    );
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["name"], json!(fine));
}

/// Property 7: a server killed with SIGKILL while it wrote a package leaves its temporary
/// file (`.<sha256>.<pid>.tmp`, here half a package, in every package directory and under a
/// name of a package that is not stored); the next start removes them all and keeps the
/// stored packages.
#[test]
fn temporary_package_files_of_a_killed_server_are_removed_at_start() {
    let mut s = Server::start();
    let f = s.create_function("hello.py", HELLO, "hello.main", &[]);
    let fid = f["id"].as_str().unwrap().to_string();
    let pid = crate::hostile::server_pid(&s);
    s.kill9();
    let stored = s.package_files();
    assert_eq!(stored.len(), 1, "{stored:?}");
    let dir = stored[0].parent().unwrap().to_path_buf();
    let sha = stored[0]
        .file_stem()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    let other = "0f".repeat(32);
    let other_dir = s.data_dir.join("packages").join(&other[..2]);
    std::fs::create_dir_all(&other_dir).unwrap();
    let leftovers = [
        dir.join(format!(".{sha}.{pid}.tmp")),
        other_dir.join(format!(".{other}.{pid}.tmp")),
        // An older crash of a server whose pid is long gone.
        other_dir.join(format!(".{other}.4194000.tmp")),
    ];
    for path in &leftovers {
        std::fs::write(path, vec![b'x'; 1 << 20]).unwrap();
    }
    s.restart();
    let left: Vec<_> = leftovers.iter().filter(|p| p.exists()).collect();
    assert!(
        left.is_empty(),
        "temporary files survived the start: {left:?}"
    );
    assert_eq!(s.package_files(), stored);
    let e = s.execute(&fid, Some("again"));
    assert_eq!(result(&e)["output"], json!("Hello, again"), "{e}");
}
