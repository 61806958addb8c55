"""The HAL for MicroPython boards, over the `machine` module.

ESP32 ADC pins get 11 dB attenuation (full 0..3.3 V range); every port's
ADC.read_u16() gives 0..65535, which is what board definitions assume.
"""
import machine

from .hal import HalError
from .ticks import Clock


class _Adc:
    def __init__(self, pin):
        try:
            self._a = machine.ADC(machine.Pin(pin))
        except (ValueError, TypeError) as e:
            raise HalError("pin %r is not an ADC pin (%s)" % (pin, e)) from None
        try:
            self._a.atten(machine.ADC.ATTN_11DB)  # ESP32 only
        except AttributeError:
            pass
        self.read = self._a.read_u16


class _In:
    def __init__(self, pin, pull):
        p = {"up": machine.Pin.PULL_UP, "down": machine.Pin.PULL_DOWN}.get(pull)
        self._p = machine.Pin(pin, machine.Pin.IN, p)
        self.read = self._p.value


class _Temp:
    """ESP32: esp32.mcu_temperature() in C (x100); RP2040: ADC channel 4 raw."""

    def __init__(self):
        try:
            import esp32

            f = esp32.mcu_temperature
            self.read = lambda: f() * 100
        except (ImportError, AttributeError):
            self._a = machine.ADC(4)
            self.read = self._a.read_u16


class _Pwm:
    def __init__(self, pin, freq):
        self._p = machine.PWM(machine.Pin(pin), freq=freq, duty_u16=0)

    def freq(self, f):
        self._p.freq(f)

    def duty_u16(self, d):
        self._p.duty_u16(d)


class MachineHal:
    name = "machine"

    def __init__(self, cfg):
        self.clock = Clock()

    def adc(self, pin):
        return _Adc(pin)

    def pin_in(self, pin, pull=None):
        return _In(pin, pull)

    def mcu_temp(self):
        return _Temp()

    def i2c(self, bus, sda, scl):
        if sda is None:
            return machine.I2C(bus)
        return machine.I2C(bus, sda=machine.Pin(sda), scl=machine.Pin(scl), freq=400000)

    def pin_out(self, pin):
        return machine.Pin(pin, machine.Pin.OUT)

    def pwm(self, pin, freq):
        return _Pwm(pin, freq)

    def neopixel(self, pin, count):
        import neopixel

        return neopixel.NeoPixel(machine.Pin(pin), count)

    def unique_id(self):
        import binascii

        return binascii.hexlify(machine.unique_id()).decode()

    def rand30(self):
        import os

        b = os.urandom(4)
        return (b[0] | b[1] << 8 | b[2] << 16 | (b[3] & 0x3F) << 24)

    def watchdog(self, ms):
        return machine.WDT(timeout=ms)

    def keep_fed(self, wdt, ms):
        """Feed wdt from a periodic timer (for the REPL after Ctrl-C); False
        if this port gives us no timer."""
        for tid in (-1, 0):  # a virtual timer where the port has them
            try:
                t = machine.Timer(tid)
                t.init(period=max(100, ms // 4), mode=machine.Timer.PERIODIC,
                       callback=lambda _t: wdt.feed())
            except (ValueError, TypeError, OSError, AttributeError):
                continue
            self._keep = t
            return True
        return False

    def reset(self):
        machine.reset()
