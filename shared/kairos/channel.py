"""The Emissary tier of KAIROS for one sensor channel (spec section 1).

Per sample: clamp to Q14, pre-smooth, differentiate, keep a ring of the
derivative d, and per lag L_k integrate the lagged product d[n]*d[n-L_k]
(optionally demodulated at omega).  Coherence c_k = |T_k| / sqrt(E*E_lag,k)
picks the dominant lag, and a hysteresis state machine turns c*^2 crossing
I_c into collapse events.

Integer-only: every intermediate stays inside +-2**30 so MicroPython never
allocates a big int, and step() allocates nothing.  Fixed-point layout:

  d        derivative after the block-floating-point gain, |d| < 2**13
  p        d * d_lag >> S with S = s - 3, so the accumulators stay < 2**29
  A        leaky accumulators A += p - (A >> s); T = A / 2**s keeps every bit
  e        A_E >> 14 (< 2**15), also kept in a ring: E_lag,k[n] = E[n - L_k]
  c2       c^2 in Q15, from t*t // e and one more division (no sqrt per step)

The gain g (d = d_raw * 2**g) drops by one bit the moment |d| would reach
2**13 and rises by one bit once d and E stayed small for a whole ring, so
a rise can never push a stored value out of range.  Both rescale the ring
and the accumulators (rare, O(ring)).
"""
from array import array

from .fixmath import isqrt, sin_table

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


Q14 = const(16384)
_D_MAX = const(8192)  # |d| < 2**13 after the gain, so |d * d_lag| < 2**26
_D_QUIET = const(4096)  # gain may rise once |d| < 2**12 ...
_E_QUIET = const(1 << 27)  # ... and A_E < 2**27 held for a whole ring
_G_MIN = const(-3)  # |d_raw| <= 2**15, and 2**15 >> 3 < 2**13
_G_MAX = const(12)  # a one-LSB derivative is lifted to 2**12
_E_FLOOR = const(4)  # smallest e kept: no division by zero, silence -> c = 0
_C2_MAX = const(32767)
_TICK_MASK = const(0x3FFFFFFF)  # the tick wraps at 2**30 like ticks_ms
_MAX_LAG = const(1024)
_EV_RING = const(16)

# Indices into Channel._out, the state the properties read back.
_O_C2 = const(0)
_O_K = const(1)
_O_TICK = const(2)
_O_COLL = const(3)
_O_GAIN = const(4)
_O_EV_W = const(5)  # events written (mod 2**30)
_O_EV_R = const(6)  # events read by events()


def _c2q15(t2, el, e, sh):
    """c^2 in Q15 from |t|^2 = t2 (scaled by 2**(15 - sh)), e_lag and e.

    c^2 = t2 * 2**(sh - 15) / (e * el).  Quotient and remainder of t2 / el
    are kept apart so the result is exact to one LSB of Q15 (a plain
    t2 // el would round c^2 to 1/e, and sqrt turns that into a step of
    ~0.02 in c near zero).  All intermediates stay below 2**30.
    """
    q = t2 // el
    if q >= e >> (sh - 15):
        return _C2_MAX  # c >= 1 (Cauchy-Schwarz, up to rounding)
    r = ((t2 - q * el) << 15) // el  # the fraction t2/el - q, in Q15
    return ((q << sh) + (r << (sh - 15))) // e


def _rescale(up, ae, dring, ering, are, aim):
    """Shift everything in units of the gain by one bit of d; return A_E.

    Rare (a gain change) and O(ring), so it may loop over the arrays.
    """
    if up:
        for i in range(len(dring)):
            dring[i] <<= 1
            ering[i] <<= 2
        for k in range(len(are)):
            are[k] <<= 2
            aim[k] <<= 2
        return ae << 2
    for i in range(len(dring)):
        dring[i] >>= 1
        v = ering[i] >> 2
        ering[i] = v if v > _E_FLOOR else _E_FLOOR
    for k in range(len(are)):
        are[k] >>= 2
        aim[k] >>= 2
    return ae >> 2


def _check(name, value, lo, hi):
    if not isinstance(value, int) or value < lo or value > hi:
        raise ValueError("%s must be an int in %d..%d, got %r" % (name, lo, hi, value))
    return value


def _check_lags(lags):
    try:
        lags = tuple(lags)
    except TypeError:
        raise ValueError("lags must be a sequence of ints, got %r" % (lags,)) from None
    if not 1 <= len(lags) <= 8:
        raise ValueError("lags must hold 1..8 lags, got %d" % len(lags))
    prev = 0
    for L in lags:
        if not isinstance(L, int) or L <= prev:
            raise ValueError("lags must be strictly increasing ints >= 1, got %r" % (lags,))
        prev = L
    if prev > _MAX_LAG:
        raise ValueError("lags must not exceed %d samples, got %d" % (_MAX_LAG, prev))
    return lags


def _config(lags, s, s0, omega, ic, hysteresis, dwell):
    """The checked configuration (lags, s, s0, omega, ic, hysteresis, dwell).

    Shared by Channel and kairos.batch.Bank; raises ValueError naming the
    first bad argument.
    """
    return (
        _check_lags(lags),
        _check("s", s, 4, 12),
        _check("s0", s0, 0, 6),
        _check("omega", omega, 0, 65535),
        _check("ic", ic, 1, _C2_MAX),
        _check("hysteresis", hysteresis, 0, ic - 1),
        _check("dwell", dwell, 1, 1 << 20),
    )


class Channel:
    """One channel of the fast tier.  See the module docstring for the layout.

    ch = Channel(lags=(2, 4, 8, 16), s=8, s0=2, omega=0, ic=22938,
                 hysteresis=1638, dwell=4)
    ch.step(u) -> 0, or +1 / -1 when collapse was entered / left
    """

    def __init__(
        self,
        lags=(2, 4, 8, 16),
        s=8,
        s0=2,
        omega=0,
        ic=22938,
        hysteresis=1638,
        dwell=4,
        on_event=None,
    ):
        (self.lags, self.s, self.s0, self.omega, self.ic, self.hysteresis,
         self.dwell) = _config(lags, s, s0, omega, ic, hysteresis, dwell)
        self.on_event = on_event
        K = len(self.lags)
        size = 2
        while size < self.lags[-1] + 1:
            size <<= 1
        self._size = size
        self._lag = array("h", self.lags)
        self._dring = array("h", bytes(2 * size))
        self._ering = array("h", bytes(2 * size))
        self._coh = array("h", bytes(2 * K))
        self._are = array("i", bytes(4 * K))
        self._aim = array("i", bytes(4 * K))
        self._evt = array("i", bytes(4 * _EV_RING))  # event ticks
        self._evk = array("b", bytes(_EV_RING))  # event kinds, +1 / -1
        self._out = array("i", bytes(4 * 7))
        self._out[_O_GAIN] = _G_MAX
        gen = self._loop()
        next(gen)  # run to the first yield
        self.step = gen.send

    # -- the hot path -------------------------------------------------------
    def _loop(self):
        """The per-sample loop, as a generator: step = gen.send.

        Its state is the generator's own locals (the fastest variables on
        MicroPython, and resuming a generator allocates nothing, unlike a
        closure over many cells) plus the preallocated arrays.
        """
        lags, dring, ering = self.lags, self._dring, self._ering
        are, aim, out = self._are, self._aim, self._out
        s, s0, omega = self.s, self.s0, self.omega
        ic, leave, dwell = self.ic, self.ic - self.hysteresis, self.dwell
        S = s - 3
        SD = S + 4  # demodulated path: (d * d_lag >> 10) * cos_Q14 >> SD == p * cos
        size = self._size
        mask = size - 1
        sin = sin_table() if omega else None
        for i in range(size):
            ering[i] = _E_FLOOR
        acc = 0  # smoother state: v * 2**s0
        primed = False
        g = _G_MAX
        ae = 0  # energy accumulator A_E
        w = 0  # ring write index
        quiet = 0  # samples with small d and E in a row
        ph = 0  # demodulation phase, 16-bit binary angle
        run = 0  # samples at or above I_c in a row
        coll = False
        n = -1  # tick of the current sample
        ev = 0
        t2 = el2 = 0
        while True:
            u = yield ev
            ev = 0
            n = (n + 1) & _TICK_MASK
            out[_O_TICK] = n
            if u > Q14:
                u = Q14
            elif u < -Q14:
                u = -Q14
            # Pre-smoothing and derivative: acc = v * 2**s0, so
            # d = v[n] - v[n-1] keeps s0 extra bits and |d| <= 2**15.
            if primed:
                d = u - (acc >> s0)
                acc += d
            else:
                acc = u << s0
                primed = True
                d = 0
            if g >= 0:
                d <<= g
            else:
                d >>= -g
            while d >= _D_MAX or d <= -_D_MAX:
                g -= 1
                d >>= 1
                ae = _rescale(False, ae, dring, ering, are, aim)
                quiet = 0
                out[_O_GAIN] = g
            w = (w + 1) & mask
            dring[w] = d
            ae += ((d * d) >> S) - (ae >> s)
            e = ae >> 14
            if e < _E_FLOOR:
                e = _E_FLOOR
            ering[w] = e
            if d < _D_QUIET and d > -_D_QUIET and ae < _E_QUIET:
                quiet += 1
                if quiet > size and g < _G_MAX:
                    g += 1
                    ae = _rescale(True, ae, dring, ering, are, aim)
                    quiet = 0
                    out[_O_GAIN] = g
                    e = ering[w]
            else:
                quiet = 0
            # Per lag: y = |t|^2 // e_lag = c^2 * e.  e is common to all lags,
            # so the largest y is the dominant lag; only it becomes c^2.  A
            # longer lag must beat the best so far by 1/64 of c^2: ties
            # within the fixed-point noise go to the shortest lag.
            bar = -1
            kb = 0
            if sin is None:
                k = 0
                for L in lags:  # a tuple walk is cheaper than range + index
                    j = (w - L) & mask
                    a = are[k]
                    a += ((d * dring[j]) >> S) - (a >> s)
                    are[k] = a
                    a >>= 14  # |t| < 2**15, t*t < 2**30
                    a *= a
                    el = ering[j]
                    y = a // el
                    if y > bar:
                        kb = k
                        t2 = a
                        el2 = el
                        bar = y + (y >> 6)
                    k += 1
                c2 = _c2q15(t2, el2, e, 15)
            else:
                i = ph >> 6
                co = sin[i + 256]
                si = sin[i]
                ph = (ph + omega) & 0xFFFF
                k = 0
                for L in lags:
                    j = (w - L) & mask
                    p = (d * dring[j]) >> 10  # |p| < 2**16, so |p * cos| < 2**30
                    a = are[k]
                    a += ((p * co) >> SD) - (a >> s)
                    are[k] = a
                    b = aim[k]
                    b += ((p * si) >> SD) - (b >> s)
                    aim[k] = b
                    a >>= 15  # halves keep |T|^2 = a*a + b*b below 2**30
                    b >>= 15
                    a = a * a + b * b
                    el = ering[j]
                    y = a // el  # c^2 * e / 4
                    if y > bar:
                        kb = k
                        t2 = a
                        el2 = el
                        bar = y + (y >> 6)
                    k += 1
                c2 = _c2q15(t2, el2, e, 17)
            out[_O_C2] = c2
            out[_O_K] = kb
            # Collapse: enter after `dwell` samples at c*^2 >= I_c, leave
            # below I_c - h.
            if coll:
                if c2 < leave:
                    coll = False
                    ev = self._event(n, -1)
            elif c2 >= ic:
                run += 1
                if run >= dwell:
                    run = 0
                    coll = True
                    ev = self._event(n, 1)
            else:
                run = 0

    def _event(self, tick, kind):
        out = self._out
        i = out[_O_EV_W]
        self._evt[i & (_EV_RING - 1)] = tick
        self._evk[i & (_EV_RING - 1)] = kind
        out[_O_EV_W] = (i + 1) & _TICK_MASK
        out[_O_COLL] = 1 if kind > 0 else 0
        if self.on_event is not None:
            self.on_event(tick, kind > 0)
        return kind

    # -- read-back (not on the hot path) ------------------------------------
    @property
    def c2(self):
        """c*^2 of the dominant lag, Q15."""
        return self._out[_O_C2]

    @property
    def c(self):
        """Coherence of the dominant lag, Q15 (0..32767)."""
        return isqrt(self._out[_O_C2] << 15)

    @property
    def k(self):
        """Index of the dominant lag (the shortest on ties of c^2)."""
        return self._out[_O_K]

    @property
    def tau(self):
        """The dominant lag in samples."""
        return self.lags[self._out[_O_K]]

    def _c2_of(self, k, e, w):
        """c^2 of lag k in Q15, from the stored state, exactly as step() does."""
        el = self._ering[(w - self._lag[k]) & (self._size - 1)]
        if self.omega:
            a = self._are[k] >> 15
            b = self._aim[k] >> 15
            return _c2q15(a * a + b * b, el, e, 17)
        a = self._are[k] >> 14
        return _c2q15(a * a, el, e, 15)

    @property
    def coh(self):
        """Per-lag coherence, Q15; a preallocated array refreshed on read."""
        coh = self._coh
        w = self._w()
        e = self._ering[w]
        for k in range(len(coh)):
            coh[k] = isqrt(self._c2_of(k, e, w) << 15)
        return coh

    def _w(self):
        # step() advances the ring index once per sample from 0, so it is
        # the tick + 1 modulo the (power of two) ring size, across wraps too.
        return (self._out[_O_TICK] + 1) & (self._size - 1)

    @property
    def t_re(self):
        """Re T of the dominant lag, in the units of e (A >> 14)."""
        return self._are[self._out[_O_K]] >> 14

    @property
    def t_im(self):
        """Im T of the dominant lag (0 unless omega is set)."""
        return self._aim[self._out[_O_K]] >> 14

    @property
    def e(self):
        """Energy E of the derivative, in the units of t_re (A_E >> 14, >= 4)."""
        return self._ering[self._w()]

    @property
    def gain(self):
        """Block-floating-point gain: d = d_raw * 2**gain."""
        return self._out[_O_GAIN]

    @property
    def tick(self):
        """Tick of the last sample (wraps at 2**30)."""
        return self._out[_O_TICK]

    @property
    def collapsed(self):
        return self._out[_O_COLL] == 1

    def events(self):
        """Yield (tick, entered) for transitions not yet read (last 16 kept)."""
        out = self._out
        w = out[_O_EV_W]
        r = out[_O_EV_R]
        if (w - r) & _TICK_MASK > _EV_RING:
            r = (w - _EV_RING) & _TICK_MASK
        while r != w:
            i = r & (_EV_RING - 1)
            r = (r + 1) & _TICK_MASK
            out[_O_EV_R] = r
            yield self._evt[i], self._evk[i] > 0
