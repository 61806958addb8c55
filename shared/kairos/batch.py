"""The hub's batch path: N KAIROS channels x M samples per call, with numpy.

    from kairos.batch import Bank
    bank = Bank(n, lags=(2, 4, 8, 16), s=8, s0=2, omega=0, ic=22938,
                hysteresis=1638, dwell=4)
    ev = bank.step(u)   # u: ints, shape (n,) -> int8 events (0, +1, -1)
    res = bank.run(U)   # U: ints, shape (n, m) -> Result(c2, k, ev), each (n, m)

Bit-identical to n independent kairos.Channel objects fed the same samples
(tests/test_batch.py checks every step).  Firmware never imports this
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
"""
from collections import namedtuple

import numpy as np

from .channel import (
    _C2_MAX,
    _D_MAX,
    _E_FLOOR,
    _E_QUIET,
    _G_MAX,
    _TICK_MASK,
    Q14,
    _check,
    _check_lags,
)
from .fixmath import sin_table

Result = namedtuple("Result", "c2 k ev")

_I64 = np.int64
_F64 = np.float64
_CHUNK_ELEMS = 1 << 16  # T * K * n per chunk, so the chunk's arrays stay in cache
_NEVER = 1 << 62  # a "last loud sample" that never starts a quiet run
_RING_SHIFT = np.array([1, 2], dtype=np.int64)[:, None, None]  # d ring, e ring


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
        lags=(2, 4, 8, 16),
        s=8,
        s0=2,
        omega=0,
        ic=22938,
        hysteresis=1638,
        dwell=4,
    ):
        self.n = _check("n", n, 1, 1 << 24)
        self.lags = _check_lags(lags)
        self.s = _check("s", s, 4, 12)
        self.s0 = _check("s0", s0, 0, 6)
        self.omega = _check("omega", omega, 0, 65535)
        self.ic = _check("ic", ic, 1, _C2_MAX)
        self.hysteresis = _check("hysteresis", hysteresis, 0, ic - 1)
        self.dwell = _check("dwell", dwell, 1, 1 << 20)
        K = len(self.lags)
        size = 2
        while size < self.lags[-1] + 1:
            size <<= 1
        self._size = size
        self._lag = np.array(self.lags, dtype=_I64)
        # The d ring and the e ring, (2, size, n): a ring row is contiguous.
        # The e ring may hold values below the floor of 4 (see _gain_down).
        self._ring = np.zeros((2, size, n), _I64)
        self._ring[1] = _E_FLOOR
        # The accumulators (re; im when demodulating) of the K lags and of
        # the energy A_E, (R, K + 1, n) (see _recur).
        self._ab = np.zeros((2 if omega else 1, K + 1, n), _I64)
        self._acc = np.zeros(n, _I64)  # smoother, v * 2**s0
        self._primed = False
        self._g3 = np.full(n, _G_MAX + 3, _I64)  # gain + 3
        # Channel's quiet counter after sample i is i - _loud (i counts from 0).
        self._loud = np.full(n, -1, _I64)
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
        self._T = max(4, min(1024, _CHUNK_ELEMS // (K * n)))
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
            self._ws = _Workspace(self._T, len(self.lags), self.n, self.omega != 0)
        ws = self._ws
        for a in range(0, m, self._T):
            b = min(m, a + self._T)
            X = ws.X[: b - a]
            np.clip(U[:, a:b].T, -Q14, Q14, out=X)  # (T, n), time-major
            self._derivative(X)
            self._recur(X, ws)
            C2, KB = self._dominant(b - a, ws)
            np.copyto(c2[:, a:b], C2.T, casting="unsafe")
            np.copyto(k[:, a:b], KB.T)
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
        before the floor of 4 (see _gain_down).
        """
        T, n = X.shape
        K = len(self.lags)
        s, S = self.s, self.s - 3
        size = self._size
        mask = size - 1
        omega = self.omega
        dring, ering = self._ring
        drow, erow = self._rows  # views of the ring rows
        g3, loud = self._g3, self._loud
        Xr, ABr, AEr, ELr = ws.Xr, ws.ABr, ws.AEr, ws.ELr  # views per sample
        dl, x2, x20, tK = ws.dl, ws.x2, ws.x2[0], ws.tK
        sq, tq, bad = ws.sq, ws.tq, ws.bad
        ab_prev = self._ab
        js_of = self._js
        w = self._w
        i0 = self._i
        # Nobody's quiet run can exceed the ring before sample `check`
        # (loud only grows), so the minimum is only looked at from there.
        check = int(loud.min()) + size + 1
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
        for t in range(T):
            i = i0 + t
            w = (w + 1) & mask
            d = drow[w]
            np.left_shift(Xr[t], g3, out=d)  # d_raw << g, or >> -g: g3 = g + 3 >= 0
            np.right_shift(d, 3, out=d)
            np.multiply(d, d, out=sq)
            if sq.max() >= _D_MAX * _D_MAX:  # |d| >= 2**13: gain down
                ab_prev = self._gain_down(np.flatnonzero(sq >= _D_MAX * _D_MAX), d, sq,
                                          ab_prev, i)
                check = min(check, i + size)  # their quiet count restarts
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
            ae = AEr[t]
            np.right_shift(ae, 14, out=erow[w])  # e
            # Quiet while |d| < 2**12 and A_E < 2**27; both are >= 0, so OR them.
            np.left_shift(sq, 3, out=tq)  # |d| < 2**12  <=>  d*d << 3 < 2**27
            np.bitwise_or(tq, ae, out=tq)
            np.greater_equal(tq, _E_QUIET, out=bad)
            np.copyto(loud, i, where=bad)
            if i >= check:
                if loud.min() < i - size:  # quiet > size: gain up, below the top
                    sel = np.flatnonzero(loud < i - size)
                    top = g3[sel] >= _G_MAX + 3
                    if top.any():
                        loud[sel[top]] = _NEVER  # moot at the top: only a gain
                        sel = sel[~top]  # drop (which resets the count) leaves it
                    if len(sel):
                        self._gain_up(sel, ab_prev, ab_new, dl, cs[t] if omega else None, i)
                check = int(loud.min()) + size + 1
            np.take(ering, js, axis=0, out=ELr[t], mode="wrap")  # E_lag,k and e
            ab_prev = ab_new
        self._w = w
        self._i = i0 + T
        self._t = (self._t + T) & _TICK_MASK
        self._ab = ab_prev.copy()

    def _gain_down(self, sel, d, sq, ab_prev, i):
        """Drop the gain of channels sel until |d| < 2**13, rescaling as
        channel._rescale(False, ...) does once per bit; returns the rescaled
        copy of ab_prev (AB[t - 1] stays as it was, for _dominant).

        The shifts compose, and the floor of 4 on the energy ring is applied
        where it is read instead: max(max(x >> 2, 4) >> 2, 4) ==
        max(x >> 4, 4) == max(max(x, 4) >> 4, 4).  No gain rise can come
        between (it needs a quiet run of a whole ring, which rewrites every
        ring entry), except on entries written since, which _gain_up floors.
        """
        ds = d[sel]
        # Bits to drop until -8192 < d >> ns < 8192: bit_length(|d|) - 13, and
        # one more where that leaves exactly -8192 (d < 0 needs |d| <= 8191 << ns).
        ns = np.frexp(ds)[1] - 13
        ns += (ds >> ns) == -_D_MAX
        ns2 = ns << 1
        if 4 * len(sel) > self.n:  # many (the first loud samples): shift in place
            sh = np.zeros((2, 1, self.n), _I64)
            sh[0, 0, sel] = ns
            sh[1, 0, sel] = ns2
            np.right_shift(self._ring, sh, out=self._ring)  # d itself is ring row w
            ab_prev = ab_prev >> sh[1]
        else:
            self._ring[:, :, sel] >>= ns * _RING_SHIFT  # d itself is ring row w
            ab_prev = ab_prev.copy()
            ab_prev[:, :, sel] >>= ns2  # the lags and A_E
        ds >>= ns
        sq[sel] = ds * ds
        self._g3[sel] -= ns
        self._loud[sel] = i - 1  # quiet = 0 before this sample counts
        return ab_prev

    def _gain_up(self, sel, ab_prev, ab_new, prod, cs, i):
        """Raise the gain of channels sel by one bit, as channel._rescale(True,
        ...) after the ring write and the A_E update, in place in ab_new.

        Their lag accumulators are redone from the rescaled ab_prev: the
        scalar loop multiplies the unshifted d by the shifted ring, so the
        products (prod = d * d_lag) count twice.
        """
        K = len(self.lags)
        s, S = self.s, self.s - 3
        r = self._ring[:, :, sel]  # d ring << 1, e ring (floored) << 2; e is row w
        np.maximum(r[1], _E_FLOOR, out=r[1])
        r <<= _RING_SHIFT
        self._ring[:, :, sel] = r
        ab_new[0, K, sel] <<= 2  # A_E after its update
        a = ab_prev[:, :K, sel] << 2
        pr = prod[:K, sel] << 1
        x = pr >> S if cs is None else ((pr >> 10) * cs) >> (S + 4)
        a += x - (a >> s)
        ab_new[:, :K, sel] = a
        self._g3[sel] += 1
        self._loud[sel] = i

    def _dominant(self, T, ws):
        """Per sample: the dominant lag k* and its c^2 in Q15, as float64 arrays
        of exact integers, shape (T, n).

        y_k = |t_k|^2 // e_lag,k; lags are scanned in order and a longer one
        wins only with y > bar = y* + (y* >> 6) of the best so far.
        """
        K, n = len(self.lags), self.n
        AB, EL = ws.AB[:T], ws.EL[:T]
        t2, y, yb, ELf = ws.t2[:T], ws.y[:T], ws.yb[:T], ws.ELf[:T]
        if self.omega:
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
        np.maximum(EL, _E_FLOOR, out=ELf)
        np.divide(t2, ELf[:, :K], out=y)
        np.floor(y, out=y)
        np.multiply(y, 65.0 / 64, out=yb)  # y + (y >> 6) == floor(y * 65 / 64)
        np.floor(yb, out=yb)  # bar if lag k were the best
        E = ELf[:, K]
        bar, KB, kt, upd, bt = ws.bar[:T], ws.KB[:T], ws.kt[:T], ws.upd[:T], ws.r[:T]
        bar[:] = yb[:, 0]
        KB[:] = 0
        for k in range(1, K):
            # bar only grows and k beats every earlier index, so where()
            # becomes max() (branch-free, unlike a masked copy).
            np.greater(y[:, k], bar, out=upd)
            np.multiply(yb[:, k], upd, out=bt)
            np.maximum(bar, bt, out=bar)
            np.multiply(upd, k, out=kt)
            np.maximum(KB, kt, out=KB)
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

    def _collapse(self, C2):
        """Events from the collapse state machine over C2 (n, m), in blocks of
        columns (the state carries over)."""
        n, m = C2.shape
        EV = np.zeros((n, m), np.int8)
        Tc = self._Tc
        if self._cbuf is None:
            self._cbuf = (np.empty((n, Tc), bool), np.empty((n, Tc), bool))
        for a in range(0, m, Tc):
            b = min(m, a + Tc)
            self._collapse_block(C2[:, a:b], EV[:, a:b])
        return EV

    def _collapse_block(self, C2, EV):
        """One block, jumping from event to event.

        Not collapsed, `run` counts samples at c2 >= ic in a row and collapse
        is entered where it reaches dwell; collapsed, it is left at the first
        c2 < ic - h.  That sample is below ic too, so after leaving, run is
        the plain run length again.  Only channels with a sample that could
        change their state are looked at.
        """
        n, m = C2.shape
        run, coll, dw = self._run, self._coll, self.dwell
        ge = np.greater_equal(C2, self.ic, out=self._cbuf[0][:, :m])
        lt = np.less(C2, self.ic - self.hysteresis, out=self._cbuf[1][:, :m])
        live = np.flatnonzero(np.where(coll, lt.any(axis=1), ge.any(axis=1)))
        run_in = run[live]
        run[:] = 0  # the rest: collapsed throughout, or below ic somewhere
        if not len(live):
            return
        ge = ge[live]
        lt = lt[live]
        nl = len(live)
        cs = np.cumsum(ge, axis=1, dtype=_I64)  # samples at >= ic in 0..t
        # full[t]: run (counting run_in before the block) >= dwell at t
        full = np.empty((nl, m), bool)
        if dw <= m:
            np.equal(cs[:, dw - 1], dw, out=full[:, dw - 1])
            np.equal(cs[:, dw:] - cs[:, : m - dw], dw, out=full[:, dw:])
        j = min(dw - 1, m)
        if j:
            tt = np.arange(1, j + 1, dtype=_I64)
            full[:, :j] = (cs[:, :j] == tt) & (tt + run_in[:, None] >= dw)
        # Flat positions row * m + t of the candidate samples, for searchsorted.
        end = nl * m
        p_in = np.append(np.flatnonzero(full), end)
        p_out = np.append(np.flatnonzero(lt), end)
        base = np.arange(nl, dtype=_I64) * m
        pos = base.copy()  # first sample not decided yet, as a flat position
        c = coll[live]
        rows = np.arange(nl)
        while len(rows):
            key = pos[rows]
            cr = c[rows]
            v = np.where(cr, p_out[np.searchsorted(p_out, key)], p_in[np.searchsorted(p_in, key)])
            hit = v < base[rows] + m
            rows, v, cr = rows[hit], v[hit], cr[hit]
            EV[live[rows], v - base[rows]] = np.where(cr, -1, 1)
            c[rows] = ~cr
            pos[rows] = v + 1
            rows = rows[v + 1 < base[rows] + m]
        coll[live] = c
        tail = np.argmax(~ge[:, ::-1], axis=1)  # samples at >= ic at the end
        tail = np.where(cs[:, -1] == m, m + run_in, tail)
        run[live] = np.where(c, 0, tail)

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


class _Workspace:
    """Per-chunk buffers, reused (fresh large arrays cost page faults)."""

    def __init__(self, T, K, n, demod):
        self.X = np.empty((T, n), _I64)
        R = 2 if demod else 1
        self.AB = np.empty((T, R, K + 1, n), _I64)
        self.EL = np.empty((T, K + 1, n), _I64)
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
        self.kt = np.empty((T, n), _I64)
        self.ix = np.empty((T, n), _I64)
        self.upd = np.empty((T, n), bool)
        self.Xr, self.ABr, self.ELr = list(self.X), list(self.AB), list(self.EL)
        self.AEr = [a[0, K] for a in self.AB]  # A_E after each sample
        tt = np.arange(T, dtype=_I64)[:, None]
        self.base = tt * (K * n) + np.arange(n, dtype=_I64)  # flat index of (t, 0, c)
        self.row = tt * n  # (t, K + 1, n) minus (t, K, n) layout offset
