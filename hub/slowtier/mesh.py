"""Mesh sync and emergence (docs/kairos.md §5).

From each live node's weight w, phasor z (its primary channel's T_sync,
|z| <= 1) and coherence c:

    Psi = sum w z / sum w             global phase
    G   = sum w c / sum w             global coherence (mean node coherence)
    R   = |sum w z/|z|| / sum w       alignment (Kuramoto order parameter)

All three are weighted means of things bounded by 1, so they lie in [0, 1]
(|Psi| <= 1).  A node with z == 0 has no phase: it adds nothing to R's sum
but its weight still counts, so silence-of-phase pulls R down rather than
being ignored.

Emergence ("THE_ONE") is a hysteresis on G: it enters once G has stayed
>= ``enter`` over ``dwell`` seconds of updates and leaves as soon as G drops
below ``leave``; between the two it keeps its state, so a mesh hovering at
the threshold does not chatter.

Pure math: float64 / complex, no I/O, no clock reads (``now`` is passed in).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass, field
from typing import Any

# Inputs may overshoot 1 by float rounding upstream (e.g. |T_sync| from a sum).
_TOL = 1e-9


@dataclass
class NodeView:
    """What the mesh needs of one node."""

    node: str
    weight: float  # > 0: capability from its board definition
    z: complex  # its primary channel's T_sync phasor, |z| <= 1
    c: float  # its coherence in [0, 1]
    last_seen: float  # hub seconds of the last report
    period: float  # its report period in seconds (sample period * R), > 0


@dataclass
class MeshState:
    """The mesh at one update."""

    t: float
    psi: complex
    G: float
    R: float
    live: list[str]
    stale: list[str]
    emerged: bool
    since: float | None  # when the current emergence was declared
    participants: list[str] = field(default_factory=list)
    event: str | None = None  # "entered" / "left" on a transition


def _check_node(v: NodeView) -> None:
    name = f"node {v.node!r}"
    if not (math.isfinite(v.weight) and v.weight > 0):
        raise ValueError(f"{name}: weight must be a finite number > 0, got {v.weight!r}")
    if not (math.isfinite(v.period) and v.period > 0):
        raise ValueError(f"{name}: period must be a finite number > 0, got {v.period!r}")
    if not math.isfinite(v.last_seen):
        raise ValueError(f"{name}: last_seen must be finite, got {v.last_seen!r}")
    if not (math.isfinite(v.c) and -_TOL <= v.c <= 1 + _TOL):
        raise ValueError(f"{name}: c must be in [0, 1], got {v.c!r}")
    z = complex(v.z)
    if not (math.isfinite(z.real) and math.isfinite(z.imag) and abs(z) <= 1 + _TOL):
        raise ValueError(f"{name}: z must be finite with |z| <= 1, got {v.z!r}")


class Mesh:
    """Global phase, coherence, alignment and the emergence state machine."""

    def __init__(
        self,
        enter: float = 0.75,
        leave: float = 0.70,
        dwell: float = 3.0,
        stale_periods: float = 3.0,
    ) -> None:
        if not (math.isfinite(enter) and 0 < enter <= 1):
            raise ValueError(f"enter: must be in (0, 1], got {enter!r}")
        # leave > 0, or an emerged mesh could never leave (G >= 0 always).
        if not (math.isfinite(leave) and 0 < leave <= enter):
            raise ValueError(f"leave: must be in (0, enter], got {leave!r}")
        if not (math.isfinite(dwell) and dwell >= 0):
            raise ValueError(f"dwell: must be a finite number >= 0, got {dwell!r}")
        if not (math.isfinite(stale_periods) and stale_periods > 0):
            raise ValueError(f"stale_periods: must be a finite number > 0, got {stale_periods!r}")
        self.enter = float(enter)
        self.leave = float(leave)
        self.dwell = float(dwell)
        self.stale_periods = float(stale_periods)
        self.emerged = False
        self.since: float | None = None
        self._above: float | None = None  # when G last rose to >= enter

    def update(self, nodes: Iterable[NodeView], now: float) -> MeshState:
        """One mesh tick at hub time ``now``.

        Node lists in the result are sorted by name, so the output does not
        depend on the iteration order of the caller's container.
        """
        now = float(now)
        if not math.isfinite(now):
            raise ValueError(f"now: must be finite, got {now!r}")
        views = sorted(nodes, key=lambda v: v.node)
        names = [v.node for v in views]
        if len(set(names)) != len(names):
            raise ValueError(f"nodes: duplicate node names in {names!r}")
        for v in views:
            _check_node(v)
        live = [v for v in views if now - v.last_seen <= self.stale_periods * v.period]
        stale = [v.node for v in views if now - v.last_seen > self.stale_periods * v.period]

        wsum = math.fsum(v.weight for v in live)
        if wsum > 0:
            psi = sum((v.weight * complex(v.z) for v in live), 0j) / wsum
            G = math.fsum(v.weight * v.c for v in live) / wsum
            unit = sum((v.weight * complex(v.z) / abs(v.z) for v in live if v.z != 0), 0j)
            R = abs(unit) / wsum
        else:
            psi, G, R = 0j, 0.0, 0.0
        # Clamp the rounding (and the _TOL allowance on inputs) back into range.
        G = min(1.0, max(0.0, G))
        R = min(1.0, R)
        if abs(psi) > 1.0:
            psi /= abs(psi)

        event = self._step(G, now)
        # Participants: the live nodes that are themselves at least as coherent
        # as the level THE_ONE needs to stay (leave), and only while emerged;
        # a node hovering in the hysteresis band still takes part.
        participants = [v.node for v in live if v.c >= self.leave] if self.emerged else []
        return MeshState(
            t=now,
            psi=psi,
            G=G,
            R=R,
            live=[v.node for v in live],
            stale=stale,
            emerged=self.emerged,
            since=self.since,
            participants=participants,
            event=event,
        )

    def _step(self, g: float, now: float) -> str | None:
        """The hysteresis on g = G; returns the transition, if any."""
        if g >= self.enter:
            if self._above is None:
                self._above = now
        else:
            self._above = None
        if self.emerged:
            if g < self.leave:
                self.emerged = False
                self.since = None
                return "left"
            return None
        # A clock stepping back only delays entry (now - _above < dwell).
        if self._above is not None and now - self._above >= self.dwell:
            self.emerged = True
            self.since = now
            return "entered"
        return None

    # -- persistence ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; the settings (enter, leave, dwell, stale_periods)
        are the constructor's, not saved: a restart runs under its own."""
        return {"emerged": self.emerged, "since": self.since, "above": self._above}

    @classmethod
    def from_dict(cls, d: dict[str, Any], **settings: float) -> Mesh:
        """A mesh with these settings (the constructor's arguments) resuming
        the saved state d (keys other than the state's are ignored)."""
        m = cls(**settings)
        m.emerged = bool(d["emerged"])
        m.since = None if d["since"] is None else float(d["since"])
        m._above = None if d["above"] is None else float(d["above"])
        if m.emerged and m.since is None:
            raise ValueError("since: an emerged mesh needs its entry time")
        return m
