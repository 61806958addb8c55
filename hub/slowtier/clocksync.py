"""Clock sync between the hub and one node (docs/kairos.md §3).

The hub pings with its time ``t0`` (seconds, ``time.time()``); the node
answers with its ticks ``t1`` (ping received) and ``t2`` (pong sent), in ms
masked to 30 bits; the hub reads ``t3`` on arrival.  The midpoint estimator

    theta = ((t1 - t0) + (t2 - t3)) / 2      (node time - hub time)
    delta = (t3 - t0) - (t2 - t1)            (round-trip delay)

is exact when the two legs take equally long and otherwise off by at most
delta / 2, whatever the asymmetry.  So the offset is taken from the
lowest-delay sample of the window (the tightest bound), and the drift from a
least-squares line through the lower half of the window by delay.

Node ticks wrap every 2**30 ms (12.4 days).  They are unwrapped onto one
axis, which starts at the first sample's raw t1 and then runs on past the
wraps, by taking for each raw tick the value nearest to where the current
estimate says the node clock should be.  ``offset`` is node time on that axis
minus hub time.
That works across any gap as long as the estimate is off by less than half
a wrap (6.2 days).  A node that reboots restarts its ticks: the caller keeps
one ClockSync per (node, boot).

Pure math: float64, no I/O, no clock reads; every time comes in as an
argument.
"""

from __future__ import annotations

import math
import operator
from collections import deque
from typing import Any

from becomingone.slowtier.checks import finite

_MS = 1000.0




class ClockSync:
    """Offset, delay and drift of one node clock against hub time.

    ``offset`` is node_time_s - hub_time_s at ``t_ref`` (the midpoint of the
    latest sample); ``drift_ppm`` > 0 means the node clock runs fast.
    """

    synced: bool
    offset: float
    delay: float
    drift_ppm: float
    t_ref: float

    def __init__(
        self,
        window: int = 16,
        tick_mask: int = 2**30 - 1,
        min_span: float = 60.0,
        max_drift_ppm: float = 1000.0,
    ) -> None:
        if isinstance(window, bool) or not isinstance(window, int) or window < 1:
            raise ValueError(f"window: must be an int >= 1, got {window!r}")
        if (
            isinstance(tick_mask, bool)
            or not isinstance(tick_mask, int)
            or tick_mask < 255
            or (tick_mask + 1) & tick_mask
        ):
            raise ValueError(f"tick_mask: must be 2**n - 1 with n >= 8, got {tick_mask!r}")
        # A drift fitted over a short span is mostly delay noise (a 5 ms error
        # over 10 s is 500 ppm): below min_span the previous drift is kept.
        if not math.isfinite(min_span) or min_span < 0:
            raise ValueError(f"min_span: must be a finite number >= 0, got {min_span!r}")
        # Crystals are within ~100 ppm; the clamp stops a bad fit from
        # dragging every timestamp far away.
        if not math.isfinite(max_drift_ppm) or max_drift_ppm < 0:
            raise ValueError(f"max_drift_ppm: must be a finite number >= 0, got {max_drift_ppm!r}")
        self.window = window
        self.tick_mask = tick_mask
        self.min_span = float(min_span)
        self.max_drift_ppm = float(max_drift_ppm)
        self._mod = tick_mask + 1
        # (t0, t1, t2, t3) with t1, t2 unwrapped ms (ints), t0, t3 hub seconds.
        self._samples: deque[tuple[float, int, int, float]] = deque(maxlen=window)
        self.synced = False
        self.offset = 0.0
        self.delay = 0.0
        self.drift_ppm = 0.0
        self.t_ref = 0.0

    # -- ticks ---------------------------------------------------------------

    def _tick(self, name: str, tick: int) -> int:
        try:
            tick = operator.index(tick)
        except TypeError:
            raise ValueError(f"{name}: must be an int tick, got {tick!r}") from None
        if not 0 <= tick <= self.tick_mask:
            raise ValueError(f"{name}: must be in 0..{self.tick_mask}, got {tick}")
        return tick

    def _nearest(self, tick: int, predicted_ms: float) -> int:
        """The unwrapped value of ``tick`` closest to ``predicted_ms``."""
        base = round(predicted_ms)
        diff = (tick - base) % self._mod
        if diff >= self._mod // 2:
            diff -= self._mod
        return base + diff

    def _offset_at(self, t: float) -> float:
        return self.offset + self.drift_ppm * 1e-6 * (t - self.t_ref)

    # -- samples -------------------------------------------------------------

    def add(self, t0: float, t1: int, t2: int, t3: float) -> None:
        """Add one ping/pong exchange and re-estimate."""
        t0 = finite("t0", t0)
        t3 = finite("t3", t3)
        if t3 < t0:
            raise ValueError(f"t3: arrival {t3!r} is before the ping t0 {t0!r}")
        r1 = self._tick("t1", t1)
        r2 = self._tick("t2", t2)
        # The first sample's raw t1 starts the unwrapped axis.
        u1 = self._nearest(r1, (t0 + self._offset_at(t0)) * _MS) if self.synced else r1
        # t2 is sent after t1 was received: always a forward difference.
        u2 = u1 + (r2 - r1) % self._mod
        self._samples.append((t0, u1, u2, t3))
        self._estimate()

    def _estimate(self) -> None:
        # (delay, midpoint hub time, theta) per sample, oldest first.
        rows = []
        for t0, u1, u2, t3 in self._samples:
            n1, n2 = u1 / _MS, u2 / _MS
            theta = ((n1 - t0) + (n2 - t3)) / 2.0
            delta = (t3 - t0) - (n2 - n1)
            rows.append((delta, (t0 + t3) / 2.0, theta))
        if not rows:
            self.synced = False
            return
        # Stable sort: on equal delays the older sample comes first, so take
        # the minimum delay with the latest sample among ties.
        by_delay = sorted(rows, key=lambda r: r[0])
        best_delay = by_delay[0][0]
        best = [r for r in rows if r[0] == best_delay][-1]
        low = by_delay[: (len(rows) + 1) // 2]
        self._fit_drift(low)
        self.t_ref = rows[-1][1]
        d = self.drift_ppm * 1e-6
        self.offset = best[2] + d * (self.t_ref - best[1])
        # ms ticks can make a sub-ms round trip come out slightly negative.
        self.delay = max(0.0, best_delay)
        self.synced = True

    def _fit_drift(self, low: list[tuple[float, float, float]]) -> None:
        """Least-squares slope of theta vs hub time; keeps the old drift when
        the low-delay samples span less than min_span seconds."""
        if len(low) < 2:
            return
        ts = [r[1] for r in low]
        if max(ts) - min(ts) < max(self.min_span, 1e-9):
            return
        tm = sum(ts) / len(ts)
        ym = sum(r[2] for r in low) / len(low)
        sxx = sum((r[1] - tm) ** 2 for r in low)
        sxy = sum((r[1] - tm) * (r[2] - ym) for r in low)
        ppm = sxy / sxx * 1e6
        self.drift_ppm = max(-self.max_drift_ppm, min(self.max_drift_ppm, ppm))

    # -- mapping -------------------------------------------------------------

    def to_hub(self, tick: int, t_rx: float | None = None) -> float:
        """Hub time (seconds) of node ``tick``.

        The tick is unwrapped to the value nearest the node time the estimate
        predicts at ``t_rx`` (or at ``t_ref`` without it).  Before the first
        sample there is no estimate: ``t_rx`` is returned as is, and without
        it ValueError is raised.
        """
        if t_rx is not None:
            t_rx = finite("t_rx", t_rx)
        if not self.synced:
            if t_rx is None:
                raise ValueError("t_rx: not synced yet, an arrival time is needed")
            self._tick("tick", tick)
            return t_rx
        tick = self._tick("tick", tick)
        near = self.t_ref if t_rx is None else t_rx
        node_s = self._nearest(tick, (near + self._offset_at(near)) * _MS) / _MS
        # Solve hub = node - offset_at(hub) for hub (offset is linear in hub).
        d = self.drift_ppm * 1e-6
        return (node_s - self.offset + d * self.t_ref) / (1.0 + d)

    # -- persistence ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state; the estimate is recomputed from it on load.  The
        settings (window, tick_mask, min_span, max_drift_ppm) are the
        constructor's, not saved."""
        return {"drift_ppm": self.drift_ppm, "samples": [list(s) for s in self._samples]}

    @classmethod
    def from_dict(cls, d: dict[str, Any], **settings: Any) -> ClockSync:
        """A ClockSync with these settings (the constructor's arguments)
        resuming the saved state d (other keys are ignored; the newest
        `window` samples are kept)."""
        cs = cls(**settings)
        # The held drift (used while the span is short) is part of the state.
        cs.drift_ppm = finite("drift_ppm", d["drift_ppm"])
        for i, s in enumerate(d["samples"]):
            t0, u1, u2, t3 = s
            if not isinstance(u1, int) or not isinstance(u2, int) or u2 < u1:
                raise ValueError(f"samples[{i}]: bad unwrapped ticks {s!r}")
            cs._samples.append((finite("t0", t0), u1, u2, finite("t3", t3)))
        cs._estimate()
        return cs
