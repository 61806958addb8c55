"""Output mappings of docs/kairos.md §8 (pure functions, no I/O).

With x = (1 + Re Ψ)/2 in [0, 1]: speaker frequency = 440 + 440·x Hz and
volume = G; display hue = 360·x and brightness = G; motor velocity = 2x − 1
and rotation = Im Ψ.  :func:`state_json` is the JSON body the API, MQTT and
webhooks share: ``{coherence, phase: {real, imag}, R, emerged, ...}``.

Inputs are clamped to their documented ranges (Ψ and G are bounded in [0, 1]
by construction, but a stray value must not make an out-of-range colour or a
negative frequency), and a non-finite input counts as 0.
"""

from __future__ import annotations

import colorsys
import math
from collections.abc import Mapping
from typing import Any

SPEAKER_BASE_HZ = 440.0
SPEAKER_SPAN_HZ = 440.0


def _finite(v: float) -> float:
    v = float(v)
    return v if math.isfinite(v) else 0.0


def _clamp(v: float, lo: float, hi: float) -> float:
    v = _finite(v)
    return lo if v < lo else hi if v > hi else v


def x_of(psi: complex) -> float:
    """x = (1 + Re Ψ)/2, clamped to [0, 1]."""
    return _clamp((1.0 + _finite(complex(psi).real)) / 2.0, 0.0, 1.0)


def speaker(psi: complex, G: float) -> tuple[float, float]:
    """(frequency in Hz, volume in [0, 1]) = (440 + 440·x, G)."""
    return SPEAKER_BASE_HZ + SPEAKER_SPAN_HZ * x_of(psi), _clamp(G, 0.0, 1.0)


def display(psi: complex, G: float) -> tuple[float, float, tuple[int, int, int]]:
    """(hue in degrees [0, 360], brightness in [0, 1], (r, g, b) bytes).

    The colour is HSV(hue, saturation 1, value = brightness), each channel
    rounded to 0..255.
    """
    hue = 360.0 * x_of(psi)
    bright = _clamp(G, 0.0, 1.0)
    r, g, b = colorsys.hsv_to_rgb((hue / 360.0) % 1.0, 1.0, bright)
    return hue, bright, (round(r * 255), round(g * 255), round(b * 255))


def motor(psi: complex) -> tuple[float, float]:
    """(velocity in [-1, 1], rotation in [-1, 1]) = (2x − 1, Im Ψ)."""
    return 2.0 * x_of(psi) - 1.0, _clamp(complex(psi).imag, -1.0, 1.0)


def _num(v: Any) -> float | None:
    """A JSON-safe float: None for missing or non-finite values."""
    if v is None or isinstance(v, bool):
        return None if v is None else float(v)
    try:
        f = float(v)
    except (TypeError, ValueError):
        return None
    return f if math.isfinite(f) else None


def state_json(state: Mapping[str, Any]) -> dict[str, Any]:
    """The body (docs/kairos.md §8) for API/MQTT/webhook from a hub STATE dict.

    ``{"coherence": G, "phase": {"real", "imag"}, "R", "emerged", "since",
    "participants", "t"}``; numbers that are missing or not finite are null,
    so ``json.dumps`` never writes NaN.
    """
    try:
        psi = complex(state.get("psi") or 0)
    except (TypeError, ValueError):
        psi = complex(math.nan, math.nan)
    return {
        "coherence": _num(state.get("G")),
        "phase": {"real": _num(psi.real), "imag": _num(psi.imag)},
        "R": _num(state.get("R")),
        "emerged": bool(state.get("emerged", False)),
        "since": _num(state.get("since")),
        "participants": [str(p) for p in state.get("participants") or ()],
        "t": _num(state.get("t")),
    }
