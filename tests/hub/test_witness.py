"""becomingone.slowtier.witness: the contracting self-model W = G[W], surprise and events."""
# SIM300 misreads the spec's capitalised names (s.G == approx(...)) as constants.
# ruff: noqa: SIM300
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.slowtier.witness import Witness, WitnessState

OBS = (0.8, 0.6, 0.3 + 0.4j)  # |OBS| = sqrt(0.64 + 0.36 + 0.09 + 0.16) = sqrt(1.25)


def test_first_ticks_by_hand():
    w = Witness()  # beta 0.2, avg_alpha 0.05
    s = w.update(*OBS)
    assert isinstance(s, WitnessState)
    assert s.S == pytest.approx(math.sqrt(1.25))  # from W = 0: 1.118034
    assert s.S_avg == pytest.approx(math.sqrt(1.25))  # the first S initialises
    assert s.W == pytest.approx((0.16, 0.12, 0.06 + 0.08j))  # 0.2 * OBS
    s = w.update(*OBS)
    assert s.S == pytest.approx(0.8 * math.sqrt(1.25))  # 0.894427
    assert s.S_avg == pytest.approx(1.118034 + 0.05 * (0.894427 - 1.118034), abs=1e-6)
    s = w.update(*OBS)
    # W_3 = (1 - 0.8^3) OBS = 0.488 OBS
    assert s.W == pytest.approx((0.3904, 0.2928, 0.1464 + 0.1952j))
    assert not s.event and not s.converged


def test_stationary_input_converges_geometrically():
    w = Witness(beta=0.3)
    for n in range(1, 60):
        s = w.update(*OBS)
        # The error shrinks as (1 - beta)^n exactly: W_n = (1 - 0.7^n) OBS.
        err = math.dist((s.W[0], s.W[1], s.W[2].real, s.W[2].imag), (0.8, 0.6, 0.3, 0.4))
        assert err == pytest.approx(0.7**n * math.sqrt(1.25), rel=1e-9, abs=1e-15)
        # and S, measured before the update, is the error of W_{n-1}
        assert s.S == pytest.approx(0.7 ** (n - 1) * math.sqrt(1.25), rel=1e-9, abs=1e-15)
        assert not s.event


def test_no_event_on_steady_input_and_convergence():
    w = Witness()
    states = [w.update(*OBS) for _ in range(1000)]
    assert not any(s.event for s in states)
    # S_avg decays like 0.95^n from 1.12: below eps = 1e-3 after ~140 ticks.
    first = next(i for i, s in enumerate(states) if s.converged)
    assert 100 < first < 200
    assert all(s.converged for s in states[first:])
    assert states[-1].W == pytest.approx(OBS, abs=1e-15)


def test_a_step_change_is_a_surprise():
    w = Witness()
    for _ in range(300):
        w.update(*OBS)
    # Step to (0.2, 0.1, -0.5i): S = |(0.6, 0.5, 0.3, 0.9)| = sqrt(1.51) = 1.228821
    burst = [w.update(0.2, 0.1, -0.5j) for _ in range(8)]
    assert burst[0].S == pytest.approx(math.sqrt(1.51), abs=1e-9)
    # The surprise decays as 0.8^k while its average catches up: with the
    # previous average ~0, S_avg before tick k is 0.05 S0 (0.95^k - 0.8^k) / 0.15,
    # so S > 3 S_avg while 0.8^k > 0.95^k - 0.8^k: k = 0..4 (0.4096 > 0.4050),
    # not k = 5 (0.3277 < 0.4461).  One change, a five-tick burst of
    # surprise, and one event: its rising edge.
    assert [s.surprising for s in burst] == [True] * 5 + [False] * 3
    assert [s.event for s in burst] == [True] + [False] * 7
    assert not burst[0].converged


def test_no_event_during_warmup():
    w = Witness(warmup=5)
    states = [w.update(0.0, 0.0, 0j) for _ in range(3)]
    states += [w.update(1.0, 1.0, 1 + 0j), w.update(1.0, 1.0, 1 + 0j)]
    assert not any(s.event for s in states)
    w = Witness(warmup=2)
    states = [w.update(0.0, 0.0, 0j) for _ in range(3)]
    assert w.update(1.0, 1.0, 1 + 0j).event


def test_round_off_sized_surprise_is_no_event():
    # A converged model (S_avg ~ 1e-16) must not fire on the last ulp.
    w = Witness()
    for _ in range(2000):
        w.update(*OBS)
    assert w.S_avg < 1e-12
    assert not w.update(0.8 + 1e-12, 0.6, 0.3 + 0.4j).event


def test_dict_round_trip():
    w = Witness(beta=0.1, k=2.0, avg_alpha=0.1, warmup=3, eps=1e-4)
    for i in range(20):
        w.update(0.5 + 0.01 * i, 0.4, complex(0.1 * i % 1, 0.2))
    settings = {"beta": 0.1, "k": 2.0, "avg_alpha": 0.1, "warmup": 3, "eps": 1e-4}
    saved = json.loads(json.dumps(w.to_dict()))
    assert not set(saved) & {*settings, "refractory"}  # the state, not the settings
    back = Witness.from_dict(saved, **settings)
    assert back.state() == w.state()
    a, b = w.update(0.9, 0.1, -0.3j), back.update(0.9, 0.1, -0.3j)
    assert a == b
    assert Witness.from_dict(Witness().to_dict()).converged is False
    other = Witness.from_dict(saved, beta=0.5, refractory=3)
    assert (other.beta, other.refractory, other.n, other.S) == (0.5, 3, 20, saved["S"])


@pytest.mark.parametrize("beta", [0.0, 1.0, -0.1, 1.5, math.nan])
def test_beta_outside_0_1_is_rejected(beta):
    with pytest.raises(ValueError, match="beta"):
        Witness(beta=beta)


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"k": 0.0}, "k"),
        ({"avg_alpha": 0.0}, "avg_alpha"),
        ({"avg_alpha": 1.1}, "avg_alpha"),
        ({"warmup": -1}, "warmup"),
        ({"warmup": 2.5}, "warmup"),
        ({"eps": 0.0}, "eps"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Witness(**kwargs)


def test_bad_observations_name_themselves():
    w = Witness()
    for args, name in (((math.nan, 0.0, 0j), "G"), ((0.0, math.inf, 0j), "R")):
        with pytest.raises(ValueError, match=name):
            w.update(*args)
    with pytest.raises(ValueError, match="psi"):
        w.update(0.0, 0.0, complex(0, math.nan))
    assert w.n == 0


UNIT = st.floats(0, 1)


@given(st.lists(st.tuples(UNIT, UNIT, UNIT, st.floats(-math.pi, math.pi)), min_size=1))
def test_w_stays_in_the_hull_of_bounded_inputs(obs):
    # W is a convex mix of 0 and the inputs: G, R in [0, 1] and |Psi| <= 1 stay so.
    w = Witness()
    for g, r, m, ph in obs:
        s = w.update(g, r, m * complex(math.cos(ph), math.sin(ph)))
        assert -1e-15 <= s.W[0] <= 1 + 1e-15 and -1e-15 <= s.W[1] <= 1 + 1e-15
        assert abs(s.W[2]) <= 1 + 1e-12
        assert 0 <= s.S <= 2 * math.sqrt(2) + 1e-12 and s.S_avg >= 0


def test_one_event_per_change_and_a_refractory_time():
    w = Witness(refractory=10)
    for _ in range(300):
        w.update(*OBS)
    first = [w.update(0.2, 0.1, -0.5j) for _ in range(3)]  # a change: 3 surprising ticks ...
    back = [w.update(*OBS) for _ in range(5)]  # ... and straight back: a new rising edge
    assert [s.event for s in first] == [True, False, False]
    assert back[0].surprising and not back[0].event  # 3 ticks after the last: refractory
    assert not any(s.event for s in back)
    for _ in range(300):
        w.update(*OBS)
    later = [w.update(0.2, 0.1, -0.5j) for _ in range(8)]
    assert [s.event for s in later] == [True] + [False] * 7  # past the refractory time


def test_refractory_zero_still_fires_once_per_burst():
    w = Witness(refractory=0)
    for _ in range(300):
        w.update(*OBS)
    burst = [w.update(0.2, 0.1, -0.5j) for _ in range(8)]
    assert sum(s.event for s in burst) == 1
    with pytest.raises(ValueError, match="refractory"):
        Witness(refractory=-1)
