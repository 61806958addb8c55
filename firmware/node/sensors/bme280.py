"""Bosch BME280 temperature / pressure / humidity over I2C.

Integer compensation from the datasheet (section 4.2.3).  Readings use a
preallocated buffer; the compensation maths can pass 2**30 and so may
allocate on MicroPython, which is why BME280 channels want a slow period.
read() returns centi-degrees C, pascals or 1/1024 % RH (the datasheet's
units) for the configured field.
"""
from array import array

_REG_CALIB1 = 0x88  # 26 bytes: T1..T3, P1..P9, H1
_REG_CALIB2 = 0xE1  # 7 bytes: H2..H6
_REG_ID = 0xD0
_REG_CTRL_HUM = 0xF2
_REG_CTRL_MEAS = 0xF4
_REG_DATA = 0xF7  # 8 bytes: press[3], temp[3], hum[2]
_CHIP_ID = 0x60
_FIELDS = ("temperature", "pressure", "humidity")


def _u16(b, i):
    return b[i] | (b[i + 1] << 8)


def _s16(b, i):
    v = _u16(b, i)
    return v - 65536 if v & 0x8000 else v


class Bme280:
    def __init__(self, hal, spec):
        i2c = spec.get("i2c", {})
        self._bus = hal.i2c(i2c.get("bus", 0), i2c.get("sda"), i2c.get("scl"))
        self._addr = i2c.get("addr", 0x76)
        field = spec.get("field", "temperature")
        if field not in _FIELDS:
            raise ValueError("field must be one of %s, got %r" % (", ".join(_FIELDS), field))
        self._field = _FIELDS.index(field)
        self._buf = bytearray(8)
        self._one = bytearray(1)
        self._bus.readfrom_mem_into(self._addr, _REG_ID, self._one)
        if self._one[0] != _CHIP_ID:
            raise OSError("no BME280 at 0x%02x (chip id 0x%02x)" % (self._addr, self._one[0]))
        self._calibrate()
        # Humidity x1, then temperature x1 / pressure x1 in normal mode.
        self._bus.writeto_mem(self._addr, _REG_CTRL_HUM, b"\x01")
        self._bus.writeto_mem(self._addr, _REG_CTRL_MEAS, b"\x27")

    def _calibrate(self):
        c = bytearray(26)
        self._bus.readfrom_mem_into(self._addr, _REG_CALIB1, c)
        h = bytearray(7)
        self._bus.readfrom_mem_into(self._addr, _REG_CALIB2, h)
        t = array("i", [_u16(c, 0), _s16(c, 2), _s16(c, 4)])
        p = array("i", [_u16(c, 6)] + [_s16(c, 8 + 2 * i) for i in range(8)])
        e4 = h[4]
        hh = array("i", [c[25], _s16(h, 0), h[2], (h[3] << 4) | (e4 & 0x0F),
                         (h[5] << 4) | (e4 >> 4), h[6] - 256 if h[6] & 0x80 else h[6]])
        self._t, self._p, self._h = t, p, hh

    def read(self):
        b = self._buf
        self._bus.readfrom_mem_into(self._addr, _REG_DATA, b)
        adc_p = (b[0] << 12) | (b[1] << 4) | (b[2] >> 4)
        adc_t = (b[3] << 12) | (b[4] << 4) | (b[5] >> 4)
        adc_h = (b[6] << 8) | b[7]
        t_fine = self._t_fine(adc_t)
        if self._field == 0:
            return (t_fine * 5 + 128) >> 8
        if self._field == 1:
            return self._pressure(adc_p, t_fine)
        return self._humidity(adc_h, t_fine)

    def _t_fine(self, adc_t):
        t1, t2, t3 = self._t
        v1 = (((adc_t >> 3) - (t1 << 1)) * t2) >> 11
        v2 = (((((adc_t >> 4) - t1) * ((adc_t >> 4) - t1)) >> 12) * t3) >> 14
        return v1 + v2

    def _pressure(self, adc_p, t_fine):
        p = self._p
        v1 = t_fine - 128000
        v2 = v1 * v1 * p[5]
        v2 += (v1 * p[4]) << 17
        v2 += p[3] << 35
        v1 = ((v1 * v1 * p[2]) >> 8) + ((v1 * p[1]) << 12)
        v1 = (((1 << 47) + v1) * p[0]) >> 33
        if v1 == 0:
            return 0  # the datasheet's guard against division by zero
        q = 1048576 - adc_p
        q = (((q << 31) - v2) * 3125) // v1
        v1 = (p[8] * (q >> 13) * (q >> 13)) >> 25
        v2 = (p[7] * q) >> 19
        return (((q + v1 + v2) >> 8) + (p[6] << 4)) >> 8  # Q24.8 Pa -> Pa

    def _humidity(self, adc_h, t_fine):
        h1, h2, h3, h4, h5, h6 = self._h
        v = t_fine - 76800
        v = ((((adc_h << 14) - (h4 << 20) - (h5 * v)) + 16384) >> 15) * (
            ((((((v * h6) >> 10) * (((v * h3) >> 11) + 32768)) >> 10) + 2097152) * h2 + 8192)
            >> 14
        )
        v -= ((((v >> 15) * (v >> 15)) >> 7) * h1) >> 4
        v = 0 if v < 0 else v
        v = 419430400 if v > 419430400 else v
        return v >> 12
