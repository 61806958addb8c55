"""Float64 reference of KAIROS section 1, written straight from the spec.

No fixed point, no gain, no clamps beyond the Q14 input clamp: the kernel's
integer results are judged against this.
"""
import numpy as np

Q14 = 16384


def reference(u, lags, s=8, s0=2, omega=0):
    """Per-sample, per-lag coherence c[n, k] (floats in [0, 1]), and T, E.

    The smoother is primed with the first sample (d[0] = 0), as in the
    kernel.  E_lag,k is its own EMA of d[n - L_k]^2 with d = 0 before the
    start.  Demodulation uses the kernel's 16-bit phase n * omega exactly.
    """
    u = np.clip(np.asarray(u, dtype=np.float64), -Q14, Q14)
    n = len(u)
    d = np.zeros(n)
    v = u[0]
    k0 = 2.0**-s0
    for i in range(1, n):
        nv = v + (u[i] - v) * k0
        d[i] = nv - v
        v = nv
    lags = np.asarray(lags)
    K = len(lags)
    dl = np.zeros((n, K))
    for k, L in enumerate(lags):
        dl[L:, k] = d[: n - L]
    phase = 2 * np.pi * ((np.arange(n) * omega) % 65536) / 65536
    rot = np.exp(1j * phase) if omega else np.ones(n)
    prod = d[:, None] * dl * rot[:, None]
    alpha = 2.0**-s
    E = np.zeros(n)
    El = np.zeros((n, K))
    T = np.zeros((n, K), dtype=complex)
    e, el, t = 0.0, np.zeros(K), np.zeros(K, dtype=complex)
    d2, dl2 = d * d, dl * dl
    for i in range(n):
        e += (d2[i] - e) * alpha
        el += (dl2[i] - el) * alpha
        t += (prod[i] - t) * alpha
        E[i], El[i], T[i] = e, el, t
    den = np.sqrt(E[:, None] * El)
    c = np.divide(np.abs(T), den, out=np.zeros_like(den), where=den > 0)
    return np.clip(c, 0.0, 1.0), T, E
