"""Raw sensor integers to Q14 (docs/kairos.md §1, step 1)."""

from .defaults import MUL, OFFSET, SHIFT

try:
    from micropython import const
except ImportError:

    def const(x):
        return x

_Q14 = const(16384)


class Normalizer:
    """u = clamp(((x - offset) * mul) >> shift, -16384, 16384).

    The gain is a multiplier and a right shift, so there is no division per
    sample.  Raw x is clamped first to the range that can still change u, so
    (x - offset) * mul stays below 2**30 even for x = +-2**31.
    """

    def __init__(self, offset=OFFSET, mul=MUL, shift=SHIFT):
        if not isinstance(offset, int) or not -(1 << 29) < offset < (1 << 29):
            raise ValueError("offset must be an int with |offset| < 2**29, got %r" % (offset,))
        if not isinstance(mul, int) or mul == 0 or not -32768 < mul < 32768:
            raise ValueError("mul must be a non-zero int with |mul| < 32768, got %r" % (mul,))
        if not isinstance(shift, int) or not 0 <= shift <= 14:
            raise ValueError("shift must be an int in 0..14, got %r" % (shift,))
        self.offset = offset
        self.mul = mul
        self.shift = shift
        # Past offset +- span the output is saturated whatever x is.
        span = ((_Q14 + 1) << shift) // (mul if mul > 0 else -mul) + 1
        self._lo = offset - span
        self._hi = offset + span

    def __call__(self, x):
        if x > self._hi:
            x = self._hi
        elif x < self._lo:
            x = self._lo
        u = ((x - self.offset) * self.mul) >> self.shift
        if u > _Q14:
            return _Q14
        if u < -_Q14:
            return -_Q14
        return u
