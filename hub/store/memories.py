"""BLEND memories (docs/kairos.md §7) in the hub's store.

``MemoriesMixin`` is part of :class:`becomingone.store.Store` (which supplies the
connection and the transactions); use it through ``Store``.

``remember`` stores a signature ``{node: (c, tau_s, phase_re, phase_im)}``
(c in [0, 1]) with strength s = c and decay rate r = r0·(1 − 0.5·c); the
strength at ``now`` is s·exp(−r·(now − t_ref)) (no growth if ``now < t_ref``).
See ``similarity`` for the recall measure.
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager

from becomingone.store import eventlog
from becomingone.store.checks import Signature, StoreError, check_signature, finite


def similarity(a: Signature, b: Signature) -> float:
    """Similarity of two signatures in [0, 1].

    Per node present in both: phase * c_agreement * tau_agreement, where
    phase = (1 + cos Δφ)/2 from the phasors (re, im) (0.5 when either phasor
    is zero: phase unknown), c_agreement = 1 − |c_a − c_b| and
    tau_agreement = min(τ_a, τ_b)/max(τ_a, τ_b) (1 when both are 0).  These
    are summed and divided by the number of nodes in *either* signature, so
    nodes only one side has count as 0: a one-node query matches a one-node
    memory better than a ten-node one.  0 when no node is shared.
    """
    shared = a.keys() & b.keys()
    if not shared:
        return 0.0
    total = 0.0
    for node in shared:
        ca, ta, ra, ia = a[node]
        cb, tb, rb, ib = b[node]
        ma, mb = math.hypot(ra, ia), math.hypot(rb, ib)
        phase = 0.5 * (1.0 + (ra * rb + ia * ib) / (ma * mb)) if ma > 0 and mb > 0 else 0.5
        hi = max(ta, tb)
        tau = min(ta, tb) / hi if hi > 0 else 1.0
        total += phase * (1.0 - abs(ca - cb)) * tau
    return min(1.0, max(0.0, total / len(a.keys() | b.keys())))


def _decayed(s: float, r: float, t_ref: float, now: float) -> float:
    return s * math.exp(-r * max(0.0, now - t_ref))


def _load_signature(text: str) -> Signature:
    """A stored signature (JSON lists) back as {node: tuple}."""
    return {k: tuple(v) for k, v in eventlog.decode(text).items()}


class MemoriesMixin:
    """Store methods for BLEND memories."""

    # supplied by becomingone.store.Store
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _read: Callable[[], AbstractContextManager[sqlite3.Connection]]
    r0: float
    prune_below: float

    def remember(self, kind: str, signature: Signature, c: float, t: float) -> int:
        """A new memory with strength c (in [0, 1]); returns its id (never reused)."""
        if not isinstance(kind, str) or not kind:
            raise StoreError(f"memory kind must be a non-empty str, got {kind!r}")
        sig = check_signature(signature)
        if not finite(c) or not 0 <= c <= 1 or not finite(t):
            raise StoreError(f"remember: need 0 <= c <= 1 and a finite t, got c={c!r}, t={t!r}")
        r = self.r0 * (1.0 - 0.5 * c)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO memory(kind, created, c, s, t_ref, r, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, float(t), float(c), float(c), float(t), r,
                 eventlog.encode({k: list(v) for k, v in sig.items()})),
            )
            return int(cur.lastrowid)

    def strength(self, mem_id: int, now: float) -> float:
        with self._read() as db:
            row = db.execute("SELECT s, r, t_ref FROM memory WHERE id = ?", (mem_id,)).fetchone()
        if row is None:
            raise StoreError(f"no memory with id {mem_id!r}")
        return _decayed(row[0], row[1], row[2], now)

    def recall(
        self, signature: dict, now: float, k: int = 5, boost: float = 0.2,
        min_similarity: float = 0.0,
    ) -> list[tuple[int, float, float]]:
        """The k memories most similar to signature (similarity > min_similarity, and
        not already below prune_below), best first: (id, similarity, new strength).
        Each is boosted: s ← s_now + boost·(1 − s_now), decay restarts at now."""
        sig = check_signature(signature)
        if not 0 <= boost <= 1 or not finite(now):
            raise StoreError(f"recall: need 0 <= boost <= 1 and a finite now, got {boost}, {now}")
        with self._tx() as db:
            found = []
            for mid, s, r, t_ref, text in db.execute(
                "SELECT id, s, r, t_ref, signature FROM memory"
            ):
                st = _decayed(s, r, t_ref, now)
                if st < self.prune_below:
                    continue
                sim = similarity(sig, _load_signature(text))
                if sim > min_similarity:
                    found.append((sim, st, mid))
            found.sort(key=lambda x: (-x[0], -x[1], x[2]))
            out = []
            for sim, st, mid in found[:k]:
                new = st + boost * (1.0 - st)
                db.execute(
                    "UPDATE memory SET s = ?, t_ref = ?, recalls = recalls + 1 WHERE id = ?",
                    (new, float(now), mid),
                )
                out.append((mid, sim, new))
            return out

    def decay(self, now: float) -> int:
        """Delete memories whose strength at now is below prune_below; returns how many."""
        with self._tx() as db:
            dead = [
                (mid,)
                for mid, s, r, t_ref in db.execute("SELECT id, s, r, t_ref FROM memory")
                if _decayed(s, r, t_ref, now) < self.prune_below
            ]
            db.executemany("DELETE FROM memory WHERE id = ?", dead)
            return len(dead)

    def memories(self, now: float) -> list[dict]:
        """All memories by id: id, kind, created, c, strength (at now), t_ref, recalls,
        signature {node: (c, tau, re, im)}."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, kind, created, c, s, r, t_ref, recalls, signature FROM memory"
                " ORDER BY id"
            ).fetchall()
        return [
            {"id": mid, "kind": kind, "created": created, "c": c,
             "strength": _decayed(s, r, t_ref, now), "t_ref": t_ref, "recalls": n,
             "signature": _load_signature(sig)}
            for mid, kind, created, c, s, r, t_ref, n, sig in rows
        ]
