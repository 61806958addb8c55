"""The per-sample loop of kairos.Channel (docs/kairos.md §1.1, steps 1-9).

loop(ch) is a generator and Channel.step is its send(): the state lives in
the generator's locals (the fastest variables MicroPython has; resuming a
generator allocates nothing, unlike a closure over many cells) plus the
channel's preallocated arrays.  step(FLUSH), which the read-backs send,
stores the locals they need into the arrays and runs no sample; FLUSH
compares above Q14, so the input clamp tests for it at no extra cost.

Without demodulation the K lag accumulators are the locals a0..a7 and the
lag work is unrolled (no loop, no array traffic per lag); with omega they
live in the arrays are/aim and a loop walks the lags.  Ring indices may be
negative: w - L reads the ring from its end, which is the wrap.  Costs are
measured as WebAssembly fuel on real MicroPython (tests/bench/bench_kernel.py).

The gain rises at the start of a ring pass (w = 0) when no sample of the
last `nq` passes (>= max(2**s, 64) samples, quiet_passes) had |d| >= 2**11
and the oldest energy in the ring is below 2**13 (A_E < 2**27): with every
d*d < 2**22 since, A_E cannot have grown past that (above 2**25 + 2**s it
only decays), so the doubled ring and quadrupled accumulators stay in
range.  It drops the moment |d| would reach 2**13, by as many bits as
needed.  kairos.batch.Bank mirrors all of this bit for bit.
"""
from .fixmath import sin_table

try:
    from micropython import const
except ImportError:

    def const(x):
        return x


Q14 = const(16384)
D_MAX = const(8192)  # |d| < 2**13 after the gain, so |d * d_lag| < 2**26
D_QUIET = const(2048)  # a sample is quiet when |d| < 2**11
E_RISE = const(1 << 13)  # the gain may rise when the oldest e in the ring is below
QUIET_MIN = const(64)  # the quiet window: whole ring passes, >= 2**s and this many
E_FLOOR = const(4)  # smallest e kept: no division by zero, silence -> c = 0
G_MAX = const(11)  # a one-LSB derivative is lifted to 2**11
_G3_MAX = const(14)  # G_MAX + 3: d = (d_raw << (g + 3)) >> 3, d_raw << 14 < 2**30
_C2_MAX = const(32767)
_TICK_MASK = const(0x3FFFFFFF)

# Channel._out slots written here.
O_C2 = const(0)
O_K = const(1)
O_TICK = const(2)
O_GAIN = const(4)


class _Flush:
    """The read-backs' request: above Q14 for the clamp, never a sample."""

    def __gt__(self, other):
        return True

    def __lt__(self, other):
        return False


FLUSH = _Flush()


def rescale(bits, ae, dring, ering, are, aim, nk):
    """Shift everything in units of the gain by `bits` bits of d (+1 up, or
    -1, -2, ... down): the rings, A_E (returned) and the first nk array
    accumulators (K with omega; with omega = 0 the loop shifts its locals).

    Rare (a gain change) and O(ring).  Down by n bits equals n single-bit
    steps: floors compose, and max(max(x >> 2, 4) >> 2, 4) == max(x >> 4, 4).
    """
    if bits > 0:
        for i in range(len(dring)):
            dring[i] <<= 1
            ering[i] <<= 2
        for k in range(nk):
            are[k] <<= 2
            aim[k] <<= 2
        return ae << 2
    n = -bits
    n2 = n + n
    for i in range(len(dring)):
        dring[i] >>= n
        v = ering[i] >> n2
        ering[i] = v if v > E_FLOOR else E_FLOOR
    for k in range(nk):
        are[k] >>= n2
        aim[k] >>= n2
    return ae >> n2


def quiet_passes(size, s):
    """Quiet ring passes in a row before the gain may rise: the window is
    the ring, and at least 2**s and QUIET_MIN samples (all powers of two)."""
    win = 1 << s
    if win < QUIET_MIN:
        win = QUIET_MIN
    return win // size if win > size else 1


def loop(ch):
    """Channel ch's sample loop; see the module docstring."""
    lags, dring, ering = ch.lags, ch._dring, ch._ering
    are, aim, out = ch._are, ch._aim, ch._out
    L0, L1, L2, L3, L4, L5, L6, L7 = lags + (0,) * (8 - len(lags))  # 0: no lag
    s, s0, omega = ch.s, ch.s0, ch.omega
    ic, leave, dwell = ch.ic, ch.ic - ch.hysteresis, ch.dwell
    S = s - 3
    SD = S + 4  # demodulated path: (d * d_lag >> 10) * cos_Q14 >> SD == p * cos
    size = ch._size
    mask = size - 1
    nq = quiet_passes(size, s)
    nk = len(lags) if omega else 0
    sin = sin_table() if omega else None
    for i in range(size):
        ering[i] = E_FLOOR
    a0 = a1 = a2 = a3 = a4 = a5 = a6 = a7 = 0  # the lag accumulators (omega = 0)
    g3 = _G3_MAX  # gain + 3
    qn = 0  # ring passes in a row without a loud sample (capped at nq)
    hi = D_QUIET  # |d| at which a sample is tested: loud, or a gain drop
    lo = -D_QUIET
    ae = 0  # energy accumulator A_E
    w = 0  # ring write index
    base = 0  # tick of the sample written at w = 1 (the tick is base + w - 1)
    ph = 0  # demodulation phase, 16-bit binary angle
    run = 0  # samples at or above I_c in a row
    coll = False
    thr = ic  # the collapse threshold on c^2: I_c, or I_c - h when collapsed
    ev = kb = c2 = 0
    u = yield 0
    while u > Q14 or u < -Q14:  # a read-back before the first sample stores nothing
        if u is FLUSH:
            u = yield 0
        elif u > Q14:
            u = Q14
        else:
            u = -Q14
    acc = u << s0  # the smoother starts at the first sample: d[0] = 0
    while True:
        w = (w + 1) & mask
        if not w:  # a new ring pass: the tick's base, and maybe a gain rise
            base = (base + size) & _TICK_MASK
            hi = D_QUIET  # this pass is quiet until a sample has |d| >= 2**11
            lo = -D_QUIET
            if qn < nq:
                qn += 1
            elif g3 < _G3_MAX and ering[0] < E_RISE:
                qn = 0
                g3 += 1
                ae = rescale(1, ae, dring, ering, are, aim, nk)
                a0 <<= 2
                a1 <<= 2
                a2 <<= 2
                a3 <<= 2
                a4 <<= 2
                a5 <<= 2
                a6 <<= 2
                a7 <<= 2
                out[O_GAIN] = g3 - 3
        # Pre-smoothing and derivative: acc = v * 2**s0, so
        # dr = v[n] - v[n-1] keeps s0 extra bits and |dr| <= 2**15.
        dr = u - (acc >> s0)
        acc += dr
        d = (dr << g3) >> 3
        if d >= hi or d <= lo:  # the first loud sample of the pass, or a drop
            qn = 0  # the pass is not quiet: no more tests for it until the next
            hi = D_MAX
            lo = -D_MAX
            if d >= D_MAX or d <= -D_MAX:  # gain down (rare) until |d| < 2**13
                g0 = g3
                while d >= D_MAX or d <= -D_MAX:
                    g3 -= 1
                    d = (dr << g3) >> 3
                ae = rescale(g3 - g0, ae, dring, ering, are, aim, nk)
                n2 = 2 * (g0 - g3)
                a0 >>= n2
                a1 >>= n2
                a2 >>= n2
                a3 >>= n2
                a4 >>= n2
                a5 >>= n2
                a6 >>= n2
                a7 >>= n2
                out[O_GAIN] = g3 - 3
        dring[w] = d
        ae += ((d * d) >> S) - (ae >> s)
        e = ae >> 14
        if e < E_FLOOR:
            e = E_FLOOR
        ering[w] = e
        # Per lag: y = |t|^2 // e_lag = c^2 * e.  e is common to all lags,
        # so the largest y is the dominant lag; only it becomes c^2.  A
        # longer lag must beat the best so far by 1/64 of c^2 (bar): ties
        # within the fixed-point noise go to the shortest lag.
        if not omega:
            jb = w - L0
            a0 += ((d * dring[jb]) >> S) - (a0 >> s)
            tb = a0 >> 14  # |t| < 2**15, t*t < 2**30
            q = tb * tb // ering[jb]
            kb = 0
            while L1:  # one pass: each further lag breaks out when absent
                bar = q + (q >> 6)
                j = w - L1
                a1 += ((d * dring[j]) >> S) - (a1 >> s)
                t = a1 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 1
                    tb = t
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                if not L2:
                    break
                j = w - L2
                a2 += ((d * dring[j]) >> S) - (a2 >> s)
                t = a2 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 2
                    tb = t
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                if not L3:
                    break
                j = w - L3
                a3 += ((d * dring[j]) >> S) - (a3 >> s)
                t = a3 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 3
                    tb = t
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                if not L4:
                    break
                j = w - L4
                a4 += ((d * dring[j]) >> S) - (a4 >> s)
                t = a4 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 4
                    tb = t
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                if not L5:
                    break
                j = w - L5
                a5 += ((d * dring[j]) >> S) - (a5 >> s)
                t = a5 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 5
                    tb = t
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                if not L6:
                    break
                j = w - L6
                a6 += ((d * dring[j]) >> S) - (a6 >> s)
                t = a6 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 6
                    tb = t
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                if not L7:
                    break
                j = w - L7
                a7 += ((d * dring[j]) >> S) - (a7 >> s)
                t = a7 >> 14
                y = t * t // ering[j]
                if y > bar:
                    kb = 7
                    tb = t
                    jb = j
                    q = y
                break
            # Collapse: enter after `dwell` samples at c*^2 >= I_c, leave below
            # thr = I_c - h.  c^2 itself is not needed: as channel._c2q15,
            # c2 = X // e with X = (q << 15) + r and 0 <= r < 2**15, so
            # c2 >= thr <=> X >= thr * e, which q decides unless q == m.
            m = (thr * e) >> 15
            if q < m or q == m and (
                ((tb * tb - q * ering[jb]) << 15) < (thr * e - (m << 15)) * ering[jb]
            ):
                if coll:
                    coll = False
                    thr = ic
                    ev = ch._event((base + w - 1) & _TICK_MASK, -1)
                else:
                    run = 0
            elif not coll:
                run += 1
                if run >= dwell:
                    run = 0
                    coll = True
                    thr = leave
                    ev = ch._event((base + w - 1) & _TICK_MASK, 1)
        else:
            i = ph >> 6
            co = sin[i + 256]
            si = sin[i]
            ph = (ph + omega) & 0xFFFF
            bar = -1
            k = 0
            for L in lags:  # a tuple walk is cheaper than range + index
                j = w - L
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
                y = a // ering[j]  # c^2 * e / 4
                if y > bar:
                    kb = k
                    tb = a
                    jb = j
                    q = y
                    bar = y + (y >> 6)
                k += 1
            # as channel._c2q15(t2, el2, e, 17)
            if q >= e >> 2:
                c2 = _C2_MAX
            else:
                el2 = ering[jb]
                c2 = ((q << 17) + ((((tb - q * el2) << 15) // el2) << 2)) // e
            if coll:  # collapse as above, on c2 itself
                if c2 < leave:
                    coll = False
                    ev = ch._event((base + w - 1) & _TICK_MASK, -1)
            elif c2 >= ic:
                run += 1
                if run >= dwell:
                    run = 0
                    coll = True
                    ev = ch._event((base + w - 1) & _TICK_MASK, 1)
            else:
                run = 0
        u = yield ev
        ev = 0
        while u > Q14 or u < -Q14:  # rare: clamp, or a read-back's FLUSH
            if u is FLUSH:
                if not omega:  # c^2 as channel._c2q15(tb * tb, el, e, 15)
                    if q >= e:
                        c2 = _C2_MAX  # c >= 1 (Cauchy-Schwarz, up to rounding)
                    else:
                        el = ering[jb]
                        c2 = ((q << 15) + (((tb * tb - q * el) << 15) // el)) // e
                out[O_C2] = c2
                out[O_K] = kb
                out[O_TICK] = (base + w - 1) & _TICK_MASK
                if not omega:  # (with omega the arrays are the state already)
                    are[0] = a0
                    are[1] = a1
                    are[2] = a2
                    are[3] = a3
                    are[4] = a4
                    are[5] = a5
                    are[6] = a6
                    are[7] = a7
                u = yield 0
                while u is FLUSH:  # more read-backs, no sample between: stored already
                    u = yield 0
            elif u > Q14:
                u = Q14
            else:
                u = -Q14
