"""Terminal demo of the kairos kernel on synthetic channels.

Each channel is a made-up 12-bit sensor (raw values 0..4095 around 2048):

* ``burst16``: a sinusoid with a period of 16 samples (lag 16) that switches on
  and off every 8 seconds, over some noise;
* ``noisy8``: a sinusoid with a period of 8 samples buried in noise;
* ``noise``: white noise only;
* further channels (``noisy4-N``): noisy sinusoids with a period of 4 samples.

Raw samples are scaled to Q14 with :class:`kairos.Normalizer` and fed one at a
time to a :class:`kairos.Channel` per channel. About four times a second of
signal the demo prints one line per channel (coherence ``c``, the dominant lag
in samples and milliseconds, a bar) and it prints collapse events as they
happen.

Run it with ``becomingone demo --kernel``.
"""

from __future__ import annotations

import sys
import time
from collections.abc import Callable
from datetime import datetime, timedelta
from typing import TextIO

import numpy as np

from kairos import Channel, Normalizer

Q15_MAX = 32767

# The synthetic sensors are 12-bit ADCs centred on mid-scale.
ADC_MID = 2048
ADC_MAX = 4095

SWITCH_SECONDS = 8.0  # burst16 is on for this long, then off for this long
STATUS_HZ = 4.0  # status lines per second of signal
BLOCK = 256  # samples synthesised at a time
BAR_WIDTH = 20


def make_normalizer(offset: int = ADC_MID, half_range: int = ADC_MID, shift: int = 8) -> Normalizer:
    """A normaliser mapping ``offset +- half_range`` onto ``-16384..16384`` (Q14)."""
    mul = round((16384 << shift) / half_range)
    return Normalizer(offset, mul, shift)


class Source:
    """One synthetic sensor: ``amp * sin(2 pi t / period + phase)`` plus noise, as raw ADC ints.

    With ``switch`` samples set, the sinusoid is on for ``switch`` samples, then
    off for ``switch`` samples, and so on; the noise is always there.
    """

    def __init__(
        self,
        name: str,
        rng: np.random.Generator,
        period: float | None,
        amp: float,
        noise: float,
        phase: float = 0.0,
        switch: int | None = None,
    ) -> None:
        self.name = name
        self.rng = rng
        self.period = period
        self.amp = amp
        self.noise = noise
        self.phase = phase
        self.switch = switch

    def block(self, start: int, n: int) -> list[int]:
        """Raw samples for ticks ``start .. start + n - 1``."""
        t = np.arange(start, start + n)
        x = self.rng.normal(0.0, self.noise, n) if self.noise else np.zeros(n)
        if self.period:
            wave = self.amp * np.sin(2 * np.pi * t / self.period + self.phase)
            if self.switch:
                wave *= (t // self.switch) % 2 == 0
            x += wave
        return np.clip(np.rint(x + ADC_MID), 0, ADC_MAX).astype(np.int64).tolist()


def make_sources(channels: int, rate_hz: float, seed: int) -> list[Source]:
    rng = np.random.default_rng(seed)
    switch = max(1, round(SWITCH_SECONDS * rate_hz))
    sources = [
        Source("burst16", rng, period=16, amp=1400, noise=250, switch=switch),
        Source("noisy8", rng, period=8, amp=900, noise=450),
        Source("noise", rng, period=None, amp=0, noise=700),
    ]
    for i in range(3, channels):
        sources.append(Source(f"noisy4-{i}", rng, period=4, amp=900, noise=300, phase=0.7 * i))
    return sources[:channels]


def _encodable(text: str, out: TextIO) -> bool:
    try:
        text.encode(getattr(out, "encoding", None) or "ascii")
    except (UnicodeEncodeError, LookupError):
        return False
    return True


def _fmt_ms(ms: float) -> str:
    return f"{ms:.0f}" if ms >= 10 else f"{ms:.1f}"


class Display:
    """Writes status blocks and event lines.

    On a terminal the status block is redrawn in place and events scroll above
    it; otherwise every line is printed once with a time stamp.
    """

    def __init__(self, out: TextIO, lines: int) -> None:
        self.out = out
        self.lines = lines
        self.live = bool(getattr(out, "isatty", lambda: False)())
        self.drawn = False
        self.last: list[str] = []

    def _up(self) -> None:
        if self.drawn:
            self.out.write(f"\x1b[{self.lines}F")

    def event(self, stamp: str, text: str) -> None:
        if self.live:
            self._up()
            self.out.write(f"{stamp} {text}\x1b[K\n")
            if self.drawn:
                self._block(self.last)
        else:
            self.out.write(f"{stamp} {text}\n")
        self.out.flush()

    def status(self, stamp: str, lines: list[str]) -> None:
        self.last = lines
        if self.live:
            self._up()
            self._block(lines)
        else:
            for line in lines:
                self.out.write(f"{stamp} {line}\n")
        self.out.flush()

    def _block(self, lines: list[str]) -> None:
        for line in lines:
            self.out.write(f"{line}\x1b[K\n")
        self.drawn = True


def run(
    channels: int = 3,
    rate_hz: float = 50.0,
    seconds: float | None = None,
    seed: int = 0,
    out: TextIO | None = None,
    fast: bool = False,
    clock: Callable[[], float] = time.monotonic,
    sleep: Callable[[float], None] = time.sleep,
) -> None:
    """Run the kernel demo.

    ``seconds`` is the length of signal to process (``None``: until Ctrl-C).
    Unless ``fast`` is set, samples are paced in real time at ``rate_hz``.
    Time stamps are the start time plus signal time, so they follow the wall
    clock in real time and stay meaningful with ``fast``. ``out`` defaults to
    the current ``sys.stdout`` (looked up at call time, so capture works).
    """
    if out is None:
        out = sys.stdout
    if channels < 1:
        raise ValueError("channels must be at least 1")
    if not rate_hz > 0:
        raise ValueError("rate_hz must be positive")

    sources = make_sources(channels, rate_hz, seed)
    norm = make_normalizer()
    kernels = [Channel() for _ in sources]  # the kernel's defaults (kairos.defaults)
    labels = [f"ch{i} {src.name:<9}" for i, src in enumerate(sources)]

    tau = "τ*" if _encodable("τ*", out) else "lag*"
    full, empty = ("█", "·") if _encodable("█·", out) else ("#", ".")

    total = None if seconds is None else max(1, round(seconds * rate_hz))
    status_every = max(1, round(rate_hz / STATUS_HZ))
    display = Display(out, len(sources))
    started_at = datetime.now().replace(microsecond=0)
    t0 = clock()

    def stamp(tick: int) -> str:
        return (started_at + timedelta(seconds=tick / rate_hz)).strftime("%H:%M:%S")

    def status_line(i: int) -> str:
        ch = kernels[i]
        c = ch.c / Q15_MAX
        lag = ch.lags[ch.k]
        filled = round(c * BAR_WIDTH)
        bar = full * filled + empty * (BAR_WIDTH - filled)
        state = "COLLAPSED" if ch.collapsed else ""
        ms = _fmt_ms(lag * 1000.0 / rate_hz)
        # T > 0: the signal repeats after the lag; T < 0: it inverts (half a period)
        kind = "inv" if ch.t_re < 0 else "rep"
        return f"{labels[i]} c={c:4.2f} {tau}={lag:>3} {kind} ({ms:>4} ms) {bar} {state}".rstrip()

    tick = 0
    while total is None or tick < total:
        n = BLOCK if total is None else min(BLOCK, total - tick)
        block = [src.block(tick, n) for src in sources]
        for j in range(n):
            if not fast:
                delay = t0 + tick / rate_hz - clock()
                if delay > 0:
                    sleep(delay)
            for i, ch in enumerate(kernels):
                ev = ch.step(norm(block[i][j]))
                if ev:
                    what = "entered" if ev > 0 else "left"
                    display.event(stamp(tick), f"ch{i} COLLAPSE {what} at tick {ch.tick}")
            tick += 1
            if tick % status_every == 0:
                display.status(stamp(tick), [status_line(i) for i in range(len(kernels))])
    if tick % status_every:
        display.status(stamp(tick), [status_line(i) for i in range(len(kernels))])
