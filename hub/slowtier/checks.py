"""The one argument check the slow tier's maths share."""

from __future__ import annotations

import math


def finite(name: str, value: float) -> float:
    """``value`` as a float; ValueError naming ``name`` if it is nan or infinite."""
    value = float(value)
    if not math.isfinite(value):
        raise ValueError(f"{name}: must be finite, got {value!r}")
    return value
