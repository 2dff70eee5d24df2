//! Egress for networked jails: a user-mode network stack (slirp4netns) attached to the
//! jail's own network namespace.
//!
//! Every jail has a network namespace of its own. A launch that asks for the network gets one
//! more process next to it: `slirp4netns --configure --disable-host-loopback <pid> tap0`, run by
//! the server in the host's namespace. It creates a tap device in the jail (10.0.2.100/24,
//! gateway 10.0.2.2, DNS forwarder 10.0.2.3, MTU 65520) and carries the jail's TCP and UDP
//! traffic out through ordinary sockets of its own, so connections leave with the host's
//! address and routing, and the jail never shares a namespace, an interface or a route with the
//! host. `--disable-host-loopback` refuses connections to the gateway address, which would
//! otherwise reach services bound to the host's 127.0.0.1 — the Qinling API among them. When
//! the server is root, slirp4netns also confines itself (`--enable-sandbox`,
//! `--enable-seccomp`).
//!
//! The stack lives exactly as long as the worker: it exits when the write end of its exit pipe
//! closes (held by the worker's control handle, so also when the server dies), and [`Slirp`]'s
//! `Drop` kills and reaps it.

use std::fs::File;
use std::io::{self, Read, Seek};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd};
use std::path::Path;
use std::process::{Child, Stdio};
use std::time::Instant;

/// The descriptors slirp4netns gets for its exit and ready pipes.
const EXIT_FD: i32 = 3;
const READY_FD: i32 = 4;

/// The interface slirp4netns creates inside the jail.
pub const TAP_NAME: &str = "tap0";

/// A running slirp4netns attached to one jail.
#[derive(Debug)]
pub struct Slirp {
    child: Child,
    /// Closing this (dropping the handle, or the server dying) makes slirp4netns exit.
    _exit: OwnedFd,
}

impl Drop for Slirp {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `program` (slirp4netns) for the network namespace of `pid` and waits until the
/// jail's interface is configured, or `deadline`.
pub fn attach(program: &Path, pid: u32, privileged: bool, deadline: Instant) -> io::Result<Slirp> {
    let (exit_read, exit_write) = super::pipe()?;
    let (ready_read, ready_write) = super::pipe()?;
    let exit_src = super::dup_high(&exit_read)?;
    let ready_src = super::dup_high(&ready_write)?;
    drop((exit_read, ready_write));
    // Its messages go to an anonymous file, read only when the attach fails: a pipe nobody
    // drains could fill and stall the stack later.
    let log = memfd("slirp4netns-log")?;

    #[expect(
        clippy::disallowed_methods,
        reason = "the sandbox's own helper process, started next to a jail"
    )]
    let mut cmd = std::process::Command::new(program);
    cmd.args(["--configure", "--mtu=65520", "--disable-host-loopback"])
        .arg(format!("--exit-fd={EXIT_FD}"))
        .arg(format!("--ready-fd={READY_FD}"));
    if privileged {
        cmd.args(["--enable-sandbox", "--enable-seccomp"]);
    } else {
        // Unprivileged, it must join the jail's user namespace to configure the interface.
        cmd.arg(format!("--userns-path=/proc/{pid}/ns/user"));
    }
    cmd.arg(pid.to_string())
        .arg(TAP_NAME)
        .env_clear()
        .stdin(Stdio::null())
        .stdout(Stdio::from(log.try_clone()?))
        .stderr(Stdio::from(log.try_clone()?));
    let (exit_raw, ready_raw) = (exit_src.as_raw_fd(), ready_src.as_raw_fd());
    // SAFETY: runs in the forked child before exec and only calls dup2 (async-signal-safe);
    // both sources are >= 10, so neither is overwritten, and the copies are not close-on-exec.
    unsafe {
        use std::os::unix::process::CommandExt;
        cmd.pre_exec(move || {
            if libc::dup2(exit_raw, EXIT_FD) == -1 || libc::dup2(ready_raw, READY_FD) == -1 {
                return Err(io::Error::last_os_error());
            }
            Ok(())
        });
    }
    let child = cmd
        .spawn()
        .map_err(|e| io::Error::new(e.kind(), format!("starting {}: {e}", program.display())))?;
    drop((exit_src, ready_src));
    let slirp = Slirp {
        child,
        _exit: exit_write,
    };
    match wait_ready(&ready_read, deadline) {
        Ok(()) => Ok(slirp),
        Err(e) => {
            drop(slirp);
            let mut said = String::new();
            let mut log = log;
            let _ = log.rewind();
            let _ = log.take(4096).read_to_string(&mut said);
            Err(io::Error::new(
                e.kind(),
                format!("slirp4netns: {e}: {}", said.trim()),
            ))
        }
    }
}

/// Waits for slirp4netns's ready byte; an end of file means it exited first.
fn wait_ready(ready: &OwnedFd, deadline: Instant) -> io::Result<()> {
    let mut byte = [0u8; 1];
    let mut file = File::from(ready.try_clone()?);
    loop {
        super::wait_readable(ready, deadline, "configuring the network")?;
        return match file.read(&mut byte) {
            Ok(1) => Ok(()),
            Ok(_) => Err(io::Error::new(
                io::ErrorKind::UnexpectedEof,
                "exited before configuring the network",
            )),
            Err(e) if e.kind() == io::ErrorKind::Interrupted => continue,
            Err(e) => Err(e),
        };
    }
}

fn memfd(name: &str) -> io::Result<File> {
    let name = std::ffi::CString::new(name).map_err(io::Error::other)?;
    // SAFETY: a valid C string; the flags are constants.
    let fd = unsafe { libc::memfd_create(name.as_ptr(), libc::MFD_CLOEXEC) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: a new descriptor owned by nothing else.
    Ok(unsafe { File::from_raw_fd(fd) })
}

/// The slirp4netns executable on `PATH` (or in the usual system directories), if installed.
pub fn find_slirp4netns() -> Option<std::path::PathBuf> {
    let path = std::env::var_os("PATH").unwrap_or_default();
    std::env::split_paths(&path)
        .chain(["/usr/bin", "/usr/sbin", "/bin", "/usr/local/bin"].map(Into::into))
        .map(|dir| dir.join("slirp4netns"))
        .find(|p| {
            use std::os::unix::fs::PermissionsExt;
            p.metadata()
                .is_ok_and(|m| m.is_file() && m.permissions().mode() & 0o111 != 0)
        })
}
