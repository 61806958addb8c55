"""Draw docs/kairos-figure.png: per-lag coherence and collapse, from the real kernel.

    .venv/bin/python tools/kairos_figure.py [--out docs/kairos-figure.png]

A noise floor, a period-16 sine (amplitude 0.5, SNR 20 dB), a stretch where
the rhythm fades into stronger noise, and the noise floor again, stepped
through Channel(lags=(2, 4, 8, 16), s=7, s0=1); the top panel also shows the
block-floating-point gain.  Deterministic (fixed seed).
"""
import argparse
import pathlib
import sys

import numpy as np

from kairos import Channel  # installed with the project (bash tools/setup.sh)

ROOT = pathlib.Path(__file__).resolve().parent.parent

Q14 = 16384
FS = 100  # Hz, for the seconds axis only
PERIOD = 16
LAGS = (2, 4, 8, 16)
SEGMENTS = (1500, 2500, 1500, 1500)  # floor, rhythm, fade, floor
FLOOR = 0.5 / np.sqrt(2) / 10  # noise sigma of a 0.5 sine at 20 dB SNR


def make_signal(seed=7):
    """Q14 ints, and the start of each segment."""
    rng = np.random.default_rng(seed)
    n0, n1, n2, n3 = SEGMENTS
    n = np.arange(n0 + n1 + n2 + n3)
    amp = np.zeros(n.size)
    amp[n0 : n0 + n1] = 0.5
    amp[n0 + n1 : n0 + n1 + n2] = 0.5 * np.exp(-np.arange(n2) / 400)
    sigma = np.full(n.size, FLOOR)
    sigma[n0 + n1 : n0 + n1 + n2] = 2 * FLOOR
    x = amp * np.sin(2 * np.pi * n / PERIOD) + sigma * rng.normal(size=n.size)
    return np.clip(np.round(x * Q14), -Q14, Q14).astype(int), np.cumsum((0,) + SEGMENTS[:-1])


def run(u):
    """Per sample: per-lag c (K columns), c*, the dominant lag, the events,
    the gain; and the enter / leave thresholds on c."""
    ch = Channel(lags=LAGS, s=7, s0=1)
    coh = np.zeros((u.size, len(LAGS)))
    cstar = np.zeros(u.size)
    tau = np.zeros(u.size, dtype=int)
    ev = np.zeros(u.size, dtype=int)
    gain = np.zeros(u.size, dtype=int)
    for i, v in enumerate(u.tolist()):
        ev[i] = ch.step(v)
        coh[i] = ch.coh
        cstar[i] = ch.c
        tau[i] = ch.tau
        gain[i] = ch.gain
    thr = [((c2 / 32768) ** 0.5) for c2 in (ch.ic, ch.ic - ch.hysteresis)]
    return coh / 32768, cstar / 32768, tau, ev, gain, thr


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", default=str(ROOT / "docs" / "kairos-figure.png"))
    args = ap.parse_args(argv)
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    u, starts = make_signal()
    coh, cstar, tau, ev, gain, (thr, leave) = run(u)
    n = np.arange(u.size)
    fig, (a1, a2, a3) = plt.subplots(3, 1, figsize=(10, 7), sharex=True, layout="constrained")
    fig.suptitle("KAIROS kernel: per-lag coherence and collapse", fontsize=13, weight="bold")

    a1.plot(n, u / Q14, lw=0.3, color="0.25")
    names = ("noise floor", "period-16 rhythm", "rhythm fades", "noise floor")
    for x0, name in zip(starts, names, strict=True):
        a1.text(x0 + 40, 0.88, name, fontsize=9, va="top", color="0.2")
        for ax in (a1, a2, a3) if x0 else ():
            ax.axvline(x0, color="0.6", lw=0.8, ls=":")
    a1.set(ylabel="input u\n(fraction of FS)", ylim=(-1, 1))
    g1 = a1.twinx()
    g1.step(n, gain, where="post", color="C4", lw=1.2)
    g1.set_ylabel("gain g (bits)", color="C4", fontsize=9)
    g1.set_ylim(gain.min() - 1, gain.max() + 4)
    g1.tick_params(axis="y", colors="C4", labelsize=8)
    changes = int(np.count_nonzero(np.diff(gain)))
    g1.text(40, gain.min() - 0.8, f"gain g: {changes} changes in {u.size} samples",
            ha="left", va="bottom", fontsize=8.5, color="C4")
    sec = a1.secondary_xaxis("top", functions=(lambda x: x / FS, lambda t: t * FS))
    sec.set_xlabel(f"time (s) at {FS} Hz", fontsize=9)

    for k, lag in enumerate(LAGS):  # the period-16 sine gives c = 1 at 16 and at 8 (inversion)
        a2.plot(n, coh[:, k], lw=1.0, ls=(0, (3, 2)) if lag == 16 else "-",
                label=f"τ = {lag} samples")
    a2.axhline(thr, color="k", ls="--", lw=1)
    a2.text(u.size - 20, thr + 0.02, f"collapse threshold √I_c = {thr:.3f}",
            ha="right", va="bottom", fontsize=8.5)
    a2.set(ylabel="per-lag\ncoherence c_k", ylim=(0, 1.3), yticks=np.arange(0, 1.01, 0.2))
    a2.legend(loc="upper left", fontsize=8.5, ncol=4, framealpha=0.9)

    a3.plot(n, cstar, lw=1.0, color="C3", label="c* (dominant lag)")
    a3.axhline(thr, color="k", ls="--", lw=1, label=f"enter: c* ≥ {thr:.3f}")
    a3.axhline(leave, color="k", ls=":", lw=1, label=f"leave: c* < {leave:.3f}")
    on = np.flatnonzero(ev == 1).tolist()
    off = np.flatnonzero(ev == -1).tolist()
    ends = off + [u.size] * (len(on) - len(off))
    for i, (x0, x1) in enumerate(zip(on, ends, strict=True)):
        a3.axvspan(x0, x1, color="C2", alpha=0.18, lw=0, label="collapsed" if i == 0 else None)
        a3.text((x0 + x1) / 2, 0.45, f"collapsed, τ* = {tau[x0]} (inversion at P/2)",
                ha="center", fontsize=9)
    for x, kind in [(x, 1) for x in on] + [(x, -1) for x in off]:
        a3.axvline(x, color="C2" if kind > 0 else "C1", lw=1.2)
        a3.annotate(f"{'enter' if kind > 0 else 'leave'} @ {x}", (x, 0.08),
                    xytext=(4 if kind > 0 else -4, 0), textcoords="offset points",
                    ha="left" if kind > 0 else "right", fontsize=8.5)
    a3.set(ylabel="dominant\ncoherence c*", ylim=(0, 1.3), yticks=np.arange(0, 1.01, 0.2),
           xlabel="sample n", xlim=(0, u.size))
    a3.legend(loc="upper left", fontsize=8.5, ncol=4, framealpha=0.9)
    for ax in (a1, a2, a3):
        ax.grid(alpha=0.25)

    out = pathlib.Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(out, dpi=110)
    plt.close(fig)
    print(f"wrote {out}: {len(on)} collapse(s) entered at {on}, left at {off}; "
          f"{changes} gain changes")
    return 0


if __name__ == "__main__":
    sys.exit(main())
