"""Per-node state the core keeps between frames: the latest report, the
Master tier per channel, and the views the mesh, the rules, the memories
and the web page read."""
from __future__ import annotations

from typing import Any

from becomingone.nodes.spectra import Spectra
from becomingone.slowtier.master import Master
from becomingone.slowtier.mesh import NodeView

_Q15 = 32768.0


class NodeStates:
    def __init__(self, hub: Any) -> None:
        self.hub = hub
        self.latest: dict[str, dict] = {}  # node -> its newest report frame
        # Collapses that came before the node's first report: remembered
        # (as BLEND memories) once a report gives them a signature.
        self.pending: dict[str, list[tuple[float, float]]] = {}  # node -> [(c, t_hub)]
        self.spectra = Spectra()  # per-lag coherence over the last minutes (the web page)

    # -- frames ---------------------------------------------------------------------
    def on_hello(self, msg: dict) -> None:
        node = msg["node"]
        names = ", ".join(c["name"] for c in msg["ch"])
        self.spectra.on_hello(node, [c["lags"] for c in msg["ch"]])
        self.hub.event("hello", f"{node}: {msg['board']} fw {msg['fw']}, channels {names}",
                       node=node)
        self.hub.store.log("hello", {k: msg[k] for k in ("node", "board", "fw", "boot")},
                           self.hub.clock())

    def on_report(self, msg: dict) -> None:
        node, t = msg["node"], msg["t_hub"]
        cfg = self.hub.cfg["master"]
        for i, row in enumerate(msg["ch"]):
            m = self.hub.masters.get((node, i))
            if m is None:
                m = self.hub.masters[(node, i)] = Master(tuple(cfg["taus"]), cfg["align_rad"])
            # A resent (older) frame must not step the averages back in time.
            t_m = t if m._t is None or t >= m._t else m._t
            m.update(min(1.0, row[3] / 32767), float(row[4]), float(row[5]), t_m)
        self.latest[node] = msg
        coh = msg.get("coh")
        if coh:
            self.spectra.add(node, coh, t, self.hello(node))
        if node in self.pending and msg["ch"]:
            sig = self.signature([node])
            for c, t_ev in self.pending.pop(node):
                self.hub.store.remember("collapse", sig, c, t_ev)

    def on_event(self, msg: dict) -> None:
        node, c = msg["node"], msg["c"] / _Q15
        what = "collapse" if msg["on"] else "release"
        self.hub.event("collapse", f"{node} channel {msg['i']} {what}", node=node, c=c)
        self.hub.store.log("collapse", {"node": node, "ch": msg["i"], "on": msg["on"], "c": c},
                           msg["t_hub"])
        if msg["on"]:
            sig = self.signature([node])
            if sig:
                self.hub.store.remember("collapse", sig, c, msg["t_hub"])
            else:  # no report yet, so no (c, tau, phase) to remember it by: later
                self.pending.setdefault(node, []).append((c, msg["t_hub"]))
                del self.pending[node][:-8]

    # -- derived views ----------------------------------------------------------------
    def hello(self, node: str) -> dict | None:
        info = self.hub.registry.nodes.get(node)
        return info.hello if info is not None else None

    def caps(self, node: str) -> list[str]:
        h = self.hello(node)
        return list(h["caps"]) if h else []

    def tau(self, node: str, ch: int, k: int) -> float:
        """The dominant lag in seconds (0 before a hello)."""
        h = self.hello(node)
        try:
            return h["ch"][ch]["lags"][k] * h["period"] / 1000.0
        except (TypeError, IndexError, KeyError):
            return 0.0

    def views(self, now: float) -> list[NodeView]:
        reg, out = self.hub.registry, []
        for node, msg in self.latest.items():
            info = reg.nodes.get(node)
            if info is None or not msg["ch"] or not info.online:
                continue  # an offline node (its last will) is out at once
            m = self.hub.masters.get((node, 0))
            h = info.hello or {}
            w = self.hub.cfg.weight(node, h.get("weight", 1))
            out.append(NodeView(node=node, weight=w, z=m.t_sync if m else 0j,
                                c=msg["ch"][0][3] / _Q15,
                                last_seen=info.last_seen,
                                period=info.report_period))
        return out

    def states(self, now: float) -> dict[str, dict]:
        stale = set(self.hub.registry.stale(now))
        out = {}
        for node, msg in self.latest.items():
            info = self.hub.registry.nodes.get(node)
            h = (info.hello if info else None) or {}
            names = [c["name"] for c in h.get("ch", [])]
            chans = [{"name": names[i] if i < len(names) else str(i), "c": r[3] / _Q15,
                      "k": r[2], "collapsed": bool(r[6])} for i, r in enumerate(msg["ch"])]
            m = self.hub.masters.get((node, 0))
            first = chans[0] if chans else {"c": 0.0, "k": 0, "collapsed": False}
            out[node] = {"online": node not in stale, "c": first["c"],
                         "tau": self.tau(node, 0, first["k"]), "collapsed": first["collapsed"],
                         "aligned": bool(m and m.aligned), "caps": list(h.get("caps", [])),
                         "channels": chans}
        return out

    def signature(self, nodes: list[str]) -> dict[str, tuple[float, float, float, float]]:
        """BLEND memory signature: per node (c, tau seconds, phase re, im)."""
        sig = {}
        for node in nodes:
            msg = self.latest.get(node)
            if msg is None or not msg["ch"]:
                continue
            row = msg["ch"][0]
            m = self.hub.masters.get((node, 0))
            z = m.z if m else 0j
            ph = z / abs(z) if abs(z) > 0 else 0j
            sig[node] = (row[3] / _Q15, self.tau(node, 0, row[2]), ph.real, ph.imag)
        return sig

    def summary(self, state: dict) -> dict:
        """The STATE made JSON-ready (complex numbers as re/im)."""
        psi = state["psi"]
        out = {k: v for k, v in state.items() if k != "psi"}
        out["psi"] = {"re": psi.real, "im": psi.imag}
        return out
