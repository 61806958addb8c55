"""Node state: what the core keeps per node between frames, and the views
of it the mesh, the rules, the memories and the web read.

Per node: its latest report, the Master tier of each of its channels, and
collapses that came before its first report (remembered once a report gives
them a signature); per node channel, the spectra.  The core thread writes
(``on_hello``, ``on_report``, ``on_event``); any thread reads, through the
methods below, which return copies.  One lock guards it all; the slow part
of a view (building 1,000 rows) runs outside it, on what was copied inside.

NodeStates calls nothing back: what a frame asks the store to remember is
returned to the caller (``Memory``), the registry is read through its own
thread-safe accessors, and the settings come in as values.
"""
from __future__ import annotations

import threading
from collections.abc import Callable
from typing import Any, NamedTuple

from becomingone.nodes.registry import Presence, Registry
from becomingone.nodes.spectra import Spectra
from becomingone.slowtier.master import Master
from becomingone.slowtier.mesh import NodeView

_Q15 = 32768.0
PENDING_MAX = 8  # collapses kept per node while it has not reported yet

Signature = dict[str, tuple[float, float, float, float]]


class Memory(NamedTuple):
    """A collapse for the store to remember (Store.remember("collapse", ...))."""

    signature: Signature
    c: float
    t: float


class _Seen(NamedTuple):
    """One node as copied under the lock: its report and its first
    channel's Master values (what the views read)."""

    report: dict
    aligned: bool
    z: complex
    t_sync: complex


def tau_of(hello: dict | None, ch: int, k: int) -> float:
    """Lag k of channel ch in seconds, from a hello (0 before one)."""
    try:
        return hello["ch"][ch]["lags"][k] * hello["period"] / 1000.0  # type: ignore[index]
    except (TypeError, IndexError, KeyError):
        return 0.0


class NodeStates:
    """Each node's latest report, Master tier and pending collapses, behind one lock."""

    def __init__(self, registry: Registry, *, taus: tuple[float, ...] = (60.0, 600.0, 3600.0),
                 align_rad: float = 0.3,
                 weight: Callable[[str, float], float] = lambda node, w: float(w),
                 spectra: Spectra | None = None) -> None:
        """registry: who the nodes are (hellos, liveness); taus, align_rad:
        the [master] settings; weight(node, hello weight): the node's weight
        in the mesh (the config may override the hello's)."""
        self.registry = registry
        self.taus, self.align_rad = tuple(taus), float(align_rad)
        self.weight = weight
        self.spectra = spectra or Spectra()  # (its own lock) per-lag coherence, the web page
        self._lock = threading.Lock()
        self._latest: dict[str, dict] = {}  # node -> its newest report frame (never mutated)
        self._masters: dict[tuple[str, int], Master] = {}
        self._pending: dict[str, list[tuple[float, float]]] = {}  # node -> [(c, t_hub)]

    # -- frames (the core thread) -----------------------------------------------------
    def on_hello(self, msg: dict) -> None:
        self.spectra.on_hello(msg["node"], [c["lags"] for c in msg["ch"]])

    def on_report(self, msg: dict) -> list[Memory]:
        """Take a report (with its t_hub); returns the collapses that waited
        for it, now with a signature."""
        node, t = msg["node"], msg["t_hub"]
        with self._lock:
            for i, row in enumerate(msg["ch"]):
                m = self._masters.get((node, i))
                if m is None:
                    m = self._masters[(node, i)] = Master(self.taus, self.align_rad)
                # A resent (older) frame must not step the averages back in time.
                t_m = t if m._t is None or t >= m._t else m._t
                m.update(min(1.0, row[3] / 32767), float(row[4]), float(row[5]), t_m)
            self._latest[node] = msg
            waiting = self._pending.pop(node, None) if msg["ch"] else None
        coh = msg.get("coh")
        if coh:
            self.spectra.add(node, coh, t, self.registry.hello(node))
        if not waiting:
            return []
        sig = self.signature([node])
        return [Memory(sig, c, t_ev) for c, t_ev in waiting]

    def on_event(self, msg: dict) -> list[Memory]:
        """Take a collapse/release event; returns the collapse to remember,
        or nothing (a release, or no report yet: it waits for one)."""
        if not msg["on"]:
            return []
        node, c = msg["node"], msg["c"] / _Q15
        sig = self.signature([node])
        if sig:
            return [Memory(sig, c, msg["t_hub"])]
        with self._lock:  # no report yet, so no (c, tau, phase) to remember it by: later
            waiting = self._pending.setdefault(node, [])
            waiting.append((c, msg["t_hub"]))
            del waiting[:-PENDING_MAX]
        return []

    # -- reading (any thread) ---------------------------------------------------------
    def _seen(self, nodes: list[str] | None = None) -> dict[str, _Seen]:
        """Copies, under the lock, of what the views read (all nodes, or these)."""
        with self._lock:
            names = list(self._latest) if nodes is None else nodes
            out = {}
            for node in names:
                msg = self._latest.get(node)
                if msg is None:
                    continue
                m = self._masters.get((node, 0))
                out[node] = (_Seen(msg, m.aligned, m.z, m.t_sync) if m is not None
                             else _Seen(msg, False, 0j, 0j))
            return out

    def reported(self) -> list[str]:
        """The nodes that have sent a report (in the order they first did)."""
        with self._lock:
            return list(self._latest)

    def report(self, node: str) -> dict | None:
        """A copy of the node's latest report frame, or None."""
        with self._lock:
            msg = self._latest.get(node)
        return None if msg is None else dict(msg)

    def __len__(self) -> int:
        with self._lock:
            return len(self._latest)

    def caps(self, node: str) -> list[str]:
        h = self.registry.hello(node)
        return list(h["caps"]) if h else []

    def tau(self, node: str, ch: int, k: int) -> float:
        """The dominant lag in seconds (0 before a hello)."""
        return tau_of(self.registry.hello(node), ch, k)

    def views(self, now: float) -> list[NodeView]:
        """What the mesh needs of each online node that has reported."""
        seen, pres = self._seen(), self.registry.presence(now)
        out = []
        for node, s in seen.items():
            p = pres.get(node)
            if p is None or not s.report["ch"] or not p.online or p.last_seen is None:
                continue  # an offline node (its last will) is out at once
            w = self.weight(node, (p.hello or {}).get("weight", 1))
            out.append(NodeView(node=node, weight=w, z=s.t_sync, c=s.report["ch"][0][3] / _Q15,
                                last_seen=p.last_seen, period=p.report_period))
        return out

    def rows(self, now: float, nodes: list[str] | None = None) -> dict[str, dict]:
        """Per node that has reported (all, or these), its row in
        STATE["nodes"]: online, c, tau, collapsed, aligned, caps, and per
        channel name, c, k, collapsed."""
        seen, pres = self._seen(nodes), self.registry.presence(now)
        return {node: _row(s, pres.get(node)) for node, s in seen.items()}

    def signature(self, nodes: list[str]) -> Signature:
        """BLEND memory signature: per node (c, tau seconds, phase re, im)."""
        sig = {}
        for node, s in self._seen(list(nodes)).items():
            if not s.report["ch"]:
                continue
            row, z = s.report["ch"][0], s.z
            ph = z / abs(z) if abs(z) > 0 else 0j
            sig[node] = (row[3] / _Q15, self.tau(node, 0, row[2]), ph.real, ph.imag)
        return sig

    # -- saved state ------------------------------------------------------------------
    def saved(self) -> dict[str, dict]:
        """The Master tiers for the store ("master/<node>/<ch>"), state only."""
        with self._lock:
            return {f"master/{n}/{ch}": m.to_dict() for (n, ch), m in self._masters.items()}

    def restore(self, saved: dict[tuple[str, int], dict]) -> list[str]:
        """Master tiers a previous run saved, under this run's settings; what
        cannot be restored (e.g. saved under another number of taus) starts
        afresh.  Returns one line per such channel."""
        bad = []
        with self._lock:
            for (node, ch), d in saved.items():
                try:
                    self._masters[(node, ch)] = Master.from_dict(d, taus=self.taus,
                                                                 align_rad=self.align_rad)
                except (KeyError, TypeError, ValueError) as e:
                    bad.append(f"master {node}/{ch}: {e}")
        return bad


def _row(s: _Seen, p: Presence | None) -> dict[str, Any]:
    h = (p.hello if p else None) or {}
    names = [c["name"] for c in h.get("ch", [])]
    chans = [{"name": names[i] if i < len(names) else str(i), "c": r[3] / _Q15,
              "k": r[2], "collapsed": bool(r[6])} for i, r in enumerate(s.report["ch"])]
    first = chans[0] if chans else {"c": 0.0, "k": 0, "collapsed": False}
    return {"online": p is not None and not p.stale, "c": first["c"],
            "tau": tau_of(h, 0, first["k"]), "collapsed": first["collapsed"],
            "aligned": bool(s.aligned), "caps": list(h.get("caps", [])), "channels": chans}
