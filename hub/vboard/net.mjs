// TCP for the virtual board: every connection is a netbridge.py process
// (CPython) whose stdin/stdout pipes this glue reads and writes
// synchronously, like the port.  vb_socket.py is the board's side (module
// `vbnet`): open() -> id or -errno, send(id, hex) -> bytes taken,
// recv(id, n) -> hex ('' nothing yet, '!' closed), ready(id) -> 1 readable |
// 2 closed, close(id).  closeAll() at every reset, like a board's sockets.
import { spawn } from 'node:child_process';
import fs from 'node:fs';

export function makeNet(nap, bridge, python, map = '') {
  const conns = new Map();
  // --net-map A:P=B:Q,...: the board's connections to A:P go to B:Q (a board
  // on another network reaches a broker this machine can't, or the reverse).
  const routes = new Map(map.split(',').filter(Boolean).map((r) => r.split('=')));
  let next = 1;

  const scratch = Buffer.alloc(65536); // polled often: no allocation per empty read
  function read(c) {                 // whatever the pipe has, into c.rx
    if (c.eof) return;
    let n = 0;
    try { n = fs.readSync(c.out, scratch, 0, scratch.length, null); } catch (e) {
      if (e.code === 'EAGAIN') return;
      c.eof = true; return;
    }
    if (n === 0) c.eof = true; else c.rx = Buffer.concat([c.rx, scratch.subarray(0, n)]);
  }

  function open(host, port, timeoutMs) {
    const to = routes.get(`${host}:${port}`);
    if (to) { host = to.slice(0, to.lastIndexOf(':')); port = to.slice(to.lastIndexOf(':') + 1); }
    const child = spawn(python, [bridge, host, String(port), String(timeoutMs / 1000)],
      { stdio: ['pipe', 'pipe', 'ignore'] });
    const c = { child, in: child.stdin._handle.fd, out: child.stdout._handle.fd, rx: Buffer.alloc(0), eof: false };
    const end = Date.now() + timeoutMs + 2000;
    let nl = -1;
    while ((nl = c.rx.indexOf(10)) < 0 && !c.eof && Date.now() < end) { read(c); if (!c.rx.length) nap(1); }
    const status = nl < 0 ? 'ERR 110 timed out' : c.rx.subarray(0, nl).toString();
    c.rx = nl < 0 ? Buffer.alloc(0) : c.rx.subarray(nl + 1);
    if (status !== 'OK') {
      child.kill();
      const errno = parseInt(status.split(' ')[1], 10);
      return -(errno > 0 ? errno : 111);
    }
    const id = next++;
    conns.set(id, c);
    return id;
  }

  function send(id, hex) {
    const c = conns.get(id);
    if (!c || c.eof) return -32; // EPIPE
    try { return fs.writeSync(c.in, Buffer.from(hex, 'hex')); } catch (e) {
      if (e.code === 'EAGAIN') return 0;
      return -32;
    }
  }

  function recv(id, n) {
    const c = conns.get(id);
    if (!c) return '!';
    if (!c.rx.length) read(c);
    if (!c.rx.length) return c.eof ? '!' : '';
    const out = c.rx.subarray(0, n);
    c.rx = c.rx.subarray(out.length);
    return out.toString('hex');
  }

  function ready(id) {
    const c = conns.get(id);
    if (!c) return 2;
    if (!c.rx.length) read(c);
    return (c.rx.length || c.eof ? 1 : 0) | (c.eof ? 2 : 0);
  }

  function close(id) {
    const c = conns.get(id);
    if (!c) return;
    conns.delete(id);
    try { fs.closeSync(c.in); } catch { /* gone */ }
    c.child.kill();
  }

  function closeAll() { for (const id of [...conns.keys()]) close(id); }

  return { api: { open, send, recv, ready, close }, closeAll };
}
