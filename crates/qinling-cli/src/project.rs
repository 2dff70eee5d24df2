//! A function as a folder: `qinling init NAME --runtime R` writes one (a handler, a sample
//! input, a test in the language's own runner, a `qinling.toml` manifest and an ignore file),
//! `qinling deploy [DIR]` creates or updates the function the manifest names from it, and
//! `qinling run DIR` (in the binary: it needs the platform, not a server) reads the same
//! manifest. The manifest is the one description of a function the three share.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use clap::Args;
use serde::{Deserialize, Serialize};
use serde_json::Value;

use crate::Ctx;
use crate::function::{self, FUNCTIONS, Limits};
use crate::output;
use crate::package::{IGNORE_FILE, Package};
use crate::runtime::RUNTIMES;

/// The manifest's file name in a function's folder.
pub const MANIFEST: &str = "qinling.toml";

/// `qinling.toml`: what a folder deploys as.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
pub struct Manifest {
    /// The function's name (unique in the project: deploy updates the function of that name).
    pub name: String,
    /// A runtime name or id (`python3`, `nodejs`, `custom`, `wasm`).
    pub runtime: String,
    /// `module.function` for python3 and nodejs, the executable for custom, the module for
    /// wasm; guessed from the folder when absent.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub entry: Option<String>,
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub description: Option<String>,
    /// A file to send as the package instead of the zipped folder (a wasm build's module),
    /// relative to the folder.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub package: Option<PathBuf>,
    /// Millicpu.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub cpu: Option<u64>,
    /// Bytes.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub memory_size: Option<u64>,
    /// Seconds.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub timeout: Option<u64>,
    /// Outbound network access.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub network: Option<bool>,
    /// `fork` (a fresh process per execution) or `reuse` (the worker's long-lived process);
    /// absent: the runtime's default.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub execution_mode: Option<String>,
}

impl Manifest {
    /// The manifest of the function folder `dir`.
    pub fn load(dir: &Path) -> anyhow::Result<Manifest> {
        let path = dir.join(MANIFEST);
        let text = std::fs::read_to_string(&path).with_context(|| {
            format!(
                "cannot read {} (is {} a function folder? `qinling init NAME` makes one)",
                path.display(),
                dir.display()
            )
        })?;
        let manifest: Manifest =
            toml::from_str(&text).with_context(|| format!("{} is not valid", path.display()))?;
        if manifest.name.trim().is_empty() {
            bail!("{}: `name` is empty", path.display());
        }
        if let Some(mode) = manifest
            .execution_mode
            .as_deref()
            .filter(|m| !["fork", "reuse"].contains(m))
        {
            bail!(
                "{}: execution_mode must be 'fork' or 'reuse', not '{mode}'",
                path.display()
            );
        }
        Ok(manifest)
    }

    /// The folder's package: the manifest's `package` file, else the folder zipped.
    pub fn package(&self, dir: &Path) -> anyhow::Result<Package> {
        match &self.package {
            None => Package::from_path(dir),
            Some(file) => {
                let path = dir.join(file);
                if !path.exists() {
                    let how = if self.runtime == "wasm" {
                        format!(
                            "; build it first: `cargo build --release --target wasm32-wasip1` in {} (the target comes from `rustup target add wasm32-wasip1`)",
                            dir.display()
                        )
                    } else {
                        String::new()
                    };
                    bail!(
                        "{} names the package {}, which does not exist{how}",
                        MANIFEST,
                        path.display()
                    );
                }
                Package::from_path(&path)
            }
        }
    }

    /// The limits as the function commands take them.
    pub fn limits(&self) -> Limits {
        Limits {
            cpu: self.cpu,
            memory_size: self.memory_size,
            timeout: self.timeout,
            network: self.network,
            execution_mode: self.execution_mode.clone(),
        }
    }
}

/// `qinling init NAME --runtime R`.
#[derive(Debug, Args)]
pub struct InitArgs {
    /// The folder to create; its last component is the function's name.
    pub path: PathBuf,
    /// The runtime of the template.
    #[arg(long, short, value_parser = ["python3", "nodejs", "custom", "wasm"], default_value = "python3")]
    pub runtime: String,
}

/// `qinling deploy [DIR]`.
#[derive(Debug, Args)]
pub struct DeployArgs {
    /// The function folder (with a qinling.toml).
    #[arg(default_value = ".")]
    pub dir: PathBuf,
}

/// Writes a new function folder; refuses to write into a folder that has files.
pub fn init(args: &InitArgs) -> anyhow::Result<()> {
    let path = &args.path;
    let name = path
        .file_name()
        .and_then(|n| n.to_str())
        .with_context(|| format!("{} does not end in a folder name", path.display()))?
        .to_string();
    if path.exists() && std::fs::read_dir(path)?.next().is_some() {
        bail!(
            "{} already exists and is not empty; choose a new folder",
            path.display()
        );
    }
    std::fs::create_dir_all(path).with_context(|| format!("cannot create {}", path.display()))?;
    let files = template(&name, &args.runtime);
    for (file, content, mode) in &files {
        let target = path.join(file);
        if let Some(parent) = target.parent() {
            std::fs::create_dir_all(parent)?;
        }
        std::fs::write(&target, content)
            .with_context(|| format!("cannot write {}", target.display()))?;
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&target, std::fs::Permissions::from_mode(*mode))?;
    }
    let mut out = format!(
        "Created {} ({} function '{name}'):\n",
        path.display(),
        args.runtime
    );
    for (file, _, _) in &files {
        out.push_str(&format!("  {file}\n"));
    }
    let dir = path.display();
    let test = match args.runtime.as_str() {
        "python3" => "python3 -m unittest",
        "nodejs" => "node --test",
        "custom" => "./test.sh",
        _ => "cargo test",
    };
    out.push_str(&format!(
        "Next:\n  cd {dir}\n  {test}                      # its test\n"
    ));
    if args.runtime == "wasm" {
        out.push_str("  cargo build --release --target wasm32-wasip1   # `rustup target add wasm32-wasip1` once\n");
    }
    out.push_str(
        "  qinling run . --input @input.json   # run it here, in the sandbox, no server\n  qinling deploy                      # create or update it on the server\n",
    );
    output::emit(&out);
    Ok(())
}

/// The files of a new function folder: (path, content, mode).
fn template(name: &str, runtime: &str) -> Vec<(String, String, u32)> {
    let file = |path: &str, content: String| (path.to_string(), content, 0o644);
    let manifest = |entry: Option<&str>, package: Option<String>| {
        let manifest = Manifest {
            name: name.to_string(),
            runtime: runtime.to_string(),
            entry: entry.map(str::to_string),
            package: package.map(PathBuf::from),
            memory_size: Some(33_554_432),
            timeout: Some(5),
            // The runtime's default, written out so that it is seen (and changed) here.
            execution_mode: match runtime {
                "python3" => Some("fork".into()),
                "nodejs" => Some("reuse".into()),
                _ => None,
            },
            ..Manifest::default()
        };
        let text = toml::to_string(&manifest).expect("a manifest serializes");
        let text = match runtime {
            "python3" => text.replace(
                "execution_mode = \"fork\"\n",
                "# \"fork\": a fresh process per execution; \"reuse\" keeps module state (imports,\n# globals, caches) between the executions a worker runs.\nexecution_mode = \"fork\"\n",
            ),
            "nodejs" => text.replace(
                "execution_mode = \"reuse\"\n",
                "# \"reuse\": the module is loaded once and keeps its state between executions;\n# \"fork\" gives each execution a fresh process.\nexecution_mode = \"reuse\"\n",
            ),
            _ => text,
        };
        format!(
            "# The function this folder deploys as (`qinling deploy`, `qinling run .`).\n# cpu: millicpu, memory_size: bytes, timeout: seconds, network: outbound access.\n{text}"
        )
    };
    let input = file("input.json", "{\"name\": \"Qinling\"}\n".into());
    match runtime {
        "python3" => vec![
            file(
                "main.py",
                format!(
                    r#""""{name}: a Qinling function. `qinling run .` runs it here; `qinling deploy` ships it."""


def main(name="World", **kwargs):
    """Called with the input's keys as keyword arguments; returns the result."""
    print("greeting %s" % name)  # the execution's log
    return {{"greeting": "Hello, %s" % name}}
"#
                ),
            ),
            file(
                "test_main.py",
                r#"import unittest

import main


class MainTest(unittest.TestCase):
    def test_greets_by_name(self):
        self.assertEqual(main.main(name="Qinling"), {"greeting": "Hello, Qinling"})

    def test_greets_the_world_without_input(self):
        self.assertEqual(main.main(), {"greeting": "Hello, World"})


if __name__ == "__main__":
    unittest.main()
"#
                .into(),
            ),
            input,
            file(MANIFEST, manifest(Some("main.main"), None)),
            file(IGNORE_FILE, "test_*.py\ninput.json\n".into()),
        ],
        "nodejs" => vec![
            file(
                "index.js",
                format!(
                    r#"// {name}: a Qinling function. `qinling run .` runs it here; `qinling deploy` ships it.
// Called as main(context, input); may be async; the value it returns is the result.
exports.main = async (context, input) => {{
  const name = (input && input.name) || 'World';
  console.log(`greeting ${{name}}`); // the execution's log
  return {{ greeting: `Hello, ${{name}}` }};
}};
"#
                ),
            ),
            file(
                "index.test.js",
                r#"const test = require('node:test');
const assert = require('node:assert');
const { main } = require('./index.js');

test('greets by name', async () => {
  assert.deepStrictEqual(await main({}, { name: 'Qinling' }), { greeting: 'Hello, Qinling' });
});

test('greets the world without input', async () => {
  assert.deepStrictEqual(await main({}, null), { greeting: 'Hello, World' });
});
"#
                .into(),
            ),
            input,
            file(MANIFEST, manifest(Some("index.main"), None)),
            file(IGNORE_FILE, "*.test.js\ninput.json\n".into()),
        ],
        "custom" => vec![
            (
                "handler".into(),
                format!(
                    r#"#!/usr/bin/env python3
# {name}: a Qinling custom-runtime function: any executable in the package. It gets the
# input (JSON) on stdin and prints the result on stdout; what it writes to stderr is its log.
import json
import sys

raw = sys.stdin.read().strip()
data = json.loads(raw) if raw else {{}}
name = data.get("name", "World") if isinstance(data, dict) else "World"
print("greeting %s" % name, file=sys.stderr)
print(json.dumps({{"greeting": "Hello, %s" % name}}))
"#
                ),
                0o755,
            ),
            (
                "test.sh".into(),
                r#"#!/bin/sh
# The handler's test: run it as the platform does (input on stdin) and check its output.
set -eu
cd "$(dirname "$0")"
out=$(echo '{"name": "Qinling"}' | ./handler 2>/dev/null)
[ "$out" = '{"greeting": "Hello, Qinling"}' ] || { echo "FAIL: got $out"; exit 1; }
echo "ok"
"#
                .into(),
                0o755,
            ),
            input,
            file(MANIFEST, manifest(Some("handler"), None)),
            file(IGNORE_FILE, "test.sh\ninput.json\n".into()),
        ],
        _ => {
            let crate_name: String = name
                .chars()
                .map(|c| {
                    if c.is_ascii_alphanumeric() {
                        c.to_ascii_lowercase()
                    } else {
                        '_'
                    }
                })
                .collect();
            let crate_name = if crate_name.starts_with(|c: char| c.is_ascii_alphabetic()) {
                crate_name
            } else {
                format!("f_{crate_name}")
            };
            vec![
                file(
                    "Cargo.toml",
                    format!(
                        r#"[package]
name = "{crate_name}"
version = "0.1.0"
edition = "2021"

[dependencies]

[profile.release]
opt-level = "s"
strip = true

# A workspace of its own, so the folder builds wherever it is.
[workspace]
"#
                    ),
                ),
                file(
                    "src/main.rs",
                    format!(
                        r##"//! {name}: a Qinling wasm function, a WASI command module: the input (JSON) on stdin,
//! the result on stdout, the log on stderr. Build: `cargo build --release --target wasm32-wasip1`.

use std::io::Read;

fn main() {{
    let mut input = String::new();
    std::io::stdin().read_to_string(&mut input).expect("the input");
    eprintln!("got {{}} bytes of input", input.len());
    println!("{{}}", respond(input.trim()));
}}

/// The result for an input: the input echoed back.
fn respond(input: &str) -> String {{
    let input = if input.is_empty() {{ "null" }} else {{ input }};
    format!("{{{{\"echo\": {{input}}}}}}")
}}

#[cfg(test)]
mod tests {{
    #[test]
    fn echoes_its_input() {{
        assert_eq!(super::respond(r#"{{"a": 1}}"#), r#"{{"echo": {{"a": 1}}}}"#);
        assert_eq!(super::respond(""), r#"{{"echo": null}}"#);
    }}
}}
"##
                    ),
                ),
                input,
                file(
                    MANIFEST,
                    manifest(
                        None,
                        Some(format!("target/wasm32-wasip1/release/{crate_name}.wasm")),
                    ),
                ),
                file(IGNORE_FILE, "target/\n".into()),
            ]
        }
    }
}

/// Creates the manifest's function, or updates the one of that name (code, entry, limits).
pub(crate) async fn deploy(args: &DeployArgs, ctx: &Ctx) -> anyhow::Result<()> {
    let manifest = Manifest::load(&args.dir)?;
    let package = manifest.package(&args.dir)?;
    let client = &ctx.client;
    let runtime_id = RUNTIMES.resolve(client, &manifest.runtime).await?;
    let existing: Vec<Value> = FUNCTIONS
        .list(client, &[])
        .await?
        .into_iter()
        .filter(|f| f["name"] == manifest.name.as_str())
        .collect();
    let entry = manifest
        .entry
        .clone()
        .or_else(|| crate::package::guess_entry(&args.dir));
    let limits = manifest.limits();
    let (verb, function) = match existing.as_slice() {
        [] => (
            "Created",
            function::create(
                client,
                runtime_id,
                package,
                Some(manifest.name.clone()),
                manifest.description.clone(),
                entry,
                &limits,
            )
            .await?,
        ),
        [found] => {
            if found["runtime_id"] != runtime_id.as_str() {
                bail!(
                    "the function '{}' runs on runtime {}, the manifest says {}: a function's runtime cannot change (delete it first, or choose another name)",
                    manifest.name,
                    found["runtime_id"],
                    manifest.runtime
                );
            }
            let id = found["id"].as_str().context("a function without an id")?;
            (
                "Updated",
                function::update(
                    client,
                    id,
                    Some(package),
                    None,
                    manifest.description.clone(),
                    entry,
                    &limits,
                )
                .await?,
            )
        }
        _ => bail!(
            "more than one function is named '{}'; rename or delete the others first",
            manifest.name
        ),
    };
    let id = function["id"].as_str().unwrap_or_default();
    let input = if args.dir.join("input.json").is_file() {
        format!(" --input @{}", args.dir.join("input.json").display())
    } else {
        String::new()
    };
    output::emit(&format!(
        "{verb} function '{}' ({id}).\nInvoke it:\n  qinling function invoke {}{input}\n",
        manifest.name, manifest.name
    ));
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_template_has_a_manifest_that_loads() {
        for runtime in ["python3", "nodejs", "custom", "wasm"] {
            let dir = tempfile::tempdir().unwrap();
            let path = dir.path().join("my-fn");
            init(&InitArgs {
                path: path.clone(),
                runtime: runtime.into(),
            })
            .unwrap();
            let manifest = Manifest::load(&path).unwrap();
            assert_eq!(manifest.name, "my-fn");
            assert_eq!(manifest.runtime, runtime);
            let text = std::fs::read_to_string(path.join(MANIFEST)).unwrap();
            let (mode, comment) = match runtime {
                "python3" => (Some("fork"), "\"reuse\" keeps module state"),
                "nodejs" => (Some("reuse"), "keeps its state between executions"),
                _ => (None, ""),
            };
            assert_eq!(manifest.execution_mode.as_deref(), mode, "{text}");
            assert!(text.contains(comment), "{text}");
            assert!(path.join("input.json").is_file());
            if runtime == "wasm" {
                let error = manifest.package(&path).unwrap_err().to_string();
                assert!(
                    error.contains("cargo build --release --target wasm32-wasip1"),
                    "{error}"
                );
                assert!(error.contains("my_fn.wasm"), "{error}");
            } else {
                let package = manifest.package(&path).unwrap();
                let archive = zip::ZipArchive::new(std::io::Cursor::new(package.data)).unwrap();
                let mut archive = archive;
                let names: Vec<String> = (0..archive.len())
                    .map(|i| archive.by_index(i).unwrap().name().unwrap().to_string())
                    .collect();
                assert!(!names.iter().any(|n| n.contains("test")), "{names:?}");
                assert!(names.iter().any(|n| n == "qinling.toml"), "{names:?}");
            }
            // A second init into the same folder is refused, not merged.
            let again = init(&InitArgs {
                path: path.clone(),
                runtime: runtime.into(),
            });
            assert!(again.unwrap_err().to_string().contains("not empty"));
        }
    }

    #[test]
    fn a_manifest_with_an_unknown_key_says_which() {
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(
            dir.path().join(MANIFEST),
            "name = \"f\"\nruntime = \"python3\"\nmemory = 5\n",
        )
        .unwrap();
        let error = format!("{:#}", Manifest::load(dir.path()).unwrap_err());
        assert!(error.contains("memory"), "{error}");
        let missing = format!(
            "{:#}",
            Manifest::load(&dir.path().join("nope")).unwrap_err()
        );
        assert!(missing.contains("qinling init"), "{missing}");
        std::fs::write(
            dir.path().join(MANIFEST),
            "name = \"f\"\nruntime = \"python3\"\nexecution_mode = \"spawn\"\n",
        )
        .unwrap();
        let error = format!("{:#}", Manifest::load(dir.path()).unwrap_err());
        assert!(
            error.contains("execution_mode must be 'fork' or 'reuse', not 'spawn'"),
            "{error}"
        );
    }
}
