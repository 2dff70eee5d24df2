//! The jail's init: the program the server starts for every jailed worker.
//!
//! It runs as two processes. The *monitor* is what the server spawned (and holds as the
//! worker's `Child`); it reads its configuration, enters the namespaces, waits for the server
//! to write its uid/gid maps, takes the read-only trees, drops to the jail's user and forks.
//! The child is pid 1 of the new pid namespace: it builds the root, confines itself and
//! `execve`s the runtime, which therefore is pid 1 too (orphans reparent to it, and when it
//! exits the kernel kills everything left in the namespace). The fork is what a new pid
//! namespace requires — `unshare(CLONE_NEWPID)` puts only the caller's children in it — and
//! the monitor has to exist anyway because the server's handle is a `tokio::process::Child`,
//! which only `Command::spawn` makes.
//!
//! The monitor then waits. It forwards the runtime's end to the server (same exit code, or
//! death by the same signal), and kills the runtime when the server goes away: it holds one
//! end of the control socket whose other end the server keeps in the worker's `Control`, so
//! a closed socket (the server exited, crashed, or dropped the worker) kills the jail. The
//! runtime also has `PR_SET_PDEATHSIG = SIGKILL` towards the monitor, so killing the monitor
//! kills the jail. (`PDEATHSIG` towards the *server* would be wrong: it fires when the server
//! *thread* that spawned the process exits, and tokio retires idle blocking threads.)
//!
//! Descriptors given by the server: fd 3 is the control socket (configuration in, the `U`/`M`
//! handshake, then the lifeline), fd 4 the write end of the status pipe, on which a failed
//! setup writes one line before exiting. It is close-on-exec, so a successful `execve` closes
//! it and the server reads end-of-file: that is how `launch` knows the runtime is running in a
//! complete jail, and never returns a worker whose jail failed half way.

use std::ffi::OsStr;
use std::fs::File;
use std::io::{self, Read, Write};
use std::os::fd::{AsRawFd, FromRawFd, OwnedFd, RawFd};
use std::os::unix::net::UnixStream;

use super::setup::{self, InitConfig, SetupError};
use super::sys::{LinuxSys, Sys};

/// The hidden first argument that makes a binary run the jail's init (see [`run_init_if_requested`]).
pub const INIT_ARG: &str = "__qinling-jail-init";

pub(crate) const CTL_FD: RawFd = 3;
pub(crate) const STATUS_FD: RawFd = 4;

/// Largest configuration the init accepts.
const MAX_CONFIG: usize = 16 << 20;

/// Runs the jail's init if this process was started as one, and never returns then;
/// otherwise returns at once. Call it first thing in `main` of any binary used as
/// [`JailConfig::init_program`](super::JailConfig::init_program), before any thread starts
/// (a multi-threaded process cannot enter a new user namespace).
pub fn run_init_if_requested() {
    if std::env::args_os().nth(1).as_deref() == Some(OsStr::new(INIT_ARG)) {
        init_main()
    }
}

/// The jail's init. Expects the descriptors `launch` passes; exits with the runtime's status.
pub fn init_main() -> ! {
    for fd in [CTL_FD, STATUS_FD] {
        // SAFETY: F_SETFD on a number that may not be open only reports EBADF.
        if unsafe { libc::fcntl(fd, libc::F_SETFD, libc::FD_CLOEXEC) } == -1 {
            eprintln!(
                "{INIT_ARG}: descriptor {fd} missing: this is started by the qinling jail sandbox only"
            );
            std::process::exit(2);
        }
    }
    // SAFETY: fds 3 and 4 were opened for this process by `launch` and nothing else in it owns them.
    let (ctl, status) = unsafe {
        (
            UnixStream::from_raw_fd(CTL_FD),
            File::from_raw_fd(STATUS_FD),
        )
    };
    monitor(ctl, status)
}

fn fail(mut status: &File, message: &str) -> ! {
    let _ = status.write_all(message.as_bytes());
    std::process::exit(1)
}

fn read_config(ctl: &mut UnixStream) -> io::Result<InitConfig> {
    let mut len = [0u8; 4];
    ctl.read_exact(&mut len)?;
    let len = u32::from_be_bytes(len) as usize;
    if len > MAX_CONFIG {
        return Err(io::Error::new(
            io::ErrorKind::InvalidData,
            "configuration too large",
        ));
    }
    let mut buf = vec![0u8; len];
    ctl.read_exact(&mut buf)?;
    serde_json::from_slice(&buf).map_err(|e| io::Error::new(io::ErrorKind::InvalidData, e))
}

fn pidfd_open(pid: libc::pid_t) -> io::Result<OwnedFd> {
    // SAFETY: pidfd_open(2) with integer arguments returns a new descriptor or -1.
    let fd = unsafe { libc::syscall(libc::SYS_pidfd_open, pid, 0) };
    if fd == -1 {
        return Err(io::Error::last_os_error());
    }
    // SAFETY: `fd` is a new descriptor owned by nothing else.
    Ok(unsafe { OwnedFd::from_raw_fd(fd as RawFd) })
}

fn pidfd_kill(pidfd: &OwnedFd) {
    // SAFETY: pidfd_send_signal(2) on a live pidfd; no memory is passed.
    unsafe {
        libc::syscall(
            libc::SYS_pidfd_send_signal,
            pidfd.as_raw_fd(),
            libc::SIGKILL,
            std::ptr::null::<u8>(),
            0,
        );
    }
}

fn monitor(mut ctl: UnixStream, status: File) -> ! {
    let sys = LinuxSys;
    let cfg = match read_config(&mut ctl) {
        Ok(cfg) => cfg,
        Err(e) => fail(&status, &format!("read the jail configuration: {e}")),
    };
    let step = |r: Result<(), SetupError>| {
        if let Err(e) = r {
            fail(&status, &e.report())
        }
    };
    step(setup::enter_namespaces(&sys));
    // The server writes our uid/gid maps between these two messages.
    let mut answer = [0u8; 1];
    if let Err(e) = ctl
        .write_all(b"U")
        .and_then(|()| ctl.read_exact(&mut answer))
    {
        fail(&status, &format!("handshake with the server: {e}"));
    }
    if answer != *b"M" {
        fail(&status, "handshake with the server: unexpected message");
    }
    let trees = match setup::open_trees(&sys, &cfg) {
        Ok(trees) => trees,
        Err(e) => fail(&status, &e.report()),
    };
    step(setup::become_jail_user(&sys, &cfg));
    let devnull = match File::open("/dev/null") {
        Ok(f) => f,
        Err(e) => fail(&status, &format!("open /dev/null: {e}")),
    };
    // SAFETY: getpid(2) has no preconditions.
    let me = match pidfd_open(unsafe { libc::getpid() }) {
        Ok(fd) => fd,
        Err(e) => fail(&status, &format!("pidfd_open: {e}")),
    };

    // SAFETY: this process is single-threaded (the init runs before any thread starts), so
    // the child may go on running ordinary Rust code.
    match unsafe { libc::fork() } {
        -1 => fail(&status, &format!("fork: {}", io::Error::last_os_error())),
        0 => {
            drop(ctl);
            // SAFETY: prctl(2) with integer arguments.
            unsafe { libc::prctl(libc::PR_SET_PDEATHSIG, libc::SIGKILL, 0, 0, 0) };
            // The monitor may have died before PDEATHSIG was armed: then nobody would kill us.
            let mut pfd = libc::pollfd {
                fd: me.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            };
            // SAFETY: one valid pollfd, no timeout.
            if unsafe { libc::poll(&mut pfd, 1, 0) } != 0 {
                // SAFETY: _exit(2) ends the process without running anything else.
                unsafe { libc::_exit(1) };
            }
            drop(me);
            drop(devnull);
            if cfg.reaper {
                if let Err(e) = setup::build_and_confine(&sys, &cfg, &trees) {
                    let _ = (&status).write_all(e.report().as_bytes());
                    // SAFETY: as above.
                    unsafe { libc::_exit(1) };
                }
                reap_around(&sys, &cfg, status);
            }
            let error = setup::build_and_exec(&sys, &cfg, &trees);
            let _ = (&status).write_all(error.report().as_bytes());
            // SAFETY: as above.
            unsafe { libc::_exit(1) }
        }
        child => {
            drop(status);
            for fd in trees.into_iter().flatten() {
                // SAFETY: the monitor owns these descriptors and does not use them again.
                unsafe { libc::close(fd) };
            }
            // Let go of the worker's pipes: only the runtime holds them now, so the server
            // sees their end when the runtime ends.
            // SAFETY: dup2(2) onto stdin and stdout, which this process owns.
            unsafe {
                libc::dup2(devnull.as_raw_fd(), 0);
                libc::dup2(devnull.as_raw_fd(), 1);
            }
            drop(devnull);
            drop(me);
            // The monitor needs no capability from here on.
            let _ = sys.set_caps(0);
            wait_for(child, ctl)
        }
    }
}

/// Pid 1 of a reaper jail, fully confined: runs the program as its child and reaps every
/// process that ends up orphaned in the jail until the program exits, then exits as it did
/// (a signal as 128 + its number: pid 1 cannot die of a signal it sends itself).
fn reap_around(sys: &LinuxSys, cfg: &InitConfig, status: File) -> ! {
    // SAFETY: single-threaded; the child only execs or reports and exits.
    let runtime = unsafe { libc::fork() };
    if runtime == 0 {
        let error = setup::exec(sys, cfg);
        let _ = (&status).write_all(error.report().as_bytes());
        // SAFETY: _exit(2) ends the process without running anything else.
        unsafe { libc::_exit(127) };
    }
    if runtime == -1 {
        let _ = (&status)
            .write_all(format!("fork the runtime: {}", io::Error::last_os_error()).as_bytes());
        // SAFETY: as above.
        unsafe { libc::_exit(1) };
    }
    // The runtime alone holds the worker's pipes and the status pipe from here on.
    drop(status);
    // SAFETY: closing descriptors this process owns and no longer uses.
    unsafe {
        libc::close(0);
        libc::close(1);
    }
    loop {
        let mut wstatus = 0;
        // SAFETY: wait4(2) with a valid out-pointer and no rusage.
        let pid = unsafe { libc::waitpid(-1, &mut wstatus, 0) };
        if pid == runtime {
            let code = if libc::WIFSIGNALED(wstatus) {
                128 + libc::WTERMSIG(wstatus)
            } else {
                libc::WEXITSTATUS(wstatus)
            };
            // SAFETY: as above.
            unsafe { libc::_exit(code) };
        }
        if pid == -1 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            // SAFETY: as above (no children left: the runtime is gone).
            unsafe { libc::_exit(1) };
        }
    }
}

/// Waits for the runtime; kills it when the control socket closes; ends like it.
fn wait_for(child: libc::pid_t, ctl: UnixStream) -> ! {
    // Without a pidfd (it cannot fail for a live child of ours) the monitor just waits.
    let child_fd = pidfd_open(child).ok();
    let mut ctl_open = true;
    while let Some(child_fd) = child_fd.as_ref() {
        let mut fds = [
            libc::pollfd {
                fd: if ctl_open { ctl.as_raw_fd() } else { -1 },
                events: libc::POLLIN,
                revents: 0,
            },
            libc::pollfd {
                fd: child_fd.as_raw_fd(),
                events: libc::POLLIN,
                revents: 0,
            },
        ];
        // SAFETY: `fds` is a valid array of two pollfds.
        let n = unsafe { libc::poll(fds.as_mut_ptr(), 2, -1) };
        if n == -1 {
            if io::Error::last_os_error().kind() == io::ErrorKind::Interrupted {
                continue;
            }
            break;
        }
        if fds[1].revents != 0 {
            break;
        }
        if fds[0].revents != 0 {
            let mut buf = [0u8; 64];
            match (&ctl).read(&mut buf) {
                Ok(n) if n > 0 => {}
                Err(e) if e.kind() == io::ErrorKind::Interrupted => {}
                _ => {
                    ctl_open = false;
                    pidfd_kill(child_fd);
                }
            }
        }
    }
    let mut status = 0;
    loop {
        // SAFETY: waitpid(2) on our own child with a valid out-pointer.
        let r = unsafe { libc::waitpid(child, &mut status, 0) };
        if r == child {
            break;
        }
        if r == -1 && io::Error::last_os_error().kind() != io::ErrorKind::Interrupted {
            std::process::exit(1);
        }
    }
    if libc::WIFSIGNALED(status) {
        let sig = libc::WTERMSIG(status);
        // Die of the same signal, so the server sees what the runtime saw.
        // SAFETY: resetting a disposition and unblocking a signal touch no memory of ours;
        // `set` is a valid sigset_t.
        unsafe {
            libc::signal(sig, libc::SIG_DFL);
            let mut set: libc::sigset_t = std::mem::zeroed();
            libc::sigemptyset(&mut set);
            libc::sigaddset(&mut set, sig);
            libc::sigprocmask(libc::SIG_UNBLOCK, &set, std::ptr::null_mut());
            libc::raise(sig);
        }
        std::process::exit(128 + sig);
    }
    std::process::exit(libc::WEXITSTATUS(status))
}
