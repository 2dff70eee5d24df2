//! The seccomp filter every jailed process runs under, as data.
//!
//! The policy is a deny list on top of "allow": functions are ordinary CPython and Node
//! programs, and an allow list that keeps every interpreter, C extension and libc version
//! working is a moving target, while the calls a function never needs (mounting, tracing,
//! loading kernel code, changing the clock, entering or making namespaces) are a short, stable
//! list. Denied calls fail with `EPERM` rather than killing the process, so a runtime that
//! probes for a feature degrades instead of dying; `clone3` fails with `ENOSYS`, which makes
//! glibc fall back to `clone`, whose flags a classic BPF filter can inspect (it cannot read
//! `clone3`'s flags, which live behind a pointer). `clone` with any namespace flag is denied.
//!
//! The filter is written as classic BPF by hand (a few dozen instructions) rather than through
//! a crate: the whole program is [`filter`], the table [`DENIED`] is the policy, and the unit
//! tests run the program through a small interpreter against a table of calls. It is x86_64
//! only: other 32-bit ABIs reachable from an x86_64 process (i386 through `int 0x80`, x32
//! through the `__X32_SYSCALL_BIT`) get `EPERM` for every call, since their numbers differ.
//!
//! Because every denied or argument-checked call is decided on the number alone or returns
//! "allow" without looking at arguments for all other numbers, the kernel's per-syscall
//! action cache (5.11+) serves the common calls without running the program.

use libc::{c_long, sock_filter};

/// `AUDIT_ARCH_X86_64` of linux/audit.h.
const AUDIT_ARCH_X86_64: u32 = 0xC000_003E;
/// Syscall numbers with this bit set are the x32 ABI.
const X32_SYSCALL_BIT: u32 = 0x4000_0000;

const SECCOMP_RET_ALLOW: u32 = 0x7fff_0000;
const SECCOMP_RET_ERRNO: u32 = 0x0005_0000;

// Classic BPF opcodes (linux/filter.h).
const BPF_LD_W_ABS: u16 = 0x20;
const BPF_JEQ_K: u16 = 0x15;
const BPF_JGE_K: u16 = 0x35;
const BPF_JSET_K: u16 = 0x45;
const BPF_RET_K: u16 = 0x06;

// Offsets in `struct seccomp_data`: nr, arch, instruction pointer, then six 64-bit arguments
// (the low half of an argument comes first on a little-endian machine).
const OFF_NR: u32 = 0;
const OFF_ARCH: u32 = 4;
const fn off_arg_low(n: u32) -> u32 {
    16 + 8 * n
}

/// `open_tree_attr(2)` (Linux 6.15), not yet in the libc crate; same number on every arch.
const SYS_OPEN_TREE_ATTR: c_long = 467;

/// Namespace flags `clone(2)` may not carry. (`CLONE_NEWTIME` is absent: in `clone(2)` its bit
/// is part of the exit signal; only `clone3` and `unshare` accept it, and both are denied.)
pub const CLONE_NAMESPACE_FLAGS: u32 = (libc::CLONE_NEWNS
    | libc::CLONE_NEWUTS
    | libc::CLONE_NEWIPC
    | libc::CLONE_NEWUSER
    | libc::CLONE_NEWPID
    | libc::CLONE_NEWNET
    | libc::CLONE_NEWCGROUP) as u32;

/// `personality(2)` arguments that change nothing: the query and plain Linux.
const PERSONALITY_ALLOWED: [u32; 2] = [0xffff_ffff, 0];

/// The only socket families a jailed process may create (`socket(2)`, `socketpair(2)`):
/// Unix, IPv4 and IPv6. Every other family fails with `EAFNOSUPPORT`, as on a kernel built
/// without it: a network namespace confines only IP, while `AF_VSOCK` reaches the
/// hypervisor of a VM, `AF_NETLINK` the kernel's routing, audit and uevent interfaces,
/// `AF_PACKET` raw frames, `AF_ALG` the kernel's crypto, `AF_BLUETOOTH`, `AF_CAN`, `AF_TIPC`,
/// `AF_RDS`, `AF_XDP` … hardware and large, rarely used kernel code. CPython and Node need
/// none of them: glibc's `getaddrinfo` falls back when it cannot open its netlink socket,
/// and only interface listings (`if_nameindex`, `os.networkInterfaces()`) fail.
pub const SOCKET_FAMILIES_ALLOWED: [u32; 3] = [
    libc::AF_UNIX as u32,
    libc::AF_INET as u32,
    libc::AF_INET6 as u32,
];

/// `ioctl(2)` requests denied on any descriptor: pushing input into a terminal.
const IOCTL_DENIED: [u32; 2] = [libc::TIOCSTI as u32, libc::TIOCLINUX as u32];

/// System calls a function never needs; each fails with `EPERM`.
pub const DENIED: &[(&str, c_long)] = &[
    // Mounts and the root, old and new mount API.
    ("mount", libc::SYS_mount),
    ("umount2", libc::SYS_umount2),
    ("pivot_root", libc::SYS_pivot_root),
    ("fsopen", libc::SYS_fsopen),
    ("fsconfig", libc::SYS_fsconfig),
    ("fsmount", libc::SYS_fsmount),
    ("fspick", libc::SYS_fspick),
    ("move_mount", libc::SYS_move_mount),
    ("open_tree", libc::SYS_open_tree),
    ("open_tree_attr", SYS_OPEN_TREE_ATTR),
    ("mount_setattr", libc::SYS_mount_setattr),
    // Namespaces (clone's namespace flags and clone3 are handled below).
    ("unshare", libc::SYS_unshare),
    ("setns", libc::SYS_setns),
    // Other processes' memory and descriptors (another execution's, or the runtime's: the
    // separate ids and the non-dumpable runtime refuse them too; this holds without them).
    ("ptrace", libc::SYS_ptrace),
    ("process_vm_readv", libc::SYS_process_vm_readv),
    ("process_vm_writev", libc::SYS_process_vm_writev),
    ("pidfd_getfd", libc::SYS_pidfd_getfd),
    ("kcmp", libc::SYS_kcmp),
    // Kernel code and kernel facilities.
    ("kexec_load", libc::SYS_kexec_load),
    ("kexec_file_load", libc::SYS_kexec_file_load),
    ("init_module", libc::SYS_init_module),
    ("finit_module", libc::SYS_finit_module),
    ("delete_module", libc::SYS_delete_module),
    ("bpf", libc::SYS_bpf),
    ("perf_event_open", libc::SYS_perf_event_open),
    ("userfaultfd", libc::SYS_userfaultfd),
    ("lookup_dcookie", libc::SYS_lookup_dcookie),
    ("uselib", libc::SYS_uselib),
    ("syslog", libc::SYS_syslog),
    ("iopl", libc::SYS_iopl),
    ("ioperm", libc::SYS_ioperm),
    // Keys.
    ("keyctl", libc::SYS_keyctl),
    ("add_key", libc::SYS_add_key),
    ("request_key", libc::SYS_request_key),
    // The machine.
    ("reboot", libc::SYS_reboot),
    ("swapon", libc::SYS_swapon),
    ("swapoff", libc::SYS_swapoff),
    ("acct", libc::SYS_acct),
    ("quotactl", libc::SYS_quotactl),
    ("quotactl_fd", libc::SYS_quotactl_fd),
    // Clocks.
    ("settimeofday", libc::SYS_settimeofday),
    ("clock_settime", libc::SYS_clock_settime),
    ("clock_adjtime", libc::SYS_clock_adjtime),
    ("adjtimex", libc::SYS_adjtimex),
    // io_uring: a large kernel surface with a long record of local exploits; runtimes fall
    // back to ordinary system calls when it is refused (libuv does).
    ("io_uring_setup", libc::SYS_io_uring_setup),
    ("io_uring_enter", libc::SYS_io_uring_enter),
    ("io_uring_register", libc::SYS_io_uring_register),
    // File handles bypass path-based confinement.
    ("open_by_handle_at", libc::SYS_open_by_handle_at),
    ("name_to_handle_at", libc::SYS_name_to_handle_at),
];

const fn stmt(code: u16, k: u32) -> sock_filter {
    sock_filter {
        code,
        jt: 0,
        jf: 0,
        k,
    }
}

const fn jump(code: u16, k: u32, jt: u8, jf: u8) -> sock_filter {
    sock_filter { code, jt, jf, k }
}

const fn errno(e: i32) -> u32 {
    SECCOMP_RET_ERRNO | (e as u32 & 0xffff)
}

/// The jail's filter program.
pub fn filter() -> Vec<sock_filter> {
    let eperm = errno(libc::EPERM);
    let mut p = vec![
        // Only the native ABI; anything else gets EPERM for every call.
        stmt(BPF_LD_W_ABS, OFF_ARCH),
        jump(BPF_JEQ_K, AUDIT_ARCH_X86_64, 1, 0),
        stmt(BPF_RET_K, eperm),
        stmt(BPF_LD_W_ABS, OFF_NR),
        jump(BPF_JGE_K, X32_SYSCALL_BIT, 0, 1),
        stmt(BPF_RET_K, eperm),
    ];
    for &(_, nr) in DENIED {
        p.push(jump(BPF_JEQ_K, nr as u32, 0, 1));
        p.push(stmt(BPF_RET_K, eperm));
    }
    // clone3: ENOSYS, so libc falls back to clone.
    p.push(jump(BPF_JEQ_K, libc::SYS_clone3 as u32, 0, 1));
    p.push(stmt(BPF_RET_K, errno(libc::ENOSYS)));
    // clone: denied with any namespace flag in its first argument.
    p.extend([
        jump(BPF_JEQ_K, libc::SYS_clone as u32, 0, 4),
        stmt(BPF_LD_W_ABS, off_arg_low(0)),
        jump(BPF_JSET_K, CLONE_NAMESPACE_FLAGS, 0, 1),
        stmt(BPF_RET_K, eperm),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ]);
    // personality: only the query and PER_LINUX.
    p.extend([
        jump(BPF_JEQ_K, libc::SYS_personality as u32, 0, 5),
        stmt(BPF_LD_W_ABS, off_arg_low(0)),
        jump(BPF_JEQ_K, PERSONALITY_ALLOWED[0], 2, 0),
        jump(BPF_JEQ_K, PERSONALITY_ALLOWED[1], 1, 0),
        stmt(BPF_RET_K, eperm),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
    ]);
    // ioctl: no terminal input injection.
    p.extend([
        jump(BPF_JEQ_K, libc::SYS_ioctl as u32, 0, 5),
        stmt(BPF_LD_W_ABS, off_arg_low(1)),
        jump(BPF_JEQ_K, IOCTL_DENIED[0], 2, 0),
        jump(BPF_JEQ_K, IOCTL_DENIED[1], 1, 0),
        stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        stmt(BPF_RET_K, eperm),
    ]);
    // socket and socketpair: only the allowed families.
    for nr in [libc::SYS_socket, libc::SYS_socketpair] {
        p.extend([
            jump(BPF_JEQ_K, nr as u32, 0, 6),
            stmt(BPF_LD_W_ABS, off_arg_low(0)),
            jump(BPF_JEQ_K, SOCKET_FAMILIES_ALLOWED[0], 3, 0),
            jump(BPF_JEQ_K, SOCKET_FAMILIES_ALLOWED[1], 2, 0),
            jump(BPF_JEQ_K, SOCKET_FAMILIES_ALLOWED[2], 1, 0),
            stmt(BPF_RET_K, errno(libc::EAFNOSUPPORT)),
            stmt(BPF_RET_K, SECCOMP_RET_ALLOW),
        ]);
    }
    p.push(stmt(BPF_RET_K, SECCOMP_RET_ALLOW));
    p
}

#[cfg(test)]
mod tests {
    use super::*;

    /// What the kernel would hand the filter.
    struct Call {
        arch: u32,
        nr: u32,
        args: [u64; 6],
    }

    /// Runs the subset of classic BPF the filter uses.
    fn run(prog: &[sock_filter], call: &Call) -> u32 {
        let word = |off: u32| -> u32 {
            match off {
                OFF_NR => call.nr,
                OFF_ARCH => call.arch,
                o if (16..64).contains(&o) => {
                    let arg = call.args[((o - 16) / 8) as usize];
                    if (o - 16) % 8 == 0 {
                        arg as u32
                    } else {
                        (arg >> 32) as u32
                    }
                }
                o => panic!("load from unexpected offset {o}"),
            }
        };
        let (mut pc, mut acc) = (0usize, 0u32);
        loop {
            let ins = prog[pc];
            pc += 1;
            let taken = match ins.code {
                BPF_LD_W_ABS => {
                    acc = word(ins.k);
                    continue;
                }
                BPF_RET_K => return ins.k,
                BPF_JEQ_K => acc == ins.k,
                BPF_JGE_K => acc >= ins.k,
                BPF_JSET_K => acc & ins.k != 0,
                code => panic!("unexpected opcode {code:#x}"),
            };
            pc += usize::from(if taken { ins.jt } else { ins.jf });
        }
    }

    fn native(nr: c_long, args: [u64; 6]) -> Call {
        Call {
            arch: AUDIT_ARCH_X86_64,
            nr: nr as u32,
            args,
        }
    }

    const ALLOW: u32 = SECCOMP_RET_ALLOW;
    const EPERM: u32 = SECCOMP_RET_ERRNO | libc::EPERM as u32;
    const ENOSYS: u32 = SECCOMP_RET_ERRNO | libc::ENOSYS as u32;
    const EAFNOSUPPORT: u32 = SECCOMP_RET_ERRNO | libc::EAFNOSUPPORT as u32;

    #[test]
    fn only_unix_and_ip_sockets() {
        let prog = filter();
        let socket = |nr: c_long, family: i32, ty: i32| {
            run(&prog, &native(nr, [family as u64, ty as u64, 0, 0, 0, 0]))
        };
        for nr in [libc::SYS_socket, libc::SYS_socketpair] {
            for family in [libc::AF_UNIX, libc::AF_INET, libc::AF_INET6] {
                assert_eq!(
                    socket(nr, family, libc::SOCK_STREAM),
                    ALLOW,
                    "{nr} {family}"
                );
                assert_eq!(
                    socket(nr, family, libc::SOCK_DGRAM | libc::SOCK_CLOEXEC),
                    ALLOW,
                    "{nr} {family}"
                );
            }
            for family in [
                libc::AF_VSOCK,
                libc::AF_NETLINK,
                libc::AF_PACKET,
                libc::AF_ALG,
                libc::AF_BLUETOOTH,
                libc::AF_CAN,
                libc::AF_TIPC,
                libc::AF_RDS,
                libc::AF_XDP,
                libc::AF_KEY,
                libc::AF_APPLETALK,
                libc::AF_X25,
                libc::AF_UNSPEC,
                46, // AF_MCTP
                255,
            ] {
                assert_eq!(
                    socket(nr, family, libc::SOCK_STREAM),
                    EAFNOSUPPORT,
                    "{nr} {family}"
                );
            }
            // The family is an int: the kernel ignores the upper half, and so does the filter.
            assert_eq!(
                run(
                    &prog,
                    &native(nr, [(1u64 << 32) | libc::AF_INET as u64, 1, 0, 0, 0, 0])
                ),
                ALLOW
            );
            assert_eq!(
                run(
                    &prog,
                    &native(nr, [(1u64 << 32) | libc::AF_VSOCK as u64, 1, 0, 0, 0, 0])
                ),
                EAFNOSUPPORT
            );
        }
    }

    #[test]
    fn every_denied_call_gets_eperm() {
        let prog = filter();
        for &(name, nr) in DENIED {
            assert_eq!(run(&prog, &native(nr, [0; 6])), EPERM, "{name}");
        }
    }

    #[test]
    fn calls_and_arguments() {
        let prog = filter();
        let fork_flags =
            (libc::SIGCHLD | libc::CLONE_CHILD_SETTID | libc::CLONE_CHILD_CLEARTID) as u64;
        let thread_flags = (libc::CLONE_VM
            | libc::CLONE_FS
            | libc::CLONE_FILES
            | libc::CLONE_SIGHAND
            | libc::CLONE_THREAD
            | libc::CLONE_SYSVSEM
            | libc::CLONE_SETTLS
            | libc::CLONE_PARENT_SETTID
            | libc::CLONE_CHILD_CLEARTID) as u64;
        let cases: &[(&str, Call, u32)] = &[
            ("read", native(libc::SYS_read, [0; 6]), ALLOW),
            ("openat", native(libc::SYS_openat, [0; 6]), ALLOW),
            (
                "memfd_create",
                native(libc::SYS_memfd_create, [0; 6]),
                ALLOW,
            ),
            ("pidfd_open", native(libc::SYS_pidfd_open, [0; 6]), ALLOW),
            (
                "fork via clone",
                native(libc::SYS_clone, [fork_flags, 0, 0, 0, 0, 0]),
                ALLOW,
            ),
            (
                "thread via clone",
                native(libc::SYS_clone, [thread_flags, 0, 0, 0, 0, 0]),
                ALLOW,
            ),
            (
                "clone newuser",
                native(
                    libc::SYS_clone,
                    [libc::CLONE_NEWUSER as u64 | fork_flags, 0, 0, 0, 0, 0],
                ),
                EPERM,
            ),
            (
                "clone newns",
                native(libc::SYS_clone, [libc::CLONE_NEWNS as u64, 0, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "clone newnet",
                native(libc::SYS_clone, [libc::CLONE_NEWNET as u64, 0, 0, 0, 0, 0]),
                EPERM,
            ),
            ("clone3", native(libc::SYS_clone3, [0; 6]), ENOSYS),
            ("fork", native(libc::SYS_fork, [0; 6]), ALLOW),
            ("vfork", native(libc::SYS_vfork, [0; 6]), ALLOW),
            (
                "personality query",
                native(libc::SYS_personality, [0xffff_ffff, 0, 0, 0, 0, 0]),
                ALLOW,
            ),
            (
                "personality linux",
                native(libc::SYS_personality, [0, 0, 0, 0, 0, 0]),
                ALLOW,
            ),
            (
                "personality no-aslr",
                native(
                    libc::SYS_personality,
                    [libc::ADDR_NO_RANDOMIZE as u64, 0, 0, 0, 0, 0],
                ),
                EPERM,
            ),
            (
                "ioctl FIONREAD",
                native(libc::SYS_ioctl, [0, libc::FIONREAD, 0, 0, 0, 0]),
                ALLOW,
            ),
            (
                "ioctl TIOCSTI",
                native(libc::SYS_ioctl, [0, libc::TIOCSTI, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "ioctl TIOCLINUX",
                native(libc::SYS_ioctl, [0, libc::TIOCLINUX, 0, 0, 0, 0]),
                EPERM,
            ),
            (
                "x32 mount",
                native(X32_SYSCALL_BIT as c_long + libc::SYS_mount, [0; 6]),
                EPERM,
            ),
            ("x32 read", native(X32_SYSCALL_BIT as c_long, [0; 6]), EPERM),
            // i386 `mount` is 21, x86_64's 21 is `access`: the arch check must come first.
            (
                "i386 call",
                Call {
                    arch: 0x4000_0003,
                    nr: 21,
                    args: [0; 6],
                },
                EPERM,
            ),
        ];
        for (name, call, want) in cases {
            assert_eq!(run(&prog, call), *want, "{name}");
        }
    }

    #[test]
    fn fits_the_kernel_limits() {
        let prog = filter();
        assert!(prog.len() < 4096, "BPF_MAXINSNS");
        // Every jump lands inside the program.
        for (i, ins) in prog.iter().enumerate() {
            if ins.code & 0x07 == 0x05 {
                assert!(
                    i + 1 + usize::from(ins.jt.max(ins.jf)) < prog.len(),
                    "jump at {i}"
                );
            }
        }
    }
}
