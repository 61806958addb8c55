"""Hub batch-path throughput.

Run: .venv/bin/python -m pytest tests/bench/bench_batch.py -m bench -s

Reports channel-samples per second of kairos.batch.Bank.run for 1000
channels x 200 samples per call; never asserts on time.  "warm" is a
long-lived bank that has already seen 1,800 samples of the same signals
(the hub's case: gains settled, buffers allocated), "fresh" a new Bank per
call (includes the first drop of every gain from the top).  Rounds are
timed in this process's CPU time and the fastest counts, so other work on
the machine disturbs the figure less.  docs/kairos.md quotes these numbers.
"""
import time

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


@pytest.mark.benchmark(timer=time.process_time)  # CPU time: other work only adds wall time
@pytest.mark.parametrize("state", ["warm", "fresh"])
@pytest.mark.parametrize("K", [4, 8])
def test_bank_run(benchmark, K, state):
    lags = tuple(2 ** (i + 1) for i in range(K))
    U = block(N, 10 * M, lags)
    if state == "warm":
        bank = Bank(N, lags=lags)
        bank.run(U[:, : 9 * M])  # the same channels' earlier samples
        U = np.ascontiguousarray(U[:, 9 * M :])
        benchmark.pedantic(bank.run, (U,), rounds=15, warmup_rounds=1)
    else:
        U = np.ascontiguousarray(U[:, :M])
        benchmark.pedantic(
            lambda bank: bank.run(U),
            setup=lambda: ((Bank(N, lags=lags),), {}),
            rounds=5,
        )
    # The fastest round: other work on the machine only ever slows a round down.
    rate = N * M / benchmark.stats.stats.min
    benchmark.extra_info["channel_samples_per_s"] = rate
    print(f"\nBank({N}, K={K}) {state}: {rate / 1e6:.1f} M channel-samples/s "
          f"(mean round {N * M / benchmark.stats.stats.mean / 1e6:.1f} M/s)")
