"""KAIROS: the fixed-point fast tier (docs/kairos.md §1), for MicroPython and CPython.

    from kairos import Channel, Normalizer

Nothing here imports numpy; the hub's batch path lives in kairos.batch.
"""
from .channel import Channel
from .normalize import Normalizer

__all__ = ["Channel", "Normalizer"]

# The release of the whole tree, in one place: the kernel is the one package both
# sides import, so the hub (becomingone.__version__, the wheel's version) and the
# firmware (the "fw" of its hello, at most 16 characters) read it from here.
__version__ = "0.1.0"
