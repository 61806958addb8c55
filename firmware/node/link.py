"""The node's link to the hub: one small base class with the framing,
the store-and-forward spool and the reconnect policy in it; each transport
subclass adds only a few I/O methods (_open, _close, _write, _poll).

make(cfg, ...) picks the transport with a lazy import, so a board only
loads the code of the link it uses.
"""
from kairos import wire

from .spool import Spool

# Frame kinds in the spool (MQTT maps them to topics).
KINDS = ("", "hello", "report", "event", "pong", "ack")
KIND = {"hello": 1, "report": 2, "event": 3, "pong": 4, "ack": 5}

_BACKOFF_MIN = 500  # ms before the first retry
_BACKOFF_MAX = 30000


class Link:
    codec = "line"  # "line" (serial), "json" (MQTT) or "bin" (BLE)
    window = 1 << 20  # frames in flight before waiting for confirmations
    backoff_max = _BACKOFF_MAX  # ms between reconnect attempts, at most

    def __init__(self, cfg, clock, rand, say=print):
        sp = cfg.get("spool", {})
        self.spool = Spool(sp.get("slots", 32), sp.get("size", 512))
        self.clock = clock
        self.say = say
        self._rand = rand  # rand() -> 30-bit int, for the jitter
        self.up = False
        self.inbox = []  # decoded frames from the hub, for the app
        self.on_up = None  # called after each (re)connect
        self.rejects = {}  # decoder reject counts by reason
        self.downs = 0
        self._attempt = 0
        self._retry_at = clock.ms()

    # -- framing -------------------------------------------------------------
    def encode(self, msg):
        if self.codec == "json":
            return wire.encode_json(msg)
        if self.codec == "bin":
            from kairos import wirebin

            return wirebin.encode_bin(msg)
        return wire.encode_line(msg)

    def send(self, msg, keep=True):
        """Queue a frame (kept until confirmed) or, with keep=False, send it
        now if the link is up and forget it (pongs: a late one is useless)."""
        data = self.encode(msg)
        kind = KIND[msg["t"]]
        if keep:
            self.spool.put(kind, data)
            self.pump()
        elif self.up:
            try:
                self._write(kind, data)
            except OSError as e:
                self._down(e)

    def pump(self):
        sp = self.spool
        while self.up and sp.unsent() and sp.inflight() < self.window:
            kind, data = sp.peek()
            try:
                pid = self._write(kind, data)
            except OSError as e:
                self._down(e)
                return
            sp.mark_sent(pid)

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
            self.spool.rewind()
            if self.on_up:
                self.on_up()
        try:
            self._poll()
        except OSError as e:
            self._down(e)
            return
        self.pump()

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
        """A decoded frame from the hub: keep it if it is for this node."""
        if msg is not None and msg.get("node") in (node, "*"):
            self.inbox.append(msg)

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


def make(cfg, node, clock, rand, say=print):
    t = cfg.get("transport", "serial")
    if t == "mqtt":
        from .link_mqtt import MqttLink as cls
    elif t == "ble":
        from .link_ble import BleLink as cls
    else:
        from .link_serial import SerialLink as cls
    return cls(cfg, node, clock, rand, say)
