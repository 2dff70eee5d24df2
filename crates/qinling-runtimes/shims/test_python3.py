"""Tests of the python3 worker shim (python3.py) against docs/worker-protocol.md.

Each test starts the shim as the engine does (`python3 -I python3.py`), speaks the framed
protocol over its stdin/stdout, and checks the replies. Standard library only:

    cd crates/qinling-runtimes && python3 -m unittest shims/test_python3.py -v

`QINLING_TEST_PYTHON` picks the interpreter that runs the shim (default: python3), e.g. an
old one to check compatibility. The `Fallback` variant of the suite hides os.pidfd_open and
os.memfd_create from the shim, to exercise the SIGCHLD self-pipe and temp-file paths.

A latency micro-benchmark: `python3 shims/test_python3.py --bench`.
"""

import io
import json
import os
import re
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import unittest
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
SHIM = os.path.join(HERE, "python3.py")
PYTHON = os.environ.get("QINLING_TEST_PYTHON", "python3")
TIMEOUT_MSG = "Function execution timeout."
RESOURCE_MSG = "Function execution failed because of too much resource consumption"
# How long a `reuse`-mode worker waits idle before it keeps only one process (the shim's).
with open(SHIM) as _f:
    IDLE_TRIM_SECONDS = float(re.search(r"^IDLE_TRIM_SECONDS = (.+)$", _f.read(), re.M).group(1))

# Runs the shim with the pidfd and memfd APIs removed, as on Python 3.8 or an old kernel.
FALLBACK_BOOT = (
    "import os, sys\n"
    "os.__dict__.pop('pidfd_open', None)\n"
    "os.__dict__.pop('memfd_create', None)\n"
    "path = sys.argv[1]\n"
    "sys.argv = sys.argv[1:]\n"
    "code = compile(open(path).read(), path, 'exec')\n"
    "exec(code, {'__name__': '__main__', '__file__': path})\n"
)

HELLO = """
def main(name='World', **kwargs):
    print('Hello, %s' % name)
    return 'Hello, %s' % name
"""

FUNCS = r'''
import json, logging, math, os, resource, signal, subprocess, sys, time

# Handlers made at import time hold the sys.stderr of that moment.
logging.basicConfig(level=logging.INFO, format="%(levelname)s %(message)s")
LOG = logging.getLogger("funcs")

def no_context(a, b=2):
    return {"sum": a + b}

def with_context(context, **kwargs):
    return {"context": context, "kwargs": sorted(kwargs)}

def keyword_only(*, context=None):
    return context is not None

def boom(**kwargs):
    print("about to fail")
    raise ValueError("boom happened")

def to_stderr(**kwargs):
    sys.stderr.write("to stderr\n")
    return None

def sleepy(seconds=3, **kwargs):
    child = subprocess.Popen(["sleep", "30"])
    print("sleeping", os.getpid(), child.pid, flush=True)
    time.sleep(float(seconds))
    return "woke"

def pid_file_sleeper(path, **kwargs):
    with open(path, "w") as f:
        f.write(str(os.getpid()))
    time.sleep(60)

def named(name, **kwargs):
    start = time.time()
    for i in range(5):
        print(name, i)
        time.sleep(0.1)
    return {"start": start, "end": time.time(), "ppid": os.getppid()}

def many_files(n=1100, **kwargs):
    files = [open(os.devnull) for _ in range(n)]
    return len(files)

def forker(n=50, **kwargs):
    pids = []
    try:
        for _ in range(n):
            pid = os.fork()
            if pid == 0:
                time.sleep(2)
                os._exit(0)
            pids.append(pid)
    finally:
        for pid in pids:
            os.kill(pid, signal.SIGKILL)
            os.waitpid(pid, 0)
    return len(pids)

def daemon(**kwargs):
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:
        os.setsid()  # escape the execution's process group
        if os.fork() == 0:
            os.write(w, str(os.getpid()).encode())
            time.sleep(60)
        os._exit(0)
    os.close(w)
    os.waitpid(pid, 0)
    return int(os.read(r, 100))

def daemon_chain(depth=3, **kwargs):
    """A daemon in its own session that forks `depth` generations below it, each parent
    staying alive: only the top one is re-parented to the zygote when the execution ends."""
    r, w = os.pipe()
    if os.fork() == 0:
        os.close(r)
        os.setsid()
        for i in range(depth + 1):
            os.write(w, b"%d\n" % os.getpid())
            if i == depth or os.fork() != 0:
                break
        os.close(w)
        time.sleep(60)
        os._exit(0)
    os.close(w)
    data = b""
    while len(data.split()) < depth + 1:
        chunk = os.read(r, 100)
        if not chunk:
            break
        data += chunk
    return [int(p) for p in data.split()]

def unserializable(**kwargs):
    return object()

def nan(**kwargs):
    return math.nan

def big_log(size=2 << 20, **kwargs):
    sys.stdout.write("x" * size)

def big_result(size=5 << 20, **kwargs):
    return "y" * size

def memory_error(**kwargs):
    raise MemoryError()

def killed(**kwargs):
    print("dying", flush=True)
    os.kill(os.getpid(), signal.SIGKILL)

def exit_3(**kwargs):
    os._exit(3)

def fds(sleep=0, **kwargs):
    time.sleep(sleep)
    out = {}
    for fd in os.listdir("/proc/self/fd"):
        try:
            out[fd] = os.readlink("/proc/self/fd/" + fd)
        except OSError:
            pass
    return out

def logs_something(**kwargs):
    LOG.info("via logging")

def limits(**kwargs):
    return {name: resource.getrlimit(getattr(resource, "RLIMIT_" + name.upper()))
            for name in ("nofile", "nproc", "fsize")}

def big_file(size=2 << 20, **kwargs):
    with open("big.bin", "wb") as f:
        f.write(b"z" * size)

def data_file(**kwargs):
    with open("data.txt") as f:
        return f.read()

def fork_and_return(**kwargs):
    if os.fork() == 0:
        return "grandchild"
    os.wait()
    return "parent"

def whoami(**kwargs):
    return os.getpid()

# Module state an execution changes: every execution must start from the state the import
# left, whichever process (a spare or a fresh fork) runs it.
CALLS = []
STATE = {"counter": 0}

def count(**kwargs):
    CALLS.append(1)
    STATE["counter"] += 1
    return {"calls": len(CALLS), "counter": STATE["counter"], "pid": os.getpid()}

def count_or(seconds=0, fail=False, **kwargs):
    STATE["counter"] += 1
    if fail:
        raise RuntimeError("failed at %d" % STATE["counter"])
    time.sleep(float(seconds))
    return {"counter": STATE["counter"], "pid": os.getpid()}

def lingering(tag, **kwargs):
    import threading

    def chatter():
        for i in range(15):
            time.sleep(0.02)
            print("late", tag, i, flush=True)

    threading.Thread(target=chatter, daemon=True).start()
    print("returned", flush=True)
    return os.getpid()

def threads_print(**kwargs):
    import threading
    t = threading.Thread(target=lambda: print("from a thread", flush=True))
    t.start()
    t.join()
    return "joined"

def hog(ms=300, **kwargs):
    end = time.process_time() + ms / 1000.0
    while time.process_time() < end:
        pass
    return os.getpid()

def alloc(mib=64, **kwargs):
    block = bytearray(mib << 20)
    del block
    return os.getpid()

def hijack(**kwargs):
    import io
    sys.stdout = io.StringIO()
    sys.stderr = io.StringIO()
    null = os.open(os.devnull, os.O_WRONLY)
    os.dup2(null, 1)
    os.dup2(null, 2)
    print("swallowed")
    return "hijacked"

def echo(context=None, **kwargs):
    return kwargs

def printer(name, lines=20, **kwargs):
    for i in range(lines):
        print(name, i, flush=True)
        sys.stderr.write("%s err %d\n" % (name, i))
        time.sleep(0.01)
    return name
'''


def make_zip(files):
    buf = io.BytesIO()
    with zipfile.ZipFile(buf, "w") as zf:
        for name, content in files.items():
            zf.writestr(name, content)
    return buf.getvalue()


def frame(data):
    return len(data).to_bytes(4, "big") + data


def pid_alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    return True


def wait_gone(pid, within=3.0):
    deadline = time.monotonic() + within
    while time.monotonic() < deadline:
        if not pid_alive(pid):
            return True
        time.sleep(0.02)
    return False


class Shim:
    """One shim process and the engine's end of its channel."""

    def __init__(self, fallback=False, env=None, prefix=(), mode=None):
        self.mode = mode
        if fallback:
            cmd = [PYTHON, "-I", "-c", FALLBACK_BOOT, SHIM]
        else:
            cmd = [PYTHON, "-I", SHIM]
        cmd = list(prefix) + cmd
        self.stderr = tempfile.TemporaryFile()
        self.proc = subprocess.Popen(cmd, stdin=subprocess.PIPE, stdout=subprocess.PIPE, stderr=self.stderr,
                                     env=env, bufsize=0)
        self.buf = b""

    def send(self, msg):
        self.send_raw(json.dumps(msg).encode())

    def send_raw(self, data):
        self.proc.stdin.write(frame(data))

    def recv(self, timeout=20.0):
        deadline = time.monotonic() + timeout
        fd = self.proc.stdout.fileno()
        while True:
            if len(self.buf) >= 4:
                n = int.from_bytes(self.buf[:4], "big")
                if len(self.buf) >= 4 + n:
                    data, self.buf = self.buf[4:4 + n], self.buf[4 + n:]
                    return json.loads(data)
            left = deadline - time.monotonic()
            if left <= 0:
                raise AssertionError("no message from the shim within %ss" % timeout)
            if select.select([fd], [], [], left)[0]:
                chunk = os.read(fd, 1 << 20)
                if not chunk:
                    self.stderr.seek(0)
                    raise AssertionError("the shim closed its output; stderr: %r" % self.stderr.read()[-2000:])
                self.buf += chunk

    def bind(self, files, entry):
        package = make_zip(files)
        msg = {"op": "bind", "entry": entry, "package_size": len(package), "function_id": "f",
               "function_version": 0}
        if self.mode is not None:
            msg["mode"] = self.mode
        self.send(msg)
        self.send_raw(package)
        return self.recv()

    def exec(self, exec_id, kwargs=None, args=(), timeout_ms=5000, rlimits=None, log_limit=1 << 20, context=None):
        self.send({
            "op": "exec", "id": exec_id, "kwargs": kwargs, "args": list(args), "timeout_ms": timeout_ms,
            "context": context if context is not None else {"execution_id": exec_id, "function_id": "f",
                                                             "function_version": 0, "project_id": "p"},
            "rlimits": rlimits or {"nofile": 1024, "nproc": 128, "fsize": 524288000}, "log_limit": log_limit,
        })

    def run(self, exec_id, **kw):
        self.exec(exec_id, **kw)
        reply = self.recv()
        assert reply["op"] == "result" and reply["id"] == exec_id, reply
        return reply

    def close(self):
        # EOF first, as the engine does: the shim then kills what its executions left.
        try:
            self.proc.stdin.close()
            self.proc.wait(timeout=5)
        except (OSError, subprocess.TimeoutExpired):
            self.proc.kill()
            self.proc.wait()
        for f in (self.proc.stdin, self.proc.stdout, self.stderr):
            f.close()


def children(pid):
    """The live (not zombie) direct children of `pid`."""
    try:
        with open("/proc/%d/task/%d/children" % (pid, pid)) as f:
            kids = [int(p) for p in f.read().split()]
    except OSError:
        return []
    live = []
    for kid in kids:
        try:
            with open("/proc/%d/stat" % kid) as f:
                if f.read().rsplit(")", 1)[1].split()[0] != "Z":
                    live.append(kid)
        except OSError:
            pass
    return live


class Cgroups:
    """A memory and a pids cgroup for one test worker (v1 hierarchies, or v2)."""

    def __init__(self, dirs, memory_dir, v2):
        self.dirs, self.memory_dir, self.v2 = dirs, memory_dir, v2

    def prefix(self):
        """A command prefix that moves the shim into the cgroups before it starts."""
        moves = "; ".join("echo $$ > %s/cgroup.procs" % d for d in self.dirs)
        return ["sh", "-c", moves + '; exec "$@"', "sh"]

    def read(self, name):
        with open(os.path.join(self.memory_dir, name)) as f:
            return f.read()

    def peak(self):
        return int(self.read("memory.peak" if self.v2 else "memory.max_usage_in_bytes"))

    def oom_kills(self):
        text = self.read("memory.events" if self.v2 else "memory.oom_control")
        for line in text.splitlines():
            if line.startswith("oom_kill "):
                return int(line.split()[1])
        return 0

    def remove(self):
        for d in self.dirs:
            for _ in range(100):
                try:
                    os.rmdir(d)
                    break
                except OSError:
                    time.sleep(0.05)


def worker_cgroups(memory, pids):
    """Cgroups limiting memory and pids the way the jail does, or SkipTest."""
    if os.geteuid() != 0:
        raise unittest.SkipTest("creating cgroups needs root")
    name = "qinling-shim-test-%d-%d" % (os.getpid(), time.monotonic_ns())
    root = "/sys/fs/cgroup"
    try:
        with open(os.path.join(root, "cgroup.subtree_control")) as f:
            v2 = {"memory", "pids"} <= set(f.read().split())
    except OSError:
        v2 = False
    if v2:
        d = os.path.join(root, name)
        settings = {d: {"memory.max": memory, "memory.swap.max": 0, "pids.max": pids}}
        dirs = [d]
    elif os.path.isdir(os.path.join(root, "memory")) and os.path.isdir(os.path.join(root, "pids")):
        mem, pid = os.path.join(root, "memory", name), os.path.join(root, "pids", name)
        settings = {mem: {"memory.limit_in_bytes": memory, "memory.memsw.limit_in_bytes": memory},
                    pid: {"pids.max": pids}}
        dirs = [mem, pid]
    else:
        raise unittest.SkipTest("no memory and pids cgroup controllers here")
    made = []
    try:
        for d, files in settings.items():
            os.mkdir(d)
            made.append(d)
            for f, value in files.items():
                if os.path.exists(os.path.join(d, f)):
                    with open(os.path.join(d, f), "w") as out:
                        out.write(str(value))
    except OSError as exc:
        Cgroups(made, None, v2).remove()
        raise unittest.SkipTest("cannot set up cgroups: %s" % exc)
    return Cgroups(dirs, dirs[0], v2)


class ShimTest(unittest.TestCase):
    FALLBACK = False
    SPARES = None  # $QINLING_SPARES for the shim; None: its default (one spare)
    MODE = None  # the bind's execution mode; None: absent (fork)

    @classmethod
    def setUpClass(cls):
        cls.tmp = tempfile.mkdtemp(prefix="qinling-shim-test-")
        cls.env = dict(os.environ, QINLING_PACKAGE_DIR=os.path.join(cls.tmp, "packages"), TMPDIR=cls.tmp)
        cls.env.pop("QINLING_SPARES", None)
        if cls.SPARES is not None:
            cls.env["QINLING_SPARES"] = str(cls.SPARES)

    @classmethod
    def tearDownClass(cls):
        shutil.rmtree(cls.tmp, ignore_errors=True)

    def start(self, prefix=(), **env):
        shim = Shim(fallback=self.FALLBACK, env=dict(self.env, **env), prefix=prefix, mode=self.MODE)
        self.addCleanup(shim.close)
        ready = shim.recv()
        self.assertEqual(ready["op"], "ready", ready)
        return shim, ready

    def bound(self, files=None, entry="funcs.no_context", prefix=(), **env):
        shim, _ = self.start(prefix, **env)
        reply = shim.bind(files or {"funcs.py": FUNCS}, entry)
        self.assertEqual(reply, {"op": "bound", "ok": True})
        return shim

    def fork_only(self, why):
        if self.MODE == "reuse":
            self.skipTest("fork mode only: " + why)

    def needs_spares(self):
        if self.SPARES == 0:
            self.skipTest("this variant keeps no spares")

    def spares(self, shim, n=1, exclude=(), within=5.0):
        """The pids of the shim's idle spares once there are `n` (ignoring `exclude`: the
        processes of executions that may not have exited yet)."""
        deadline = time.monotonic() + within
        while True:
            found = [p for p in children(shim.proc.pid) if p not in exclude]
            if len(found) == n:
                return found
            if time.monotonic() > deadline:
                raise AssertionError("the shim has spares %r, expected %d" % (found, n))
            time.sleep(0.01)

    # -- lifecycle -----------------------------------------------------------------------

    def test_ready(self):
        shim, ready = self.start()
        self.assertEqual(ready["pid"], shim.proc.pid)
        self.assertEqual(ready["runtime"], "python3")
        self.assertRegex(ready["version"], r"^3\.\d+\.\d+$")

    def test_bind_ok_and_hello_world_with_kwargs(self):
        shim = self.bound({"hello.py": HELLO}, "hello.main")
        r = shim.run("e1", kwargs={"name": "Qinling"})
        self.assertEqual((r["success"], r["output"], r["reason"]), (True, "Hello, Qinling", "ok"))
        self.assertEqual(r["logs"], "Start execution: e1\nHello, Qinling\nFinished execution: e1\n")
        self.assertLess(r["duration"], 5)
        self.assertEqual(r["duration"], round(r["duration"], 3))
        self.assertIsInstance(r["cpu_ms"], int)
        self.assertGreaterEqual(r["cpu_ms"], 0)
        self.assertGreater(r["max_rss_kb"], 1000)

    def test_positional_argument_and_no_input(self):
        shim = self.bound({"hello.py": HELLO}, "hello.main")
        r = shim.run("e1", args=["Bob"])
        self.assertEqual(r["output"], "Hello, Bob")
        self.assertEqual(r["logs"], "Start execution: e1\nHello, Bob\nFinished execution: e1\n")
        self.assertEqual(shim.run("e2")["output"], "Hello, World")

    def test_entry_forms(self):
        files = {"pkg/__init__.py": "", "pkg/mod.py": "def handler(**kw):\n    return 'dotted'\n",
                 "main.py": "def main(**kw):\n    return 'bare'\n"}
        for entry, expected in (("pkg.mod.handler", "dotted"), ("main", "bare"), ("main.main", "bare")):
            shim = self.bound(files, entry)
            self.assertEqual(shim.run("e")["output"], expected, entry)

    def test_bind_missing_module(self):
        shim, _ = self.start()
        r = shim.bind({"funcs.py": FUNCS}, "nope.main")
        self.assertEqual((r["op"], r["ok"]), ("bound", False))
        self.assertEqual(r["error"], "ModuleNotFoundError: No module named 'nope'")
        # No frame of the user's is involved, so the "traceback" is just the error line.
        self.assertEqual(r["logs"], "ModuleNotFoundError: No module named 'nope'\n")

    def test_bind_missing_function(self):
        shim, _ = self.start()
        r = shim.bind({"funcs.py": FUNCS}, "funcs.missing")
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"], "AttributeError: module 'funcs' has no attribute 'missing'")

    def test_bind_logs_keep_import_time_output(self):
        shim, _ = self.start()
        src = "import sys\nprint('loading')\nsys.stderr.write('warned\\n')\nraise RuntimeError('broken at import')\n"
        r = shim.bind({"bad.py": src}, "bad.main")
        self.assertEqual(r["error"], "RuntimeError: broken at import")
        self.assertTrue(r["logs"].startswith("loading\nwarned\nTraceback (most recent call last):\n"), r["logs"])
        self.assertIn('bad.py", line 4', r["logs"])
        self.assertNotIn(SHIM, r["logs"], "the shim's own frames are not shown")

    def test_bind_logs_keep_the_traceback_after_much_output(self):
        shim, _ = self.start()
        r = shim.bind({"noisy.py": "print('n' * (2 << 20))\nraise ValueError('late')\n"}, "noisy.main")
        self.assertIn("[log truncated: ", r["logs"])
        self.assertTrue(r["logs"].endswith("ValueError: late\n"), r["logs"][-300:])

    def test_bind_refuses_escaping_members(self):
        for name in ("../evil.py", "/abs.py", "a/../../evil.py"):
            shim, _ = self.start()
            r = shim.bind({"funcs.py": FUNCS, name: "x = 1\n"}, "funcs.no_context")
            self.assertFalse(r["ok"], name)
            self.assertIn("PackageError", r["error"])
            self.assertIn("outside the package directory", r["error"])
        self.assertFalse(os.path.exists(os.path.join(self.tmp, "evil.py")))

    def test_bind_bad_zip(self):
        shim, _ = self.start()
        shim.send({"op": "bind", "entry": "main.main", "package_size": 3, "function_id": "f", "function_version": 0})
        shim.send_raw(b"abc")
        r = shim.recv()
        self.assertFalse(r["ok"])
        self.assertIn("BadZipFile", r["error"])

    def test_working_directory_is_the_package(self):
        shim = self.bound({"funcs.py": FUNCS, "data.txt": "from the package"}, "funcs.data_file")
        self.assertEqual(shim.run("e")["output"], "from the package")

    # -- calling convention --------------------------------------------------------------

    def test_function_without_context_parameter(self):
        shim = self.bound(entry="funcs.no_context")
        r = shim.run("e", kwargs={"a": 40})
        self.assertEqual((r["output"], r["reason"]), ({"sum": 42}, "ok"))

    def test_context_is_passed_when_accepted(self):
        shim = self.bound(entry="funcs.with_context")
        ctx = {"execution_id": "e", "function_id": "f", "function_version": 0, "project_id": "p", "request_id": "r"}
        r = shim.run("e", kwargs={"x": 1}, context=ctx)
        self.assertEqual(r["output"], {"context": dict(ctx, os_session=None), "kwargs": ["x"]})
        shim = self.bound(entry="funcs.keyword_only")
        self.assertIs(shim.run("e")["output"], True)

    # -- failures ------------------------------------------------------------------------

    def test_entry_outside_the_package_is_refused(self):
        # The engine refuses these at create; the shim refuses them again at bind.
        cases = (
            ({"funcs.py": FUNCS}, "os.system"),  # loaded already by the interpreter
            ({"funcs.py": FUNCS}, "json.dumps"),  # imported by the shim
            ({"funcs.py": FUNCS}, "this.main"),  # found in the standard library
            ({"os.py": "def system(*a):\n    return 'mine'\n"}, "os.system"),  # shadowed
        )
        for files, entry in cases:
            shim, _ = self.start()
            r = shim.bind(files, entry)
            self.assertEqual((r["op"], r["ok"]), ("bound", False), (entry, r))
            self.assertIn("is not in the function's package", r["error"], entry)
        # A package's own dotted module still loads.
        shim = self.bound({"pkg/__init__.py": "", "pkg/m.py": "def f(**kw):\n    return 1\n"}, "pkg.m.f")
        self.assertEqual(shim.run("e")["output"], 1)

    def test_executions_run_under_ids_of_their_own(self):
        # As root (the jail's runtime is uid 0 of its user namespace), with a range of ids:
        # concurrent executions get different ids, none the zygote's, and cannot signal the
        # zygote or each other; the zygote is non-dumpable. Here on the host, as real root.
        if os.geteuid() != 0:
            self.skipTest("needs root to switch ids")
        os.chmod(self.tmp, 0o755)
        src = r"""
import os, signal, time
def who(wait=0, victim=0, **kw):
    out = {"uid": os.getuid(), "gid": os.getgid(), "groups": os.getgroups(),
           "ppid_dumpable": None, "kill_zygote": None, "kill_victim": None, "mem": None}
    try:
        os.kill(os.getppid(), 0)
        out["kill_zygote"] = "ok"
    except OSError as e:
        out["kill_zygote"] = e.errno
    if victim:
        try:
            os.kill(victim, signal.SIGSTOP)
            out["kill_victim"] = "ok"
        except OSError as e:
            out["kill_victim"] = e.errno
    try:
        open("/proc/%d/mem" % os.getppid(), "rb").close()
        out["mem"] = "ok"
    except OSError as e:
        out["mem"] = e.errno
    out["pid"] = os.getpid()
    out["umask"] = os.umask(0o077)
    time.sleep(wait)
    return out
"""
        shim = self.bound({"who.py": src}, "who.who", QINLING_EXEC_IDS="61000:8")
        with open("/proc/%d/status" % shim.proc.pid) as f:
            self.assertNotIn("Uid:\t61", f.read())
        shim.exec("slow", kwargs={"wait": 2})
        time.sleep(0.5)
        slow_pid = [p for p in children(shim.proc.pid)]
        r = shim.run("fast", kwargs={"victim": max(slow_pid)})
        slow = shim.recv()
        a, b = slow["output"], r["output"]
        self.assertTrue(61000 <= a["uid"] < 61008 and 61000 <= b["uid"] < 61008, (a, b))
        self.assertNotEqual(a["uid"], b["uid"])
        for out in (a, b):
            self.assertEqual((out["gid"], out["groups"]), (out["uid"], []), out)
            self.assertEqual(out["kill_zygote"], 1, out)  # EPERM
            self.assertEqual(out["mem"], 13, out)  # EACCES
            self.assertEqual(out["umask"], 0o077, out)
        self.assertIn(b["kill_victim"], (1, 3), b)  # EPERM (or ESRCH had it ended)
        self.assertTrue(slow["success"], slow)

    def test_a_log_flood_is_cut_while_it_is_written(self):
        # 200 MiB printed: the log keeps its limit, the rest is counted, and the zygote never
        # holds more than that (it drains a pipe; a file would hold all 200 MiB).
        src = ("import os, sys\n"
               "def main(**kw):\n"
               "    chunk = 'y' * (1 << 20)\n"
               "    for _ in range(100):\n"
               "        sys.stdout.write(chunk)\n"
               "    os.system('head -c %d /dev/zero' % (100 << 20))\n"
               "    return 'done'\n")
        shim = self.bound({"flood.py": src}, "flood.main")
        r = shim.run("e", log_limit=4096, timeout_ms=60000)
        self.assertEqual((r["success"], r["output"]), (True, "done"), r)
        self.assertTrue(r["logs"].startswith("Start execution: e\nyyyy"), r["logs"][:100])
        self.assertIn("\n[log truncated: %d bytes more]\n" % (200 * (1 << 20) + len("Finished execution: e\n") + len("Start execution: e\n") - 4096),
                      r["logs"])
        self.assertLess(len(r["logs"]), 4096 + 100)

    def test_big_integers_convert_to_text(self):
        # Upstream's CPU-limit function prints a 50,000-digit integer; Python >= 3.11 refuses
        # to convert more than 4300 digits unless the shim lifts the limit.
        src = ("def main(**kw):\n"
               "    n = 10 ** 50000 + 7\n"
               "    text = str(n)\n"
               "    print(text)\n"
               "    return [len(text), int(text) == n, text[-3:]]\n")
        shim = self.bound({"big.py": src}, "big.main")
        r = shim.run("e1")
        self.assertEqual((r["success"], r["output"]), (True, [50001, True, "007"]), r)

    def test_exception(self):
        shim = self.bound(entry="funcs.boom")
        r = shim.run("e")
        self.assertEqual((r["success"], r["output"], r["reason"]), (False, "boom happened", "exception"))
        start = "Start execution: e\nabout to fail\nTraceback (most recent call last):\n"
        self.assertTrue(r["logs"].startswith(start), r["logs"])
        self.assertTrue(r["logs"].endswith("ValueError: boom happened\nFinished execution: e\n"), r["logs"])
        self.assertNotIn(SHIM, r["logs"])

    def test_logging_configured_at_import_reaches_the_log(self):
        shim = self.bound(entry="funcs.logs_something")
        self.assertEqual(shim.run("e")["logs"], "Start execution: e\nINFO via logging\nFinished execution: e\n")

    def test_rlimits_only_lower_soft_and_hard_limits(self):
        import resource
        nofile_soft = resource.getrlimit(resource.RLIMIT_NOFILE)[0]  # the shim inherits ours
        shim = self.bound(entry="funcs.limits")
        r = shim.run("e", rlimits={"nofile": 1000, "nproc": 100, "fsize": 12345678})
        self.assertEqual(r["output"], {"nofile": [1000, 1000], "nproc": [100, 100], "fsize": [12345678, 12345678]})
        if self.MODE == "reuse":
            return  # a process's limits can only be lowered (the engine sends the same ones)
        # Asking for more than the current soft limit never raises it.
        nofile_hard = resource.getrlimit(resource.RLIMIT_NOFILE)[1]
        ask = nofile_soft + 1
        r = shim.run("e2", rlimits={"nofile": ask})
        hard = ask if nofile_hard == resource.RLIM_INFINITY else min(nofile_hard, ask)
        self.assertEqual(r["output"]["nofile"], [nofile_soft, hard])

    def test_file_size_limit(self):
        shim = self.bound(entry="funcs.big_file")
        r = shim.run("e", kwargs={"size": 2 << 20}, rlimits={"nofile": 1024, "nproc": 128, "fsize": 1 << 20})
        self.assertEqual(r["reason"], "exception", r)
        self.assertIn("File too large", r["output"])

    def test_stderr_is_captured(self):
        shim = self.bound(entry="funcs.to_stderr")
        r = shim.run("e")
        self.assertEqual((r["output"], r["logs"]), (None, "Start execution: e\nto stderr\nFinished execution: e\n"))

    def test_timeout(self):
        shim = self.bound(entry="funcs.sleepy")
        r = shim.run("slow", kwargs={"seconds": 3}, timeout_ms=500)
        self.assertEqual((r["success"], r["output"], r["reason"]), (False, TIMEOUT_MSG, "timeout"))
        self.assertGreaterEqual(r["duration"], 0.5)
        self.assertLess(r["duration"], 1.5)
        first = r["logs"].splitlines()
        self.assertEqual(first[0], "Start execution: slow")
        self.assertEqual(first[1].split()[0], "sleeping", "output before the kill is kept")
        pid, grandchild = map(int, first[1].split()[1:])
        self.assertTrue(wait_gone(pid), "the execution's process is gone")
        self.assertTrue(wait_gone(grandchild), "its process group is gone too")
        r = shim.run("fast", kwargs={"seconds": 0.01})
        self.assertEqual(r["output"], "woke", "the worker survives a timeout")

    def test_concurrent_executions_have_separate_logs(self):
        shim = self.bound(entry="funcs.named")
        names = ("alpha", "beta", "gamma")
        for name in names:
            shim.exec(name, kwargs={"name": name})
        results = {}
        for _ in names:
            r = shim.recv()
            results[r["id"]] = r
        self.assertEqual(set(results), set(names))
        for name in names:
            r = results[name]
            expected = "".join("%s %d\n" % (name, i) for i in range(5))
            self.assertEqual(r["logs"], "Start execution: %s\n%sFinished execution: %s\n" % (name, expected, name))
            self.assertEqual(r["output"]["ppid"], shim.proc.pid)
        outs = [results[n]["output"] for n in names]
        self.assertLess(max(o["start"] for o in outs), min(o["end"] for o in outs), "the three ran at the same time")

    def test_too_many_open_files(self):
        shim = self.bound(entry="funcs.many_files")
        r = shim.run("e", kwargs={"n": 1100}, rlimits={"nofile": 1024, "nproc": 128, "fsize": 524288000})
        self.assertEqual(r["reason"], "exception")
        self.assertIn("Too many open files", r["output"])
        self.assertIn("[Errno 24] Too many open files", r["logs"])

    def test_process_limit(self):
        if os.geteuid() == 0:
            self.skipTest("RLIMIT_NPROC is not enforced for root; run the suite as another user to cover it")
        shim = self.bound(entry="funcs.forker")
        r = shim.run("e", kwargs={"n": 50}, rlimits={"nofile": 1024, "nproc": 10, "fsize": 524288000})
        self.assertIn(r["reason"], ("resource", "exception"), r)
        self.assertFalse(r["success"])
        if r["reason"] == "resource":
            self.assertEqual(r["output"], RESOURCE_MSG)

    def test_daemon_left_behind_is_killed(self):
        shim = self.bound(entry="funcs.daemon")
        r = shim.run("e")
        self.assertEqual(r["reason"], "ok", r)
        pid = r["output"]
        self.assertTrue(wait_gone(pid), "the daemon %d is still running" % pid)
        r = shim.run("again")
        self.assertEqual(r["reason"], "ok", "the worker carries on")
        self.assertTrue(wait_gone(r["output"]))

    def test_daemon_descendants_are_killed_too(self):
        shim = self.bound(entry="funcs.daemon_chain")
        r = shim.run("e", kwargs={"depth": 3})
        self.assertEqual(r["reason"], "ok", r)
        self.assertEqual(len(r["output"]), 4, r)
        for pid in r["output"]:
            self.assertTrue(wait_gone(pid), "%d of the daemon's chain is still running" % pid)
        self.assertEqual(shim.run("again", kwargs={"depth": 0})["reason"], "ok", "the worker carries on")

    def test_unserializable_result(self):
        shim = self.bound(entry="funcs.unserializable")
        r = shim.run("e")
        self.assertEqual((r["success"], r["reason"]), (False, "unserializable"))
        self.assertIn("not JSON serializable", r["output"])
        self.assertTrue(r["logs"].endswith("Finished execution: e\n"))
        shim = self.bound(entry="funcs.nan")
        self.assertEqual(shim.run("e")["reason"], "unserializable")

    def test_resource_failures(self):
        for entry in ("funcs.memory_error", "funcs.killed", "funcs.exit_3"):
            shim = self.bound(entry=entry)
            r = shim.run("e")
            self.assertEqual((r["success"], r["output"], r["reason"]), (False, RESOURCE_MSG, "resource"), entry)

    def test_killed_output_is_kept(self):
        shim = self.bound(entry="funcs.killed")
        r = shim.run("e")
        self.assertEqual(r["logs"], "Start execution: e\ndying\n")

    def test_forked_process_returning_from_the_function_is_silent(self):
        shim = self.bound(entry="funcs.fork_and_return")
        r = shim.run("e")
        self.assertEqual(r["output"], "parent")
        self.assertEqual(r["logs"].count("Finished execution"), 1)

    def test_execution_cannot_see_the_protocol_channel(self):
        shim = self.bound(entry="funcs.fds")
        # The protocol pipes, as /proc names them; the pipes an execution does hold are its own
        # ends of its log pipe (fds 1 and 2, and the shim's own copy for the markers) and of
        # the pipe on which it tells the zygote that its result is complete.
        channel = {"pipe:[%d]" % os.fstat(f.fileno()).st_ino for f in (shim.proc.stdin, shim.proc.stdout)}
        for exec_id in ("e1", "e2"):  # a spare's and a forked child's (see SpareTest)
            links = shim.run(exec_id)["output"]
            self.assertFalse(channel & set(links.values()), links)
            # (A reused process also holds the read end of its request pipe.)
            pipes = 3 if self.MODE == "reuse" else 2
            self.assertEqual(len({l for l in links.values() if l.startswith("pipe:")}), pipes, links)
            self.assertTrue(links["1"].startswith("pipe:"), links)
            self.assertEqual(links["1"], links["2"])
            self.assertNotEqual(links["0"], links["1"])

    def test_execution_does_not_hold_other_executions_files(self):
        shim = self.bound(entry="funcs.fds")
        shim.exec("slow", kwargs={"sleep": 1})
        r = shim.run("fast")
        # 0, 1, 2 and the shim's private log, result and done descriptors (and a reused
        # process's request pipe and /proc/self/clear_refs): nothing of "slow".
        extra = 2 if self.MODE == "reuse" else 0
        self.assertEqual(len(r["output"]), 6 + extra, r["output"])
        self.assertEqual(len(set(r["output"].values())), 4 + extra, r["output"])
        self.assertEqual(shim.recv()["id"], "slow")

    def test_many_concurrent_executions(self):
        shim = self.bound({"hello.py": HELLO}, "hello.main")
        for i in range(20):
            shim.exec("e%d" % i, kwargs={"name": str(i)})
        results = [shim.recv() for _ in range(20)]
        self.assertEqual(sorted(r["output"] for r in results), sorted("Hello, %d" % i for i in range(20)))
        shim.send({"op": "ping"})
        self.assertEqual(shim.recv(), {"op": "pong", "running": 0})

    # -- spares (idle children forked ahead of the next execution) -----------------------

    def test_spare_runs_the_next_execution_and_is_replaced(self):
        self.needs_spares()
        self.fork_only("a reused process runs the next execution (ReuseShimTest)")
        shim = self.bound(entry="funcs.whoami")
        used = []
        for i in range(3):
            spare, = self.spares(shim, exclude=used)
            r = shim.run("e%d" % i)
            self.assertEqual((r["reason"], r["output"]), ("ok", spare), "the spare ran it")
            self.assertEqual(r["logs"], "Start execution: e%d\nFinished execution: e%d\n" % (i, i))
            used.append(spare)
            self.assertTrue(wait_gone(spare), "the execution's process is gone after its result")
        shim.send({"op": "ping"})
        self.assertEqual(shim.recv(), {"op": "pong", "running": 0}, "a spare is not a running execution")

    def test_several_spares(self):
        self.needs_spares()
        shim = self.bound(entry="funcs.whoami", QINLING_SPARES="3")
        spares = set(self.spares(shim, n=3))
        for i in range(3):
            shim.exec("e%d" % i)
        self.assertEqual({shim.recv()["output"] for _ in range(3)}, spares, "one execution on each")
        if self.MODE == "reuse":
            self.assertEqual(set(self.spares(shim, n=3)), spares, "each one kept for the next")
        else:
            self.spares(shim, n=3, exclude=spares)
        shim = self.bound(entry="funcs.whoami", QINLING_SPARES="99")
        self.assertEqual(len(self.spares(shim, n=4)), 4, "at most 4")

    def test_second_bind_is_refused_and_the_spare_keeps_the_first_function(self):
        shim = self.bound(entry="funcs.whoami")
        spares = [] if self.SPARES == 0 else self.spares(shim)
        r = shim.bind({"other.py": "def main(**kw):\n    return 'other'\n"}, "other.main")
        self.assertEqual((r["op"], r["ok"]), ("bound", False))
        self.assertEqual(r["error"], "this worker has already been bound")
        r = shim.run("e")
        self.assertEqual(r["reason"], "ok")
        self.assertIsInstance(r["output"], int, "still the first function")
        if spares:
            self.assertEqual(r["output"], spares[0], "on the spare forked before the second bind")

    def test_unbound_worker_keeps_no_spare(self):
        shim, _ = self.start()
        time.sleep(0.2)
        self.assertEqual(children(shim.proc.pid), [])
        r = shim.bind({"funcs.py": "raise ValueError('no')\n"}, "funcs.main")
        self.assertFalse(r["ok"])
        time.sleep(0.2)
        self.assertEqual(children(shim.proc.pid), [], "nor does one whose bind failed")

    def test_module_state_is_fresh_in_every_execution(self):
        self.fork_only("module state persists in a reused process (ReuseShimTest)")
        shim = self.bound(entry="funcs.count")
        pids = set()
        for i in range(4):
            r = shim.run("s%d" % i)
            self.assertEqual((r["output"]["calls"], r["output"]["counter"]), (1, 1), r)
            pids.add(r["output"]["pid"])
        for i in range(4):
            shim.exec("c%d" % i)
        for _ in range(4):
            r = shim.recv()
            self.assertEqual((r["output"]["calls"], r["output"]["counter"]), (1, 1), r)
            pids.add(r["output"]["pid"])
        self.assertEqual(len(pids), 8, "every execution ran in a process of its own")

    def test_dead_spare_is_replaced(self):
        self.needs_spares()
        shim = self.bound(entry="funcs.whoami")
        spare, = self.spares(shim)
        os.kill(spare, signal.SIGKILL)
        self.assertTrue(wait_gone(spare))
        replacement, = self.spares(shim, exclude=[spare])
        self.assertNotEqual(replacement, spare)
        r = shim.run("e")
        self.assertEqual((r["reason"], r["output"]), ("ok", replacement))

    def test_spare_killed_just_before_its_execution(self):
        self.needs_spares()
        shim = self.bound(entry="funcs.whoami")
        spare, = self.spares(shim)
        # Stopped, then killed: the shim may hand the execution to it before it notices.
        os.kill(spare, signal.SIGSTOP)
        os.kill(spare, signal.SIGKILL)
        r = shim.run("e")
        self.assertEqual(r["id"], "e")
        if r["reason"] == "ok":
            self.assertNotEqual(r["output"], spare)
        else:
            self.assertEqual(r["output"], RESOURCE_MSG, "at worst the execution fails as resource")
        self.assertEqual(shim.run("e2")["reason"], "ok")

    def test_spares_that_keep_dying_are_given_up(self):
        self.needs_spares()
        shim = self.bound(entry="funcs.whoami")
        killed = []
        for _ in range(3):
            spare, = self.spares(shim, exclude=killed)
            os.kill(spare, signal.SIGKILL)
            killed.append(spare)
        deadline = time.monotonic() + 5
        while children(shim.proc.pid):
            self.assertLess(time.monotonic(), deadline, "no more spares after three deaths")
            time.sleep(0.01)
        time.sleep(0.1)
        self.assertEqual(children(shim.proc.pid), [])
        for i in range(2):
            r = shim.run("e%d" % i)
            self.assertEqual(r["reason"], "ok", "executions still run, each in a fresh fork")
            self.assertNotIn(r["output"], killed)

    def test_timeout_of_an_execution_on_a_spare(self):
        self.needs_spares()
        shim = self.bound(entry="funcs.sleepy")
        spare, = self.spares(shim)
        r = shim.run("slow", kwargs={"seconds": 3}, timeout_ms=300)
        self.assertEqual((r["success"], r["output"], r["reason"]), (False, TIMEOUT_MSG, "timeout"))
        self.assertGreaterEqual(r["duration"], 0.3)
        self.assertLess(r["duration"], 1.5)
        pid, grandchild = map(int, r["logs"].splitlines()[1].split()[1:])
        self.assertEqual(pid, spare, "the spare ran it")
        self.assertTrue(wait_gone(pid))
        self.assertTrue(wait_gone(grandchild), "its process group went with it")
        replacement, = self.spares(shim, exclude=[spare])
        r = shim.run("fast", kwargs={"seconds": 0.01})
        self.assertEqual(r["output"], "woke")
        self.assertIn("sleeping %d " % replacement, r["logs"])

    def test_concurrent_executions_on_spares_and_forks_keep_their_output_apart(self):
        shim = self.bound(entry="funcs.printer")
        if self.SPARES != 0:
            self.spares(shim)
        names = ["n%d" % i for i in range(5)]
        for name in names:
            shim.exec(name, kwargs={"name": name, "lines": 20})
        results = {}
        for _ in names:
            r = shim.recv()
            results[r["id"]] = r
        for name in names:
            r = results[name]
            self.assertEqual((r["reason"], r["output"]), ("ok", name))
            lines = r["logs"].splitlines()
            self.assertEqual(lines[0], "Start execution: %s" % name)
            self.assertEqual(lines[-1], "Finished execution: %s" % name)
            body = sorted(lines[1:-1])
            expected = sorted(["%s %d" % (name, i) for i in range(20)] + ["%s err %d" % (name, i) for i in range(20)])
            self.assertEqual(body, expected, "only its own output, all of it")

    def test_big_exec_message_reaches_a_spare(self):
        shim = self.bound(entry="funcs.echo")
        if self.SPARES != 0:
            self.spares(shim)
        big = "x" * (200 << 10)
        r = shim.run("big", kwargs={"data": big, "n": 1})
        self.assertEqual((r["reason"], r["output"]), ("ok", {"data": big, "n": 1}))
        r = shim.run("small", kwargs={"n": 2})
        self.assertEqual(r["output"], {"n": 2}, "the result file the request went through was emptied")

    def test_smallest_memory_limit_runs_three_concurrent_executions(self):
        """The engine's smallest memory_size (32 MiB) and its 3 executions per worker, with
        the spare counted in the same memory and pids cgroups (as the jail sets them up)."""
        cgroups = worker_cgroups(32 << 20, 129)
        self.addCleanup(cgroups.remove)
        shim = self.bound(entry="funcs.named", prefix=cgroups.prefix())
        for rnd in range(3):
            for i in range(3):
                shim.exec("r%d-%d" % (rnd, i), kwargs={"name": "n%d" % i})
            for _ in range(3):
                r = shim.recv()
                self.assertEqual(r["reason"], "ok", r)
        self.assertEqual(cgroups.oom_kills(), 0)
        self.assertLess(cgroups.peak(), 24 << 20, "room to spare under 32 MiB")

    def test_cpu_time_is_the_executions(self):
        shim = self.bound(entry="funcs.whoami")
        r = shim.run("e")
        self.assertLess(r["cpu_ms"], 50)
        self.assertGreater(r["max_rss_kb"], 1000)

    # -- logs and results ----------------------------------------------------------------

    def test_log_is_truncated(self):
        shim = self.bound(entry="funcs.big_log")
        limit = 1 << 20
        r = shim.run("e", kwargs={"size": 2 << 20}, log_limit=limit)
        full = "Start execution: e\n" + "x" * (2 << 20) + "Finished execution: e\n"
        self.assertEqual(r["logs"], full[:limit] + "\n[log truncated: %d bytes more]\n" % (len(full) - limit))

    def test_big_result(self):
        shim = self.bound(entry="funcs.big_result")
        r = shim.run("e", kwargs={"size": 5 << 20})
        self.assertEqual((r["reason"], len(r["output"])), ("ok", 5 << 20))

    # -- protocol ------------------------------------------------------------------------

    def test_ping(self):
        shim = self.bound(entry="funcs.sleepy")
        shim.send({"op": "ping"})
        self.assertEqual(shim.recv(), {"op": "pong", "running": 0})
        shim.exec("e", kwargs={"seconds": 0.3})
        shim.send({"op": "ping"})
        self.assertEqual(shim.recv(), {"op": "pong", "running": 1})
        self.assertEqual(shim.recv()["output"], "woke")

    def test_exec_before_bind(self):
        shim, _ = self.start()
        r = shim.run("e")
        self.assertEqual((r["success"], r["reason"]), (False, "exception"))
        self.assertEqual(r["output"], "The worker has no function bound.")

    def test_eof_exits_0_and_kills_executions(self):
        shim = self.bound(entry="funcs.pid_file_sleeper")
        path = os.path.join(self.tmp, "pid-%d" % os.getpid())
        shim.exec("e", kwargs={"path": path}, timeout_ms=60000)
        deadline = time.monotonic() + 5
        while not (os.path.exists(path) and os.path.getsize(path)):
            self.assertLess(time.monotonic(), deadline)
            time.sleep(0.01)
        with open(path) as f:
            pid = int(f.read())
        shim.proc.stdin.close()
        self.assertEqual(shim.proc.wait(timeout=5), 0)
        self.assertTrue(wait_gone(pid))

    def test_malformed_message(self):
        for raw in (b"not json", b"[1, 2]", json.dumps({"op": "dance"}).encode()):
            shim, _ = self.start()
            shim.send_raw(raw)
            r = shim.recv()
            self.assertEqual(r["op"], "error", raw)
            self.assertEqual(shim.proc.wait(timeout=5), 1)

    def test_oversized_frame(self):
        shim, _ = self.start()
        shim.proc.stdin.write((65 << 20).to_bytes(4, "big"))
        self.assertEqual(shim.recv()["op"], "error")
        self.assertEqual(shim.proc.wait(timeout=5), 1)


class ExecIdCoolingTest(unittest.TestCase):
    """The zygote's choice of execution ids, on the class itself (no process is started)."""

    def test_an_id_cools_while_leftovers_are_dying(self):
        import importlib.util
        spec = importlib.util.spec_from_file_location(
            "python3_shim", os.path.join(os.path.dirname(os.path.abspath(__file__)), "python3.py"))
        shim = importlib.util.module_from_spec(spec)
        spec.loader.exec_module(shim)
        shim.EXEC_IDS = (61000, 4)
        z = shim.Zygote.__new__(shim.Zygote)
        z.ids_in_use, z.dying, z.cooling = {11: 61000}, {12: None}, set()
        z.reaped(11)  # its leftover 12 still dying: 61000 still counts its processes
        self.assertEqual(z.free_id(), 61001)
        z.ids_in_use = {13: 61001, 14: 61002, 15: 61003}
        self.assertEqual(z.free_id(), 61000, "a cooling id rather than none")
        z.ids_in_use, z.dying = {}, {}
        self.assertEqual(z.free_id(), 61000, "every leftover reaped: the id is free again")
        self.assertEqual(z.cooling, set())


class FallbackShimTest(ShimTest):
    """The same suite without pidfds and memfds (SIGCHLD self-pipe, unlinked temp files)."""

    FALLBACK = True


class ReuseShimTest(ShimTest):
    """The same suite in `reuse` mode (executions run one after another in long-lived
    processes), with the tests of that mode's own semantics."""

    MODE = "reuse"

    def test_module_state_persists_in_the_process(self):
        shim = self.bound(entry="funcs.count")
        outs = [shim.run("s%d" % i)["output"] for i in range(4)]
        self.assertEqual([(o["calls"], o["counter"]) for o in outs], [(i, i) for i in range(1, 5)])
        self.assertEqual(len({o["pid"] for o in outs}), 1, "one process ran them all")

    def test_concurrent_executions_run_in_processes_of_their_own(self):
        shim = self.bound(entry="funcs.count_or")
        for i in range(3):
            shim.exec("c%d" % i, kwargs={"seconds": 0.3})
        outs = [shim.recv()["output"] for _ in range(3)]
        self.assertEqual(len({o["pid"] for o in outs}), 3, outs)
        # Each process has its own module state; the next execution goes to the one used last.
        after = shim.run("next")["output"]
        self.assertIn(after["pid"], {o["pid"] for o in outs})
        self.assertEqual(after["counter"], 2)

    def test_an_exception_keeps_the_process_and_its_state(self):
        shim = self.bound(entry="funcs.count_or")
        first = shim.run("a")["output"]
        r = shim.run("b", kwargs={"fail": True})
        self.assertEqual((r["success"], r["output"], r["reason"]), (False, "failed at 2", "exception"))
        self.assertIn("RuntimeError: failed at 2", r["logs"])
        self.assertEqual(shim.run("c")["output"], {"counter": 3, "pid": first["pid"]})

    def test_a_timeout_replaces_the_process(self):
        shim = self.bound(entry="funcs.count_or")
        first = shim.run("a")["output"]
        r = shim.run("slow", kwargs={"seconds": 5}, timeout_ms=300)
        self.assertEqual((r["success"], r["output"], r["reason"]), (False, TIMEOUT_MSG, "timeout"))
        self.assertTrue(wait_gone(first["pid"]), "the interrupted process is killed")
        after = shim.run("b")["output"]
        self.assertNotEqual(after["pid"], first["pid"])
        self.assertEqual(after["counter"], 1, "a fresh process: the module as its import left it")

    def test_a_crash_replaces_the_process(self):
        shim = self.bound(entry="funcs.killed")
        r = shim.run("a")
        self.assertEqual((r["output"], r["reason"]), (RESOURCE_MSG, "resource"))
        self.assertIn("dying", r["logs"])
        r = shim.run("b")
        self.assertEqual(r["reason"], "resource", "and again, in a new process")

    def test_output_of_a_thread_left_running_goes_to_no_execution(self):
        shim = self.bound(entry="funcs.lingering")
        r = shim.run("a", kwargs={"tag": "a"})
        self.assertIn("returned\n", r["logs"])
        time.sleep(0.5)  # the thread prints while no execution runs
        r2 = shim.run("b", kwargs={"tag": "b"})
        self.assertEqual(r2["output"], r["output"], "the same process")
        self.assertIn("returned\n", r2["logs"])
        self.assertNotIn("late a", r2["logs"])

    def test_output_of_threads_during_the_execution_is_in_its_log(self):
        shim = self.bound(entry="funcs.threads_print")
        for i in range(2):
            r = shim.run("t%d" % i)
            self.assertEqual(r["logs"], "Start execution: t%d\nfrom a thread\nFinished execution: t%d\n" % (i, i))

    def test_cpu_time_and_peak_memory_are_each_executions_own(self):
        shim = self.bound(entry="funcs.hog")
        busy = shim.run("busy", kwargs={"ms": 300})
        self.assertGreaterEqual(busy["cpu_ms"], 250, busy)
        quick = shim.run("quick", kwargs={"ms": 0})
        self.assertEqual(quick["output"], busy["output"], "the same process")
        self.assertLess(quick["cpu_ms"], 50, quick)
        shim = self.bound(entry="funcs.alloc")
        big = shim.run("big", kwargs={"mib": 64})
        self.assertGreater(big["max_rss_kb"], 64 << 10, big)
        small = shim.run("small", kwargs={"mib": 0})
        self.assertEqual(small["output"], big["output"], "the same process")
        self.assertLess(small["max_rss_kb"], big["max_rss_kb"] - (48 << 10), small)

    def test_a_crashed_executions_cpu_leaves_out_the_earlier_ones(self):
        shim = self.bound(entry="funcs.hog")
        self.assertGreaterEqual(shim.run("busy", kwargs={"ms": 300})["cpu_ms"], 250)
        r = shim.run("slow", kwargs={"ms": 5000}, timeout_ms=200)
        self.assertEqual(r["reason"], "timeout")
        self.assertLess(r["cpu_ms"], 250, r)

    def test_streams_the_function_replaced_are_restored(self):
        shim = self.bound(entry="funcs.hijack")
        r = shim.run("a")
        self.assertEqual(r["logs"], "Start execution: a\nFinished execution: a\n")
        shim = self.bound(entry="funcs.printer")
        r = shim.run("b", kwargs={"name": "n", "lines": 1})
        self.assertIn("n 0\n", r["logs"])

    def test_an_unknown_mode_is_refused(self):
        shim, _ = self.start()
        shim.mode = "sometimes"
        r = shim.bind({"funcs.py": FUNCS}, "funcs.count")
        self.assertFalse(r["ok"])
        self.assertEqual(r["error"], "unknown execution mode 'sometimes': this worker runs 'fork' or 'reuse'")

    def test_idle_processes_are_capped(self):
        shim = self.bound(entry="funcs.count_or")
        for i in range(6):
            shim.exec("c%d" % i, kwargs={"seconds": 0.3})
        pids = {shim.recv()["output"]["pid"] for _ in range(6)}
        self.assertEqual(len(pids), 6)
        kept = self.spares(shim, n=4, exclude=())
        self.assertTrue(set(kept) <= pids, "at most 4 kept, of those that ran")

    def test_an_idle_worker_keeps_only_its_last_used_process(self):
        shim = self.bound(entry="funcs.count_or")
        for i in range(3):
            shim.exec("c%d" % i, kwargs={"seconds": 0.3})
        pids = {shim.recv()["output"]["pid"] for _ in range(3)}
        last = shim.run("last")["output"]
        self.assertEqual(len(self.spares(shim, n=3, exclude=())), 3, "kept while the burst is recent")
        kept = self.spares(shim, n=1, exclude=(), within=IDLE_TRIM_SECONDS + 5)
        self.assertEqual(kept, [last["pid"]], "the most recently used one stays, others of %r go" % pids)
        after = shim.run("after")["output"]
        self.assertEqual((after["pid"], after["counter"]), (last["pid"], last["counter"] + 1))


class ReuseFallbackShimTest(ReuseShimTest):
    """`reuse` mode without pidfds and memfds."""

    FALLBACK = True


class ForkPerExecutionShimTest(ShimTest):
    """The same suite with no spares (QINLING_SPARES=0): every execution forks its child."""

    SPARES = 0


# The cost the shim cannot avoid: the same interpreter, forking a child that exits at once
# and waiting for it, with what the shim imports loaded.
FORK_FLOOR = """
import gc, json, os, selectors, sys, time, traceback, inspect, zipfile, tempfile, ctypes
gc.collect(); gc.freeze()
times = []
for i in range(int(sys.argv[1])):
    t = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        os._exit(0)
    os.wait4(pid, 0)
    times.append(time.perf_counter() - t)
times.sort()
print(times[len(times) // 2])
"""


def percentiles(times):
    times = sorted(times)
    n = len(times)
    return "p50 %.3f ms  p90 %.3f ms  p99 %.3f ms  max %.3f ms" % (
        times[n // 2] * 1e3, times[n * 9 // 10] * 1e3, times[n * 99 // 100] * 1e3, times[-1] * 1e3)


def bench(n=2000, block=100):
    """Round-trip latency of sequential hello-world executions on one warm worker: with a
    spare (the default) and forking each execution (QINLING_SPARES=0), back to back and
    with a 1 ms pause before each execution (the engine's own work between two executions
    on one worker, which a spare needs to be ready again). The variants run interleaved,
    `block` executions at a time, so that a busy machine affects them alike."""
    tmp = tempfile.mkdtemp(prefix="qinling-shim-bench-")
    variants = [("spare", "1", 0.0, None), ("spare, 1 ms pause", "1", 0.001, None),
                ("fork per execution", "0", 0.0, None), ("fork per execution, 1 ms pause", "0", 0.001, None),
                ("reuse", "1", 0.0, "reuse"), ("reuse, 1 ms pause", "1", 0.001, "reuse")]
    shims = []
    try:
        for _, spares, _, mode in variants:
            shim = Shim(env=dict(os.environ, QINLING_PACKAGE_DIR=tmp, QINLING_SPARES=spares), mode=mode)
            shims.append(shim)
            assert shim.recv()["op"] == "ready"
            assert shim.bind({"hello.py": HELLO}, "hello.main")["ok"]
            for i in range(100):
                shim.run("warm-%d" % i, kwargs={"name": "bench"})
        times = [[] for _ in variants]
        for _ in range(n // block):
            for (_, _, pause, _), shim, out in zip(variants, shims, times):
                for i in range(block):
                    if pause:
                        time.sleep(pause)
                    t = time.perf_counter()
                    shim.run("bench-%d" % i, kwargs={"name": "bench"})
                    out.append(time.perf_counter() - t)
        floor = float(subprocess.check_output([PYTHON, "-I", "-c", FORK_FLOOR, str(n)]))
        print("%d sequential hello-world executions each, exec sent -> result received:" % (n // block * block))
        for (name, _, _, _), t in zip(variants, times):
            print("  %-32s %s" % (name, percentiles(t)))
        print("bare fork + _exit + wait4 of the same interpreter: p50 %.3f ms" % (floor * 1e3))
    finally:
        for shim in shims:
            shim.close()
        shutil.rmtree(tmp, ignore_errors=True)


if __name__ == "__main__" and "--bench" in sys.argv:
    bench()
elif __name__ == "__main__":
    unittest.main()
