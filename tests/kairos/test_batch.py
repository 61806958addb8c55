"""kairos.batch.Bank is bit-identical to independent scalar kairos.Channels."""
import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from kairos import Channel
from kairos.batch import Bank, isqrt
from kairos.fixmath import isqrt as isqrt_scalar


def scalar(cfg, U):
    """Per-step c2, k, events and the final read-backs of one Channel per row."""
    n, m = U.shape
    c2 = np.zeros((n, m), np.int64)
    k = np.zeros((n, m), np.int64)
    ev = np.zeros((n, m), np.int64)
    chans = []
    for i in range(n):
        ch = Channel(**cfg)
        step = ch.step
        row_c2, row_k, row_ev = c2[i], k[i], ev[i]
        for j, u in enumerate(U[i].tolist()):
            row_ev[j] = step(u)
            row_c2[j] = ch.c2
            row_k[j] = ch.k
        chans.append(ch)
    return c2, k, ev, chans


def batch(cfg, U, splits=()):
    """Run a Bank over U, cut into calls at the given sample indices."""
    n, m = U.shape
    bank = Bank(n, **cfg)
    parts = []
    edges = [0, *sorted(set(splits)), m]
    for a, b in zip(edges[:-1], edges[1:], strict=True):
        if b - a == 1:
            ev = bank.step(U[:, a])
            assert ev.dtype == np.int8 and ev.shape == (n,)
            parts.append((bank.c2[:, None], bank.k[:, None], ev[:, None]))
        else:
            r = bank.run(U[:, a:b])
            assert r.c2.dtype == np.int32 and r.k.dtype == np.int8 and r.ev.dtype == np.int8
            assert r.c2.shape == r.k.shape == r.ev.shape == (n, b - a)
            parts.append(r)
    c2, k, ev = (np.concatenate([p[f] for p in parts], axis=1) for f in range(3))
    return c2, k, ev, bank


def assert_same(cfg, U, splits=()):
    c2, k, ev, chans = scalar(cfg, U)
    bc2, bk, bev, bank = batch(cfg, U, splits)
    for i in range(len(chans)):
        for name, want, got in (("c2", c2, bc2), ("k", k, bk), ("ev", ev, bev)):
            bad = np.flatnonzero(want[i] != got[i])
            assert not len(bad), "channel %d: %s differs first at sample %d (%d != %d)" % (
                i, name, bad[0], got[i, bad[0]], want[i, bad[0]])
    coh = bank.coh
    assert coh.shape == (len(chans), len(cfg.get("lags", (2, 4, 8, 16))))
    for i, ch in enumerate(chans):
        assert list(coh[i]) == list(ch.coh)
        assert bank.c2[i] == ch.c2 and bank.c[i] == ch.c and bank.k[i] == ch.k
        assert bank.tau[i] == ch.tau
        assert bank.gain[i] == ch.gain
        assert bank.tick == ch.tick
        assert bank.collapsed[i] == ch.collapsed
        assert bank.e[i] == ch.e
        assert bank.t_re[i] == ch.t_re and bank.t_im[i] == ch.t_im
    return c2, k, ev, chans


def signals(n, m, seed, periods=(2, 4, 5, 8, 13, 16, 24, 40)):
    """Rows of varied test input: tones near the lags (collapse), noise of
    any level, silence, slow drift, loud bursts past the clamp (up to 1e9)
    and quiet stretches (the gain falls, then climbs back)."""
    rng = np.random.default_rng(seed)
    t = np.arange(m)
    U = np.zeros((n, m), np.int64)
    for i in range(n):
        kind = i % 6
        amp = float(rng.choice([3, 40, 800, 6000, 16000]))
        period = float(rng.choice(periods))
        if kind == 0:  # tone, some noise
            x = amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 6)) + rng.normal(0, amp / 8, m)
        elif kind == 1:  # noise
            x = rng.normal(0, amp, m)
        elif kind == 2:  # tone switching with noise: collapse entered and left
            x = np.where((t // 300) % 2 == 0, amp * np.sin(2 * np.pi * t / period),
                         rng.normal(0, amp, m))
        elif kind == 3:  # loud, clipped, with huge spikes
            x = rng.normal(0, 30000, m)
            x[rng.integers(0, m, m // 50)] = rng.choice([-1e9, 1e9, 2e5, -7e4], m // 50)
        elif kind == 4:  # silence and steps, then a tone
            x = np.where(t < m // 3, 0.0, np.where(t < m // 2, 5000.0, amp * np.sin(t / 3.0)))
        else:  # random walk
            x = np.cumsum(rng.normal(0, amp / 10, m))
        x = x.astype(np.int64)
        # a quiet stretch and a loud burst after it: gain up, then down
        q = int(rng.integers(m // 4, m // 2))
        x[q : q + 400] //= 1000
        x[q + 400 : q + 410] = rng.integers(-(10**9), 10**9, 10)
        U[i] = x
    return U


CONFIGS = [
    dict(lags=(3,), s=4, s0=0),
    dict(lags=(2, 4, 8, 16), s=8, s0=2),
    dict(lags=(2, 4, 8, 16), s=6, s0=1, omega=8192, dwell=2),
    dict(lags=(1, 2, 3, 5, 8, 13, 21, 34), s=10, s0=4, omega=8192, dwell=1, hysteresis=0),
    dict(lags=(2, 4, 8, 16, 32, 64, 128, 256), s=5, s0=3, ic=16384, hysteresis=4000),
    dict(lags=(1, 7), s=9, s0=0, omega=4096, ic=12000, hysteresis=1, dwell=5),
    dict(lags=(4, 8, 12, 16), s=7, s0=2, omega=65535, ic=8000, dwell=3),
]


@pytest.mark.parametrize("cfg", CONFIGS, ids=lambda c: "K%d_s%d_s0%d_w%d" % (
    len(c["lags"]), c["s"], c["s0"], c.get("omega", 0)))
def test_bank_equals_channels(cfg):
    seed = len(cfg["lags"]) * 100 + cfg["s"] * 10 + cfg["s0"]
    n, m = 16, 4000
    # tones at a lag's period are coherent there; demodulated, the lagged
    # product must hold omega: a tone at omega / 2
    periods = [L for L in cfg["lags"] if L > 1] or [7]
    if cfg.get("omega"):
        periods = [2 * 65536 / cfg["omega"]]
    U = signals(n, m, seed, periods)
    c2, k, ev, chans = assert_same(cfg, U, splits=(1, 2, 700, 701, 1500, 3333))
    # the input really exercised the paths that matter
    assert (ev == 1).any() and (ev == -1).any(), "no collapse events"
    assert len(np.unique(k)) == len(cfg["lags"])


def test_long_lags():
    # A ring of 2048 (lag 1024), longer than some calls; s = 12, s0 = 6.
    for cfg in (dict(lags=(1, 100, 1024), s=12, s0=6),
                dict(lags=(3, 500, 1000), s=11, s0=5, omega=777, dwell=20)):
        U = signals(5, 5000, 1, periods=(3, 100))
        U[:, 3000:4500] //= 3000
        assert_same(cfg, U, splits=(1000, 1001, 2047, 2048, 4100))


def test_gain_changes_both_ways():
    cfg = dict(lags=(2, 4, 8, 16), s=8, s0=2)
    U = signals(6, 2000, 7)
    seen_up = seen_down = False
    bank = Bank(6, **cfg)
    chans = [Channel(**cfg) for _ in range(6)]
    for j in range(2000):
        g0 = bank.gain
        ev = bank.step(U[:, j])
        for i, ch in enumerate(chans):
            assert ch.step(int(U[i, j])) == ev[i]
            assert ch.gain == bank.gain[i] and ch.c2 == bank.c2[i]
        seen_up |= bool((bank.gain > g0).any())
        seen_down |= bool((bank.gain < g0).any())
    assert seen_up and seen_down


def test_many_channels_and_chunks():
    # More channels than one chunk's worth of time: exercises the wide paths
    # (many channels changing gain at once on the first loud sample).
    cfg = dict(lags=(2, 4, 8, 16), s=6, s0=2)
    rng = np.random.default_rng(3)
    n, m = 300, 300
    U = (rng.normal(0, 3000, (n, 1)) * np.sin(np.arange(m) / rng.uniform(1, 5, (n, 1)))
         + rng.normal(0, 500, (n, m))).astype(np.int64)
    U[:, 100:200] //= 100
    assert_same(cfg, U, splits=(37, 150))


def test_gain_changes_on_many_channels():
    # Spikes with quiet gaps of 300-700 samples over a low noise floor: the
    # gain climbs in every gap and drops at every spike, on many channels
    # at once and at different ring passes.
    cfg = dict(lags=(2, 4, 8, 16), s=6, s0=2)
    rng = np.random.default_rng(11)
    n, m = 20, 4000
    U = rng.normal(0, 20, (n, m)).astype(np.int64)
    for i in range(n):
        U[i, rng.integers(200, 300) :: rng.integers(300, 700)] = rng.choice([-16000, 16000])
    gains = []
    ch = Channel(**cfg)
    for u in U[0].tolist():
        ch.step(u)
        gains.append(ch.gain)
    assert np.count_nonzero(np.diff(gains)) >= 20  # the input really moves the gain
    assert_same(cfg, U, splits=(999, 2500))


def test_input_dtypes_and_clamp():
    cfg = dict(lags=(2, 5), s=6, s0=1)
    rng = np.random.default_rng(5)
    U = rng.integers(-(10**9), 10**9, (4, 500))
    want = batch(cfg, U)[:3]
    assert all((a == b).all() for a, b in zip(want, batch(cfg, np.clip(U, -16384, 16384))[:3],
                                                strict=True))
    U16 = rng.integers(-32768, 32767, (3, 400)).astype(np.int16)
    U64 = U16.astype(np.int64)
    for a, b in zip(batch(cfg, U16)[:3], batch(cfg, U64)[:3], strict=True):
        assert (a == b).all()
    Uu = rng.integers(0, 2**64 - 1, (3, 300), dtype=np.uint64)
    for a, b in zip(batch(cfg, Uu)[:3], batch(cfg, np.minimum(Uu, 16384).astype(np.int64))[:3],
                    strict=True):
        assert (a == b).all()
    assert_same(cfg, U[:2, :300])


def test_empty_run_and_step_shapes():
    bank = Bank(3)
    r = bank.run(np.zeros((3, 0), np.int64))
    assert r.c2.shape == (3, 0)
    assert bank.tick == 0 and (bank.gain == Channel().gain).all()
    assert list(bank.coh[0]) == list(Channel().coh)
    with pytest.raises(ValueError):
        bank.run(np.zeros((2, 5), np.int64))
    with pytest.raises(ValueError):
        bank.step(np.zeros(4, np.int64))
    with pytest.raises(TypeError):
        bank.run(np.zeros((3, 5)))


@pytest.mark.parametrize(
    "kw",
    [dict(s=3), dict(s0=7), dict(omega=-1), dict(ic=0), dict(hysteresis=22938), dict(dwell=0),
     dict(lags=()), dict(lags=(4, 2)), dict(lags=(1, 2000)), dict(lags=tuple(range(1, 10)))],
)
def test_validation_matches_channel(kw):
    with pytest.raises(ValueError) as want:
        Channel(**kw)
    with pytest.raises(ValueError) as got:
        Bank(2, **kw)
    assert str(got.value) == str(want.value)
    with pytest.raises(ValueError):
        Bank(0)


def test_defaults_match_channel():
    """Bank and Channel spell out the same keyword defaults (one _config checks both)."""
    import inspect

    def defaults(cls):
        ps = inspect.signature(cls).parameters.values()
        return {p.name: p.default for p in ps if p.default is not inspect.Parameter.empty}

    want = defaults(Channel)
    assert want.pop("on_event") is None
    assert defaults(Bank) == want
    bank, ch = Bank(1), Channel()
    for name in want:
        assert getattr(bank, name) == getattr(ch, name)


def test_isqrt_matches_fixmath():
    rng = np.random.default_rng(0)
    r = np.arange(1, 32768, dtype=np.int64)
    v = np.concatenate([np.arange(-3, 5000), r * r, r * r - 1, r * r + 1,
                        rng.integers(0, 2**30, 20000), [2**30 - 1]])
    got = isqrt(v)
    assert [int(x) for x in got] == [isqrt_scalar(int(x)) for x in v]


SAMPLE = st.one_of(
    st.integers(-16384, 16384),
    st.integers(-(10**9), 10**9),
    st.sampled_from([0, 1, -1, 16384, -16384, 10**9, -(10**9), 8191, -8192]),
)
CFG = st.fixed_dictionaries(
    {
        "lags": st.lists(st.integers(1, 40), min_size=1, max_size=8, unique=True).map(
            lambda v: tuple(sorted(v))),
        "s": st.integers(4, 12),
        "s0": st.integers(0, 6),
        "omega": st.sampled_from([0, 1, 4096, 8192, 30000, 65535]),
        "ic": st.integers(1000, 32767),
        "dwell": st.integers(1, 6),
    }
)


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    CFG,
    st.integers(1, 4),
    st.lists(st.tuples(SAMPLE, st.integers(1, 60)), min_size=1, max_size=16),
    st.integers(0, 2**32 - 1),
    st.lists(st.integers(1, 150), max_size=3),
)
def test_hypothesis_small(cfg, n, runs, seed, splits):
    cfg["hysteresis"] = cfg["ic"] // 3
    row = np.concatenate([np.full(c, v, np.int64) for v, c in runs])
    rng = np.random.default_rng(seed)
    U = np.stack([row] + [rng.permutation(row) + rng.integers(-300, 300, len(row))
                          for _ in range(n - 1)])
    assert_same(cfg, U, splits=[p for p in splits if p < U.shape[1]])
