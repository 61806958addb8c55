"""Every property docs/kairos.md §1.3 lists, on CPython (tests/kairos/test_micropython.py
runs the same vectors on MicroPython and checks the outputs are identical)."""
import math

import numpy as np
import pytest
from support.kernel import assert_state_in_bounds
from support.signals import noise, run_channel, sine

from kairos import Channel, Normalizer


def settle(s):
    return 8 * 2**s


@pytest.mark.parametrize(
    "lags,k",
    [
        ((4, 6, 9, 13), 0),
        ((3, 5, 8, 13), 2),  # period 8: L=3,5,13 see |cos| = 0.71, L=8 sees 1
        ((5, 7, 11, 16), 3),
        ((2, 3, 32), 2),
    ],
)
def test_period_equal_to_lag_gives_c_near_1_and_that_lag(lags, k):
    # With power-of-two lags a period-L_k sine also inverts exactly at
    # L_(k-1) = P/2 (c = 1 there too, and ties go to the shortest lag), so
    # these lag sets avoid half-period lags.  See docs/kairos.md.
    ch = Channel(lags=lags, s=8, s0=1)
    c2, ks, _ = run_channel(ch, sine(settle(8) + 500, lags[k], 0.5))
    assert ch.coh[k] >= 0.95 * 32768
    assert (ks[settle(8) :] == k).all()


@pytest.mark.parametrize("s", [6, 8, 10])
def test_white_noise_is_incoherent_beyond_lag_1(s):
    lags = (1, 2, 4, 8, 16)
    ch = Channel(lags=lags, s=s, s0=0)
    coh = []
    for u in noise(settle(s) + 4000, 0.25, seed=s):
        ch.step(u)
        coh.append(list(ch.coh))
    coh = np.array(coh[settle(s) :]) / 32768
    mean = coh.mean(axis=0)
    assert abs(mean[0] - 0.5) < 0.1  # differenced white noise: -0.5 at lag 1
    assert (mean[1:] <= 0.1).all(), mean


@pytest.mark.parametrize("period", [10, 24, 40, 64])
def test_coherence_is_abs_cos(period):
    lags = (2, 4, 8, 16)
    ch = Channel(lags=lags, s=8, s0=2)
    run_channel(ch, sine(settle(8) + 700, period, 0.4))
    for k, L in enumerate(lags):
        assert abs(ch.coh[k] / 32768 - abs(math.cos(2 * math.pi * L / period))) <= 0.03


@pytest.mark.parametrize("value", [0, 5000, -16384, 16384])
def test_constant_input_gives_zero(value):
    ch = Channel()
    ev = [ch.step(value) for _ in range(3000)]
    assert ch.c == 0 and ch.c2 == 0 and list(ch.coh) == [0, 0, 0, 0]
    assert ch.t_re == 0 and not any(ev)


@pytest.mark.parametrize("s", [4, 6, 8, 10])
def test_integrator_time_constant_is_2_to_the_s(s):
    # A ramp has a constant derivative, so E and every T see a step input;
    # both must reach 1 - 1/e of their final value after 2**s samples.
    lags = (1, 2)
    ch = Channel(lags=lags, s=s, s0=0)
    n = 6 * 2**s
    slope = 2  # Q14 per sample; the ramp stays inside the rails
    assert slope * (n + 10) < 32768
    es, ts = [], []
    for i in range(n):
        ch.step(-16000 + slope * i)
        es.append(ch.e)
        ts.append(ch._are[1] >> 14)  # ch.e just stored the loop's state
    for series, start in ((np.array(es, float), 1), (np.array(ts, float), 1 + lags[1])):
        level = series[-1] * (1 - math.exp(-1))
        i = int(np.argmax(series >= level))  # first sample past 1 - 1/e
        crossed = i - 1 + (level - series[i - 1]) / (series[i] - series[i - 1])
        # after m inputs the EMA is at 1 - (1 - 2**-s)**m: it crosses 1 - 1/e at
        # m = -1/ln(1 - 2**-s) = 2**s - 0.5 (15.5 for s = 4)
        m = crossed - start + 1
        assert abs((m + 0.5) / 2**s - 1) <= 0.05, (m, 2**s)


@pytest.mark.parametrize("s,dwell", [(6, 4), (8, 4), (8, 10)])
def test_collapse_enters_on_a_sine_and_leaves_when_it_stops(s, dwell):
    # "Stops" means the sensor is back to its noise floor (a few LSB).  A
    # signal frozen at an exact constant keeps its last c: every average in
    # the ratio then decays at the same rate (the float definition too).
    floor = noise(30000, 0.0005, seed=s)
    quiet = floor[:600]
    on = [a + b for a, b in zip(sine(4000, 16, 0.5), floor[600:4600])]
    ch = Channel(lags=(2, 3, 16), s=s, s0=1, dwell=dwell)
    _, _, ev = run_channel(ch, quiet + on + floor[4600:12600])
    enters = np.flatnonzero(ev == 1)
    leaves = np.flatnonzero(ev == -1)
    assert len(enters) == 1 and len(leaves) == 1
    assert enters[0] - len(quiet) <= dwell + 3 * 2**s
    assert leaves[0] > len(quiet) + len(on)
    assert list(ch.events()) == [(enters[0], True), (leaves[0], False)]
    assert list(ch.events()) == []  # drained


def test_collapse_does_not_chatter_at_threshold():
    # A sine whose coherence hovers right at I_c: a mix of two periods set so
    # c*^2 sits near 0.70 with noise on top.
    # A sine in noise set so that c*^2 wanders around I_c = 0.70.
    u = sine(30000, 16, 0.3, snr_db=17.5, seed=3)
    ch = Channel(lags=(3, 16), s=7, s0=0)
    c2, _, ev = run_channel(ch, u)
    settled = c2[8 * 128 :]
    assert (np.abs(settled - ch.ic) < 3000).mean() > 0.5, "signal must hover at I_c"
    raw = np.count_nonzero(np.diff((settled >= ch.ic).astype(int)))
    at = np.flatnonzero(ev)
    assert raw > 50 and len(at) <= raw // 4
    # every transition is earned: entries after `dwell` samples >= I_c, exits
    # only below I_c - h, and never two transitions within the dwell
    for i in at:
        if ev[i] == 1:
            assert (c2[i - ch.dwell + 1 : i + 1] >= ch.ic).all()
        else:
            assert c2[i] < ch.ic - ch.hysteresis
    assert (np.diff(at) >= ch.dwell).all()


def test_collapse_callback_and_return_value():
    seen = []

    def on_event(tick, entered):
        # read-backs inside the callback see the state after this sample
        seen.append((tick, entered, ch.tick, ch.c2, ch.collapsed))

    ch = Channel(lags=(2, 3, 16), on_event=on_event)
    c2, _, ev = run_channel(ch, [0] * 100 + sine(3000, 16, 0.5))
    assert seen and seen[0][1] is True and ev[seen[0][0]] == 1
    for tick, entered, now, c2_then, collapsed in seen:
        assert now == tick and c2_then == c2[tick] and collapsed is entered
    assert ch.collapsed and ch.tick == 3099


def test_tau_t_and_phase_sign():
    ch = Channel(lags=(3, 8), s=8)
    run_channel(ch, sine(3000, 8, 0.5))
    assert ch.tau == 8 and ch.t_re > 0  # repeats after 8 samples
    ch = Channel(lags=(4, 6), s=8)  # 4 inverts (c = 1), 6 is 3/4 period (c = 0)
    run_channel(ch, sine(3000, 8, 0.5))
    assert ch.tau == 4 and ch.t_re < 0  # inverts after half a period


@pytest.mark.parametrize(
    "u",
    [
        [16384, -16384] * 2000,
        [2**31, -(2**31)] * 2000,
        [10**12] * 50 + [-(10**12)] * 50 + [0] * 100,
        ([0] * 37 + [16384] * 3) * 100,
    ],
)
def test_saturating_inputs_stay_in_bounds(u):
    ch = Channel(lags=(1, 2, 4, 8, 16, 32, 64, 128), s=10, s0=0)
    for x in u:
        ch.step(x)
        assert 0 <= ch.c <= 32767
    assert_state_in_bounds(ch)


def test_gain_follows_the_signal_level():
    ch = Channel(lags=(2, 4, 8, 16), s=6, s0=0)
    gains = []
    for amp in (0.9, 0.001, 0.9):
        run_channel(ch, sine(3000, 24, amp))
        gains.append(ch.gain)
    assert gains[0] < gains[1] and gains[2] == gains[0]
    assert abs(ch.coh[2] / 32768 - abs(math.cos(2 * math.pi * 8 / 24))) < 0.03


def test_normalizer():
    n = Normalizer(offset=2048, mul=8, shift=0)
    assert n(2048) == 0 and n(2048 + 100) == 800 and n(0) == -16384
    n = Normalizer(offset=-5, mul=-3, shift=2)
    assert n(-5 + 4) == -3 and n(2**31) == -16384 and n(-(2**31)) == 16384
    assert Normalizer(0, 1, 0)(10**30) == 16384
