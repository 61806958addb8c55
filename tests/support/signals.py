"""Test signals, as Q14 integer lists (deterministic for a seed)."""
import numpy as np

Q14 = 16384


def sine(n, period, amp=0.5, phase=0.0, snr_db=None, seed=0, offset=0.0):
    """amp is a fraction of full scale; snr_db adds white Gaussian noise."""
    t = np.arange(n)
    x = amp * Q14 * np.sin(2 * np.pi * t / period + phase) + offset * Q14
    if snr_db is not None:
        p = (amp * Q14) ** 2 / 2
        rng = np.random.default_rng(seed)
        x = x + rng.normal(0, np.sqrt(p / 10 ** (snr_db / 10)), n)
    return to_q14(x)


def noise(n, amp=0.3, seed=0):
    rng = np.random.default_rng(seed)
    return to_q14(rng.normal(0, amp * Q14, n))


def to_q14(x):
    return [int(v) for v in np.clip(np.round(x), -Q14, Q14)]


def run_channel(ch, samples):
    """Step a Channel through samples; return per-step (c, c2, k, events)."""
    c2, k, ev = [], [], []
    for u in samples:
        ev.append(ch.step(u))
        c2.append(ch.c2)
        k.append(ch.k)
    return np.array(c2), np.array(k), np.array(ev)
