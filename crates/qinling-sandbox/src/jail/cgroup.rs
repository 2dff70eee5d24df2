//! Worker cgroups: memory, cpu and pids limits, usage, and killing every process of a worker.
//!
//! Each controller is placed on its own: cgroup v2 when the unified hierarchy offers it (and
//! it can be enabled for our subtree), else the v1 hierarchy that has it, else it is reported
//! as not enforced. Machines in between are common — this one has v1 memory/cpu/pids and a
//! cgroup2 mount with almost no controllers — so one worker may have a v1 memory cgroup, a v1
//! pids cgroup and a v2 group. Whenever a writable cgroup2 hierarchy exists the worker also
//! gets a v2 group even with no controllers in it: its `cgroup.kill` (Linux 5.14+) kills every
//! member atomically, which a loop over `cgroup.procs` cannot do against a forking process.
//!
//! Worker groups live under `<the server's own cgroup>/<name>/<worker>` in every hierarchy
//! (`name` is [`JailConfig::cgroup_name`](super::JailConfig::cgroup_name), `qinling` by
//! default): nested under the server, so limits set on the server's cgroup (by systemd, a
//! container runtime, an operator) still bound all of its workers. Under cgroup v2 a cgroup
//! that holds processes cannot pass controllers to children (the "no internal processes"
//! rule); the root is exempt, and a server in a non-root v2 cgroup needs that cgroup
//! delegated with controllers enabled above it, or the controllers fall back to v1 or are
//! reported as not enforced.
//!
//! The pids limit is the worker's limit plus one: the jail's monitor process (see `init.rs`)
//! is in the worker's cgroups too.
//!
//! Moving the init into its cgroups (a write to `cgroup.procs`) takes the kernel's
//! `cgroup_threadgroup_rwsem` for writing, which waits for an RCU grace period unless another
//! migration happened just before: about 10 ms of a launch on this machine. Mounting the
//! hierarchies with `favordynmods` (Linux 6.0+) makes migrations cheap; that is the operator's
//! call. (`clone3(CLONE_INTO_CGROUP)` would avoid the migration on v2, but the worker is
//! spawned through `tokio::process::Command`, which does not offer it.)
//!
//! All paths go through a root prefix (`/` in production), so the v2 code is tested on a
//! fake tree where the kernel offers no v2 controllers.

use std::collections::HashMap;
use std::io;
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use crate::{Limits, SandboxError, Usage};

/// CFS period for the cpu quota: 100 ms, the kernel default.
pub const CPU_PERIOD_US: u64 = 100_000;
/// The smallest quota the kernel accepts (1 ms per period, i.e. 10 millicpu).
const CPU_MIN_QUOTA_US: u64 = 1_000;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Version {
    V1,
    V2,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Controller {
    Memory,
    Cpu,
    Pids,
}

impl Controller {
    const ALL: [Controller; 3] = [Controller::Memory, Controller::Cpu, Controller::Pids];

    fn name(self) -> &'static str {
        match self {
            Controller::Memory => "memory",
            Controller::Cpu => "cpu",
            Controller::Pids => "pids",
        }
    }

    fn limit_name(self) -> &'static str {
        match self {
            Controller::Memory => "memory limit",
            Controller::Cpu => "cpu quota",
            Controller::Pids => "pids limit",
        }
    }
}

/// Where the worker groups of one controller go.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Placement {
    pub version: Version,
    pub parent: PathBuf,
}

/// The cgroup mounts of this machine and the server's place in them.
#[derive(Debug, Default, Clone, PartialEq, Eq)]
pub struct Mounts {
    /// v1 hierarchies: the directory of the server's cgroup, and the controllers there.
    pub v1: Vec<(PathBuf, Vec<String>)>,
    /// The directory of the server's cgroup in the v2 hierarchy.
    pub v2: Option<PathBuf>,
}

impl Mounts {
    /// Reads `/proc/self/mountinfo` and `/proc/self/cgroup` (their texts), re-rooting every
    /// mount point under `root`.
    pub fn parse(mountinfo: &str, self_cgroup: &str, root: &Path) -> Mounts {
        let mut v1_paths: HashMap<String, String> = HashMap::new();
        let mut v2_path = None;
        for line in self_cgroup.lines() {
            let mut parts = line.splitn(3, ':');
            let (Some(_id), Some(controllers), Some(path)) =
                (parts.next(), parts.next(), parts.next())
            else {
                continue;
            };
            if controllers.is_empty() {
                v2_path = Some(path.to_string());
            } else {
                for c in controllers.split(',') {
                    v1_paths.insert(c.to_string(), path.to_string());
                }
            }
        }
        let mut mounts = Mounts::default();
        for line in mountinfo.lines() {
            let fields: Vec<&str> = line.split(' ').collect();
            let Some(dash) = fields.iter().position(|f| *f == "-") else {
                continue;
            };
            if fields.len() < dash + 4 || dash < 6 {
                continue;
            }
            let (mount_root, mount_point, fstype, options) =
                (fields[3], fields[4], fields[dash + 1], fields[dash + 3]);
            let dir = |own: &str| {
                // The server's cgroup relative to what this mount shows.
                let rel = Path::new(own)
                    .strip_prefix(mount_root)
                    .unwrap_or(Path::new(""));
                let base = super::sys::under(root, Path::new(mount_point));
                if rel.as_os_str().is_empty() {
                    base
                } else {
                    base.join(rel)
                }
            };
            match fstype {
                "cgroup2" if mounts.v2.is_none() => {
                    mounts.v2 = Some(dir(v2_path.as_deref().unwrap_or("/")));
                }
                "cgroup" => {
                    let controllers: Vec<String> = options
                        .split(',')
                        .filter(|o| {
                            Controller::ALL.iter().any(|c| c.name() == *o) || *o == "cpuacct"
                        })
                        .map(str::to_string)
                        .collect();
                    let Some(first) = controllers.first() else {
                        continue;
                    };
                    if mounts.v1.iter().any(|(_, cs)| cs.contains(first)) {
                        continue;
                    }
                    let own = v1_paths.get(first).map_or("/", String::as_str);
                    mounts.v1.push((dir(own), controllers));
                }
                _ => {}
            }
        }
        mounts
    }

    /// This process's view.
    pub fn of_this_process() -> Mounts {
        let mountinfo = std::fs::read_to_string("/proc/self/mountinfo").unwrap_or_default();
        let cgroup = std::fs::read_to_string("/proc/self/cgroup").unwrap_or_default();
        Mounts::parse(&mountinfo, &cgroup, Path::new("/"))
    }
}

/// Where each controller's worker groups go on this machine, decided once.
#[derive(Debug, Clone, Default)]
pub struct Layout {
    pub memory: Option<Placement>,
    pub cpu: Option<Placement>,
    pub pids: Option<Placement>,
    /// The v2 parent for every worker's group (membership and `cgroup.kill`), with or without
    /// controllers.
    pub v2_parent: Option<PathBuf>,
    /// Parents this layout created, removed (when empty) by [`Layout::remove_parents`].
    created: Vec<PathBuf>,
    /// What cannot be enforced, and why.
    pub unenforced: Vec<String>,
}

fn mkdir(path: &Path) -> io::Result<bool> {
    match std::fs::create_dir(path) {
        Ok(()) => Ok(true),
        Err(e) if e.kind() == io::ErrorKind::AlreadyExists => Ok(false),
        Err(e) => Err(e),
    }
}

fn write(path: &Path, value: &str) -> io::Result<()> {
    std::fs::write(path, value)
}

/// Enables `controller` in `dir`'s `cgroup.subtree_control` unless it already is.
fn enable(dir: &Path, controller: &str) -> io::Result<()> {
    let file = dir.join("cgroup.subtree_control");
    let current = std::fs::read_to_string(&file).unwrap_or_default();
    if current.split_whitespace().any(|c| c == controller) {
        return Ok(());
    }
    write(&file, &format!("+{controller}"))
}

impl Layout {
    /// Places each controller (v2 first), creating `<own cgroup>/<name>` where needed.
    pub fn discover(mounts: &Mounts, name: &str) -> Layout {
        let mut layout = Layout::default();
        let make_parent = |layout: &mut Layout, own: &Path| -> io::Result<PathBuf> {
            let parent = own.join(name);
            if mkdir(&parent)? {
                layout.created.push(parent.clone());
            }
            Ok(parent)
        };
        if let Some(own) = &mounts.v2 {
            match make_parent(&mut layout, own) {
                Ok(parent) => layout.v2_parent = Some(parent),
                Err(e) => {
                    tracing::debug!(error = %e, dir = %own.display(), "no cgroup v2 group for workers")
                }
            }
        }
        for controller in Controller::ALL {
            let mut why = Vec::new();
            let mut placement = None;
            if let (Some(own), Some(parent)) = (&mounts.v2, &layout.v2_parent) {
                let available =
                    std::fs::read_to_string(own.join("cgroup.controllers")).unwrap_or_default();
                if !available.split_whitespace().any(|c| c == controller.name()) {
                    why.push("cgroup v2 does not offer it".to_string());
                } else {
                    match enable(own, controller.name())
                        .and_then(|()| enable(parent, controller.name()))
                    {
                        Ok(()) => {
                            placement = Some(Placement {
                                version: Version::V2,
                                parent: parent.clone(),
                            })
                        }
                        Err(e) => why.push(format!("cgroup v2 would not enable it ({e})")),
                    }
                }
            } else {
                why.push("no writable cgroup v2 hierarchy".to_string());
            }
            if placement.is_none() {
                match mounts
                    .v1
                    .iter()
                    .find(|(_, cs)| cs.iter().any(|c| c == controller.name()))
                {
                    Some((own, _)) => match make_parent(&mut layout, own) {
                        Ok(parent) => {
                            placement = Some(Placement {
                                version: Version::V1,
                                parent,
                            })
                        }
                        Err(e) => {
                            why.push(format!("cgroup v1 {} is not writable ({e})", own.display()))
                        }
                    },
                    None => why.push("no cgroup v1 hierarchy has it".to_string()),
                }
            }
            if placement.is_none() {
                layout.unenforced.push(format!(
                    "{} per worker: {}",
                    controller.limit_name(),
                    why.join("; ")
                ));
            }
            match controller {
                Controller::Memory => layout.memory = placement,
                Controller::Cpu => layout.cpu = placement,
                Controller::Pids => layout.pids = placement,
            }
        }
        if let Some(p) = &layout.memory {
            let swap_file = match p.version {
                Version::V1 => "memory.memsw.limit_in_bytes",
                Version::V2 => "memory.swap.max",
            };
            if !p.parent.join(swap_file).exists() && swap_in_use() {
                layout.unenforced.push(format!(
                    "swap per worker: {swap_file} is missing, so swap use is not limited"
                ));
            }
            if p.version == Version::V2 && !p.parent.join("memory.peak").exists() {
                layout
                    .unenforced
                    .push("peak memory reporting: memory.peak is missing (Linux < 5.19)".into());
            }
        }
        layout
    }

    /// Removes empty worker directories a crashed server left. Worker directories are named
    /// after the server's pid (see [`worker_dir_name`]), so those of live servers sharing the
    /// parent (tests, several instances on one host) are left alone; the kernel refuses to
    /// remove a directory that still has processes anyway.
    pub fn remove_stale_workers(&self) {
        let parents = [&self.memory, &self.cpu, &self.pids]
            .into_iter()
            .flatten()
            .map(|p| p.parent.clone())
            .chain(self.v2_parent.clone());
        let mut removed = 0usize;
        for parent in parents {
            let Ok(entries) = std::fs::read_dir(&parent) else {
                continue;
            };
            for entry in entries.flatten() {
                let owner_alive =
                    owner_pid(&entry.file_name().to_string_lossy()).is_some_and(pid_alive);
                if !owner_alive
                    && entry.file_type().is_ok_and(|t| t.is_dir())
                    && std::fs::remove_dir(entry.path()).is_ok()
                {
                    removed += 1;
                    tracing::debug!(dir = %entry.path().display(), "removed a stale worker cgroup");
                }
            }
        }
        if removed > 0 {
            tracing::info!(
                removed,
                "removed worker cgroups left by servers that are gone"
            );
        }
    }

    fn placement(&self, controller: Controller) -> Option<&Placement> {
        match controller {
            Controller::Memory => self.memory.as_ref(),
            Controller::Cpu => self.cpu.as_ref(),
            Controller::Pids => self.pids.as_ref(),
        }
    }

    /// Removes the parents this layout created, where no worker is left in them.
    pub fn remove_parents(&self) {
        for dir in &self.created {
            let _ = std::fs::remove_dir(dir);
        }
    }
}

fn swap_in_use() -> bool {
    std::fs::read_to_string("/proc/swaps").is_ok_and(|s| s.lines().count() > 1)
}

/// The directory of worker `name` of this server: `s<server pid>-<name>`.
fn worker_dir_name(name: &str) -> String {
    format!("s{}-{}", std::process::id(), dir_name(name))
}

/// The server pid in a worker directory name made by [`worker_dir_name`].
fn owner_pid(dir: &str) -> Option<i32> {
    let rest = dir.strip_prefix('s')?;
    let digits = &rest[..rest.find('-')?];
    digits.parse().ok()
}

/// Whether a process with this pid exists (signal 0 probes without sending anything).
fn pid_alive(pid: i32) -> bool {
    // SAFETY: kill with signal 0 only checks for existence and permission.
    let r = unsafe { libc::kill(pid, 0) };
    r == 0 || std::io::Error::last_os_error().raw_os_error() == Some(libc::EPERM)
}

/// A directory name for a worker: its name with anything but `[A-Za-z0-9._-]` replaced.
fn dir_name(name: &str) -> String {
    let mut s: String = name
        .chars()
        .take(128)
        .map(|c| {
            if c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-') {
                c
            } else {
                '_'
            }
        })
        .collect();
    if s.is_empty() || s.starts_with('.') {
        s.insert(0, 'w');
    }
    s
}

/// One worker's cgroups. Dropping it kills what is left in them and removes them.
#[derive(Debug)]
pub struct WorkerCgroup {
    memory: Option<(Version, PathBuf)>,
    cpu: Option<(Version, PathBuf)>,
    pids: Option<(Version, PathBuf)>,
    v2: Option<PathBuf>,
    /// Every directory created for the worker, each once.
    dirs: Vec<PathBuf>,
}

impl WorkerCgroup {
    /// Creates the worker's directories. An empty directory left by an earlier worker of the
    /// same name is replaced; one with processes in it is an error.
    pub fn create(layout: &Layout, name: &str) -> io::Result<WorkerCgroup> {
        let leaf = worker_dir_name(name);
        let mut cg = WorkerCgroup {
            memory: None,
            cpu: None,
            pids: None,
            v2: None,
            dirs: Vec::new(),
        };
        let make = |cg: &mut WorkerCgroup, parent: &Path| -> io::Result<PathBuf> {
            let dir = parent.join(&leaf);
            if !cg.dirs.contains(&dir) {
                if !mkdir(&dir)? {
                    // Left by a crashed server (its workers died with it) or in use by a live
                    // worker of the same name, which is the caller's mistake: not ours to kill.
                    std::fs::remove_dir(&dir).map_err(|e| {
                        io::Error::new(
                            io::ErrorKind::AlreadyExists,
                            format!("{} is in use: {e}", dir.display()),
                        )
                    })?;
                    std::fs::create_dir(&dir)?;
                }
                cg.dirs.push(dir.clone());
            }
            Ok(dir)
        };
        if let Some(parent) = &layout.v2_parent {
            cg.v2 = Some(make(&mut cg, parent)?);
        }
        for controller in Controller::ALL {
            if let Some(p) = layout.placement(controller) {
                let dir = make(&mut cg, &p.parent)?;
                let slot = Some((p.version, dir));
                match controller {
                    Controller::Memory => cg.memory = slot,
                    Controller::Cpu => cg.cpu = slot,
                    Controller::Pids => cg.pids = slot,
                }
            }
        }
        Ok(cg)
    }

    /// Moves `pid` into every one of the worker's cgroups (its children follow it).
    pub fn add_process(&self, pid: u32) -> io::Result<()> {
        for dir in &self.dirs {
            write(&dir.join("cgroup.procs"), &pid.to_string())?;
        }
        Ok(())
    }

    pub fn set_limits(&self, limits: &Limits) -> Result<(), SandboxError> {
        let err = |c: Controller| {
            move |source| SandboxError::Limit {
                what: c.limit_name(),
                source,
            }
        };
        if let Some((version, dir)) = &self.memory {
            set_memory(*version, dir, limits.memory_bytes).map_err(err(Controller::Memory))?;
        }
        if let Some((version, dir)) = &self.cpu {
            let quota = (u64::from(limits.cpu_millis) * 100).max(CPU_MIN_QUOTA_US);
            match version {
                Version::V1 => write(&dir.join("cpu.cfs_period_us"), &CPU_PERIOD_US.to_string())
                    .and_then(|()| write(&dir.join("cpu.cfs_quota_us"), &quota.to_string())),
                Version::V2 => write(&dir.join("cpu.max"), &format!("{quota} {CPU_PERIOD_US}")),
            }
            .map_err(err(Controller::Cpu))?;
        }
        if let Some((_, dir)) = &self.pids {
            let max = u64::from(limits.pids) + 1;
            write(&dir.join("pids.max"), &max.to_string()).map_err(err(Controller::Pids))?;
        }
        Ok(())
    }

    pub fn usage(&self) -> Usage {
        let Some((version, dir)) = &self.memory else {
            return Usage::default();
        };
        let read = |file: &str| std::fs::read_to_string(dir.join(file)).ok();
        let (peak, events) = match version {
            Version::V1 => (
                read("memory.max_usage_in_bytes"),
                read("memory.oom_control"),
            ),
            Version::V2 => (read("memory.peak"), read("memory.events")),
        };
        let oom_kills = events
            .as_deref()
            .and_then(|text| {
                text.lines().find_map(|l| {
                    l.strip_prefix("oom_kill ")
                        .and_then(|n| n.trim().parse().ok())
                })
            })
            .unwrap_or(0);
        Usage {
            memory_peak_bytes: peak.and_then(|p| p.trim().parse().ok()),
            oom_kills,
        }
    }

    /// Kills every process in the worker's cgroups and waits (briefly) until they are gone.
    ///
    /// Once every member has been sent SIGKILL the cpu quota is lifted: a killed process
    /// still needs cpu to exit, and a worker that spent its quota (a fork bomb, a spin) would
    /// otherwise be throttled while dying — seconds for a few dozen processes at 100
    /// millicpu, during which the caller waits and the cgroup cannot be removed. A process
    /// with SIGKILL pending never returns to user space, so nothing of the function runs
    /// unthrottled.
    pub fn kill_all(&self) {
        kill_members(&self.dirs, self.v2.as_deref(), || self.lift_cpu_quota());
    }

    fn lift_cpu_quota(&self) {
        let Some((version, dir)) = &self.cpu else {
            return;
        };
        let result = match version {
            Version::V1 => write(&dir.join("cpu.cfs_quota_us"), "-1"),
            Version::V2 => write(&dir.join("cpu.max"), &format!("max {CPU_PERIOD_US}")),
        };
        if let Err(error) = result {
            tracing::debug!(%error, dir = %dir.display(), "cannot lift the cpu quota of a dying worker");
        }
    }
}

impl Drop for WorkerCgroup {
    /// Kills what is left and removes the directories. A directory whose last processes are
    /// still exiting is removed by a background thread, so that dropping a worker never
    /// blocks its caller (often an async task) for long.
    fn drop(&mut self) {
        self.kill_all();
        let mut busy = Vec::new();
        for dir in self.dirs.iter().rev() {
            match std::fs::remove_dir(dir) {
                Ok(()) => {}
                Err(e) if e.kind() == io::ErrorKind::NotFound => {}
                Err(e) if e.raw_os_error() == Some(libc::EBUSY) => busy.push(dir.clone()),
                Err(error) => {
                    tracing::warn!(%error, dir = %dir.display(), "cannot remove a worker cgroup")
                }
            }
        }
        if busy.is_empty() {
            return;
        }
        let spawned = std::thread::Builder::new()
            .name("cgroup-rmdir".into())
            .spawn(move || {
                for dir in busy {
                    if let Err(error) = remove_dir_patiently(&dir) {
                        tracing::warn!(%error, dir = %dir.display(), "cannot remove a worker cgroup");
                    }
                }
            });
        if let Err(error) = spawned {
            tracing::warn!(%error, "cannot start a thread to remove worker cgroups");
        }
    }
}

fn set_memory(version: Version, dir: &Path, bytes: u64) -> io::Result<()> {
    match version {
        Version::V1 => {
            let limit = dir.join("memory.limit_in_bytes");
            let memsw = dir.join("memory.memsw.limit_in_bytes");
            if !memsw.exists() {
                return write(&limit, &bytes.to_string());
            }
            // memory.limit_in_bytes may never exceed memory.memsw.limit_in_bytes: lower the
            // memory limit first, raise the memory+swap limit first. Equal values mean no swap.
            match write(&limit, &bytes.to_string()) {
                Ok(()) => write(&memsw, &bytes.to_string()),
                Err(e) if e.raw_os_error() == Some(libc::EINVAL) => {
                    write(&memsw, &bytes.to_string())?;
                    write(&limit, &bytes.to_string())
                }
                Err(e) => Err(e),
            }
        }
        Version::V2 => {
            write(&dir.join("memory.max"), &bytes.to_string())?;
            let swap = dir.join("memory.swap.max");
            if swap.exists() {
                write(&swap, "0")
            } else {
                Ok(())
            }
        }
    }
}

fn members(dirs: &[PathBuf]) -> Vec<libc::pid_t> {
    let mut pids: Vec<libc::pid_t> = dirs
        .iter()
        .filter_map(|d| std::fs::read_to_string(d.join("cgroup.procs")).ok())
        .flat_map(|text| {
            text.lines()
                .filter_map(|l| l.trim().parse().ok())
                .collect::<Vec<_>>()
        })
        .collect();
    pids.sort_unstable();
    pids.dedup();
    pids
}

/// `cgroup.kill` where the v2 group has it; else SIGKILL to every listed process, again and
/// again, until none is left (a process may fork between the read and the kill; the pids
/// limit bounds how long that can go on). `killed` runs once every member present has been
/// sent SIGKILL.
fn kill_members(dirs: &[PathBuf], v2: Option<&Path>, killed: impl FnOnce()) {
    let deadline = Instant::now() + Duration::from_secs(2);
    let mut killed = Some(killed);
    // cgroup.kill signals every member and keeps forks from escaping it meanwhile; without
    // it (or if it fails), members are signalled one by one below.
    let kill_file = v2.map(|d| d.join("cgroup.kill")).filter(|f| f.exists());
    let by_cgroup_kill = kill_file.is_some_and(|file| match write(&file, "1") {
        Ok(()) => true,
        Err(error) => {
            tracing::warn!(%error, file = %file.display(), "cgroup.kill failed");
            false
        }
    });
    if by_cgroup_kill && let Some(f) = killed.take() {
        f();
    }
    loop {
        let pids = members(dirs);
        if pids.is_empty() {
            return;
        }
        if Instant::now() > deadline {
            tracing::warn!(left = pids.len(), "worker processes survive SIGKILL");
            return;
        }
        if !by_cgroup_kill {
            for pid in pids {
                // SAFETY: kill(2) with integer arguments.
                unsafe { libc::kill(pid, libc::SIGKILL) };
            }
            if let Some(f) = killed.take() {
                f();
            }
        }
        std::thread::sleep(Duration::from_millis(1));
    }
}

/// `rmdir`, retried while the cgroup still has exiting members.
fn remove_dir_patiently(dir: &Path) -> io::Result<()> {
    let deadline = Instant::now() + Duration::from_secs(2);
    loop {
        match std::fs::remove_dir(dir) {
            Ok(()) => return Ok(()),
            Err(e) if e.kind() == io::ErrorKind::NotFound => return Ok(()),
            Err(e) if e.raw_os_error() == Some(libc::EBUSY) && Instant::now() < deadline => {
                std::thread::sleep(Duration::from_millis(5));
            }
            Err(e) => return Err(e),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const MOUNTINFO: &str = "\
22 27 0:21 / /proc rw,relatime - proc proc rw
31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu
32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct
34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory
37 30 0:34 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids
39 30 0:36 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw
40 30 0:37 /docker/abc /sys/fs/cgroup/inner rw,relatime shared:4 - cgroup cgroup rw,freezer";

    const SELF_CGROUP: &str = "\
9:freezer:/docker/abc/x
8:pids:/
4:memory:/process_api/e4d7
2:cpuacct:/
1:cpu:/
0::/";

    #[test]
    fn parses_this_machines_shape() {
        let m = Mounts::parse(MOUNTINFO, SELF_CGROUP, Path::new("/r"));
        assert_eq!(m.v2, Some(PathBuf::from("/r/sys/fs/cgroup/unified")));
        let v1: Vec<(String, Vec<String>)> =
            m.v1.iter()
                .map(|(p, c)| (p.display().to_string(), c.clone()))
                .collect();
        assert_eq!(
            v1,
            vec![
                ("/r/sys/fs/cgroup/cpu".to_string(), vec!["cpu".to_string()]),
                (
                    "/r/sys/fs/cgroup/cpuacct".to_string(),
                    vec!["cpuacct".to_string()]
                ),
                (
                    "/r/sys/fs/cgroup/memory/process_api/e4d7".to_string(),
                    vec!["memory".to_string()]
                ),
                (
                    "/r/sys/fs/cgroup/pids".to_string(),
                    vec!["pids".to_string()]
                ),
            ]
        );
    }

    /// A cgroup2 tree whose root offers memory, cpu and pids, as a directory of plain files.
    fn fake_v2(controllers: &str) -> (tempfile::TempDir, Mounts) {
        let dir = tempfile::tempdir().unwrap();
        let root = dir.path().join("sys/fs/cgroup");
        std::fs::create_dir_all(&root).unwrap();
        std::fs::write(root.join("cgroup.controllers"), controllers).unwrap();
        std::fs::write(root.join("cgroup.subtree_control"), "").unwrap();
        let mounts = Mounts::parse(
            "30 1 0:26 / /sys/fs/cgroup rw - cgroup2 cgroup2 rw",
            "0::/",
            dir.path(),
        );
        (dir, mounts)
    }

    fn read(path: &Path) -> String {
        std::fs::read_to_string(path).unwrap()
    }

    #[test]
    fn v2_path_writes_limits_and_reads_usage() {
        let (dir, mounts) = fake_v2("cpu memory pids");
        let layout = Layout::discover(&mounts, "qinling");
        let parent = dir.path().join("sys/fs/cgroup/qinling");
        assert_eq!(
            layout.memory,
            Some(Placement {
                version: Version::V2,
                parent: parent.clone()
            })
        );
        assert_eq!(layout.cpu.as_ref().map(|p| p.version), Some(Version::V2));
        assert_eq!(layout.pids.as_ref().map(|p| p.version), Some(Version::V2));
        // Real kernels accumulate; the fake file keeps the last write.
        assert_eq!(read(&parent.join("cgroup.subtree_control")), "+pids");
        // The fake has no memory.peak: that is said, not hidden.
        assert!(
            layout.unenforced.iter().any(|u| u.contains("memory.peak")),
            "{:?}",
            layout.unenforced
        );

        let cg = WorkerCgroup::create(&layout, "fn/1 x").unwrap();
        let w = parent.join(worker_dir_name("fn/1 x"));
        assert_eq!(cg.dirs, vec![w.clone()]);
        std::fs::write(w.join("memory.swap.max"), "max").unwrap();
        let limits = Limits {
            memory_bytes: 64 << 20,
            cpu_millis: 250,
            pids: 10,
            ..Limits::default()
        };
        cg.set_limits(&limits).unwrap();
        assert_eq!(read(&w.join("memory.max")), "67108864");
        assert_eq!(read(&w.join("memory.swap.max")), "0");
        assert_eq!(read(&w.join("cpu.max")), "25000 100000");
        assert_eq!(read(&w.join("pids.max")), "11");
        cg.set_limits(&Limits {
            cpu_millis: 0,
            ..limits
        })
        .unwrap();
        assert_eq!(read(&w.join("cpu.max")), "1000 100000");

        std::fs::write(w.join("memory.peak"), "1234567\n").unwrap();
        std::fs::write(
            w.join("memory.events"),
            "low 0\nhigh 0\nmax 3\noom 2\noom_kill 2\noom_group_kill 0\n",
        )
        .unwrap();
        assert_eq!(
            cg.usage(),
            Usage {
                memory_peak_bytes: Some(1234567),
                oom_kills: 2
            }
        );

        cg.add_process(4242).unwrap();
        assert_eq!(read(&w.join("cgroup.procs")), "4242");
        // kill_all writes cgroup.kill (then waits for cgroup.procs to empty, which the fake
        // must do by hand).
        std::fs::write(w.join("cgroup.kill"), "").unwrap();
        std::fs::write(w.join("cgroup.procs"), "").unwrap();
        cg.kill_all();
        assert_eq!(read(&w.join("cgroup.kill")), "1");
        assert_eq!(
            read(&w.join("cpu.max")),
            "max 100000",
            "a dying worker is not throttled"
        );
    }

    #[test]
    fn v2_without_controllers_falls_back_or_says_so() {
        let (_dir, mounts) = fake_v2("hugetlb");
        let layout = Layout::discover(&mounts, "qinling");
        assert!(layout.memory.is_none() && layout.cpu.is_none() && layout.pids.is_none());
        assert!(
            layout.v2_parent.is_some(),
            "a v2 group still serves membership and cgroup.kill"
        );
        assert_eq!(
            layout.unenforced,
            vec![
                "memory limit per worker: cgroup v2 does not offer it; no cgroup v1 hierarchy has it",
                "cpu quota per worker: cgroup v2 does not offer it; no cgroup v1 hierarchy has it",
                "pids limit per worker: cgroup v2 does not offer it; no cgroup v1 hierarchy has it",
            ]
        );
    }

    #[test]
    fn v1_memory_respects_memsw_ordering() {
        let dir = tempfile::tempdir().unwrap();
        let d = dir.path();
        std::fs::write(d.join("memory.limit_in_bytes"), "").unwrap();
        std::fs::write(d.join("memory.memsw.limit_in_bytes"), "").unwrap();
        set_memory(Version::V1, d, 1 << 20).unwrap();
        assert_eq!(read(&d.join("memory.limit_in_bytes")), "1048576");
        assert_eq!(read(&d.join("memory.memsw.limit_in_bytes")), "1048576");
        let usage_dir = d.join("w");
        std::fs::create_dir(&usage_dir).unwrap();
        std::fs::write(usage_dir.join("memory.max_usage_in_bytes"), "777\n").unwrap();
        std::fs::write(
            usage_dir.join("memory.oom_control"),
            "oom_kill_disable 0\nunder_oom 0\noom_kill 5\n",
        )
        .unwrap();
        let cg = WorkerCgroup {
            memory: Some((Version::V1, usage_dir.clone())),
            cpu: None,
            pids: None,
            v2: None,
            dirs: vec![],
        };
        assert_eq!(
            cg.usage(),
            Usage {
                memory_peak_bytes: Some(777),
                oom_kills: 5
            }
        );
    }

    #[test]
    fn worker_dir_names_are_safe() {
        assert_eq!(dir_name("worker-1.py_3"), "worker-1.py_3");
        assert_eq!(dir_name("../../etc"), "w.._.._etc");
        assert_eq!(dir_name(""), "w");
        assert_eq!(dir_name("a b/c"), "a_b_c");
        let own = worker_dir_name("python3-7");
        assert_eq!(owner_pid(&own), Some(std::process::id() as i32));
        assert!(pid_alive(std::process::id() as i32));
        assert_eq!(owner_pid("python3-7"), None);
        assert_eq!(owner_pid("sx-1"), None);
    }
}
