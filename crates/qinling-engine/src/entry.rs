//! A function's `entry`, checked at create and update against its runtime and its package:
//! whatever the runtime makes of it must resolve to something *inside* the package. A
//! shim resolves the entry against the package directory, so an entry with `..`, an
//! absolute path or a module the runtime finds elsewhere (Python's standard library, a
//! host `node_modules`) would run code that is not the function's. The shims check again
//! when they load it (defence in depth); this is where the user hears about it, as a 400.
//!
//! Per runtime: python3 — `module.path.function` of identifiers whose top-level module is
//! in the package (`m.py`, `m/`, or a compiled `m.*.so`/`m.pyc`); nodejs — `module.function`
//! whose module path is relative, without `.` or `..` segments, and in the package (`m`,
//! `m.js`, `m.cjs`, `m.mjs`, `m.json`, `m.node` or a directory `m/`, also with the dots of
//! `m` read as directories); custom — the relative path of a file in the package; wasm —
//! the module's name in the package (the compiler checks it is there). Every entry: at most
//! 255 characters, no control characters, no backslashes.

use qinling_types::{Error, RuntimeKind};

const MAX_ENTRY_CHARS: usize = 255;
const NODE_EXTENSIONS: &[&str] = &["", ".js", ".cjs", ".mjs", ".json", ".node"];

fn invalid(entry: &str, why: &str) -> Error {
    Error::input(format!("Invalid entry '{}': {why}.", entry.escape_debug()))
}

/// Checks `entry` for a function of runtime `kind` whose package holds the files `names`
/// (zip member names; `None` when the package is not a zip, as a wasm module may be).
pub fn check_entry(
    kind: Option<RuntimeKind>,
    entry: &str,
    names: Option<&[String]>,
) -> Result<(), Error> {
    if entry.chars().count() > MAX_ENTRY_CHARS {
        return Err(invalid(entry, "at most 255 characters are allowed"));
    }
    if entry.chars().any(char::is_control) {
        return Err(invalid(entry, "control characters are not allowed"));
    }
    if entry.contains('\\') {
        return Err(invalid(entry, "use '/' between directories, not '\\'"));
    }
    if entry.starts_with('/') {
        return Err(invalid(
            entry,
            "it must name something inside the package, not an absolute path",
        ));
    }
    if entry.split('/').any(|c| c == "..") {
        return Err(invalid(
            entry,
            "'..' would leave the package; name something inside it",
        ));
    }
    let names = names.unwrap_or(&[]);
    match kind {
        Some(RuntimeKind::Python3) => check_python(entry, names),
        Some(RuntimeKind::Nodejs) => check_node(entry, names),
        Some(RuntimeKind::Custom) => check_custom(entry, names),
        Some(RuntimeKind::Wasm) | None => Ok(()),
    }
}

fn is_identifier(s: &str) -> bool {
    let mut chars = s.chars();
    chars.next().is_some_and(|c| c == '_' || c.is_alphabetic())
        && chars.all(|c| c == '_' || c.is_alphanumeric())
}

fn normal(name: &str) -> &str {
    name.trim_start_matches("./")
}

fn check_python(entry: &str, names: &[String]) -> Result<(), Error> {
    if !entry.split('.').all(is_identifier) {
        return Err(invalid(
            entry,
            "a python3 entry is <module>.<function>, dotted names of a module inside the package (e.g. main.main or pkg.mod.handler)",
        ));
    }
    let (module, _) = entry.rsplit_once('.').unwrap_or((entry, "main"));
    let top = module.split('.').next().unwrap_or(module);
    let present = names.iter().map(|n| normal(n)).any(|n| {
        n == format!("{top}.py")
            || n.starts_with(&format!("{top}/"))
            || (n.starts_with(&format!("{top}."))
                && !n[top.len() + 1..].contains('/')
                && (n.ends_with(".so") || n.ends_with(".pyc")))
    });
    if !present {
        return Err(invalid(
            entry,
            &format!(
                "the package has no module '{top}' ({top}.py or a directory {top}/ at its root); the entry must name a module inside the package"
            ),
        ));
    }
    Ok(())
}

fn check_node(entry: &str, names: &[String]) -> Result<(), Error> {
    let module = match entry.rfind('.') {
        Some(dot) if dot > 0 => &entry[..dot],
        _ => entry,
    };
    if module
        .split('/')
        .any(|c| c.is_empty() || c == "." || c == "..")
        || module.starts_with('.')
    {
        return Err(invalid(
            entry,
            "a nodejs entry is <module path>.<export> with a relative module path inside the package (e.g. index.main or lib/handler.main)",
        ));
    }
    let candidates = [module.to_string(), module.replace('.', "/")];
    let present = names.iter().map(|n| normal(n)).any(|n| {
        candidates.iter().any(|m| {
            NODE_EXTENSIONS.iter().any(|ext| n == format!("{m}{ext}"))
                || n.starts_with(&format!("{m}/"))
        })
    });
    if !present {
        return Err(invalid(
            entry,
            &format!(
                "the package has no module '{module}' ({module}.js or a directory {module}/); the entry must name a module inside the package"
            ),
        ));
    }
    Ok(())
}

fn check_custom(entry: &str, names: &[String]) -> Result<(), Error> {
    let path = normal(entry);
    if path.split('/').any(|c| c.is_empty() || c == ".") {
        return Err(invalid(
            entry,
            "a custom entry is the relative path of the executable inside the package (e.g. handler or bin/run)",
        ));
    }
    if !names.iter().any(|n| normal(n) == path) {
        return Err(invalid(
            entry,
            &format!(
                "the package has no file '{path}'; the entry is the path of the executable inside the package"
            ),
        ));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_stay_inside_the_package() {
        let names: Vec<String> = [
            "main.py",
            "pkg/__init__.py",
            "pkg/mod.py",
            "fast.cpython-311-x86_64-linux-gnu.so",
            "index.js",
            "lib/handler.js",
            "bin/run",
            "./handler",
        ]
        .iter()
        .map(|s| s.to_string())
        .collect();
        let py = Some(RuntimeKind::Python3);
        let node = Some(RuntimeKind::Nodejs);
        let custom = Some(RuntimeKind::Custom);
        let ok: &[(Option<RuntimeKind>, &str)] = &[
            (py, "main.main"),
            (py, "main"),
            (py, "pkg.mod.handler"),
            (py, "fast.run"),
            (node, "index.main"),
            (node, "index"),
            (node, "lib/handler.main"),
            (node, "lib.handler.main"),
            (custom, "bin/run"),
            (custom, "handler"),
            (Some(RuntimeKind::Wasm), "module.wasm"),
        ];
        for (kind, entry) in ok {
            assert!(
                check_entry(*kind, entry, Some(&names)).is_ok(),
                "{kind:?} {entry}: {:?}",
                check_entry(*kind, entry, Some(&names))
            );
        }
        let bad: &[(Option<RuntimeKind>, &str, &str)] = &[
            (py, "os.system", "no module 'os'"),
            (py, "..main.main", "dotted names"),
            (py, "../main.main", "'..' would leave"),
            (py, "/etc/passwd", "absolute path"),
            (py, "main.ma in", "dotted names"),
            (py, "main\0.main", "control characters"),
            (
                node,
                "../../usr/lib/node_modules/npm/index.main",
                "'..' would leave",
            ),
            (
                node,
                "/usr/lib/node_modules/npm/index.main",
                "absolute path",
            ),
            (node, "fs.readFileSync", "no module 'fs'"),
            (node, "child_process.exec", "no module 'child_process'"),
            (node, "./index.main", "relative module path"),
            (node, "lib//handler.main", "relative module path"),
            (custom, "../../bin/sh", "'..' would leave"),
            (custom, "/bin/sh", "absolute path"),
            (custom, "bin/nope", "no file 'bin/nope'"),
            (custom, "bin\\run", "not '\\'"),
            (Some(RuntimeKind::Wasm), "../x.wasm", "'..' would leave"),
        ];
        for (kind, entry, why) in bad {
            let err = check_entry(*kind, entry, Some(&names))
                .expect_err(entry)
                .to_string();
            assert!(err.contains(why), "{kind:?} {entry}: {err}");
            assert!(err.starts_with("Invalid entry '"), "{err}");
        }
        let long = format!("{}.main", "m".repeat(300));
        assert!(check_entry(py, &long, Some(&names)).is_err());
    }
}
