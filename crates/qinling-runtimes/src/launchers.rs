//! How `serve` finds each native runtime's executable on the host and what a worker's
//! sandbox must show of it: the interpreter behind a wrapper (a pyenv or nvm shim), its
//! installation prefix (shown read-only), the shim written to the server's runtime
//! directory, and the environment a worker starts with. The probes run the interpreter
//! once at start-up; they are host probes, not function workers.

use std::ffi::OsString;
use std::path::{Path, PathBuf};

use crate::shims;

/// How to start a worker of one runtime kind.
#[derive(Debug, Clone)]
pub struct Launcher {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub read_only_paths: Vec<PathBuf>,
    /// The sandbox's pid 1 reaps orphans around the program (see `LaunchSpec::reaper`).
    pub reaper: bool,
}

/// Why a runtime cannot be launched on this host.
#[derive(Debug, thiserror::Error)]
pub enum LaunchError {
    #[error("running {program}")]
    Probe {
        program: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("{program} failed: {stderr}")]
    Failed { program: PathBuf, stderr: String },
    #[error("writing {path}")]
    Write {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

/// The environment every runtime worker starts with.
fn base_env() -> Vec<(OsString, OsString)> {
    vec![
        ("PATH".into(), "/usr/local/bin:/usr/bin:/bin".into()),
        ("LANG".into(), "C.UTF-8".into()),
        ("HOME".into(), "/tmp".into()),
        ("TMPDIR".into(), "/tmp".into()),
    ]
}

/// Runs `program args` once and returns its stdout.
fn probe(program: &Path, args: &[&str]) -> Result<String, LaunchError> {
    #[expect(
        clippy::disallowed_methods,
        reason = "a one-off host probe at start-up, not a function worker"
    )]
    let out = std::process::Command::new(program)
        .args(args)
        .env_remove("NODE_OPTIONS")
        .output()
        .map_err(|source| LaunchError::Probe {
            program: program.to_path_buf(),
            source,
        })?;
    if !out.status.success() {
        return Err(LaunchError::Failed {
            program: program.to_path_buf(),
            stderr: String::from_utf8_lossy(&out.stderr).into_owned(),
        });
    }
    Ok(String::from_utf8_lossy(&out.stdout).into_owned())
}

/// Writes a shim into the runtime directory.
fn write_shim(shim_dir: &Path, name: &str, text: &str) -> Result<PathBuf, LaunchError> {
    let path = shim_dir.join(name);
    std::fs::write(&path, text).map_err(|source| LaunchError::Write {
        path: path.clone(),
        source,
    })?;
    Ok(path)
}

/// The python3 runtime: the real interpreter behind `python` (which may be a wrapper such
/// as a pyenv shim) running `python3.py`, with its installation prefix shown read-only.
pub fn python_launcher(python: &Path, shim_dir: &Path) -> Result<Launcher, LaunchError> {
    let text = probe(
        python,
        &[
            "-I",
            "-c",
            "import sys; print(sys.executable); print(sys.base_prefix)",
        ],
    )?;
    let mut lines = text.lines();
    let exe = PathBuf::from(lines.next().unwrap_or_default());
    let prefix = PathBuf::from(lines.next().unwrap_or_default());
    let shim = write_shim(shim_dir, "python3.py", shims::PYTHON3)?;
    Ok(Launcher {
        program: exe,
        args: vec!["-I".into(), "-B".into(), shim.into_os_string()],
        env: base_env(),
        read_only_paths: vec![prefix, shim_dir.to_path_buf()],
        reaper: false,
    })
}

/// The real executable behind `node` (which may be a wrapper or a symlink such as an nvm
/// shim) and its installation prefix (`<prefix>/bin/node`), which the sandbox shows read-only.
fn resolve_node(node: &Path) -> Result<(PathBuf, PathBuf), LaunchError> {
    let text = probe(
        node,
        &[
            "-e",
            "console.log(require('fs').realpathSync(process.execPath))",
        ],
    )?;
    let exe = PathBuf::from(text.trim());
    let prefix = exe
        .parent()
        .and_then(Path::parent)
        .filter(|p| p.parent().is_some())
        .map(Path::to_path_buf)
        .unwrap_or_else(|| exe.clone());
    Ok((exe, prefix))
}

/// The nodejs runtime: `node nodejs.js`, the shim written next to the python one.
pub fn node_launcher(node: &Path, shim_dir: &Path) -> Result<Launcher, LaunchError> {
    let (exe, prefix) = resolve_node(node)?;
    let shim = write_shim(shim_dir, "nodejs.js", shims::NODEJS)?;
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
pub fn custom_launcher(python: &Launcher, shim_dir: &Path) -> Result<Launcher, LaunchError> {
    let shim = write_shim(shim_dir, "custom.py", shims::CUSTOM)?;
    Ok(Launcher {
        args: vec!["-I".into(), "-B".into(), shim.into_os_string()],
        ..python.clone()
    })
}
