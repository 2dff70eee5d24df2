//! Launchers of the runtimes added after python3 (nodejs, custom): how `serve` finds
//! each runtime's executable on the host and what the sandbox must show of it. The python3
//! launcher stays in `serve.rs`; these live apart so each runtime's host probing is in one place.

use std::path::{Path, PathBuf};

use anyhow::{Context, bail};
use qinling_pool::Launcher;

/// The environment every runtime worker starts with.
fn base_env() -> Vec<(std::ffi::OsString, std::ffi::OsString)> {
    vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), "/tmp".into()),
        ("TMPDIR".into(), "/tmp".into()),
    ]
}

/// The real executable behind `node` (which may be a wrapper or a symlink such as an nvm
/// shim) and its installation prefix (`<prefix>/bin/node`), which the sandbox shows read-only.
fn resolve_node(node: &Path) -> anyhow::Result<(PathBuf, PathBuf)> {
    #[expect(
        clippy::disallowed_methods,
        reason = "a one-off host probe at start-up, not a function worker"
    )]
    let out = std::process::Command::new(node)
        .args([
            "-e",
            "console.log(require('fs').realpathSync(process.execPath))",
        ])
        .env_remove("NODE_OPTIONS")
        .output()
        .with_context(|| format!("running {}", node.display()))?;
    if !out.status.success() {
        bail!(
            "{} failed: {}",
            node.display(),
            String::from_utf8_lossy(&out.stderr)
        );
    }
    let exe = PathBuf::from(String::from_utf8_lossy(&out.stdout).trim());
    let prefix = exe
        .parent()
        .and_then(Path::parent)
        .filter(|p| p.parent().is_some())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.clone());
    Ok((exe, prefix))
}

/// The nodejs runtime: `node nodejs.js`, the shim written next to the python one.
pub fn node_launcher(node: &Path, shim_dir: &Path) -> anyhow::Result<Launcher> {
    let (exe, prefix) = resolve_node(node)?;
    let shim = shim_dir.join("nodejs.js");
    std::fs::write(&shim, qinling_pool::shims::NODEJS)
        .with_context(|| format!("writing {}", shim.display()))?;
    Ok(Launcher {
        program: exe,
        args: vec![shim.into_os_string()],
        env: base_env(),
        read_only_paths: vec![prefix, shim_dir.to_path_buf()],
        // Node cannot wait for processes it did not start: orphans of its executions need
        // a pid 1 that reaps them.
        reaper: true,
    })
}

/// The custom runtime: the python3 interpreter (already required) running `custom.py`, which
/// starts the package's own executable once per execution.
pub fn custom_launcher(python: &Launcher, shim_dir: &Path) -> anyhow::Result<Launcher> {
    let shim = shim_dir.join("custom.py");
    std::fs::write(&shim, qinling_pool::shims::CUSTOM)
        .with_context(|| format!("writing {}", shim.display()))?;
    Ok(Launcher {
        args: vec!["-I".into(), "-B".into(), shim.into_os_string()],
        ..python.clone()
    })
}
