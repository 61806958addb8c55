"""Float64 reference of KAIROS section 1, written straight from the spec.

No fixed point, no gain, no clamps beyond the Q14 input clamp: the kernel's
integer results are judged against this.
"""
import itertools

import numpy as np

from kairos import Channel

Q14 = 16384


def ema(x, alpha):
    """y[i] = y[i-1] + (x[i] - y[i-1]) * alpha from y[-1] = 0, along axis 0.

    Vectorised: within a block, y[i] = r**(i+1) * (y[-1] + alpha * sum_j<=i
    x[j] / r**(j+1)) with r = 1 - alpha.  Blocks of 16 / alpha samples keep r**-j below e**16,
    so the sums lose nothing that matters next to the kernel's tolerance.
    """
    x = np.asarray(x)
    if alpha == 1.0:
        return x.astype(np.result_type(x, np.float64))
    r = 1.0 - alpha
    y = np.empty(x.shape, dtype=np.result_type(x, np.float64))
    B = int(16 / alpha)
    prev = np.zeros(x.shape[1:], dtype=y.dtype)
    for a in range(0, len(x), B):
        xb = x[a : a + B]
        p = r ** np.arange(1, len(xb) + 1, dtype=np.float64)  # r**(i+1)
        p = p.reshape((-1,) + (1,) * (x.ndim - 1))
        y[a : a + B] = p * (prev + alpha * np.cumsum(xb / p, axis=0))
        prev = y[a + len(xb) - 1]
    return y


def reference(u, lags, s=8, s0=2, omega=0):
    """Per-sample, per-lag coherence c[n, k] (floats in [0, 1]), and T, E.

    The smoother is primed with the first sample (d[0] = 0), as in the
    kernel.  E_lag,k is its own EMA of d[n - L_k]^2 with d = 0 before the
    start.  Demodulation uses the kernel's 16-bit phase n * omega exactly.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), -Q14, Q14)
    n = len(u)
    k0 = 2.0**-s0
    # v[i] = v[i-1] + (u[i] - v[i-1]) * k0 from v[0] = u[0]
    v = u[0] + ema(np.concatenate([[0.0], u[1:] - u[0]]), k0)
    d = np.diff(v, prepend=v[0])
    lags = np.asarray(lags)
    K = len(lags)
    dl = np.zeros((n, K))
    for k, L in enumerate(lags):
        dl[L:, k] = d[: n - L]
    phase = 2 * np.pi * ((np.arange(n) * omega) % 65536) / 65536
    rot = np.exp(1j * phase) if omega else np.ones(n)
    alpha = 2.0**-s
    E = ema(d * d, alpha)
    El = ema(dl * dl, alpha)
    T = ema(d[:, None] * dl * rot[:, None], alpha)
    den = np.sqrt(E[:, None] * El)
    c = np.divide(np.abs(T), den, out=np.zeros_like(den), where=den > 0)
    return np.clip(c, 0.0, 1.0), T, E


def per_lag_c(ch, samples, settle):
    """Per-lag c, dominant lag and its c for each sample from `settle` on."""
    step = ch.step
    for u in samples[:settle]:
        step(u)
    rows, ks, cs = [], [], []
    for u in samples[settle:]:
        step(u)
        rows.append(list(ch.coh))
        ks.append(ch.k)
        cs.append(ch.c)
    return np.array(rows) / 32768, np.array(ks), np.array(cs) / 32768


def check(u, lags, s, s0, omega=0):
    """Worst |c_fixed - c_float| after the integrator has settled, and the
    worst shortfall of the dominant lag's float c from the best lag's."""
    settle = 8 * 2**s
    ch = Channel(lags=lags, s=s, s0=s0, omega=omega)
    cf, kf, cd = per_lag_c(ch, u, settle)
    cr = reference(u, lags, s, s0, omega)[0][settle:]
    err = np.abs(cf - cr)
    rows = np.arange(len(cr))
    # the reported c is the dominant lag's own coherence
    own = np.abs(cd - cr[rows, kf])
    # and the dominant lag is the best one, wherever the choice means anything
    best = cr.max(axis=1)
    regret = (best - cr[rows, kf])[best >= 0.25]
    return max(err.max(), own.max()), (regret.max() if regret.size else 0.0)


# Spec section 1: s = 6..10 and s0 = 0..4, every pair, against periods 8-256,
# amplitudes 5% and 100% of full scale, clean and at 10 dB SNR (400 cases).
SWEEP = list(
    itertools.product(
        range(6, 11),  # s
        range(0, 5),  # s0
        (8, 24, 100, 256),  # period
        (0.05, 1.0),  # amplitude, fraction of full scale
        (None, 10),  # SNR in dB (None = clean)
    )
)
