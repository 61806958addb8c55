"""Millisecond ticks that wrap at 2**30, the same on MicroPython and CPython.

MicroPython's time.ticks_ms() wraps at a port-specific power of two; we mask
to 30 bits everywhere so frames carry the same tick range on every node and
every tick is a small int.  ticks_diff() is wrap-aware: it returns the
signed distance b -> a as long as the two are less than 2**29 ms apart.
"""
import time

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


MASK = const(0x3FFFFFFF)
_HALF = const(0x20000000)

try:
    _ms = time.ticks_ms
    sleep_ms = time.sleep_ms
except AttributeError:  # CPython

    def _ms():
        return time.monotonic_ns() // 1000000

    def sleep_ms(ms):
        if ms > 0:
            time.sleep(ms / 1000)


def ticks_ms():
    return _ms() & MASK


def ticks_add(t, delta):
    return (t + delta) & MASK


def ticks_diff(a, b):
    """Signed a - b on the 30-bit circle."""
    return ((a - b + _HALF) & MASK) - _HALF


class Clock:
    """The real clock: what the sampling loop reads and sleeps on."""

    def ms(self):
        return ticks_ms()

    def sleep(self, ms):
        sleep_ms(ms)


class VirtualClock:
    """A clock that only moves when slept on: deterministic runs for the sim
    HAL and tests (same frames on MicroPython and CPython), at full speed.
    `start` lets tests begin just before the 2**30 wrap."""

    def __init__(self, start=0):
        self.now = start & MASK

    def ms(self):
        return self.now

    def sleep(self, ms):
        if ms > 0:
            self.now = (self.now + ms) & MASK
