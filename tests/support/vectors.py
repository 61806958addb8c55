"""Test vectors shared by the CPython and MicroPython runs: (name, Channel
kwargs, samples).  Each exercises a different part of the kernel."""
from support.signals import noise, sine

BIG = 2**31


def _loud_quiet(n, period):
    # loud -> near silence -> loud again: the gain must fall, rise, fall
    a = sine(n, period, 0.9)
    b = sine(n, period, 0.0008)
    return a[: n // 3] + b[n // 3 : 2 * n // 3] + a[2 * n // 3 :]


VECTORS = [
    ("sine-p16", dict(lags=(2, 4, 8, 16), s=8, s0=2), sine(3000, 16, 0.5, snr_db=20)),
    ("noise-k1", dict(lags=(1,), s=6, s0=0), noise(2000, 0.3)),
    ("slow-k8", dict(lags=(2, 4, 8, 16, 32, 64, 128, 256), s=10, s0=4), sine(4000, 200, 0.05)),
    ("gain-swing", dict(lags=(3, 7, 31), s=6, s0=1), _loud_quiet(6000, 24)),
    ("demod", dict(lags=(2, 3, 5, 8), s=8, s0=1, omega=8192), sine(3000, 16, 0.4, snr_db=15)),
    ("collapse", dict(lags=(2, 3, 16), s=6, s0=1, dwell=3), [0] * 300 + sine(2000, 16, 0.5)),
    ("extremes", dict(lags=(1, 2, 4), s=4, s0=0), [BIG, -BIG, 16384, -16384, 10**9, 0] * 200),
]
