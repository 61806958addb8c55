"""A simulated mesh: N nodes in one process, as a hub transport ("sim").

Every node samples a rhythm at `sample_hz`, runs the same fixed-point
kernel the firmware runs (all nodes at once through kairos.batch.Bank,
bit-identical to one kairos.Channel per node) and sends the same wire
frames a real node sends: a hello, a report every `every` samples, collapse
events at once, pongs to the hub's pings (each node has its own clock
offset).  A slow shared "mood" makes the rhythms clean or noisy together, so
mean coherence G rises above 0.75 and falls below 0.70 in cycles of
`period` seconds: emergence visibly happens and ends.  Each node's rhythm
also drifts in phase, so the alignment R moves on its own.
"""
from __future__ import annotations

import math
import os
import threading
import time
from collections.abc import Callable

import numpy as np

from becomingone.transports.base import Transport
from kairos import wire
from kairos.batch import Bank, isqrt

_M30 = (1 << 30) - 1
_S = 6  # a shorter integrator than the kernel's default (2**6 samples): the sim's
# moods change within seconds; every other kernel setting is kairos.defaults'
_MEAN_S = 6  # the firmware's EMA of u (node/app.py)


class SimMesh(Transport):
    kind = "sim"

    def __init__(self, n: int, sink: Callable, log: Callable[[str], None], *, seed: int = 1,
                 period: float = 60.0, sample_hz: float = 50.0, every: int = 5,
                 clock: Callable[[], float] = time.time) -> None:
        super().__init__({}, sink, log)
        self.n, self.period, self.sample_hz, self.every = n, period, sample_hz, every
        self._clock = clock
        rng = np.random.default_rng(seed)
        self._rng = rng
        self.names = [f"sim-{i:04d}" for i in range(n)]
        # A random boot id per node and run (os.urandom), as a real node's: a
        # hub that restarts on the same store must not take a new run's frames
        # for the old run's (its dedup is seeded from the store), whatever the
        # seed and the clock.  The seeded draw stays, so the rest of the
        # seeded stream (rhythms, phases, noise) is what it always was.
        drawn = rng.integers(1, _M30, n)
        fresh = np.frombuffer(os.urandom(4 * n), "<u4").astype(np.int64)
        self._boot = (drawn ^ fresh) & _M30
        self._seq = np.zeros(n, np.int64)
        self._offset_ms = rng.integers(0, 1 << 29, n)  # each node's own clock
        self._rhythm = rng.choice([8, 16], n)  # samples per cycle: lags 8 and 16 see it
        self._phase = rng.uniform(0, 2 * math.pi, n)
        self._drift = rng.normal(0, 0.02, n)  # rad per sample: slow phase wander
        self._mood_lag = rng.uniform(0, 0.15, n)  # nodes follow the mood a little late
        self._bank = Bank(n, s=_S)
        self._mean = np.zeros(n, np.int64)
        self._n = 0  # samples taken
        self._t0 = clock()
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None
        self._pending: list[dict] = []  # pongs to send with the next block
        self._lock = threading.Lock()
        self._heard = set(self.names)

    # -- Transport API --------------------------------------------------------
    def start(self) -> None:
        self._emit([self._hello(i) for i in range(self.n)])
        self._thread = threading.Thread(target=self._run, name="sim-mesh", daemon=True)
        self._thread.start()

    def stop(self) -> None:
        self._stop.set()
        if self._thread:
            self._thread.join(timeout=5)

    def send(self, msg: dict) -> None:
        # A ping gets its pong (t1/t2 in the node's own ticks); commands get
        # an ack: the simulated nodes have no outputs to drive.
        i = self._index(msg["node"])
        now_ms = self._node_ms(i)
        if msg["t"] == "ping":
            reply = self._frame(i, "pong", id=msg["id"], t0=msg["t0"], t1=now_ms, t2=now_ms)
        else:
            reply = self._frame(i, "ack", id=msg["id"], ok=1, err="")
        with self._lock:
            self._pending.append(reply)

    def nodes(self) -> set[str]:
        return self._heard

    def status(self) -> dict:
        return {"kind": self.kind, "nodes": self.n, "samples": self._n, "mood": self.mood()}

    # -- the simulation ---------------------------------------------------------
    def mood(self, t: float | None = None) -> float:
        """0..1: how clean the rhythms are now (a slow sine over `period`)."""
        t = (self._clock() if t is None else t) - self._t0
        return 0.5 - 0.5 * math.cos(2 * math.pi * t / self.period)

    def block(self) -> list[dict]:
        """Take `every` samples on every node; return the frames they send."""
        m = self.every
        t = self._clock() - self._t0
        nn = self._n + np.arange(m)
        phase = self._phase[:, None] + 2 * math.pi * nn[None, :] / self._rhythm[:, None]
        self._phase += self._drift * m
        mood = 0.5 - 0.5 * np.cos(2 * math.pi * (t / self.period - self._mood_lag))
        amp = 9000 * mood[:, None]
        noise = self._rng.normal(0, 2500, (self.n, m))
        U = np.clip(amp * np.sin(phase) + noise, -16384, 16384).astype(np.int64)
        res = self._bank.run(U)
        for j in range(m):  # the firmware's mean: acc += u - (acc >> 6)
            self._mean += U[:, j] - (self._mean >> _MEAN_S)
        self._n += m
        frames = []
        hits = np.argwhere(res.ev)
        if len(hits):  # c at the transition's own sample, as the firmware sends it
            cs = isqrt(res.c2[hits[:, 0], hits[:, 1]].astype(np.int64) << 15)
            for (i, j), c in zip(hits.tolist(), cs.tolist(), strict=True):
                frames.append(self._event(i, int(res.ev[i, j]) > 0, j, int(c)))
        frames += self._reports()
        with self._lock:
            frames += self._pending
            self._pending = []
        return frames

    def _run(self) -> None:
        dt = self.every / self.sample_hz
        next_t = time.monotonic()
        while not self._stop.is_set():
            self._emit(self.block())
            next_t += dt
            delay = next_t - time.monotonic()
            if delay < -1.0:  # far behind (a loaded machine): skip, don't burst
                next_t = time.monotonic()
            self._stop.wait(max(0.0, delay))

    def _emit(self, frames: list[dict]) -> None:
        t_rx = self._clock()
        for f in frames:
            self.sink(f, "sim", t_rx, None)

    # -- frames -------------------------------------------------------------------
    def _index(self, node: str) -> int:
        try:
            i = int(node.rsplit("-", 1)[1])
        except (IndexError, ValueError):
            i = -1
        if not 0 <= i < self.n or self.names[i] != node:
            from becomingone.transports.base import TransportError

            raise TransportError(f"no simulated node {node!r}")
        return i

    def _node_ms(self, i: int) -> int:
        return int(self._clock() * 1000 + self._offset_ms[i]) & _M30

    def _frame(self, idx: int, t: str, **fields) -> dict:
        seq = int(self._seq[idx])
        self._seq[idx] = (seq + 1) & _M30
        return dict({"t": t, "node": self.names[idx], "boot": int(self._boot[idx]),
                     "seq": seq, "tick": self._node_ms(idx)}, **fields)

    def _hello(self, i: int) -> dict:
        b = self._bank  # the hello says what the bank runs, as the firmware's does
        return self._frame(i, "hello", board="sim", fw="sim-mesh",
                           period=round(1000 / self.sample_hz), every=self.every, weight=1,
                           caps=["sim"], ch=[{"name": "rhythm", "lags": list(b.lags), "s": b.s,
                                              "s0": b.s0, "ic": b.ic}])

    def _event(self, i: int, entered: bool, j: int, c: int) -> dict:
        return self._frame(i, "event", i=0, on=1 if entered else 0, c=c,
                           n=(self._n - self.every + j + 1) & _M30)

    def _reports(self) -> list[dict]:
        b = self._bank
        cols = [self._mean >> _MEAN_S, b.e, b.k, b.c, b.t_re, b.t_im, b.collapsed.astype(int)]
        rows = np.stack(cols, axis=1).tolist()
        coh = b.coh.tolist()  # (n, K): each node's per-lag spectrum
        n = self._n & _M30
        return [self._frame(i, "report", n=n, drop=0, miss=0, ch=[rows[i]], coh=[coh[i]])
                for i in range(self.n)]


def validate_all(frames: list[dict]) -> list[str]:
    """Reasons the wire model rejects any of these frames (tests use it)."""
    return [r for r in (wire.validate(f) for f in frames) if r]
