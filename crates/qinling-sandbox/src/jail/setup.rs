//! The jail's setup, step by step, over [`Sys`]: what the init does between being started by
//! the server and `execve` of the runtime.
//!
//! The steps run in two processes (see `init.rs` for why):
//!
//! 1. the *monitor* (started by the server, still the host's user):
//!    [`enter_namespaces`] — user, mount, pid, ipc, uts, cgroup and net namespaces in one
//!    `unshare`; the server then writes the uid/gid maps (and, for a networked launch, attaches
//!    the user-mode network stack to the new net namespace);
//!    [`open_trees`] — a detached, already read-only copy of every host path the plan binds,
//!    taken while the process still has the host user's right to walk those paths (a Python
//!    under `/root` is reachable only by root, and the jail's own user is not root);
//!    [`become_jail_user`] — the unprivileged uid/gid, keeping the namespace's capabilities
//!    for the rest of the setup;
//! 2. the *jail* (the monitor's child, pid 1 of the new pid namespace): [`build_and_exec`] —
//!    a new root on a tmpfs (mounted over `/tmp`, which only this mount namespace sees) with
//!    the plan's entries attached, its own `/proc`, a small `/dev`, a size-capped `/tmp`; the
//!    root and `/dev` made read-only; `pivot_root` and the old root detached; host name,
//!    loopback, rlimits; every capability dropped (bounding, ambient, effective, permitted,
//!    inheritable); `no_new_privs`; descriptors past stderr marked close-on-exec; the seccomp
//!    filter; `execve`.
//!
//! Nothing untrusted runs before `execve`, so the order is chosen for what each call needs:
//! mounts need the capabilities, the seccomp filter denies `mount`, so it comes last.

use std::collections::BTreeSet;
use std::ffi::OsString;
use std::os::fd::RawFd;
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::plan::Entry;
use super::sys::{
    MOUNT_ATTR_NODEV, MOUNT_ATTR_NOEXEC, MOUNT_ATTR_NOSUID, MOUNT_ATTR_RDONLY, Rlimit, Sys, under,
};

/// Where the jail's new root is mounted before `pivot_root`: a directory every Linux host
/// has; the mount hides it only inside the jail's own mount namespace.
pub const NEW_ROOT: &str = "/tmp";

/// Size of the tmpfs holding the new root's skeleton (mount points, generated `/etc` files);
/// it is read-only before the runtime starts.
const ROOT_TMPFS: &str = "mode=0755,size=1048576,nr_inodes=4096";
const DEV_TMPFS: &str = "mode=0755,size=65536,nr_inodes=64";

/// `/proc` files hidden behind `/dev/null`, and `/proc` trees made read-only: defence in
/// depth, since the jail's user has no capability that would let it use them.
const PROC_MASKED: &[&str] = &["kcore", "keys", "timer_list"];
const PROC_READ_ONLY: &[&str] = &["sys", "sysrq-trigger", "irq", "bus"];

/// Everything the init needs, sent by the server over the control socket.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct InitConfig {
    pub program: PathBuf,
    pub args: Vec<OsString>,
    pub env: Vec<(OsString, OsString)>,
    pub mounts: Vec<Entry>,
    pub tmp_bytes: u64,
    pub nofile: u64,
    pub nproc: u64,
    pub fsize_bytes: u64,
    /// Pid 1 stays a reaper and runs the program as its child ([`crate::LaunchSpec::reaper`]).
    #[serde(default)]
    pub reaper: bool,
    pub hostname: String,
    /// The uid and gid inside the jail (mapped by the server to an unprivileged host id).
    pub uid: u32,
    pub gid: u32,
    /// Whether supplementary groups can be dropped (not when the server is unprivileged:
    /// such a user namespace must deny `setgroups`).
    pub clear_groups: bool,
    /// Capabilities (a mask of bits) the runtime keeps in its user namespace; every other
    /// one is dropped, from the bounding set too. A runtime that runs each execution under
    /// an id of its own keeps `CAP_SETUID`, `CAP_SETGID` (to switch to it) and `CAP_KILL` (to
    /// stop what runs under it); the switch away from uid 0 drops them all in the child.
    #[serde(default)]
    pub keep_caps: u64,
}

/// `CAP_KILL`, `CAP_SETGID`, `CAP_SETUID` (linux/capability.h): what a runtime that starts
/// executions under their own ids keeps.
pub const EXEC_SWITCH_CAPS: u64 = (1 << 5) | (1 << 6) | (1 << 7);

/// A setup step that failed.
#[derive(Debug, thiserror::Error)]
#[error("{step}")]
pub struct SetupError {
    pub step: String,
    #[source]
    pub source: std::io::Error,
}

impl SetupError {
    /// The step and its cause on one line, for the status pipe back to the server.
    pub fn report(&self) -> String {
        format!("{}: {}", self.step, self.source)
    }
}

trait Step<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, SetupError>;
}

impl<T> Step<T> for std::io::Result<T> {
    fn step(self, what: impl FnOnce() -> String) -> Result<T, SetupError> {
        self.map_err(|source| SetupError {
            step: what(),
            source,
        })
    }
}

/// The namespaces a jail gets. A networked jail has its own network namespace too: the
/// server connects it to the outside through a user-mode network stack (slirp4netns), never by
/// sharing the host's.
pub const NAMESPACE_FLAGS: libc::c_int = libc::CLONE_NEWUSER
    | libc::CLONE_NEWNS
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWCGROUP
    | libc::CLONE_NEWNET;

/// Monitor, step 1: all namespaces at once (the user namespace is created first by the
/// kernel, so it owns the others).
pub fn enter_namespaces(sys: &dyn Sys) -> Result<(), SetupError> {
    sys.unshare(NAMESPACE_FLAGS)
        .step(|| "unshare namespaces".into())
}

/// Monitor, step 2: a detached read-only copy of each bound host path, in plan order
/// (`None` for entries that bind nothing).
pub fn open_trees(sys: &dyn Sys, cfg: &InitConfig) -> Result<Vec<Option<RawFd>>, SetupError> {
    cfg.mounts
        .iter()
        .map(|entry| match entry {
            Entry::Bind { src, device, .. } => {
                let attrs = if *device {
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC
                } else {
                    MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV
                };
                sys.clone_tree(src, attrs)
                    .map(Some)
                    .step(|| format!("open {}", src.display()))
            }
            Entry::Symlink { .. } | Entry::File { .. } => Ok(None),
        })
        .collect()
}

/// Monitor, step 3: the jail's uid and gid (and no supplementary groups), keeping the user
/// namespace's capabilities for the rest of the setup.
pub fn become_jail_user(sys: &dyn Sys, cfg: &InitConfig) -> Result<(), SetupError> {
    if cfg.clear_groups {
        sys.setgroups_empty()
            .step(|| "drop supplementary groups".into())?;
    }
    sys.setresgid(cfg.gid)
        .step(|| format!("set gid {}", cfg.gid))?;
    sys.set_keep_caps(true)
        .step(|| "keep capabilities across setuid".into())?;
    sys.setresuid(cfg.uid)
        .step(|| format!("set uid {}", cfg.uid))?;
    sys.raise_effective_caps()
        .step(|| "raise effective capabilities".into())?;
    sys.set_keep_caps(false)
        .step(|| "clear keep-capabilities".into())
}

/// Jail: builds the root, confines the process and runs the program. Returns only on
/// failure; the program never starts unless every step before it succeeded.
pub fn build_and_exec(sys: &dyn Sys, cfg: &InitConfig, trees: &[Option<RawFd>]) -> SetupError {
    match build_and_confine(sys, cfg, trees) {
        Ok(()) => exec(sys, cfg),
        Err(e) => e,
    }
}

/// Jail: every step before the program runs (the root, then the confinement).
pub fn build_and_confine(
    sys: &dyn Sys,
    cfg: &InitConfig,
    trees: &[Option<RawFd>],
) -> Result<(), SetupError> {
    build_root(sys, cfg, trees).and_then(|()| confine(sys, cfg))
}

/// Jail: runs the program; returns only on failure.
pub fn exec(sys: &dyn Sys, cfg: &InitConfig) -> SetupError {
    let error = sys.execve(&cfg.program, &cfg.args, &cfg.env);
    SetupError {
        step: format!("execute {}", cfg.program.display()),
        source: error,
    }
}

/// Creates each missing directory of `path` (below the new root), remembering what exists.
struct Dirs<'a> {
    sys: &'a dyn Sys,
    made: BTreeSet<PathBuf>,
}

impl Dirs<'_> {
    fn make_all(&mut self, path: &Path, mode: u32) -> Result<(), SetupError> {
        let mut current = PathBuf::from(NEW_ROOT);
        for part in path
            .strip_prefix(NEW_ROOT)
            .unwrap_or(path)
            .components()
            .skip_while(|c| c.as_os_str() == "/")
        {
            current.push(part);
            if self.made.insert(current.clone()) {
                match self.sys.mkdir(&current, mode) {
                    Ok(()) => {}
                    Err(e) if e.raw_os_error() == Some(libc::EEXIST) => {}
                    Err(e) => return Err(e).step(|| format!("create {}", current.display())),
                }
            }
        }
        Ok(())
    }
}

fn build_root(sys: &dyn Sys, cfg: &InitConfig, trees: &[Option<RawFd>]) -> Result<(), SetupError> {
    let root = Path::new(NEW_ROOT);
    let at = |p: &str| under(root, Path::new(p));
    let none: Option<&Path> = None;
    let tmpfs = Some(Path::new("tmpfs"));
    sys.umask(0);
    sys.setsid().step(|| "start a session".into())?;
    // Nothing mounted here propagates back to the host, nor from it.
    sys.mount(
        none,
        Path::new("/"),
        None,
        libc::MS_REC | libc::MS_PRIVATE,
        None,
    )
    .step(|| "make mounts private".into())?;
    sys.mount(
        tmpfs,
        root,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(ROOT_TMPFS),
    )
    .step(|| "mount the new root".into())?;
    let mut dirs = Dirs {
        sys,
        made: BTreeSet::from([root.to_path_buf()]),
    };

    // /proc of the jail's pid namespace (the host's /proc is still visible, which the kernel
    // requires before it lets a user namespace mount a new one). `hidepid=2` (invisible): a
    // process sees only the processes it could trace (its own uid's), so an execution running
    // under an id of its own sees neither the runtime around it nor another execution; the
    // runtime's group (`gid=`) sees every process, as it must to find leftovers.
    let proc_dir = at("/proc");
    dirs.make_all(&proc_dir, 0o555)?;
    let proc_opts = format!("hidepid=2,gid={}", cfg.gid);
    sys.mount(
        Some(Path::new("proc")),
        &proc_dir,
        Some("proc"),
        libc::MS_NOSUID | libc::MS_NODEV | libc::MS_NOEXEC,
        Some(&proc_opts),
    )
    .step(|| "mount /proc".into())?;
    for name in PROC_MASKED {
        let path = proc_dir.join(name);
        if sys.file_kind(&path).ok().flatten().is_some() {
            sys.mount(
                Some(Path::new("/dev/null")),
                &path,
                None,
                libc::MS_BIND,
                None,
            )
            .step(|| format!("mask {}", path.display()))?;
        }
    }
    for name in PROC_READ_ONLY {
        let path = proc_dir.join(name);
        if sys.file_kind(&path).ok().flatten().is_some() {
            sys.mount(Some(&path), &path, None, libc::MS_BIND | libc::MS_REC, None)
                .step(|| format!("bind {}", path.display()))?;
            sys.mount_setattr(
                &path,
                MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV | MOUNT_ATTR_NOEXEC,
                true,
            )
            .step(|| format!("make {} read-only", path.display()))?;
        }
    }

    let dev_dir = at("/dev");
    dirs.make_all(&dev_dir, 0o755)?;
    sys.mount(
        tmpfs,
        &dev_dir,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NOEXEC,
        Some(DEV_TMPFS),
    )
    .step(|| "mount /dev".into())?;

    let tmp_dir = at("/tmp");
    dirs.make_all(&tmp_dir, 0o1777)?;
    // A zero size would mean "unlimited" to tmpfs; one page is the smallest cap.
    let tmp_opts = format!("mode=1777,size={}", cfg.tmp_bytes.max(4096));
    sys.mount(
        tmpfs,
        &tmp_dir,
        Some("tmpfs"),
        libc::MS_NOSUID | libc::MS_NODEV,
        Some(&tmp_opts),
    )
    .step(|| "mount /tmp".into())?;

    let mut order: Vec<usize> = (0..cfg.mounts.len()).collect();
    order.sort_by(|&a, &b| cfg.mounts[a].dst().cmp(cfg.mounts[b].dst()));
    for i in order {
        let entry = &cfg.mounts[i];
        let dst = under(root, entry.dst());
        let parent = dst.parent().unwrap_or(root).to_path_buf();
        match entry {
            Entry::Bind { dir, .. } => {
                if *dir {
                    dirs.make_all(&dst, 0o755)?;
                } else {
                    dirs.make_all(&parent, 0o755)?;
                    sys.write_file(&dst, b"", 0o444)
                        .step(|| format!("create {}", dst.display()))?;
                }
                let Some(tree) = trees.get(i).copied().flatten() else {
                    return Err(SetupError {
                        step: format!("bind {}", dst.display()),
                        source: std::io::Error::other("no tree was opened for it"),
                    });
                };
                sys.attach_tree(tree, &dst)
                    .step(|| format!("bind {}", dst.display()))?;
            }
            Entry::Symlink { target, .. } => {
                dirs.make_all(&parent, 0o755)?;
                sys.symlink(target, &dst)
                    .step(|| format!("link {}", dst.display()))?;
            }
            Entry::File { contents, .. } => {
                dirs.make_all(&parent, 0o755)?;
                sys.write_file(&dst, contents.as_bytes(), 0o644)
                    .step(|| format!("write {}", dst.display()))?;
            }
        }
    }

    sys.mount_setattr(
        &dev_dir,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NOEXEC,
        false,
    )
    .step(|| "make /dev read-only".into())?;
    sys.mount_setattr(
        root,
        MOUNT_ATTR_RDONLY | MOUNT_ATTR_NOSUID | MOUNT_ATTR_NODEV,
        false,
    )
    .step(|| "make the new root read-only".into())?;
    // pivot_root(".", ".") stacks the old root on the new one; detaching "." then drops it
    // (and every host mount under it) from this namespace.
    sys.chdir(root).step(|| "enter the new root".into())?;
    sys.pivot_root(Path::new("."), Path::new("."))
        .step(|| "pivot_root".into())?;
    sys.umount2(Path::new("."), libc::MNT_DETACH)
        .step(|| "detach the old root".into())?;
    sys.chdir(Path::new("/")).step(|| "change to /".into())?;
    sys.umask(0o022);
    Ok(())
}

fn confine(sys: &dyn Sys, cfg: &InitConfig) -> Result<(), SetupError> {
    sys.sethostname(&cfg.hostname)
        .step(|| "set the host name".into())?;
    sys.loopback_up().step(|| "bring up loopback".into())?;
    // An rlimit can only be lowered without CAP_SYS_RESOURCE in the initial namespace, so a
    // limit above the current hard limit is clamped to it (stricter than asked, never looser).
    for (resource, value) in [
        (Rlimit::NoFile, cfg.nofile),
        (Rlimit::NProc, cfg.nproc),
        (Rlimit::FSize, cfg.fsize_bytes),
        (Rlimit::Core, 0),
    ] {
        let hard = sys
            .hard_rlimit(resource)
            .step(|| format!("read rlimit {resource:?}"))?;
        sys.setrlimit(resource, value.min(hard))
            .step(|| format!("set rlimit {resource:?}"))?;
    }
    // Bounding set first: dropping from it needs CAP_SETPCAP, which set_caps removes.
    for cap in 0.. {
        if cap < 64 && cfg.keep_caps & (1 << cap) != 0 {
            continue;
        }
        match sys.drop_bounding_cap(cap) {
            Ok(()) => {}
            Err(e) if e.raw_os_error() == Some(libc::EINVAL) => break,
            Err(e) => {
                return Err(e).step(|| format!("drop capability {cap} from the bounding set"));
            }
        }
    }
    sys.clear_ambient_caps()
        .step(|| "clear ambient capabilities".into())?;
    sys.set_caps(cfg.keep_caps)
        .step(|| "drop capabilities".into())?;
    sys.set_no_new_privs().step(|| "set no_new_privs".into())?;
    sys.cloexec_from(3)
        .step(|| "close inherited descriptors".into())?;
    sys.seccomp(&super::seccomp::filter())
        .step(|| "install the seccomp filter".into())
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::jail::sys::{FileKind, RecordingSys};

    fn config() -> InitConfig {
        InitConfig {
            program: "/usr/bin/python3".into(),
            args: vec!["-c".into(), "print(1)".into()],
            env: vec![("PATH".into(), "/usr/bin".into())],
            mounts: vec![
                Entry::Bind {
                    src: "/usr".into(),
                    dst: "/usr".into(),
                    dir: true,
                    device: false,
                },
                Entry::Symlink {
                    dst: "/bin".into(),
                    target: "usr/bin".into(),
                },
                Entry::File {
                    dst: "/etc/passwd".into(),
                    contents: "sandbox:x:1000:1000::/tmp:/bin/false\n".into(),
                },
                Entry::Bind {
                    src: "/dev/null".into(),
                    dst: "/dev/null".into(),
                    dir: false,
                    device: true,
                },
                Entry::Bind {
                    src: "/root/.pyenv/versions/3.11.7".into(),
                    dst: "/root/.pyenv/versions/3.11.7".into(),
                    dir: true,
                    device: false,
                },
            ],
            tmp_bytes: 64 << 20,
            nofile: 1024,
            nproc: 129,
            fsize_bytes: 500 << 20,
            reaper: false,
            hostname: "qinling".into(),
            uid: 1000,
            gid: 1000,
            clear_groups: true,
            keep_caps: 0,
        }
    }

    fn sys_with_proc() -> RecordingSys {
        let mut sys = RecordingSys::new();
        for p in ["kcore", "keys", "sys", "sysrq-trigger"] {
            sys.files
                .insert(Path::new("/tmp/proc").join(p), FileKind::File);
        }
        sys.hard_limits.insert("NoFile", 512);
        sys
    }

    /// The whole setup, monitor then jail, as the kernel sees it.
    fn run(sys: &RecordingSys, cfg: &InitConfig) -> Result<(), SetupError> {
        enter_namespaces(sys)?;
        let trees = open_trees(sys, cfg)?;
        become_jail_user(sys, cfg)?;
        Err(build_and_exec(sys, cfg, &trees))
    }

    #[test]
    fn full_setup_in_order() {
        let sys = sys_with_proc();
        let err = run(&sys, &config()).unwrap_err();
        assert_eq!(err.report(), "execute /usr/bin/python3: execve recorded");
        let want = r#"unshare user,mnt,pid,net,ipc,uts,cgroup
clone_tree /usr [ro,nosuid,nodev] = fd 100
clone_tree /dev/null [ro,nosuid,noexec] = fd 101
clone_tree /root/.pyenv/versions/3.11.7 [ro,nosuid,nodev] = fd 102
setgroups []
setresgid 1000
keepcaps true
setresuid 1000
caps effective=permitted
keepcaps false
umask 0
setsid
mount - on / [rec,private]
mount tmpfs on /tmp type tmpfs [nosuid,nodev] mode=0755,size=1048576,nr_inodes=4096
mkdir /tmp/proc 555
mount proc on /tmp/proc type proc [nosuid,nodev,noexec] hidepid=2,gid=1000
mount /dev/null on /tmp/proc/kcore [bind]
mount /dev/null on /tmp/proc/keys [bind]
mount /tmp/proc/sys on /tmp/proc/sys [bind,rec]
setattr /tmp/proc/sys [ro,nosuid,nodev,noexec] recursive
mount /tmp/proc/sysrq-trigger on /tmp/proc/sysrq-trigger [bind,rec]
setattr /tmp/proc/sysrq-trigger [ro,nosuid,nodev,noexec] recursive
mkdir /tmp/dev 755
mount tmpfs on /tmp/dev type tmpfs [nosuid,noexec] mode=0755,size=65536,nr_inodes=64
mkdir /tmp/tmp 1777
mount tmpfs on /tmp/tmp type tmpfs [nosuid,nodev] mode=1777,size=67108864
symlink /tmp/bin -> usr/bin
write /tmp/dev/null 444 ""
attach fd 101 on /tmp/dev/null
mkdir /tmp/etc 755
write /tmp/etc/passwd 644 "sandbox:x:1000:1000::/tmp:/bin/false\n"
mkdir /tmp/root 755
mkdir /tmp/root/.pyenv 755
mkdir /tmp/root/.pyenv/versions 755
mkdir /tmp/root/.pyenv/versions/3.11.7 755
attach fd 102 on /tmp/root/.pyenv/versions/3.11.7
mkdir /tmp/usr 755
attach fd 100 on /tmp/usr
setattr /tmp/dev [ro,nosuid,noexec]
setattr /tmp [ro,nosuid,nodev]
chdir /tmp
pivot_root . .
umount . detach
chdir /
umask 22
sethostname qinling
loopback up
setrlimit NoFile 512
setrlimit NProc 129
setrlimit FSize 524288000
setrlimit Core 0
drop bounding set
clear ambient caps
clear caps
no_new_privs
cloexec from 3
seccomp 138 instructions
execve /usr/bin/python3 ["-c", "print(1)"] env ["PATH=/usr/bin"]"#;
        let got = sys.lines().join("\n");
        assert_eq!(got, want, "\n--- got ---\n{got}\n");
    }

    #[test]
    fn every_jail_gets_its_own_network_namespace() {
        let sys = sys_with_proc();
        let _ = run(&sys, &config());
        let lines = sys.lines();
        assert_eq!(lines[0], "unshare user,mnt,pid,net,ipc,uts,cgroup");
        assert!(lines.iter().any(|l| l == "loopback up"));
    }

    #[test]
    fn unprivileged_server_keeps_groups() {
        let sys = sys_with_proc();
        let cfg = InitConfig {
            clear_groups: false,
            ..config()
        };
        let _ = run(&sys, &cfg);
        assert!(!sys.lines().iter().any(|l| l.starts_with("setgroups")));
    }

    /// A failing step stops the setup before the program runs, whichever step it is.
    #[test]
    fn any_failure_stops_before_exec() {
        let full = {
            let sys = sys_with_proc();
            let _ = run(&sys, &config());
            sys.lines()
        };
        for (i, line) in full
            .iter()
            .enumerate()
            .filter(|(_, l)| !l.starts_with("execve"))
        {
            let mut sys = sys_with_proc();
            // Lines that cannot fail in the double (umask) are skipped.
            if line.starts_with("umask") {
                continue;
            }
            sys.fail_on = Some(line.clone());
            let err = run(&sys, &config()).unwrap_err();
            let lines = sys.lines();
            assert!(
                !lines.iter().any(|l| l.starts_with("execve")),
                "exec after failing {line:?}"
            );
            assert!(lines.len() <= i + 1, "went on after failing {line:?}");
            assert!(
                err.report().contains("Operation not permitted"),
                "{line:?}: {}",
                err.report()
            );
        }
    }

    /// A runtime that switches each execution to its own ids keeps exactly the capabilities
    /// that takes, in the bounding set and in its permitted and effective sets.
    #[test]
    fn exec_switching_runtime_keeps_three_capabilities() {
        let sys = sys_with_proc();
        let cfg = InitConfig {
            uid: 0,
            gid: 0,
            keep_caps: EXEC_SWITCH_CAPS,
            ..config()
        };
        let _ = run(&sys, &cfg);
        let lines = sys.lines();
        assert!(lines.iter().any(|l| l == "caps keep 0xe0"), "{lines:?}");
        assert!(!lines.iter().any(|l| l == "clear caps"), "{lines:?}");
        assert!(
            lines
                .iter()
                .any(|l| l.ends_with("type proc [nosuid,nodev,noexec] hidepid=2,gid=0")),
            "{lines:?}"
        );
        assert_eq!(
            sys.bounding_dropped(),
            (0..=sys.last_cap)
                .filter(|c| ![5, 6, 7].contains(c))
                .collect::<Vec<_>>()
        );
    }

    #[test]
    fn zero_tmp_size_is_not_unlimited() {
        let sys = sys_with_proc();
        let cfg = InitConfig {
            tmp_bytes: 0,
            ..config()
        };
        let _ = run(&sys, &cfg);
        assert!(
            sys.lines()
                .iter()
                .any(|l| l.ends_with("mode=1777,size=4096"))
        );
    }
}
