"""Qinling python3 worker shim.

This file runs inside a worker sandbox as `python3 -I -B python3.py` and speaks the framed
worker protocol of docs/worker-protocol.md on its stdin (engine -> worker) and stdout
(worker -> engine). It waits for one `bind` (the function's zip package and entry point),
extracts and imports the function, freezes the imported heap, and then serves any number of
concurrent `exec` messages.

The process is a *zygote*: each execution runs in a child forked from it, so the child
starts with the function already imported, gets its own process group, rlimits and log
file, is accounted exactly, and a timeout can kill exactly its processes. The zygote is
single-threaded (forking a multi-threaded process is unsafe) and runs one epoll loop over
the protocol input and, per child, a pidfd and a "done" pipe, with the nearest execution
deadline as the loop's timeout. It is also a child subreaper, so that daemons an execution
leaves behind come back to it and can be killed.

The fork is kept off an execution's path: a bound zygote keeps a *spare*, a child forked
ahead of time that has already done everything but the execution itself (its process
group, descriptors, signals, log file, a dry run of the shim's own code) and waits on a
pipe for its exec message. An execution goes to the spare if there is one (else to a child
forked for it), and the replacement is forked from the zygote, never from a used child,
once no execution runs. The child reports its result on its done pipe before it
exits, so the answer does not wait for the teardown of its address space either.

Each execution child runs under an id of its own when the sandbox maps a range of them
($QINLING_EXEC_IDS, `<first>:<count>`; the zygote is then uid 0 of the jail's user namespace
with CAP_SETUID, CAP_SETGID and CAP_KILL): no two live children share an id, so an execution
cannot signal, trace or read the memory, descriptors or /proc of another execution, nor of
the zygote, which is non-dumpable as well. The switch from uid 0 drops every capability.

Standard library only; Python 3.8+ on Linux. On Python < 3.9 or kernels without pidfds the
wait falls back to a SIGCHLD self-pipe, and without memfd_create to unlinked temp files.
"""

import errno
import gc
import io
import json
import os
import resource
import select
import signal
import sys
import time
import traceback

RUNTIME = "python3"
TIMEOUT_MSG = "Function execution timeout."
RESOURCE_MSG = "Function execution failed because of too much resource consumption"
NO_RESULT_MSG = "The function's process exited without returning a result."
MAX_FRAME = 64 * 1024 * 1024
DEFAULT_LOG_LIMIT = 1024 * 1024
# Bytes read from the protocol input per wake-up: a pipe rarely holds more, and staying
# below malloc's mmap threshold keeps every read a cheap heap allocation.
READ_CHUNK = 64 * 1024
# A reused process's result file is emptied after a result larger than this (smaller ones
# are overwritten by the next, which saves a system call per execution).
BIG_RESULT = 64 * 1024
# Frames above this size that fill the input buffer are handed over without a copy.
BIG_FRAME = 1 << 20
# Exec frames up to this size reach a spare through its request pipe in one write; larger
# ones go through its result file. PIPE_BUF: atomic, and it fits even a one-page pipe.
SMALL_REQUEST = 4096
# Idle spare children a bound worker keeps ($QINLING_SPARES, 0 to 4). Each is a process of
# the worker's pids limit and costs ~2 MiB of its memory (page tables, and the pages it and
# the zygote write after the fork), while the worker is idle (see add_spares).
DEFAULT_SPARES = 1
MAX_SPARES = 4
# A spare that dies while idle is replaced; after this many such deaths in a row the
# worker stops keeping spares (something kills them, e.g. the memory limit).
MAX_SPARE_DEATHS = 3
# Idle processes a worker in `reuse` mode keeps (each one an execution ran in, holding its
# module state); one more finished while this many wait is dropped, the longest idle first.
MAX_IDLE_REUSERS = 4
# Once a `reuse`-mode worker has run nothing for this long, it keeps only the most recently
# used idle process (or its number of spares, if more): a burst's extra processes each hold
# ~1-2 MiB of pages of their own that an idle worker need not pay for (one is forked again
# in ~1 ms when a burst returns).
IDLE_TRIM_SECONDS = 3.0
# The execution modes a bind may name (docs/runtimes.md): a fresh process per execution,
# or one long-lived process per concurrent execution that runs one after another.
MODES = ("fork", "reuse")
# What a spare rehearses with (see rehearse) until the worker has seen a real exec message.
SAMPLE_REQUEST = json.dumps({
    "op": "exec", "id": "00000000-0000-0000-0000-000000000000", "kwargs": {"name": "x"}, "args": [],
    "timeout_ms": 5000, "context": {"execution_id": "00000000-0000-0000-0000-000000000000",
                                    "function_id": "00000000-0000-0000-0000-000000000000",
                                    "function_version": 0, "project_id": "x"},
    "rlimits": {"nofile": 1024, "nproc": 128, "fsize": 524288000}, "log_limit": 1048576}).encode()

# Rounds of kill_leftovers: each one must find a process the previous ones did not kill,
# so the pids limit bounds them long before this does.
MAX_LEFTOVER_PASSES = 1000
# How long a fork refused by the process limit waits for killed leftovers to be reaped.
SETTLE_SECONDS = 1.0

# OSError numbers that mean "the sandbox ran out of something" rather than "the function
# has a bug the user can fix": fork/thread creation under RLIMIT_NPROC or the pids cgroup
# (EAGAIN) and allocation failures (ENOMEM). EMFILE is deliberately absent: "[Errno 24]
# Too many open files" tells the user exactly what to fix, so it stays an exception.
RESOURCE_ERRNOS = (errno.EAGAIN, errno.ENOMEM)

# The rlimits an exec message may set, by their protocol names.
RLIMITS = (
    ("nofile", resource.RLIMIT_NOFILE),
    ("nproc", resource.RLIMIT_NPROC),
    ("fsize", resource.RLIMIT_FSIZE),
)

# What each execution child resets its signal dispositions to: the state a freshly started
# interpreter has. That undoes the zygote's SIGCHLD handler (fallback mode) and anything
# the function's module installed at import time, while keeping CPython's own choices:
# SIGPIPE and SIGXFSZ ignored, so a closed pipe or the RLIMIT_FSIZE limit surface as
# BrokenPipeError / "[Errno 27] File too large" the user can read instead of a silent kill.
CHILD_SIGNALS = tuple(
    (getattr(signal, name), handler)
    for name, handler in (
        ("SIGCHLD", signal.SIG_DFL),
        ("SIGINT", signal.default_int_handler),
        ("SIGTERM", signal.SIG_DFL),
        ("SIGHUP", signal.SIG_DFL),
        ("SIGQUIT", signal.SIG_DFL),
        ("SIGALRM", signal.SIG_DFL),
        ("SIGUSR1", signal.SIG_DFL),
        ("SIGUSR2", signal.SIG_DFL),
        ("SIGPIPE", signal.SIG_IGN),
        ("SIGXFSZ", signal.SIG_IGN),
    )
    if hasattr(signal, name)
)

# inspect.CO_VARKEYWORDS: the code object's function has a **kwargs parameter.
CO_VARKEYWORDS = 0x08

# Python's original sys.stdout and sys.stderr, replaced at start. Kept referenced for the
# process's life: collecting them would close fds 1 and 2.
ORIGINAL_STREAMS = ()

# Linux prctl(2) options.
PR_SET_DUMPABLE = 4
PR_SET_CHILD_SUBREAPER = 36

# libc's prctl through ctypes, once the zygote has loaded it (None without ctypes).
PRCTL = None

# The ids (first, count) execution children run under, from $QINLING_EXEC_IDS; None: they
# share the zygote's.
EXEC_IDS = None

# This file's name as code objects see it, to drop the shim's own frames from the
# tracebacks shown to users.
SHIM_FILE = (lambda: None).__code__.co_filename


class ProtocolError(Exception):
    """The engine sent something the protocol does not allow; the shim must exit."""


class PackageError(Exception):
    """The function's package cannot be extracted safely."""


# ---------------------------------------------------------------------------------------
# Small helpers shared by the zygote and the execution children.


def new_memfd(name):
    """An anonymous, close-on-exec, read-write file for logs and results.

    A file rather than a pipe: a child can write any amount of output or an arbitrarily big
    result without blocking on a reader, and the zygote reads it after the child is gone.
    """
    if hasattr(os, "memfd_create"):
        return os.memfd_create(name, os.MFD_CLOEXEC)
    tmp = os.environ.get("TMPDIR") or "/tmp"
    if hasattr(os, "O_TMPFILE"):
        try:
            return os.open(tmp, os.O_TMPFILE | os.O_RDWR | os.O_CLOEXEC, 0o600)
        except OSError:
            pass  # a filesystem without O_TMPFILE support
    import tempfile

    fd, path = tempfile.mkstemp(prefix="qinling-%s-" % name, dir=tmp)
    os.unlink(path)
    return fd


def read_text(fd, limit):
    """The content of a log file from its start, cut after `limit` bytes, as text."""
    size = os.fstat(fd).st_size
    data = os.pread(fd, min(size, limit), 0) if size else b""
    text = data.decode("utf-8", "replace")
    if size > limit:
        text += "\n[log truncated: %d bytes more]\n" % (size - limit)
    return text


def write_all_at(fd, data):
    """pwrite of all of `data` at the start of the file `fd`."""
    view = memoryview(data)
    offset = 0
    while offset < len(view):
        offset += os.pwrite(fd, view[offset:], offset)


def new_pipe(flags):
    """A close-on-exec pipe with `flags` (O_NONBLOCK or 0) on both ends, in one call where
    the platform has pipe2."""
    if hasattr(os, "pipe2"):
        return os.pipe2(os.O_CLOEXEC | flags)
    r, w = os.pipe()
    if flags:
        os.set_blocking(r, False)
        os.set_blocking(w, False)
    return r, w


def spares_wanted():
    """How many idle spare children to keep: $QINLING_SPARES, default DEFAULT_SPARES."""
    try:
        return max(0, min(MAX_SPARES, int(os.environ.get("QINLING_SPARES", DEFAULT_SPARES))))
    except ValueError:
        return DEFAULT_SPARES


def write_all(fd, data):
    view = memoryview(data)
    while view:
        view = view[os.write(fd, view):]


def user_traceback(exc):
    """The formatted traceback of `exc`, without the shim's own frames on top."""
    tb = exc.__traceback__
    while tb is not None and tb.tb_frame.f_code.co_filename == SHIM_FILE:
        tb = tb.tb_next
    return "".join(traceback.format_exception(type(exc), exc, tb))


def exception_text(exc):
    try:
        return str(exc)
    except Exception:  # a user-defined __str__ that raises
        return type(exc).__name__


def is_resource_exhaustion(exc):
    """Whether an exception means the execution hit a sandbox limit (reason `resource`)."""
    if isinstance(exc, MemoryError):
        return True
    if isinstance(exc, OSError):
        return exc.errno in RESOURCE_ERRNOS
    # threading raises this when clone() fails, e.g. under RLIMIT_NPROC (threads count).
    return isinstance(exc, RuntimeError) and exception_text(exc).startswith("can't start new thread")


def unbuffered_stream(fd, errors):
    """A text stream whose every write reaches `fd` at once (what `python -u` builds).

    Nothing sits in a user-space buffer, so output written before a SIGKILL is kept. The
    stream never closes `fd`: the same objects stay valid whatever file fds 1 and 2 point at.
    """
    raw = io.FileIO(fd, "w", closefd=False)
    return io.TextIOWrapper(raw, encoding="utf-8", errors=errors, write_through=True)


# ---------------------------------------------------------------------------------------
# The execution child.


class Bound:
    """The imported function, and what every execution child needs to know about it,
    decided once at bind so that children do as little as possible: each object a child
    touches costs it a copy-on-write page fault, the bulk of an execution's overhead."""

    __slots__ = ("func", "wants_context", "signals", "streams", "fallback")

    def __init__(self, func, streams, fallback):
        self.func = func
        self.wants_context = accepts_context(func)
        # Only the dispositions that differ from a fresh interpreter's need resetting:
        # usually none, or SIGCHLD in fallback mode, or what the module's import installed.
        self.signals = tuple((signum, handler) for signum, handler in CHILD_SIGNALS
                             if signal.getsignal(signum) != handler)
        self.streams = streams
        self.fallback = fallback


def accepts_context(func):
    """Whether `func` can take a `context=` keyword: a `context` parameter or `**kwargs`.

    A plain function's code object says so directly (what inspect.signature reads for it);
    anything else (a decorated function with __wrapped__, a method, a partial, a class,
    a builtin) goes through inspect.signature. Not importing inspect for the common case
    keeps ~0.75 MiB off the zygote, which every fork copies the page tables of."""
    if type(func) is type(accepts_context) and not hasattr(func, "__wrapped__") \
            and not hasattr(func, "__signature__"):
        code = func.__code__
        if code.co_flags & CO_VARKEYWORDS:
            return True
        named = code.co_varnames[getattr(code, "co_posonlyargcount", 0):code.co_argcount + code.co_kwonlyargcount]
        return "context" in named
    import inspect

    try:
        params = inspect.signature(func).parameters.values()
    except (TypeError, ValueError):
        return True  # a builtin or odd callable: pass it, as upstream always did
    for p in params:
        if p.kind == p.VAR_KEYWORD:
            return True
        if p.name == "context" and p.kind in (p.POSITIONAL_OR_KEYWORD, p.KEYWORD_ONLY):
            return True
    return False


def rlimit_key(limits):
    """The key rlimit plans are cached under (the engine sends the same rlimits every time);
    None if `limits` holds an unhashable value."""
    try:
        key = tuple(limits.items())
        hash(key)
        return key
    except TypeError:
        return None


def rlimit_plan(limits):
    """The (resource, soft, hard) limits to set for an exec's `rlimits`.

    Limits are only ever lowered: each of the soft and hard limit becomes the requested value
    or stays where it is if that is lower, so the sandbox's own limits always win and setting
    them cannot fail for want of privilege. The child inherits the zygote's limits, so they
    are read here, once per distinct `rlimits`.
    """
    plan = []
    for name, which in RLIMITS:
        value = limits.get(name)
        if not isinstance(value, int) or isinstance(value, bool) or value < 0:
            continue
        soft, hard = resource.getrlimit(which)
        # RLIM_INFINITY is -1 here, so it needs its own case rather than min().
        soft = value if soft == resource.RLIM_INFINITY else min(soft, value)
        hard = value if hard == resource.RLIM_INFINITY else min(hard, value)
        plan.append((which, soft, hard))
    return tuple(plan)


def run_child(bound, ex, msg, rlimits, plans, inherited_fds, sample):
    """Body of a forked execution child; never returns.

    With `msg`, the child runs that execution at once (the fork path). Without it, the child
    is a *spare*: it gets ready for an execution and waits on `ex.req_r` until the zygote
    hands it one, so that the fork and the set-up are off the execution's latency.

    It exits 0 once it has written a result record (or, as a spare, when the zygote drops
    it). Anything else (a crash of this code, a kill) leaves no record, and the zygote
    classifies the death itself.
    """
    status = 70  # EX_SOFTWARE: the shim failed before it could write a result
    try:
        prepare_child(bound, ex.log_fd, inherited_fds, ex.uid)
        if msg is None:
            rehearse(bound, sample)
        # What the set-up cost is not the execution's: its cpu time is counted from here.
        base = resource.getrusage(resource.RUSAGE_SELF)
        if msg is None:
            msg = receive_request(ex.req_r, ex.result_fd)
            if msg is None:
                status = 0  # dropped: the zygote closed the request pipe or is gone
                return
            rlimits = plans.get(rlimit_key(msg.get("rlimits") or {}))
            if rlimits is None:
                rlimits = rlimit_plan(msg.get("rlimits") or {})
        if execute(bound, msg, rlimits, ex.log_fd, ex.result_fd, ex.done_w, base):
            status = 0
    finally:
        os._exit(status)


def run_reuser(bound, ex, msg, plans, inherited_fds):
    """Body of a `reuse`-mode child; never returns.

    The child is made once like a spare (its session, id, descriptors, signals, log), then
    runs the executions the zygote hands it one after another through its request pipe —
    `msg` first, when it was forked for one — in this one process, so what the function
    keeps in its module (connections, caches, loaded models) is there for the next one.
    Before each execution fds 1 and 2 and sys.stdout/sys.stderr are pointed at the log
    again and the peak-RSS mark is reset, so each result reports its own cpu time and peak
    memory. It exits when the zygote closes the pipe, and is killed at a timeout (an
    interrupted process cannot be trusted with the next execution).

    Every system call here is on each execution's path, so there are few: the zygote
    writes the log's markers itself, the result is written at the start of the result file
    and its size sent with the done line (no truncation, no seek), and the line also says
    whether the execution left child processes (so the zygote looks for them only then)."""
    status = 70
    try:
        prepare_child(bound, ex.log_fd, inherited_fds, ex.uid)
        # Orphans of what an execution starts (a daemon that double-forked) come back to
        # this process rather than to the zygote: the zygote finds them all among this
        # process's descendants, and the kernel reaps them while SIGCHLD is ignored.
        set_child_subreaper()
        me = os.getpid()
        applied = None
        sigchld = signal.getsignal(signal.SIGCHLD)
        clear_refs = open_clear_refs()
        getrusage = resource.getrusage
        SELF, CHILDREN = resource.RUSAGE_SELF, resource.RUSAGE_CHILDREN
        req_r, result_fd, done_w, log_fd = ex.req_r, ex.result_fd, ex.done_w, ex.log_fd
        while True:
            if msg is None:
                msg = receive_request(req_r, result_fd, keep_open=True)
                if msg is None:
                    status = 0
                    return
            key = rlimit_key(msg.get("rlimits") or {})
            if key is None or key != applied:
                rlimits = plans.get(key) if key is not None else None
                if rlimits is None:
                    rlimits = rlimit_plan(msg.get("rlimits") or {})
                for which, soft, hard in rlimits:
                    try:
                        resource.setrlimit(which, (soft, hard))
                    except (ValueError, OSError):
                        pass
                applied = key
            reap_zombies()
            signal.signal(signal.SIGCHLD, sigchld)
            restore_streams(bound, log_fd)
            if clear_refs >= 0:
                try:
                    os.write(clear_refs, b"5")
                except OSError:
                    clear_refs = -1
            base = getrusage(SELF)
            kids_base = getrusage(CHILDREN)
            record = call_function(bound, msg, log_fd)
            if os.getpid() != me:
                status = 0  # a process the function forked returned from it: it just goes
                return
            flush_installed_streams(bound)
            size = write_result_at(result_fd, record)
            mine = getrusage(SELF)
            kids = getrusage(CHILDREN)
            cpu = (mine.ru_utime + mine.ru_stime - base.ru_utime - base.ru_stime
                   + kids.ru_utime + kids.ru_stime - kids_base.ru_utime - kids_base.ru_stime)
            rss = mine.ru_maxrss
            if kids.ru_maxrss > kids_base.ru_maxrss:
                rss = max(rss, kids.ru_maxrss)  # a process it started peaked higher
            # The zygote kills what the execution started when it reads the done line;
            # ignoring SIGCHLD until the next execution lets the kernel reap those that are
            # this process's children (a zombie would hold its pid).
            signal.signal(signal.SIGCHLD, signal.SIG_IGN)
            left = reap_zombies()
            try:
                os.write(done_w, b"%d %d %d %d" % (max(0, int(round(cpu * 1000))), rss, size, left))
            except OSError:
                status = 0  # the function closed it: it cannot run another execution
                return
            msg = None
    finally:
        os._exit(status)


def flush_installed_streams(bound):
    """Flushes sys.stdout and sys.stderr where the function replaced the shim's unbuffered
    streams with buffered ones of its own, so what it printed reaches the log."""
    out, err = bound.streams
    for stream in (sys.stdout, sys.stderr):
        if stream is not out and stream is not err:
            try:
                stream.flush()
            except Exception:
                pass


def write_result_at(fd, record):
    """Writes a reused process's result record at the start of its result file (whatever
    an earlier, longer one left after it is not read); returns its size."""
    try:
        write_all_at(fd, record)
        return len(record)
    except OSError:
        # RLIMIT_FSIZE (EFBIG) or memory: a record that fits.
        record = json.dumps({"success": False, "output": RESOURCE_MSG, "reason": "resource"}).encode()
        write_all_at(fd, record)
        return len(record)


def open_clear_refs():
    """/proc/self/clear_refs open for writing (-1 where it cannot be): writing "5" resets
    the peak-RSS mark getrusage reports (Linux 4.0+), so a reused process's ru_maxrss is
    the peak of the execution that follows."""
    try:
        return os.open("/proc/self/clear_refs", os.O_WRONLY | os.O_CLOEXEC)
    except OSError:
        return -1


def reap_zombies():
    """Reaps this process's exited children (the processes an execution started that the
    zygote killed when it ended: no one else will); 1 if live children remain, else 0."""
    try:
        while os.waitpid(-1, os.WNOHANG)[0]:
            pass
        return 1
    except ChildProcessError:
        return 0


def restore_streams(bound, log_fd):
    """Points fds 1 and 2 and sys.stdout/sys.stderr at the log again, whatever the previous
    execution did with them."""
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    out, err = bound.streams
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err


def prefer_for_oom_kill():
    """Makes this child (and every process it starts) the OOM killer's first choice in the
    worker: a function over the memory limit then loses its own execution, and the zygote
    (with the other executions running in the worker) carries on. Raising one's own
    oom_score_adj needs no privilege."""
    try:
        fd = os.open("/proc/self/oom_score_adj", os.O_WRONLY | os.O_CLOEXEC)
        try:
            os.write(fd, b"1000")
        finally:
            os.close(fd)
    except OSError:
        pass  # no /proc: the worker is then replaced when the zygote is the one killed


def become_execution_id(uid):
    """Switches this child to the execution id `uid` (uid and gid, no supplementary
    groups): from uid 0 that drops every capability, and the child can no longer signal,
    trace or read any process of another id. Dumpable again afterwards (the switch cleared
    it), so that its own /proc files are its own. Any failure ends the child: the function
    never runs under the zygote's id."""
    try:
        os.setgroups([])
        os.setresgid(uid, uid, uid)
        os.setresuid(uid, uid, uid)
        if os.getuid() != uid or os.geteuid() != uid:
            raise OSError("uid switch did not take")
    except OSError:
        os._exit(71)  # EX_OSERR
    if PRCTL is not None:
        PRCTL(PR_SET_DUMPABLE, 1, 0, 0, 0)
    # Files an execution creates in /tmp are its own: a concurrent one cannot read them.
    os.umask(0o077)


def prepare_child(bound, log_fd, inherited_fds, uid=None):
    """Everything a child does before it knows its execution: its own process group, its
    own id (when the sandbox gives one), none of the zygote's descriptors, a fresh
    interpreter's signal dispositions, and fds 1 and 2 (and sys.stdout and sys.stderr)
    writing into its own log file."""
    # A session of its own, not only a process group: the kernel lets any process of a
    # session send SIGCONT to any other, whatever its id.
    try:
        os.setsid()
    except OSError:
        try:
            os.setpgid(0, 0)
        except OSError:
            pass
    prefer_for_oom_kill()
    if uid is not None:
        become_execution_id(uid)
    if bound.fallback:
        signal.set_wakeup_fd(-1)  # the self-pipe is closed just below
    # Descriptors the child must not keep: the protocol channel (a function writing there
    # would corrupt it), the selector, other executions' and spares' pidfds, pipes and files.
    for fd in inherited_fds:
        try:
            os.close(fd)
        except OSError:
            pass
    for signum, handler in bound.signals:
        signal.signal(signum, handler)
    # Fds 1 and 2 (and so every subprocess the function starts) write into the log.
    os.dup2(log_fd, 1)
    os.dup2(log_fd, 2)
    out, err = bound.streams
    sys.stdout = sys.__stdout__ = out
    sys.stderr = sys.__stderr__ = err


def rehearse(bound, sample):
    """A spare's dry run of the shim's own part of an execution, on `sample` (the previous
    exec frame): decoding the request, building the call, encoding a result, the markers.

    Right after the fork every page is shared with the zygote, and the first write to one
    (an allocation, a reference count) copies it: ~100 such faults, a few microseconds each,
    would otherwise fall on the execution's path. Nothing the function could observe
    happens here: the function is not called and nothing is written anywhere."""
    try:
        msg = json.loads(sample)
        kwargs = msg.get("kwargs") or {}
        context = msg.get("context")
        context = dict(context) if isinstance(context, dict) else {}
        context["os_session"] = None
        record = json.dumps({"success": True, "output": kwargs, "reason": "ok"}, allow_nan=False).encode()
        exec_id = msg.get("id", "").encode("utf-8", "backslashreplace")
        del record, context, kwargs
        marker = b"Start execution: " + exec_id + b"\n"
        for stream in bound.streams:
            stream.write("")
        usage = resource.getrusage(resource.RUSAGE_SELF)
        marker = b"%d %d" % (max(0, int(round(usage.ru_utime * 1000))), usage.ru_maxrss)
        del marker, usage, msg
    except Exception:
        pass


def receive_request(req_fd, result_fd, keep_open=False):
    """A spare's wait for its execution: the exec message, or None if the spare is dropped.

    The zygote writes the exec frame into the request pipe in one atomic write if it fits
    (PIPE_BUF), else into the result file, announced by a lone `F` (see Zygote.hand_over).
    """
    data = os.read(req_fd, SMALL_REQUEST)
    if not data:
        return None
    if data[:1] == b"F":
        # "F<size>" from a worker in reuse mode, whose result file may hold more after it.
        size = int(data[1:]) if len(data) > 1 else os.fstat(result_fd).st_size
        data = os.pread(result_fd, size, 0)
        if not keep_open:
            os.ftruncate(result_fd, 0)
    if not keep_open:
        os.close(req_fd)
    return json.loads(data)


def execute(bound, msg, rlimits, log_fd, result_fd, done_fd, base):
    """Runs one execution in its child; True if the result record was written."""
    # Lowering the hard limit too means the function cannot raise the soft one back.
    for which, soft, hard in rlimits:
        try:
            resource.setrlimit(which, (soft, hard))
        except (ValueError, OSError):
            pass
    exec_id = msg["id"].encode("utf-8", "backslashreplace")
    me = os.getpid()
    # The shim's own lines go to log_fd, a private descriptor of the same file, so they
    # land in the log even if the function closes or redirects fds 1 and 2.
    os.write(log_fd, b"Start execution: " + exec_id + b"\n")
    record = call_function(bound, msg, log_fd)
    if os.getpid() != me:
        # A process the function forked returned from it: only the execution's own process
        # reports; this one just disappears.
        return True
    flush_installed_streams(bound)
    write_all(log_fd, b"Finished execution: " + exec_id + b"\n")
    write_result(result_fd, record)
    # Tell the zygote the result is complete, with what wait4 would say: the zygote then
    # answers at once instead of waiting for this process's exit (tearing down an address
    # space the size of the interpreter's takes a few hundred microseconds).
    try:
        me = resource.getrusage(resource.RUSAGE_SELF)
        kids = resource.getrusage(resource.RUSAGE_CHILDREN)
        cpu = (me.ru_utime + me.ru_stime - base.ru_utime - base.ru_stime) + kids.ru_utime + kids.ru_stime
        os.write(done_fd, b"%d %d" % (max(0, int(round(cpu * 1000))), max(me.ru_maxrss, kids.ru_maxrss)))
    except OSError:
        pass  # the function closed it: the zygote learns of the end from the exit
    return True


def call_function(bound, msg, log_fd):
    """Calls the function; returns the result record as JSON bytes."""
    kwargs = msg.get("kwargs") or {}
    args = msg.get("args") or ()
    if bound.wants_context:
        context = msg.get("context")
        context = dict(context) if isinstance(context, dict) else {}
        context["os_session"] = None
        kwargs["context"] = context
    try:
        value = bound.func(*args, **kwargs)
    except BaseException as exc:  # noqa: B902 - user code may raise anything, even SystemExit
        return failure_record(exc, log_fd)
    try:
        # allow_nan=False: NaN is not JSON, and the engine's parser would reject the frame.
        return json.dumps({"success": True, "output": value, "reason": "ok"}, allow_nan=False).encode()
    except MemoryError:
        return failure_record(MemoryError(), log_fd)
    except Exception as exc:  # TypeError, ValueError, RecursionError, a raising default...
        text = "The function's return value is not JSON serializable: %s" % exception_text(exc)
        return json.dumps({"success": False, "output": text, "reason": "unserializable"}).encode()


def failure_record(exc, log_fd):
    """Prints the traceback into the log; returns the failure's result record."""
    try:
        text = user_traceback(exc)
    except BaseException:  # noqa: B902 - e.g. MemoryError while formatting
        text = "%s\n" % type(exc).__name__
    try:
        write_all(log_fd, text.encode("utf-8", "backslashreplace"))
    except OSError:
        pass  # RLIMIT_FSIZE reached: the result still goes out
    if is_resource_exhaustion(exc):
        return json.dumps({"success": False, "output": RESOURCE_MSG, "reason": "resource"}).encode()
    return json.dumps({"success": False, "output": exception_text(exc), "reason": "exception"}).encode()


def write_result(fd, record):
    try:
        write_all(fd, record)
    except OSError:
        # RLIMIT_FSIZE (EFBIG) or memory: start over with a record that fits.
        os.ftruncate(fd, 0)
        write_all(fd, json.dumps({"success": False, "output": RESOURCE_MSG, "reason": "resource"}).encode())


# ---------------------------------------------------------------------------------------
# Package extraction and import (bind).


class ViewFile(io.RawIOBase):
    """A read-only, seekable file over a bytes-like object, without copying it."""

    def __init__(self, data):
        super().__init__()
        self.view = memoryview(data)
        self.pos = 0

    def readable(self):
        return True

    def seekable(self):
        return True

    def tell(self):
        return self.pos

    def seek(self, offset, whence=io.SEEK_SET):
        base = {io.SEEK_SET: 0, io.SEEK_CUR: self.pos, io.SEEK_END: len(self.view)}[whence]
        self.pos = max(0, base + offset)
        return self.pos

    def readinto(self, b):
        n = max(0, min(len(b), len(self.view) - self.pos))
        b[:n] = self.view[self.pos:self.pos + n]
        self.pos += n
        return n

    def close(self):
        if not self.closed:
            self.view.release()
        super().close()


def extract_package(package, dest):
    """Unpacks the zip `package` (bytes) into the directory `dest`.

    Members with absolute paths or `..` components are refused rather than skipped: such a
    package was built wrongly or maliciously, and the user should hear about it. Symlink
    members are skipped, never created, so nothing can point outside `dest`.
    """
    import stat
    import zipfile

    # Read in place: io.BytesIO would copy a bytearray, and the package may be as large as
    # half the function's memory.
    with ViewFile(package) as view, zipfile.ZipFile(view) as zf:
        for info in zf.infolist():
            name = info.filename
            parts = name.replace("\\", "/").split("/")
            if name.startswith(("/", "\\")) or ".." in parts or (parts and parts[0].endswith(":")):
                raise PackageError("package member %r would be extracted outside the package directory" % name)
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


def module_dirs(module):
    """Where a module's code lives: its file, or a namespace package's directories."""
    found = []
    path = getattr(module, "__file__", None)
    if isinstance(path, str):
        found.append(path)
    elif getattr(module, "__path__", None) is not None:
        found.extend(p for p in module.__path__ if isinstance(p, str))
    return found


def check_in_package(module_name, package_dir):
    """Refuses an entry whose module (or any package on the way to it) is not the package's
    own: a module of that name that the interpreter had loaded already (`os`, `json`) or
    found elsewhere on sys.path (the standard library, site-packages). The engine refuses
    such entries at create; this is the defence in depth."""
    root = os.path.realpath(package_dir) + os.sep
    parts = module_name.split(".")
    for i in range(1, len(parts) + 1):
        name = ".".join(parts[:i])
        module = sys.modules.get(name)
        places = module_dirs(module) if module is not None else []
        if not places or not all(os.path.realpath(p).startswith(root) for p in places):
            raise ImportError("module '%s' is not in the function's package: the entry must name a module "
                              "inside the package (the runtime has its own module of that name)" % name)


def import_entry(entry, package_dir=None):
    """Imports `module.func` (split on the last dot; a bare name means its `main`); with
    `package_dir`, only a module inside it."""
    import importlib

    module_name, _, func_name = entry.rpartition(".")
    if not module_name:
        module_name, func_name = entry, "main"
    importlib.invalidate_caches()
    # __import__ rather than importlib.import_module: the C import drops the import
    # machinery's frames from tracebacks, so the user sees only their own code.
    __import__(module_name)
    if package_dir is not None:
        check_in_package(module_name, package_dir)
    module = sys.modules[module_name]
    try:
        func = getattr(module, func_name)
    except AttributeError:
        raise AttributeError("module '%s' has no attribute '%s'" % (module_name, func_name)) from None
    if not callable(func):
        raise TypeError("'%s.%s' is not callable" % (module_name, func_name))
    return func


# ---------------------------------------------------------------------------------------
# The zygote.


INPUT = "input"  # the Poller data of the protocol input


class Poller:
    """The loop's epoll: descriptors and what each one's readiness means (its `data`).

    What selectors.EpollSelector does, without the per-call cost of its general API (a
    named tuple per event, a key object per descriptor): the loop registers and removes a
    few descriptors per execution."""

    __slots__ = ("ep", "data")

    def __init__(self):
        self.ep = select.epoll()
        self.data = {}

    def register(self, fd, data):
        self.ep.register(fd, select.EPOLLIN)
        self.data[fd] = data

    def modify(self, fd, data):
        self.data[fd] = data

    def unregister(self, fd):
        self.ep.unregister(fd)
        del self.data[fd]

    def fileno(self):
        return self.ep.fileno()


class Execution:
    """One execution child, as the zygote tracks it: a running execution, or (`id` None) an
    idle spare waiting for one.

    `req_r`/`req_w`: a spare's request pipe (the zygote writes the exec message; -1 once
    used or for a child forked for its execution). `done_r`/`done_w`: the pipe on which the
    child announces that its result is complete (the zygote keeps `done_r`, the child
    `done_w`)."""

    __slots__ = ("id", "pid", "pidfd", "log_fd", "result_fd", "req_r", "req_w", "done_r", "done_w",
                 "log_limit", "started", "deadline", "timed_out", "uid", "log_r", "log_buf", "log_dropped", "cpu_base")


class Zygote:
    """The worker's main process: protocol, bind, and the event loop that forks, watches,
    times out and reaps executions. Single-threaded; never runs the function itself."""

    def __init__(self, proto_in, proto_out, devnull, streams):
        self.proto_in = proto_in
        self.proto_out = proto_out
        self.devnull = devnull
        self.streams = streams
        self.buf = bytearray()
        self.eof = False
        self.bound = None
        self.reuse = False  # the bind's execution mode is `reuse` (see run_reuser)
        self.bind_attempted = False
        self.pending_bind = None  # the bind message while its package frame is awaited
        self.package_dir = None
        self.running = {}  # pid -> Execution
        self.spares = []  # idle spare children (Executions without an id), newest last
        self.max_spares = spares_wanted()
        self.spare_deaths = 0  # spares that died idle since one last ran an execution
        self.spare_wanted = False  # whether to fork missing spares once no execution runs
        self.last_end = 0.0  # when the last reused execution ended (see trim_idle)
        self.sample = SAMPLE_REQUEST
        self.dying = {}  # pid -> pidfd or None: killed leftovers not yet reaped
        self.retired = set()  # pids in `dying` that are executions answered before their exit
        self.rlimit_plans = {}  # an exec's rlimits items -> rlimit_plan
        self.ids_in_use = {}  # pid -> execution id, for every child not yet reaped
        self.cooling = set()  # ids of reaped children, while killed leftovers are dying
        self.sel = Poller()
        self.sel.register(proto_in, INPUT)
        self.my_pid = os.getpid()
        self.children_path = "/proc/%d/task/%d/children" % (self.my_pid, self.my_pid)
        self.use_pidfd = self._pidfds_work()
        self.wakeup_r = self.wakeup_w = -1
        if self.use_pidfd:
            # Children must stay waitable: an inherited SIG_IGN would make the kernel reap
            # them behind our back.
            signal.signal(signal.SIGCHLD, signal.SIG_DFL)
        else:
            # No pidfds: every SIGCHLD writes a byte into a self-pipe the loop watches, and
            # the loop then polls exactly the pids it knows with WNOHANG.
            self.wakeup_r, self.wakeup_w = os.pipe()
            os.set_blocking(self.wakeup_r, False)
            os.set_blocking(self.wakeup_w, False)
            signal.signal(signal.SIGCHLD, lambda signum, frame: None)
            signal.set_wakeup_fd(self.wakeup_w, warn_on_full_buffer=False)
            self.sel.register(self.wakeup_r, "wakeup")
        self.children_file_ok = os.path.exists(self.children_path)

    @staticmethod
    def _pidfds_work():
        if not hasattr(os, "pidfd_open"):
            return False
        try:
            os.close(os.pidfd_open(os.getpid()))
            return True
        except OSError:  # ENOSYS before Linux 5.3, EPERM under some seccomp filters
            return False

    # -- protocol ------------------------------------------------------------------------

    @staticmethod
    def encode(msg):
        # ensure_ascii (the default) keeps any lone surrogate a function produced encodable.
        return json.dumps(msg, separators=(",", ":")).encode()

    def send(self, msg, data=None):
        if data is None:
            data = self.encode(msg)
        write_all(self.proto_out, len(data).to_bytes(4, "big") + data)

    def frames(self):
        """Complete frames in the input buffer, consumed as they are yielded."""
        buf = self.buf
        pos = 0
        try:
            while len(buf) - pos >= 4:
                size = int.from_bytes(buf[pos:pos + 4], "big")
                if size > MAX_FRAME:
                    raise ProtocolError("frame of %d bytes is larger than %d" % (size, MAX_FRAME))
                end = pos + 4 + size
                if len(buf) < end:
                    break
                if pos == 0 and end == len(buf) and size > BIG_FRAME:
                    # A big frame (the package) that is the whole buffer: handed over as it
                    # is, without a copy (50 MiB twice would not fit a 128 MiB function).
                    del buf[:4]
                    self.buf = bytearray()
                    pos = -1
                    yield buf
                    return
                frame = buf[pos + 4:end]
                pos = end
                yield frame
        finally:
            if pos > 0:
                del buf[:pos]

    def handle_frame(self, frame):
        if self.pending_bind is not None:
            msg, self.pending_bind = self.pending_bind, None
            if len(frame) != msg.get("package_size"):
                raise ProtocolError("package frame has %d bytes, bind announced %r"
                                    % (len(frame), msg.get("package_size")))
            self.send(self.bind(msg, frame))
            return
        try:
            msg = json.loads(frame)
        except ValueError as exc:
            raise ProtocolError("malformed message: %s" % exc) from None
        if not isinstance(msg, dict):
            raise ProtocolError("malformed message: not a JSON object")
        op = msg.get("op")
        if op == "exec":
            self.start_execution(msg, frame)
        elif op == "ping":
            self.send({"op": "pong", "running": len(self.running)})
        elif op == "bind":
            if not isinstance(msg.get("entry"), str) or not isinstance(msg.get("package_size"), int):
                raise ProtocolError("malformed bind: needs a string entry and an integer package_size")
            self.pending_bind = msg
        else:
            raise ProtocolError("unknown op %r" % (op,))

    # -- bind ----------------------------------------------------------------------------

    def bind(self, msg, package):
        """Extracts the package and imports the entry; returns the `bound` reply."""
        if self.bind_attempted:
            return {"op": "bound", "ok": False, "error": "this worker has already been bound", "logs": ""}
        self.bind_attempted = True
        mode = msg.get("mode") or "fork"
        if mode not in MODES:
            return {"op": "bound", "ok": False, "logs": "",
                    "error": "unknown execution mode %r: this worker runs 'fork' or 'reuse'" % (mode,)}
        self.reuse = mode == "reuse"
        # Everything printed while the package loads, by Python or C code, goes into a file
        # that becomes the failure's `logs`.
        capture = new_memfd("bind-log")
        os.dup2(capture, 1)
        os.dup2(capture, 2)
        try:
            import tempfile

            base = os.environ.get("QINLING_PACKAGE_DIR") or tempfile.gettempdir()
            os.makedirs(base, exist_ok=True)
            self.package_dir = tempfile.mkdtemp(prefix="package-", dir=base)
            # Readable (not writable) by the executions' ids.
            os.chmod(self.package_dir, 0o755)
            extract_package(package, self.package_dir)
            if isinstance(package, bytearray):
                del package[:]  # its memory goes back before the function's import
            sys.path.insert(0, self.package_dir)
            # Functions that open their data files by relative path find them.
            os.chdir(self.package_dir)
            func = import_entry(msg["entry"], self.package_dir)
            self.bound = Bound(func, self.streams, not self.use_pidfd)
            reply = {"op": "bound", "ok": True}
        except BaseException as exc:  # noqa: B902 - a module may even call sys.exit() on import
            # The traceback goes after the (possibly cut) output, so it is never cut off.
            error = "%s: %s" % (type(exc).__name__, exception_text(exc))
            if isinstance(exc, OSError) and exc.errno in (errno.ENOSPC, errno.EFBIG):
                error = ("PackageError: the unpacked package does not fit in the worker's /tmp "
                         "(%s); make the package smaller" % exception_text(exc))
            elif isinstance(exc, MemoryError):
                error = ("PackageError: unpacking and loading the package ran out of memory; give "
                         "the function more memory or make the package smaller")
            logs = read_text(capture, DEFAULT_LOG_LIMIT) + user_traceback(exc)
            reply = {"op": "bound", "ok": False, "error": error, "logs": logs}
        finally:
            sys.stdout = sys.__stdout__ = self.streams[0]
            sys.stderr = sys.__stderr__ = self.streams[1]
            os.dup2(self.devnull, 1)
            os.dup2(self.devnull, 2)
            os.close(capture)
        if self.bound is not None:
            # Move everything imported so far out of the collector's reach: collections in
            # the children then never write to (and so never copy) the shared pages.
            gc.collect()
            if hasattr(gc, "freeze"):
                gc.freeze()
            self.spare_wanted = True  # the loop forks the first spare after this reply
        return reply

    # -- executions ----------------------------------------------------------------------

    def start_execution(self, msg, frame):
        exec_id = msg.get("id")
        timeout_ms = msg.get("timeout_ms")
        if not isinstance(exec_id, str) or not isinstance(timeout_ms, (int, float)) or timeout_ms <= 0:
            raise ProtocolError("malformed exec: needs a string id and a positive timeout_ms")
        if not isinstance(msg.get("kwargs") or {}, dict) or not isinstance(msg.get("args") or [], list):
            raise ProtocolError("malformed exec: kwargs must be an object or null, args a list")
        limits = msg.get("rlimits") or {}
        if not isinstance(limits, dict):
            raise ProtocolError("malformed exec: rlimits must be an object")
        if self.bound is None:
            self.send({"op": "result", "id": exec_id, "success": False, "output": "The worker has no function bound.",
                       "duration": 0.0, "logs": "", "cpu_ms": 0, "max_rss_kb": 0, "reason": "exception"})
            return
        log_limit = msg.get("log_limit")
        if not isinstance(log_limit, int) or log_limit < 0:
            log_limit = DEFAULT_LOG_LIMIT
        # The engine sends the same rlimits every time: the plan is worked out once (and
        # spares forked later inherit the cache).
        key = rlimit_key(limits)
        rlimits = self.rlimit_plans.get(key)
        if rlimits is None:
            rlimits = rlimit_plan(limits)
            if key is not None and len(self.rlimit_plans) < 16:
                self.rlimit_plans[key] = rlimits
        started = time.monotonic()
        # An idle spare takes it if there is one: no fork on the execution's path.
        if len(frame) <= SMALL_REQUEST:
            self.sample = frame  # what the next spare rehearses with: a typical message
        ex = self.hand_over(frame) if self.spares else None
        if ex is None:
            ex = self.spawn(msg, rlimits)
            if ex is None:
                # No child (EAGAIN/ENOMEM: the sandbox's process or memory limit, or out of
                # descriptors): the execution cannot run.
                self.send_failure(exec_id, time.monotonic() - started)
                return
        ex.id = exec_id
        ex.log_limit = log_limit
        if self.reuse:
            # A reused process writes no markers: they are the zygote's (what the process
            # printed while idle was dropped at the hand-over).
            self.add_log(ex, b"Start execution: " + exec_id.encode("utf-8", "backslashreplace") + b"\n")
        ex.started = started
        ex.deadline = started + timeout_ms / 1000.0
        self.running[ex.pid] = ex

    def hand_over(self, frame):
        """Gives the exec message `frame` to an idle spare; the spare's Execution, or None
        if no spare could take it (each one tried and found dead is dropped)."""
        while self.spares:
            ex = self.spares.pop()
            if self.reuse:
                # What a reused process printed while idle (a thread the function left
                # running) belongs to no execution; the loop has read it (or the little
                # it has not read yet is this execution's).
                ex.log_buf = bytearray()
                ex.log_dropped = 0
            try:
                if len(frame) <= SMALL_REQUEST:
                    # One write of at most PIPE_BUF bytes into an empty pipe: complete at once.
                    os.write(ex.req_w, frame)
                else:
                    write_all_at(ex.result_fd, frame)
                    os.write(ex.req_w, b"F%d" % len(frame) if self.reuse else b"F")
            except OSError:  # EPIPE: the spare died (its death may not have been seen yet)
                self.drop_spare(ex)
                continue
            if not self.reuse:
                os.close(ex.req_w)
                ex.req_w = -1
            self.spare_deaths = 0
            return ex
        return None

    def add_spares(self):
        """Forks spares up to the wanted number. Called at the end of a loop turn, and only
        when no execution runs: then the fork and the copy-on-write faults that follow it
        (in the zygote and the spare) delay no execution, and the spare is ready for the
        next one. While executions run, a new one is forked for instead: a spare living
        alongside running executions costs more cpu (every page the zygote writes while the
        spare shares it is copied) than it saves a busy worker's latency. A failed fork (the
        process or memory limit) is not retried until an execution ends."""
        self.spare_wanted = False
        while len(self.spares) < self.max_spares:
            ex = self.spawn()
            if ex is None:
                return
            ex.id = None
            self.spares.append(ex)
            self.rehearse()

    def rehearse(self):
        """The zygote's dry run, right after a fork, of its own part of the next execution:
        decoding and checking the exec message, encoding a result, reading a log.

        The fork shared every page with the new child again, so each page the zygote writes
        next (allocator pools, reference counts, the encoder's buffers) costs it a
        copy-on-write fault: ~100 of them, a few microseconds each, on the path of the next
        execution unless they are taken now, while the zygote would wait anyway."""
        try:
            msg = json.loads(self.sample)
            exec_id = msg.get("id")
            timeout_ms = msg.get("timeout_ms")
            isinstance(exec_id, str) and isinstance(timeout_ms, (int, float))
            isinstance(msg.get("kwargs") or {}, dict) and isinstance(msg.get("args") or [], list)
            self.rlimit_plans.get(rlimit_key(msg.get("rlimits") or {}))
            logs = "Start execution: %s\nFinished execution: %s\n" % (exec_id, exec_id)
            for ex in self.spares:
                logs += bytes(ex.log_buf).decode("utf-8", "replace")
                os.fstat(ex.result_fd)
            data = self.encode({"op": "result", "id": exec_id, "success": True, "output": msg.get("kwargs"),
                                "duration": time.monotonic() % 1, "logs": logs, "cpu_ms": 0, "max_rss_kb": 0,
                                "reason": "ok"})
            del data, logs, msg
        except Exception:
            pass

    def drop_spare(self, ex):
        """Kills a spare (if it is not dead already) and releases it."""
        if ex in self.spares:
            self.spares.remove(ex)
        try:
            os.kill(ex.pid, signal.SIGKILL)
        except OSError:
            pass
        self.retire(ex)

    def spare_died(self, ex):
        """An idle spare exited (killed from outside, or the memory limit): reap it, and
        replace it unless that keeps happening."""
        self.spares.remove(ex)
        self.retire(ex)
        self.spare_deaths += 1
        if self.spare_deaths >= MAX_SPARE_DEATHS:
            self.max_spares = 0
        self.spare_wanted = True

    def spawn(self, msg=None, rlimits=()):
        """Forks an execution child that runs `msg` at once, or (without `msg`) a spare that
        waits for its execution. The child's Execution, registered with the loop, or None if
        no child could be started."""
        ex = Execution()
        ex.req_r = ex.req_w = ex.done_r = ex.done_w = ex.log_fd = ex.result_fd = ex.log_r = -1
        ex.timed_out = False
        ex.log_limit = None
        ex.log_buf = bytearray()
        ex.log_dropped = 0
        ex.cpu_base = 0  # a reused process: the cpu time its earlier executions reported
        ex.uid = None
        if EXEC_IDS is not None:
            ex.uid = self.free_id()
            if ex.uid is None:
                return None  # every id is taken by a live child: as out of processes
        try:
            # The log is a pipe the zygote drains as it fills, keeping the first log_limit
            # bytes and counting the rest: a function printing hundreds of MiB costs the
            # worker no more memory than the cap (a file would grow in the worker's memory
            # until read). Blocking for the child, non-blocking for the zygote's reads.
            ex.log_r, ex.log_fd = new_pipe(0)
            os.set_blocking(ex.log_r, False)
            ex.result_fd = new_memfd("result")
            # Non-blocking: the child's one short write never waits, and a spurious wake-up
            # of the loop cannot block the zygote on a read.
            ex.done_r, ex.done_w = new_pipe(os.O_NONBLOCK)
            if msg is None or self.reuse:
                # Blocking: the spare waits in its read. The zygote's one write of at most
                # PIPE_BUF bytes into the empty pipe never waits either.
                ex.req_r, ex.req_w = new_pipe(0)
        except OSError:
            self.close_fds(ex)
            return None
        inherited = self.shim_fds()
        inherited += (ex.done_r, ex.log_r, ex.req_w) if ex.req_w >= 0 else (ex.done_r, ex.log_r)
        pid = self.fork(yield_to_child=msg is not None)
        if pid == 0:
            if self.reuse:
                run_reuser(self.bound, ex, msg, self.rlimit_plans, inherited)
            run_child(self.bound, ex, msg, rlimits, self.rlimit_plans, inherited, self.sample)
        for fd in (ex.done_w, ex.req_r, ex.log_fd):
            if fd >= 0:
                os.close(fd)
        ex.done_w = ex.req_r = ex.log_fd = -1
        if pid > 0:
            ex.pid = pid
            if ex.uid is not None:
                self.ids_in_use[pid] = ex.uid
            ex.pidfd = self.watch(pid, ex)
        if pid < 0 or ex.pidfd is False:
            self.close_fds(ex)
            return None
        self.sel.register(ex.done_r, ex)
        self.sel.register(ex.log_r, ex)
        return ex

    def drain_log(self, ex):
        """Reads what the child's log pipe holds: the first log_limit bytes are kept, the
        rest only counted. At the end of the pipe (every writer gone) it is closed."""
        limit = DEFAULT_LOG_LIMIT if ex.log_limit is None else ex.log_limit
        while ex.log_r >= 0:
            try:
                chunk = os.read(ex.log_r, READ_CHUNK)
            except BlockingIOError:
                return
            except OSError:
                chunk = b""
            if not chunk:
                self.close_log(ex)
                return
            room = limit - len(ex.log_buf)
            if room > 0:
                ex.log_buf += chunk[:room]
            ex.log_dropped += len(chunk) - max(0, min(room, len(chunk)))
            if len(chunk) < READ_CHUNK:
                return  # the pipe is empty now (more wakes the loop again)

    def close_log(self, ex):
        if ex.log_r >= 0:
            if ex.log_r in self.sel.data:
                self.sel.unregister(ex.log_r)
            os.close(ex.log_r)
            ex.log_r = -1

    def log_text(self, ex):
        """The execution's log as text, cut at its limit, with what was cut said."""
        self.drain_log(ex)
        limit = DEFAULT_LOG_LIMIT if ex.log_limit is None else ex.log_limit
        data = bytes(ex.log_buf[:limit])
        dropped = ex.log_dropped + max(0, len(ex.log_buf) - limit)
        text = data.decode("utf-8", "replace")
        if dropped:
            text += "\n[log truncated: %d bytes more]\n" % dropped
        return text

    def free_id(self):
        """The lowest execution id no unreaped child holds, or None. An id whose leftovers
        may still be dying is given out only when no other is free: until they are
        reaped they count against its process limit (RLIMIT_NPROC), and a fork bomb's
        hundred leftovers would make the next execution's first fork fail."""
        first, count = EXEC_IDS
        if not self.dying:
            self.cooling.clear()
        taken = set(self.ids_in_use.values())
        fallback = None
        for uid in range(first, first + count):
            if uid not in taken:
                if uid not in self.cooling:
                    return uid
                if fallback is None:
                    fallback = uid
        return fallback

    def reaped(self, pid):
        """A child of ours is gone for good: its id may be given out again. (What it left
        behind under that id has been killed by then: leftovers are killed before a new
        child is forked, and a process with SIGKILL pending runs no more code; while they
        are reaped the id cools.)"""
        uid = self.ids_in_use.pop(pid, None)
        # Any dying process, this one included: the child's own leftovers are looked for
        # only after it is reaped (reap_dying), so they are not in `dying` yet.
        if uid is not None and self.dying:
            self.cooling.add(uid)

    def close_fds(self, ex):
        self.close_log(ex)
        for fd in (ex.log_fd, ex.result_fd, ex.req_r, ex.req_w, ex.done_r, ex.done_w):
            if fd >= 0:
                os.close(fd)
        ex.log_fd = ex.result_fd = ex.req_r = ex.req_w = ex.done_r = ex.done_w = -1

    def retire(self, ex, answered=False):
        """Releases an execution child the zygote has no more use for but that may still be
        running (an execution answered before its exit, or a dropped spare): its files go,
        and it is reaped like a killed leftover."""
        if ex.done_r >= 0:
            self.sel.unregister(ex.done_r)
        self.close_fds(ex)
        if ex.pidfd is not None:
            self.sel.modify(ex.pidfd, ex.pid)
        self.dying[ex.pid] = ex.pidfd
        if answered:
            self.retired.add(ex.pid)
        if ex.pidfd is None:
            self.reap_dying(ex.pid)  # fallback mode: else its pidfd tells when it is gone

    def fork(self, yield_to_child=True):
        """os.fork(); -1 if the fork failed.

        A fork the process limit refuses (EAGAIN) while killed leftovers are still dying is
        tried once more after they are gone: a process counts against the limit until it
        is reaped, and the execution after one that filled the limit (a fork bomb, answered
        with its processes killed) must not fail for what that one left behind."""
        try:
            pid = os.fork()
        except OSError as e:
            if e.errno != errno.EAGAIN or not self.dying or not self.settle_dying():
                return -1
            try:
                pid = os.fork()
            except OSError:
                return -1
        if pid:
            # The child makes itself a session (and group) of its own; a timeout that comes
            # before it has (kill_group) still kills the child itself, which has started
            # nothing yet. (A setpgid from here would make the child a group leader, which
            # may not start a session.)
            if yield_to_child:
                # Let an execution's child run first: it usually starts on this CPU's run
                # queue, and the zygote's own bookkeeping can wait. Measured: ~0.2 ms less
                # per execution, and the zygote's later writes then find pages the child no
                # longer shares. (A spare is in no hurry.)
                os.sched_yield()
        return pid

    def watch(self, pid, data):
        """Registers a pidfd for a new child: the pidfd, None in fallback mode, or False if
        no pidfd could be opened (the child has then been killed and reaped)."""
        if not self.use_pidfd:
            return None
        try:
            pidfd = os.pidfd_open(pid)
        except OSError:
            self.kill_group(pid)
            os.waitpid(pid, 0)
            self.reaped(pid)
            return False
        self.sel.register(pidfd, data)
        return pidfd

    def shim_fds(self):
        """Descriptors of the zygote that a new child must close."""
        fds = [self.proto_in, self.proto_out, self.devnull]
        fds.append(self.sel.fileno())
        if self.wakeup_r >= 0:
            fds += (self.wakeup_r, self.wakeup_w)
        for group in (self.running.values(), self.spares):
            for ex in group:
                fds += (ex.result_fd, ex.done_r)
                if ex.log_r >= 0:
                    fds.append(ex.log_r)
                if ex.req_w >= 0:
                    fds.append(ex.req_w)
                if ex.pidfd is not None:
                    fds.append(ex.pidfd)
        fds.extend(fd for fd in self.dying.values() if fd is not None)
        return fds

    def send_failure(self, exec_id, duration):
        self.send({"op": "result", "id": exec_id, "success": False, "output": RESOURCE_MSG,
                   "duration": round(duration, 3),
                   "logs": "", "cpu_ms": 0, "max_rss_kb": 0, "reason": "resource"})

    @staticmethod
    def kill_group(pid):
        """SIGKILLs the execution's process group and the execution process itself (in case
        the function moved it to another group). Only called while `pid` is unreaped, so
        neither number can belong to anyone else yet."""
        try:
            os.killpg(pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass

    def on_done(self, ex):
        """The child announced its result complete: answer now, before the child's exit.

        Its process group (the child included, which is only exiting anyway) is killed as
        at any end of an execution; the child is then reaped in the background, and what it
        left behind is killed once it is gone (its orphans are then ours, see reap_dying)."""
        try:
            data = os.read(ex.done_r, 64)
        except BlockingIOError:
            return
        except OSError:
            data = b""
        try:
            if self.reuse:
                cpu_ms, max_rss_kb, size, left = map(int, data.split())
            else:
                cpu_ms, max_rss_kb = map(int, data.split())
        except ValueError:
            # Nothing (every writer is gone) or not what the child writes (the function
            # wrote there): the exit tells.
            self.sel.unregister(ex.done_r)
            os.close(ex.done_r)
            ex.done_r = -1
            return
        duration = time.monotonic() - ex.started
        if self.reuse:
            self.reused(ex, (cpu_ms, max_rss_kb), duration, size, left)
            return
        self.kill_group(ex.pid)
        del self.running[ex.pid]
        self.spare_wanted = True
        try:
            self.reply(ex, 0, (cpu_ms, max_rss_kb), duration)
        finally:
            self.retire(ex, answered=True)

    def add_log(self, ex, data):
        """Appends the shim's own bytes to an execution's log, within its limit."""
        limit = DEFAULT_LOG_LIMIT if ex.log_limit is None else ex.log_limit
        room = limit - len(ex.log_buf)
        if room > 0:
            ex.log_buf += data[:room]
        ex.log_dropped += len(data) - max(0, min(room, len(data)))

    def reused(self, ex, usage, duration, size, left):
        """A `reuse`-mode execution ended and its process lives on: answer, kill what the
        execution started (the process's descendants, when it says it has any, and daemons
        re-parented to us), and keep the process for the next execution — the most
        recently used goes first."""
        del self.running[ex.pid]
        try:
            self.drain_log(ex)
            self.add_log(ex, b"Finished execution: " + ex.id.encode("utf-8", "backslashreplace") + b"\n")
            self.reply(ex, 0, usage, duration, size)
        finally:
            if size > BIG_RESULT:
                try:
                    os.ftruncate(ex.result_fd, 0)  # its memory goes back
                except OSError:
                    pass
            ex.id = None
            ex.log_buf = bytearray()
            ex.log_dropped = 0
            ex.cpu_base += usage[0]
            # The process is a subreaper: whatever the execution started is among its
            # descendants (and reaped by it), never re-parented to us.
            found = self.with_descendants([ex.pid]) if left else ()
            for pid in found:
                if pid != ex.pid:
                    try:
                        os.kill(pid, signal.SIGKILL)
                    except OSError:
                        pass
            # Kept before any other is dropped: dropping one may look for leftovers, and
            # this process must not look like one then.
            self.spares.append(ex)
            if len(self.spares) > MAX_IDLE_REUSERS:
                self.drop_spare(self.spares[0])
            self.last_end = time.monotonic()

    def trim_due(self):
        """Seconds until idle reused processes beyond the most recent one (or the spares
        the worker keeps, if more) are stopped, or None when there is nothing to trim."""
        if not self.reuse or self.running or len(self.spares) <= max(1, self.max_spares):
            return None
        return max(0.0, self.last_end + IDLE_TRIM_SECONDS - time.monotonic())

    def trim_idle(self):
        """Stops the idle reused processes but the most recently used one (or as many as
        the worker keeps spares), once the worker has been idle for IDLE_TRIM_SECONDS."""
        due = self.trim_due()
        if due is not None and due <= 0.0:
            while len(self.spares) > max(1, self.max_spares):
                self.drop_spare(self.spares[0])

    def finish(self, ex):
        """Reaps an execution whose process has exited and sends its result."""
        # Kill what is left of its process group while the zombie still holds the group's
        # number, then reap it with its rusage.
        try:
            os.killpg(ex.pid, signal.SIGKILL)
        except OSError:
            pass
        try:
            _, status, usage = os.wait4(ex.pid, 0)
        except ChildProcessError:
            status, usage = 1 << 8, None
        self.reaped(ex.pid)
        duration = time.monotonic() - ex.started
        del self.running[ex.pid]
        if ex.pidfd is not None:
            self.sel.unregister(ex.pidfd)
            os.close(ex.pidfd)
        if ex.done_r >= 0:
            self.sel.unregister(ex.done_r)
        try:
            # (A reused process's earlier executions are not this one's.)
            usage = (max(0, int(round((usage.ru_utime + usage.ru_stime) * 1000)) - ex.cpu_base), usage.ru_maxrss) \
                if usage else (0, 0)
            self.reply(ex, status, usage, duration)
        finally:
            self.close_fds(ex)
        self.kill_leftovers()
        self.spare_wanted = True

    def reply(self, ex, status, usage, duration, size=None):
        """Sends the result of an execution that ended with wait status `status`; `usage`
        is (cpu_ms, max_rss_kb); `size` the result record's, when the child said it."""
        msg = self.result_message(ex, status, usage, duration, size)
        data = self.encode(msg)
        if len(data) > MAX_FRAME:
            # A frame the engine would refuse: report the overflow instead.
            msg.update(success=False, output=RESOURCE_MSG, reason="resource",
                       logs=msg["logs"][:MAX_FRAME // 4] + "\n[result too large: %d bytes]\n" % len(data))
            data = None
        self.send(msg, data)

    def result_message(self, ex, status, usage, duration, size=None):
        logs = self.log_text(ex)
        if ex.timed_out:
            success, output, reason = False, TIMEOUT_MSG, "timeout"
        elif os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0:
            if size is None:
                size = os.fstat(ex.result_fd).st_size
            if size > MAX_FRAME:
                success, output, reason = False, RESOURCE_MSG, "resource"
                logs += "\n[result too large: %d bytes]\n" % size
            elif size == 0:
                success, output, reason = False, NO_RESULT_MSG, "exception"
            else:
                try:
                    record = json.loads(os.pread(ex.result_fd, size, 0))
                    success, output, reason = bool(record["success"]), record["output"], str(record["reason"])
                except (ValueError, KeyError, TypeError):  # the function scribbled on it
                    success, output, reason = False, NO_RESULT_MSG, "exception"
        else:
            # Killed by a signal we did not send for a timeout (the OOM killer, a crash),
            # or a non-zero exit: the sandbox ran out of something.
            success, output, reason = False, RESOURCE_MSG, "resource"
        return {
            "op": "result", "id": ex.id, "success": success, "output": output, "duration": round(duration, 3),
            "logs": logs, "cpu_ms": usage[0], "max_rss_kb": usage[1], "reason": reason,
        }

    def check_deadlines(self):
        now = time.monotonic()
        for ex in self.running.values():
            if not ex.timed_out and now >= ex.deadline:
                ex.timed_out = True
                self.kill_group(ex.pid)

    def next_timeout(self):
        deadline = None
        for ex in self.running.values():
            if not ex.timed_out and (deadline is None or ex.deadline < deadline):
                deadline = ex.deadline
        if deadline is None:
            return None
        return max(0.0, deadline - time.monotonic())

    # -- leftovers -----------------------------------------------------------------------

    def direct_children(self):
        """Pids of the zygote's direct children, from /proc."""
        if self.children_file_ok:
            try:
                fd = os.open(self.children_path, os.O_RDONLY)
                try:
                    data = b""
                    while True:
                        chunk = os.read(fd, 65536)
                        data += chunk
                        if len(chunk) < 65536:
                            break  # a proc seq file gives all it has to one large read
                finally:
                    os.close(fd)
                return [int(p) for p in data.split()]
            except OSError:
                self.children_file_ok = False
        # Kernels without CONFIG_PROC_CHILDREN: scan every process's parent.
        kids = []
        try:
            entries = os.listdir("/proc")
        except OSError:
            return kids
        for entry in entries:
            if entry.isdigit():
                stat = self.proc_stat(int(entry))
                if stat and stat[1] == self.my_pid:
                    kids.append(int(entry))
        return kids

    @staticmethod
    def proc_stat(pid):
        """(state, ppid, pgrp) of a process, or None if it is gone."""
        try:
            with open("/proc/%d/stat" % pid, "rb") as f:
                data = f.read()
        except OSError:
            return None
        # The command name may contain spaces and parentheses; the fields after its
        # closing parenthesis are regular.
        fields = data[data.rindex(b")") + 2:].split()
        return fields[0], int(fields[1]), int(fields[2])

    def kill_leftovers(self):
        """Kills what finished executions left behind: every process of the worker that is
        not the zygote, a running execution (with its process group and descendants) or a
        spare. Such processes hang off the zygote's direct children that are none of those:
        daemons that escaped their group were re-parented to us (the subreaper, and pid 1 of
        the jail) when their parent exited, and a killed or answered execution may still be
        exiting. Each such child is killed with all its descendants, not just itself (a
        double-forked daemon's child would otherwise be re-parented to us and live on), and
        the pass is repeated until it finds no process it has not killed yet, so that one
        forking while it is killed cannot leave a child behind: a process with SIGKILL
        pending forks no more. Executions are reaped only by their own wait4, never here,
        and a leftover still in a running execution's process group is left to that
        execution."""
        spares = [ex.pid for ex in self.spares]
        killed = set()
        for _ in range(MAX_LEFTOVER_PASSES):
            roots = []
            for pid in self.direct_children():
                if pid in self.running or pid in spares:
                    continue
                if self.running and pid not in self.dying:
                    stat = self.proc_stat(pid)
                    if stat is not None and stat[2] in self.running:
                        continue
                roots.append(pid)
            if not roots:
                return
            found = self.with_descendants(roots)
            new = found - killed
            for pid in new:
                try:
                    os.kill(pid, signal.SIGKILL)
                except OSError:
                    pass
            killed |= new
            for pid in roots:
                if pid not in self.dying:
                    self.reap_leftover(pid)  # a zombie is reaped here
            for pid in new:
                if pid not in self.dying and pid not in roots:
                    self.watch_leftover(pid)
            if not new:
                return

    def watch_leftover(self, pid):
        """Remembers a killed process that is not our child (yet): when it dies (in fallback
        mode: at the next SIGCHLD) the loop looks again, and reaps it if it was re-parented
        to us meanwhile; its parent was killed too."""
        pidfd = None
        if self.use_pidfd:
            try:
                pidfd = os.pidfd_open(pid)
            except OSError:
                return  # gone already
            self.sel.register(pidfd, pid)
        self.dying[pid] = pidfd

    def with_descendants(self, roots):
        """The set of `roots` and all their descendants."""
        found = set(roots)
        todo = list(roots)
        if self.children_file_ok:
            while todo:
                pid = todo.pop()
                try:
                    tids = os.listdir("/proc/%d/task" % pid)
                except OSError:
                    continue  # gone
                for tid in tids:
                    try:
                        with open("/proc/%d/task/%s/children" % (pid, tid), "rb") as f:
                            kids = f.read().split()
                    except OSError:
                        continue
                    for kid in map(int, kids):
                        if kid not in found:
                            found.add(kid)
                            todo.append(kid)
            return found
        # Kernels without CONFIG_PROC_CHILDREN: every process's parent, from one scan.
        children = {}
        try:
            entries = os.listdir("/proc")
        except OSError:
            return found
        for entry in entries:
            if entry.isdigit():
                stat = self.proc_stat(int(entry))
                if stat is not None:
                    children.setdefault(stat[1], []).append(int(entry))
        while todo:
            for kid in children.get(todo.pop(), ()):
                if kid not in found:
                    found.add(kid)
                    todo.append(kid)
        return found

    def reap_leftover(self, pid):
        """Reaps a killed leftover if it has died; SIGKILL takes effect asynchronously, so
        otherwise it is remembered, with a pidfd that wakes the loop when it dies (in
        fallback mode the SIGCHLD wake-up polls it)."""
        try:
            reaped = os.waitpid(pid, os.WNOHANG)[0] == pid
        except ChildProcessError:
            reaped = True  # not ours any more
        if reaped:
            self.reaped(pid)
            pidfd = self.dying.pop(pid, None)
            if pidfd is not None:
                self.sel.unregister(pidfd)
                os.close(pidfd)
        elif pid not in self.dying:
            pidfd = None
            if self.use_pidfd:
                try:
                    pidfd = os.pidfd_open(pid)
                except OSError:
                    pidfd = None  # checked again after the next execution ends
                else:
                    self.sel.register(pidfd, pid)
            self.dying[pid] = pidfd

    def on_sigchld(self):
        """Fallback mode: something exited; poll exactly the pids we own."""
        try:
            while os.read(self.wakeup_r, 4096):
                pass
        except BlockingIOError:
            pass
        for ex in list(self.running.values()):
            try:
                if os.waitid(os.P_PID, ex.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    self.finish(ex)
            except ChildProcessError:
                self.finish(ex)
        for ex in list(self.spares):
            try:
                if os.waitid(os.P_PID, ex.pid, os.WEXITED | os.WNOHANG | os.WNOWAIT) is not None:
                    self.spare_died(ex)
            except ChildProcessError:
                self.spare_died(ex)
        for pid in list(self.dying):
            self.reap_dying(pid)

    def settle_dying(self):
        """Waits (at most SETTLE_SECONDS) until every killed leftover is reaped; whether
        they all were. SIGKILL is asynchronous, and a leftover with many processes takes
        a few milliseconds to be gone."""
        deadline = time.monotonic() + SETTLE_SECONDS
        while True:
            for pid in list(self.dying):
                self.reap_dying(pid)
            if not self.dying or time.monotonic() >= deadline:
                return not self.dying
            time.sleep(0.002)

    def reap_dying(self, pid):
        """reap_leftover for a process the loop saw die; an execution answered before its
        exit leaves its own descendants to us only now, so they are looked for then."""
        self.reap_leftover(pid)
        if pid not in self.dying:
            # An answered execution's orphans, or a killed leftover's killed children, are
            # ours now: reap (or kill) them.
            self.retired.discard(pid)
            self.kill_leftovers()

    # -- loop ----------------------------------------------------------------------------

    def serve(self):
        self.send({"op": "ready", "pid": self.my_pid, "runtime": RUNTIME,
                   "version": "%d.%d.%d" % sys.version_info[:3]})
        poll = self.sel.ep.poll
        handlers = self.sel.data
        while True:
            timeout = self.next_timeout() if self.running else self.trim_due()
            if self.dying and not self.use_pidfd and (timeout is None or timeout > 0.5):
                timeout = 0.5  # a fallback-mode leftover whose SIGCHLD we may have missed
            for fd, _ in poll(-1 if timeout is None else timeout):
                data = handlers.get(fd)
                if data is INPUT:
                    chunk = os.read(self.proto_in, READ_CHUNK)
                    if chunk:
                        self.buf += chunk
                    else:
                        self.eof = True
                elif data.__class__ is Execution:
                    if fd == data.log_r:
                        self.drain_log(data)
                    elif self.running.get(data.pid) is data:
                        if fd == data.done_r:
                            self.on_done(data)
                        else:
                            self.finish(data)
                    elif data.id is None and fd == data.pidfd and data in self.spares:
                        self.spare_died(data)
                    elif fd == data.done_r:
                        # Written while no execution runs (a thread a reused process left
                        # behind): meaningless, and must not wake the loop forever.
                        # (At its end of file the process has died: its pidfd says so.)
                        try:
                            os.read(fd, 64)
                        except OSError:
                            pass
                elif data == "wakeup":
                    self.on_sigchld()
                elif data is not None:
                    self.reap_dying(data)
            if self.dying and not self.use_pidfd:
                self.on_sigchld()  # the 0.5 s poll above
            if self.running:
                self.check_deadlines()
            if self.buf:
                for frame in self.frames():
                    self.handle_frame(frame)
            if self.eof:
                return 0
            if self.spare_wanted and not self.running:
                self.add_spares()
            elif self.reuse and not self.running:
                self.trim_idle()

    def shutdown(self):
        """Kills every execution, spare and leftover, reaps them, removes the package."""
        for ex in self.spares:
            self.kill_group(ex.pid)
        for pid in list(self.running):
            self.kill_group(pid)
        for pid in list(self.running):
            try:
                os.waitpid(pid, 0)
            except ChildProcessError:
                pass
        self.running.clear()
        # Whatever the executions left behind is now ours; kill it too.
        for pid in self.direct_children():
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
        if self.package_dir:
            import shutil

            shutil.rmtree(self.package_dir, ignore_errors=True)


def load_prctl():
    """libc's prctl through ctypes, or None where ctypes cannot load libc."""
    global PRCTL
    try:
        import ctypes

        PRCTL = ctypes.CDLL(None, use_errno=True).prctl
    except Exception:
        PRCTL = None


def set_child_subreaper():
    """PR_SET_CHILD_SUBREAPER: orphans of our descendants are re-parented to us, not to
    the sandbox's init, so that we can find and kill them."""
    if PRCTL is not None:
        PRCTL(PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0)
    # Without libc via ctypes leftovers are the sandbox's to clean up.


def make_non_dumpable():
    """PR_SET_DUMPABLE 0: no process of the jail's other ids, nor one of ours without
    CAP_SYS_PTRACE, can open this process's /proc/<pid>/mem, fd, environ or trace it; its
    /proc files belong to root."""
    if PRCTL is not None:
        PRCTL(PR_SET_DUMPABLE, 0, 0, 0, 0)


def exec_ids_from_env():
    """The (first, count) of $QINLING_EXEC_IDS when this process can switch to them (it
    is uid 0 of the jail's user namespace); else None. The variable is removed: the function
    has no use for it."""
    value = os.environ.pop("QINLING_EXEC_IDS", "")
    try:
        first, count = (int(x) for x in value.split(":"))
    except ValueError:
        return None
    if count <= 0 or first <= 0 or os.geteuid() != 0:
        return None
    return first, count


def lift_int_str_limit():
    """Python >= 3.11 refuses to convert integers of more than 4300 digits to and from
    text (a guard against quadratic-time parsing of hostile input in web servers). A
    function's own arithmetic is not such input, and upstream's functions print such
    integers (its CPU-limit test prints 50,000 digits of pi), so the limit is lifted for
    the function's import and every execution (children inherit it)."""
    if hasattr(sys, "set_int_max_str_digits"):
        sys.set_int_max_str_digits(0)


def main():
    # The protocol channel: private duplicates of stdin and stdout, taken before any user
    # code can run (os.dup makes them close-on-exec). Fds 0-2 then point at /dev/null, so
    # nothing the function prints, from Python or C, can corrupt a frame.
    proto_in = os.dup(0)
    proto_out = os.dup(1)
    devnull = os.open(os.devnull, os.O_RDWR)
    for fd in (0, 1, 2):
        os.dup2(devnull, fd)
    # sys.stdout/stderr become unbuffered streams over fds 1 and 2.
    global ORIGINAL_STREAMS
    ORIGINAL_STREAMS = (sys.__stdout__, sys.__stderr__)
    streams = (unbuffered_stream(1, "surrogateescape"), unbuffered_stream(2, "backslashreplace"))
    sys.stdout = sys.__stdout__ = streams[0]
    sys.stderr = sys.__stderr__ = streams[1]
    # Signals blocked by whoever started us would stay blocked in every execution.
    if hasattr(signal, "pthread_sigmask"):
        signal.pthread_sigmask(signal.SIG_SETMASK, [])
    load_prctl()
    make_non_dumpable()
    set_child_subreaper()
    global EXEC_IDS
    EXEC_IDS = exec_ids_from_env()
    lift_int_str_limit()
    zygote = Zygote(proto_in, proto_out, devnull, streams)
    code = 0
    try:
        code = zygote.serve()
    except ProtocolError as exc:
        code = 1
        try:
            zygote.send({"op": "error", "error": str(exc)})
        except OSError:
            pass
    except BrokenPipeError:
        code = 0  # the engine is gone: same as EOF
    except Exception as exc:  # a bug in this file: tell the engine what, then go
        code = 1
        try:
            zygote.send({"op": "error", "error": "worker shim failure: %s" % "".join(
                traceback.format_exception(type(exc), exc, exc.__traceback__))})
        except OSError:
            pass
    finally:
        zygote.shutdown()
    # No interpreter teardown: it would run atexit hooks the function's module registered.
    os._exit(code)


if __name__ == "__main__":
    main()
