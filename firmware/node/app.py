"""The node application: sample every period, run the kernel per channel,
report every R samples, send collapse events at once, obey the hub.

    import node.app
    node.app.main()                      # board.json + node.json in cwd
    node.app.main(max_samples=1000)      # a bounded run (tests, sim)

The sampling loop is the hot path: per sample it reads the sensors and steps
the kernels without allocating (on MicroPython); building a report every R
samples allocates a little, which is what the memory test measures.
"""
import gc
import sys

from kairos import Channel, Normalizer, wire
from kairos import __version__ as FW_VERSION
from kairos.defaults import CHANNEL_KEYS, NORMALIZER_KEYS

from . import commands
from .entropy import random30
from .hal import HalError, select
from .link import ERR_MAX, make
from .outputs import Outputs
from .sensors import make as make_sensor
from .ticks import MASK, ticks_add, ticks_diff

WDT_MIN_MS = 1000  # a shorter watchdog timeout is raised to this
_MICROPYTHON = sys.implementation.name == "micropython"
_MEAN_S = 6  # the reported mean is an EMA over 2**6 samples
_ESC = {34: "'", 92: "/", 64: "#"}  # JSON would escape " \ and @ (2..6 bytes)


def _plain(err):
    """An ack's error text: printable, at most link.ERR_MAX chars, none that
    JSON escapes, so an ack never outgrows the spool's slot."""
    s = wire.text(err, ERR_MAX)
    for c in s.encode():
        if c in _ESC:
            return "".join(_ESC.get(ord(ch), ch) for ch in s)
    return s


def _given(spec, keys):
    kw = {}
    for k in keys:
        if k in spec:
            kw[k] = spec[k]
    return kw


class Chan:
    """One sensor channel: driver, normaliser, kernel and its mean."""

    def __init__(self, reader, spec):
        self.reader = reader
        self.spec = spec
        self.name = spec["name"]
        # What the spec leaves out takes the kernel's defaults (kairos.defaults).
        self.norm = Normalizer(**_given(spec, NORMALIZER_KEYS))
        self.kernel = Channel(**_given(spec, CHANNEL_KEYS))
        self.mean = 0  # accumulator: mean * 2**_MEAN_S


class Node:
    def __init__(self, cfg, hal, say=print):
        self.cfg = cfg
        self.hal = hal
        self.say = say
        self.clock = hal.clock
        self.name = cfg.get("node") or ("node-" + hal.unique_id())
        # Never from the HAL's seeded PRNG: the same sim node run twice would
        # reuse its boot id, and the hub would take the second run's frames
        # for repeats of the first's (entropy.py says where it comes from).
        self.boot = random30()
        self.seq = 0
        self.n = 0  # samples taken this boot (the kernel tick)
        self.missed = 0
        self.period = cfg["period_ms"]
        self.every = cfg["report_every"]
        self.chans = []
        for spec in cfg["sensors"]:
            try:
                self.chans.append(Chan(make_sensor(hal, spec), spec))
            except (HalError, OSError, ValueError, KeyError, TypeError) as e:
                say("sensor %s: %s; skipped" % (spec.get("name", "?"), e))
        if not self.chans:
            say("no usable sensor; running the built-in sim channel")
            from .config import DEFAULT_BOARD

            spec = DEFAULT_BOARD["sensors"][0]
            self.chans.append(Chan(make_sensor(hal, spec), spec))
        self.outputs = Outputs(hal, cfg.get("outputs", []), say)
        self.link = make(cfg, self.name, self.clock, hal.rand30, say)
        self.link.on_up = self._on_up
        self.link.boot = self.boot  # the hub's acknowledgements name it
        self.wdt = None  # armed by arm(), from loop(), when running unattended
        self.unattended = False
        self._arm_due = False
        self._reboot = False
        self._rep = None  # the report dict, reused (see report())

    # -- frames --------------------------------------------------------------
    def frame(self, t):
        """A new frame dict with the common header (seq never repeats)."""
        seq = self.seq
        self.seq = (seq + 1) & MASK
        return {"t": t, "node": self.name, "boot": self.boot, "seq": seq,
                "tick": self.clock.ms()}

    def hello(self):
        m = self.frame("hello")
        m["board"] = self.cfg.get("board", "?")[:32]
        m["fw"] = FW_VERSION
        m["period"] = self.period
        m["every"] = self.every
        m["weight"] = self.cfg.get("weight", 1)
        caps = self.outputs.caps()
        caps.append(self.link.name)
        m["caps"] = caps
        chs = []
        for c in self.chans:
            k = c.kernel
            chs.append({"name": c.name[:16], "lags": list(k.lags), "s": k.s, "s0": k.s0,
                        "ic": k.ic})
        m["ch"] = chs
        return m

    def report(self):
        """The report frame.  One dict, its rows and spectra, refilled every
        time (the link encodes it at once): a report allocates next to nothing."""
        m = self._rep
        if m is None or len(m["ch"]) != len(self.chans):
            m = self._rep = self.frame("report")
            m["ch"] = [[0] * 7 for _ in self.chans]
            m["coh"] = [[0] * len(c.kernel.lags) for c in self.chans]
        else:
            seq = self.seq
            self.seq = (seq + 1) & MASK
            m["seq"] = seq
            m["tick"] = self.clock.ms()
        m["n"] = self.n
        sp = self.link.spool
        m["drop"] = sp.dropped + sp.oversize  # every frame the spool lost
        m["miss"] = self.missed
        rows = m["ch"]
        cohs = m["coh"]
        i = 0
        for c in self.chans:
            k = c.kernel
            src = k.coh  # the kernel's own array, refreshed: copied in place
            dst = cohs[i]
            if len(dst) != len(src):  # new lags (a set command): once
                dst = cohs[i] = [0] * len(src)
            for j in range(len(src)):
                dst[j] = src[j]
            r = rows[i]
            r[0] = c.mean >> _MEAN_S
            r[1] = k.e
            r[2] = k.k
            r[3] = k.c
            r[4] = k.t_re
            r[5] = k.t_im
            r[6] = 1 if k.collapsed else 0
            i += 1
        return m

    def event(self, i, entered):
        m = self.frame("event")
        m["i"] = i
        m["on"] = 1 if entered else 0
        m["c"] = self.chans[i].kernel.c
        m["n"] = self.chans[i].kernel.tick
        return m

    def pong(self, pid, t0, t1):
        m = self.frame("pong")
        m["id"] = pid
        m["t0"] = t0
        m["t1"] = t1
        m["t2"] = self.clock.ms()
        self.link.send(m, keep=False)

    def ack(self, cid, err):
        m = self.frame("ack")
        m["id"] = cid
        m["ok"] = 0 if err else 1
        m["err"] = _plain(err or "")
        self.link.send(m)

    def reboot(self):
        self._reboot = True

    def rebuild(self, i, spec):
        """New kernel parameters for channel i (raises ValueError if bad)."""
        c = Chan(self.chans[i].reader, spec)
        self.chans[i] = c
        self.link.send(self.hello(), keep=False)  # the hub learns the new lags

    def _on_up(self):
        # (Re)announce ourselves on every connect, before the spool drains:
        # the hub may have restarted, and it learns the channels before the
        # reports.  Never spooled, so never dropped: the next connect says it
        # again.
        self.link.send(self.hello(), keep=False)

    # -- the loop ------------------------------------------------------------
    def sample(self):
        """Read every sensor and step every kernel: the hot path."""
        i = 0
        for c in self.chans:
            try:
                x = c.reader.read()
            except OSError:
                x = 0  # a sensor that fails for a moment reads as silence
            u = c.norm(x)
            c.mean += u - (c.mean >> _MEAN_S)
            if c.kernel.step(u):
                for _tick, entered in c.kernel.events():
                    self.link.send(self.event(i, entered))
            i += 1
        self.n = (self.n + 1) & MASK
        if self.n % self.every == 0:
            self.link.send(self.report())

    def serve(self):
        """Link I/O and the hub's commands: between samples."""
        link = self.link
        link.service()
        while link.inbox:
            msg = link.inbox.pop(0)
            msg["tick_in"] = self.clock.ms()
            commands.handle(self, msg)

    # -- the watchdog ---------------------------------------------------------
    def arm(self):
        """Start the board's watchdog (once; machine.WDT can't be stopped).
        The link feeds it through every long wait and keeps each blocking
        step under half its timeout, so connecting can't trip it."""
        ms = self.cfg.get("watchdog_ms") or 0
        if self.wdt is not None or not ms:
            return
        if ms < WDT_MIN_MS:
            ms = WDT_MIN_MS
        try:
            w = self.hal.watchdog(ms)
        except (OSError, ValueError, HalError) as e:
            self.say("watchdog: %s; running without" % (e,))
            return
        if w is None:
            return  # none here (a Pi: systemd's WatchdogSec is its watchdog)
        self.wdt = w
        self.link.feed = w.feed
        if self.link.wait_ms > ms // 2:
            self.link.wait_ms = ms // 2
        self.say("watchdog: armed, %d ms" % ms)

    def start(self):
        """The sampling grid starts now; the hello goes out as the link
        comes up (the first serve())."""
        self._t_next = self.clock.ms()
        # Armed after the first connect attempt (the first serve()), and only
        # when main.py runs us unattended: a node started by hand at the REPL
        # must never reset the board under the user.
        self._arm_due = self.unattended and bool(self.cfg.get("watchdog_ms"))

    def loop(self, count=None):
        """Take `count` samples on the period grid (forever if None)."""
        clock, period = self.clock, self.period
        t_next = self._t_next
        while count is None or count > 0:
            self.serve()
            if self._arm_due:
                self._arm_due = False
                self.arm()
            wait = ticks_diff(t_next, clock.ms())
            if wait > 0:
                clock.sleep(wait)
            elif wait <= -period:
                # Late by whole periods (a slow link, a GC pause): count the
                # deadlines missed and skip them rather than sample in a burst.
                lost = -wait // period
                self.missed += lost
                t_next = ticks_add(t_next, lost * period)
            self.sample()
            t_next = ticks_add(t_next, period)
            self._t_next = t_next
            if self.wdt is not None:
                self.wdt.feed()
            if count is not None:
                count -= 1
            if self._reboot:
                self.serve()  # flush the reboot's ack
                self._reboot = False
                self.hal.reset()

    def run(self, max_samples=None):
        self.start()
        self.loop(max_samples)
        self.close()

    def close(self, timeout_ms=5000):
        """End a bounded run: send what the spool owes the hub (until the hub
        has acknowledged it, where it does; waiting for the link up to
        timeout_ms), then say goodbye cleanly where the link can."""
        clock = self.clock
        t0 = clock.ms()
        sp = self.link.spool
        while sp.owed() and ticks_diff(clock.ms(), t0) < timeout_ms:
            self.serve()
            if sp.owed():
                clock.sleep(10)
        bye = getattr(self.link, "disconnect", None)
        if bye is not None:
            bye()


def boot(board="board.json", node="node.json", say=print):
    """Build the node from its config files (no sampling yet)."""
    from . import config

    cfg = config.load(board, node, say)
    n = Node(cfg, select(cfg), say)
    if _MICROPYTHON:
        # The config checks run once: unload their code (~9 kB of heap on a
        # board, where a module's bytecode lives in RAM).  A later boot()
        # imports it again.
        _unload("node.config")
    gc.collect()
    return n


def _unload(name):
    sys.modules.pop(name, None)
    pkg, _, mod = name.rpartition(".")
    parent = sys.modules.get(pkg)
    if parent is not None and hasattr(parent, mod):
        delattr(parent, mod)


_running = None  # the node main() runs, for at_repl()


def main(board="board.json", node="node.json", max_samples=None, say=print,
         unattended=False):
    """Boot and run.  unattended=True (main.py on a board) arms the watchdog."""
    global _running
    n = boot(board, node, say)
    n.unattended = unattended
    _running = n
    n.run(max_samples)
    return n


def at_repl(say=print):
    """After Ctrl-C: machine.WDT cannot be stopped, so if ours is armed the
    HAL keeps feeding it from a timer; the REPL and mpremote stay usable
    until the next reset (a soft reset stops the timer on some ports: then
    the board resets within watchdog_ms and main.py starts the node again)."""
    n = _running
    if n is None or n.wdt is None:
        return
    ms = n.cfg.get("watchdog_ms") or WDT_MIN_MS
    if n.hal.keep_fed(n.wdt, ms):
        say("watchdog: still armed (it cannot be stopped); a timer feeds it until reset")
    else:
        say("watchdog: still armed and nothing feeds it; the board resets in %d ms" % ms)
