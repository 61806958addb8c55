"""becomingone.slowtier.master: Master averages and Master/Emissary sync of one channel."""
# SIM300 misreads the spec's capitalised names (s.G == approx(...)) as constants.
# ruff: noqa: SIM300
import cmath
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.slowtier.master import Master


def test_before_any_update():
    m = Master()
    assert m.z == 0 and m.M == 0 and m.t_sync == 0
    assert m.c_m == (0.0, 0.0, 0.0)
    assert m.delta == 0.0 and m.aligned is False


def test_steady_phasor_keeps_c_and_is_aligned():
    # c = 0.8, T = 3 + 4i: z = 0.8 * (0.6 + 0.8i) = 0.48 + 0.64i
    m = Master()
    t = 0.0
    for dt in (0.0, 1.0, 2.5, 0.5, 10.0, 30.0):
        t += dt
        m.update(0.8, 3, 4, t)
    assert m.z == pytest.approx(0.48 + 0.64j, abs=1e-15)
    assert m.M == pytest.approx(0.48 + 0.64j, abs=1e-15)
    assert m.c_m == pytest.approx((0.8, 0.8, 0.8), abs=1e-15)
    assert m.delta == pytest.approx(0.0, abs=1e-12)
    assert m.aligned
    assert m.t_sync == pytest.approx(0.48 + 0.64j, abs=1e-15)


def test_alternating_phasor_dissipates():
    # z = +1, -1, +1, ... every 2 s for 22 hours (the start has decayed by
    # exp(-22) even at tau = 3600).  Steady state of x <- (1 - a) x + a z
    # with a = 1 - exp(-2/tau): x = +-a / (2 - a).
    m = Master()
    for n in range(40_000):
        m.update(1.0, 1 if n % 2 == 0 else -1, 0, 2.0 * n)
    for tau, c in zip(m.taus, m.c_m):
        a = 1 - math.exp(-2 / tau)
        assert c == pytest.approx(a / (2 - a), rel=1e-6)  # 0.0167, 0.00167, 0.00028
        assert c < 0.02
    # Each z points away from the average before it (+-a/(2-a), the previous
    # sign): |delta| = pi, dissipated.  (The average *after* the update has
    # z's own sign, which is why delta uses M_prev; see becomingone.slowtier.master.)
    a = 1 - math.exp(-2 / 60)
    assert m.M_prev == pytest.approx(a / (2 - a)) and m.z == -1
    assert m.M.real < 0
    assert m.delta == pytest.approx(math.pi)
    assert not m.aligned
    m.update(1.0, 1, 0, 80_000.0)
    assert m.delta == pytest.approx(math.pi) and not m.aligned


def test_ema_step_response_with_irregular_spacing():
    # z = 0 at t = 0, then z = 1 at uneven times up to t = 60 s:
    # the (1 - alpha) factors multiply to exp(-60/tau), whatever the spacing.
    m = Master()
    m.update(0.0, 1, 0, 0.0)
    for t in (7.0, 19.0, 20.0, 20.001, 33.3, 47.5, 60.0):
        m.update(1.0, 1, 0, t)
    assert m.c_m[0] == pytest.approx(1 - math.exp(-1), abs=1e-12)  # 0.63212
    assert m.c_m[1] == pytest.approx(1 - math.exp(-0.1), abs=1e-12)  # 0.09516
    assert m.c_m[2] == pytest.approx(1 - math.exp(-1 / 60), abs=1e-12)


def test_delta_and_aligned_hand_cases():
    # Updates at the same instant (dt = 0) leave M alone and move only z.
    m = Master()
    m.update(1.0, 1, 0, 0.0)  # M = 1
    assert not m.aligned  # nothing to compare the first report with
    m.update(0.5, math.cos(0.2), math.sin(0.2), 0.0)  # z = 0.5 e^{0.2i}
    assert m.M == 1
    assert m.delta == pytest.approx(-0.2)  # arg(1 * 0.5 e^{-0.2i})
    assert m.aligned
    # t_sync = (M + z) / 2
    assert m.t_sync == pytest.approx((1 + 0.5 * cmath.exp(0.2j)) / 2)
    m.update(1.0, math.cos(-0.3), math.sin(-0.3), 0.0)
    assert m.delta == pytest.approx(0.3) and m.aligned  # the boundary is inclusive
    m.update(1.0, math.cos(0.4), math.sin(0.4), 0.0)
    assert m.delta == pytest.approx(-0.4) and not m.aligned
    m.update(1.0, -7, 0, 0.0)  # exactly opposite: delta = +pi, never -pi
    assert m.delta == math.pi and not m.aligned
    m.update(0.9, 0, 0, 0.0)  # T = 0: no phase, z = 0
    assert m.z == 0 and m.delta == 0.0 and not m.aligned


def test_weights_of_t_sync():
    # (3 M + 1 z) / 4 with M = 1, z = i
    m = Master(w_m=3.0, w_e=1.0)
    m.update(1.0, 1, 0, 0.0)
    m.update(1.0, 0, 2, 0.0)
    assert m.t_sync == pytest.approx(0.75 + 0.25j)
    assert m.delta == pytest.approx(-math.pi / 2)


def test_custom_taus_m_is_the_first():
    m = Master(taus=(10.0,))
    m.update(0.0, 1, 0, 0.0)
    m.update(1.0, 0, 1, 10.0)  # one step of exactly tau
    assert m.M == pytest.approx((1 - math.exp(-1)) * 1j)
    assert len(m.c_m) == 1


def test_dict_round_trip_then_identical_updates():
    m = Master(taus=(30.0, 300.0), align_rad=0.5, w_m=2.0, w_e=1.0)
    for n in range(50):
        m.update(0.1 + 0.01 * n, math.cos(n), math.sin(n), 3.0 * n)
    saved = json.loads(json.dumps(m.to_dict()))
    assert not set(saved) & {"taus", "align_rad", "w_m", "w_e"}  # the state only
    back = Master.from_dict(saved, taus=(30.0, 300.0), align_rad=0.5, w_m=2.0, w_e=1.0)
    for name in ("z", "M", "M_prev", "c_m", "delta", "aligned", "t_sync", "taus", "n"):
        assert getattr(back, name) == getattr(m, name), name
    for x in (m, back):
        x.update(0.7, 1, 1, 200.0)
    assert back.M == m.M and back.c_m == m.c_m
    assert Master.from_dict(Master().to_dict()).aligned is False
    assert Master.from_dict(saved, taus=(30.0, 300.0), align_rad=0.1).align_rad == 0.1
    with pytest.raises(ValueError, match="saved 2 averages, the taus are 3"):
        Master.from_dict(saved)  # three default taus: the saved averages do not fit


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"taus": ()}, "taus"),
        ({"taus": (60.0, 0.0)}, "taus"),
        ({"taus": (600.0, 60.0)}, "taus"),
        ({"taus": (60.0, 60.0)}, "taus"),
        ({"taus": (math.inf,)}, "taus"),
        ({"align_rad": -0.1}, "align_rad"),
        ({"align_rad": 4.0}, "align_rad"),
        ({"w_m": -1.0}, "w_m"),
        ({"w_e": math.nan}, "w_e"),
        ({"w_m": 0.0, "w_e": 0.0}, "w_m"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Master(**kwargs)


def test_bad_updates_name_themselves():
    m = Master()
    with pytest.raises(ValueError, match="c"):
        m.update(32767, 1, 0, 0.0)  # a raw Q15 value, not c in [0, 1]
    with pytest.raises(ValueError, match="t_im"):
        m.update(0.5, 1, math.nan, 0.0)
    m.update(0.5, 1, 0, 10.0)
    with pytest.raises(ValueError, match="t:"):
        m.update(0.5, 1, 0, 9.0)
    assert m.n == 1


SAMPLE = st.tuples(
    st.floats(0, 1),
    st.floats(-1e9, 1e9),
    st.floats(-1e9, 1e9),
    st.floats(0, 1e5),
)


@given(st.lists(SAMPLE, min_size=1, max_size=40))
def test_outputs_stay_in_bounds(samples):
    m = Master()
    t = 0.0
    for c, re, im, dt in samples:
        t += dt
        m.update(c, re, im, t)
        assert all(0.0 <= x <= 1.0 for x in m.c_m)
        assert abs(m.z) <= 1 + 1e-12 and abs(m.M) <= 1 + 1e-12
        assert abs(m.t_sync) <= 1 + 1e-12
        assert -math.pi < m.delta <= math.pi
        assert m.aligned == (m.z != 0 and m.M_prev != 0 and abs(m.delta) <= m.align_rad)
