//! The plain-process backend: a worker is an ordinary child process with rlimits and its own
//! process group, and nothing else. It gives no isolation; the server uses it only when the
//! operator asks for `--insecure-no-sandbox`, and says so loudly.

use std::process::Stdio;

use crate::{Control, Exit, LaunchSpec, Limits, Sandbox, SandboxError, SandboxedProcess, Usage};

/// Starts workers as plain child processes.
#[derive(Debug, Default, Clone)]
pub struct ProcessSandbox;

struct ProcessControl {
    pgid: i32,
}

impl Control for ProcessControl {
    fn set_limits(&self, _limits: &Limits) -> Result<(), SandboxError> {
        // Without cgroups the per-worker limits cannot change after start; per-process
        // rlimits are applied by the runtime shim for each execution.
        Ok(())
    }

    fn usage(&self) -> Usage {
        Usage::default()
    }

    fn kill_all(&self) {
        // SAFETY: kill(2) with a negative pid signals a process group; no memory is touched.
        unsafe {
            libc::kill(-self.pgid, libc::SIGKILL);
        }
    }
}

impl Sandbox for ProcessSandbox {
    fn name(&self) -> &'static str {
        "process"
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<SandboxedProcess, SandboxError> {
        #[expect(clippy::disallowed_methods, reason = "this is the sandbox's spawner")]
        let mut cmd = tokio::process::Command::new(&spec.program);
        cmd.args(&spec.args)
            .env_clear()
            .envs(spec.env.iter().map(|(k, v)| (k, v)))
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .process_group(0);
        let nofile = spec.limits.nofile;
        // SAFETY: the closure runs in the forked child before exec and only calls
        // async-signal-safe functions (setrlimit, prctl).
        unsafe {
            cmd.pre_exec(move || {
                let lim = libc::rlimit {
                    rlim_cur: nofile,
                    rlim_max: nofile,
                };
                libc::setrlimit(libc::RLIMIT_NOFILE, &lim);
                libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL);
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(|source| SandboxError::Spawn {
            name: spec.name.clone(),
            source,
        })?;
        let pid = child.id();
        let pgid = pid.map(|p| p as i32).unwrap_or(0);
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        Ok(SandboxedProcess {
            pid,
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            control: Box::new(ProcessControl { pgid }),
            exit: Exit::of_child(child),
        })
    }

    fn unenforced(&self) -> Vec<String> {
        vec![
            "no isolation at all (--insecure-no-sandbox): functions run as the server's user and see the host".into(),
            "memory, cpu and pids limits per worker (no cgroups)".into(),
            "network isolation".into(),
        ]
    }

    /// Unsandboxed processes always have the host's network.
    fn network_unavailable(&self) -> Option<String> {
        None
    }
}
