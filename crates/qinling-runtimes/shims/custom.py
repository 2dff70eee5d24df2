"""Qinling custom-runtime worker shim.

This file runs inside a worker sandbox as `python3 -I -B custom.py` and speaks the framed
worker protocol of docs/worker-protocol.md. The function's package carries its own
executable (a static binary, or a script with a shebang whose interpreter the sandbox
shows); `entry` is its path inside the package. Each execution starts that executable once,
in its own process group, in the package directory, with the sandbox's limits plus the
exec's rlimits: the execution input arrives on stdin as JSON (an object, a string for a
positional input, `null` for none), stdout is the result (JSON if it parses, else the text),
stderr is the log between the `Start execution:`/`Finished execution:` markers. Exit status
0 is success; any other status fails the execution with the result text (or the status)
as its output; death by a signal the shim did not send (the OOM killer) is `resource`.

Unlike python3.py this shim never runs user code in its own process, so it can use a thread
per execution (each blocks in wait4) instead of a single-threaded zygote loop. Standard
library only; Python 3.8+ on Linux.

Like python3.py it is a child subreaper (and pid 1 of the jail): processes an execution
leaves behind, daemons that left its process group included, come back to it when their
parent exits, and are killed with all their descendants once the execution has ended.

Like python3.py, each execution runs under an id of its own when the sandbox maps a range
($QINLING_EXEC_IDS; the shim is then uid 0 of the jail's user namespace with CAP_SETUID,
CAP_SETGID and CAP_KILL, which the switch drops in the executable), and the shim is
non-dumpable: no execution can signal, trace or read another one or the shim.
"""

import errno
import io
import json
import os
import resource
import signal
import stat
import subprocess
import sys
import tempfile
import threading
import time
import zipfile

RUNTIME = "custom"
TIMEOUT_MSG = "Function execution timeout."
RESOURCE_MSG = "Function execution failed because of too much resource consumption"
MAX_FRAME = 64 * 1024 * 1024
DEFAULT_LOG_LIMIT = 1024 * 1024
# Rounds of kill_leftovers: each one must find a process the previous ones did not kill.
MAX_LEFTOVER_PASSES = 1000
# How long an execution's thread keeps reaping the leftovers it killed, after its answer.
REAP_LEFTOVERS_FOR = 2.0
RLIMITS = (
    ("nofile", resource.RLIMIT_NOFILE),
    ("nproc", resource.RLIMIT_NPROC),
    ("fsize", resource.RLIMIT_FSIZE),
)


class ProtocolError(Exception):
    """The engine sent something the protocol does not allow; the shim must exit."""


def new_file(name):
    """An anonymous read-write file (memfd) for an execution's stdin."""
    if hasattr(os, "memfd_create"):
        return os.memfd_create(name, os.MFD_CLOEXEC)
    fd, path = tempfile.mkstemp(prefix="qinling-%s-" % name)
    os.unlink(path)
    return fd


class CappedPipe:
    """An execution's log (the executable's stderr and the markers) or result (its stdout):
    a pipe whose read end a thread drains as it fills, keeping the first `limit` bytes and
    counting the rest, so that a function printing hundreds of MiB costs the worker no
    memory beyond the cap (a file would hold all of it in the worker's memory until read)."""

    # How long the end of the log is awaited after the execution's process group is gone: a
    # daemon of its own session may still hold the pipe (it is killed just after).
    TAIL_WAIT = 1.0

    def __init__(self, limit):
        self.r, self.w = os.pipe()  # close-on-exec; Popen puts the write end on fd 2
        self.limit = limit
        self.buf = bytearray()
        self.size = 0
        self.deadline = None  # when to stop waiting for the end (None: TAIL_WAIT from result())
        self.thread = threading.Thread(target=self._drain, daemon=True)
        self.thread.start()

    def _drain(self):
        try:
            while True:
                chunk = os.read(self.r, 65536)
                if not chunk:
                    break
                self.size += len(chunk)
                room = self.limit - len(self.buf)
                if room > 0:
                    self.buf += chunk[:room]
        except OSError:
            pass
        finally:
            os.close(self.r)

    def close_write(self):
        if self.w >= 0:
            os.close(self.w)
            self.w = -1

    def result(self):
        """(kept bytes, total size) once every writer is gone (or TAIL_WAIT has passed, from
        now or from when `deadline` was set)."""
        self.close_write()
        deadline = self.deadline if self.deadline is not None else time.monotonic() + self.TAIL_WAIT
        self.thread.join(max(0.0, deadline - time.monotonic()))
        return bytes(self.buf), self.size


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def extract_package(package, dest):
    """Unpacks the zip into `dest`, refusing members that would land outside it and never
    creating symlinks (as python3.py does); file modes are kept so executables stay so."""
    with zipfile.ZipFile(io.BytesIO(package)) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
                raise ValueError("package member %r would be extracted outside the package directory" % name)
            mode = info.external_attr >> 16
            if stat.S_ISLNK(mode):
                continue
            parts = [p for p in parts if p and p != "."]
            if not parts:
                continue
            target = os.path.join(dest, *parts)
            if name.endswith(("/", "\\")) or stat.S_ISDIR(mode):
                os.makedirs(target, exist_ok=True)
                continue
            os.makedirs(os.path.dirname(target), exist_ok=True)
            with zf.open(info) as src, open(target, "wb") as out:
                while True:
                    chunk = src.read(1 << 20)
                    if not chunk:
                        break
                    out.write(chunk)
            if mode & 0o777:
                # Readable by every id in the sandbox (executions run under their own).
                os.chmod(target, (mode & 0o777) | (0o755 if mode & 0o111 else 0o644))


def proc_stat(pid):
    """(state, ppid, pgrp) of a process, or None if it is gone."""
    try:
        with open("/proc/%d/stat" % pid, "rb") as f:
            data = f.read()
    except OSError:
        return None
    fields = data[data.rindex(b")") + 2:].split()
    return fields[0], int(fields[1]), int(fields[2])


def children_of(pid):
    """Children of every thread of `pid` (a re-parented orphan may land on any of them), or
    None where the kernel has no children files."""
    try:
        tids = os.listdir("/proc/%d/task" % pid)
    except OSError:
        return []
    kids = []
    for tid in tids:
        try:
            with open("/proc/%d/task/%s/children" % (pid, tid), "rb") as f:
                kids.extend(int(k) for k in f.read().split())
        except FileNotFoundError:
            if not os.path.exists("/proc/%d/task/%s" % (pid, tid)):
                continue  # the thread is gone
            return None  # no CONFIG_PROC_CHILDREN
        except OSError:
            continue
    return kids


def parents():
    """pid -> ppid of every process, from one scan of /proc."""
    out = {}
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            stat = proc_stat(int(entry))
            if stat is not None:
                out[int(entry)] = stat[1]
    return out


def own_children():
    """(pid, pgrp) of this process's children."""
    kids = children_of(os.getpid())
    if kids is None:
        me = os.getpid()
        kids = [pid for pid, ppid in parents().items() if ppid == me]
    out = []
    for pid in kids:
        stat = proc_stat(pid)
        if stat is not None:
            out.append((pid, stat[2]))
    return out


def with_descendants(roots):
    """The set of `roots` and all their descendants."""
    found, todo = set(roots), list(roots)
    tree = None
    while todo:
        pid = todo.pop()
        kids = children_of(pid) if tree is None else None
        if kids is None:
            if tree is None:
                tree = {}
                for child, parent in parents().items():
                    tree.setdefault(parent, []).append(child)
            kids = tree.get(pid, ())
        for kid in kids:
            if kid not in found:
                found.add(kid)
                todo.append(kid)
    return found


def set_child_subreaper():
    """PR_SET_CHILD_SUBREAPER: orphans of our descendants are re-parented to us (outside a
    jail too), so that kill_leftovers finds them; and PR_SET_DUMPABLE 0: no other process of
    the jail can open this one's /proc/<pid>/mem, fd or environ."""
    try:
        import ctypes

        prctl = ctypes.CDLL(None, use_errno=True).prctl
        prctl(36, 1, 0, 0, 0)
        prctl(4, 0, 0, 0, 0)
    except Exception:
        pass


def exec_ids_from_env():
    """The (first, count) of $QINLING_EXEC_IDS when this process can switch to them (uid 0
    of the jail's user namespace), else None; the variable is removed either way."""
    value = os.environ.pop("QINLING_EXEC_IDS", "")
    try:
        first, count = (int(x) for x in value.split(":"))
    except ValueError:
        return None
    if count <= 0 or first <= 0 or os.geteuid() != 0:
        return None
    if sys.version_info < (3, 9):
        # Popen's user/group/extra_groups/umask arrived in 3.9: on 3.8 executions keep the
        # shim's id (the python3 runtime, which switches with os.setresuid, is unaffected).
        return None
    return first, count


class Shim:
    def __init__(self, proto_in, proto_out):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.send_lock = threading.Lock()
        self.package_dir = None
        self.program = None
        self.bind_attempted = False
        self.running = {}  # id -> Popen
        self.starting = 0  # executions between Popen and their entry in `running`
        self.lock = threading.Lock()
        self.rlimits_applied = False
        self.exec_ids = exec_ids_from_env()
        self.ids_running = set()  # ids of running executions
        self.ids_retiring = set()  # ids of ended executions whose leftovers may still live

    def send(self, msg):
        data = json.dumps(msg, separators=(",", ":")).encode()
        if len(data) > MAX_FRAME:
            msg.update(success=False, output=RESOURCE_MSG, reason="resource",
                       logs=msg.get("logs", "")[:MAX_FRAME // 4] + "\n[result too large: %d bytes]\n" % len(data))
            data = json.dumps(msg, separators=(",", ":")).encode()
        with self.send_lock:
            write_all(self.proto_out, len(data).to_bytes(4, "big") + data)

    def read_exact(self, n):
        buf = bytearray()
        while len(buf) < n:
            chunk = os.read(self.proto_in, min(n - len(buf), 1 << 20))
            if not chunk:
                return None
            buf += chunk
        return bytes(buf)

    def read_frame(self):
        head = self.read_exact(4)
        if head is None:
            return None
        size = int.from_bytes(head, "big")
        if size > MAX_FRAME:
            raise ProtocolError("frame of %d bytes is larger than %d" % (size, MAX_FRAME))
        frame = self.read_exact(size)
        if frame is None:
            return None
        return frame

    def serve(self):
        self.send({"op": "ready", "pid": os.getpid(), "runtime": RUNTIME, "version": "1"})
        while True:
            frame = self.read_frame()
            if frame is None:
                return 0
            try:
                msg = json.loads(frame)
            except ValueError as exc:
                raise ProtocolError("malformed message: %s" % exc) from None
            if not isinstance(msg, dict):
                raise ProtocolError("malformed message: not a JSON object")
            op = msg.get("op")
            if op == "exec":
                self.start(msg)
            elif op == "ping":
                with self.lock:
                    running = len(self.running)
                self.send({"op": "pong", "running": running})
            elif op == "bind":
                if not isinstance(msg.get("entry"), str) or not isinstance(msg.get("package_size"), int):
                    raise ProtocolError("malformed bind: needs a string entry and an integer package_size")
                package = self.read_frame()
                if package is None:
                    return 0
                if len(package) != msg["package_size"]:
                    raise ProtocolError("package frame has %d bytes, bind announced %r"
                                        % (len(package), msg["package_size"]))
                self.send(self.bind(msg["entry"], package))
            else:
                raise ProtocolError("unknown op %r" % (op,))

    def bind(self, entry, package):
        if self.bind_attempted:
            return {"op": "bound", "ok": False, "error": "this worker has already been bound", "logs": ""}
        self.bind_attempted = True
        try:
            base = os.environ.get("QINLING_PACKAGE_DIR") or tempfile.gettempdir()
            os.makedirs(base, exist_ok=True)
            self.package_dir = tempfile.mkdtemp(prefix="package-", dir=base)
            os.chmod(self.package_dir, 0o755)  # readable, not writable, by the executions' ids
            extract_package(package, self.package_dir)
        except (ValueError, OSError, zipfile.BadZipFile) as exc:
            return {"op": "bound", "ok": False, "error": "PackageError: %s" % exc, "logs": ""}
        parts = [p for p in entry.replace("\\", "/").split("/") if p and p != "."]
        program = os.path.join(self.package_dir, *parts) if parts and ".." not in parts else None
        if program is None or not os.path.isfile(program) or os.path.islink(program):
            return {"op": "bound", "ok": False, "logs": "",
                    "error": "EntryError: the package has no executable file '%s' (entry is the path of "
                             "the executable inside the package)" % entry}
        mode = os.stat(program).st_mode
        if mode & 0o555 != 0o555:
            # Zips made on some systems drop the mode bits; executions run under other ids.
            os.chmod(program, mode | 0o755)
        self.program = program
        return {"op": "bound", "ok": True}

    def apply_rlimits(self, limits):
        """Lowers the shim's own rlimits once (the engine sends the same every time); the
        executables inherit them. Never raised, so the sandbox's limits win."""
        if self.rlimits_applied or not isinstance(limits, dict):
            return
        self.rlimits_applied = True
        for name, which in RLIMITS:
            value = limits.get(name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 0:
                continue
            soft, hard = resource.getrlimit(which)
            soft = value if soft == resource.RLIM_INFINITY else min(soft, value)
            hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
            try:
                resource.setrlimit(which, (soft, hard))
            except (ValueError, OSError):
                pass

    def start(self, msg):
        exec_id = msg.get("id")
        timeout_ms = msg.get("timeout_ms")
        if not isinstance(exec_id, str) or not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
            raise ProtocolError("malformed exec: needs a string id and a positive timeout_ms")
        kwargs, args = msg.get("kwargs"), msg.get("args") or []
        if not isinstance(kwargs or {}, dict) or not isinstance(args, list):
            raise ProtocolError("malformed exec: kwargs must be an object or null, args a list")
        if self.program is None:
            self.send({"op": "result", "id": exec_id, "success": False, "output": "The worker has no function bound.",
                       "duration": 0.0, "logs": "", "cpu_ms": 0, "max_rss_kb": 0, "reason": "exception"})
            return
        self.apply_rlimits(msg.get("rlimits"))
        value = kwargs if kwargs is not None else (args[0] if args else None)
        log_limit = msg.get("log_limit")
        if not isinstance(log_limit, int) or log_limit < 0:
            log_limit = DEFAULT_LOG_LIMIT
        context = msg.get("context")
        traceparent = context.get("traceparent") if isinstance(context, dict) else None
        if not isinstance(traceparent, str):
            traceparent = None
        threading.Thread(target=self.run, args=(exec_id, value, timeout_ms / 1000.0, log_limit, traceparent),
                         daemon=True).start()

    def run(self, exec_id, value, timeout, log_limit, traceparent=None):
        stdin_fd = new_file("stdin")
        # The result is held to the same limit as the log (and as the wasm runtime's stdout).
        out = CappedPipe(log_limit)
        log = CappedPipe(log_limit)
        log_fd = log.w
        try:
            write_all(stdin_fd, json.dumps(value).encode())
            os.lseek(stdin_fd, 0, os.SEEK_SET)
            write_all(log_fd, ("Start execution: %s\n" % exec_id).encode())
            started = time.monotonic()
            with self.lock:
                self.starting += 1  # kill_leftovers waits until the process is in `running`
                uid = self.take_id()
            ids = {} if uid is None else {"user": uid, "group": uid, "extra_groups": [], "umask": 0o077}
            try:
                if uid is False:
                    raise OSError(errno.EAGAIN, "every execution id is taken")
                # The execution's trace, as OpenTelemetry's environment carrier names it.
                env = None if traceparent is None else dict(os.environ, TRACEPARENT=traceparent)
                proc = subprocess.Popen([self.program], stdin=stdin_fd, stdout=out.w, stderr=log_fd,
                                        cwd=self.package_dir, start_new_session=True, close_fds=True,
                                        env=env, **ids)
                out.close_write()  # the executable (and what it starts) hold the only writers
            except OSError as exc:
                with self.lock:
                    self.starting -= 1
                    self.retire_id(uid)
                # ENOEXEC, a missing interpreter, EACCES: the user's package is wrong.
                reason = "resource" if exc.errno in (errno.EAGAIN, errno.ENOMEM) else "exception"
                output = RESOURCE_MSG if reason == "resource" else "Cannot start %s: %s" % (
                    os.path.relpath(self.program, self.package_dir), exc.strerror or exc)
                self.finish(exec_id, False, output, reason, started, log, log_limit, None)
                return
            with self.lock:
                self.running[exec_id] = proc
                self.starting -= 1
            timed_out = threading.Event()

            def on_timeout():
                timed_out.set()
                try:
                    os.killpg(proc.pid, signal.SIGKILL)
                except OSError:
                    pass

            timer = threading.Timer(timeout, on_timeout)
            timer.start()
            try:
                _, status, usage = os.wait4(proc.pid, 0)
            except ChildProcessError:
                status, usage = 1 << 8, None
            proc.returncode = status  # reaped here; Popen must not wait for it again
            timer.cancel()
            # Whatever the execution left running in its group goes with it.
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
            with self.lock:
                self.running.pop(exec_id, None)
                self.retire_id(uid)
            # The result and the log share one wait for a daemon holding both pipes.
            out.deadline = log.deadline = time.monotonic() + CappedPipe.TAIL_WAIT
            data, size = out.result()
            text = data.decode("utf-8", "replace").strip()
            try:
                output = json.loads(text) if text else None
            except ValueError:
                output = text
            if timed_out.is_set():
                success, output, reason = False, TIMEOUT_MSG, "timeout"
            elif size > log_limit:
                success, reason = False, "exception"
                output = ("The function's result is larger than the maximum of %d bytes (%d bytes on stdout)."
                          % (log_limit, size))
            elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
                success, reason = True, "ok"
            elif os.WIFEXITED(status):
                success, reason = False, "exception"
                if output is None:
                    output = "The function's process exited with status %d." % os.WEXITSTATUS(status)
            else:
                success, output, reason = False, RESOURCE_MSG, "resource"
            if not timed_out.is_set():
                write_all(log_fd, ("Finished execution: %s\n" % exec_id).encode())
            self.finish(exec_id, success, output, reason, started, log, log_limit, usage)
        finally:
            log.close_write()
            out.close_write()
            os.close(stdin_fd)
        # After the answer, so that it costs the execution nothing.
        self.kill_leftovers()

    # -- execution ids -------------------------------------------------------------------

    def take_id(self):
        """An id no running execution holds and no ended one's leftovers may still hold
        (None when executions share the shim's id, False when all are taken). Under the lock."""
        if self.exec_ids is None:
            return None
        first, count = self.exec_ids
        for uid in range(first, first + count):
            if uid not in self.ids_running and uid not in self.ids_retiring:
                self.ids_running.add(uid)
                return uid
        return False

    def retire_id(self, uid):
        """The execution under `uid` ended: the id is free once its leftovers are killed.
        Under the lock."""
        if uid:
            self.ids_running.discard(uid)
            self.ids_retiring.add(uid)

    # -- leftovers -----------------------------------------------------------------------

    def kill_leftovers(self):
        """Kills every process of the worker that is not this shim, a running execution
        (with its process group and descendants): what finished executions left behind, such
        as a daemon in a session of its own. Each leftover goes with all its descendants, and
        the pass is repeated until it finds nothing it has not killed, so that a process
        forking while it is killed leaves no child behind (with SIGKILL pending it forks no
        more). The killed processes are then reaped as they die."""
        killed = set()
        with self.lock:
            if self.starting:
                return  # a new process not yet in `running`; the next execution's end looks
            for _ in range(MAX_LEFTOVER_PASSES):
                running = {p.pid for p in self.running.values()}
                roots = [pid for pid, pgrp in own_children() if pid not in running and pgrp not in running]
                new = with_descendants(roots) - killed
                for pid in new:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
                killed |= new
                if not new:
                    break
            # Every leftover has SIGKILL pending (it runs no more code): the ids of ended
            # executions may be given out again.
            self.ids_retiring.clear()
        if killed:
            self.reap_leftovers(killed)

    def reap_leftovers(self, killed):
        """Reaps the killed processes as they die and are re-parented to us (a running
        execution's process is never waited for here: its thread does that)."""
        deadline = time.monotonic() + REAP_LEFTOVERS_FOR
        while killed and time.monotonic() < deadline:
            with self.lock:
                running = {p.pid for p in self.running.values()}
            for pid in list(killed):
                if pid in running:
                    killed.discard(pid)
                    continue
                try:
                    if os.waitpid(pid, os.WNOHANG)[0] == pid:
                        killed.discard(pid)
                except ChildProcessError:
                    if not os.path.exists("/proc/%d" % pid):
                        killed.discard(pid)  # gone, reaped by its own parent
            if killed:
                time.sleep(0.01)

    def finish(self, exec_id, success, output, reason, started, log, log_limit, usage):
        data, size = log.result()
        logs = data.decode("utf-8", "replace")
        if size > log_limit:
            logs += "\n[log truncated: %d bytes more]\n" % (size - log_limit)
        self.send({
            "op": "result", "id": exec_id, "success": success, "output": output,
            "duration": round(time.monotonic() - started, 3), "logs": logs,
            "cpu_ms": int(round((usage.ru_utime + usage.ru_stime) * 1000)) if usage else 0,
            "max_rss_kb": usage.ru_maxrss if usage else 0, "reason": reason,
        })

    def shutdown(self):
        with self.lock:
            procs = list(self.running.values())
        for proc in procs:
            try:
                os.killpg(proc.pid, signal.SIGKILL)
            except OSError:
                pass
        if self.package_dir:
            import shutil

            shutil.rmtree(self.package_dir, ignore_errors=True)


def main():
    # The protocol channel is a private copy of fds 0 and 1; the standard descriptors point
    # at /dev/null so that nothing else can write a frame.
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    set_child_subreaper()
    shim = Shim(proto_in, proto_out)
    code = 0
    try:
        code = shim.serve()
    except ProtocolError as exc:
        code = 1
        try:
            shim.send({"op": "error", "error": str(exc)})
        except OSError:
            pass
    except BrokenPipeError:
        code = 0
    except Exception as exc:  # a bug in this file: tell the engine what, then go
        code = 1
        try:
            shim.send({"op": "error", "error": "worker shim failure: %r" % (exc,)})
        except OSError:
            pass
    finally:
        shim.shutdown()
    os._exit(code)


if __name__ == "__main__":
    main()
