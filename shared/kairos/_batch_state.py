"""kairos.batch, part 2: per-channel state changes of the Bank.

The gain rescaling (the vectorised channel._rescale, applied only to the
channels whose gain changes) and the collapse state machine over a block of
c^2 (jumping from event to event).  Each function takes the Bank as its
first argument; batch.Bank binds them as its methods.
"""
import numpy as np

from .channel import _D_MAX, _E_FLOOR, _E_RISE, _G_MAX

_I64 = np.int64
_RING_SHIFT = np.array([1, 2], dtype=np.int64)[:, None, None]  # d ring, e ring


def gain_down(bank, sel, d, ab_prev):
    """Drop the gain of channels sel until |d| < 2**13, rescaling as
    _step.rescale does for the net change; returns the rescaled copy of
    ab_prev (AB[t - 1] stays as it was, for dominant()).

    The energy ring is floored at 4 again afterwards, once for the net
    shift: max(max(x >> 2, 4) >> 2, 4) == max(x >> 4, 4).
    """
    ds = d[sel]
    # Bits to drop until -8192 < d >> ns < 8192: bit_length(|d|) - 13, and
    # one more where that leaves exactly -8192 (d < 0 needs |d| <= 8191 << ns).
    ns = np.frexp(ds)[1] - 13
    ns += (ds >> ns) == -_D_MAX
    ns2 = ns << 1
    if 4 * len(sel) > bank.n:  # many (the first loud samples): shift in place
        sh = np.zeros((2, 1, bank.n), _I64)
        sh[0, 0, sel] = ns
        sh[1, 0, sel] = ns2
        np.right_shift(bank._ring, sh, out=bank._ring)  # d itself is ring row w
        np.maximum(bank._ring[1], _E_FLOOR, out=bank._ring[1])
        ab_prev = ab_prev >> sh[1]
    else:
        r = bank._ring[:, :, sel] >> ns * _RING_SHIFT  # d itself is ring row w
        np.maximum(r[1], _E_FLOOR, out=r[1])
        bank._ring[:, :, sel] = r
        ab_prev = ab_prev.copy()
        ab_prev[:, :, sel] >>= ns2  # the lags and A_E
    bank._g3[sel] -= ns
    bank._dropped[sel] = True  # the scalar's quiet count restarts
    return ab_prev


def pass_end(bank, ab_prev):
    """At a new ring pass (w = 0, before its first sample): count the quiet
    passes and raise the gain by one bit where _step.loop does; returns
    ab_prev, rescaled (a copy) if any gain rose.

    The ring holds exactly the d of the pass just ended, so it was quiet
    when every |d| < 2**11 and the gain did not drop during it (a drop
    restarts the scalar's count and rescales the ring).
    """
    qn, nq = bank._qn, bank._nq
    ring = bank._ring
    quiet = np.abs(ring[0]).max(axis=0) < 2048
    quiet &= ~bank._dropped
    bank._dropped[:] = False
    qn *= quiet
    rise = qn >= nq
    qn += ~rise  # below nq: one more quiet pass (capped at nq)
    rise &= bank._g3 < _G_MAX + 3
    rise &= ring[1, 0] < _E_RISE  # the oldest e: A_E stayed below 2**27
    sel = np.flatnonzero(rise)
    if not len(sel):
        return ab_prev
    qn[sel] = 0
    r = ring[:, :, sel]  # d ring << 1, e ring << 2
    r <<= _RING_SHIFT
    ring[:, :, sel] = r
    ab_prev = ab_prev.copy()
    ab_prev[:, :, sel] <<= 2  # the lags and A_E
    bank._g3[sel] += 1
    return ab_prev


def collapse(bank, C2):
    """Events from the collapse state machine over C2 (n, m), in blocks of
    columns (the state carries over)."""
    n, m = C2.shape
    EV = np.zeros((n, m), np.int8)
    Tc = bank._Tc
    if bank._cbuf is None:
        bank._cbuf = (np.empty((n, Tc), bool), np.empty((n, Tc), bool))
    for a in range(0, m, Tc):
        b = min(m, a + Tc)
        collapse_block(bank, C2[:, a:b], EV[:, a:b])
    return EV


def collapse_block(bank, C2, EV):
    """One block, jumping from event to event.

    Not collapsed, `run` counts samples at c2 >= ic in a row and collapse
    is entered where it reaches dwell; collapsed, it is left at the first
    c2 < ic - h.  That sample is below ic too, so after leaving, run is
    the plain run length again.  Only channels with a sample that could
    change their state are looked at.
    """
    n, m = C2.shape
    run, coll, dw = bank._run, bank._coll, bank.dwell
    ge = np.greater_equal(C2, bank.ic, out=bank._cbuf[0][:, :m])
    lt = np.less(C2, bank.ic - bank.hysteresis, out=bank._cbuf[1][:, :m])
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
