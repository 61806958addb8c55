"""A synthetic signal: a sinusoid (or square wave) with noise and bursts.

Integer-only and allocation-free per read: the phase is n * 65536 // period
taken from the kernel's Q14 sine table, the noise from a xorshift16.
"""
from kairos.fixmath import sin_table

from ..prng import XorShift16


class SimSignal:
    def __init__(self, period=32, amp=8000, noise=0, offset=0, seed=1,
                 burst_every=0, burst_len=0, square=False):
        if not isinstance(period, int) or period < 2:
            raise ValueError("period must be an int >= 2, got %r" % (period,))
        self.period = period
        self.amp = amp
        self.noise = noise
        self.offset = offset
        self.burst_every = burst_every
        self.burst_len = burst_len
        self.square = square
        self._rng = XorShift16(seed)
        self._sin = sin_table()
        self._i = 0  # position in the period
        self._n = 0  # position in the burst cycle

    def read(self):
        # The sinusoid is on during the first burst_len of every burst_every
        # samples (always on when burst_every is 0); noise never stops.
        i = self._i
        self._i = i + 1 if i + 1 < self.period else 0
        on = True
        if self.burst_every:
            n = self._n
            self._n = n + 1 if n + 1 < self.burst_every else 0
            on = n < self.burst_len
        v = self.offset
        if on:
            s = self._sin[(i * 1024) // self.period]
            if self.square:
                v += self.amp if s >= 0 else 0
            else:
                v += (s * self.amp) >> 14
        if self.noise:
            v += self._rng.tri(self.noise)
        return v
