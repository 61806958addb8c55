"""The virtual board's `machine` stand-in (installed by vboard.mjs at every boot).

Pins and ADCs for the sim board: an ADC reads a slow sine per pin plus
noise, outputs remember their state; reset()/soft_reset() reset the board.
"""
import math
import random
import time

import vboard

PWRON_RESET, HARD_RESET, WDT_RESET, DEEPSLEEP_RESET, SOFT_RESET = 1, 2, 3, 4, 5
def reset():
    vboard.reset('hard')
    raise SystemExit
def soft_reset():
    vboard.reset('soft')
    raise SystemExit
def reset_cause():
    return vboard.cause
def unique_id():
    return b'vboard01'
def freq(f=None):
    return 125000000
def idle():
    time.sleep_ms(1)
def lightsleep(ms=0):
    time.sleep_ms(ms)
def deepsleep(ms=0):
    reset()
def disable_irq():
    return 0
def enable_irq(s=0):
    pass
class Pin:
    IN, OUT, OPEN_DRAIN, PULL_UP, PULL_DOWN, IRQ_RISING, IRQ_FALLING = 0, 1, 2, 1, 2, 1, 2
    def __init__(self, id, mode=-1, pull=-1, value=None):
        self.id, self._v = id, 0 if value is None else value
    def init(self, *a, **k):
        pass
    def value(self, v=None):
        if v is None:
            return self._v
        self._v = 1 if v else 0
    __call__ = value
    def on(self):
        self._v = 1
    def off(self):
        self._v = 0
    def toggle(self):
        self._v ^= 1
    def irq(self, *a, **k):
        pass
class ADC:
    ATTN_0DB, ATTN_2_5DB, ATTN_6DB, ATTN_11DB = 0, 1, 2, 3
    WIDTH_12BIT = 12
    def __init__(self, pin, *a, **k):
        self.n = pin.id if isinstance(pin, Pin) else pin
        self.n = self.n if isinstance(self.n, int) else 0
    def atten(self, a):
        pass
    def width(self, w):
        pass
    def read_u16(self):
        t = time.ticks_ms() / 1000
        v = 32768 + 12000 * math.sin(2 * math.pi * t / (0.32 + 0.08 * (self.n % 16)))
        return max(0, min(65535, int(v) + random.getrandbits(10) - 512))
    def read(self):
        return self.read_u16() >> 4
    def read_uv(self):
        return self.read_u16() * 3300000 // 65535
class PWM:
    def __init__(self, pin, freq=0, duty_u16=0, **k):
        self.pin, self.f, self.d = pin, freq, duty_u16
    def freq(self, f=None):
        if f is None:
            return self.f
        self.f = f
    def duty_u16(self, d=None):
        if d is None:
            return self.d
        self.d = d
    def deinit(self):
        self.d = 0
class I2C:
    def __init__(self, *a, **k):
        pass
    def scan(self):
        return []
    def readfrom_mem_into(self, addr, reg, buf):
        raise OSError(19)
    def writeto_mem(self, addr, reg, buf):
        raise OSError(19)
    readfrom_mem = writeto = readfrom = readfrom_mem_into
SoftI2C = I2C
class WDT:
    def __init__(self, id=0, timeout=5000):
        pass
    def feed(self):
        pass
class UART:
    def __init__(self, *a, **k):
        pass
    def any(self):
        return 0
    def read(self, n=-1):
        return None
    def write(self, b):
        return len(b)
