"""kairos.batch, part 3: the vectorised per-sample math of the Bank.

isqrt and _c2q15 elementwise, the dominant lag with its c^2 in Q15 over a
whole chunk (float64 floor divisions, exact here: see kairos.batch), and the
per-chunk work buffers.
"""
import numpy as np

from .channel import _C2_MAX, _E_FLOOR

_I64 = np.int64
_F64 = np.float64


def isqrt(v):
    """floor(sqrt(v)) elementwise for integers 0 <= v < 2**52 (0 for v <= 0).

    Equal to kairos.fixmath.isqrt on its domain: the float root is within
    one of the answer, and the two corrections make it exact.
    """
    v = np.asarray(v, dtype=_I64)
    x = np.sqrt(np.maximum(v, 0).astype(_F64)).astype(_I64)
    x -= x * x > v
    x += (x + 1) * (x + 1) <= v
    return np.where(v > 0, x, 0)


def _c2q15(t2, el, e, sh):
    """channel._c2q15 elementwise over int arrays (for the read-backs)."""
    q, rem = np.divmod(t2, el)
    r = (rem << 15) // el
    c2 = ((q << sh) + (r << (sh - 15))) // e
    c2[q >= (e >> (sh - 15))] = _C2_MAX
    return c2


def dominant(bank, T, ws):
    """Per sample: the dominant lag k* and its c^2 in Q15, as float64 arrays
    of exact integers, shape (T, n).

    y_k = |t_k|^2 // e_lag,k; lags are scanned in order and a longer one
    wins only with y > bar = y* + (y* >> 6) of the best so far.
    """
    K, n = len(bank.lags), bank.n
    AB, EL = ws.AB[:T], ws.EL[:T]
    t2, y, yb, ELf = ws.t2[:T], ws.y[:T], ws.yb[:T], ws.ELf[:T]
    if bank.omega:
        np.right_shift(AB, 15, out=AB)  # |T|^2 in halves: below 2**30
        tb = ws.tb[:T]
        np.copyto(tb, AB[:, :, :K])  # to float64: exact from here on
        np.multiply(tb, tb, out=tb)
        np.add(tb[:, 0], tb[:, 1], out=t2)
        sh = 17
    else:
        A = AB[:, 0, :K]
        np.right_shift(A, 14, out=A)
        np.copyto(t2, A)
        np.multiply(t2, t2, out=t2)
        sh = 15
    if not ws.el_float:  # (fast_chunk writes ELf itself)
        np.copyto(ELf, EL)  # the ring's e are floored at 4 already
    np.divide(t2, ELf[:, :K], out=y)
    np.floor(y, out=y)
    # bar if lag k were the best: y + (y >> 6) == floor(y * 65 / 64), and an
    # integer y' beats floor(b) exactly when it beats b, so no floor here
    # + k / 1024 carries the lag in the bar (exact: yb is a multiple of 1/64
    # below 2**31, and an integer y' beats yb + k / 1024 exactly when it
    # beats yb, as k / 1024 < 1/64).
    np.multiply(y, 65.0 / 64, out=yb)
    yb += ws.koff
    E = ELf[:, K]
    bar, KB, upd, bt = ws.bar[:T], ws.KB[:T], ws.upd[:T], ws.r[:T]
    bar[:] = yb[:, 0]
    for k in range(1, K):
        # bar only grows, so where() becomes max() (branch-free, unlike a
        # masked copy).
        np.greater(y[:, k], bar, out=upd)
        np.multiply(yb[:, k], upd, out=bt)
        np.maximum(bar, bt, out=bar)
    # bar * 1024 = y* * 1040 + k* (an integer below 2**41): k* is its low bits
    np.multiply(bar, 1024.0, out=bt)
    np.copyto(KB, bt, casting="unsafe")
    KB &= 15
    # The winner's y (= q of _c2q15), t2 and e_lag, by flat index.
    q, T2, EL2, ix = ws.q[:T], ws.T2[:T], ws.EL2[:T], ws.ix[:T]
    np.multiply(KB, n, out=ix)
    ix += ws.base[:T]
    np.take(y.reshape(-1), ix, out=q, mode="clip")
    np.take(t2.reshape(-1), ix, out=T2, mode="clip")
    ix += ws.row[:T]  # EL has K + 1 rows per sample
    np.take(ELf.reshape(-1), ix, out=EL2, mode="clip")
    # _c2q15(T2, EL2, E, sh), with q = T2 // EL2 = y* already at hand.
    r, c2 = ws.r[:T], ws.c2[:T]
    np.multiply(q, EL2, out=r)
    np.subtract(T2, r, out=r)  # t2 - q * el, below el < 2**15
    r *= 32768.0
    r /= EL2
    np.floor(r, out=r)
    if sh == 17:
        r *= 4.0
    np.multiply(q, float(1 << sh), out=c2)
    c2 += r
    c2 /= E
    np.floor(c2, out=c2)
    if sh == 17:
        np.multiply(E, 0.25, out=r)
        np.floor(r, out=r)  # e >> 2
        np.greater_equal(q, r, out=upd)
    else:
        np.greater_equal(q, E, out=upd)
    np.copyto(c2, float(_C2_MAX), where=upd)
    return c2, KB


def fast_chunk(bank, D, ws, ab_prev, r0, cs):
    """The recursions of a chunk in which no gain changes (see Bank._recur),
    vectorised over time wherever the recursion allows; returns the
    accumulators after its last sample (a copy).

    D holds d for the T samples, which go to ring rows r0 .. r0 + T - 1 (no
    wrap).  The lagged d and e come from the ring for samples before the
    chunk (read before the chunk's rows are written) and from the chunk
    itself after; only the leaky integrators A += x - (A >> s) step sample
    by sample.  cs: (cos, sin) per sample when demodulating, else None.
    """
    T, n = D.shape
    K = len(bank.lags)
    s, S = bank.s, bank.s - 3
    size = bank._size
    dring, ering = bank._ring
    DL, EL, X2, E = ws.DL[:T], ws.ELf[:T], ws.X2[:T], ws.Ec[:T]  # EL straight to float64
    for k, L in enumerate(bank.lags):
        # samples t < L read ring rows r0 - L + t (one or two runs of rows)
        j = min(L, T)
        a = (r0 - L) % size
        for t0, t1, row in ((0, min(j, size - a), a), (size - a, j, 0)):
            if t1 > t0:
                np.multiply(D[t0:t1], dring[row : row + t1 - t0], out=DL[t0:t1, k])
                np.copyto(EL[t0:t1, k], ering[row : row + t1 - t0])
        if L < T:
            np.multiply(D[L:], D[: T - L], out=DL[L:, k])  # d * d_lag
    if cs is None:
        np.right_shift(DL, S, out=X2[:, 0, :K])
    else:
        np.right_shift(DL, 10, out=DL)  # |p| < 2**16
        for r in range(2):  # p * cos, p * sin
            np.multiply(DL, cs[:T, r], out=X2[:, r, :K])
            np.right_shift(X2[:, r, :K], S + 4, out=X2[:, r, :K])
    np.multiply(D, D, out=E)
    np.right_shift(E, S, out=X2[:, 0, K])  # X2[:, 1, K] stays 0
    tK, ABr = ws.tK, ws.ABr
    for t in range(T):
        ab_new = ABr[t]
        np.right_shift(ab_prev, s, out=tK)
        np.add(ab_prev, X2[t], out=ab_new)
        ab_new -= tK
        ab_prev = ab_new
    np.right_shift(ws.AB[:T, 0, K], 14, out=E)  # e of each sample, floored at 4
    np.maximum(E, _E_FLOOR, out=E)
    EL[:, K] = E
    for k, L in enumerate(bank.lags):
        if L < T:
            EL[L:, k] = E[: T - L]
    dring[r0 : r0 + T] = D
    ering[r0 : r0 + T] = E
    ws.el_float = True
    return ab_prev.copy()


class Workspace:
    """Per-chunk buffers, reused (fresh large arrays cost page faults)."""

    def __init__(self, T, K, n, demod):
        self.X = np.empty((T, n), _I64)
        self.D = np.empty((T, n), _I64)
        self.DL = np.empty((T, K, n), _I64)
        self.X2 = np.zeros((T, 2 if demod else 1, K + 1, n), _I64)
        self.Ec = np.empty((T, n), _I64)
        R = 2 if demod else 1
        self.AB = np.empty((T, R, K + 1, n), _I64)
        self.EL = np.empty((T, K + 1, n), _I64)
        self.el_float = False  # ELf already holds this chunk's EL
        self.dl = np.empty((K + 1, n), _I64)
        self.x2 = np.zeros((R, K + 1, n), _I64)
        self.tK = np.empty((R, K + 1, n), _I64)
        self.p = np.empty((K, n), _I64)
        self.sq = np.empty(n, _I64)
        self.tq = np.empty(n, _I64)
        self.bad = np.empty(n, bool)
        self.t2 = np.empty((T, K, n), _F64)
        self.tb = np.empty((T, 2, K, n), _F64) if demod else None
        self.ELf = np.empty((T, K + 1, n), _F64)
        self.y = np.empty((T, K, n), _F64)
        self.yb = np.empty((T, K, n), _F64)
        for name in ("q", "bar", "T2", "EL2", "r", "c2"):
            setattr(self, name, np.empty((T, n), _F64))
        self.KB = np.empty((T, n), _I64)
        self.koff = np.arange(K, dtype=_F64)[:, None] / 1024  # k / 1024 per lag
        self.ix = np.empty((T, n), _I64)
        self.upd = np.empty((T, n), bool)
        self.ABr, self.ELr = list(self.AB), list(self.EL)
        self.AEr = [a[0, K] for a in self.AB]  # A_E after each sample
        tt = np.arange(T, dtype=_I64)[:, None]
        self.base = tt * (K * n) + np.arange(n, dtype=_I64)  # flat index of (t, 0, c)
        self.row = tt * n  # (t, K + 1, n) minus (t, K, n) layout offset
