"""Arbitrary input never breaks the kernel; bad arguments say which one."""
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from support.kernel import assert_state_in_bounds

from kairos import Channel, Normalizer

EXTREMES = st.sampled_from([2**31, -(2**31), 2**31 - 1, 16384, -16384, 0, 10**15, -(10**15)])
SAMPLE = st.one_of(st.integers(-(2**40), 2**40), EXTREMES, st.integers(-16384, 16384))
# runs: a value repeated (constant stretches and huge jumps between them)
RUNS = st.lists(st.tuples(SAMPLE, st.integers(1, 200)), min_size=1, max_size=30)
CONFIG = st.fixed_dictionaries(
    {
        "lags": st.lists(st.integers(1, 300), min_size=1, max_size=8, unique=True).map(
            lambda v: tuple(sorted(v))
        ),
        "s": st.integers(4, 12),
        "s0": st.integers(0, 6),
        "omega": st.sampled_from([0, 1, 4096, 30000, 65535]),
        "dwell": st.integers(1, 20),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(CONFIG, RUNS)
def test_any_int_sequence_stays_in_bounds(cfg, runs):
    ch = Channel(**cfg)
    for value, count in runs:
        for _ in range(count):
            ev = ch.step(value)
            assert ev in (-1, 0, 1)
            assert 0 <= ch.c2 <= 32767 and 0 <= ch.k < len(cfg["lags"])
        assert_state_in_bounds(ch)
        assert all(0 <= c <= 32767 for c in ch.coh)


@given(st.integers(-(2**29) + 1, 2**29 - 1), st.integers(-32767, 32767).filter(bool),
       st.integers(0, 14), st.lists(SAMPLE, max_size=50))
def test_normalizer_output_is_q14(offset, mul, shift, xs):
    n = Normalizer(offset, mul, shift)
    for x in xs:
        u = n(x)
        assert -16384 <= u <= 16384
        # exact where nothing saturates
        exact = ((x - offset) * mul) >> shift
        assert u == max(-16384, min(16384, exact))


@pytest.mark.parametrize(
    "kwargs,name",
    [
        ({"lags": (4, 2)}, "lags"),
        ({"lags": (2, 2)}, "lags"),
        ({"lags": ()}, "lags"),
        ({"lags": tuple(range(1, 10))}, "lags"),  # K = 9
        ({"lags": (0, 4)}, "lags"),
        ({"lags": (2, 5000)}, "lags"),
        ({"lags": 7}, "lags"),
        ({"lags": (2.0, 4)}, "lags"),
        ({"s": 3}, "s"),
        ({"s": 13}, "s"),
        ({"s": 8.0}, "s"),
        ({"s0": -1}, "s0"),
        ({"s0": 7}, "s0"),
        ({"omega": 65536}, "omega"),
        ({"ic": 0}, "ic"),
        ({"ic": 40000}, "ic"),
        ({"hysteresis": 22938}, "hysteresis"),
        ({"dwell": 0}, "dwell"),
    ],
)
def test_bad_constructor_arguments_name_the_argument(kwargs, name):
    with pytest.raises(ValueError) as e:
        Channel(**kwargs)
    assert str(e.value).startswith(name + " ")


@pytest.mark.parametrize(
    "args,name",
    [((2**29, 1, 0), "offset"), ((0, 0, 0), "mul"), ((0, 1, 15), "shift"), ((0, 1.5, 0), "mul")],
)
def test_bad_normalizer_arguments_name_the_argument(args, name):
    with pytest.raises(ValueError) as e:
        Normalizer(*args)
    assert str(e.value).startswith(name + " ")
