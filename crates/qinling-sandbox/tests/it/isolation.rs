//! What a jailed process can see and do: identity, file system, processes, network, system
//! calls, and that a jail that cannot be built is never started.

use std::io::ErrorKind;
use std::net::TcpListener;

use crate::*;

#[tokio::test]
async fn runs_unprivileged_without_capabilities() {
    require_root!();
    let sb = sandbox();
    // The runtime is uid 0 of the jail's user namespace with only CAP_KILL, CAP_SETGID and
    // CAP_SETUID (0xe0: to start each execution under an id of its own); what it starts
    // under such an id has no capability left at all.
    let script = "id -u; id -g; id -G; hostname; grep -E '^(Cap(Inh|Prm|Eff|Bnd|Amb)|NoNewPrivs|Seccomp):' /proc/self/status; \
                  setpriv --reuid=1001 --regid=1001 --clear-groups grep -E '^(Uid|Cap(Inh|Prm|Eff|Amb)):' /proc/self/status";
    let mut p = launch(&sb, &sh(&format!("{script}; read x; exit 0")));
    let mut out = BufReader::new(p.stdout);
    let mut lines = Vec::new();
    for _ in 0..16 {
        lines.push(read_line(&mut out).await);
    }
    assert_eq!(
        lines.join("\n"),
        "0\n0\n0\nqinling\n\
         CapInh:\t0000000000000000\nCapPrm:\t00000000000000e0\nCapEff:\t00000000000000e0\n\
         CapBnd:\t00000000000000e0\nCapAmb:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\n\
         Uid:\t1001\t1001\t1001\t1001\n\
         CapInh:\t0000000000000000\nCapPrm:\t0000000000000000\nCapEff:\t0000000000000000\n\
         CapAmb:\t0000000000000000"
    );
    // On the host the runtime is uid 65534, not root: its monitor's only child.
    let monitor = p.pid.unwrap();
    let children = read(Path::new(&format!(
        "/proc/{monitor}/task/{monitor}/children"
    )));
    let runtime: u32 = children
        .split_whitespace()
        .next()
        .expect("runtime pid")
        .parse()
        .unwrap();
    let status = read(Path::new(&format!("/proc/{runtime}/status")));
    let uid_line = status.lines().find(|l| l.starts_with("Uid:")).unwrap();
    assert_eq!(
        uid_line.split_whitespace().collect::<Vec<_>>(),
        ["Uid:", "65534", "65534", "65534", "65534"]
    );
    drop(p.stdin);
    assert!(p.exit.wait().await.unwrap().success());
}

#[tokio::test]
async fn host_files_are_invisible() {
    require_root!();
    let sb = sandbox();
    let script = "\
        cat /etc/shadow >/dev/null 2>&1 && echo shadow-readable; \
        test -e /etc/shadow && echo shadow-exists; \
        test -e /root/.cargo && echo cargo-visible; \
        test -e /work && echo work-visible; \
        test -e /home && echo home-visible; \
        test -e /sys/fs && echo sys-visible; \
        ls -A /root; ls /etc; echo ---; cat /etc/passwd; echo ---; cat /etc/group";
    let out = run(
        &sb,
        &py(&format!(
            "import subprocess; subprocess.run(['/bin/sh', '-c', {script:?}])"
        )),
    )
    .await;
    let (_, prefix) = python();
    let (ls, rest) = out.stdout.split_once("---\n").unwrap();
    let (passwd, group) = rest.split_once("---\n").unwrap();
    // Only the python prefix under /root, nothing else of it; no account or secret from /etc.
    assert!(!ls.contains("visible") && !ls.contains("shadow"), "{ls}");
    if prefix.starts_with("/root") {
        assert!(ls.starts_with(".pyenv\n"), "{ls}");
    }
    for secret in [
        "shadow",
        "gshadow",
        "passwd-",
        "sudoers",
        "ssh",
        "machine-id",
    ] {
        assert!(
            !ls.lines().any(|l| l == secret),
            "/etc/{secret} visible: {ls}"
        );
    }
    // Generated: the runtime (uid 0 inside), one account per execution id, nobody.
    let accounts: Vec<&str> = passwd.lines().collect();
    assert_eq!(
        accounts.len(),
        2 + qinling_sandbox::jail::EXEC_IDS as usize,
        "{passwd}"
    );
    assert_eq!(
        accounts[0],
        "root:x:0:0:qinling runtime:/:/usr/sbin/nologin"
    );
    assert_eq!(
        accounts[1],
        "sandbox:x:1000:1000:qinling function:/tmp:/usr/sbin/nologin"
    );
    assert_eq!(
        accounts[2],
        "sandbox1:x:1001:1001:qinling function:/tmp:/usr/sbin/nologin"
    );
    assert_eq!(
        accounts.last().unwrap(),
        &"nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin"
    );
    assert!(group.starts_with("root:x:0:\nsandbox:x:1000:\n"), "{group}");
    assert!(
        group.ends_with("sandbox255:x:1255:\nnogroup:x:65534:\n"),
        "{group}"
    );
}

#[tokio::test]
async fn only_tmp_is_writable() {
    require_root!();
    let sb = sandbox();
    let (_, prefix) = python();
    let code = format!(
        "import errno\n\
         for p in ['/x', '/usr/x', '/etc/x', '/bin/x', '/dev/x', '{}/x', '/tmp/ok']:\n\
         \x20   try:\n\
         \x20       open(p, 'w').write('x'); print(p, 'ok')\n\
         \x20   except OSError as e:\n\
         \x20       print(p, errno.errorcode[e.errno])\n\
         open('/dev/null', 'w').write('x'); print('/dev/null ok')\n\
         print(len(open('/dev/urandom', 'rb').read(16)))",
        prefix.display()
    );
    let out = run(&sb, &py(&code)).await;
    let want = format!(
        "/x EROFS\n/usr/x EROFS\n/etc/x EROFS\n/bin/x EROFS\n/dev/x EROFS\n{}/x EROFS\n/tmp/ok ok\n/dev/null ok\n16\n",
        prefix.display()
    );
    assert_eq!(out.stdout, want);
}

#[tokio::test]
async fn tmp_is_size_capped() {
    require_root!();
    let sb = sandbox();
    let mut spec = sh(
        "dd if=/dev/zero of=/tmp/fill bs=65536 count=64 2>&1 | grep -o 'No space left on device' | head -1; wc -c < /tmp/fill",
    );
    spec.limits.tmp_bytes = 1 << 20;
    let out = run(&sb, &spec).await;
    let mut lines = out.stdout.lines();
    assert_eq!(
        lines.next(),
        Some("No space left on device"),
        "{}",
        out.stdout
    );
    let size: u64 = lines.next().unwrap().trim().parse().unwrap();
    assert!(size <= 1 << 20, "wrote {size} bytes into a 1 MiB /tmp");
}

#[tokio::test]
async fn own_pid_namespace_with_runtime_as_pid_1() {
    require_root!();
    let sb = sandbox();
    let server = std::process::id();
    let script = format!(
        "echo $$; ps -e -o pid= -o comm= | sort -n; echo ---; \
         kill -9 {server} 2>&1 | grep -o 'No such process'; kill -9 1 && echo still-here"
    );
    let out = run(&sb, &sh(&script)).await;
    let (ps, kill) = out.stdout.split_once("---\n").unwrap();
    let mut lines = ps.lines();
    assert_eq!(lines.next(), Some("1"));
    let procs: Vec<(u32, String)> = lines
        .map(|l| {
            let (pid, comm) = l.trim().split_once(' ').unwrap();
            (pid.parse().unwrap(), comm.trim().to_string())
        })
        .collect();
    assert_eq!(procs[0], (1, "sh".to_string()), "{ps}");
    assert!(
        procs.iter().all(|(pid, _)| *pid < 10),
        "only the jail's processes: {ps}"
    );
    // The server's pid names nothing; SIGKILL to pid 1 from inside its namespace is ignored.
    assert_eq!(kill, "No such process\nstill-here\n");
    assert!(out.status.success());
}

#[tokio::test]
async fn no_network_by_default() {
    require_root!();
    let sb = sandbox();
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    listener.set_nonblocking(true).unwrap();
    let port = listener.local_addr().unwrap().port();
    let code = format!(
        "import socket, errno\n\
         print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n\
         s = socket.socket(); s.settimeout(2)\n\
         try:\n\
         \x20   s.connect(('127.0.0.1', {port})); print('connected')\n\
         except OSError as e:\n\
         \x20   print(errno.errorcode.get(e.errno, e))\n"
    );
    let out = run(&sb, &py(&code)).await;
    // Only loopback, and the host's loopback is not this one.
    assert_eq!(out.stdout, "['lo']\nECONNREFUSED\n");
    assert_eq!(
        listener.accept().map(|_| ()).unwrap_err().kind(),
        ErrorKind::WouldBlock
    );
}

/// The host's own non-loopback IPv4 address (the one its default route leaves from).
fn host_address() -> Option<std::net::IpAddr> {
    // A UDP "connect" sends nothing; it only picks the route and the source address.
    let probe = std::net::UdpSocket::bind("0.0.0.0:0").ok()?;
    probe.connect("203.0.113.1:9").ok()?;
    Some(probe.local_addr().ok()?.ip()).filter(|ip| !ip.is_loopback())
}

/// A networked jail reaches the host's address through its own user-mode stack, but not the
/// host's loopback, and sees only its own interfaces and resolver; the stack dies with it.
#[tokio::test]
async fn network_true_reaches_out_through_its_own_stack() {
    require_root!();
    let Some(slirp) = qinling_sandbox::jail::find_slirp4netns() else {
        eprintln!(
            "skipping network_true_reaches_out_through_its_own_stack: slirp4netns is not installed"
        );
        return;
    };
    let Some(host) = host_address() else {
        eprintln!(
            "skipping network_true_reaches_out_through_its_own_stack: the host has no non-loopback IPv4 route"
        );
        return;
    };
    let sb = JailSandbox::new(JailConfig {
        slirp4netns: Some(slirp),
        ..sandbox_config()
    })
    .unwrap();
    let outside = TcpListener::bind("0.0.0.0:0").unwrap();
    let port = outside.local_addr().unwrap().port();
    let code = format!(
        "import socket, errno\n\
         print(sorted(l.split(':')[0].strip() for l in open('/proc/net/dev').readlines()[2:]))\n\
         print(open('/etc/resolv.conf').readline().strip())\n\
         for addr in ['{host}', '10.0.2.2', '127.0.0.1']:\n\
         \x20   s = socket.socket(); s.settimeout(5)\n\
         \x20   try:\n\
         \x20       s.connect((addr, {port})); s.sendall(b'hi'); print(addr, 'connected')\n\
         \x20   except OSError as e:\n\
         \x20       print(addr, errno.errorcode.get(e.errno, e))\n"
    );
    let mut spec = py(&code);
    spec.network = true;
    let mut p = launch(&sb, &spec);
    let init_pid = p.pid.unwrap();
    drop(p.stdin);
    let mut stdout = String::new();
    tokio::io::AsyncReadExt::read_to_string(&mut p.stdout, &mut stdout)
        .await
        .unwrap();
    assert_eq!(
        stdout,
        format!(
            "['lo', 'tap0']\nnameserver 10.0.2.3\n{host} connected\n10.0.2.2 ENETUNREACH\n127.0.0.1 ECONNREFUSED\n"
        )
    );
    let (mut conn, from) = outside.accept().unwrap();
    assert_eq!(
        from.ip(),
        host,
        "the connection leaves with the host's address"
    );
    let mut buf = [0u8; 2];
    std::io::Read::read_exact(&mut conn, &mut buf).unwrap();
    assert_eq!(&buf, b"hi");
    assert_eq!(slirp_for(init_pid), 1, "one stack while the worker lives");
    p.exit.wait().await.unwrap();
    drop(p.control);
    assert_eq!(slirp_for(init_pid), 0, "the stack is gone with the worker");
}

/// The slirp4netns processes attached to the jail whose init is `pid`.
fn slirp_for(pid: u32) -> usize {
    std::fs::read_dir("/proc")
        .unwrap()
        .filter_map(|e| std::fs::read(e.ok()?.path().join("cmdline")).ok())
        .filter(|cmd| {
            let args: Vec<&[u8]> = cmd.split(|b| *b == 0).collect();
            args.first().is_some_and(|a| a.ends_with(b"slirp4netns"))
                && args.iter().any(|a| *a == pid.to_string().as_bytes())
        })
        .count()
}

/// Without slirp4netns a networked launch is refused, never run with the host's network.
#[tokio::test]
async fn network_true_without_a_stack_is_refused() {
    require_root!();
    let sb = sandbox();
    let mut spec = sh("echo ran");
    spec.network = true;
    let err = sb.launch(&spec).unwrap_err();
    assert!(chain(&err).contains("slirp4netns"), "{}", chain(&err));
}

/// The seccomp filter through libc, as a function would call it, and through the tools.
#[tokio::test]
async fn denied_system_calls_fail_with_eperm() {
    require_root!();
    let sb = sandbox();
    let code = r#"
import ctypes, errno, os, threading
libc = ctypes.CDLL(None, use_errno=True)
def call(name, nr, *args):
    r = libc.syscall(nr, *args)
    print(name, 'ok' if r != -1 else errno.errorcode[ctypes.get_errno()])
call('mount', 165, b'none', b'/tmp', b'tmpfs', 0, None)
call('umount2', 166, b'/proc', 2)
call('pivot_root', 155, b'/tmp', b'/tmp')
call('unshare', 272, 0x10000000)
call('setns', 308, 0, 0)
call('ptrace', 101, 0, 0, 0, 0)
call('process_vm_readv', 310, 1, 0, 0, 0, 0, 0)
call('bpf', 321, 0, 0, 0)
call('keyctl', 250, 0, 0, 0)
call('perf_event_open', 298, 0, 0, -1, -1, 0)
call('userfaultfd', 323, 0)
call('io_uring_setup', 425, 1, 0)
call('open_tree', 428, -100, b'/', 1)
call('fsopen', 430, b'tmpfs', 0)
call('clock_settime', 227, 0, 0)
call('personality', 135, 0x0040000)
call('clone3', 435, 0, 0)
call('clone newuser', 56, 0x10000000 | 17, 0, 0, 0, 0)
call('personality query', 135, 0xffffffff)
pid = os.fork()
if pid == 0:
    os._exit(7)
print('fork', os.waitstatus_to_exitcode(os.waitpid(pid, 0)[1]))
t = threading.Thread(target=lambda: print('thread ok')); t.start(); t.join()
"#;
    let out = run(&sb, &py(code)).await;
    let want = "mount EPERM\numount2 EPERM\npivot_root EPERM\nunshare EPERM\nsetns EPERM\nptrace EPERM\n\
                process_vm_readv EPERM\nbpf EPERM\nkeyctl EPERM\nperf_event_open EPERM\nuserfaultfd EPERM\n\
                io_uring_setup EPERM\n\
                open_tree EPERM\nfsopen EPERM\nclock_settime EPERM\npersonality EPERM\nclone3 ENOSYS\n\
                clone newuser EPERM\npersonality query ok\nfork 7\nthread ok\n";
    assert_eq!(out.stdout, want);

    let tools = "unshare -U true 2>&1 | grep -c 'Operation not permitted'; \
                 echo kept > /tmp/marker; mount -t tmpfs none /tmp 2>/dev/null || echo refused; cat /tmp/marker";
    let out = run(&sb, &sh(tools)).await;
    assert_eq!(
        out.stdout, "1\nrefused\nkept\n",
        "unshare and mount binaries must fail"
    );
}

/// Issue 16, property 2: only Unix, IPv4 and IPv6 sockets can be made, by `socket` and by
/// `socketpair`, with or without network; every other family (the hypervisor's vsock, the
/// kernel's netlink, raw packets, kernel crypto, Bluetooth, CAN, TIPC, RDS, XDP, PF_KEY) is
/// refused as unsupported, and Python's ordinary networking still works (a name lookup
/// falls back without netlink).
#[tokio::test]
async fn only_unix_and_ip_socket_families() {
    require_root!();
    let sb = sandbox();
    let code = r#"
import errno, socket
def attempt(make):
    try:
        s = make()
        for x in (s if isinstance(s, tuple) else (s,)):
            x.close()
        return 'ok'
    except OSError as e:
        return errno.errorcode.get(e.errno, str(e.errno))
families = [('AF_VSOCK', 40, socket.SOCK_STREAM), ('AF_NETLINK', 16, socket.SOCK_RAW),
            ('AF_PACKET', 17, socket.SOCK_RAW), ('AF_PACKET dgram', 17, socket.SOCK_DGRAM),
            ('AF_ALG', 38, socket.SOCK_SEQPACKET), ('AF_BLUETOOTH', 31, socket.SOCK_STREAM),
            ('AF_CAN', 29, socket.SOCK_RAW), ('AF_TIPC', 30, socket.SOCK_RDM),
            ('AF_RDS', 21, socket.SOCK_SEQPACKET), ('AF_XDP', 44, socket.SOCK_RAW),
            ('AF_KEY', 15, socket.SOCK_RAW), ('AF_APPLETALK', 5, socket.SOCK_DGRAM),
            ('AF_INET', 2, socket.SOCK_STREAM), ('AF_INET6', 10, socket.SOCK_DGRAM),
            ('AF_UNIX', 1, socket.SOCK_STREAM)]
for name, fam, ty in families:
    print(name, attempt(lambda: socket.socket(fam, ty)))
print('socketpair unix', attempt(lambda: socket.socketpair(socket.AF_UNIX)))
print('socketpair tipc', attempt(lambda: socket.socketpair(30, socket.SOCK_DGRAM)))
print('lookup', socket.getaddrinfo('localhost', 80, socket.AF_INET, socket.SOCK_STREAM, 0, socket.AI_ADDRCONFIG)[0][4])
"#;
    {
        let out = run(&sb, &py(code)).await;
        let refused = "EAFNOSUPPORT";
        let want = format!(
            "AF_VSOCK {refused}\nAF_NETLINK {refused}\nAF_PACKET {refused}\nAF_PACKET dgram {refused}\n\
             AF_ALG {refused}\nAF_BLUETOOTH {refused}\nAF_CAN {refused}\nAF_TIPC {refused}\n\
             AF_RDS {refused}\nAF_XDP {refused}\nAF_KEY {refused}\nAF_APPLETALK {refused}\n\
             AF_INET ok\nAF_INET6 ok\nAF_UNIX ok\nsocketpair unix ok\nsocketpair tipc {refused}\n\
             lookup ('127.0.0.1', 80)\n"
        );
        assert_eq!(out.stdout, want);
    }
}

/// Issue 16, property 1, at the jail's level: a process the runtime starts under an
/// execution id sees in /proc only its own processes (not the runtime, not a process of a
/// sibling id), and cannot signal, open the memory, environment or descriptors of, or take a
/// descriptor from, either of them.
#[tokio::test]
async fn execution_ids_are_isolated_from_each_other_and_the_runtime() {
    require_root!();
    let sb = sandbox();
    let code = r#"
import os, subprocess, sys, time
victim = subprocess.Popen(["sleep", "30"], user=1002, group=1002, extra_groups=[])
time.sleep(0.3)
probe = r"""
import ctypes, errno, json, os, signal
def attempt(f):
    try:
        f()
        return "ok"
    except OSError as e:
        return errno.errorcode[e.errno]
libc = ctypes.CDLL(None, use_errno=True)
def syscall(*args):
    if libc.syscall(*args) == -1:
        e = ctypes.get_errno()
        raise OSError(e, os.strerror(e))
def pidfd_signal(pid):
    fd = os.pidfd_open(pid)
    try:
        signal.pidfd_send_signal(fd, signal.SIGSTOP)
    finally:
        os.close(fd)
def pidfd_getfd(pid):
    fd = os.pidfd_open(pid)
    try:
        syscall(438, fd, 0, 0)
    finally:
        os.close(fd)
victim = int(os.environ["VICTIM"])
me = os.getpid()
out = {
    "own only": sorted(int(p) for p in os.listdir("/proc") if p.isdigit()) == [me],
    "kill runtime": attempt(lambda: os.kill(1, signal.SIGSTOP)),
    "kill sibling": attempt(lambda: os.kill(victim, signal.SIGSTOP)),
    "pidfd signal runtime": attempt(lambda: pidfd_signal(1)),
    "pidfd getfd runtime": attempt(lambda: pidfd_getfd(1)),
    "kcmp": attempt(lambda: syscall(312, me, 1, 0, 0, 0)),
    "runtime mem": attempt(lambda: open("/proc/1/mem", "rb").close()),
    "runtime environ": attempt(lambda: open("/proc/1/environ", "rb").close()),
    "runtime fd": attempt(lambda: os.listdir("/proc/1/fd")),
    "sibling stat": attempt(lambda: open("/proc/%d/stat" % victim).close()),
    "own stat": attempt(lambda: open("/proc/%d/stat" % me).close()),
}
print(json.dumps(out, sort_keys=True))
"""
r = subprocess.run([sys.executable, "-I", "-c", probe], user=1001, group=1001, extra_groups=[],
                   env={"VICTIM": str(victim.pid)}, capture_output=True, text=True)
print(r.stdout.strip() or r.stderr)
print("victim", "alive" if victim.poll() is None else "gone")
victim.kill()
"#;
    let out = run(&sb, &py(code)).await;
    assert_eq!(
        out.stdout,
        "{\"kcmp\": \"EPERM\", \"kill runtime\": \"EPERM\", \"kill sibling\": \"EPERM\", \
         \"own only\": true, \"own stat\": \"ok\", \"pidfd getfd runtime\": \"EPERM\", \
         \"pidfd signal runtime\": \"EPERM\", \"runtime environ\": \"ENOENT\", \
         \"runtime fd\": \"ENOENT\", \"runtime mem\": \"ENOENT\", \"sibling stat\": \"ENOENT\"}\n\
         victim alive\n"
    );
}

#[tokio::test]
async fn pipes_pass_through_and_status_is_forwarded() {
    require_root!();
    let sb = sandbox();
    let out = run_with(&sb, &sh("cat; exit 7"), "framed bytes\n").await;
    assert_eq!(out.stdout, "framed bytes\n");
    assert_eq!(out.status.code(), Some(7));
}

/// A jail that cannot be built fails `launch`; nothing runs outside it.
#[tokio::test]
async fn a_jail_that_cannot_be_built_is_not_started() {
    require_root!();
    let sb = sandbox();
    let marker = std::env::temp_dir().join(format!("qinling-never-{}", std::process::id()));
    let dir = tempfile::tempdir().unwrap();
    let script = dir.path().join("needs-an-interpreter");
    std::fs::write(&script, "#!/opt/missing/interpreter\n").unwrap();
    std::fs::set_permissions(&script, std::os::unix::fs::PermissionsExt::from_mode(0o755)).unwrap();
    let cases: Vec<(LaunchSpec, &str)> = vec![
        (
            LaunchSpec {
                read_only_paths: vec!["/nonexistent/runtime".into()],
                ..sh("true")
            },
            "cannot resolve read-only path /nonexistent/runtime",
        ),
        (
            LaunchSpec {
                program: "relative/sh".into(),
                ..sh("true")
            },
            "is not absolute",
        ),
        // The program is shown, but not the interpreter its first line asks for.
        (
            LaunchSpec {
                program: script.clone(),
                ..sh("true")
            },
            "No such file or directory",
        ),
        (
            LaunchSpec {
                read_only_paths: vec!["/proc/self".into()],
                ..sh(&format!("touch {}", marker.display()))
            },
            "inside a directory the jail mounts itself",
        ),
    ];
    for (spec, want) in cases {
        let err = sb.launch(&spec).map(|_| ()).unwrap_err();
        let text = chain(&err);
        assert!(text.contains(want), "{text:?} should contain {want:?}");
    }
    assert!(!marker.exists());
}

/// A server that is not root still jails (user namespaces with its own uid), states what it
/// cannot enforce, and keeps host files out of sight. As root, the test runs itself again as
/// `nobody` to take that path for real.
#[tokio::test]
async fn unprivileged_server_still_jails() {
    if is_root() {
        let exe = std::env::current_exe().unwrap();
        #[expect(
            clippy::disallowed_methods,
            reason = "the test re-runs itself as another user"
        )]
        let mut cmd = std::process::Command::new(exe);
        cmd.args([
            "--exact",
            "isolation::unprivileged_server_still_jails",
            "--nocapture",
            "--test-threads=1",
        ])
        .env_clear()
        .env("PATH", "/usr/bin:/bin");
        // SAFETY: runs in the forked child before exec; setgroups/setgid/setuid are
        // async-signal-safe system calls.
        unsafe {
            std::os::unix::process::CommandExt::pre_exec(&mut cmd, || {
                if libc::setgroups(0, std::ptr::null()) == -1
                    || libc::setgid(65534) == -1
                    || libc::setuid(65534) == -1
                {
                    return Err(std::io::Error::last_os_error());
                }
                Ok(())
            });
        }
        let out = cmd.output().unwrap();
        let text = format!(
            "{}{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr)
        );
        assert!(
            out.status.success() && text.contains("1 passed"),
            "as nobody:\n{text}"
        );
        return;
    }
    let sb = sandbox();
    let unenforced = sb.unenforced();
    eprintln!("unprivileged, not enforced: {unenforced:#?}");
    assert!(
        unenforced.iter().any(|u| u.contains("server's own uid")),
        "{unenforced:?}"
    );
    assert!(
        unenforced
            .iter()
            .any(|u| u.contains("supplementary groups")),
        "{unenforced:?}"
    );
    let out = run(&sb, &sh("id -u; grep -E '^(CapEff|NoNewPrivs|Seccomp):' /proc/self/status; ls /; test -e /work || echo work-hidden")).await;
    assert_eq!(
        out.stdout,
        "1000\nCapEff:\t0000000000000000\nNoNewPrivs:\t1\nSeccomp:\t2\nbin\ndev\netc\nlib\nlib64\nproc\nsbin\ntmp\nusr\nwork-hidden\n"
    );
}

/// What this machine cannot enforce is stated, once, by the sandbox.
#[tokio::test]
async fn unenforced_limits_are_stated() {
    require_root!();
    let sb = sandbox();
    let unenforced = sb.unenforced();
    eprintln!("as root, not enforced here: {unenforced:#?}");
    for (controller, limit) in [
        ("memory", "memory limit"),
        ("cpu", "cpu quota"),
        ("pids", "pids limit"),
    ] {
        if Path::new("/sys/fs/cgroup").join(controller).exists() {
            assert!(
                !unenforced.iter().any(|u| u.starts_with(limit)),
                "{unenforced:?}"
            );
        }
    }
}

/// A read-only path under the host's /tmp (a test's data directory) is shown inside the
/// jail's own /tmp, read-only, while the rest of /tmp stays writable.
#[tokio::test]
async fn read_only_path_under_tmp() {
    require_root!();
    let sb = sandbox();
    let dir = tempfile::tempdir().unwrap();
    std::fs::write(dir.path().join("shim.py"), "shim\n").unwrap();
    let d = dir.path().display();
    let mut spec = sh(&format!(
        "cat {d}/shim.py; touch {d}/x 2>&1 | grep -o 'Read-only file system'; touch /tmp/y && echo tmp-writable; ls -A /tmp | wc -l"
    ));
    spec.read_only_paths = vec![dir.path().into()];
    let out = run(&sb, &spec).await;
    assert_eq!(out.stdout, "shim\nRead-only file system\ntmp-writable\n2\n");
}

/// With `reaper`, pid 1 runs the program as its child (pid 2), reaps orphans the program
/// never waits for, and ends with the program's exit status.
#[tokio::test]
async fn reaper_pid1_reaps_orphans_and_passes_the_status_on() {
    require_root!();
    let sb = sandbox();
    let mut spec = sh("echo pid=$$; (sh -c 'sleep 0.1' &); sleep 0.5; \
         echo zombies=$(cat /proc/[0-9]*/stat | awk '$3 == \"Z\"' | wc -l); exit 3");
    spec.reaper = true;
    let out = run(&sb, &spec).await;
    assert_eq!(out.stdout, "pid=2\nzombies=0\n");
    assert_eq!(out.status.code(), Some(3));
}
