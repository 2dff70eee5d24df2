//! The kernel calls the jail makes while it builds itself, behind one narrow trait.
//!
//! [`Sys`] is the whole surface between the jail's setup logic (`setup.rs`) and the kernel:
//! namespaces, mounts, credentials, capabilities, rlimits, seccomp and the final `execve`.
//! [`LinuxSys`] makes the real calls; `RecordingSys` (tests only) writes each call down as a
//! line of text and answers from a fake file system, so the order and arguments of the whole
//! setup are checked without root (youki's `syscall/{syscall,linux,test}.rs` split). Process
//! plumbing (fork, wait, the handshake sockets) is not here: it lives in `init.rs` and is
//! covered by the integration tests.

use std::ffi::{CString, OsStr, OsString};
use std::io;
use std::os::fd::RawFd;
use std::os::unix::ffi::OsStrExt;
use std::path::{Path, PathBuf};

/// `mount_setattr(2)` attribute bits (linux/mount.h; not all are in the libc crate).
pub const MOUNT_ATTR_RDONLY: u64 = 0x1;
pub const MOUNT_ATTR_NOSUID: u64 = 0x2;
pub const MOUNT_ATTR_NODEV: u64 = 0x4;
pub const MOUNT_ATTR_NOEXEC: u64 = 0x8;

/// `open_tree(2)` and `move_mount(2)` flags (linux/mount.h).
const OPEN_TREE_CLONE: libc::c_uint = 1;
const OPEN_TREE_CLOEXEC: libc::c_uint = libc::O_CLOEXEC as libc::c_uint;
const MOVE_MOUNT_F_EMPTY_PATH: libc::c_uint = 0x4;

/// What is at a path, without following a final symlink.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FileKind {
    Dir,
    File,
    Symlink,
    /// Device nodes, sockets, fifos.
    Other,
}

/// Resource limits the jail sets (a closed list, so the recording double can name them).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Rlimit {
    NoFile,
    NProc,
    FSize,
    Core,
}

impl Rlimit {
    fn resource(self) -> libc::__rlimit_resource_t {
        match self {
            Rlimit::NoFile => libc::RLIMIT_NOFILE,
            Rlimit::NProc => libc::RLIMIT_NPROC,
            Rlimit::FSize => libc::RLIMIT_FSIZE,
            Rlimit::Core => libc::RLIMIT_CORE,
        }
    }
}

/// The kernel as the jail's setup sees it. Every method is one system call (or a fixed
/// short sequence of them) and reports the kernel's error unchanged.
pub trait Sys {
    fn unshare(&self, flags: libc::c_int) -> io::Result<()>;
    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()>;
    /// `mount_setattr(2)`: adds `set` to the mount at `path` (and every mount below it if
    /// `recursive`). Unlike a bind remount it cannot clear flags the kernel locked.
    fn mount_setattr(&self, path: &Path, set: u64, recursive: bool) -> io::Result<()>;
    fn umount2(&self, target: &Path, flags: libc::c_int) -> io::Result<()>;
    /// `open_tree(OPEN_TREE_CLONE | AT_RECURSIVE)` of `path` followed by `mount_setattr` of
    /// `attrs` on the detached copy: a read-only bind mount not yet attached anywhere. The
    /// descriptor is close-on-exec and lives until `execve`.
    fn clone_tree(&self, path: &Path, attrs: u64) -> io::Result<RawFd>;
    /// `move_mount` of a tree from [`Sys::clone_tree`] onto `target`.
    fn attach_tree(&self, tree: RawFd, target: &Path) -> io::Result<()>;
    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()>;
    fn chdir(&self, path: &Path) -> io::Result<()>;
    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()>;
    /// Creates (or truncates) a regular file with `contents`.
    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> io::Result<()>;
    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()>;
    /// `lstat(2)`: what is at `path`, `None` if nothing.
    fn file_kind(&self, path: &Path) -> io::Result<Option<FileKind>>;
    fn sethostname(&self, name: &str) -> io::Result<()>;
    /// The hard limit currently in force (a process without `CAP_SYS_RESOURCE` in the
    /// initial namespace can only lower it).
    fn hard_rlimit(&self, resource: Rlimit) -> io::Result<u64>;
    /// Sets both the soft and the hard limit.
    fn setrlimit(&self, resource: Rlimit, value: u64) -> io::Result<()>;
    fn setgroups_empty(&self) -> io::Result<()>;
    fn setresgid(&self, gid: u32) -> io::Result<()>;
    fn setresuid(&self, uid: u32) -> io::Result<()>;
    fn set_keep_caps(&self, keep: bool) -> io::Result<()>;
    /// Makes the effective capability set equal to the permitted one (after a uid change).
    fn raise_effective_caps(&self) -> io::Result<()>;
    /// `PR_CAPBSET_DROP`; `EINVAL` once `cap` is past the kernel's last capability.
    fn drop_bounding_cap(&self, cap: u32) -> io::Result<()>;
    fn clear_ambient_caps(&self) -> io::Result<()>;
    /// Empties the effective, permitted and inheritable capability sets.
    /// Sets the permitted and effective sets to `keep` (a mask of capability bits) and the
    /// inheritable set to nothing; `0` drops every capability.
    fn set_caps(&self, keep: u64) -> io::Result<()>;
    fn set_no_new_privs(&self) -> io::Result<()>;
    fn setsid(&self) -> io::Result<()>;
    fn umask(&self, mask: u32);
    /// Brings the loopback interface of the current network namespace up.
    fn loopback_up(&self) -> io::Result<()>;
    /// Marks every descriptor from `first` on close-on-exec.
    fn cloexec_from(&self, first: u32) -> io::Result<()>;
    fn seccomp(&self, filter: &[libc::sock_filter]) -> io::Result<()>;
    /// Replaces the process; returns only on failure.
    fn execve(&self, program: &Path, args: &[OsString], env: &[(OsString, OsString)]) -> io::Error;
}

/// The real kernel.
#[derive(Debug, Default, Clone, Copy)]
pub struct LinuxSys;

fn cstr(path: &OsStr) -> io::Result<CString> {
    CString::new(path.as_bytes())
        .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "path contains a NUL byte"))
}

fn check(ret: libc::c_int) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

fn check_long(ret: libc::c_long) -> io::Result<()> {
    if ret == -1 {
        Err(io::Error::last_os_error())
    } else {
        Ok(())
    }
}

/// `struct mount_attr` of linux/mount.h.
#[repr(C)]
struct MountAttr {
    attr_set: u64,
    attr_clr: u64,
    propagation: u64,
    userns_fd: u64,
}

/// `struct __user_cap_header_struct` and `__user_cap_data_struct` of linux/capability.h.
#[repr(C)]
struct CapHeader {
    version: u32,
    pid: libc::c_int,
}

#[repr(C)]
#[derive(Clone, Copy, Default)]
struct CapData {
    effective: u32,
    permitted: u32,
    inheritable: u32,
}

const LINUX_CAPABILITY_VERSION_3: u32 = 0x2008_0522;

impl Sys for LinuxSys {
    fn unshare(&self, flags: libc::c_int) -> io::Result<()> {
        // SAFETY: unshare(2) takes flags only.
        check(unsafe { libc::unshare(flags) })
    }

    fn mount(
        &self,
        source: Option<&Path>,
        target: &Path,
        fstype: Option<&str>,
        flags: libc::c_ulong,
        data: Option<&str>,
    ) -> io::Result<()> {
        let source = source.map(|s| cstr(s.as_os_str())).transpose()?;
        let target = cstr(target.as_os_str())?;
        let fstype = fstype.map(|s| cstr(OsStr::new(s))).transpose()?;
        let data = data.map(|s| cstr(OsStr::new(s))).transpose()?;
        // SAFETY: every pointer is either null or a NUL-terminated string that outlives the call.
        check(unsafe {
            libc::mount(
                source.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                target.as_ptr(),
                fstype.as_ref().map_or(std::ptr::null(), |s| s.as_ptr()),
                flags,
                data.as_ref()
                    .map_or(std::ptr::null(), |s| s.as_ptr().cast()),
            )
        })
    }

    fn mount_setattr(&self, path: &Path, set: u64, recursive: bool) -> io::Result<()> {
        let path = cstr(path.as_os_str())?;
        let attr = MountAttr {
            attr_set: set,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let flags = if recursive { libc::AT_RECURSIVE } else { 0 };
        // SAFETY: `path` is NUL-terminated and `attr` is a live `struct mount_attr` whose size
        // is passed along.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                libc::AT_FDCWD,
                path.as_ptr(),
                flags as libc::c_uint,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        })
    }

    fn umount2(&self, target: &Path, flags: libc::c_int) -> io::Result<()> {
        let target = cstr(target.as_os_str())?;
        // SAFETY: `target` is NUL-terminated.
        check(unsafe { libc::umount2(target.as_ptr(), flags) })
    }

    fn clone_tree(&self, path: &Path, attrs: u64) -> io::Result<RawFd> {
        let path = cstr(path.as_os_str())?;
        let flags = OPEN_TREE_CLONE | OPEN_TREE_CLOEXEC | libc::AT_RECURSIVE as libc::c_uint;
        // SAFETY: `path` is NUL-terminated; the call returns a new descriptor or -1.
        let fd =
            unsafe { libc::syscall(libc::SYS_open_tree, libc::AT_FDCWD, path.as_ptr(), flags) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        let fd = fd as RawFd;
        let attr = MountAttr {
            attr_set: attrs,
            attr_clr: 0,
            propagation: 0,
            userns_fd: 0,
        };
        let empty = c"";
        // SAFETY: `fd` is the tree just opened, `empty` is NUL-terminated and `attr` is a live
        // `struct mount_attr` whose size is passed along.
        let ret = unsafe {
            libc::syscall(
                libc::SYS_mount_setattr,
                fd,
                empty.as_ptr(),
                (libc::AT_EMPTY_PATH | libc::AT_RECURSIVE) as libc::c_uint,
                &attr as *const MountAttr,
                std::mem::size_of::<MountAttr>(),
            )
        };
        if ret == -1 {
            let err = io::Error::last_os_error();
            // SAFETY: `fd` was opened above and is not used after this.
            unsafe { libc::close(fd) };
            return Err(err);
        }
        Ok(fd)
    }

    fn attach_tree(&self, tree: RawFd, target: &Path) -> io::Result<()> {
        let target = cstr(target.as_os_str())?;
        let empty = c"";
        // SAFETY: both strings are NUL-terminated; `tree` is a descriptor from `clone_tree`.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_move_mount,
                tree,
                empty.as_ptr(),
                libc::AT_FDCWD,
                target.as_ptr(),
                MOVE_MOUNT_F_EMPTY_PATH,
            )
        })
    }

    fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
        let new_root = cstr(new_root.as_os_str())?;
        let put_old = cstr(put_old.as_os_str())?;
        // SAFETY: both paths are NUL-terminated.
        check_long(unsafe {
            libc::syscall(libc::SYS_pivot_root, new_root.as_ptr(), put_old.as_ptr())
        })
    }

    fn chdir(&self, path: &Path) -> io::Result<()> {
        std::env::set_current_dir(path)
    }

    fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
        let path = cstr(path.as_os_str())?;
        // SAFETY: `path` is NUL-terminated.
        check(unsafe { libc::mkdir(path.as_ptr(), mode) })
    }

    fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
        use std::io::Write;
        use std::os::unix::fs::OpenOptionsExt;
        let mut file = std::fs::OpenOptions::new()
            .write(true)
            .create(true)
            .truncate(true)
            .mode(mode)
            .open(path)?;
        file.write_all(contents)
    }

    fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
        std::os::unix::fs::symlink(target, link)
    }

    fn file_kind(&self, path: &Path) -> io::Result<Option<FileKind>> {
        match std::fs::symlink_metadata(path) {
            Ok(meta) => {
                let ft = meta.file_type();
                Ok(Some(if ft.is_dir() {
                    FileKind::Dir
                } else if ft.is_file() {
                    FileKind::File
                } else if ft.is_symlink() {
                    FileKind::Symlink
                } else {
                    FileKind::Other
                }))
            }
            Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
            Err(e) => Err(e),
        }
    }

    fn sethostname(&self, name: &str) -> io::Result<()> {
        // SAFETY: the pointer and length describe `name`'s bytes.
        check(unsafe { libc::sethostname(name.as_ptr().cast(), name.len()) })
    }

    fn hard_rlimit(&self, resource: Rlimit) -> io::Result<u64> {
        let mut lim = libc::rlimit {
            rlim_cur: 0,
            rlim_max: 0,
        };
        // SAFETY: `lim` is a valid out-pointer.
        check(unsafe { libc::getrlimit(resource.resource(), &mut lim) })?;
        Ok(lim.rlim_max)
    }

    fn setrlimit(&self, resource: Rlimit, value: u64) -> io::Result<()> {
        let lim = libc::rlimit {
            rlim_cur: value,
            rlim_max: value,
        };
        // SAFETY: `lim` is a valid in-pointer.
        check(unsafe { libc::setrlimit(resource.resource(), &lim) })
    }

    fn setgroups_empty(&self) -> io::Result<()> {
        // SAFETY: a zero-length list with a null pointer is what setgroups(2) documents.
        check(unsafe { libc::setgroups(0, std::ptr::null()) })
    }

    fn setresgid(&self, gid: u32) -> io::Result<()> {
        // SAFETY: plain integer arguments.
        check(unsafe { libc::setresgid(gid, gid, gid) })
    }

    fn setresuid(&self, uid: u32) -> io::Result<()> {
        // SAFETY: plain integer arguments.
        check(unsafe { libc::setresuid(uid, uid, uid) })
    }

    fn set_keep_caps(&self, keep: bool) -> io::Result<()> {
        // SAFETY: prctl(2) with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_KEEPCAPS, libc::c_ulong::from(keep), 0, 0, 0) })
    }

    fn raise_effective_caps(&self) -> io::Result<()> {
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        // SAFETY: version 3 capget/capset take one header and an array of two data structs.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_capget,
                &mut header as *mut CapHeader,
                data.as_mut_ptr(),
            )
        })?;
        for d in &mut data {
            d.effective = d.permitted;
        }
        // SAFETY: as above.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            )
        })
    }

    fn drop_bounding_cap(&self, cap: u32) -> io::Result<()> {
        // SAFETY: prctl(2) with integer arguments.
        check(unsafe { libc::prctl(libc::PR_CAPBSET_DROP, libc::c_ulong::from(cap), 0, 0, 0) })
    }

    fn clear_ambient_caps(&self) -> io::Result<()> {
        // SAFETY: prctl(2) with integer arguments.
        check(unsafe {
            libc::prctl(
                libc::PR_CAP_AMBIENT,
                libc::PR_CAP_AMBIENT_CLEAR_ALL as libc::c_ulong,
                0,
                0,
                0,
            )
        })
    }

    fn set_caps(&self, keep: u64) -> io::Result<()> {
        let mut header = CapHeader {
            version: LINUX_CAPABILITY_VERSION_3,
            pid: 0,
        };
        let mut data = [CapData::default(); 2];
        for (i, d) in data.iter_mut().enumerate() {
            let word = (keep >> (32 * i)) as u32;
            d.permitted = word;
            d.effective = word;
        }
        // SAFETY: version 3 capset takes one header and an array of two data structs.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_capset,
                &mut header as *mut CapHeader,
                data.as_ptr(),
            )
        })
    }

    fn set_no_new_privs(&self) -> io::Result<()> {
        // SAFETY: prctl(2) with integer arguments.
        check(unsafe { libc::prctl(libc::PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) })
    }

    fn setsid(&self) -> io::Result<()> {
        // SAFETY: no arguments.
        check(unsafe { libc::setsid() })
    }

    fn umask(&self, mask: u32) {
        // SAFETY: no memory is touched.
        unsafe {
            libc::umask(mask);
        }
    }

    fn loopback_up(&self) -> io::Result<()> {
        // SAFETY: socket(2) with integer arguments; the descriptor is owned right away.
        let fd = unsafe { libc::socket(libc::AF_INET, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC, 0) };
        if fd == -1 {
            return Err(io::Error::last_os_error());
        }
        // SAFETY: `fd` is a fresh descriptor that nothing else owns.
        let sock = unsafe { <std::os::fd::OwnedFd as std::os::fd::FromRawFd>::from_raw_fd(fd) };
        let raw = std::os::fd::AsRawFd::as_raw_fd(&sock);
        // SAFETY: an all-zero `ifreq` is valid (a C struct of integers and arrays).
        let mut ifr: libc::ifreq = unsafe { std::mem::zeroed() };
        for (dst, src) in ifr.ifr_name.iter_mut().zip(b"lo\0") {
            *dst = *src as libc::c_char;
        }
        // SAFETY: SIOCGIFFLAGS/SIOCSIFFLAGS read and write `ifr`, which lives across both calls;
        // `ifru_flags` is the union member these two requests use.
        unsafe {
            check(libc::ioctl(raw, libc::SIOCGIFFLAGS, &mut ifr))?;
            ifr.ifr_ifru.ifru_flags |= libc::IFF_UP as libc::c_short;
            check(libc::ioctl(raw, libc::SIOCSIFFLAGS, &ifr))
        }
    }

    fn cloexec_from(&self, first: u32) -> io::Result<()> {
        // SAFETY: close_range(2) with CLOSE_RANGE_CLOEXEC closes nothing; it only sets flags.
        check(unsafe {
            libc::close_range(first, u32::MAX, libc::CLOSE_RANGE_CLOEXEC as libc::c_int)
        })
    }

    fn seccomp(&self, filter: &[libc::sock_filter]) -> io::Result<()> {
        let len = u16::try_from(filter.len())
            .map_err(|_| io::Error::new(io::ErrorKind::InvalidInput, "filter too long"))?;
        let prog = libc::sock_fprog {
            len,
            filter: filter.as_ptr().cast_mut(),
        };
        // SAFETY: `prog` points at `filter`, which outlives the call; the kernel copies it.
        check_long(unsafe {
            libc::syscall(
                libc::SYS_seccomp,
                libc::SECCOMP_SET_MODE_FILTER,
                0,
                &prog as *const libc::sock_fprog,
            )
        })
    }

    fn execve(&self, program: &Path, args: &[OsString], env: &[(OsString, OsString)]) -> io::Error {
        let build = || -> io::Result<(CString, Vec<CString>, Vec<CString>)> {
            let prog = cstr(program.as_os_str())?;
            let mut argv = vec![prog.clone()];
            for a in args {
                argv.push(cstr(a)?);
            }
            let mut envp = Vec::with_capacity(env.len());
            for (k, v) in env {
                let mut kv = k.clone();
                kv.push("=");
                kv.push(v);
                envp.push(cstr(&kv)?);
            }
            Ok((prog, argv, envp))
        };
        let (prog, argv, envp) = match build() {
            Ok(parts) => parts,
            Err(e) => return e,
        };
        let argv_ptrs: Vec<*const libc::c_char> = argv
            .iter()
            .map(|a| a.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        let envp_ptrs: Vec<*const libc::c_char> = envp
            .iter()
            .map(|e| e.as_ptr())
            .chain(std::iter::once(std::ptr::null()))
            .collect();
        // SAFETY: `prog` and every element of the two null-terminated arrays are NUL-terminated
        // strings kept alive by `argv`/`envp` across the call.
        unsafe {
            libc::execve(prog.as_ptr(), argv_ptrs.as_ptr(), envp_ptrs.as_ptr());
        }
        io::Error::last_os_error()
    }
}

/// A path that is `root` joined with an absolute `path` (`/a` + `/b/c` = `/a/b/c`).
pub fn under(root: &Path, path: &Path) -> PathBuf {
    root.join(path.strip_prefix("/").unwrap_or(path))
}

#[cfg(test)]
pub use double::RecordingSys;

#[cfg(test)]
mod double {
    //! The recording double: every call becomes one line of text; queries are answered from
    //! a fake file system; one call can be made to fail.

    use super::*;
    use std::cell::RefCell;
    use std::collections::BTreeMap;

    #[derive(Debug, Default)]
    pub struct RecordingSys {
        pub calls: RefCell<Vec<String>>,
        /// What `file_kind` answers, by absolute path.
        pub files: BTreeMap<PathBuf, FileKind>,
        /// The first call whose line starts with this fails with `EPERM`.
        pub fail_on: Option<String>,
        /// Hard limits `hard_rlimit` answers (default: unlimited).
        pub hard_limits: BTreeMap<&'static str, u64>,
        /// Capabilities past this one do not exist (`drop_bounding_cap` answers `EINVAL`).
        pub last_cap: u32,
        next_fd: std::cell::Cell<RawFd>,
        /// Every capability dropped from the bounding set, in order.
        bounding: RefCell<Vec<u32>>,
    }

    impl RecordingSys {
        pub fn new() -> Self {
            Self {
                last_cap: 40,
                next_fd: std::cell::Cell::new(100),
                ..Self::default()
            }
        }

        pub fn lines(&self) -> Vec<String> {
            self.calls.borrow().clone()
        }

        pub fn bounding_dropped(&self) -> Vec<u32> {
            self.bounding.borrow().clone()
        }

        fn record(&self, line: String) -> io::Result<()> {
            let fail = self
                .fail_on
                .as_deref()
                .is_some_and(|prefix| line.starts_with(prefix));
            self.calls.borrow_mut().push(line);
            if fail {
                Err(io::Error::from_raw_os_error(libc::EPERM))
            } else {
                Ok(())
            }
        }
    }

    /// The names of the bits of `flags` that `names` knows, comma-separated.
    fn flag_names<T>(flags: T, names: &[(T, &str)]) -> String
    where
        T: Copy + std::ops::BitAnd<Output = T> + PartialEq + Default,
    {
        let set: Vec<&str> = names
            .iter()
            .filter(|(bit, _)| flags & *bit != T::default())
            .map(|(_, n)| *n)
            .collect();
        set.join(",")
    }

    fn mount_flags(flags: libc::c_ulong) -> String {
        const NAMES: &[(libc::c_ulong, &str)] = &[
            (libc::MS_BIND, "bind"),
            (libc::MS_REC, "rec"),
            (libc::MS_PRIVATE, "private"),
            (libc::MS_RDONLY, "ro"),
            (libc::MS_NOSUID, "nosuid"),
            (libc::MS_NODEV, "nodev"),
            (libc::MS_NOEXEC, "noexec"),
        ];
        flag_names(flags, NAMES)
    }

    fn attr_flags(set: u64) -> String {
        const NAMES: &[(u64, &str)] = &[
            (MOUNT_ATTR_RDONLY, "ro"),
            (MOUNT_ATTR_NOSUID, "nosuid"),
            (MOUNT_ATTR_NODEV, "nodev"),
            (MOUNT_ATTR_NOEXEC, "noexec"),
        ];
        flag_names(set, NAMES)
    }

    fn clone_flags(flags: libc::c_int) -> String {
        const NAMES: &[(libc::c_int, &str)] = &[
            (libc::CLONE_NEWUSER, "user"),
            (libc::CLONE_NEWNS, "mnt"),
            (libc::CLONE_NEWPID, "pid"),
            (libc::CLONE_NEWNET, "net"),
            (libc::CLONE_NEWIPC, "ipc"),
            (libc::CLONE_NEWUTS, "uts"),
            (libc::CLONE_NEWCGROUP, "cgroup"),
        ];
        flag_names(flags, NAMES)
    }

    impl Sys for RecordingSys {
        fn unshare(&self, flags: libc::c_int) -> io::Result<()> {
            self.record(format!("unshare {}", clone_flags(flags)))
        }

        fn mount(
            &self,
            source: Option<&Path>,
            target: &Path,
            fstype: Option<&str>,
            flags: libc::c_ulong,
            data: Option<&str>,
        ) -> io::Result<()> {
            let mut line = format!(
                "mount {} on {}",
                source.map_or("-".into(), |s| s.display().to_string()),
                target.display()
            );
            if let Some(t) = fstype {
                line.push_str(&format!(" type {t}"));
            }
            line.push_str(&format!(" [{}]", mount_flags(flags)));
            if let Some(d) = data {
                line.push_str(&format!(" {d}"));
            }
            self.record(line)
        }

        fn mount_setattr(&self, path: &Path, set: u64, recursive: bool) -> io::Result<()> {
            let rec = if recursive { " recursive" } else { "" };
            self.record(format!(
                "setattr {} [{}]{rec}",
                path.display(),
                attr_flags(set)
            ))
        }

        fn clone_tree(&self, path: &Path, attrs: u64) -> io::Result<RawFd> {
            let fd = self.next_fd.get();
            self.next_fd.set(fd + 1);
            self.record(format!(
                "clone_tree {} [{}] = fd {fd}",
                path.display(),
                attr_flags(attrs)
            ))?;
            Ok(fd)
        }

        fn attach_tree(&self, tree: RawFd, target: &Path) -> io::Result<()> {
            self.record(format!("attach fd {tree} on {}", target.display()))
        }

        fn umount2(&self, target: &Path, flags: libc::c_int) -> io::Result<()> {
            let detach = if flags & libc::MNT_DETACH != 0 {
                " detach"
            } else {
                ""
            };
            self.record(format!("umount {}{detach}", target.display()))
        }

        fn pivot_root(&self, new_root: &Path, put_old: &Path) -> io::Result<()> {
            self.record(format!(
                "pivot_root {} {}",
                new_root.display(),
                put_old.display()
            ))
        }

        fn chdir(&self, path: &Path) -> io::Result<()> {
            self.record(format!("chdir {}", path.display()))
        }

        fn mkdir(&self, path: &Path, mode: u32) -> io::Result<()> {
            self.record(format!("mkdir {} {mode:o}", path.display()))
        }

        fn write_file(&self, path: &Path, contents: &[u8], mode: u32) -> io::Result<()> {
            let text = String::from_utf8_lossy(contents).replace('\n', "\\n");
            self.record(format!("write {} {mode:o} \"{text}\"", path.display()))
        }

        fn symlink(&self, target: &Path, link: &Path) -> io::Result<()> {
            self.record(format!(
                "symlink {} -> {}",
                link.display(),
                target.display()
            ))
        }

        fn file_kind(&self, path: &Path) -> io::Result<Option<FileKind>> {
            Ok(self.files.get(path).copied())
        }

        fn sethostname(&self, name: &str) -> io::Result<()> {
            self.record(format!("sethostname {name}"))
        }

        fn hard_rlimit(&self, resource: Rlimit) -> io::Result<u64> {
            Ok(self
                .hard_limits
                .get(format!("{resource:?}").as_str())
                .copied()
                .unwrap_or(libc::RLIM_INFINITY))
        }

        fn setrlimit(&self, resource: Rlimit, value: u64) -> io::Result<()> {
            self.record(format!("setrlimit {resource:?} {value}"))
        }

        fn setgroups_empty(&self) -> io::Result<()> {
            self.record("setgroups []".into())
        }

        fn setresgid(&self, gid: u32) -> io::Result<()> {
            self.record(format!("setresgid {gid}"))
        }

        fn setresuid(&self, uid: u32) -> io::Result<()> {
            self.record(format!("setresuid {uid}"))
        }

        fn set_keep_caps(&self, keep: bool) -> io::Result<()> {
            self.record(format!("keepcaps {keep}"))
        }

        fn raise_effective_caps(&self) -> io::Result<()> {
            self.record("caps effective=permitted".into())
        }

        fn drop_bounding_cap(&self, cap: u32) -> io::Result<()> {
            if cap > self.last_cap {
                return Err(io::Error::from_raw_os_error(libc::EINVAL));
            }
            self.bounding.borrow_mut().push(cap);
            // One line for the whole set keeps the listing readable.
            if cap == 0 {
                self.record("drop bounding set".into())
            } else {
                Ok(())
            }
        }

        fn clear_ambient_caps(&self) -> io::Result<()> {
            self.record("clear ambient caps".into())
        }

        fn set_caps(&self, keep: u64) -> io::Result<()> {
            if keep == 0 {
                self.record("clear caps".into())
            } else {
                self.record(format!("caps keep {keep:#x}"))
            }
        }

        fn set_no_new_privs(&self) -> io::Result<()> {
            self.record("no_new_privs".into())
        }

        fn setsid(&self) -> io::Result<()> {
            self.record("setsid".into())
        }

        fn umask(&self, mask: u32) {
            let _ = self.record(format!("umask {mask:o}"));
        }

        fn loopback_up(&self) -> io::Result<()> {
            self.record("loopback up".into())
        }

        fn cloexec_from(&self, first: u32) -> io::Result<()> {
            self.record(format!("cloexec from {first}"))
        }

        fn seccomp(&self, filter: &[libc::sock_filter]) -> io::Result<()> {
            self.record(format!("seccomp {} instructions", filter.len()))
        }

        fn execve(
            &self,
            program: &Path,
            args: &[OsString],
            env: &[(OsString, OsString)],
        ) -> io::Error {
            let args: Vec<String> = args
                .iter()
                .map(|a| a.to_string_lossy().into_owned())
                .collect();
            let env: Vec<String> = env
                .iter()
                .map(|(k, v)| format!("{}={}", k.to_string_lossy(), v.to_string_lossy()))
                .collect();
            match self.record(format!(
                "execve {} {:?} env {:?}",
                program.display(),
                args,
                env
            )) {
                Ok(()) => io::Error::other("execve recorded"),
                Err(e) => e,
            }
        }
    }
}
