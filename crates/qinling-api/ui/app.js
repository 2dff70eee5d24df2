// Qinling's dashboard: a single page over the v1 API, with the signed-in user's token, so it
// can do and see exactly what the API lets that user do and see. No build step, no
// dependencies. Everything a server sends is put in the page as text (never as HTML).
'use strict';

(function () {
  const main = document.getElementById('main');
  const nav = document.getElementById('nav');
  const TOKEN_KEY = 'qinling.token';
  let timers = [];

  // ---- small helpers -------------------------------------------------------------------

  /** An element: h('td', {class: 'num'}, 'text', child, ...). Strings become text nodes. */
  function h(tag, attrs, ...children) {
    const el = document.createElement(tag);
    for (const [k, v] of Object.entries(attrs || {})) {
      if (v === undefined || v === null || v === false) continue;
      if (k.startsWith('on')) el.addEventListener(k.slice(2), v);
      else if (k === 'value') el.value = v;
      else el.setAttribute(k, v === true ? '' : String(v));
    }
    for (const c of children.flat()) {
      if (c === null || c === undefined || c === false) continue;
      el.append(c instanceof Node ? c : document.createTextNode(String(c)));
    }
    return el;
  }

  function toast(text, bad) {
    const box = document.getElementById('toast');
    const item = h('div', { class: bad ? 'bad' : '' }, text);
    box.append(item);
    setTimeout(() => item.remove(), bad ? 8000 : 3000);
  }

  function token() { return sessionStorage.getItem(TOKEN_KEY) || ''; }

  class ApiError extends Error {
    constructor(status, message) { super(message); this.status = status; }
  }

  /** Calls the API: JSON (or FormData / URLSearchParams) body; JSON or text answer. */
  async function api(method, path, body, opts) {
    const headers = { 'Accept': (opts && opts.accept) || 'application/json' };
    const t = token();
    if (t) headers['X-Auth-Token'] = t;
    let payload;
    if (body instanceof FormData || body instanceof URLSearchParams) payload = body;
    else if (body !== undefined) { headers['Content-Type'] = 'application/json'; payload = JSON.stringify(body); }
    const r = await fetch(path, { method, headers, body: payload });
    const text = await r.text();
    if (r.status === 401 && !(opts && opts.signingIn)) {
      sessionStorage.removeItem(TOKEN_KEY);
      location.hash = '#/login';
      throw new ApiError(401, 'Your token was refused: sign in again.');
    }
    if (!r.ok) {
      let message = text;
      try {
        const j = JSON.parse(text);
        message = j.faultstring || j.description || j.message || (j.error && j.error.message) || text;
      } catch (_) { /* plain text */ }
      throw new ApiError(r.status, `${r.status}: ${message || r.statusText}`);
    }
    if (opts && opts.text) return text;
    return text ? JSON.parse(text) : null;
  }

  function fmtTime(s) { return s ? s.replace('T', ' ').replace('Z', '') : ''; }
  function mib(bytes) { return bytes == null ? '' : `${(bytes / 1048576).toFixed(0)} MiB`; }
  function statusCell(s) { return h('span', { class: `status-${s}` }, s); }
  function fact(dl, k, v) { dl.append(h('dt', {}, k), h('dd', {}, v === null || v === undefined ? '—' : v)); }
  function every(ms, fn) { fn(); timers.push(setInterval(fn, ms)); }

  function table(columns, rows, empty) {
    if (!rows.length) return h('p', { class: 'muted' }, empty || 'None.');
    return h('table', {},
      h('thead', {}, h('tr', {}, columns.map(c => h('th', { class: c.num ? 'num' : '' }, c.title)))),
      h('tbody', {}, rows.map(r => h('tr', {}, columns.map(c => h('td', { class: c.num ? 'num' : '' }, c.cell(r)))))));
  }

  function guard(fn) {
    return async function (ev) {
      if (ev && ev.preventDefault) ev.preventDefault();
      const button = ev && ev.submitter ? ev.submitter : (ev && ev.target && ev.target.tagName === 'BUTTON' ? ev.target : null);
      if (button) button.disabled = true;
      try { await fn.call(this, ev); } catch (e) { toast(e.message, true); } finally { if (button) button.disabled = false; }
    };
  }

  // ---- zip: a single file uploaded as a function package (the API takes zips) ------------

  const CRC_TABLE = (() => {
    const t = new Uint32Array(256);
    for (let n = 0; n < 256; n++) {
      let c = n;
      for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
      t[n] = c >>> 0;
    }
    return t;
  })();

  function crc32(bytes) {
    let c = 0xffffffff;
    for (let i = 0; i < bytes.length; i++) c = CRC_TABLE[(c ^ bytes[i]) & 0xff] ^ (c >>> 8);
    return (c ^ 0xffffffff) >>> 0;
  }

  /** A zip holding `bytes` as `name` (stored, not compressed). */
  function zipOne(name, bytes) {
    const nameBytes = new TextEncoder().encode(name);
    const crc = crc32(bytes);
    const local = new DataView(new ArrayBuffer(30));
    local.setUint32(0, 0x04034b50, true); local.setUint16(4, 20, true);
    local.setUint32(14, crc, true); local.setUint32(18, bytes.length, true); local.setUint32(22, bytes.length, true);
    local.setUint16(26, nameBytes.length, true);
    const central = new DataView(new ArrayBuffer(46));
    central.setUint32(0, 0x02014b50, true); central.setUint16(4, 0x031e, true); central.setUint16(6, 20, true);
    central.setUint32(16, crc, true); central.setUint32(20, bytes.length, true); central.setUint32(24, bytes.length, true);
    central.setUint16(28, nameBytes.length, true);
    central.setUint32(38, (0o100755 << 16) >>> 0, true); // a regular file, rwxr-xr-x
    const centralAt = 30 + nameBytes.length + bytes.length;
    const end = new DataView(new ArrayBuffer(22));
    end.setUint32(0, 0x06054b50, true); end.setUint16(8, 1, true); end.setUint16(10, 1, true);
    end.setUint32(12, 46 + nameBytes.length, true); end.setUint32(16, centralAt, true);
    return new Blob([local, nameBytes, bytes, central, nameBytes, end], { type: 'application/zip' });
  }

  // ---- charts ----------------------------------------------------------------------------

  /** Draws series (arrays of numbers or nulls) as lines on a canvas. */
  function drawChart(canvas, series, colors) {
    const ratio = window.devicePixelRatio || 1;
    const w = canvas.clientWidth || 260, hgt = canvas.clientHeight || 90;
    canvas.width = w * ratio; canvas.height = hgt * ratio;
    const g = canvas.getContext('2d');
    g.scale(ratio, ratio);
    g.clearRect(0, 0, w, hgt);
    g.strokeStyle = '#d9dee5'; g.lineWidth = 1;
    g.beginPath(); g.moveTo(0, hgt - 0.5); g.lineTo(w, hgt - 0.5); g.stroke();
    let max = 0;
    for (const s of series) for (const v of s) if (v !== null && v > max) max = v;
    if (max === 0) max = 1;
    series.forEach((s, i) => {
      g.strokeStyle = colors[i]; g.lineWidth = 1.5; g.beginPath();
      let started = false;
      s.forEach((v, x) => {
        if (v === null) { started = false; return; }
        const px = s.length > 1 ? (x / (s.length - 1)) * (w - 2) + 1 : w / 2;
        const py = hgt - 4 - (v / max) * (hgt - 10);
        if (started) g.lineTo(px, py); else { g.moveTo(px, py); started = true; }
      });
      g.stroke();
      // Dots, so that a lone value between gaps shows too.
      g.fillStyle = colors[i];
      s.forEach((v, x) => {
        if (v === null) return;
        const px = s.length > 1 ? (x / (s.length - 1)) * (w - 2) + 1 : w / 2;
        g.fillRect(px - 1, hgt - 4 - (v / max) * (hgt - 10) - 1, 2, 2);
      });
    });
    g.fillStyle = '#5f6b7a'; g.font = '10px system-ui';
    g.fillText(String(Math.round(max * 100) / 100), 2, 10);
  }

  function chartBox(id, title) {
    const canvas = h('canvas', { id: `chart-${id}` });
    const caption = h('div', { class: 'caption', id: `caption-${id}` }, '…');
    return { el: h('div', { class: 'chart' }, h('h3', {}, title), canvas, caption), canvas, caption };
  }

  // ---- pages -----------------------------------------------------------------------------

  function loginPage(message) {
    nav.hidden = true;
    const input = h('input', { id: 'token', type: 'password', autocomplete: 'off', placeholder: 'API token or Keystone token' });
    const error = h('p', { class: 'error', id: 'login-error' }, message || '');
    const form = h('form', {
      id: 'login-form',
      onsubmit: guard(async () => {
        const t = input.value.trim();
        sessionStorage.setItem(TOKEN_KEY, t);
        try {
          await api('GET', '/v1/functions', undefined, { signingIn: true });
        } catch (e) {
          sessionStorage.removeItem(TOKEN_KEY);
          error.textContent = e.status === 401 ? 'The server refused this token.' : e.message;
          return;
        }
        location.hash = '#/functions';
      }),
    },
    h('label', {}, 'Token', input),
    h('p', { class: 'muted' }, 'A token from `qinling token create` (auth mode token) or a Keystone token. On a server without authentication, leave it empty.'),
    h('button', { type: 'submit', id: 'signin' }, 'Sign in'), error);
    main.replaceChildren(h('section', { class: 'card login' }, h('h1', {}, 'Sign in to Qinling'), form));
    input.focus();
  }

  async function runtimesById() {
    const { runtimes } = await api('GET', '/v1/runtimes');
    return new Map(runtimes.map(r => [r.id, r]));
  }

  async function functionsPage() {
    const [{ functions }, runtimes] = await Promise.all([api('GET', '/v1/functions'), runtimesById()]);
    const runtimeSelect = h('select', { name: 'runtime_id', id: 'create-runtime' },
      [...runtimes.values()].filter(r => r.status === 'available').map(r => h('option', { value: r.id }, r.name || r.image)));
    const file = h('input', { type: 'file', name: 'package', id: 'create-file', required: true });
    const form = h('form', {
      class: 'inline', id: 'create-function',
      onsubmit: guard(async (ev) => {
        const f = ev.target;
        const chosen = file.files[0];
        if (!chosen) throw new Error('Choose a file: a zip package, or one source file.');
        const bytes = new Uint8Array(await chosen.arrayBuffer());
        const isZip = bytes.length > 3 && bytes[0] === 0x50 && bytes[1] === 0x4b && bytes[2] === 3 && bytes[3] === 4;
        const isWasm = bytes.length > 3 && bytes[0] === 0 && bytes[1] === 0x61 && bytes[2] === 0x73 && bytes[3] === 0x6d;
        const body = new FormData();
        body.append('runtime_id', f.runtime_id.value);
        body.append('code', JSON.stringify({ source: 'package' }));
        for (const k of ['name', 'entry', 'cpu', 'timeout']) if (f[k].value.trim()) body.append(k, f[k].value.trim());
        if (f.memory.value.trim()) body.append('memory_size', String(Math.round(Number(f.memory.value) * 1048576)));
        let entry = f.entry.value.trim();
        if (!entry && !isZip && !isWasm) {
          // One source file: module = its name; python3/nodejs call `main`.
          const stem = chosen.name.replace(/\.[^.]*$/, '');
          const kind = (runtimes.get(f.runtime_id.value) || {}).image;
          entry = kind === 'custom' ? chosen.name : `${stem}.main`;
          body.set('entry', entry);
        }
        body.append('package', isZip || isWasm ? chosen : zipOne(chosen.name, bytes), isZip ? chosen.name : isWasm ? chosen.name : 'package.zip');
        const created = await api('POST', '/v1/functions', body);
        toast(`Created function ${created.name || created.id}`);
        location.hash = `#/functions/${created.id}`;
      }),
    },
    h('label', {}, 'Name', h('input', { name: 'name', id: 'create-name' })),
    h('label', {}, 'Runtime', runtimeSelect),
    h('label', {}, 'Package (zip or one file)', file),
    h('label', {}, 'Entry (module.function)', h('input', { name: 'entry', id: 'create-entry', placeholder: 'guessed from the file' })),
    h('label', {}, 'Memory (MiB)', h('input', { name: 'memory', type: 'number', min: 1, placeholder: 'default' })),
    h('label', {}, 'Timeout (s)', h('input', { name: 'timeout', type: 'number', min: 1, placeholder: 'default' })),
    h('label', {}, 'CPU (millicores)', h('input', { name: 'cpu', type: 'number', min: 1, placeholder: 'default' })),
    h('button', { type: 'submit', id: 'create-submit' }, 'Create'));
    main.replaceChildren(
      h('h1', {}, 'Functions'),
      h('section', { class: 'card' }, h('h2', {}, 'New function'), form),
      table([
        { title: 'Name', cell: f => h('a', { href: `#/functions/${f.id}`, class: 'function-link' }, f.name || f.id) },
        { title: 'Runtime', cell: f => { const r = runtimes.get(f.runtime_id); return r ? (r.name || r.image) : f.runtime_id; } },
        { title: 'Entry', cell: f => h('code', {}, f.entry || '') },
        { title: 'Memory', num: true, cell: f => mib(f.memory_size) },
        { title: 'Timeout', num: true, cell: f => `${f.timeout} s` },
        { title: 'Executions', num: true, cell: f => f.count },
        { title: 'Created', cell: f => fmtTime(f.created_at) },
      ], functions, 'No functions yet: create one above.'));
  }

  async function functionPage(id) {
    const [f, runtimes] = await Promise.all([api('GET', `/v1/functions/${encodeURIComponent(id)}`), runtimesById()]);
    const rt = runtimes.get(f.runtime_id);
    const facts = h('dl', { class: 'facts' });
    fact(facts, 'ID', h('code', {}, f.id));
    fact(facts, 'Runtime', rt ? (rt.name || rt.image) : f.runtime_id);
    fact(facts, 'Entry', h('code', {}, f.entry || ''));
    fact(facts, 'Execution mode', f.execution_mode);
    fact(facts, 'Executions', f.count);
    fact(facts, 'Latest version', f.latest_version);
    fact(facts, 'Created', fmtTime(f.created_at));

    const limits = h('form', {
      class: 'inline', id: 'edit-limits',
      onsubmit: guard(async (ev) => {
        const t = ev.target;
        const body = new URLSearchParams();
        body.set('cpu', t.cpu.value.trim());
        body.set('memory_size', String(Math.round(Number(t.memory.value) * 1048576)));
        body.set('timeout', t.timeout.value.trim());
        await api('PUT', `/v1/functions/${f.id}`, body);
        toast('Limits saved');
        route();
      }),
    },
    h('label', {}, 'CPU (millicores)', h('input', { name: 'cpu', type: 'number', value: f.cpu })),
    h('label', {}, 'Memory (MiB)', h('input', { name: 'memory', type: 'number', value: Math.round(f.memory_size / 1048576) })),
    h('label', {}, 'Timeout (s)', h('input', { name: 'timeout', type: 'number', value: f.timeout })),
    h('button', { type: 'submit' }, 'Save limits'));

    const output = h('div', { id: 'invoke-output' });
    const invoke = h('form', {
      class: 'inline', id: 'invoke',
      onsubmit: guard(async (ev) => {
        const t = ev.target;
        const body = { function_id: f.id, sync: t.sync.checked };
        if (t.input.value.trim()) body.input = t.input.value;
        let e = await api('POST', '/v1/executions', body);
        output.replaceChildren(h('p', {}, 'Execution ', h('a', { href: `#/executions/${e.id}` }, e.id), ' is ', statusCell(e.status)));
        while (e.status === 'running') {
          await new Promise(r => setTimeout(r, 500));
          e = await api('GET', `/v1/executions/${e.id}`);
        }
        showExecution(output, e, true);
      }),
    },
    h('label', {}, 'Input (JSON object → keyword arguments; anything else → one argument)', h('textarea', { name: 'input', id: 'invoke-input', placeholder: '{"name": "Qinling"}' })),
    h('label', {}, 'Sync', h('input', { type: 'checkbox', name: 'sync', checked: true })),
    h('button', { type: 'submit', id: 'invoke-submit' }, 'Invoke'));

    const charts = {
      rate: chartBox('rate', 'Executions per second'),
      latency: chartBox('latency', 'Duration p50 / p99 (ms)'),
      errors: chartBox('errors', 'Failed and errored'),
      cold: chartBox('cold', 'Cold starts'),
      workers: chartBox('workers', 'Workers'),
    };
    const workerHistory = [];
    const versions = h('div', { id: 'versions' });
    const aliases = h('div', { id: 'aliases' });
    const workers = h('div', { id: 'workers' });

    main.replaceChildren(
      h('h1', {}, `Function ${f.name || f.id}`),
      h('section', { class: 'card' }, facts),
      h('section', { class: 'card' }, h('h2', {}, 'Invoke'), invoke, output),
      h('section', { class: 'card' }, h('h2', {}, 'Live (last 5 minutes)'),
        h('div', { class: 'charts' }, Object.values(charts).map(c => c.el))),
      h('section', { class: 'card' }, h('h2', {}, 'Limits'), limits),
      h('section', { class: 'card' }, h('h2', {}, 'Versions'), versions),
      h('section', { class: 'card' }, h('h2', {}, 'Aliases'), aliases),
      h('section', { class: 'card' }, h('h2', {}, 'Workers'), workers),
      h('section', { class: 'card' }, h('button', {
        class: 'danger', id: 'delete-function',
        onclick: guard(async () => {
          if (!confirm(`Delete function ${f.name || f.id}?`)) return;
          await api('DELETE', `/v1/functions/${f.id}`);
          toast('Deleted');
          location.hash = '#/functions';
        }),
      }, 'Delete function')));

    every(2000, async () => {
      let st;
      try { st = await api('GET', `/v1/functions/${f.id}/stats?minutes=5`); } catch (e) { return; }
      const step = st.step_seconds;
      const pts = st.points;
      drawChart(charts.rate.canvas, [pts.map(p => p.executions / step)], ['#2364aa']);
      drawChart(charts.latency.canvas, [pts.map(p => p.p50_ms), pts.map(p => p.p99_ms)], ['#2364aa', '#c77700']);
      drawChart(charts.errors.canvas, [pts.map(p => p.failed), pts.map(p => p.errors)], ['#b3261e', '#7a1fa2']);
      drawChart(charts.cold.canvas, [pts.map(p => p.cold_starts)], ['#1b7f3b']);
      workerHistory.push(st.workers);
      if (workerHistory.length > 150) workerHistory.shift();
      drawChart(charts.workers.canvas, [workerHistory], ['#2364aa']);
      const t = st.totals;
      const last = pts[pts.length - 1];
      charts.rate.caption.replaceChildren(
        h('span', { id: 'stat-executions', 'data-value': t.executions }, `${t.executions}`), ' executions in 5 min; now ',
        `${(last.executions / step).toFixed(2)}/s`);
      charts.latency.caption.textContent = `p50 ${t.p50_ms ?? '—'} ms, p99 ${t.p99_ms ?? '—'} ms`;
      charts.errors.caption.textContent = `${t.failed} failed, ${t.errors} errors`;
      charts.cold.caption.textContent = `${t.cold_starts} cold starts`;
      charts.workers.caption.replaceChildren(h('span', { id: 'stat-workers' }, `${st.workers}`), ' workers now');
      main.querySelector('#chart-rate').setAttribute('data-total', String(t.executions));
    });

    loadVersions(f, versions);
    loadAliases(f, aliases);
    // Listing workers is an admin's right (the count is in the charts): asked for on demand,
    // so a member's page makes no request bound to be refused.
    workers.replaceChildren(h('button', { class: 'plain', id: 'show-workers', onclick: guard(() => loadWorkers(f, workers)) }, 'Show workers (admins)'));
  }

  async function loadVersions(f, box) {
    const { function_versions: versions } = await api('GET', `/v1/functions/${f.id}/versions`);
    const form = h('form', {
      class: 'inline',
      onsubmit: guard(async (ev) => {
        const d = ev.target.description.value.trim();
        await api('POST', `/v1/functions/${f.id}/versions`, d ? { description: d } : {});
        toast('Version created');
        loadVersions(f, box);
      }),
    }, h('label', {}, 'Description', h('input', { name: 'description' })), h('button', { type: 'submit' }, 'Create version'));
    box.replaceChildren(table([
      { title: 'Version', num: true, cell: v => v.version_number },
      { title: 'Description', cell: v => v.description || '' },
      { title: 'Executions', num: true, cell: v => v.count },
      { title: 'Created', cell: v => fmtTime(v.created_at) },
    ], versions, 'No versions: version 0 is the latest code.'), form);
  }

  async function loadAliases(f, box) {
    const { function_aliases: aliases } = await api('GET', '/v1/aliases');
    const mine = aliases.filter(a => a.function_id === f.id);
    const form = h('form', {
      class: 'inline',
      onsubmit: guard(async (ev) => {
        const t = ev.target;
        await api('POST', '/v1/aliases', { name: t.name.value.trim(), function_id: f.id, function_version: Number(t.version.value || 0) });
        toast('Alias created');
        loadAliases(f, box);
      }),
    }, h('label', {}, 'Name', h('input', { name: 'name', required: true })),
    h('label', {}, 'Version', h('input', { name: 'version', type: 'number', min: 0, value: 0 })),
    h('button', { type: 'submit' }, 'Create alias'));
    box.replaceChildren(table([
      { title: 'Name', cell: a => a.name },
      { title: 'Version', num: true, cell: a => a.function_version },
      { title: 'Description', cell: a => a.description || '' },
    ], mine, 'No aliases.'), form);
  }

  async function loadWorkers(f, box) {
    let workers;
    try {
      ({ workers } = await api('GET', `/v1/functions/${f.id}/workers`));
    } catch (e) {
      box.replaceChildren(h('p', { class: 'muted' }, e.status === 403 ? 'Workers are shown to admins.' : e.message));
      return;
    }
    const act = (what, body) => guard(async () => {
      await api('POST', `/v1/functions/${f.id}/${what}`, body);
      toast(`${what.replace('_', ' ')}: done`);
      loadWorkers(f, box);
    });
    box.replaceChildren(table([
      { title: 'Worker', cell: w => h('code', {}, w.worker_name || '') },
      { title: 'Version', num: true, cell: w => w.function_version },
      { title: 'Node', cell: w => w.node || '' },
    ], workers, 'No workers (the function is idle).'),
    h('p', {},
      h('button', { class: 'plain', onclick: act('scale_up', { count: 1 }) }, 'Scale up'), ' ',
      h('button', { class: 'plain', onclick: act('scale_down', { count: 1 }) }, 'Scale down'), ' ',
      h('button', { class: 'plain', onclick: act('detach') }, 'Detach')));
  }

  async function showExecution(box, e, withLog) {
    let result = e.result;
    try { result = JSON.stringify(JSON.parse(e.result).output, null, 2); } catch (_) { /* as is */ }
    const facts = h('dl', { class: 'facts' });
    fact(facts, 'Status', statusCell(e.status));
    fact(facts, 'Duration', e.duration_ms == null ? null : `${e.duration_ms} ms`);
    fact(facts, 'Cold start', e.cold_start_ms == null ? 'no (warm)' : `${e.cold_start_ms} ms`);
    fact(facts, 'CPU', e.cpu_ms == null ? null : `${e.cpu_ms} ms`);
    fact(facts, 'Peak memory', e.memory_peak_kb == null ? null : `${(e.memory_peak_kb / 1024).toFixed(1)} MiB`);
    fact(facts, 'Memory limit', mib(e.memory_size));
    if (e.memory_size != null && e.duration_ms != null) {
      fact(facts, 'GiB-seconds', (e.memory_size / 1073741824 * e.duration_ms / 1000).toFixed(6));
    }
    fact(facts, 'Trace', e.trace_id ? h('code', {}, e.trace_id) : null);
    fact(facts, 'Request', e.request_id ? h('code', {}, e.request_id) : null);
    const parts = [facts, h('h2', {}, 'Result'), h('pre', { id: 'execution-result' }, result ?? '')];
    if (withLog) {
      let log = '';
      try { log = await api('GET', `/v1/executions/${e.id}/log`, undefined, { text: true, accept: 'text/plain' }); } catch (err) { log = err.message; }
      parts.push(h('h2', {}, 'Log'), h('pre', { id: 'execution-log' }, log));
    }
    box.replaceChildren(h('p', {}, 'Execution ', h('a', { href: `#/executions/${e.id}` }, h('code', {}, e.id))), ...parts);
  }

  async function executionsPage(query) {
    const params = new URLSearchParams(query);
    const qs = new URLSearchParams();
    for (const k of ['function_id', 'status']) if (params.get(k)) qs.set(k, params.get(k));
    const { executions } = await api('GET', `/v1/executions${qs.toString() ? '?' + qs : ''}`);
    executions.sort((a, b) => (a.created_at < b.created_at ? 1 : -1));
    const form = h('form', {
      class: 'inline', id: 'execution-filter',
      onsubmit: (ev) => {
        ev.preventDefault();
        const q = new URLSearchParams();
        if (ev.target.function_id.value.trim()) q.set('function_id', ev.target.function_id.value.trim());
        if (ev.target.status.value) q.set('status', ev.target.status.value);
        location.hash = `#/executions?${q}`;
      },
    },
    h('label', {}, 'Function ID', h('input', { name: 'function_id', value: params.get('function_id') || '' })),
    h('label', {}, 'Status', h('select', { name: 'status' }, ['', 'running', 'success', 'failed', 'error'].map(s =>
      h('option', { value: s, selected: s === (params.get('status') || '') }, s || 'any')))),
    h('button', { type: 'submit' }, 'Filter'));
    main.replaceChildren(h('h1', {}, 'Executions'), h('section', { class: 'card' }, form),
      table([
        { title: 'ID', cell: e => h('a', { href: `#/executions/${e.id}` }, h('code', {}, e.id.slice(0, 8))) },
        { title: 'Function', cell: e => h('a', { href: `#/functions/${e.function_id}` }, h('code', {}, e.function_id.slice(0, 8))) },
        { title: 'Version', num: true, cell: e => e.function_version },
        { title: 'Status', cell: e => statusCell(e.status) },
        { title: 'Sync', cell: e => (e.sync ? 'yes' : 'no') },
        { title: 'Duration', num: true, cell: e => (e.duration_ms == null ? '' : `${e.duration_ms} ms`) },
        { title: 'Created', cell: e => fmtTime(e.created_at) },
      ], executions.slice(0, 500), 'No executions.'));
  }

  async function executionPage(id) {
    const e = await api('GET', `/v1/executions/${encodeURIComponent(id)}`);
    const box = h('section', { class: 'card' });
    main.replaceChildren(h('h1', {}, 'Execution'), box);
    const inputBox = h('pre', {}, e.input ?? '');
    await showExecution(box, e, true);
    box.append(h('h2', {}, 'Input'), inputBox);
  }

  async function runtimesPage() {
    const { runtimes } = await api('GET', '/v1/runtimes');
    main.replaceChildren(h('h1', {}, 'Runtimes'), table([
      { title: 'Name', cell: r => r.name || '' },
      { title: 'Image', cell: r => h('code', {}, r.image) },
      { title: 'Status', cell: r => r.status },
      { title: 'ID', cell: r => h('code', {}, r.id) },
    ], runtimes));
  }

  async function jobsPage() {
    const { jobs } = await api('GET', '/v1/jobs');
    const form = h('form', {
      class: 'inline',
      onsubmit: guard(async (ev) => {
        const t = ev.target;
        const body = { function_id: t.function_id.value.trim(), pattern: t.pattern.value.trim() };
        if (t.name.value.trim()) body.name = t.name.value.trim();
        if (t.input.value.trim()) body.function_input = t.input.value.trim();
        await api('POST', '/v1/jobs', body);
        toast('Job created');
        route();
      }),
    },
    h('label', {}, 'Name', h('input', { name: 'name' })),
    h('label', {}, 'Function ID', h('input', { name: 'function_id', required: true })),
    h('label', {}, 'Cron pattern', h('input', { name: 'pattern', placeholder: '*/5 * * * *', required: true })),
    h('label', {}, 'Input', h('input', { name: 'input' })),
    h('button', { type: 'submit' }, 'Create job'));
    main.replaceChildren(h('h1', {}, 'Jobs'), h('section', { class: 'card' }, form), table([
      { title: 'Name', cell: j => j.name || '' },
      { title: 'Function', cell: j => h('a', { href: `#/functions/${j.function_id}` }, h('code', {}, (j.function_id || '').slice(0, 8))) },
      { title: 'Pattern', cell: j => h('code', {}, j.pattern || '') },
      { title: 'Status', cell: j => j.status },
      { title: 'Next', cell: j => fmtTime(j.next_execution_time) },
      { title: '', cell: j => h('button', { class: 'danger', onclick: guard(async () => { await api('DELETE', `/v1/jobs/${j.id}`); route(); }) }, 'Delete') },
    ], jobs, 'No jobs.'));
  }

  async function webhooksPage() {
    const { webhooks } = await api('GET', '/v1/webhooks');
    const form = h('form', {
      class: 'inline',
      onsubmit: guard(async (ev) => {
        await api('POST', '/v1/webhooks', { function_id: ev.target.function_id.value.trim() });
        toast('Webhook created');
        route();
      }),
    }, h('label', {}, 'Function ID', h('input', { name: 'function_id', required: true })), h('button', { type: 'submit' }, 'Create webhook'));
    main.replaceChildren(h('h1', {}, 'Webhooks'), h('section', { class: 'card' }, form), table([
      { title: 'URL', cell: w => h('code', {}, w.webhook_url) },
      { title: 'Function', cell: w => h('code', {}, (w.function_id || w.function_alias || '').slice(0, 36)) },
      { title: 'Created', cell: w => fmtTime(w.created_at) },
      { title: '', cell: w => h('button', { class: 'danger', onclick: guard(async () => { await api('DELETE', `/v1/webhooks/${w.id}`); route(); }) }, 'Delete') },
    ], webhooks, 'No webhooks.'));
  }

  async function usagePage() {
    const u = await api('GET', '/v1/usage');
    const exportCsv = guard(async () => {
      const csv = await api('GET', '/v1/usage?format=csv', undefined, { text: true, accept: 'text/csv' });
      const a = h('a', { href: URL.createObjectURL(new Blob([csv], { type: 'text/csv' })), download: 'qinling-usage.csv' });
      document.body.append(a); a.click(); a.remove();
    });
    main.replaceChildren(h('h1', {}, 'Usage'),
      h('p', { class: 'muted' }, `Finished executions${u.since ? ' since ' + fmtTime(u.since) : ''} until ${fmtTime(u.until)}. GiB-seconds: memory limit × time run.`),
      h('p', {}, h('button', { class: 'plain', id: 'usage-csv', onclick: exportCsv }, 'Export CSV')),
      table([
        { title: 'Project', cell: r => r.project_id },
        { title: 'Function', cell: r => (r.function_id ? h('a', { href: `#/functions/${r.function_id}` }, r.function_name || r.function_id) : '') },
        { title: 'Executions', num: true, cell: r => r.executions },
        { title: 'Failed', num: true, cell: r => r.failed },
        { title: 'Duration (s)', num: true, cell: r => r.duration_s.toFixed(3) },
        { title: 'CPU (s)', num: true, cell: r => r.cpu_s.toFixed(3) },
        { title: 'GiB-s', num: true, cell: r => r.gb_seconds.toFixed(6) },
      ], u.usage, 'No usage yet.'),
      h('p', { id: 'usage-total' }, `Total: ${u.totals.executions} executions, ${u.totals.gb_seconds.toFixed(6)} GiB-s.`));
  }

  // ---- routing ---------------------------------------------------------------------------

  async function route() {
    for (const t of timers) clearInterval(t);
    timers = [];
    const hash = location.hash || '#/functions';
    const [path, query] = hash.slice(1).split('?');
    const parts = path.split('/').filter(Boolean);
    for (const a of nav.querySelectorAll('a')) a.classList.toggle('active', hash.startsWith(a.getAttribute('href')));
    if (parts[0] === 'login') return loginPage();
    if (!sessionStorage.getItem(TOKEN_KEY) && sessionStorage.getItem(TOKEN_KEY) !== '') return loginPage();
    nav.hidden = false;
    main.replaceChildren(h('p', { class: 'muted' }, 'Loading…'));
    try {
      switch (parts[0]) {
        case 'functions': return parts[1] ? await functionPage(parts[1]) : await functionsPage();
        case 'executions': return parts[1] ? await executionPage(parts[1]) : await executionsPage(query || '');
        case 'runtimes': return await runtimesPage();
        case 'jobs': return await jobsPage();
        case 'webhooks': return await webhooksPage();
        case 'usage': return await usagePage();
        default: location.hash = '#/functions'; return undefined;
      }
    } catch (e) {
      if (e.status === 401) return undefined;
      main.replaceChildren(h('h1', {}, 'Not available'), h('p', { class: 'error', id: 'page-error' }, e.message));
      return undefined;
    }
  }

  document.getElementById('signout').addEventListener('click', () => {
    sessionStorage.removeItem(TOKEN_KEY);
    location.hash = '#/login';
  });
  window.addEventListener('hashchange', route);
  route();
}());
