// The virtual board: MicroPython's WebAssembly port (npm package
// @micropython/micropython-webassembly-pyscript) driven like a USB board.
//
//   node vboard.mjs --fd N [--fs DIR] [--quota BYTES [--quota-hidden]]
//       [--bitrot SUFFIX] [--fail-writes SUFFIX:N] [--mp-version X.Y.Z] [--heap BYTES]
//       [--net-map HOST:PORT=HOST:PORT,...] [--hang-writes SUFFIX]
//
// fd N is the master side of a pseudo-terminal (becomingone.vboard opens it and
// hands out the slave path).  Everything here is synchronous: the interpreter
// runs on this thread and reads the port itself, like firmware does.
//  - REPL: the port's event-driven REPL (friendly, raw, raw-paste) is fed one
//    byte at a time; its blocking reads (raw-paste, input()) read the port.
//  - Ctrl-C: every call the VM makes to the clock (time.ticks_ms, sleep_ms's
//    busy wait) first polls the port, so Ctrl-C while code runs schedules a
//    KeyboardInterrupt; a busy sleep naps 1 ms per spin so it costs no CPU.
//  - Soft reset (Ctrl-D at an empty REPL line, machine.soft_reset()) starts a
//    fresh interpreter, keeps the filesystem, runs boot.py then (friendly
//    REPL only, as on a board) main.py.  machine.reset() does the same from
//    the friendly REPL, like a power cycle.
//  - Filesystem: the port's in-memory FS, carried across resets; with --fs it
//    is loaded from DIR at start and mirrored back to DIR whenever the board
//    goes idle.  --quota caps it (writes past it fail with ENOSPC, statvfs
//    reports it, unless --quota-hidden: a free count that is too hopeful);
//    --bitrot flips a bit of every write to paths ending in SUFFIX (a worn
//    flash, for verification tests); --fail-writes SUFFIX:N fails the first
//    N writes to such paths with EIO (a flaky link, for the copy retries);
//    --hang-writes SUFFIX hangs the board for good on such a write.
//  - --mp-version X.Y.Z: sys.implementation.version claims that release
//    (an old board, for the version check).
//  - Network: `socket` (TCP clients, vb_socket.py) through netbridge.py
//    processes (net.mjs); --net-map A:P=B:Q sends the board's connections
//    to A:P to B:Q instead.  No Wi-Fi: there is no `network` module.
import fs from 'node:fs';
import { makeNet } from './net.mjs';
import { fileURLToPath } from 'node:url';

const HERE = fileURLToPath(new URL('.', import.meta.url));
// The npm port's micropython.mjs: found (or fetched) by becomingone.vboard, passed in.
const PKG = process.env.VBOARD_MICROPYTHON;
const SYSTEM = new Set(['/tmp', '/home', '/dev', '/proc', '/.vboard']);

const opts = { fd: 3, fs: null, quota: 0, bitrot: null, heap: 192 * 1024 };
for (let i = 2; i < process.argv.length; i += 2) {
  const k = process.argv[i].replace(/^--/, '');
  if (k === 'quota-hidden') { opts[k] = true; i--; continue; }
  const v = process.argv[i + 1];
  opts[k] = ['fd', 'quota', 'heap'].includes(k) ? parseInt(v, 10) : v;
}
const PORT = opts.fd;
// --fail-writes SUFFIX:N: the first N writes to paths ending in SUFFIX fail
// (EIO), counted across resets.
const failing = opts['fail-writes'] ? [opts['fail-writes'].replace(/:\d+$/, ''),
  parseInt((opts['fail-writes'].match(/:(\d+)$/) || [0, '1'])[1], 10)] : null;
const sleeper = new Int32Array(new SharedArrayBuffer(4));
const nap = (ms) => Atomics.wait(sleeper, 0, 0, ms);

// ---- the port --------------------------------------------------------------
const rx = [];        // received bytes not yet consumed
let tx = [];          // bytes to send
let lastOut = 0;
let stuck = false;    // nobody reads the port: drop output, like USB CDC
let running = false;  // Python code is running: Ctrl-C interrupts it
let mp = null, M = null, FS = null;
let resetKind = null; // 'soft' | 'hard' once a reset is asked for
let armed = false;    // quota and bitrot apply (not while restoring files)
let dirty = false;

// The board lives as long as becomingone.vboard: if it dies (even by SIGKILL),
// we are re-parented, and go too.
const PARENT = process.ppid;
let parentCheck = 0;

function readPort() {
  if (Date.now() - parentCheck > 1000) {
    parentCheck = Date.now();
    if (process.ppid !== PARENT) process.exit(0);
  }
  const buf = Buffer.alloc(4096);
  let n = 0;
  try { n = fs.readSync(PORT, buf, 0, buf.length, null); } catch (e) {
    if (e.code !== 'EAGAIN' && e.code !== 'EIO') throw e;
  }
  for (let i = 0; i < n; i++) {
    if (running && buf[i] === 3) { rx.length = 0; M._mp_sched_keyboard_interrupt(); }
    else rx.push(buf[i]);
  }
  return n;
}

function flush() {
  if (!tx.length) return;
  let buf = Buffer.from(tx);
  tx = [];
  const t0 = Date.now();
  while (buf.length) {
    let n = 0;
    try { n = fs.writeSync(PORT, buf); } catch (e) { if (e.code !== 'EAGAIN' && e.code !== 'EIO') throw e; }
    if (n > 0) { buf = buf.subarray(n); stuck = false; continue; }
    if (stuck || Date.now() - t0 > 300) { stuck = true; return; }
    nap(1);
  }
}

function emit(d) {
  if (dropOK && d[0] === 'OK'.charCodeAt(2 - dropOK)) { dropOK--; return; }
  dropOK = 0;
  if (d[0] === 10 && lastOut !== 13) tx.push(13); // cooked output, like a board's console
  lastOut = d[0];
  tx.push(d[0]);
  if (tx.length >= 4096) flush();
}
function say(s) { for (const c of Buffer.from(s)) tx.push(c); }

let lastMs = 0, spins = 0;
function clockHook() {           // every time.ticks_ms()/sleep spin lands here
  const now = Date.now();
  if (now !== lastMs) { lastMs = now; spins = 0; readPort(); flush(); return; }
  if (++spins >= 64) { spins = 0; flush(); nap(1); readPort(); }
}

function getChar() {             // blocking stdin read: raw-paste, input(), sys.stdin
  for (;;) {
    if (rx.length) return rx.shift();
    flush();
    if (!readPort()) nap(2);
  }
}

// Hook the VM's clock imports and compile the wasm once for every reset.
let compiled = null;
const instantiate = WebAssembly.instantiate;
// Emscripten reports file errors with WASI errno numbers (ENOENT = 44); a
// board's MicroPython uses Linux's (ENOENT = 2), and so do mpremote and the
// `errno` module the glue installs.  Translate them where syscalls return.
const LINUX = { 63: 1, 44: 2, 27: 4, 29: 5, 8: 9, 6: 11, 48: 12, 2: 13, 10: 16, 20: 17, 75: 18, 43: 19,
  54: 20, 31: 21, 28: 22, 41: 23, 33: 24, 59: 25, 22: 27, 51: 28, 70: 29, 69: 30, 37: 36, 52: 38, 55: 39,
  58: 95, 73: 110 };
WebAssembly.instantiate = async (src, imports) => {
  for (const name of ['mp_js_ticks_ms', 'mp_js_time_ms']) {
    const f = imports.env[name];
    if (f) imports.env[name] = () => { clockHook(); return f(); };
  }
  for (const [ns, table] of Object.entries(imports)) {
    for (const [name, f] of Object.entries(table)) {
      if (name.startsWith('__syscall_')) table[name] = (...a) => { const r = f(...a); return r < 0 ? -(LINUX[-r] ?? -r) : r; };
      else if (ns === 'wasi_snapshot_preview1' && name.startsWith('fd_')) table[name] = (...a) => { const r = f(...a); return r > 0 ? (LINUX[r] ?? r) : r; };
    }
  }
  if (!(src instanceof WebAssembly.Module)) compiled ||= await WebAssembly.compile(src);
  const instance = await instantiate(compiled || src, imports);
  return { module: compiled, instance };
};
const { loadMicroPython } = await import(PKG);

// ---- the filesystem ----------------------------------------------------------
const store = new Map(); // path -> Uint8Array (file) or null (dir), parents first

function walk(dir, fn) {
  for (const name of FS.readdir(dir)) {
    if (name === '.' || name === '..') continue;
    const p = dir === '/' ? '/' + name : dir + '/' + name;
    if (SYSTEM.has(p)) continue;
    const st = FS.stat(p);
    if (FS.isDir(st.mode)) { fn(p, null); walk(p, fn); } else fn(p, st);
  }
}

function usage() { let n = 0; walk('/', (p, st) => { if (st) n += st.size; }); return n; }

function save() {
  store.clear();
  walk('/', (p, st) => store.set(p, st ? FS.readFile(p) : null));
  if (opts.fs) mirror();
  dirty = false;
}

function hostList(dir, rel = '', acc = []) {
  for (const e of fs.readdirSync(dir + rel, { withFileTypes: true })) {
    const p = rel + '/' + e.name;
    acc.push([p, e.isDirectory()]);
    if (e.isDirectory()) hostList(dir, p, acc);
  }
  return acc;
}

function mirror() {
  fs.mkdirSync(opts.fs, { recursive: true });
  for (const [p] of hostList(opts.fs).reverse()) {
    if (!store.has(p)) fs.rmSync(opts.fs + p, { recursive: true, force: true });
  }
  for (const [p, data] of store) {
    const hp = opts.fs + p;
    if (data === null) { fs.mkdirSync(hp, { recursive: true }); continue; }
    let same = false;
    try { same = Buffer.compare(fs.readFileSync(hp), data) === 0; } catch { /* new */ }
    if (!same) fs.writeFileSync(hp, data);
  }
}

if (opts.fs && fs.existsSync(opts.fs)) {
  for (const [p, isDir] of hostList(opts.fs)) store.set(p, isDir ? null : fs.readFileSync(opts.fs + p));
}

function patchFs() {
  const write = FS.write, statfs = FS.statfs;
  const user = (s) => s.path && s.path.startsWith('/') && ![...SYSTEM].some((d) => s.path.startsWith(d + '/'))
    && FS.isFile(s.node.mode);
  FS.write = (stream, buffer, offset, length, position, canOwn) => {
    if (!armed || !user(stream)) return write(stream, buffer, offset, length, position, canOwn);
    const pos = position ?? stream.position;
    const grow = Math.max(0, pos + length - (stream.node.usedBytes || 0));
    if (opts.quota && grow && usage() + grow > opts.quota) throw new FS.ErrnoError(51); // ENOSPC
    if (opts['hang-writes'] && stream.path.endsWith(opts['hang-writes'])) {
      for (;;) { nap(200); if (process.ppid !== PARENT) process.exit(0); } // a board that hangs
    }
    if (failing && stream.path.endsWith(failing[0]) && failing[1] > 0) {
      failing[1]--;
      throw new FS.ErrnoError(29); // EIO: a flaky flash (or cable) loses this write
    }
    const n = write(stream, buffer, offset, length, position, canOwn);
    if (opts.bitrot && n > 0 && stream.path.endsWith(opts.bitrot)) stream.node.contents[pos + n - 1] ^= 0x10;
    dirty = true;
    return n;
  };
  FS.statfs = (p) => {
    const s = statfs(p);
    if (opts.quota && !opts['quota-hidden']) {
      s.blocks = Math.floor(opts.quota / s.bsize);
      s.bfree = s.bavail = Math.max(0, Math.floor((opts.quota - usage()) / s.bsize));
    }
    return s;
  };
  for (const f of ['unlink', 'rmdir', 'rename', 'mkdir']) {
    const g = FS[f];
    FS[f] = (...a) => { dirty = true; return g(...a); };
  }
  const tty = FS.getStream(0);
  tty.tty.ops.get_char = (t) => (t === tty.tty ? getChar() : null);
  tty.stream_ops.poll = (s) => (s.tty === tty.tty && (rx.length || readPort()) ? 1 : 0) | 4;
}

// ---- the machine stand-in, errno, and a claimed version ----------------------
// machine.py (pins/ADCs for the sim board, reset), vb_errno.py (Linux
// numbers), vb_time.py (sleeps Ctrl-C can interrupt, as on a board) and,
// with --mp-version, vb_sys.py live in mp/ beside this file.
const SRC = (n) => fs.readFileSync(HERE + 'mp/' + n, 'utf8');
const MACHINE = SRC('machine.py'), ERRNO = SRC('vb_errno.py'), VBSYS = SRC('vb_sys.py');
const VBTIME = SRC('vb_time.py'), VBSOCKET = SRC('vb_socket.py');
const net = makeNet(nap, HERE + 'netbridge.py', process.env.VBOARD_PYTHON || 'python3',
  opts['net-map'] || '');
const CLAIM = opts['mp-version'] ? opts['mp-version'].split('.').map((x) => parseInt(x, 10)) : null;
let cause = 1;

function install() {
  FS.mkdir('/.vboard');
  FS.writeFile('/.vboard/machine.py', MACHINE);
  FS.writeFile('/.vboard/vb_errno.py', ERRNO);
  mp.registerJsModule('vboard', { reset: (k) => { resetKind = k; }, cause });
  mp.registerJsModule('vbnet', net.api);
  FS.writeFile('/.vboard/socket.py', VBSOCKET);
  let claim = '';
  if (CLAIM) {
    FS.writeFile('/.vboard/vb_sys.py', VBSYS);
    claim = `import vb_sys\nvb_sys.install((${CLAIM.join(', ')}, ''))\ndel sys.modules['vb_sys'], vb_sys\n`;
  }
  FS.writeFile('/.vboard/vb_time.py', VBTIME);
  mp.runPython("import sys\nsys.path.insert(0, '/.vboard')\nimport vb_time\nvb_time.install()\n"
    + "del sys.modules['vb_time'], vb_time\nimport vb_errno, machine, socket\ndel socket\n" + claim
    + "sys.path.pop(0)\nsys.modules['errno'] = vb_errno\ndel sys.modules['vb_errno']\ndel sys, vb_errno, machine");
}

// ---- boot, REPL, reset ---------------------------------------------------------
async function boot() {
  armed = false;
  net.closeAll();
  mp = await loadMicroPython({ stdout: emit, stderr: emit, linebuffer: false, heapsize: opts.heap });
  M = mp._module;
  FS = mp.FS;
  patchFs();
  for (const [p, data] of store) if (data === null) FS.mkdir(p); else FS.writeFile(p, data);
  install();
  armed = true;
}

function runFile(name) {        // pyexec_file(): boot.py and main.py
  try { FS.stat('/' + name); } catch { return; }
  running = true;
  try {
    mp.runPython(`exec(open('${name}').read())`);
  } catch (e) {
    if (e.name !== 'PythonError') throw e;
    if (e.type !== 'SystemExit') say(e.message.replace(/\r?\n/g, '\r\n'));
  } finally {
    running = false;
  }
}

// The REPL, one byte at a time.  The port's raw REPL would run raw-paste
// (Ctrl-E A Ctrl-A) by blocking on a stdin buffer that only this thread can
// fill, so the glue speaks raw-paste itself: it answers R\x01 and a window,
// collects the code with flow control, acks the end with \x04, then hands
// the code to the raw REPL (dropping its "OK", which raw-paste doesn't send).
const WINDOW = 512;
let raw = false, lineLen = 0, esc = [], paste = null, dropOK = 0;

function feed(b) {
  running = true;
  const r = mp.replProcessChar(b);
  running = false;
  if (!raw && b === 1) raw = true;
  else if (raw && b === 2) raw = false;
  lineLen = b <= 4 ? 0 : lineLen + 1;
  dirty ||= raw && b === 4;
  return r;
}

function input(b) {
  if (paste) {
    if (b !== 4) {
      paste.push(b);
      if (paste.length % WINDOW === 0) say('\x01');
      return 0;
    }
    const code = paste;
    paste = null;
    say('\x04');
    for (const c of code) feed(c);
    dropOK = 2;
    return feed(4);
  }
  if (esc.length || (raw && lineLen === 0 && b === 5)) {
    esc.push(b);
    const want = [5, 65, 1];
    if (esc.every((c, i) => c === want[i])) {
      if (esc.length === 3) {
        esc = [];
        paste = [];
        say('R\x01' + String.fromCharCode(WINDOW & 0xff, WINDOW >> 8));
      }
      return 0;
    }
    const held = esc;
    esc = [];
    let r = 0;
    for (const c of held) r ||= feed(c);
    return r;
  }
  return feed(b);
}

await boot();
process.stdout.write('vboard: ready\n');
for (;;) {
  runFile('boot.py');
  if (!resetKind && !raw) runFile('main.py');
  if (!resetKind) {
    if (raw) {                   // a soft reset from the raw REPL stays raw
      const keep = tx; tx = [];
      mp.replInit(); mp.replProcessChar(1);
      tx = keep;
      say('raw REPL; CTRL-B to exit\r\n>');
    } else mp.replInit();
  }
  let idleSince = Date.now();
  while (!resetKind) {
    if (!rx.length && !readPort()) {
      flush();
      if (opts.fs && dirty && Date.now() - idleSince > 50) save();
      nap(2);
      continue;
    }
    idleSince = Date.now();
    if (input(rx.shift())) resetKind ||= 'soft';
  }
  const kind = resetKind;
  resetKind = null;
  flush();
  save();
  if (kind === 'hard') { raw = false; cause = 2; } else { cause = 5; say('MPY: soft reboot\r\n'); }
  await boot();
}
