"""Kernel figures.

Run: .venv/bin/python -m pytest tests/bench/bench_kernel.py -m bench -s

Reports, never asserts on time: MicroPython fuel per channel-step (exact and
repeatable; tests/kairos/test_micropython.py asserts a ceiling on it), CPython
microseconds per step, and the largest |c_fixed - c_float| over the
reference sweep of tests/kairos/test_kernel_reference.py.  docs/kairos.md quotes
these numbers.
"""
import time

import pytest
from support.mp import MicroPython, fuel_per_step
from support.reference import SWEEP, check
from support.signals import sine

from kairos import Channel

pytestmark = pytest.mark.bench

# Conversion to an ESP32 estimate (an assumption, to calibrate on a board):
# one unit of fuel is one WebAssembly instruction, taken as one native
# instruction of the same C interpreter; an ESP32 at 240 MHz runs that
# interpreter at about 0.5 instructions per cycle (flash cache, branches),
# so about 120 million fuel per second.
ESP32_FUEL_PER_S = 120e6


@pytest.mark.parametrize("K", [4, 8])
@pytest.mark.parametrize("omega", [0, 8192])
def test_micropython_fuel_per_step(K, omega, record_property):
    vm = MicroPython()
    fuel = fuel_per_step(vm, K, omega)
    vm.close()
    record_property("fuel_per_step", fuel)
    print(f"\nK={K} omega={omega}: {fuel:,.0f} fuel/step; "
          f"ESP32 estimate {ESP32_FUEL_PER_S / fuel:,.0f} channel-steps/s")


@pytest.mark.benchmark(timer=time.process_time)  # CPU time: other work only adds wall time
@pytest.mark.parametrize("K", [4, 8])
def test_cpython_step(benchmark, K):
    lags = tuple(2 ** (i + 1) for i in range(K))
    u = sine(1000, 24, 0.4, snr_db=20)
    ch = Channel(lags=lags, s=8, s0=2)
    step = ch.step

    def run():
        for x in u:
            step(x)

    benchmark.pedantic(run, rounds=20, warmup_rounds=1)
    us = benchmark.stats.stats.min / len(u) * 1e6  # the fastest round (others are slowed)
    benchmark.extra_info["us_per_step"] = us
    print(f"\nCPython K={K}: {us:.2f} us per channel-step")


def test_max_error_over_sweep():
    worst = (0.0, None)
    for s, s0, period, amp, snr in SWEEP:
        lags = (2, 4, 8, 16) if period < 64 else (8, 32, 64, 128)
        u = sine(8 * 2**s + 1000, period, amp, snr_db=snr, seed=s + s0)
        err, _ = check(u, lags, s, s0)
        worst = max(worst, (err, (s, s0, period, amp, snr)))
    print(f"\nmax |c_fixed - c_float| over the {len(SWEEP)}-case sweep: {worst[0]:.4f} "
          f"(s, s0, period, amplitude, SNR = {worst[1]})")
