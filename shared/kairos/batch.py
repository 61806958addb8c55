"""The hub's batch path: N KAIROS channels x M samples per call, with numpy.

    from kairos.batch import Bank
    bank = Bank(n, lags=(2, 4, 8, 16), s=8, s0=2, omega=0, ic=22938,
                hysteresis=1638, dwell=4)
    ev = bank.step(u)   # u: ints, shape (n,) -> int8 events (0, +1, -1)
    res = bank.run(U)   # U: ints, shape (n, m) -> Result(c2, k, ev), each (n, m)

Bit-identical to n independent kairos.Channel objects fed the same samples
(tests/kairos/test_batch.py checks every step).  Firmware never imports this
module: it is CPython + numpy only.

All channels step in lock-step, so the tick, the ring index w and the
demodulation phase are shared scalars; the rest of the state is int64
arrays over the channels.  run() cuts U into chunks of T samples; per chunk

  1. clamp, then the pre-smoother and derivative (a loop over time);
  2. the gain, energy, ring and accumulator recursions: a loop over time,
     vectorised over channels and lags (A_E runs as one more accumulator),
     that stores the updated accumulators A_k and the energies E_lag,k and
     E each sample used;
  3. vectorised over the whole chunk: y_k = |t_k|^2 // E_lag,k, the scan
     for the dominant lag with its 1/64 bar, and c^2 in Q15 (_c2q15).
     The floor divisions run in float64, which is exact here: for
     0 <= a < 2**53 and b >= 1, rounding a / b can never reach the next
     integer (a non-integer quotient is at least 1/b below it, more than
     the rounding error a / b * 2**-53), so floor(a / b) == a // b.
Then, over all of run()'s samples in blocks of columns, the collapse state
machine (only for channels that can change state, jumping from event to
event).

Gain changes (rare) rescale only the channels concerned.  Python's and
numpy's >> and // on int64 both floor, so the integer maths is the scalar's.

Files: this module holds Bank (state, run(), steps 1-2 and the read-backs);
_batch_math.py step 3 (dominant), isqrt, _c2q15 and the chunk buffers;
_batch_state.py the gain rescaling and the collapse state machine.
"""
from collections import namedtuple

import numpy as np

from . import _batch_state
from ._batch_math import Workspace, _c2q15, dominant, fast_chunk, isqrt
from ._step import quiet_passes
from .channel import (
    _D_MAX,
    _E_FLOOR,
    _G_MAX,
    _TICK_MASK,
    Q14,
    _check,
    _config,
    ring_size,
)
from .defaults import DWELL, HYSTERESIS, IC, LAGS, OMEGA, S0, S
from .fixmath import sin_table

__all__ = ["Bank", "Result", "isqrt"]

Result = namedtuple("Result", "c2 k ev")

_I64 = np.int64
_CHUNK_ELEMS = 1 << 16  # about T * K * n per chunk, so the chunk's arrays stay in cache


class Bank:
    """n KAIROS channels of one configuration, stepped together.

    Read-backs (arrays over the channels, as of the last sample) match the
    scalar Channel's properties: c2, c, k, tau, coh (shape (n, K)), gain,
    tick, collapsed, e, t_re, t_im.  There is no event ring and no
    on_event callback: step() and run() return the events.
    """

    def __init__(
        self,
        n,
        lags=LAGS,  # the defaults: kairos.defaults (as Channel's)
        s=S,
        s0=S0,
        omega=OMEGA,
        ic=IC,
        hysteresis=HYSTERESIS,
        dwell=DWELL,
    ):
        self.n = _check("n", n, 1, 1 << 24)
        (self.lags, self.s, self.s0, self.omega, self.ic, self.hysteresis,
         self.dwell) = _config(lags, s, s0, omega, ic, hysteresis, dwell)
        K = len(self.lags)
        size = ring_size(self.lags)
        self._size = size
        self._nq = quiet_passes(size, self.s)
        self._lag = np.array(self.lags, dtype=_I64)
        # The d ring and the e ring, (2, size, n): a ring row is contiguous.
        # The e ring holds e floored at 4, as Channel's does.
        self._ring = np.zeros((2, size, n), _I64)
        self._ring[1] = _E_FLOOR
        # The accumulators (re; im when demodulating) of the K lags and of
        # the energy A_E, (R, K + 1, n) (see _recur).
        self._ab = np.zeros((2 if omega else 1, K + 1, n), _I64)
        self._acc = np.zeros(n, _I64)  # smoother, v * 2**s0
        self._primed = False
        self._g3 = np.full(n, _G_MAX + 3, _I64)  # gain + 3
        self._qn = np.zeros(n, _I64)  # quiet ring passes in a row (capped at nq)
        self._dropped = np.zeros(n, bool)  # the gain dropped in this ring pass
        self._i = 0  # samples stepped so far
        self._run = np.zeros(n, _I64)
        self._coll = np.zeros(n, bool)
        self._c2 = np.zeros(n, _I64)
        self._k = np.zeros(n, _I64)
        self._w = 0  # ring write index
        self._ph = 0  # demodulation phase
        self._t = -1  # tick of the last sample
        self._sin = np.array(sin_table(), dtype=_I64) if omega else None
        # Ring rows read at write index w: the K lags, then w itself (e).
        self._js = [np.append((w - self._lag) & (size - 1), w) for w in range(size)]
        self._rows = (list(self._ring[0]), list(self._ring[1]))
        # (measured at n = 1000: T = 16 for K = 4 and 10 for K = 8 are near the best)
        self._T = max(4, min(1024, 2 * _CHUNK_ELEMS // ((K + 4) * n)))
        self._ws = None
        self._Tc = max(16, min(4096, _CHUNK_ELEMS * 8 // n))  # collapse block
        self._cbuf = None

    # -- stepping -----------------------------------------------------------
    def step(self, u):
        """One sample per channel (ints, shape (n,)); returns the int8 events."""
        u = np.asarray(u)
        if u.shape != (self.n,):
            raise ValueError("u must have shape (%d,), got %r" % (self.n, u.shape))
        return self.run(u[:, None]).ev[:, 0]

    def run(self, U):
        """m samples per channel (ints, shape (n, m)); returns Result(c2, k, ev).

        c2 (int32, Q15 c*^2), k (int8, dominant lag index) and ev (int8: +1
        on entering collapse, -1 on leaving, else 0), each of shape (n, m).
        Inputs are clamped to +-2**14 like Channel.step; they must fit int64.
        """
        U = np.asarray(U)
        if U.ndim != 2 or U.shape[0] != self.n:
            raise ValueError("U must have shape (%d, m), got %r" % (self.n, U.shape))
        if not np.issubdtype(U.dtype, np.integer):
            raise TypeError("U must hold integers, got dtype %s" % U.dtype)
        if np.issubdtype(U.dtype, np.unsignedinteger):
            U = np.minimum(U, Q14)
        if U.dtype != _I64:
            U = U.astype(_I64)
        m = U.shape[1]
        c2 = np.empty((self.n, m), np.int32)
        k = np.empty((self.n, m), np.int8)
        if self._ws is None:
            self._ws = Workspace(self._T, len(self.lags), self.n, self.omega != 0)
        ws = self._ws
        size, a = self._size, 0
        while a < m:
            # A chunk never runs past the end of a ring pass when the ring is
            # long enough: gains then rise only at a chunk's first sample.
            r0 = (self._w + 1) & (size - 1)
            b = min(m, a + self._T, a + size - r0) if size >= 16 else min(m, a + self._T)
            X = ws.X[: b - a]
            np.clip(U[:, a:b].T, -Q14, Q14, out=X)  # (T, n), time-major
            self._derivative(X)
            ws.el_float = False
            self._recur(X, ws)
            C2, KB = dominant(self, b - a, ws)
            np.copyto(c2[:, a:b], C2.T, casting="unsafe")
            np.copyto(k[:, a:b], KB.T)
            a = b
        if m:
            self._c2 = c2[:, -1].astype(_I64)
            self._k = k[:, -1].astype(_I64)
        return Result(c2, k, self._collapse(c2))

    def _derivative(self, X):
        """Pre-smoothing and derivative, in place: X (clamped u) becomes d_raw."""
        acc, s0 = self._acc, self.s0
        t0 = 0
        if not self._primed:
            np.left_shift(X[0], s0, out=acc)
            X[0] = 0
            self._primed = True
            t0 = 1
        if t0 >= len(X):
            return
        if s0 == 0:  # acc = u, so d is a plain difference
            last = X[-1].copy()
            X[t0 + 1 :] -= X[t0:-1].copy()
            X[t0] -= acc
            acc[:] = last
            return
        v = np.empty_like(acc)
        for t in range(t0, len(X)):
            row = X[t]
            np.right_shift(acc, s0, out=v)
            np.subtract(row, v, out=row)
            acc += row

    def _recur(self, X, ws):
        """Gain, ring, energy and accumulators, sample by sample, over X = d_raw.

        Leaves in ws.AB the accumulators after each sample, shape
        (T, R, K + 1, n) with R = 2 (re, im) when demodulating, else 1: the
        K lags, then the energy A_E (whose recursion has the same form, fed
        by d * d from the ring row just written).  ws.EL gets the K lagged
        energies each sample read followed by its own e, shape (T, K + 1, n),
        floored at 4 like the ring.
        """
        T, n = X.shape
        K = len(self.lags)
        s, S = self.s, self.s - 3
        mask = self._size - 1
        omega = self.omega
        dring, ering = self._ring
        drow, erow = self._rows  # views of the ring rows
        ABr, AEr, ELr = ws.ABr, ws.AEr, ws.ELr  # views per sample
        dl, x2, x20, tK, sq = ws.dl, ws.x2, ws.x2[0], ws.tK, ws.sq
        ab_prev = self._ab
        js_of = self._js
        w = self._w
        cs = None
        if omega:
            sin = self._sin
            idx = ((self._ph + omega * np.arange(T, dtype=_I64)) & 0xFFFF) >> 6
            cs = np.empty((T, 2, 1, 1), _I64)  # (cos, sin) per sample
            cs[:, 0, 0, 0] = sin[idx + 256]
            cs[:, 1, 0, 0] = sin[idx]
            self._ph = int((self._ph + omega * T) & 0xFFFF)
            SD = S + 4
            p, xl = ws.p, x2[:, :K]
        # d for the whole chunk at the gains it starts with (recomputed from
        # a sample on whenever a gain changes); while no |d| in it reaches
        # 2**13, no sample needs the drop test.
        D = ws.D[:T]
        r0 = (w + 1) & mask
        if not r0:  # the chunk starts a ring pass: quiet passes counted, gains may rise
            ab_prev = self._pass_end(ab_prev)
        safe = self._gained(X, D, 0)
        if safe and r0 + T <= mask + 1:  # no gain change in the chunk
            self._ab = fast_chunk(self, D, ws, ab_prev, r0, cs)
            self._w = (w + T) & mask
            self._i += T
            self._t = (self._t + T) & _TICK_MASK
            return
        for t in range(T):
            w = (w + 1) & mask
            if not w and t:  # a new ring pass: quiet passes counted, gains may rise
                ab_new = self._pass_end(ab_prev)
                if ab_new is not ab_prev:
                    ab_prev = ab_new
                    safe = self._gained(X, D, t)
            d = drow[w]
            np.copyto(d, D[t])  # d_raw << g, or >> -g
            if not safe:
                np.multiply(d, d, out=sq)
                if sq.max() >= _D_MAX * _D_MAX:  # |d| >= 2**13: gain down
                    sel = np.flatnonzero(sq >= _D_MAX * _D_MAX)
                    ab_prev = self._gain_down(sel, d, ab_prev)
                    safe = self._gained(X, D, t + 1)
            # Lag products and d * d (ring row w is d itself), then all K + 1
            # leaky accumulators: a += x - (a >> s).
            js = js_of[w]
            np.take(dring, js, axis=0, out=dl, mode="wrap")
            np.multiply(dl, d, out=dl)
            if omega:
                np.right_shift(dl[:K], 10, out=p)  # |p| < 2**16
                np.multiply(p, cs[t], out=xl)  # p * cos, p * sin
                np.right_shift(xl, SD, out=xl)
                np.right_shift(dl[K], S, out=x2[0, K])  # x2[1, K] stays 0
            else:
                np.right_shift(dl, S, out=x20)
            ab_new = ABr[t]
            np.right_shift(ab_prev, s, out=tK)
            np.add(ab_prev, x2, out=ab_new)
            ab_new -= tK
            e = erow[w]
            np.right_shift(AEr[t], 14, out=e)
            np.maximum(e, _E_FLOOR, out=e)
            np.take(ering, js, axis=0, out=ELr[t], mode="wrap")  # E_lag,k and e
            ab_prev = ab_new
        self._w = w
        self._i += T
        self._t = (self._t + T) & _TICK_MASK
        self._ab = ab_prev.copy()

    def _gained(self, X, D, t0):
        """D[t0:] = d at the current gains, d = (d_raw << (g + 3)) >> 3;
        True if every |d| there is below 2**13 (no gain drop to look for)."""
        if t0 >= len(X):
            return True
        Dt = D[t0:]
        np.left_shift(X[t0:], self._g3, out=Dt)
        np.right_shift(Dt, 3, out=Dt)
        return Dt.max() < _D_MAX and Dt.min() > -_D_MAX

    # Gain rescaling and the collapse state machine live in _batch_state.
    _gain_down = _batch_state.gain_down
    _pass_end = _batch_state.pass_end
    _collapse = _batch_state.collapse

    # -- read-back ----------------------------------------------------------
    def _w_read(self):
        # As Channel._w: the tick + 1 modulo the ring size (the last write).
        return (self.tick + 1) & (self._size - 1)

    @property
    def tick(self):
        """Tick of the last sample (wraps at 2**30); 0 before the first."""
        return self._t if self._t >= 0 else 0

    @property
    def c2(self):
        """c*^2 of the dominant lag per channel, Q15."""
        return self._c2.copy()

    @property
    def c(self):
        """Coherence of the dominant lag per channel, Q15."""
        return isqrt(self._c2 << 15)

    @property
    def k(self):
        """Index of the dominant lag per channel."""
        return self._k.copy()

    @property
    def tau(self):
        """The dominant lag in samples per channel."""
        return self._lag[self._k]

    @property
    def gain(self):
        """Block-floating-point gain per channel: d = d_raw * 2**gain."""
        return self._g3 - 3

    @property
    def collapsed(self):
        return self._coll.copy()

    @property
    def e(self):
        """Energy E per channel (A_E >> 14, >= 4)."""
        return np.maximum(self._ring[1, self._w_read()], _E_FLOOR)

    @property
    def t_re(self):
        """Re T of the dominant lag per channel (A >> 14)."""
        return np.take_along_axis(self._ab[0], self._k[None], 0)[0] >> 14

    @property
    def t_im(self):
        """Im T of the dominant lag per channel (0 unless omega is set)."""
        if not self.omega:
            return np.zeros(self.n, _I64)
        return np.take_along_axis(self._ab[1], self._k[None], 0)[0] >> 14

    @property
    def coh(self):
        """Per-lag coherence, Q15, shape (n, K)."""
        K = len(self.lags)
        w = self._w_read()
        ering = np.maximum(self._ring[1], _E_FLOOR)
        e = np.broadcast_to(ering[w], (len(self.lags), self.n))
        el = ering[(w - self._lag) & (self._size - 1)]
        if self.omega:
            a = self._ab[0, :K] >> 15
            b = self._ab[1, :K] >> 15
            c2 = _c2q15(a * a + b * b, el, e, 17)
        else:
            a = self._ab[0, :K] >> 14
            c2 = _c2q15(a * a, el, e, 15)
        return isqrt(c2 << 15).T.copy()
