//! What a jail's root file system is made of, decided by the server before a launch.
//!
//! The plan is plain data ([`Entry`] list) computed from the host's file system and sent to
//! the jail's init, which only carries it out (`setup.rs`). Deciding here, in the server,
//! keeps the policy in one reviewable place and lets it be tested against a fake host tree:
//! the jail sees the system directories (`/usr`, `/lib*`, `/bin`, `/sbin` or the symlinks that
//! stand for them on merged-`/usr` systems), a short list of harmless `/etc` files, a few
//! device nodes, and exactly the read-only paths of the [`LaunchSpec`](crate::LaunchSpec) — so a
//! Python prefix under `/root` is shown while the rest of `/root` is not. `/etc/passwd`,
//! `/etc/group` and `/etc/hosts` are generated: the host's account database (and never
//! `/etc/shadow`) stays outside. `/proc`, `/dev` and `/tmp` are mounted fresh by the init and
//! are not part of the plan, except the device nodes and `/dev` symlinks.

use std::io;
use std::path::{Component, Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::sys::under;

/// One thing placed in the jail's root.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub enum Entry {
    /// Host path `src` shown read-only at `dst` (with everything mounted below it). Device
    /// nodes keep `dev` so they can be opened; everything else is `nodev` and `nosuid`.
    Bind {
        src: PathBuf,
        dst: PathBuf,
        dir: bool,
        device: bool,
    },
    /// A symlink at `dst` pointing at `target` (kept as the host spells it).
    Symlink { dst: PathBuf, target: PathBuf },
    /// A file generated for the jail.
    File { dst: PathBuf, contents: String },
}

impl Entry {
    pub fn dst(&self) -> &Path {
        match self {
            Entry::Bind { dst, .. } | Entry::Symlink { dst, .. } | Entry::File { dst, .. } => dst,
        }
    }
}

/// Top-level system directories, shown read-only when the host has them.
pub const SYSTEM_DIRS: &[&str] = &[
    "/usr", "/bin", "/sbin", "/lib", "/lib32", "/lib64", "/libx32",
];

/// What runtimes read from `/etc`: the dynamic linker's cache, time zone, name-service switch
/// (so lookups do not fall back to surprising defaults), protocol and service tables, MIME
/// types, TLS trust anchors and Debian's alternatives symlinks. None of it is secret.
pub const ETC_ENTRIES: &[&str] = &[
    "/etc/ld.so.cache",
    "/etc/ld.so.conf",
    "/etc/ld.so.conf.d",
    "/etc/localtime",
    "/etc/timezone",
    "/etc/nsswitch.conf",
    "/etc/host.conf",
    "/etc/gai.conf",
    "/etc/protocols",
    "/etc/services",
    "/etc/mime.types",
    "/etc/ssl/certs",
    "/etc/ssl/openssl.cnf",
    "/etc/ca-certificates",
    "/etc/pki/tls/certs",
    "/etc/alternatives",
];

/// The resolver of a networked jail: the DNS forwarder of its user-mode network stack
/// (slirp4netns's default address), which asks the host's resolvers. The host's own
/// `resolv.conf` may name a resolver on the host's loopback, which the jail cannot reach.
pub const NETWORK_RESOLV_CONF: &str = "nameserver 10.0.2.3\noptions edns0\n";

/// Host device nodes bound into the jail's `/dev`.
pub const DEVICES: &[&str] = &[
    "/dev/null",
    "/dev/zero",
    "/dev/full",
    "/dev/random",
    "/dev/urandom",
];

/// Paths the init mounts itself; a read-only path may not be placed inside them.
const RESERVED: &[&str] = &["/proc", "/dev"];

/// The account the jail runs as, as seen inside, when the server cannot map more than one
/// id (an unprivileged server): the runtime and its executions share it.
pub const JAIL_USER: &str = "sandbox";
pub const JAIL_UID: u32 = 1000;
pub const JAIL_GID: u32 = 1000;
/// The ids executions run under when the server can map a range (root): inside
/// `EXEC_FIRST_ID ..= EXEC_FIRST_ID + EXEC_IDS - 1`, one per live execution process (the
/// first is [`JAIL_UID`]); the runtime itself is uid and gid 0 of the jail's user namespace.
pub const EXEC_FIRST_ID: u32 = JAIL_UID;
pub const EXEC_IDS: u32 = 256;
/// The jail's host name (the same for every worker: it carries no information).
pub const JAIL_HOSTNAME: &str = "qinling";

#[derive(Debug, thiserror::Error)]
pub enum PlanError {
    #[error("read-only path {0} is not absolute and normal (no `..`)")]
    NotAbsolute(PathBuf),
    #[error("read-only path {0} is inside a directory the jail mounts itself")]
    Reserved(PathBuf),
    #[error("cannot resolve read-only path {path}")]
    Resolve {
        path: PathBuf,
        #[source]
        source: io::Error,
    },
}

/// The host as the planner reads it: `root` is `/` in production and a fake tree in tests.
#[derive(Debug, Clone)]
pub struct Host {
    root: PathBuf,
}

impl Host {
    pub fn new(root: impl Into<PathBuf>) -> Self {
        Self { root: root.into() }
    }

    fn lstat(&self, path: &Path) -> Option<std::fs::Metadata> {
        std::fs::symlink_metadata(under(&self.root, path)).ok()
    }

    /// `path` with every symlink resolved, as a host path.
    fn canonical(&self, path: &Path) -> io::Result<PathBuf> {
        let root = self.root.canonicalize()?;
        let full = under(&self.root, path).canonicalize()?;
        Ok(Path::new("/").join(
            full.strip_prefix(&root)
                .map_err(|_| io::Error::other("resolves outside the host root"))?,
        ))
    }

    fn is_dir(&self, path: &Path) -> bool {
        under(&self.root, path).is_dir()
    }
}

fn covered_by(entries: &[Entry], path: &Path) -> bool {
    entries.iter().any(|e| match e {
        Entry::Bind { dst, dir: true, .. } | Entry::Symlink { dst, .. } => path.starts_with(dst),
        Entry::Bind { dst, .. } | Entry::File { dst, .. } => path == dst,
    })
}

/// Whether `path` is reached through a directory bound at its own host path, so that the
/// host file is what the jail sees there.
fn shown_by_identity_bind(entries: &[Entry], path: &Path) -> bool {
    entries.iter().any(|e| matches!(e, Entry::Bind { src, dst, dir: true, .. } if src == dst && path.starts_with(dst)))
}

/// Adds host `path` at the same place: a symlink stays a symlink when what it points at is
/// shown anyway, otherwise what it resolves to is bound there.
fn add_host_path(host: &Host, entries: &mut Vec<Entry>, path: &Path) {
    let Some(meta) = host.lstat(path) else { return };
    if meta.file_type().is_symlink() {
        let Ok(target) = std::fs::read_link(under(&host.root, path)) else {
            return;
        };
        let Ok(resolved) = host.canonical(path) else {
            return;
        };
        if shown_by_identity_bind(entries, &resolved) {
            entries.push(Entry::Symlink {
                dst: path.to_path_buf(),
                target,
            });
        } else {
            let dir = host.is_dir(&resolved);
            entries.push(Entry::Bind {
                src: resolved,
                dst: path.to_path_buf(),
                dir,
                device: false,
            });
        }
    } else if meta.is_dir() || meta.is_file() {
        entries.push(Entry::Bind {
            src: path.to_path_buf(),
            dst: path.to_path_buf(),
            dir: meta.is_dir(),
            device: false,
        });
    }
}

/// The part of every jail's root that does not depend on the launch: computed once.
pub fn system_entries(host: &Host, network: bool) -> Vec<Entry> {
    let mut entries = Vec::new();
    // Real directories first, so symlinks to them are recognised as shown.
    for dir in SYSTEM_DIRS.iter().map(Path::new) {
        if host.lstat(dir).is_some_and(|m| m.is_dir()) {
            entries.push(Entry::Bind {
                src: dir.into(),
                dst: dir.into(),
                dir: true,
                device: false,
            });
        }
    }
    for dir in SYSTEM_DIRS.iter().map(Path::new) {
        if host.lstat(dir).is_some_and(|m| m.file_type().is_symlink()) {
            add_host_path(host, &mut entries, dir);
        }
    }
    for path in ETC_ENTRIES.iter().map(Path::new) {
        add_host_path(host, &mut entries, path);
    }
    entries.extend(generated_etc());
    if network {
        entries.push(Entry::File {
            dst: "/etc/resolv.conf".into(),
            contents: NETWORK_RESOLV_CONF.into(),
        });
    }
    for dev in DEVICES.iter().map(Path::new) {
        if host.lstat(dev).is_some() {
            entries.push(Entry::Bind {
                src: dev.into(),
                dst: dev.into(),
                dir: false,
                device: true,
            });
        }
    }
    for (name, target) in [
        ("fd", "/proc/self/fd"),
        ("stdin", "/proc/self/fd/0"),
        ("stdout", "/proc/self/fd/1"),
        ("stderr", "/proc/self/fd/2"),
        // POSIX shared memory and semaphores (Python's multiprocessing) live in /tmp, under
        // its size cap, rather than in a second writable file system.
        ("shm", "/tmp"),
    ] {
        entries.push(Entry::Symlink {
            dst: Path::new("/dev").join(name),
            target: target.into(),
        });
    }
    entries
}

/// `/etc/passwd`, `/etc/group`, `/etc/hosts`, `/etc/hostname` for the jail: only its own
/// user, and `nobody` for the host ids that have no name inside.
fn generated_etc() -> Vec<Entry> {
    let file = |dst: &str, contents: String| Entry::File {
        dst: dst.into(),
        contents,
    };
    // The runtime (uid 0 inside when executions get ids of their own), then one account per
    // execution id (`sandbox` is the first, and the only one an unprivileged server maps).
    let mut passwd = String::from("root:x:0:0:qinling runtime:/:/usr/sbin/nologin\n");
    let mut group = String::from("root:x:0:\n");
    for n in 0..EXEC_IDS {
        let id = EXEC_FIRST_ID + n;
        let name = if n == 0 {
            JAIL_USER.to_string()
        } else {
            format!("{JAIL_USER}{n}")
        };
        passwd.push_str(&format!(
            "{name}:x:{id}:{id}:qinling function:/tmp:/usr/sbin/nologin\n"
        ));
        group.push_str(&format!("{name}:x:{id}:\n"));
    }
    passwd.push_str("nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n");
    group.push_str("nogroup:x:65534:\n");
    vec![
        file("/etc/passwd", passwd),
        file("/etc/group", group),
        file(
            "/etc/hosts",
            format!(
                "127.0.0.1\tlocalhost {JAIL_HOSTNAME}\n::1\tlocalhost ip6-localhost ip6-loopback\n"
            ),
        ),
        file("/etc/hostname", format!("{JAIL_HOSTNAME}\n")),
    ]
}

fn is_normal_absolute(path: &Path) -> bool {
    path.is_absolute()
        && path
            .components()
            .all(|c| matches!(c, Component::RootDir | Component::Normal(_)))
}

/// Adds the launch's read-only paths and its program to `system`, which they may not shadow.
/// Each is bound at its resolved host path; where the given path differs (a symlink on the
/// way) and is not otherwise visible, a symlink at the given path leads there.
pub fn with_launch_paths(
    host: &Host,
    system: &[Entry],
    read_only_paths: &[PathBuf],
    program: &Path,
) -> Result<Vec<Entry>, PlanError> {
    let mut entries = system.to_vec();
    let mut wanted: Vec<&Path> = read_only_paths.iter().map(PathBuf::as_path).collect();
    wanted.push(program);
    // Parents before children, so a path inside an earlier one is seen as covered.
    wanted.sort_by_key(|p| p.components().count());
    for path in wanted {
        if !is_normal_absolute(path) {
            return Err(PlanError::NotAbsolute(path.into()));
        }
        if RESERVED.iter().any(|r| path.starts_with(r)) {
            return Err(PlanError::Reserved(path.into()));
        }
        let resolved = host.canonical(path).map_err(|source| PlanError::Resolve {
            path: path.into(),
            source,
        })?;
        if !covered_by(&entries, &resolved) {
            let dir = host.is_dir(&resolved);
            entries.push(Entry::Bind {
                src: resolved.clone(),
                dst: resolved.clone(),
                dir,
                device: false,
            });
        }
        if path != resolved && !covered_by(&entries, path) {
            entries.push(Entry::Symlink {
                dst: path.into(),
                target: resolved,
            });
        }
    }
    Ok(entries)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::os::unix::fs::symlink;

    /// A merged-`/usr` host with secrets next to what the jail needs.
    fn fake_host() -> tempfile::TempDir {
        let dir = tempfile::tempdir().unwrap();
        let r = dir.path();
        for d in [
            "usr/bin",
            "usr/lib/x86_64-linux-gnu",
            "usr/share/zoneinfo/Etc",
            "etc/ssl/certs",
            "etc/ssl/private",
            "root/.pyenv/versions/3.11.7/bin",
            "root/.cargo",
            "home/alice",
            "srv/data/runtimes",
            "dev",
        ] {
            std::fs::create_dir_all(r.join(d)).unwrap();
        }
        for f in [
            "usr/bin/python3.11",
            "usr/share/zoneinfo/Etc/UTC",
            "etc/ld.so.cache",
            "etc/passwd",
            "etc/shadow",
            "etc/resolv.conf.real",
            "etc/ssl/openssl.cnf",
            "root/.pyenv/versions/3.11.7/bin/python3.11",
            "srv/data/qinling.sqlite",
            "dev/null",
        ] {
            std::fs::write(r.join(f), "").unwrap();
        }
        symlink("usr/bin", r.join("bin")).unwrap();
        symlink("usr/lib", r.join("lib")).unwrap();
        symlink("../usr/share/zoneinfo/Etc/UTC", r.join("etc/localtime")).unwrap();
        symlink("resolv.conf.real", r.join("etc/resolv.conf")).unwrap();
        symlink("python3.11", r.join("usr/bin/python3")).unwrap();
        dir
    }

    fn render(entries: &[Entry]) -> String {
        let mut lines: Vec<String> = entries
            .iter()
            .map(|e| match e {
                Entry::Bind {
                    src,
                    dst,
                    dir,
                    device,
                } => {
                    let kind = if *device {
                        "dev"
                    } else if *dir {
                        "dir"
                    } else {
                        "file"
                    };
                    format!("bind {kind} {} <- {}", dst.display(), src.display())
                }
                Entry::Symlink { dst, target } => {
                    format!("link {} -> {}", dst.display(), target.display())
                }
                Entry::File { dst, .. } => format!("file {}", dst.display()),
            })
            .collect();
        lines.sort();
        lines.join("\n")
    }

    #[test]
    fn system_part_shows_only_what_runtimes_need() {
        let host = fake_host();
        let got = render(&system_entries(&Host::new(host.path()), false));
        let want = "\
bind dev /dev/null <- /dev/null
bind dir /etc/ssl/certs <- /etc/ssl/certs
bind dir /usr <- /usr
bind file /etc/ld.so.cache <- /etc/ld.so.cache
bind file /etc/ssl/openssl.cnf <- /etc/ssl/openssl.cnf
file /etc/group
file /etc/hostname
file /etc/hosts
file /etc/passwd
link /bin -> usr/bin
link /dev/fd -> /proc/self/fd
link /dev/shm -> /tmp
link /dev/stderr -> /proc/self/fd/2
link /dev/stdin -> /proc/self/fd/0
link /dev/stdout -> /proc/self/fd/1
link /etc/localtime -> ../usr/share/zoneinfo/Etc/UTC
link /lib -> usr/lib";
        assert_eq!(got, want);
    }

    #[test]
    fn network_adds_the_user_mode_resolver_not_the_hosts() {
        let host = fake_host();
        let h = Host::new(host.path());
        let resolv = |e: &&Entry| e.dst() == Path::new("/etc/resolv.conf");
        let networked = system_entries(&h, true);
        let found: Vec<_> = networked.iter().filter(resolv).collect();
        assert_eq!(
            found,
            [&Entry::File {
                dst: "/etc/resolv.conf".into(),
                contents: NETWORK_RESOLV_CONF.into()
            }]
        );
        assert_eq!(system_entries(&h, false).iter().filter(resolv).count(), 0);
    }

    #[test]
    fn launch_paths_bind_exactly_what_is_asked() {
        let host = fake_host();
        let h = Host::new(host.path());
        let system = system_entries(&h, false);
        let entries = with_launch_paths(
            &h,
            &system,
            &[
                "/root/.pyenv/versions/3.11.7".into(),
                "/srv/data/runtimes".into(),
            ],
            Path::new("/root/.pyenv/versions/3.11.7/bin/python3.11"),
        )
        .unwrap();
        let added: Vec<_> = entries[system.len()..].to_vec();
        assert_eq!(
            render(&added),
            "bind dir /root/.pyenv/versions/3.11.7 <- /root/.pyenv/versions/3.11.7\n\
             bind dir /srv/data/runtimes <- /srv/data/runtimes"
        );
        // The program inside an already shown tree, through a symlink: nothing to add.
        let entries = with_launch_paths(&h, &system, &[], Path::new("/bin/python3")).unwrap();
        assert_eq!(entries.len(), system.len());
    }

    #[test]
    fn launch_paths_are_checked() {
        let host = fake_host();
        let h = Host::new(host.path());
        let system = system_entries(&h, false);
        let prog = Path::new("/usr/bin/python3");
        let err = |p: &str| {
            with_launch_paths(&h, &system, &[p.into()], prog)
                .unwrap_err()
                .to_string()
        };
        assert_eq!(
            err("relative"),
            "read-only path relative is not absolute and normal (no `..`)"
        );
        assert_eq!(
            err("/srv/../etc"),
            "read-only path /srv/../etc is not absolute and normal (no `..`)"
        );
        assert_eq!(
            err("/proc/1"),
            "read-only path /proc/1 is inside a directory the jail mounts itself"
        );
        assert_eq!(
            err("/srv/missing"),
            "cannot resolve read-only path /srv/missing"
        );
    }

    #[test]
    fn secrets_never_appear() {
        let host = fake_host();
        let h = Host::new(host.path());
        let entries = with_launch_paths(
            &h,
            &system_entries(&h, true),
            &["/root/.pyenv/versions/3.11.7".into()],
            Path::new("/usr/bin/python3"),
        )
        .unwrap();
        for e in &entries {
            let dst = e.dst();
            for secret in [
                "/etc/shadow",
                "/root/.cargo",
                "/home",
                "/srv/data/qinling.sqlite",
                "/etc/ssl/private",
            ] {
                assert!(
                    !Path::new(secret).starts_with(dst) || dst == Path::new("/"),
                    "{secret} shown by {e:?}"
                );
                assert!(!dst.starts_with(secret), "{secret} shown by {e:?}");
            }
            if let Entry::Bind { src, .. } = e {
                assert_ne!(src, Path::new("/etc/passwd"));
                assert_ne!(src, Path::new("/etc"));
                assert_ne!(src, Path::new("/root"));
            }
        }
    }
}
