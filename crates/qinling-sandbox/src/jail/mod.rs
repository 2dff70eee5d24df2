//! The Linux jail: the default sandbox for native runtimes (python3 now, nodejs and custom
//! runtimes later).
//!
//! A jailed worker gets new user, pid, mount, ipc, uts, cgroup and network namespaces; a read-only root holding only the system directories, a few harmless `/etc`
//! files, generated `passwd`/`group`/`hosts`, a handful of device nodes and the launch's
//! read-only paths ([`plan`]); a private `/tmp` capped at `tmp_bytes`; its own `/proc`; an
//! unprivileged uid/gid; no capabilities; `no_new_privs`; a seccomp filter ([`seccomp`]);
//! rlimits for open files, processes and file size; and cgroups for memory, cpu and pids
//! ([`cgroup`]). How a launch proceeds:
//!
//! 1. the server creates the worker's cgroups and writes the limits;
//! 2. it spawns the init program ([`JailConfig::init_program`], `/proc/self/exe` by default,
//!    with the hidden argument [`INIT_ARG`]) with the worker's stdin/stdout pipes, fd 3 a
//!    control socket and fd 4 a status pipe, and moves it into the cgroups before it does
//!    anything, so every process of the worker is inside them;
//! 3. it sends the [`setup::InitConfig`] (JSON); the init enters the namespaces and says so;
//!    the server writes the uid/gid maps (as root: the jail's uid 0, the runtime's, is host
//!    uid [`JailConfig::host_uid`], 65534 by default — nobody, never root — and the
//!    executions' ids 1000..=1255 a host range of their own; unprivileged: the jail's uid 1000
//!    is the server's own); the init forks pid 1
//!    of the new pid namespace, which builds the root and `execve`s the runtime ([`init`],
//!    [`setup`]);
//! 4. `launch` returns once the runtime has been executed, or fails with the step that
//!    failed: a worker is never started outside a complete jail.
//!
//! # Network
//!
//! Every jail has a network namespace of its own. Without
//! [`LaunchSpec::network`](crate::LaunchSpec::network) it holds only loopback, brought up: the
//! worker can talk to itself and nothing else, the server included. With `network = true` the
//! server attaches a user-mode network stack to that namespace ([`net`], slirp4netns): the
//! worker gets outbound TCP/UDP and DNS through it, leaving with the host's address, but never
//! the host's loopback (where the API listens by default), interfaces, routes or abstract Unix
//! sockets. A networked launch fails when [`JailConfig::slirp4netns`] is not set.
//!
//! # Without root
//!
//! An unprivileged server still jails through a user namespace, but the kernel lets it map only
//! its own uid and gid, and makes it deny `setgroups`: functions then run as the server's host
//! uid (with the server's supplementary groups still counting in permission checks), and the
//! cgroups exist only where the hierarchy is delegated to that user. [`Sandbox::unenforced`]
//! lists what is missing on the machine at hand; the server prints it at start-up.
//!
//! # Limits after launch
//!
//! [`Control::set_limits`] rewrites the cgroup limits (memory, cpu, pids) of a live worker.
//! `nofile`, `fsize_bytes` and `tmp_bytes` are fixed when the jail is built (rlimits are
//! per process, the tmpfs size per mount): a pre-started pool worker has the pool's values,
//! and the runtime shim lowers the rlimits per execution.

mod cgroup;
mod init;
mod net;
mod plan;
#[cfg(target_arch = "x86_64")]
mod seccomp;
/// The filter is written for x86_64 only; elsewhere [`JailSandbox::new`] refuses.
#[cfg(not(target_arch = "x86_64"))]
mod seccomp {
    pub fn filter() -> Vec<libc::sock_filter> {
        Vec::new()
    }
}
mod setup;
pub mod sys;

use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;
use std::path::PathBuf;
use std::process::Stdio;
use std::time::{Duration, Instant};

pub use init::{INIT_ARG, init_main, run_init_if_requested};
pub use net::find_slirp4netns;
pub use plan::EXEC_IDS;

/// The variable that tells a runtime which ids to run executions under
/// (`<first>:<count>`); absent when executions share the runtime's id (an unprivileged server,
/// or no jail at all).
pub const EXEC_IDS_ENV: &str = "QINLING_EXEC_IDS";
#[cfg(target_arch = "x86_64")]
pub use seccomp::DENIED as SECCOMP_DENIED;

use crate::{Control, Exit, LaunchSpec, Limits, Sandbox, SandboxError, SandboxedProcess, Usage};
use cgroup::{Layout, Mounts, WorkerCgroup};
use plan::{Entry, Host};
use setup::InitConfig;

/// How the jail is set up on this machine.
#[derive(Debug, Clone)]
pub struct JailConfig {
    /// The program that runs the jail's init: a binary whose `main` starts with
    /// [`run_init_if_requested`]. The default, `/proc/self/exe`, is the server binary itself.
    pub init_program: PathBuf,
    /// Name of the directory, under the server's own cgroup in each hierarchy, that holds the
    /// worker cgroups.
    pub cgroup_name: String,
    /// The host uid and gid the runtime runs as when the server is root (inside it is uid 0
    /// of the jail's user namespace, with no capability outside it).
    pub host_uid: u32,
    pub host_gid: u32,
    /// The first of [`EXEC_IDS`] host uids (and gids) executions run as when the server is
    /// root (inside they are `1000 ..= 1255`): a range no host account uses. Every jail maps
    /// the same range; jails cannot see each other's processes or files.
    pub exec_host_id_base: u32,
    /// Whether a root server gives executions ids of their own (the default). Off, every jail
    /// maps one id, shared by the runtime and its executions, as before issue 16; kept for
    /// the spawn benchmark's comparison, not for production.
    pub exec_ids: bool,
    /// How long a launch may take to set up the jail.
    pub setup_timeout: Duration,
    /// The slirp4netns executable that gives networked jails egress; `None`: networked
    /// launches are refused.
    pub slirp4netns: Option<PathBuf>,
}

impl Default for JailConfig {
    fn default() -> Self {
        Self {
            init_program: "/proc/self/exe".into(),
            cgroup_name: "qinling".into(),
            host_uid: 65534,
            host_gid: 65534,
            exec_host_id_base: 2_000_000_000,
            exec_ids: true,
            setup_timeout: Duration::from_secs(10),
            slirp4netns: None,
        }
    }
}

/// Starts workers in Linux jails.
#[derive(Debug)]
pub struct JailSandbox {
    config: JailConfig,
    host: Host,
    /// The root's system part, without and with network.
    system: [Vec<Entry>; 2],
    layout: Layout,
    privileged: bool,
    /// Whether executions get ids of their own (root, and [`JailConfig::exec_ids`]).
    exec_ids: bool,
    /// Host ids the jail's uid/gid map to.
    outside_uid: u32,
    outside_gid: u32,
    unenforced: Vec<String>,
}

impl JailSandbox {
    /// Looks at the machine once: cgroup hierarchies, the host directories the jail shows,
    /// whether the server is root. Fails if the jail cannot work here at all.
    pub fn new(config: JailConfig) -> Result<Self, SandboxError> {
        if !cfg!(target_arch = "x86_64") {
            return Err(SandboxError::Unavailable(
                "the jail's seccomp filter is written for x86_64 only".into(),
            ));
        }
        let max_userns =
            std::fs::read_to_string("/proc/sys/user/max_user_namespaces").unwrap_or_default();
        if max_userns.trim() == "0" {
            return Err(SandboxError::Unavailable(
                "user namespaces are disabled (user.max_user_namespaces = 0)".into(),
            ));
        }
        // SAFETY: geteuid/getegid have no preconditions.
        let (euid, egid) = unsafe { (libc::geteuid(), libc::getegid()) };
        let privileged = euid == 0;
        let host = Host::new("/");
        let layout = Layout::discover(&Mounts::of_this_process(), &config.cgroup_name);
        layout.remove_stale_workers();
        let mut unenforced = layout.unenforced.clone();
        if !privileged {
            unenforced.push(
                "a separate host uid for functions: the server is not root, so functions run (in a user namespace) as the server's own uid".into(),
            );
            unenforced.push(
                "dropping supplementary groups: an unprivileged user namespace must deny setgroups, so the server user's groups still apply to functions".into(),
            );
        }
        if privileged {
            let range = config.exec_host_id_base..config.exec_host_id_base.saturating_add(EXEC_IDS);
            if range.end - range.start < EXEC_IDS
                || range.contains(&config.host_uid)
                || range.contains(&config.host_gid)
            {
                return Err(SandboxError::Unavailable(format!(
                    "the execution id range {}..{} must fit below 2^32 and not contain the runtime's host ids {}/{}",
                    range.start, range.end, config.host_uid, config.host_gid
                )));
            }
        } else {
            unenforced.push(
                "an id of its own for each execution: the server is not root, so it can map only its own uid into the jail, and executions of one worker share it with the runtime: they can signal each other and the runtime, and reach a sibling's memory through /proc (ptrace, process_vm_*, pidfd_getfd and kcmp stay denied; the python3 and custom runtimes make themselves non-dumpable)".into(),
            );
        }
        let (outside_uid, outside_gid) = if privileged {
            (config.host_uid, config.host_gid)
        } else {
            (euid, egid)
        };
        Ok(Self {
            system: [
                plan::system_entries(&host, false),
                plan::system_entries(&host, true),
            ],
            host,
            layout,
            privileged,
            exec_ids: privileged && config.exec_ids,
            outside_uid,
            outside_gid,
            unenforced,
            config,
        })
    }

    fn init_config(&self, spec: &LaunchSpec) -> Result<InitConfig, SandboxError> {
        let system = &self.system[usize::from(spec.network)];
        let mounts =
            plan::with_launch_paths(&self.host, system, &spec.read_only_paths, &spec.program)
                .map_err(|e| jail_error(&spec.name, &error_chain(&e)))?;
        // A privileged server maps a range of ids: the runtime runs as uid 0 of the jail's
        // user namespace with the three capabilities it needs to start each execution under
        // an id of its own, and is told which ids those are.
        let mut env = spec.env.clone();
        let (uid, gid, keep_caps) = if self.exec_ids {
            env.push((
                EXEC_IDS_ENV.into(),
                format!("{}:{}", plan::EXEC_FIRST_ID, EXEC_IDS).into(),
            ));
            (0, 0, setup::EXEC_SWITCH_CAPS)
        } else {
            (plan::JAIL_UID, plan::JAIL_GID, 0)
        };
        Ok(InitConfig {
            program: spec.program.clone(),
            args: spec.args.clone(),
            env,
            mounts,
            tmp_bytes: spec.limits.tmp_bytes,
            nofile: spec.limits.nofile,
            // The monitor runs as the same user in the same user namespace.
            nproc: u64::from(spec.limits.pids) + 1,
            fsize_bytes: spec.limits.fsize_bytes,
            reaper: spec.reaper,
            hostname: plan::JAIL_HOSTNAME.into(),
            uid,
            gid,
            clear_groups: self.privileged,
            keep_caps,
        })
    }
}

impl Drop for JailSandbox {
    fn drop(&mut self) {
        self.layout.remove_parents();
    }
}

fn jail_error(name: &str, reason: &str) -> SandboxError {
    SandboxError::Jail {
        name: name.to_string(),
        reason: reason.to_string(),
    }
}

fn error_chain(e: &dyn std::error::Error) -> String {
    let mut text = e.to_string();
    let mut source = e.source();
    while let Some(s) = source {
        text.push_str(": ");
        text.push_str(&s.to_string());
        source = s.source();
    }
    text
}

fn pipe() -> io::Result<(OwnedFd, OwnedFd)> {
    let mut fds = [0 as RawFd; 2];
    // SAFETY: `fds` is a valid out-array of two descriptors.
    if unsafe { libc::pipe2(fds.as_mut_ptr(), libc::O_CLOEXEC) } == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: both descriptors are new and owned by nothing else.
    Ok(unsafe { (OwnedFd::from_raw_fd(fds[0]), OwnedFd::from_raw_fd(fds[1])) })
}

/// A close-on-exec duplicate numbered 10 or more, so `dup2` onto 3 and 4 in the child
/// cannot overwrite the other source.
fn dup_high(fd: &impl AsRawFd) -> io::Result<OwnedFd> {
    // SAFETY: F_DUPFD_CLOEXEC returns a new descriptor or -1.
    let new = unsafe { libc::fcntl(fd.as_raw_fd(), libc::F_DUPFD_CLOEXEC, 10) };
    if new == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `new` is a new descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(new) })
}

fn pidfd_open(pid: u32) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) with integer arguments.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid as libc::pid_t, 0) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

/// Waits until `fd` is readable (data or end of file), or fails with `TimedOut` at `deadline`.
fn wait_readable(fd: &OwnedFd, deadline: Instant, what: &str) -> io::Result<()> {
    loop {
        let left = deadline.saturating_duration_since(Instant::now());
        let mut pfd = libc::pollfd {
            fd: fd.as_raw_fd(),
            events: libc::POLLIN,
            revents: 0,
        };
        // SAFETY: one valid pollfd.
        let n = unsafe { libc::poll(&mut pfd, 1, left.as_millis().min(i32::MAX as u128) as i32) };
        match n {
            -1 => {
                let e = io::Error::last_os_error();
                if e.kind() != io::ErrorKind::Interrupted {
                    return Err(e);
                }
            }
            0 => {
                return Err(io::Error::new(
                    io::ErrorKind::TimedOut,
                    format!("{what} did not finish in time"),
                ));
            }
            _ => return Ok(()),
        }
    }
}

/// Reads the status pipe to its end (the runtime was executed) or to the deadline.
fn read_status(status: &OwnedFd, deadline: Instant) -> io::Result<String> {
    let mut file = std::fs::File::from(status.try_clone()?);
    let mut out = Vec::new();
    loop {
        wait_readable(status, deadline, "the jail setup")?;
        let mut buf = [0u8; 4096];
        match file.read(&mut buf) {
            Ok(0) => return Ok(String::from_utf8_lossy(&out).into_owned()),
            Ok(n) => out.extend_from_slice(&buf[..n]),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
            Err(e) => return Err(e),
        }
    }
}

/// A worker's cgroup could not be made or joined; without root, a permission error says what
/// the jail needs and what the choices are.
fn cgroup_error(source: io::Error) -> SandboxError {
    // SAFETY: geteuid has no preconditions.
    let euid = unsafe { libc::geteuid() };
    if source.kind() == io::ErrorKind::PermissionDenied && euid != 0 {
        SandboxError::Unavailable(format!(
            "uid {euid} may not create the workers' cgroups or move processes into them ({source}): the jail limits each worker's memory, cpu and processes with cgroups, which needs root or a cgroup subtree delegated to this user (e.g. run it under `systemd-run --user --scope -p Delegate=yes`); for trusted code only, --insecure-no-sandbox runs functions without isolation"
        ))
    } else {
        SandboxError::Limit {
            what: "worker cgroup",
            source,
        }
    }
}

impl Sandbox for JailSandbox {
    fn name(&self) -> &'static str {
        "jail"
    }

    fn launch(&self, spec: &LaunchSpec) -> Result<SandboxedProcess, SandboxError> {
        if spec.network
            && let Some(why) = self.network_unavailable()
        {
            return Err(SandboxError::Unavailable(why));
        }
        let cfg = self.init_config(spec)?;
        let cgroup = WorkerCgroup::create(&self.layout, &spec.name).map_err(cgroup_error)?;
        cgroup.set_limits(&spec.limits)?;

        let spawn_err = |source| SandboxError::Spawn {
            name: spec.name.clone(),
            source,
        };
        let (mut ctl, ctl_low) = UnixStream::pair().map_err(spawn_err)?;
        let (status_read, status_low) = pipe().map_err(spawn_err)?;
        let ctl_child = dup_high(&ctl_low).map_err(spawn_err)?;
        let status_write = dup_high(&status_low).map_err(spawn_err)?;
        // Only the child may hold the write end, or the end of the pipe never comes.
        drop((ctl_low, status_low));

        #[expect(clippy::disallowed_methods, reason = "this is the sandbox's spawner")]
        let mut cmd = tokio::process::Command::new(&self.config.init_program);
        cmd.arg(INIT_ARG)
            .env_clear()
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .process_group(0);
        let (ctl_raw, status_raw) = (ctl_child.as_raw_fd(), status_write.as_raw_fd());
        // SAFETY: the closure runs in the forked child before exec and only calls dup2, which
        // is async-signal-safe. Both sources are >= 10, so neither is overwritten; the copies
        // on 3 and 4 are not close-on-exec.
        unsafe {
            cmd.pre_exec(move || {
                if libc::dup2(ctl_raw, init::CTL_FD) == -1
                    || libc::dup2(status_raw, init::STATUS_FD) == -1
                {
                    return Err(io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let mut child = cmd.spawn().map_err(spawn_err)?;
        drop(ctl_child);
        drop(status_write);
        let pid = child
            .id()
            .ok_or_else(|| spawn_err(io::Error::other("the init exited at once")))?;
        let monitor = pidfd_open(pid).map_err(spawn_err)?;
        cgroup.add_process(pid).map_err(cgroup_error)?;

        let deadline = Instant::now() + self.config.setup_timeout;
        let mut net = None;
        let handshake = (|| -> io::Result<()> {
            ctl.set_read_timeout(Some(self.config.setup_timeout))?;
            let body = serde_json::to_vec(&cfg).map_err(io::Error::other)?;
            let len = u32::try_from(body.len()).map_err(io::Error::other)?;
            ctl.write_all(&len.to_be_bytes())?;
            ctl.write_all(&body)?;
            let mut msg = [0u8; 1];
            ctl.read_exact(&mut msg)?;
            if msg != *b"U" {
                return Err(io::Error::new(
                    io::ErrorKind::InvalidData,
                    "unexpected message from the init",
                ));
            }
            self.write_id_maps(pid)?;
            if spec.network
                && let Some(program) = &self.config.slirp4netns
            {
                net = Some(net::attach(program, pid, self.privileged, deadline)?);
            }
            ctl.write_all(b"M")
        })();
        if handshake.is_err() {
            // The init may be stuck waiting for us; without it the status pipe ends at once.
            let _ = child.start_kill();
        }
        // The status pipe says what went wrong, whichever side noticed first.
        match (handshake, read_status(&status_read, deadline)) {
            (_, Ok(message)) if !message.is_empty() => {
                return Err(jail_error(&spec.name, message.trim_end()));
            }
            (Err(e), _) => return Err(jail_error(&spec.name, &format!("setup handshake: {e}"))),
            (Ok(()), Err(e)) => {
                return Err(jail_error(
                    &spec.name,
                    &format!("waiting for the runtime to start: {e}"),
                ));
            }
            (Ok(()), Ok(_)) => {}
        }
        ctl.set_read_timeout(None).map_err(spawn_err)?;

        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = child.stdout.take().expect("stdout is piped");
        let control = JailControl {
            cgroup,
            monitor,
            _lifeline: ctl,
            _net: net,
        };
        Ok(SandboxedProcess {
            pid: Some(pid),
            stdin: Box::new(stdin),
            stdout: Box::new(stdout),
            control: Box::new(control),
            exit: Exit::of_child(child),
        })
    }

    fn unenforced(&self) -> Vec<String> {
        self.unenforced.clone()
    }

    fn network_unavailable(&self) -> Option<String> {
        match &self.config.slirp4netns {
            Some(_) => None,
            None => Some(
                "functions cannot be given network access: slirp4netns was not found on this server (install it, e.g. `apt-get install slirp4netns`, or name it with --slirp4netns)".into(),
            ),
        }
    }
}

impl JailSandbox {
    /// Maps the jail's uid and gid to the host ids (the kernel allows this to a process in
    /// the parent user namespace with CAP_SETUID/CAP_SETGID there, or for its own ids only).
    fn write_id_maps(&self, pid: u32) -> io::Result<()> {
        let proc = PathBuf::from(format!("/proc/{pid}"));
        if !self.privileged {
            std::fs::write(proc.join("setgroups"), "deny")?;
        }
        if !self.exec_ids {
            std::fs::write(
                proc.join("uid_map"),
                format!("{} {} 1\n", plan::JAIL_UID, self.outside_uid),
            )?;
            return std::fs::write(
                proc.join("gid_map"),
                format!("{} {} 1\n", plan::JAIL_GID, self.outside_gid),
            );
        }
        // The runtime's id, then the executions' range (one write each: a map is written once).
        let base = self.config.exec_host_id_base;
        std::fs::write(
            proc.join("uid_map"),
            format!(
                "0 {} 1\n{} {base} {EXEC_IDS}\n",
                self.outside_uid,
                plan::EXEC_FIRST_ID
            ),
        )?;
        std::fs::write(
            proc.join("gid_map"),
            format!(
                "0 {} 1\n{} {base} {EXEC_IDS}\n",
                self.outside_gid,
                plan::EXEC_FIRST_ID
            ),
        )
    }
}

/// A jailed worker's handle: its cgroups, the monitor's pidfd, the control socket whose
/// closing kills the jail, and the network stack of a networked jail (dropped after the kill).
struct JailControl {
    cgroup: WorkerCgroup,
    monitor: OwnedFd,
    _lifeline: UnixStream,
    _net: Option<net::Slirp>,
}

impl Control for JailControl {
    fn set_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        self.cgroup.set_limits(limits)
    }

    fn usage(&self) -> Usage {
        self.cgroup.usage()
    }

    fn kill_all(&self) {
        self.cgroup.kill_all();
        // Without cgroups this is what kills the jail: its pid 1 dies with the monitor
        // (PDEATHSIG), and the kernel kills the rest of the pid namespace with it.
        // SAFETY: pidfd_send_signal(2) on our own pidfd; no memory is passed. A pidfd cannot
        // name a recycled pid.
        unsafe {
            libc::syscall(
                libc::SYS_pidfd_send_signal,
                self.monitor.as_raw_fd(),
                libc::SIGKILL,
                std::ptr::null::<u8>(),
                0,
            );
        }
    }
}

impl Drop for JailControl {
    fn drop(&mut self) {
        // The cgroup's own Drop removes the directories after killing what is in them.
        self.kill_all();
    }
}
