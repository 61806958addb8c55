"""becomingone.slowtier.clocksync: the midpoint estimator, low-delay filter, drift, tick wrap."""
# SIM300 misreads the spec's capitalised names (s.G == approx(...)) as constants.
# ruff: noqa: SIM300
import json
import math
import random

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.slowtier.clocksync import ClockSync

WRAP = 2**30


def ping(cs, t0, node0_ms, a_ms, p_ms, b_ms):
    """One exchange with a node whose clock reads node0_ms at hub time t0 and
    runs at the hub's rate: legs a (hub->node) and b (back), processing p."""
    t1 = node0_ms + a_ms
    t2 = t1 + p_ms
    cs.add(t0, t1 % WRAP, t2 % WRAP, t0 + (a_ms + p_ms + b_ms) / 1000)


def test_symmetric_exchange_gives_the_exact_offset():
    # Node clock = hub clock - 995 s.  Ping at hub 1000.000, 4 ms each way,
    # 2 ms on the node: t1 = 5.004 s, t2 = 5.006 s, t3 = 1000.010.
    # theta = ((5.004 - 1000) + (5.006 - 1000.010)) / 2 = -995.0
    # delta = 0.010 - 0.002 = 0.008
    cs = ClockSync()
    assert not cs.synced
    cs.add(1000.0, 5004, 5006, 1000.010)
    assert cs.synced
    assert cs.offset == pytest.approx(-995.0, abs=1e-9)
    assert cs.delay == pytest.approx(0.008, abs=1e-9)
    assert cs.drift_ppm == 0.0
    # tick 5005 ms is node 5.005 s = hub 1000.005
    assert cs.to_hub(5005) == pytest.approx(1000.005, abs=1e-9)


def test_asymmetric_exchange_is_off_by_half_the_asymmetry():
    # Same node, 9 ms out and 1 ms back: t1 = 5009, t2 = 5011, t3 = 1000.012.
    # theta = ((5.009 - 1000) + (5.011 - 1000.012)) / 2 = -994.996 (true -995)
    # error 4 ms = (9 - 1) / 2 <= delta / 2 = 5 ms
    cs = ClockSync()
    cs.add(1000.0, 5009, 5011, 1000.012)
    assert cs.offset == pytest.approx(-994.996, abs=1e-9)
    assert cs.delay == pytest.approx(0.010, abs=1e-9)
    assert abs(cs.offset - -995.0) <= cs.delay / 2


@given(
    st.floats(0, 2e9),
    st.integers(0, WRAP - 1),
    st.integers(0, 500),
    st.integers(0, 50),
    st.integers(0, 500),
)
def test_offset_error_is_bounded_by_half_the_delay(t0, node0, a, p, b):
    cs = ClockSync()
    ping(cs, t0, node0, a, p, b)
    # The unwrapped axis starts at the first raw t1 (which may have wrapped).
    true = ((node0 + a) % WRAP - a) / 1000 - t0
    assert cs.delay == pytest.approx((a + b) / 1000, abs=1e-6)
    assert abs(cs.offset - true) <= cs.delay / 2 + 1e-6


def test_a_high_delay_outlier_does_not_move_the_estimate():
    cs = ClockSync()
    t, node = 1.7e9, 10_000
    for i in range(4):  # 5 ms each way, every 30 s
        ping(cs, t + 30 * i, node + 30_000 * i, 5, 1, 5)
    before = cs.offset, cs.delay, cs.drift_ppm
    # 400 ms stuck in one direction: theta alone would be 200 ms off.
    ping(cs, t + 120, node + 120_000, 400, 1, 5)
    assert cs.offset == pytest.approx(before[0], abs=1e-6)
    assert cs.delay == pytest.approx(before[1], abs=1e-9)
    assert cs.drift_ppm == pytest.approx(before[2], abs=1e-3)
    assert cs.offset == pytest.approx(node / 1000 - t, abs=1e-6)


def test_two_samples_one_outlier_keeps_the_good_one():
    cs = ClockSync()
    ping(cs, 100.0, 0, 3, 1, 3)
    ping(cs, 200.0, 100_000, 300, 1, 3)
    assert cs.offset == pytest.approx(-100.0, abs=1e-9)
    assert cs.delay == pytest.approx(0.006, abs=1e-9)


def node_clock(ppm, h0, n0):
    """Integer ms ticks (30-bit) of a node whose clock runs ppm fast."""
    return lambda h: math.floor(n0 + (h - h0) * (1 + ppm * 1e-6) * 1000) % WRAP


@pytest.mark.parametrize("seed", [1, 2, 3])
@pytest.mark.parametrize("ppm", [50.0, -30.0])
def test_drift_is_recovered_over_ten_minutes(seed, ppm):
    rng = random.Random(seed)
    h0 = 1.7e9
    tick = node_clock(ppm, h0, 123_456)
    cs = ClockSync()
    for i in range(16):  # a ping every 40 s: 600 s
        t0 = h0 + 40 * i + rng.random()
        a = 0.002 + rng.expovariate(1 / 0.003)  # 2 ms + exponential jitter
        b = 0.002 + rng.expovariate(1 / 0.003)
        cs.add(t0, tick(t0 + a), tick(t0 + a + 0.001), t0 + a + 0.001 + b)
    assert cs.drift_ppm == pytest.approx(ppm, abs=5.0)
    # A report tick a little after the last ping maps back to its hub time
    # within delay/2 plus the 1 ms tick resolution and the drift residue.
    for dt in (1.0, 5.0, 20.0):
        h = h0 + 600 + dt
        assert abs(cs.to_hub(tick(h)) - h) <= cs.delay / 2 + 0.002


def test_drift_needs_min_span():
    # Pings 1 s apart: a 1 ms tick step reads as 1000 ppm; it is ignored.
    # (The fit runs over the lower half of the window by delay: 2 of 3.)
    def three(cs):
        for i in range(3):
            ping(cs, 10.0 + i, 1001 * i, 2, 0, 2)
        return cs

    assert three(ClockSync(min_span=60.0)).drift_ppm == 0.0
    assert three(ClockSync(min_span=0.0)).drift_ppm == pytest.approx(1000.0, rel=1e-6)
    # Clamped at max_drift_ppm when the fit is allowed but absurd.
    assert three(ClockSync(min_span=0.0, max_drift_ppm=200.0)).drift_ppm == 200.0


def test_tick_wraparound_at_2_30_ms():
    # The node's tick counter wraps 30 s into the session.
    h0 = 5000.0
    n0 = WRAP - 30_000
    cs = ClockSync()
    for i in range(8):  # every 10 s, 3 ms each way
        ping(cs, h0 + 10 * i, n0 + 10_000 * i, 3, 1, 3)
    true = n0 / 1000 - h0  # on the unwrapped axis
    assert cs.offset == pytest.approx(true, abs=1e-6)
    assert cs.drift_ppm == pytest.approx(0.0, abs=1e-6)
    # Raw ticks on both sides of the wrap map to the right hub times.
    for h in (h0 + 20.0, h0 + 29.999, h0 + 30.0, h0 + 31.0, h0 + 75.5):
        raw = round(n0 + (h - h0) * 1000) % WRAP
        assert cs.to_hub(raw) == pytest.approx(h, abs=1e-6)
    assert round(n0 + 31_000) % WRAP == 1000  # really past the wrap


def test_wrap_across_a_long_gap():
    # 20 days between pings: more than one whole wrap (12.4 days).  The
    # estimate predicts where the ticks should be, so the gap is harmless.
    cs = ClockSync()
    ping(cs, 1000.0, 7, 3, 1, 3)
    gap = 20 * 86400.0
    ping(cs, 1000.0 + gap, 7 + round(gap * 1000), 3, 1, 3)
    assert cs.offset == pytest.approx(0.007 - 1000.0, abs=1e-6)
    assert cs.drift_ppm == pytest.approx(0.0, abs=1e-6)
    h = 1000.0 + gap + 2.5
    assert cs.to_hub((7 + round((h - 1000.0) * 1000)) % WRAP) == pytest.approx(h, abs=1e-6)


def test_to_hub_uses_t_rx_to_unwrap():
    cs = ClockSync()
    ping(cs, 0.0, 0, 1, 0, 1)
    # 10 days later without a new ping: the tick alone is ambiguous against
    # t_ref (more than half a wrap away), the arrival time resolves it.
    h = 10 * 86400.0
    raw = round(h * 1000) % WRAP
    assert cs.to_hub(raw, t_rx=h + 0.05) == pytest.approx(h, abs=1e-6)
    assert cs.to_hub(raw) != pytest.approx(h, abs=1.0)


def test_not_synced_falls_back_to_arrival_time():
    cs = ClockSync()
    assert cs.to_hub(1234, t_rx=55.5) == 55.5
    with pytest.raises(ValueError, match="t_rx"):
        cs.to_hub(1234)


def test_dict_round_trip():
    rng = random.Random(7)
    tick = node_clock(20.0, 1e9, 999)
    cs = ClockSync(window=8, min_span=30.0)
    for i in range(12):
        t0 = 1e9 + 30 * i
        a, b = 0.003 + rng.random() * 0.01, 0.003 + rng.random() * 0.01
        cs.add(t0, tick(t0 + a), tick(t0 + a), t0 + a + b)
    saved = json.loads(json.dumps(cs.to_dict()))
    assert set(saved) == {"drift_ppm", "samples"}  # the state, not the settings
    back = ClockSync.from_dict(saved, window=8, min_span=30.0)
    assert (back.offset, back.delay, back.drift_ppm, back.t_ref) == (
        cs.offset,
        cs.delay,
        cs.drift_ppm,
        cs.t_ref,
    )
    assert back.to_hub(tick(1e9 + 400)) == cs.to_hub(tick(1e9 + 400))
    # and both go on identically
    for c in (cs, back):
        c.add(1e9 + 500, tick(1e9 + 500.004), tick(1e9 + 500.005), 1e9 + 500.009)
    assert back.offset == cs.offset and back.drift_ppm == cs.drift_ppm
    assert ClockSync.from_dict(ClockSync().to_dict()).synced is False


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"window": 0}, "window"),
        ({"window": 2.5}, "window"),
        ({"tick_mask": 1000}, "tick_mask"),
        ({"tick_mask": 0}, "tick_mask"),
        ({"min_span": -1.0}, "min_span"),
        ({"max_drift_ppm": math.inf}, "max_drift_ppm"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        ClockSync(**kwargs)


def test_bad_samples_name_themselves():
    cs = ClockSync()
    with pytest.raises(ValueError, match="t3"):
        cs.add(10.0, 0, 1, 9.0)
    with pytest.raises(ValueError, match="t1"):
        cs.add(10.0, WRAP, 1, 11.0)
    with pytest.raises(ValueError, match="t2"):
        cs.add(10.0, 0, -1, 11.0)
    with pytest.raises(ValueError, match="t0"):
        cs.add(math.nan, 0, 1, 11.0)
    with pytest.raises(ValueError, match="tick"):
        cs.to_hub(1.5, t_rx=1.0)
    assert not cs.synced
