"""KAIROS: the fixed-point fast tier (spec section 1), for MicroPython and CPython.

    from kairos import Channel, Normalizer

Nothing here imports numpy; the hub's batch path lives in kairos.batch.
"""
from .channel import Channel
from .normalize import Normalizer

__all__ = ["Channel", "Normalizer"]
