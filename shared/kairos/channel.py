"""The Emissary tier of KAIROS for one sensor channel (docs/kairos.md §1).

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
  c2       c^2 in Q15, from t*t // e_lag and one more division (no sqrt),
           computed when read; collapse decides on it without computing it

The gain g (d = d_raw * 2**g) drops the moment |d| would reach 2**13 and
rises by one bit once |d| < 2**11 held for the quiet window (whole ring
passes, at least max(2**s, 64) samples) with A_E < 2**27.  The band between
the two is a factor of four, so a rise leaves |d| below half the drop
level: steady noise does not make the gain hunt.  A change rescales the
ring and the accumulators (rare, O(ring)); kairos._step holds the
per-sample loop, and the read-backs below have it store its state first.
"""
from array import array

from . import _step
from .defaults import DWELL, HYSTERESIS, IC, LAGS, OMEGA, S0, S
from .fixmath import isqrt

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


_C2_MAX = const(32767)
_TICK_MASK = const(0x3FFFFFFF)  # the tick wraps at 2**30 like ticks_ms
_MAX_LAG = const(1024)
_EV_RING = const(16)

# The gain and bounds, shared with kairos.batch (see kairos._step).
Q14 = _step.Q14
_D_MAX = _step.D_MAX
_D_QUIET = _step.D_QUIET
_E_RISE = _step.E_RISE
_E_FLOOR = _step.E_FLOOR
_G_MAX = _step.G_MAX
_QUIET_MIN = _step.QUIET_MIN

# Indices into Channel._out, the state the read-backs see (kairos._step).
_O_C2 = _step.O_C2
_O_K = _step.O_K
_O_TICK = _step.O_TICK
_O_COLL = const(3)
_O_GAIN = _step.O_GAIN
_O_EV_W = const(5)  # events written (mod 2**30)
_O_EV_R = const(6)  # events read by events()


def _c2q15(t2, el, e, sh):
    """c^2 in Q15 from |t|^2 = t2 (scaled by 2**(15 - sh)), e_lag and e.

    c^2 = t2 * 2**(sh - 15) / (e * el).  Quotient and remainder of t2 / el
    are kept apart so the result is exact to one LSB of Q15 (a plain
    t2 // el would round c^2 to 1/e, and sqrt turns that into a step of
    ~0.02 in c near zero).  All intermediates stay below 2**30.  The step
    loop inlines the same arithmetic.
    """
    q = t2 // el
    if q >= e >> (sh - 15):
        return _C2_MAX  # c >= 1 (Cauchy-Schwarz, up to rounding)
    r = ((t2 - q * el) << 15) // el  # the fraction t2/el - q, in Q15
    return ((q << sh) + (r << (sh - 15))) // e


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


def ring_size(lags):
    """The ring length: the power of two >= L_max + 1 (at least 2)."""
    size = 2
    while size < lags[-1] + 1:
        size <<= 1
    return size


class Channel:
    """One channel of the fast tier.  See the module docstring for the layout.

    ch = Channel(lags=(2, 4, 8, 16), s=8, s0=2, omega=0, ic=22938,
                 hysteresis=1638, dwell=4)
    ch.step(u) -> 0, or +1 / -1 when collapse was entered / left
    """

    def __init__(
        self,
        lags=LAGS,  # the defaults: kairos.defaults
        s=S,
        s0=S0,
        omega=OMEGA,
        ic=IC,
        hysteresis=HYSTERESIS,
        dwell=DWELL,
        on_event=None,
    ):
        (self.lags, self.s, self.s0, self.omega, self.ic, self.hysteresis,
         self.dwell) = _config(lags, s, s0, omega, ic, hysteresis, dwell)
        self.on_event = on_event
        K = len(self.lags)
        size = ring_size(self.lags)
        self._size = size
        self._lag = array("h", self.lags)
        self._dring = array("h", bytes(2 * size))
        self._ering = array("h", bytes(2 * size))
        self._coh = array("h", bytes(2 * K))
        # 8 slots whatever K (the loop keeps ω = 0 accumulators in locals)
        self._are = array("i", bytes(4 * 8))
        self._aim = array("i", bytes(4 * 8))
        self._evt = array("i", bytes(4 * _EV_RING))  # event ticks
        self._evk = array("b", bytes(_EV_RING))  # event kinds, +1 / -1
        self._out = array("i", bytes(4 * 7))
        self._out[_O_GAIN] = _G_MAX
        gen = _step.loop(self)
        next(gen)  # run to the first yield
        # step = the generator's send: step(u) runs one sample; the
        # read-backs send _step.FLUSH to have the loop store its locals.
        self._send = gen.send
        self.step = gen.send if on_event is None else self._step_cb

    def _step_cb(self, u):
        ev = self._send(u)
        if ev:
            self.on_event(self.tick, ev > 0)
        return ev

    def _event(self, tick, kind):
        """Record a transition in the event ring (called by the loop)."""
        out = self._out
        i = out[_O_EV_W]
        self._evt[i & (_EV_RING - 1)] = tick
        self._evk[i & (_EV_RING - 1)] = kind
        out[_O_EV_W] = (i + 1) & _TICK_MASK
        out[_O_COLL] = 1 if kind > 0 else 0
        return kind

    # -- read-back (not on the hot path) ------------------------------------
    def _state(self):
        self._send(_step.FLUSH)
        return self._out

    @property
    def c2(self):
        """c*^2 of the dominant lag, Q15."""
        return self._state()[_O_C2]

    @property
    def c(self):
        """Coherence of the dominant lag, Q15 (0..32767)."""
        return isqrt(self._state()[_O_C2] << 15)

    @property
    def k(self):
        """Index of the dominant lag (the shortest on ties of c^2)."""
        return self._state()[_O_K]

    @property
    def tau(self):
        """The dominant lag in samples."""
        return self.lags[self._state()[_O_K]]

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
        # The ring index of the last write: the tick + 1 modulo the (power of
        # two) ring size, across wraps too.
        return (self._state()[_O_TICK] + 1) & (self._size - 1)

    @property
    def t_re(self):
        """Re T of the dominant lag, in the units of e (A >> 14)."""
        return self._are[self._state()[_O_K]] >> 14

    @property
    def t_im(self):
        """Im T of the dominant lag (0 unless omega is set)."""
        return self._aim[self._state()[_O_K]] >> 14

    @property
    def e(self):
        """Energy E of the derivative, in the units of t_re (A_E >> 14, >= 4)."""
        return self._ering[self._w()]

    @property
    def gain(self):
        """Block-floating-point gain: d = d_raw * 2**gain."""
        return self._state()[_O_GAIN]

    @property
    def tick(self):
        """Tick of the last sample (wraps at 2**30)."""
        return self._state()[_O_TICK]

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
