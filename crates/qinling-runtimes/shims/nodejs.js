//! Qinling nodejs worker shim.
//!
//! This file runs inside a worker sandbox as `node nodejs.js` and speaks the framed worker
//! protocol of docs/worker-protocol.md on its stdin (engine -> worker) and stdout (worker ->
//! engine). It waits for one `bind` (the function's zip package and entry point), extracts
//! the package, and then serves any number of concurrent `exec` messages.
//!
//! Node cannot fork(2), so the process is a *supervisor* rather than a zygote: executions run
//! in *executor* processes (this same file started with `--executor`), each of which has
//! required the function's module once and then runs one execution at a time, for as many
//! executions as it survives. An executor is its own process group (a timeout SIGKILLs exactly
//! that execution and what it started); its fds 1 and 2 are sockets the supervisor drains as
//! they fill, keeping the first `log_limit` bytes of an execution's output and counting the
//! rest (so the log is captured at the file-descriptor level, survives a kill, and a function
//! printing hundreds of MiB costs the worker no memory beyond the cap); and it reports cpu time
//! and peak RSS of its own process. A killed or crashed executor is replaced; idle ones are kept
//! warm (module state persists between executions, as in other FaaS platforms' Node runtimes),
//! and a second one is started after the first execution, so a concurrent burst rarely waits
//! for Node to start. A pool worker starts its first executor before it is
//! bound; that executor loads the function when the bind comes, so a new function's first
//! execution does not wait for Node to start either. ARCHITECTURE.md ("Decisions") weighs this choice.
//!
//! Each executor runs under an id of its own when the sandbox maps a range of them
//! ($QINLING_EXEC_IDS, `<first>:<count>`; the supervisor is then uid 0 of the jail's user
//! namespace with CAP_SETUID, CAP_SETGID and CAP_KILL, which the switch drops in the
//! executor): concurrent executions, always in different executors, cannot signal, trace or
//! read each other or the supervisor.
//!
//! Node's standard library only (zip extraction is done by hand over zlib).
'use strict';

const fs = require('fs');
const path = require('path');
const zlib = require('zlib');
const childProcess = require('child_process');
const os = require('os');
const net = require('net');
const { Writable } = require('stream');
const { StringDecoder } = require('string_decoder');

const RUNTIME = 'nodejs';
const TIMEOUT_MSG = 'Function execution timeout.';
const RESOURCE_MSG = 'Function execution failed because of too much resource consumption';
const NO_RESULT_MSG = "The function's process exited without returning a result.";
const MAX_FRAME = 64 * 1024 * 1024;
const DEFAULT_LOG_LIMIT = 1024 * 1024;
// Idle executors kept warm beyond what is running; more are stopped when they finish.
const MAX_IDLE = 2;

class ProtocolError extends Error {}

// The ids executors run under ({ first, count }), or null when they share the supervisor's.
// The variable is removed either way: executors inherit this environment.
const EXEC_IDS = (() => {
  const value = process.env.QINLING_EXEC_IDS || '';
  delete process.env.QINLING_EXEC_IDS;
  const m = /^([0-9]+):([0-9]+)$/.exec(value);
  if (m === null || typeof process.geteuid !== 'function' || process.geteuid() !== 0) return null;
  const first = Number(m[1]);
  const count = Number(m[2]);
  return first > 0 && count > 0 ? { first, count } : null;
})();

// ---------------------------------------------------------------------------------------
// Package extraction: a minimal zip reader (stored and deflated members, no zip64). The
// package may be as large as the function's memory allows beside its unpacked copy in /tmp
// (50 MiB at 128 MiB), so no member is ever held whole a second time: stored members are
// written straight from the package, deflated ones through a streaming inflater.

// A collector of garbage on demand (Node exposes it only behind --expose-gc). A 50 MiB
// package dropped after unpacking, or the inflater's garbage, would otherwise stay charged
// to the worker's memory until V8 happens to collect.
const collectGarbage = (() => {
  try {
    require('v8').setFlagsFromString('--expose-gc');
    const gc = require('vm').runInNewContext('gc');
    return typeof gc === 'function' ? gc : () => {};
  } catch (_) {
    return () => {};
  }
})();

// Writes `buf` whole (an fd in non-blocking mode is retried on EAGAIN).
function writeAllSync(fd, buf) {
  let off = 0;
  while (off < buf.length) {
    try {
      off += fs.writeSync(fd, buf, off, Math.min(buf.length - off, 1 << 20));
    } catch (err) {
      if (err.code !== 'EAGAIN') throw err;
    }
  }
}

// Encodings whose text can be cut anywhere between UTF-16 code units (not base64 or hex).
const SLICEABLE = new Set(['utf8', 'utf-8', 'ascii', 'latin1', 'binary', 'ucs2', 'ucs-2', 'utf16le', 'utf-16le']);

// Writes the string `text` whole, a slice (256 Ki code units) at a time: each slice is
// converted into a temporary buffer freed at once, so a string costs no Buffer of its size
// left to the garbage collector, nor a conversion buffer of three times its size.
function writeStringSync(fd, text, encoding = 'utf8') {
  if (!SLICEABLE.has(String(encoding).toLowerCase())) {
    writeAllSync(fd, Buffer.from(text, encoding));
    return;
  }
  for (let i = 0; i < text.length;) {
    let end = Math.min(i + 262144, text.length);
    const last = text.charCodeAt(end - 1);
    if (end < text.length && last >= 0xd800 && last <= 0xdbff) end--; // not between a pair
    const piece = i === 0 && end === text.length ? text : text.slice(i, end);
    let n;
    try {
      n = fs.writeSync(fd, piece, null, encoding);
    } catch (err) {
      if (err.code === 'EAGAIN') continue;
      throw err;
    }
    if (n < Buffer.byteLength(piece, encoding)) writeAllSync(fd, Buffer.from(piece, encoding).subarray(n));
    i = end;
  }
}

// Inflates `raw` into `fd`, a chunk at a time.
function inflateInto(raw, fd) {
  return new Promise((resolve, reject) => {
    const inflate = zlib.createInflateRaw({ chunkSize: 256 * 1024 });
    let sinceCollect = 0;
    inflate.on('data', (chunk) => {
      try {
        writeAllSync(fd, chunk);
      } catch (err) {
        inflate.destroy(err);
        return;
      }
      sinceCollect += chunk.length;
      if (sinceCollect >= 8 << 20) {
        sinceCollect = 0;
        collectGarbage({ type: 'minor' });
      }
    });
    inflate.on('end', resolve);
    inflate.on('error', reject);
    inflate.end(raw);
  });
}

async function extractZip(buf, dest) {
  let eocd = -1;
  for (let i = buf.length - 22; i >= Math.max(0, buf.length - 22 - 65535); i--) {
    if (buf.readUInt32LE(i) === 0x06054b50) { eocd = i; break; }
  }
  if (eocd < 0) throw new Error('PackageError: the package is not a zip file');
  const count = buf.readUInt16LE(eocd + 10);
  let p = buf.readUInt32LE(eocd + 16);
  for (let n = 0; n < count; n++) {
    if (p + 46 > buf.length || buf.readUInt32LE(p) !== 0x02014b50) {
      throw new Error('PackageError: corrupt zip central directory');
    }
    const method = buf.readUInt16LE(p + 10);
    const compSize = buf.readUInt32LE(p + 20);
    const nameLen = buf.readUInt16LE(p + 28);
    const extraLen = buf.readUInt16LE(p + 30);
    const commentLen = buf.readUInt16LE(p + 32);
    const attr = buf.readUInt32LE(p + 38);
    const local = buf.readUInt32LE(p + 42);
    const name = buf.toString('utf8', p + 46, p + 46 + nameLen);
    p += 46 + nameLen + extraLen + commentLen;
    const parts = name.replace(/\\/g, '/').split('/');
    if (name.startsWith('/') || name.startsWith('\\') || parts.includes('..') || (parts[0] || '').endsWith(':')) {
      throw new Error(`PackageError: package member '${name}' would be extracted outside the package directory`);
    }
    const mode = (attr >>> 16) & 0xffff;
    if ((mode & 0o170000) === 0o120000) continue; // symlinks are never created
    const clean = parts.filter((x) => x && x !== '.');
    if (clean.length === 0) continue;
    const target = path.join(dest, ...clean);
    if (name.endsWith('/') || name.endsWith('\\') || (mode & 0o170000) === 0o040000) {
      fs.mkdirSync(target, { recursive: true });
      continue;
    }
    if (method !== 0 && method !== 8) {
      throw new Error(`PackageError: package member '${name}' uses unsupported compression ${method}`);
    }
    if (local + 30 > buf.length) throw new Error('PackageError: corrupt zip local header');
    const lnameLen = buf.readUInt16LE(local + 26);
    const lextraLen = buf.readUInt16LE(local + 28);
    const start = local + 30 + lnameLen + lextraLen;
    const raw = buf.subarray(start, start + compSize);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    const fd = fs.openSync(target, 'w');
    try {
      if (method === 0) writeAllSync(fd, raw);
      else await inflateInto(raw, fd);
    } finally {
      fs.closeSync(fd);
    }
    // Readable by every id in the sandbox (executors run under their own).
    if (mode & 0o777) fs.chmodSync(target, (mode & 0o777) | ((mode & 0o111) ? 0o755 : 0o644));
  }
}

// The engine's frames from fd 0: read with one read in flight at a time into a reused
// buffer, except a large frame's body (the package), which is read straight into a buffer
// of its own size; so a 50 MiB package costs 50 MiB, not that plus its copies and the
// garbage of 64 KiB read buffers.
class FrameReader {
  constructor(fd, onFrame, onEnd) {
    this.fd = fd;
    this.onFrame = onFrame;
    this.onEnd = onEnd;
    this.scratch = Buffer.allocUnsafe(64 * 1024);
    this.head = Buffer.alloc(4);
    this.headFill = 0;
    this.frame = null; // the body being read
    this.frameFill = 0;
  }

  start() {
    const direct = this.frame !== null && this.frame.length >= DIRECT_FRAME;
    const buf = direct ? this.frame : this.scratch;
    const off = direct ? this.frameFill : 0;
    const len = direct ? this.frame.length - this.frameFill : this.scratch.length;
    fs.read(this.fd, buf, off, len, null, (err, n) => {
      if (err || n === 0) {
        this.onEnd();
        return;
      }
      if (direct) {
        this.frameFill += n;
        this.complete();
      } else {
        this.feed(this.scratch.subarray(0, n));
      }
      this.start();
    });
  }

  feed(data) {
    let pos = 0;
    while (pos < data.length) {
      if (this.frame === null) {
        const take = Math.min(4 - this.headFill, data.length - pos);
        data.copy(this.head, this.headFill, pos, pos + take);
        this.headFill += take;
        pos += take;
        if (this.headFill < 4) return;
        const size = this.head.readUInt32BE(0);
        if (size > MAX_FRAME) throw new ProtocolError(`frame of ${size} bytes is larger than ${MAX_FRAME}`);
        this.frame = size >= DIRECT_FRAME ? Buffer.allocUnsafeSlow(size) : Buffer.allocUnsafe(size);
        this.frameFill = 0;
      }
      const take = Math.min(this.frame.length - this.frameFill, data.length - pos);
      data.copy(this.frame, this.frameFill, pos, pos + take);
      this.frameFill += take;
      pos += take;
      this.complete();
    }
  }

  complete() {
    if (this.frame === null || this.frameFill < this.frame.length) return;
    const frame = this.frame;
    this.frame = null;
    this.headFill = 0;
    this.onFrame(frame);
  }
}

// A log past this many bytes is followed by a garbage collection (see answer).
const LARGE_LOG = 256 * 1024;

// Frames at least this large are read straight into their own buffer.
const DIRECT_FRAME = 1024 * 1024;

// ---------------------------------------------------------------------------------------
// The executor: loads the function once, runs one execution at a time.

function errorText(err) {
  if (err instanceof Error) return `${err.name}: ${err.message}`;
  try { return String(err); } catch (_) { return 'Error'; }
}

function errorStack(err) {
  try {
    if (err instanceof Error && err.stack) return String(err.stack);
    return `Uncaught ${String(err)}`;
  } catch (_) {
    return 'Uncaught exception';
  }
}

// The entry's module as a resolved file inside the package directory, or an error: an
// entry with `..` (or anything that resolves through the file system to outside the package,
// e.g. the host's node_modules) is refused here too, not only by the engine at create.
function insidePackage(dir, candidate, moduleName) {
  const lexical = path.resolve(dir) + path.sep;
  const root = fs.realpathSync(dir) + path.sep;
  const refuse = () => {
    const err = new Error(`module '${moduleName}' is not in the function's package: the entry must name a module inside the package`);
    err.code = 'ENTRY_OUTSIDE_PACKAGE';
    return err;
  };
  if (!path.resolve(candidate).startsWith(lexical)) throw refuse();
  const resolved = require.resolve(candidate);
  if (!fs.realpathSync(resolved).startsWith(root)) throw refuse();
  return resolved;
}

function loadEntry(dir, entry) {
  let moduleName = entry;
  let funcName = 'main';
  const dot = entry.lastIndexOf('.');
  if (dot > 0) {
    moduleName = entry.slice(0, dot);
    funcName = entry.slice(dot + 1);
  }
  let mod;
  try {
    mod = require(insidePackage(dir, path.join(dir, moduleName), moduleName));
  } catch (err) {
    // `pkg.mod.func` as in Python: try the dots as directories.
    if (err && err.code === 'MODULE_NOT_FOUND' && moduleName.includes('.')) {
      try {
        mod = require(insidePackage(dir, path.join(dir, ...moduleName.split('.')), moduleName));
      } catch (_) {
        throw err;
      }
    } else {
      if (err && err.code === 'MODULE_NOT_FOUND') err.message = `Cannot find module '${moduleName}'`;
      throw err;
    }
  }
  const func = mod == null ? undefined : mod[funcName];
  if (func === undefined) throw new TypeError(`module '${moduleName}' has no export '${funcName}'`);
  if (typeof func !== 'function') throw new TypeError(`'${moduleName}.${funcName}' is not a function`);
  return func;
}

// process.stdout and process.stderr of an executor: blocking writes to `fd`. Node's own
// streams over a socket queue what the reader has not taken yet in the process's memory, so a
// function printing faster than the supervisor drains would grow without bound; these wait
// instead, as a write to a file or a terminal does. `nominal` is the fd the stream stands
// for (what a child process given it as stdio gets).
function syncStdio(fd, nominal) {
  const stream = new Writable({
    decodeStrings: false,
    write(chunk, encoding, callback) {
      try {
        if (typeof chunk === 'string') writeStringSync(fd, chunk, encoding);
        else writeAllSync(fd, chunk);
      } catch (err) {
        callback(err);
        return;
      }
      callback();
    },
  });
  stream.fd = nominal;
  stream.isTTY = false;
  stream._isStdio = true;
  stream.destroySoon = stream.destroy;
  return stream;
}

// The channel between the supervisor and an executor: one socket (the executor's fd 3),
// JSON messages one per line. Node's own IPC channel does the same with more machinery (its
// parser cost the supervisor ~70 µs per message). A line longer than a protocol frame can
// be (a function writing garbage to fd 3) ends the channel.
class LineChannel {
  constructor(socket, onMessage, onOverflow) {
    this.socket = socket;
    this.parts = [];
    this.pending = 0;
    socket.on('data', (chunk) => this.feed(chunk, onMessage, onOverflow));
    socket.on('error', () => { /* the other end is gone: its exit (or our end) says so */ });
  }

  feed(chunk, onMessage, onOverflow) {
    let start = 0;
    for (;;) {
      const nl = chunk.indexOf(10, start);
      if (nl < 0) {
        if (start < chunk.length) {
          this.parts.push(chunk.subarray(start));
          this.pending += chunk.length - start;
          if (this.pending > 2 * MAX_FRAME) {
            this.parts = [];
            this.pending = 0;
            onOverflow();
          }
        }
        return;
      }
      let line;
      if (this.parts.length > 0) {
        this.parts.push(chunk.subarray(start, nl));
        line = Buffer.concat(this.parts).toString('utf8');
        this.parts = [];
        this.pending = 0;
      } else {
        line = chunk.toString('utf8', start, nl);
      }
      start = nl + 1;
      let msg;
      try {
        msg = JSON.parse(line);
      } catch (_) {
        continue;
      }
      if (msg !== null && typeof msg === 'object') onMessage(msg);
    }
  }

  send(msg, callback) {
    this.socket.write(JSON.stringify(msg) + '\n', callback);
  }
}

// An executor started with a package and entry loads them at once; one started without
// (the pre-started executor of a pool worker) waits for a `load` message naming them, so
// that binding a pool worker does not wait for Node to start.
function executorMain(dir, entry) {
  // Before anything touches them: the console then writes through these too. Both write to
  // fd 1, so that what the function prints through either stays in order in the log (fd 2,
  // a socket of its own, still gets what child processes and native code write there).
  const stdout = syncStdio(1, 1);
  const stderr = syncStdio(1, 2);
  Object.defineProperty(process, 'stdout', { configurable: true, enumerable: true, get: () => stdout });
  Object.defineProperty(process, 'stderr', { configurable: true, enumerable: true, get: () => stderr });
  // The OOM killer should pick an executor, never the supervisor.
  try { fs.writeFileSync('/proc/self/oom_score_adj', '1000'); } catch (_) { /* not allowed */ }
  const socket = new net.Socket({ fd: 3, readable: true, writable: true });
  socket.on('end', () => process.exit(0)); // the supervisor is gone, or drops this executor
  socket.on('close', () => process.exit(0));
  let onMessage = () => {};
  const channel = new LineChannel(socket, (msg) => onMessage(msg), () => process.exit(0));
  if (dir !== undefined) {
    executorRun(dir, entry, channel, (handler) => { onMessage = handler; });
    return;
  }
  onMessage = (msg) => {
    if (msg.op !== 'load') return;
    onMessage = () => {};
    try { process.chdir(msg.dir); } catch (_) { /* the require below says what is wrong */ }
    executorRun(msg.dir, msg.entry, channel, (handler) => { onMessage = handler; });
  };
  channel.send({ op: 'started' });
}

// `listen(handler)` makes `handler` receive the channel's messages from now on.
function executorRun(dir, entry, channel, listen) {
  let func;
  try {
    func = loadEntry(dir, entry);
  } catch (err) {
    try { process.stderr.write(errorStack(err) + '\n'); } catch (_) { /* fsize */ }
    channel.send({ op: 'load_failed', error: errorText(err) }, () => process.exit(0));
    return;
  }
  let current = null; // the execution running now: { id, done }
  const write = (text) => {
    try { fs.writeSync(1, text); } catch (_) { /* RLIMIT_FSIZE: the result still goes out */ }
  };
  const finish = (record) => {
    if (current === null) return;
    const ex = current;
    current = null;
    const cpu = process.cpuUsage(ex.cpu);
    record.cpu_ms = Math.round((cpu.user + cpu.system) / 1000);
    record.max_rss_kb = process.resourceUsage().maxRSS;
    channel.send(record);
  };
  const fail = (err) => {
    write(errorStack(err) + '\n');
    const resource = err instanceof RangeError && /allocation failed|Invalid array length|Invalid string length/.test(String(err.message));
    finish(resource
      ? { success: false, output: JSON.stringify(RESOURCE_MSG), reason: 'resource' }
      : { success: false, output: JSON.stringify(err instanceof Error ? String(err.message) : errorText(err)), reason: 'exception' });
  };
  process.on('uncaughtException', (err) => {
    if (current !== null) fail(err);
    else write(errorStack(err) + '\n');
  });
  process.on('unhandledRejection', (err) => {
    if (current !== null) fail(err);
    else write(errorStack(err) + '\n');
  });
  listen((msg) => {
    if (msg.op !== 'exec') return;
    current = { id: msg.id, cpu: process.cpuUsage() };
    const ex = current;
    let value;
    try {
      value = func(msg.context, msg.input);
    } catch (err) {
      fail(err);
      return;
    }
    Promise.resolve(value).then((v) => {
      if (current !== ex) return;
      let json;
      try {
        json = JSON.stringify(v === undefined ? null : v);
        if (json === undefined) json = 'null'; // a function or symbol
      } catch (err) {
        finish({ success: false, output: JSON.stringify(`The function's return value is not JSON serializable: ${errorText(err)}`), reason: 'unserializable' });
        return;
      }
      finish({ success: true, output: json, reason: 'ok' });
    }, (err) => {
      if (current === ex) fail(err);
    });
  });
  channel.send({ op: 'loaded' });
}

// ---------------------------------------------------------------------------------------
// The supervisor: protocol, bind, and executors.

// The fields of /proc/<pid>/stat after the command name, or null when the process is gone.
function procStat(pid) {
  try {
    const stat = fs.readFileSync(`/proc/${pid}/stat`, 'latin1');
    return stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  } catch (_) {
    return null;
  }
}

function readProcCpuMs(pid) {
  const fields = procStat(pid);
  return fields === null ? 0 : Math.round((Number(fields[11]) + Number(fields[12])) * 10); // 100 Hz clock ticks
}

// Rounds of killLeftovers: each must find a process the previous ones did not kill.
const MAX_LEFTOVER_PASSES = 1000;
// Whether this supervisor runs in a pid namespace of its own (the jail: pid 1, or pid 2 under
// the jail's reaper), where every process in /proc belongs to this worker. Elsewhere (the
// insecure process sandbox) /proc is the host's, and leftovers are not hunted there.
const OWN_PID_NAMESPACE = process.pid === 1 || (process.pid === 2 && process.ppid === 1);

// An executor's output (its fds 1 and 2, two sockets): the first `limit` bytes since the last
// reset are kept, the rest only counted. The sockets are read as they fill, so a writer never
// waits long: up to the limit as streams; past it with non-blocking reads into one scratch
// buffer on a timer (a stream's reads allocate a buffer each, and a flood of them outruns
// the garbage collector by tens of MiB). Before the log is reset or read, what the sockets
// still hold is taken the same way: everything the executor wrote before it reported a
// result (the report comes on another channel) is then in the log, nothing after.
class OutputLog {
  constructor() {
    this.sockets = [];
    this.polling = false;
    this.timer = null;
    this.delay = 1;
    this.reset(DEFAULT_LOG_LIMIT);
  }

  watch(socket) {
    this.sockets.push(socket);
    socket.on('data', (chunk) => this.add(chunk, false));
    socket.on('error', () => { /* the executor is gone; its exit says so */ });
  }

  reset(limit) {
    this.chunks = [];
    this.kept = 0;
    this.dropped = 0;
    this.limit = limit;
    if (this.polling) {
      this.polling = false;
      clearTimeout(this.timer);
      clearImmediate(this.timer);
      this.timer = null;
      for (const socket of this.sockets) socket.resume();
    }
  }

  // `copy`: the chunk is the scratch buffer, reused by the next read.
  add(chunk, copy) {
    const room = this.limit - this.kept;
    const keep = Math.max(0, Math.min(room, chunk.length));
    if (keep > 0) {
      const part = keep === chunk.length && !copy ? chunk : Buffer.from(chunk.subarray(0, keep));
      this.chunks.push(part);
      this.kept += keep;
    }
    this.dropped += chunk.length - keep;
    if (this.dropped > 0 && !this.polling) {
      this.polling = true;
      for (const socket of this.sockets) socket.pause();
      this.delay = 1;
      this.timer = setTimeout(() => this.poll(), 0);
    }
  }

  poll() {
    this.timer = null;
    if (!this.polling) return;
    // Bounded, so that a fast writer cannot keep the supervisor from its other work.
    const got = this.readAvailable(4 * 1024 * 1024);
    if (got > 0) {
      this.delay = 1;
      this.timer = setImmediate(() => this.poll());
    } else {
      this.timer = setTimeout(() => this.poll(), this.delay);
      this.delay = Math.min(this.delay * 2, 50);
    }
  }

  // Reads what the sockets hold now, up to `max` bytes, without waiting; returns how much.
  readAvailable(max) {
    let got = 0;
    // Every poll ends in EAGAIN, an exception: without a stack trace it costs next to nothing.
    const traceLimit = Error.stackTraceLimit;
    Error.stackTraceLimit = 0;
    try {
      for (const socket of this.sockets) {
        const fd = socket._handle ? socket._handle.fd : -1;
        if (!(fd >= 0)) continue;
        while (got < max) {
          let n;
          try {
            n = fs.readSync(fd, SCRATCH, 0, SCRATCH.length, null);
          } catch (_) {
            break; // EAGAIN: nothing more now
          }
          if (n <= 0) break;
          got += n;
          this.add(SCRATCH.subarray(0, n), true);
        }
      }
    } finally {
      Error.stackTraceLimit = traceLimit;
    }
    return got;
  }

  // Takes everything written so far: what a stream has read but not yet passed on (read()
  // hands it to the 'data' listener), then what the sockets hold — never more than a socket
  // can hold, so that a leftover process writing as fast as this reads cannot keep it here.
  drain() {
    for (const socket of this.sockets) {
      while (socket.readableLength > 0 && socket.read() !== null) { /* passed to add */ }
    }
    this.readAvailable(DRAIN_MAX);
  }

  // What was written since the last reset, and a reset.
  take() {
    this.drain();
    const log = new LogText(this.chunks, this.dropped);
    this.reset(DEFAULT_LOG_LIMIT);
    return log;
  }

  // What was written since the last reset, as text (no reset).
  text() {
    this.drain();
    return new LogText(this.chunks, this.dropped).text();
  }

  close() {
    this.reset(0);
    for (const socket of this.sockets) socket.destroy();
    this.sockets = [];
  }
}

// A log taken from an executor: its kept chunks and how many bytes were dropped. Sent as a
// JSON string produced a chunk at a time (twice: its size, then its bytes), so that a 1 MiB
// log never exists as one string, let alone as the string, its JSON and a frame.
class LogText {
  constructor(chunks, dropped) {
    this.chunks = chunks;
    this.dropped = dropped;
    this.size = chunks.reduce((n, c) => n + c.length, 0);
  }

  truncated() {
    return this.dropped > 0 ? `\n[log truncated: ${this.dropped} bytes more]\n` : '';
  }

  // Calls `fn` with the pieces of the log as a JSON string, quotes included.
  eachJsonPiece(fn) {
    const decoder = new StringDecoder('utf8');
    const piece = (text) => { if (text) fn(JSON.stringify(text).slice(1, -1)); };
    fn('"');
    for (const chunk of this.chunks) piece(decoder.write(chunk));
    piece(decoder.end());
    piece(this.truncated());
    fn('"');
  }

  text() {
    return Buffer.concat(this.chunks, this.size).toString('utf8') + this.truncated();
  }
}

// A log that is already text (a failed load's).
class StringLog {
  constructor(text) {
    this.value = text;
    this.size = text.length;
  }

  eachJsonPiece(fn) {
    fn(JSON.stringify(this.value));
  }

  text() {
    return this.value;
  }
}

const SCRATCH = Buffer.allocUnsafe(64 * 1024);
// More than a Unix socket holds (its send buffer, net.core.wmem_max: 208 KiB by default).
const DRAIN_MAX = 16 * 1024 * 1024;

// Where packages are extracted; made if missing.
function packageBase() {
  const base = process.env.QINLING_PACKAGE_DIR || os.tmpdir();
  fs.mkdirSync(base, { recursive: true });
  return base;
}

class Supervisor {
  constructor() {
    this.pendingBind = null;
    this.bindAttempted = false;
    this.bound = false;
    this.packageDir = null;
    this.entry = null;
    this.executors = new Set();
    this.idle = [];
    this.running = new Map(); // execution id -> execution
    this.prestarted = null; // an executor started before bind, waiting for `load`
    this.idsInUse = new Set(); // execution ids of live executors
    this.reuse = false; // the bind's execution mode is `reuse`: executors run many executions
  }

  // The lowest execution id no live executor holds (null when executors share ours).
  takeId() {
    if (EXEC_IDS === null) return null;
    for (let i = 0; i < EXEC_IDS.count; i++) {
      const id = EXEC_IDS.first + i;
      if (!this.idsInUse.has(id)) {
        this.idsInUse.add(id);
        return id;
      }
    }
    throw new Error('every execution id is taken');
  }

  send(msg) {
    this.sendFrame([JSON.stringify(msg)]);
  }

  // Sends one frame whose body is the concatenation of the strings `parts`, written one
  // after the other (a result's megabyte of log is neither joined nor copied into a frame).
  sendFrame(parts) {
    let size = 0;
    for (const part of parts) size += Buffer.byteLength(part, 'utf8');
    const head = Buffer.allocUnsafe(4);
    head.writeUInt32BE(size, 0);
    writeAllSync(1, head);
    for (const part of parts) writeStringSync(1, part);
  }

  handleFrame(frame) {
    if (this.pendingBind !== null) {
      const msg = this.pendingBind;
      this.pendingBind = null;
      if (frame.length !== msg.package_size) {
        throw new ProtocolError(`package frame has ${frame.length} bytes, bind announced ${msg.package_size}`);
      }
      this.bind(msg, frame);
      return;
    }
    let msg;
    try {
      msg = JSON.parse(frame.toString('utf8'));
    } catch (err) {
      throw new ProtocolError(`malformed message: ${err.message}`);
    }
    if (msg === null || typeof msg !== 'object' || Array.isArray(msg)) {
      throw new ProtocolError('malformed message: not a JSON object');
    }
    if (msg.op === 'exec') this.exec(msg);
    else if (msg.op === 'ping') this.send({ op: 'pong', running: this.running.size });
    else if (msg.op === 'bind') {
      if (typeof msg.entry !== 'string' || !Number.isInteger(msg.package_size)) {
        throw new ProtocolError('malformed bind: needs a string entry and an integer package_size');
      }
      this.pendingBind = msg;
    } else throw new ProtocolError(`unknown op ${JSON.stringify(msg.op)}`);
  }

  async bind(msg, pkg) {
    if (this.bindAttempted) {
      this.send({ op: 'bound', ok: false, error: 'this worker has already been bound', logs: '' });
      return;
    }
    this.bindAttempted = true;
    const mode = msg.mode == null ? 'fork' : msg.mode;
    if (mode !== 'fork' && mode !== 'reuse') {
      this.send({ op: 'bound', ok: false, error: `unknown execution mode '${String(mode)}': this worker runs 'fork' or 'reuse'`, logs: '' });
      return;
    }
    this.reuse = mode === 'reuse';
    try {
      this.packageDir = fs.mkdtempSync(path.join(packageBase(), 'package-'));
      fs.chmodSync(this.packageDir, 0o755); // readable, not writable, by the executors' ids
      await extractZip(pkg, this.packageDir);
    } catch (err) {
      const text = String(err.message || err);
      let error = text.startsWith('PackageError: ') ? text : `PackageError: ${text}`;
      if (err && (err.code === 'ENOSPC' || err.code === 'EFBIG')) {
        error = `PackageError: the unpacked package does not fit in the worker's /tmp (${text}); make the package smaller`;
      }
      this.send({ op: 'bound', ok: false, error, logs: '' });
      return;
    } finally {
      // The package's memory goes back before the function loads beside the unpacked copy.
      pkg = null;
      collectGarbage();
    }
    this.entry = msg.entry;
    // The executor started with the worker, if it is still there, loads the function now.
    let ex = this.prestarted;
    this.prestarted = null;
    if (ex !== null && ex.alive) ex.channel.send({ op: 'load', dir: this.packageDir, entry: this.entry });
    else ex = this.spawnExecutor();
    ex.loaded.then((failure) => {
      if (failure === null) {
        this.bound = true;
        this.idle.push(ex);
        this.send({ op: 'bound', ok: true });
      } else {
        this.send({ op: 'bound', ok: false, error: failure.error, logs: failure.logs });
      }
    });
  }

  // Starts the executor a pool worker keeps ready for its bind (see executorMain).
  prestart() {
    try {
      this.prestarted = this.spawnExecutor();
    } catch (_) {
      this.prestarted = null; // bind starts one instead, and reports what fails then
    }
  }

  // Starts an executor: bound to the function once there is one, else waiting for `load`.
  spawnExecutor() {
    const dir = this.packageDir === null ? packageBase() : this.packageDir;
    const args = this.entry === null ? [__filename, '--executor'] : [__filename, '--executor', this.packageDir, this.entry];
    const id = this.takeId();
    const options = {
      cwd: dir,
      stdio: ['ignore', 'pipe', 'pipe', 'pipe'], // fd 3: the LineChannel
      detached: true, // its own process group: a timeout kills exactly this execution
      env: process.env,
    };
    // Its own uid and gid, no supplementary groups (libuv drops them): from uid 0 the
    // switch drops every capability before the executor's node starts.
    if (id !== null) Object.assign(options, { uid: id, gid: id });
    let child;
    try {
      child = childProcess.spawn(process.execPath, args, options);
    } catch (err) {
      if (id !== null) this.idsInUse.delete(id);
      throw err;
    }
    const log = new OutputLog();
    for (const socket of [child.stdout, child.stderr]) if (socket !== null) log.watch(socket);
    const ex = { child, log, current: null, alive: true, loaded: null, started: null };
    this.executors.add(ex);
    let settleLoaded;
    let loadSettled = false;
    const settle = (failure) => {
      loadSettled = true;
      settleLoaded(failure);
    };
    let settleStarted;
    ex.loaded = new Promise((resolve) => { settleLoaded = resolve; });
    // Settles when a pre-started executor waits for `load` (or has died).
    ex.started = new Promise((resolve) => { settleStarted = resolve; });
    ex.channel = new LineChannel(child.stdio[3], (m) => {
      if (m && m.op === 'started') settleStarted();
      else if (m && m.op === 'loaded') {
        log.drain();
        log.reset(DEFAULT_LOG_LIMIT);
        settle(null);
      } else if (m && m.op === 'load_failed') settle({ error: m.error, logs: log.text() });
      else if (m && ex.current !== null && typeof m.output === 'string') this.complete(ex, m);
    }, () => this.killGroup(ex));
    child.on('error', () => settleStarted());
    child.on('exit', (code, signal) => {
      ex.alive = false;
      settleStarted();
      this.killGroup(ex);
      this.executors.delete(ex);
      this.idle = this.idle.filter((e) => e !== ex);
      if (!loadSettled) settle({ error: `Error: the executor exited while loading the function (${signal || code})`, logs: log.text() });
      if (ex.current !== null) this.died(ex, code, signal);
      else this.killLeftovers();
      // Its leftovers are killed (above, or after its last execution): the id is free.
      if (id !== null) this.idsInUse.delete(id);
      log.close();
    });
    return ex;
  }

  killGroup(ex) {
    try { process.kill(-ex.child.pid, 'SIGKILL'); } catch (_) { /* gone */ }
    try { ex.child.kill('SIGKILL'); } catch (_) { /* gone */ }
  }

  exec(msg) {
    const id = msg.id;
    if (typeof id !== 'string' || typeof msg.timeout_ms !== 'number' || !(msg.timeout_ms > 0)) {
      throw new ProtocolError('malformed exec: needs a string id and a positive timeout_ms');
    }
    const kwargs = msg.kwargs == null ? null : msg.kwargs;
    const args = msg.args == null ? [] : msg.args;
    if ((kwargs !== null && (typeof kwargs !== 'object' || Array.isArray(kwargs))) || !Array.isArray(args)) {
      throw new ProtocolError('malformed exec: kwargs must be an object or null, args a list');
    }
    if (!this.bound) {
      this.send({ op: 'result', id, success: false, output: 'The worker has no function bound.', duration: 0, logs: '', cpu_ms: 0, max_rss_kb: 0, reason: 'exception' });
      return;
    }
    const logLimit = Number.isInteger(msg.log_limit) && msg.log_limit >= 0 ? msg.log_limit : DEFAULT_LOG_LIMIT;
    // Qinling's Node convention: handler(context, input); an object input is the object,
    // a positional input its raw string, no input null.
    const input = kwargs !== null ? kwargs : (args.length ? args[0] : null);
    const execution = { id, input, context: msg.context || {}, timeoutMs: msg.timeout_ms, logLimit, started: 0, timer: null, timedOut: false, executor: null };
    this.running.set(id, execution);
    let ex = this.idle.pop();
    if (ex === undefined) ex = this.spawnExecutor();
    ex.current = execution;
    execution.executor = ex;
    ex.loaded.then((failure) => {
      if (ex.current !== execution) return; // died while loading, already answered
      if (failure !== null) {
        this.answer(execution, { success: false, output: JSON.stringify(failure.error), reason: 'exception', cpu_ms: 0, max_rss_kb: 0 }, new StringLog(failure.logs));
        ex.current = null;
        this.killGroup(ex);
        return;
      }
      // What the executor printed since its last execution is not this one's.
      ex.log.drain();
      ex.log.reset(execution.logLimit);
      ex.log.add(Buffer.from(`Start execution: ${id}\n`), false);
      execution.started = process.hrtime.bigint();
      execution.timer = setTimeout(() => {
        execution.timedOut = true;
        execution.cpuAtKill = readProcCpuMs(ex.child.pid);
        this.killGroup(ex);
      }, Math.max(1, Math.round(execution.timeoutMs)));
      ex.channel.send({ op: 'exec', id, input: execution.input, context: execution.context });
    });
  }

  complete(ex, record) {
    const execution = ex.current;
    ex.current = null;
    clearTimeout(execution.timer);
    ex.log.drain();
    ex.log.add(Buffer.from(`Finished execution: ${execution.id}\n`), false);
    this.answer(execution, record, ex.log.take());
    if (ex.alive) {
      // In `fork` mode an executor runs one execution: the next one gets a process that
      // has only loaded the module.
      if (this.reuse && this.idle.length < MAX_IDLE) this.idle.push(ex);
      else this.retire(ex);
    }
    this.killLeftovers();
    // Keep a second executor warm, so that a concurrent execution does not wait for Node
    // (only two: each costs ~8 MiB of the worker's memory_size). It is started after an
    // execution, not beside it: a Node start takes tens of ms of the worker's cpu quota,
    // which the execution (a new function's first, say) would otherwise wait for.
    // At the far end of the idle list: the warm one that just ran is taken first.
    // In `fork` mode one idle executor is the spare the next execution takes.
    if (this.reuse ? this.executors.size < 2 : this.idle.length === 0) {
      try {
        this.idle.unshift(this.spawnExecutor());
      } catch (_) {
        // No spare (out of fds or processes): the next execution starts its own.
      }
    }
  }

  // Ends an executor the worker has no more use for: it leaves the live set now (so it is
  // not counted as warm), and its exit kills and reaps what it left.
  retire(ex) {
    this.executors.delete(ex);
    this.killGroup(ex);
  }

  // Kills what finished executions left behind: every process of the jail (its own pid
  // namespace, so /proc shows nothing else) that is not pid 1 (the reaper), this supervisor,
  // an executor, or a descendant or process-group member of an executor that is running an
  // execution. Children an execution started (detached ones included) and daemons that
  // escaped to pid 1 are all caught; pid 1 reaps what is killed. The scan repeats until it
  // finds nothing new, so a process forking while it is killed leaves no child behind.
  killLeftovers() {
    if (!OWN_PID_NAMESPACE) return;
    const keep = new Set([1, process.pid]);
    const busy = new Set();
    for (const ex of this.executors) {
      keep.add(ex.child.pid);
      if (ex.current !== null) busy.add(ex.child.pid);
    }
    const killed = new Set();
    for (let pass = 0; pass < MAX_LEFTOVER_PASSES; pass++) {
      let entries;
      try { entries = fs.readdirSync('/proc'); } catch (_) { return; }
      const parent = new Map();
      const group = new Map();
      for (const entry of entries) {
        if (!/^[0-9]+$/.test(entry)) continue;
        const fields = procStat(Number(entry));
        if (fields === null || fields[0] === 'Z') continue;
        parent.set(Number(entry), Number(fields[1]));
        group.set(Number(entry), Number(fields[2]));
      }
      const runningOwns = (pid) => {
        for (let p = pid, hops = 0; p > 1 && hops < 4096; p = parent.get(p), hops++) {
          if (busy.has(p) || busy.has(group.get(p))) return true;
          if (!parent.has(p)) return false;
        }
        return false;
      };
      let found = 0;
      for (const pid of parent.keys()) {
        if (keep.has(pid) || killed.has(pid) || runningOwns(pid)) continue;
        try { process.kill(pid, 'SIGKILL'); } catch (_) { /* gone */ }
        killed.add(pid);
        found++;
      }
      if (found === 0) return;
    }
  }

  died(ex, code, signal) {
    const execution = ex.current;
    ex.current = null;
    clearTimeout(execution.timer);
    this.killLeftovers();
    const logs = ex.log.take();
    let record;
    if (execution.timedOut) record = { success: false, output: JSON.stringify(TIMEOUT_MSG), reason: 'timeout' };
    else if (code === 0) record = { success: false, output: JSON.stringify(NO_RESULT_MSG), reason: 'exception' };
    else record = { success: false, output: JSON.stringify(RESOURCE_MSG), reason: 'resource' };
    record.cpu_ms = execution.cpuAtKill || 0;
    record.max_rss_kb = 0;
    this.answer(execution, record, logs);
  }

  // Sends an execution's result; `log` is a LogText or a StringLog.
  answer(execution, record, log) {
    this.running.delete(execution.id);
    const duration = execution.started ? Number(process.hrtime.bigint() - execution.started) / 1e9 : 0;
    const head = '{"op":"result","id":' + JSON.stringify(execution.id) + ',"success":' + (record.success ? 'true' : 'false') +
      ',"output":' + record.output + ',"duration":' + duration.toFixed(3) + ',"logs":';
    const tail = ',"cpu_ms":' + (record.cpu_ms | 0) + ',"max_rss_kb":' + (record.max_rss_kb | 0) + ',"reason":' + JSON.stringify(record.reason) + '}';
    let size = Buffer.byteLength(head, 'utf8') + Buffer.byteLength(tail, 'utf8');
    log.eachJsonPiece((piece) => { size += Buffer.byteLength(piece, 'utf8'); });
    if (size > MAX_FRAME) {
      const cut = log.text().slice(0, MAX_FRAME / 4) + `\n[result too large: ${size} bytes]\n`;
      this.send({ op: 'result', id: execution.id, success: false, output: RESOURCE_MSG, duration: Number(duration.toFixed(3)), logs: cut, cpu_ms: record.cpu_ms | 0, max_rss_kb: record.max_rss_kb | 0, reason: 'resource' });
    } else {
      const frameHead = Buffer.allocUnsafe(4);
      frameHead.writeUInt32BE(size, 0);
      writeAllSync(1, frameHead);
      writeStringSync(1, head);
      log.eachJsonPiece((piece) => writeStringSync(1, piece));
      writeStringSync(1, tail);
    }
    // What a large log left behind goes now, not whenever V8 next collects: a worker at
    // 32 MiB has no room to keep megabytes of garbage until then.
    if (log.size > LARGE_LOG) setImmediate(() => collectGarbage());
  }

  shutdown() {
    for (const ex of this.executors) this.killGroup(ex);
    if (this.packageDir) {
      try { fs.rmSync(this.packageDir, { recursive: true, force: true }); } catch (_) { /* best effort */ }
    }
  }
}

function supervisorMain() {
  const sup = new Supervisor();
  const fail = (code, msg) => {
    try { if (msg) sup.send(msg); } catch (_) { /* engine gone */ }
    sup.shutdown();
    process.exit(code);
  };
  process.on('uncaughtException', (err) => {
    if (err instanceof ProtocolError) fail(1, { op: 'error', error: err.message });
    else if (err && err.code === 'EPIPE') fail(0, null);
    else fail(1, { op: 'error', error: `worker shim failure: ${errorStack(err)}` });
  });
  new FrameReader(0, (frame) => sup.handleFrame(frame), () => fail(0, null)).start();
  // Ready once the pre-started executor is up (or could not be started): a pool worker
  // that says ready can then be bound without waiting for Node to start.
  const ready = () => sup.send({ op: 'ready', pid: process.pid, runtime: RUNTIME, version: process.versions.node });
  sup.prestart();
  if (sup.prestarted === null) ready();
  else sup.prestarted.started.then(ready);
}

if (process.argv[2] === '--executor') executorMain(process.argv[3], process.argv[4]);
else supervisorMain();
