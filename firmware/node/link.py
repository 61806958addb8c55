"""The node's link to the hub: one small base class with the framing,
the store-and-forward spool and the reconnect policy in it; each transport
subclass adds only a few I/O methods (_open, _close, _write, _poll).

make(cfg, ...) picks the transport with a lazy import, so a board only
loads the code of the link it uses.

The spool's slot size is the largest frame this node can spool (a report of
all its channels with every number at its widest, an event, an ack with the
longest error), measured by encoding those worst cases once at start: no
frame is ever too big for a slot.  Hellos and pongs are not spooled: a
hello goes out on every (re)connect, a pong is useless late.

End to end: a spooled frame leaves the spool when the hub's `got` says it
is stored (docs/protocol.md §8), not when the link confirmed it.  When
frames the hub should have by now stay unacknowledged for ack_wait ms, they
go again: all of them if the hub is heard from (it missed some: a broker
dropped them), else only the oldest, as a probe (the hub is away: its
acknowledgements will say when it is back); the wait doubles up to
ACK_WAIT_MAX while nothing moves.
"""
from kairos import wire

from .spool import Spool
from .ticks import ticks_diff

# Frame kinds in the spool (MQTT maps them to topics).
KINDS = ("", "hello", "report", "event", "pong", "ack")
KIND = {"hello": 1, "report": 2, "event": 3, "pong": 4, "ack": 5}

M30 = 0x3FFFFFFF
SPOOL_BYTES = 8192  # the default spool: slots x slot size
ERR_MAX = 64  # chars of an ack's error (app.ack keeps them plain: no JSON escapes)
_BACKOFF_MIN = 500  # ms before the first retry
_BACKOFF_MAX = 30000
ACK_WAIT = 3000  # ms without a got for frames sent before they go again
OUTAGE_MS = 600000  # the default spool covers this long without the hub (10 min) ...
SPOOL_FILE = "spool.bin"  # ... in this file beyond the RAM slots ("" in node.json: RAM only)
FS_KEEP = 32768  # bytes of the filesystem the spool file leaves free
ACK_WAIT_MAX = 30000
BURST = 16  # frames written per pump() at most: a backlog never stalls the sampling


class Link:
    codec = "line"  # "line" (serial), "json" (MQTT) or "bin" (BLE)
    _buf = None
    window = 1 << 20  # frames in flight before waiting for confirmations
    backoff_max = _BACKOFF_MAX  # ms between reconnect attempts, at most
    feed = None  # callable(): the watchdog's feed, called during long waits
    wait_ms = 5000  # the longest single blocking step (a TCP connect), at most

    def __init__(self, cfg, node, clock, rand, say=print):
        self.node = node
        # The node's key (node.json "key", hex): every frame out is signed
        # with it (kairos.mac), so the hub can tell it from a forgery.  Set
        # before frame_max: a MAC makes each frame 26 bytes longer (8 in binary).
        self.mac = None
        if cfg.get("key"):
            from kairos.mac import Mac, key_from_hex

            self.mac = Mac(key_from_hex(cfg["key"]))
        sp = cfg.get("spool") or {}
        size = self.frame_max(node, len(cfg.get("sensors") or ()) or 1)
        size = max(size, sp.get("size", 0))
        # Default: as many slots as fit in SPOOL_BYTES (at least 8, at most 32)
        # in RAM, and in a file as many more as OUTAGE_MS of reports need (a
        # quarter more for events and acks), as far as the filesystem has room.
        default = max(8, min(32, SPOOL_BYTES // size))
        slots = sp.get("slots") or default
        path = sp.get("file", SPOOL_FILE)
        fslots = sp.get("file_slots")
        if fslots is None:
            per = (cfg.get("period_ms") or 20) * (cfg.get("report_every") or 50)
            fslots = max(0, (OUTAGE_MS // per + 1) * 5 // 4 - slots)
        if path and fslots:
            fslots = _fit(path, 7 + size, fslots, say)
        win = self.window if self.window <= 64 else 0
        try:
            self.spool = Spool(slots, size, path, fslots, win, say)
        except MemoryError:  # a node.json asking for more than the board has
            say("spool: %d slots of %d bytes don't fit in memory; using %d"
                % (slots, size, default))
            self.spool = Spool(default, size, path, fslots, win, say)
        # Frames are encoded here, then copied into a slot or written out:
        # no per-frame bytes object (see encode()).
        self._buf = bytearray(self.spool.size)
        self._mv = memoryview(self._buf)
        self.clock = clock
        self.say = say
        self._rand = rand  # rand() -> 30-bit int, for the jitter
        self.up = False
        self.inbox = []  # decoded frames from the hub, for the app
        self.on_up = None  # called after each (re)connect
        self.rejects = {}  # decoder reject counts by reason
        self.downs = 0
        self._hub_boot = None  # the hub's boot id and last seq seen from it
        self._hub_seq = 0
        self._hub_old = []  # the hub's previous boot ids
        self._attempt = 0
        self._retry_at = clock.ms()
        self.boot = None  # the node's boot id (the app sets it): gots name it
        self.ack_wait = ACK_WAIT
        self._ack_t = clock.ms()
        self._heard = False  # a got came since the last resend
        self.resends = 0  # times frames went again for want of a got

    # -- framing -------------------------------------------------------------
    def frame_max(self, node, nch):
        """Bytes of the largest frame this link spools for nch channels."""
        head = {"node": node, "boot": M30, "seq": M30, "tick": M30}
        row = [-16384, M30, 7, 32767, -M30, -M30, 1]
        worst = (
            # 8 lags per channel whatever the config: a set command may add lags
            {"t": "report", "n": M30, "drop": M30, "miss": M30, "ch": [row] * nch,
             "coh": [[32767] * 8] * nch},
            {"t": "event", "i": 7, "on": 1, "c": 32767, "n": M30},
            {"t": "ack", "id": 65535, "ok": 1, "err": "x" * ERR_MAX},
        )
        n = 0
        for m in worst:
            m.update(head)
            n = max(n, len(self.encode(m)))
        return n

    def encode(self, msg):
        """msg's frame as bytes (new, any size)."""
        if self.codec == "json":
            return wire.encode_json(msg, self.mac)
        if self.codec == "bin":
            from kairos import wirebin

            return wirebin.encode_bin(msg, self.mac)
        return wire.encode_line(msg, self.mac)

    def _encoded(self, msg):
        # Text codecs encode into the link's buffer (a memoryview of it comes
        # back): a report allocates no bytes.  A frame too big for it (a
        # hello: never spooled) or a binary one is new bytes.
        if self.codec != "bin":
            if self._buf is None:  # frame_max, before the buffer exists
                return self.encode(msg)
            n = wire.encode_into(msg, self._buf, self.codec == "line", self.mac)
            if n >= 0:
                return self._mv[:n]
        return self.encode(msg)

    def send(self, msg, keep=True):
        """Queue a frame (kept until confirmed) or, with keep=False, send it
        now if the link is up and forget it (pongs: a late one is useless)."""
        data = self._encoded(msg)
        kind = KIND[msg["t"]]
        if keep:
            self.spool.put(kind, data, msg["seq"])  # a refusal is counted (spool.oversize)
            self.pump()
        elif self.up:
            try:
                self._write(kind, data)
            except OSError as e:
                self._down(e)

    def pump(self):
        sp = self.spool
        n = BURST
        while n and self.up and sp.unsent() and sp.inflight() < self.window:
            kind, data = sp.peek()
            if not kind:
                continue  # its file failed: the spool dropped (and counted) those frames
            try:
                pid = self._write(kind, data)
            except OSError as e:
                self._down(e)
                return
            sp.mark_sent(pid)
            n -= 1

    # -- connection ----------------------------------------------------------
    def service(self):
        """Call often: reconnects when due, reads commands, sends the spool."""
        if not self.up:
            from .ticks import ticks_diff

            if ticks_diff(self.clock.ms(), self._retry_at) < 0:
                return
            try:
                self._open()
            except OSError as e:
                self._schedule(e)
                return
            self.up = True
            self._attempt = 0
            # One console line per connect: what a person (or the flash tool,
            # when it can't see the broker) reads to know the node got out.
            self.say("link %s up" % self.name)
            self.spool.rewind()
            if self.on_up:
                self.on_up()
        try:
            self._poll()
        except OSError as e:
            self._down(e)
            return
        self._check_acks()
        self.pump()

    def _check_acks(self):
        """Frames sent and not acknowledged for ack_wait ms go again (hub
        mode only: a hub that never acknowledges must not get resends)."""
        sp = self.spool
        now = self.clock.ms()
        if not sp.e2e or not sp.waiting():
            self._ack_t = now  # nothing outstanding: the wait starts with the next send
            return
        if ticks_diff(now, self._ack_t) < self.ack_wait:
            return
        if self._heard:
            sp.rewind()  # the hub is there and missed some: all again, oldest first
        else:
            kind, data = sp.peek_at(sp.tail)  # the hub is away: one probe
            if not kind:
                return  # its file failed: the spool dropped (and counted) those frames
            try:
                sp.mark_at(sp.tail, self._write(kind, data))
            except OSError as e:
                self._down(e)
                return
        self.resends += 1
        self._heard = False
        self._ack_t = now
        if self.ack_wait < ACK_WAIT_MAX:
            self.ack_wait = min(2 * self.ack_wait, ACK_WAIT_MAX)

    def _got(self, msg):
        """The hub's acknowledgement: these seqs of our boot are stored."""
        if msg["b"] != self.boot:
            return  # for an earlier boot of ours: those frames are gone
        sp = self.spool
        tail = sp.tail
        for r in msg["s"]:
            sp.got(r[0], r[1])
        self._heard = True
        if sp.tail != tail:  # progress: the wait starts over
            self._ack_t = self.clock.ms()
            self.ack_wait = ACK_WAIT

    def _down(self, err):
        self.up = False
        self.downs += 1
        try:
            self._close()
        except OSError:
            pass
        self.spool.rewind()
        self._schedule(err)

    def _schedule(self, err):
        # Exponential backoff with +-25% jitter, so a mesh of nodes that lost
        # the same broker doesn't come back in lock-step.
        from .ticks import ticks_add

        base = _BACKOFF_MIN << min(self._attempt, 6)
        if base > self.backoff_max:
            base = self.backoff_max
        delay = base - (base >> 2) + self._rand() % (1 + (base >> 1))
        self._attempt += 1
        if self._attempt <= 3 or self._attempt % 10 == 0:
            self.say("link %s down (%s); retry %d in %d ms"
                     % (self.name, err, self._attempt, delay))
        self._retry_at = ticks_add(self.clock.ms(), delay)

    def _accept(self, msg, node):
        """A decoded frame from the hub: keep it if it is for this node and
        new.  The hub numbers its frames (boot, seq) with seq increasing, so
        a seq not above the last one of that boot is a redelivery (MQTT QoS
        1 may repeat) or a replay: dropped and counted, never obeyed twice.
        A frame from one of the hub's two previous boots is a replay."""
        if msg is None or msg.get("node") not in (node, "*"):
            return
        from .ticks import ticks_diff

        boot, seq = msg["boot"], msg["seq"]
        if boot != self._hub_boot:
            if boot in self._hub_old:
                self._count(wire.REPLAY)
                return
            if self._hub_boot is not None:
                self._hub_old = (self._hub_old + [self._hub_boot])[-2:]
            self._hub_boot = boot
        elif ticks_diff(seq, self._hub_seq) <= 0:
            self._count(wire.DUPLICATE)
            return
        self._hub_seq = seq
        if msg["t"] == "got":
            self._got(msg)  # the link's own business, at once
            return
        self.inbox.append(msg)

    def _count(self, reason):
        r = self.rejects
        r[reason] = r.get(reason, 0) + 1

    # -- the subclass's I/O --------------------------------------------------
    name = "?"

    def _open(self):
        pass

    def _close(self):
        pass

    def _write(self, kind, data):
        """Send one frame; return its packet id, or 0 if already confirmed."""
        raise OSError("no transport")

    def _poll(self):
        pass


def _fit(path, stride, want, say):
    """File slots (of stride bytes) the filesystem holding path has room for,
    at most want; says so when fewer (0 if it can't tell: RAM only)."""
    import os

    d = path.rpartition("/")[0] or "."
    try:
        st = os.statvfs(d)
        free = st[1] * st[4]  # fragment size x blocks free to us
    except Exception:  # noqa: BLE001 - no statvfs, a read-only or odd filesystem
        return 0
    try:
        free += os.stat(path)[6]  # the old file: emptied at the first move
    except OSError:
        pass
    room = (free - FS_KEEP) // stride
    if room < want:
        say("spool: room for %d of %d slots in %s (%d kB free)"
            % (max(0, room), want, path, free // 1024))
        return max(0, room)
    return want


def make(cfg, node, clock, rand, say=print):
    t = cfg.get("transport", "serial")
    if t == "mqtt":
        from .link_mqtt import MqttLink as cls
    elif t == "ble":
        from .link_ble import BleLink as cls
    else:
        from .link_serial import SerialLink as cls
    return cls(cfg, node, clock, rand, say)
