"""The sim HAL: a node that runs anywhere (CPython, or MicroPython with no
pins).  ADC pins read synthetic signals; outputs remember what they were
told (the app reports it in acks); the clock is virtual unless
cfg["realtime"] is true, so a seeded run gives the same frames everywhere.
"""
from .prng import XorShift16
from .sensors.sim import SimSignal
from .ticks import Clock, VirtualClock


class _Out:
    """An output that records its state: LED level, PWM freq/duty, pixels."""

    def __init__(self, count=1):
        self.level = 0
        self.f = 0
        self.d = 0
        self.pixels = [(0, 0, 0)] * count

    def value(self, v=None):
        if v is None:
            return self.level
        self.level = 1 if v else 0

    def freq(self, f):
        self.f = f

    def duty_u16(self, d):
        self.d = d

    def __setitem__(self, i, rgb):
        self.pixels[i] = rgb

    def write(self):
        pass


class _I2C:
    """No device answers on the sim bus: reads fail like a missing sensor."""

    def readfrom_mem_into(self, addr, reg, buf):
        raise OSError(19)  # ENODEV

    def writeto_mem(self, addr, reg, buf):
        raise OSError(19)


class SimHal:
    name = "sim"

    def __init__(self, cfg):
        self.seed = cfg.get("seed", 1)
        self._rng = XorShift16(self.seed * 7919 + 17)
        self.clock = Clock() if cfg.get("realtime") else VirtualClock(cfg.get("clock_start", 0))
        self.outs = {}
        self.resets = 0

    def adc(self, pin):
        # A different rhythm per pin, so a real board's sensors still move.
        return SimSignal(period=16 + 4 * (pin % 16), amp=6000, noise=400, seed=self.seed + pin)

    def pin_in(self, pin, pull=None):
        return SimSignal(period=40 + pin, amp=1, noise=0, seed=self.seed, square=True)

    def mcu_temp(self):
        return SimSignal(period=4096, amp=200, noise=20, offset=2500, seed=self.seed)

    def i2c(self, bus, sda, scl):
        return _I2C()

    def pin_out(self, pin):
        return self.outs.setdefault(pin, _Out())

    def pwm(self, pin, freq):
        o = self.outs.setdefault(pin, _Out())
        o.freq(freq)
        return o

    def neopixel(self, pin, count):
        return self.outs.setdefault(pin, _Out(count))

    def unique_id(self):
        return "sim%d" % self.seed

    def rand30(self):
        return ((self._rng.next() << 14) ^ self._rng.next()) & 0x3FFFFFFF

    def watchdog(self, ms):
        return None

    def reset(self):
        self.resets += 1
