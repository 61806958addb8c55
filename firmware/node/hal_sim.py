"""The sim HAL: a node that runs anywhere (CPython, or MicroPython with no
pins).  ADC pins read synthetic signals, a BME280 answers on I2C; outputs remember what they were
told (the app reports it in acks); the clock is virtual unless
cfg["realtime"] is true, so a seeded run gives the same frames everywhere.
"""
from .prng import XorShift16
from .sensors.sim import SimSignal
from .ticks import Clock, VirtualClock, ticks_diff


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


# A BME280's calibration registers (0x88.., 0xE1..): the datasheet's example.
_CAL1 = b"pkCg\x18\xfc}\x8eC\xd6\xd0\x0b'\x0b\x8c\x00\xf9\xff\x8c<\xf8\xc6p\x17\x00K"
_CAL2 = b"j\x01\x00\x14\x04\x00\x1e"


class _I2C:
    """The sim bus: a BME280 answers at 0x76 and 0x77 (its two addresses)
    with slowly drifting temperature, pressure and humidity; any other
    address fails like a missing device."""

    def __init__(self, seed):
        # Raw ADC counts about 25 C, 1007 hPa, 45 %RH, each on its own rhythm.
        self._t = SimSignal(period=3000, amp=20000, noise=300, offset=519888, seed=seed)
        self._p = SimSignal(period=5000, amp=3000, noise=100, offset=415148, seed=seed + 1)
        self._h = SimSignal(period=4000, amp=3000, noise=100, offset=27000, seed=seed + 2)

    def readfrom_mem_into(self, addr, reg, buf):
        if addr != 0x76 and addr != 0x77:
            raise OSError(19)  # ENODEV
        if reg == 0xD0:
            buf[0] = 0x60  # chip id
        elif reg == 0x88:
            buf[:] = _CAL1[: len(buf)]
        elif reg == 0xE1:
            buf[:] = _CAL2[: len(buf)]
        elif reg == 0xF7:
            p, t, h = self._p.read(), self._t.read(), self._h.read()
            buf[0], buf[1], buf[2] = p >> 12, (p >> 4) & 0xFF, (p & 0xF) << 4
            buf[3], buf[4], buf[5] = t >> 12, (t >> 4) & 0xFF, (t & 0xF) << 4
            buf[6], buf[7] = h >> 8, h & 0xFF
        else:
            raise OSError(5)  # EIO: a register the model doesn't have

    def writeto_mem(self, addr, reg, buf):
        if addr != 0x76 and addr != 0x77:
            raise OSError(19)


class _Watchdog:
    """A watchdog that records instead of resetting: feeds, the longest gap
    between two feeds (on the HAL's clock) and the feeds that came too late
    (where a real one would have reset the board)."""

    def __init__(self, clock, ms):
        self.clock = clock
        self.timeout = ms
        self.feeds = 0
        self.gap = 0
        self.late = 0
        self.kept = False  # at_repl() handed it to a timer
        self._last = clock.ms()

    def feed(self):
        now = self.clock.ms()
        g = ticks_diff(now, self._last)
        if g > self.gap:
            self.gap = g
        if g > self.timeout:
            self.late += 1
        self._last = now
        self.feeds += 1


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
        return _I2C(self.seed + 100 * bus)

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
        self.wdt = _Watchdog(self.clock, ms)
        return self.wdt

    def keep_fed(self, wdt, ms):
        wdt.kept = True  # there is no timer here; nothing would reset us
        return True

    def reset(self):
        self.resets += 1
