"""The HAL for a Raspberry Pi Zero under CPython: GPIO and PWM through sysfs,
I2C through /dev/i2c-N, the SoC temperature from the thermal zone.

A Pi has no ADC: analog sensors need an I2C ADC, so adc() refuses clearly.
Where sysfs or a device node is missing (a laptop), the HalError says which
path, and the app skips that sensor or output with one line.
"""
import os
import sys

from .hal import HalError
from .ticks import Clock

_GPIO = "/sys/class/gpio"
_I2C_SLAVE = 0x0703  # ioctl: set the 7-bit address for the next read/write


def _write(path, text):
    try:
        with open(path, "w") as f:
            f.write(text)
    except OSError as e:
        raise HalError("%s: %s" % (path, e.strerror or e)) from None


def _gpio(pin, direction):
    base = "%s/gpio%d" % (_GPIO, pin)
    if not os.path.exists(base):
        _write(_GPIO + "/export", str(pin))
    _write(base + "/direction", direction)
    return base + "/value"


class _In:
    def __init__(self, pin):
        self._path = _gpio(pin, "in")

    def read(self):
        with open(self._path) as f:
            return 1 if f.read(1) == "1" else 0


class _Out:
    def __init__(self, pin):
        self._path = _gpio(pin, "out")

    def value(self, v):
        _write(self._path, "1" if v else "0")


class _Temp:
    path = "/sys/class/thermal/thermal_zone0/temp"

    def __init__(self):
        if not os.path.exists(self.path):
            raise HalError("%s: no SoC temperature here" % self.path)

    def read(self):
        with open(self.path) as f:
            return int(f.read()) // 10  # milli-C -> centi-C


class _Pwm:
    """sysfs PWM (enable with dtoverlay=pwm): channel 0 on GPIO18, 1 on 19."""

    def __init__(self, pin, freq):
        ch = {18: 0, 12: 0, 19: 1, 13: 1}.get(pin)
        if ch is None:
            raise HalError("GPIO%d has no hardware PWM (use 12, 13, 18 or 19)" % pin)
        self._dir = "/sys/class/pwm/pwmchip0/pwm%d" % ch
        if not os.path.exists(self._dir):
            _write("/sys/class/pwm/pwmchip0/export", str(ch))
        self._period = 0
        self.freq(freq)
        _write(self._dir + "/enable", "1")

    def freq(self, f):
        self._period = 1000000000 // max(1, f)
        _write(self._dir + "/period", str(self._period))

    def duty_u16(self, d):
        _write(self._dir + "/duty_cycle", str(self._period * d // 65535))


class _I2C:
    def __init__(self, bus):
        path = "/dev/i2c-%d" % bus
        try:
            self._fd = os.open(path, os.O_RDWR)
        except OSError as e:
            raise HalError("%s: %s (enable I2C with raspi-config)" % (path, e.strerror)) from None

    def _select(self, addr):
        import fcntl

        fcntl.ioctl(self._fd, _I2C_SLAVE, addr)

    def readfrom_mem_into(self, addr, reg, buf):
        self._select(addr)
        os.write(self._fd, bytes((reg,)))
        buf[:] = os.read(self._fd, len(buf))

    def writeto_mem(self, addr, reg, data):
        self._select(addr)
        os.write(self._fd, bytes((reg,)) + bytes(data))


class PiHal:
    name = "pi"

    def __init__(self, cfg):
        self.clock = Clock()

    def adc(self, pin):
        raise HalError("a Raspberry Pi has no ADC; use an I2C sensor (bme280)")

    def pin_in(self, pin, pull=None):
        return _In(pin)

    def mcu_temp(self):
        return _Temp()

    def i2c(self, bus, sda, scl):
        return _I2C(bus)

    def pin_out(self, pin):
        return _Out(pin)

    def pwm(self, pin, freq):
        return _Pwm(pin, freq)

    def neopixel(self, pin, count):
        raise HalError("NeoPixels need a microcontroller node; none on a Pi Zero")

    def unique_id(self):
        try:
            with open("/etc/machine-id") as f:
                return f.read().strip()[:12]
        except OSError:
            return "pi%d" % os.getpid()

    def rand30(self):
        return int.from_bytes(os.urandom(4), "little") & 0x3FFFFFFF

    def watchdog(self, ms):
        return None  # systemd's WatchdogSec is the Pi's watchdog

    def keep_fed(self, wdt, ms):
        return False

    def reset(self):
        # Restart the node process in place: what a reboot means for a service.
        os.execv(sys.executable, [sys.executable] + sys.argv)
