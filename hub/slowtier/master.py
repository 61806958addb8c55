"""The Master tier: slow averages of one node channel (docs/kairos.md §4).

Each report gives the channel's coherence c in [0, 1] and its lagged
correlation T.  The Emissary phasor z = c * T / |T| keeps T's phase and
weights it by how coherent the channel is.  A bank of exponential averages
of z (default tau = 60 s, 600 s, 3600 s) gives the Master coherence
c_M = |EMA_tau(z)|: near c only when the channel stays coherent with a steady
phase, near 0 when the phase wanders or flips ("dissipated").

Reports arrive at irregular hub times, so each EMA step uses
alpha = 1 - exp(-dt / tau): the product of the (1 - alpha) factors is then
exp(-elapsed / tau) however the samples were spaced, i.e. the average is the
continuous-time EMA of z held constant over each interval.

Master/Emissary sync compares the new z with the Master's expectation, the
shortest-tau average *before* z was folded in:  delta = arg(M_prev conj z).
Against the average after the update, the report would partly be compared
with itself: for a phasor flipping sign every report the average trails the
latest sign (it ends at +-a/(2-a) with the same sign as z), so such a channel
would look aligned forever.  Against the prior average it is opposite every
time (|delta| = pi) and correctly dissipated; for a steady phase the two
differ by O(alpha) and agree.  ``M`` itself (and T_sync) is the updated
average.

Pure math: float64 / complex, no I/O.
"""

from __future__ import annotations

import cmath
import math
from typing import Any

from becomingone.slowtier.checks import finite


def _cplx(name: str, v: Any) -> complex:
    """A complex from its JSON form [re, im]."""
    re, im = v
    return complex(finite(name, re), finite(name, im))


class Master:
    """The Master averages and Master/Emissary sync of one node channel."""

    z: complex
    M: complex
    c_m: tuple[float, ...]
    M_prev: complex
    delta: float
    aligned: bool
    t_sync: complex

    def __init__(
        self,
        taus: tuple[float, ...] = (60.0, 600.0, 3600.0),
        align_rad: float = 0.3,
        w_m: float = 1.0,
        w_e: float = 1.0,
    ) -> None:
        taus = tuple(float(x) for x in taus)
        if not taus or not all(math.isfinite(x) and x > 0 for x in taus):
            raise ValueError(f"taus: must be one or more finite numbers > 0, got {taus!r}")
        # M is defined as the first tau's average, documented as the shortest.
        if any(a >= b for a, b in zip(taus, taus[1:], strict=False)):
            raise ValueError(f"taus: must be strictly increasing, got {taus!r}")
        if not math.isfinite(align_rad) or not 0 <= align_rad <= math.pi:
            raise ValueError(f"align_rad: must be in [0, pi], got {align_rad!r}")
        for name, w in (("w_m", w_m), ("w_e", w_e)):
            if not math.isfinite(w) or w < 0:
                raise ValueError(f"{name}: must be a finite number >= 0, got {w!r}")
        if w_m + w_e <= 0:
            raise ValueError("w_m: w_m + w_e must be > 0")
        self.taus = taus
        self.align_rad = float(align_rad)
        self.w_m = float(w_m)
        self.w_e = float(w_e)
        self._ema: list[complex] = [0j] * len(taus)
        self._t: float | None = None  # hub time of the last update
        self.n = 0  # updates so far
        self.z = 0j
        self.M_prev = 0j
        self._derive()

    def update(self, c: float, t_re: float, t_im: float, t: float) -> None:
        """Fold in one report: coherence ``c`` in [0, 1] (Q15 / 32767 on the
        wire), correlation ``t_re + i t_im`` (any scale), hub time ``t``.

        Times must not go backwards: an EMA step with dt < 0 would extrapolate
        away from the data, so that raises ValueError (naming ``t``).
        """
        c = finite("c", c)
        if not 0.0 <= c <= 1.0:
            raise ValueError(f"c: must be in [0, 1] (Q15 / 32767), got {c!r}")
        T = complex(finite("t_re", t_re), finite("t_im", t_im))
        t = finite("t", t)
        if self._t is not None and t < self._t:
            raise ValueError(f"t: {t!r} is before the last update {self._t!r}")
        mag = abs(T)
        # No correlation means no phase: contribute nothing (z = 0).
        self.z = c * T / mag if mag > 0 else 0j
        # The expectation z is judged against (0 on the first report: none yet).
        self.M_prev = self._ema[0]
        if self._t is None:
            self._ema = [self.z] * len(self.taus)  # the first sample initialises
        else:
            dt = t - self._t
            for i, tau in enumerate(self.taus):
                alpha = -math.expm1(-dt / tau)  # 1 - exp(-dt/tau), exact for small dt
                self._ema[i] += alpha * (self.z - self._ema[i])
        self._t = t
        self.n += 1
        self._derive()

    def _derive(self) -> None:
        """Recompute the outputs from z and the EMAs."""
        self.M = self._ema[0]
        # |EMA| <= max |z| <= 1 in exact arithmetic; clamp the last-ulp excess.
        self.c_m = tuple(min(1.0, abs(e)) for e in self._ema)
        if self.z != 0 and self.M_prev != 0:
            d = cmath.phase(self.M_prev * self.z.conjugate())
            # phase() gives -pi for a negative real with -0.0 imag: the range is (-pi, pi].
            self.delta = math.pi if d == -math.pi else d
            self.aligned = abs(self.delta) <= self.align_rad
        else:
            # No phase to compare: report 0 and never aligned.
            self.delta = 0.0
            self.aligned = False
        self.t_sync = (self.w_m * self.M + self.w_e * self.z) / (self.w_m + self.w_e)

    # -- persistence ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (complex numbers as [re, im]); the settings
        (taus, align_rad, w_m, w_e) are the constructor's, not saved."""
        return {
            "ema": [[e.real, e.imag] for e in self._ema],
            "z": [self.z.real, self.z.imag],
            "m_prev": [self.M_prev.real, self.M_prev.imag],
            "t": self._t,
            "n": self.n,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], **settings: Any) -> Master:
        """A Master with these settings (the constructor's arguments) resuming
        the saved state d (other keys are ignored).  ValueError when d holds
        another number of averages than these taus."""
        m = cls(**settings)
        ema = [_cplx("ema", e) for e in d["ema"]]
        if len(ema) != len(m.taus):
            raise ValueError(f"ema: saved {len(ema)} averages, the taus are {len(m.taus)}")
        m._ema = ema
        m.z = _cplx("z", d["z"])
        m.M_prev = _cplx("m_prev", d["m_prev"])
        m._t = None if d["t"] is None else finite("t", d["t"])
        m.n = int(d["n"])
        m._derive()
        return m
