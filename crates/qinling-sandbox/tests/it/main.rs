//! Integration tests of the sandbox backends, one binary: the jail launched for real through
//! the `qinling-jail-init` program, probed from inside with `/bin/sh` and Python.
//!
//! Tests that need root (namespaces as root, cgroups) print `skipping: …` and return when not
//! root. Every test goes through [`run`] or [`launch`] and a fresh [`sandbox`] whose cgroup
//! directory name is unique, so tests run in parallel without seeing each other.

mod bench;
mod cgroups;
mod isolation;
mod limits;

use std::path::{Path, PathBuf};
use std::sync::OnceLock;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::Duration;

use qinling_sandbox::{JailConfig, JailSandbox, LaunchSpec, Limits, Sandbox, SandboxedProcess};
use tokio::io::{AsyncBufReadExt, AsyncReadExt, AsyncWriteExt, BufReader};

pub fn is_root() -> bool {
    // SAFETY: geteuid has no preconditions.
    unsafe { libc::geteuid() == 0 }
}

/// Returns from the test, saying why, when not root.
#[macro_export]
macro_rules! require_root {
    () => {
        if !$crate::is_root() {
            eprintln!(
                "skipping {}: needs root (user namespaces mapped to another uid, cgroups)",
                module_path!()
            );
            return;
        }
    };
}

/// A jail with its own cgroup directory name.
pub fn sandbox() -> JailSandbox {
    JailSandbox::new(sandbox_config()).expect("jail sandbox")
}

/// The configuration of [`sandbox`], for tests that change one setting.
pub fn sandbox_config() -> JailConfig {
    static N: AtomicU32 = AtomicU32::new(0);
    JailConfig {
        init_program: env!("CARGO_BIN_EXE_qinling-jail-init").into(),
        cgroup_name: format!(
            "qinling-test-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ),
        ..JailConfig::default()
    }
}

/// The real python3 behind `python3` on PATH (a pyenv shim here) and its prefix, which the
/// jail must show: on this machine it lives under /root, which is otherwise hidden.
pub fn python() -> &'static (PathBuf, PathBuf) {
    static PY: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    PY.get_or_init(|| {
        #[expect(clippy::disallowed_methods, reason = "a host probe in a test")]
        let out = std::process::Command::new("python3")
            .args([
                "-I",
                "-c",
                "import sys; print(sys.executable); print(sys.base_prefix)",
            ])
            .output()
            .expect("python3 on PATH");
        let text = String::from_utf8(out.stdout).unwrap();
        let mut lines = text.lines();
        (lines.next().unwrap().into(), lines.next().unwrap().into())
    })
}

pub fn sh(script: &str) -> LaunchSpec {
    LaunchSpec {
        name: "sh".into(),
        program: "/bin/sh".into(),
        args: vec!["-c".into(), script.into()],
        env: vec![("PATH".into(), "/usr/bin:/bin".into())],
        read_only_paths: vec![],
        limits: Limits::default(),
        network: false,
        reaper: false,
    }
}

pub fn py(code: &str) -> LaunchSpec {
    let (exe, prefix) = python();
    LaunchSpec {
        name: "py".into(),
        program: exe.clone(),
        args: vec!["-I".into(), "-B".into(), "-c".into(), code.into()],
        env: vec![
            ("PATH".into(), "/usr/bin:/bin".into()),
            ("LANG".into(), "C.UTF-8".into()),
        ],
        read_only_paths: vec![prefix.clone()],
        limits: Limits::default(),
        network: false,
        reaper: false,
    }
}

pub fn launch(sb: &JailSandbox, spec: &LaunchSpec) -> SandboxedProcess {
    sb.launch(spec)
        .unwrap_or_else(|e| panic!("launch {}: {}", spec.name, chain(&e)))
}

pub fn chain(e: &dyn std::error::Error) -> String {
    let mut s = e.to_string();
    let mut src = e.source();
    while let Some(x) = src {
        s.push_str(&format!(": {x}"));
        src = x.source();
    }
    s
}

pub struct Output {
    pub status: std::process::ExitStatus,
    pub stdout: String,
}

/// Launches, gives `input` on stdin (then end of file), reads stdout to its end, waits.
pub async fn run_with(sb: &JailSandbox, spec: &LaunchSpec, input: &str) -> Output {
    let mut p = launch(sb, spec);
    p.stdin.write_all(input.as_bytes()).await.unwrap();
    drop(p.stdin);
    let mut stdout = String::new();
    tokio::time::timeout(
        Duration::from_secs(60),
        p.stdout.read_to_string(&mut stdout),
    )
    .await
    .expect("worker finishes")
    .unwrap();
    let status = p.exit.wait().await.unwrap();
    Output { status, stdout }
}

pub async fn run(sb: &JailSandbox, spec: &LaunchSpec) -> Output {
    run_with(sb, spec, "").await
}

/// Reads one line from a worker's stdout.
pub async fn read_line(reader: &mut BufReader<qinling_sandbox::Reader>) -> String {
    let mut line = String::new();
    tokio::time::timeout(Duration::from_secs(30), reader.read_line(&mut line))
        .await
        .expect("a line")
        .unwrap();
    line.trim_end().to_string()
}

/// The directory of `pid`'s cgroup in the hierarchy with `controller` (`""` for cgroup v2).
pub fn cgroup_dir(pid: u32, controller: &str) -> Option<PathBuf> {
    let text = std::fs::read_to_string(format!("/proc/{pid}/cgroup")).ok()?;
    let path = text.lines().find_map(|l| {
        let mut parts = l.splitn(3, ':');
        let (_, cs, path) = (parts.next()?, parts.next()?, parts.next()?);
        let hit = if controller.is_empty() {
            cs.is_empty()
        } else {
            cs.split(',').any(|c| c == controller)
        };
        hit.then(|| path.to_string())
    })?;
    let mount = if controller.is_empty() {
        "unified".to_string()
    } else {
        controller.to_string()
    };
    Some(
        Path::new("/sys/fs/cgroup")
            .join(mount)
            .join(path.trim_start_matches('/')),
    )
}

pub fn read(path: &Path) -> String {
    std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("{}: {e}", path.display()))
        .trim()
        .to_string()
}
