"""JSON views of the hub, shared by the REST routes and the WebSocket feed.

The core thread changes the hub's data while a request reads it, so these
read only through the hub's public accessors, which hand out copies taken
under a lock (becomingone.core).  Nothing here writes.
"""
from __future__ import annotations

import cmath
import math
from typing import Any

from becomingone.nodes.spectra import columns_from_rows

Q15 = 32768.0


def num(x: Any, nd: int | None = None) -> float | None:
    """A finite float (rounded to nd places) or None: JSON never gets NaN."""
    if x is None or isinstance(x, bool):
        return None
    try:
        f = float(x)
    except (TypeError, ValueError):
        return None
    if not math.isfinite(f):
        return None
    return round(f, nd) if nd is not None else f


def phasor(z: complex) -> dict[str, float | None]:
    z = complex(z or 0)
    return {"re": num(z.real), "im": num(z.imag), "abs": num(abs(z)),
            "deg": num(math.degrees(cmath.phase(z))) if z else 0.0}


def mesh(hub: Any) -> dict[str, Any]:
    """G, R, Psi, emergence and the witness, as of the last tick."""
    ms, ws = hub.mesh_state, hub.witness_state
    if ms is None:
        return {"ready": False, "t": None, "G": None, "R": None, "psi": phasor(0j),
                "emerged": False, "since": None, "participants": [], "live": 0, "stale": 0,
                "witness": None}
    out = {"ready": True, "t": num(ms.t), "G": num(ms.G), "R": num(ms.R), "psi": phasor(ms.psi),
           "emerged": bool(ms.emerged), "since": num(ms.since),
           "participants": list(ms.participants), "live": len(ms.live),
           "stale": len(ms.stale), "enter": hub.mesh.enter, "leave": hub.mesh.leave,
           "witness": None}
    if ws is not None:
        g, r, psi = ws.W
        out["witness"] = {"W": {"G": num(g), "R": num(r), "psi": phasor(psi)},
                          "surprise": num(ws.S), "surprise_avg": num(ws.S_avg),
                          "event": bool(ws.event), "converged": bool(ws.converged)}
    return out


def _meta(info: dict) -> dict[str, Any]:
    hello = info.get("hello") or {}
    src = info.get("source") or ""
    return {"board": hello.get("board"), "fw": hello.get("fw"),
            "transport": src.split(":", 1)[0] or None, "source": src or None,
            "caps": list(hello.get("caps", [])),
            "channel_names": [c.get("name") for c in hello.get("ch", [])]}


def node_row(name: str, info: dict, st: dict | None) -> dict[str, Any]:
    st = st or {}
    row = {"node": name, **_meta(info), "online": bool(info.get("online")),
           "stale": bool(info.get("stale")), "last_seen": num(info.get("last_seen")),
           "age": num(info.get("age"), 3), "c": num(st.get("c"), 4),
           "tau": num(st.get("tau"), 4), "collapsed": bool(st.get("collapsed")),
           "aligned": bool(st.get("aligned")),
           "channels": [{"name": c["name"], "c": num(c["c"], 4), "k": c["k"],
                         "collapsed": c["collapsed"]} for c in st.get("channels", [])]}
    return row


def nodes(hub: Any, now: float) -> list[dict[str, Any]]:
    snap = hub.registry.snapshot(now)["nodes"]
    rows = hub.nodes.rows(now)
    return [node_row(n, info, rows.get(n)) for n, info in snap.items()]


def node(hub: Any, name: str, now: float) -> dict[str, Any] | None:
    snap = hub.registry.node_json(name, now)
    if snap is None:
        return None
    st = hub.nodes.rows(now, [name]).get(name)
    row = node_row(name, snap, st)
    row["hello"] = snap["hello"]
    row["counters"] = {k: snap[k] for k in ("frames", "rejects", "gaps", "duplicates",
                                            "replays", "drops", "reboots")}
    row["boot"] = snap["boot"]
    row["report_period"] = num(snap["report_period"])
    return row


def lags_s(hub: Any, name: str, ch: int) -> tuple[list[int], list[float]]:
    """The channel's lags (samples) and the same in seconds, from its hello."""
    h = hub.registry.hello(name) or {}
    try:
        lags = list(h["ch"][ch]["lags"])
        return lags, [lag * h["period"] / 1000.0 for lag in lags]
    except (KeyError, IndexError, TypeError):
        return [], []


def history(hub: Any, name: str, ch: int, since: float, until: float,
            points: int) -> dict[str, Any]:
    """The channel's coherence over [since, until] in at most `points` buckets
    (all storage tiers; mean/min/max of c), with the dominant lag per bucket
    (the most frequent one in the raw reports; raw rows only, kept hours)."""
    rows = hub.store.history(name, ch, since, until)
    raw = hub.store.reports(name, ch, since, until, limit=50000)
    lags, secs = lags_s(hub, name, ch)
    width = (until - since) / points
    buckets: list[dict[str, Any]] = []
    index: dict[int, dict[str, Any]] = {}

    def bucket(t: float) -> dict[str, Any]:
        i = min(points - 1, max(0, int((t - since) / width)))
        b = index.get(i)
        if b is None:
            b = index[i] = {"t": since + i * width, "n": 0, "sc": 0.0, "min": 1.0, "max": 0.0,
                            "coll": 0, "ks": {}}
            buckets.append(b)
        return b

    for r in rows:
        b = bucket(r["t"])
        c = r["c"] / Q15
        b["n"] += r["n_samples"]
        b["sc"] += c * r["n_samples"]
        b["min"], b["max"] = min(b["min"], c), max(b["max"], c)
        b["coll"] = max(b["coll"], int(r["coll"] or 0))
    for r in raw:
        ks = bucket(r["t_hub"])["ks"]
        ks[r["k"]] = ks.get(r["k"], 0) + 1
    out = []
    for b in sorted(buckets, key=lambda b: b["t"]):
        k = max(b["ks"], key=b["ks"].get) if b["ks"] else None
        out.append({"t": num(b["t"], 3), "c": num(b["sc"] / b["n"], 4) if b["n"] else None,
                    "c_min": num(b["min"], 4) if b["n"] else None,
                    "c_max": num(b["max"], 4) if b["n"] else None,
                    "collapsed": bool(b["coll"]), "k": k,
                    "tau": secs[k] if k is not None and 0 <= k < len(secs) else None})
    return {"node": name, "ch": ch, "since": since, "until": until, "points": out,
            "lags": lags, "lags_s": secs, "rows_read": len(rows)}


def spectrum(hub: Any, name: str, ch: int, now: float) -> dict[str, Any]:
    """The channel's per-lag coherence over the last minutes, from the hub's
    memory (becomingone.nodes.spectra), and for the time before it (after a restart)
    from the raw reports in SQLite: columns oldest first, c per lag 0..1."""
    sp = hub.nodes.spectra
    got = sp.get(name, ch, now) or {"times": [], "lags": [], "c": []}
    lags, secs = lags_s(hub, name, ch)
    first = got["times"][0] if got["times"] else now
    if first > now - sp.span + sp.bucket:  # a young history (a restart): older from SQLite
        K = len(got["c"][0]) if got["c"] else len(lags)
        older = columns_from_rows(hub.store.spectra(name, ch, now - sp.span, first - 1e-6),
                                  sp.bucket, K)
        got = {"times": [t for t, _ in older] + got["times"], "lags": got["lags"],
               "c": [c for _, c in older] + got["c"]}
    if got["lags"] and got["lags"] != lags:  # (lags changed, no hello since)
        lags, secs = got["lags"], []
    return {"node": name, "ch": ch, "span": sp.span, "bucket": sp.bucket,
            "times": [num(t, 3) for t in got["times"]], "lags": lags,
            "lags_ms": [num(s * 1000.0, 3) for s in secs],
            "c": [[num(v / Q15, 4) for v in col] for col in got["c"]]}


def recent_events(hub: Any) -> list[dict[str, Any]]:
    """The hub's recent events, oldest first (a copy)."""
    return hub.recent


def event_json(rec: dict) -> dict[str, Any]:
    return {k: (num(v) if isinstance(v, float) else v) for k, v in rec.items()}


def jsonable(x: Any) -> Any:
    """x with complex numbers as {re, im}, tuples as lists, NaN/inf as None."""
    if isinstance(x, dict):
        return {str(k): jsonable(v) for k, v in x.items()}
    if isinstance(x, list | tuple):
        return [jsonable(v) for v in x]
    if isinstance(x, complex):
        return {"re": num(x.real), "im": num(x.imag)}
    if isinstance(x, float):
        return num(x)
    return x
