"""A tiny deterministic PRNG in small ints (xorshift16, period 65535).

The sim HAL uses it so a seeded node produces the same samples and frames
on MicroPython and CPython (neither's `random` would match).  Not the boot
id: that is random on every boot (node/entropy.py), or a restarted sim node
would look like a replay of its previous run."""


class XorShift16:
    def __init__(self, seed=1):
        self.x = (seed & 0xFFFF) or 0xACE1  # zero is the one fixed point

    def next(self):
        x = self.x
        x ^= (x << 7) & 0xFFFF
        x ^= x >> 9
        x ^= (x << 8) & 0xFFFF
        self.x = x
        return x

    def tri(self, amp):
        """Triangular noise in -amp..amp (sum of two uniforms), no floats."""
        return ((self.next() + self.next() - 65535) * amp) >> 16
