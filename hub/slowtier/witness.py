"""Witnessing: the hub's self-model of its global state (docs/kairos.md §6).

The hub keeps W, a model of its own (G, R, Psi), and each tick moves it a
fraction beta toward what it observes:

    W <- (1 - beta) W + beta * observed

For a fixed observation this is a contraction with factor (1 - beta), so W
converges to the fixed point W = observed (W = G[W]) with the error shrinking
as (1 - beta)^n.  The surprise S = |observed - W|, measured before the update
(Euclidean over G, R, Re Psi, Im Psi), is how far the world is from the
model; a witness event is a surprise well above its own recent average
(S > k * EMA(S)), i.e. a change, not a level.  The surprise then decays as
(1 - beta)^n while its average catches up, so one step change gives a short
burst of surprising ticks (five with the defaults).  The event is the rising
edge of that burst, and a new one needs ``refractory`` ticks since the last
(10: one second at the hub's 10 Hz): one change, one event.

W starts at zero (no model yet), so the first ticks are surprising by
construction: events are held off for ``warmup`` ticks.  A surprise below
``eps`` is never an event either, or float round-off on a converged model
(S and its average both ~1e-16) could fire one.

Pure math: float64 / complex, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

from becomingone.slowtier.checks import finite


@dataclass
class WitnessState:
    """The witness after one tick."""

    W: tuple[float, float, complex]  # the self-model of (G, R, Psi), after the update
    S: float  # surprise |observed - W| before the update
    S_avg: float  # EMA of S, including this tick
    event: bool  # the rising edge of `surprising`, outside the refractory time
    converged: bool  # S_avg < eps
    surprising: bool = False  # S > k * S_avg (the average before this tick), after warm-up


class Witness:
    """W = G[W]: a contracting self-model and its surprise."""

    def __init__(
        self,
        beta: float = 0.2,
        k: float = 3.0,
        avg_alpha: float = 0.05,
        warmup: int = 10,
        eps: float = 1e-3,
        refractory: int = 10,
    ) -> None:
        # beta = 0 never learns, beta = 1 copies the input: neither contracts.
        if not (math.isfinite(beta) and 0 < beta < 1):
            raise ValueError(f"beta: must be in (0, 1), got {beta!r}")
        if not (math.isfinite(k) and k > 0):
            raise ValueError(f"k: must be a finite number > 0, got {k!r}")
        if not (math.isfinite(avg_alpha) and 0 < avg_alpha <= 1):
            raise ValueError(f"avg_alpha: must be in (0, 1], got {avg_alpha!r}")
        if isinstance(warmup, bool) or not isinstance(warmup, int) or warmup < 0:
            raise ValueError(f"warmup: must be an int >= 0, got {warmup!r}")
        if not (math.isfinite(eps) and eps > 0):
            raise ValueError(f"eps: must be a finite number > 0, got {eps!r}")
        if isinstance(refractory, bool) or not isinstance(refractory, int) or refractory < 0:
            raise ValueError(f"refractory: must be an int >= 0, got {refractory!r}")
        self.refractory = refractory
        self.was_surprising = False  # the previous tick's surprising
        self.last_event: int | None = None  # tick number (n) of the last event
        self.beta = float(beta)
        self.k = float(k)
        self.avg_alpha = float(avg_alpha)
        self.warmup = warmup
        self.eps = float(eps)
        self.W: tuple[float, float, complex] = (0.0, 0.0, 0j)
        self.S = 0.0
        self.S_avg = 0.0
        self.n = 0  # ticks so far

    def update(self, G: float, R: float, psi: complex) -> WitnessState:
        """One tick with the observed global state."""
        G = finite("G", G)
        R = finite("R", R)
        psi = complex(psi)
        psi = complex(finite("psi", psi.real), finite("psi", psi.imag))
        wg, wr, wp = self.W
        d = psi - wp
        surprise = math.sqrt((G - wg) ** 2 + (R - wr) ** 2 + d.real**2 + d.imag**2)
        # The event compares S with the average of the *previous* surprises:
        # folding S in first would let a large S raise its own bar.
        bar = max(self.eps, self.k * self.S_avg)
        surprising = self.n >= self.warmup and surprise > bar
        event = (surprising and not self.was_surprising
                 and (self.last_event is None or self.n - self.last_event >= self.refractory))
        self.was_surprising = surprising
        if event:
            self.last_event = self.n
        if self.n == 0:
            self.S_avg = surprise  # the first surprise initialises its average
        else:
            self.S_avg += self.avg_alpha * (surprise - self.S_avg)
        b = self.beta
        self.W = (wg + b * (G - wg), wr + b * (R - wr), wp + b * d)
        self.S = surprise
        self.n += 1
        return self.state(event, surprising)

    def state(self, event: bool = False, surprising: bool = False) -> WitnessState:
        """The current state (``event`` as given: it belongs to a tick)."""
        return WitnessState(W=self.W, S=self.S, S_avg=self.S_avg, event=event,
                            converged=self.converged, surprising=surprising)

    @property
    def converged(self) -> bool:
        # Before any tick there is nothing to have converged to.
        return self.n > 0 and self.S_avg < self.eps

    # -- persistence ---------------------------------------------------------

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready state (Psi as [re, im]); the settings (beta, k,
        avg_alpha, warmup, eps, refractory) are the constructor's, not saved."""
        g, r, p = self.W
        return {
            "W": [g, r, [p.real, p.imag]],
            "S": self.S,
            "S_avg": self.S_avg,
            "n": self.n,
            "was_surprising": self.was_surprising,
            "last_event": self.last_event,
        }

    @classmethod
    def from_dict(cls, d: dict[str, Any], **settings: Any) -> Witness:
        """A witness with these settings (the constructor's arguments)
        resuming the saved state d (other keys are ignored; older saves lack
        the last two)."""
        w = cls(**settings)
        w.was_surprising = bool(d.get("was_surprising", False))
        last = d.get("last_event")
        w.last_event = None if last is None else int(last)
        g, r, (pr, pi) = d["W"]
        w.W = (finite("W", g), finite("W", r), complex(finite("W", pr), finite("W", pi)))
        w.S = finite("S", d["S"])
        w.S_avg = finite("S_avg", d["S_avg"])
        w.n = int(d["n"])
        return w
