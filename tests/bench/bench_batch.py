"""Hub batch-path throughput (run: PYTHONPATH=shared python -m pytest
tests/bench/bench_batch.py -m bench -s -p no:cacheprovider).

Reports channel-samples per second of kairos.batch.Bank.run for 1000
channels x 200 samples; never asserts on time.  "warm" is a long-lived
bank (the hub's case: gains settled, buffers allocated), "fresh" a new
Bank per call (includes the first drop of every gain from the top).
"""
import numpy as np
import pytest
from kairos.batch import Bank

pytestmark = pytest.mark.bench

N, M = 1000, 200


def block(n, m, lags, seed=0):
    """Tones at the lags' periods with noise at random levels, Q14 ints."""
    rng = np.random.default_rng(seed)
    t = np.arange(m)
    period = rng.choice([L for L in lags if L > 1], size=(n, 1))
    amp = rng.uniform(500, 12000, size=(n, 1))
    x = amp * np.sin(2 * np.pi * t / period + rng.uniform(0, 6, (n, 1)))
    x += rng.normal(0, 1, (n, m)) * amp * rng.uniform(0.05, 2, (n, 1))
    return np.clip(np.round(x), -16384, 16384).astype(np.int64)


@pytest.mark.parametrize("state", ["warm", "fresh"])
@pytest.mark.parametrize("K", [4, 8])
def test_bank_run(benchmark, K, state):
    lags = tuple(2 ** (i + 1) for i in range(K))
    U = block(N, M, lags)
    if state == "warm":
        bank = Bank(N, lags=lags)
        bank.run(block(N, 4 * M, lags, seed=1))
        benchmark(bank.run, U)
    else:
        benchmark.pedantic(
            lambda bank: bank.run(U),
            setup=lambda: ((Bank(N, lags=lags),), {}),
            rounds=5,
        )
    rate = N * M / benchmark.stats.stats.mean
    benchmark.extra_info["channel_samples_per_s"] = rate
    print(f"\nBank({N}, K={K}) {state}: {rate / 1e6:.1f} M channel-samples/s")
