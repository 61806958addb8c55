"""Sensor drivers against register-level models of the parts (no I2C bus or
ADC exists here): BME280 compensation versus the datasheet's floating-point
formulas, the microphone envelope, and the digital input."""
import struct

import pytest

from node.sensors import make  # noqa: E402

# Calibration of a real part (the values Bosch's datasheet example uses).
T = (27504, 26435, -1000)
P = (36477, -10685, 3024, 2855, 140, -7, 15500, -14600, 6000)
H = (75, 362, 0, 324, 0, 30)


class Bme280Regs:
    """A BME280's register file: chip id, calibration, the data registers."""

    def __init__(self, adc_p, adc_t, adc_h):
        self.mem = bytearray(256)
        self.mem[0xD0] = 0x60
        self.mem[0x88:0x88 + 24] = struct.pack("<HhhHhhhhhhhh", *T, *P)
        self.mem[0xA1] = H[0]
        h4, h5 = H[3], H[4]
        self.mem[0xE1:0xE8] = struct.pack("<hB", H[1], H[2]) + bytes(
            (h4 >> 4, (h4 & 0x0F) | ((h5 & 0x0F) << 4), h5 >> 4, H[5] & 0xFF))
        self.mem[0xF7:0xFF] = bytes((adc_p >> 12, (adc_p >> 4) & 0xFF, (adc_p & 0xF) << 4,
                                     adc_t >> 12, (adc_t >> 4) & 0xFF, (adc_t & 0xF) << 4,
                                     adc_h >> 8, adc_h & 0xFF))
        self.writes = []

    def readfrom_mem_into(self, addr, reg, buf):
        assert addr == 0x76
        buf[:] = self.mem[reg:reg + len(buf)]

    def writeto_mem(self, addr, reg, data):
        self.writes.append((reg, bytes(data)))


class Hal:
    def __init__(self, bus):
        self.bus = bus

    def i2c(self, bus, sda, scl):
        return self.bus


def reference(adc_p, adc_t, adc_h):
    """The datasheet's double-precision compensation (section 8.1)."""
    v1 = (adc_t / 16384 - T[0] / 1024) * T[1]
    v2 = (adc_t / 131072 - T[0] / 8192) ** 2 * T[2]
    t_fine = v1 + v2
    temp = t_fine / 5120
    v1 = t_fine / 2 - 64000
    v2 = v1 * v1 * P[5] / 32768 + v1 * P[4] * 2
    v2 = v2 / 4 + P[3] * 65536
    v1 = (P[2] * v1 * v1 / 524288 + P[1] * v1) / 524288
    v1 = (1 + v1 / 32768) * P[0]
    p = 1048576 - adc_p
    p = (p - v2 / 4096) * 6250 / v1
    v1 = P[8] * p * p / 2147483648
    v2 = p * P[7] / 32768
    pres = p + (v1 + v2 + P[6]) / 16
    h = t_fine - 76800
    h = (adc_h - (H[3] * 64 + H[4] / 16384 * h)) * (
        H[1] / 65536 * (1 + H[5] / 67108864 * h * (1 + H[2] / 67108864 * h)))
    hum = min(100.0, max(0.0, h * (1 - H[0] * h / 524288)))
    return temp, pres, hum


@pytest.mark.parametrize("adc_p,adc_t,adc_h", [
    (415148, 519888, 30000), (300000, 480000, 20000), (500000, 560000, 40000),
])
def test_bme280_matches_the_datasheet(adc_p, adc_t, adc_h):
    temp, pres, hum = reference(adc_p, adc_t, adc_h)
    spec = {"kind": "bme280", "name": "env", "i2c": {"bus": 1, "addr": 0x76}}
    regs = Bme280Regs(adc_p, adc_t, adc_h)
    got = [make(Hal(regs), dict(spec, field=f)).read()
           for f in ("temperature", "pressure", "humidity")]
    assert abs(got[0] / 100 - temp) < 0.01  # centi-degrees C
    assert abs(got[1] - pres) < 1.0  # pascals
    assert abs(got[2] / 1024 - hum) < 0.05  # 1/1024 % RH
    assert (0xF4, b"\x27") in regs.writes  # normal mode was switched on


def test_bme280_absent_is_a_clear_error():
    regs = Bme280Regs(0, 0, 0)
    regs.mem[0xD0] = 0x58  # a BMP280 answers instead
    with pytest.raises(OSError, match="no BME280 at 0x76"):
        make(Hal(regs), {"kind": "bme280", "name": "env", "i2c": {"addr": 0x76}})


class Ramp:
    def __init__(self, values):
        self.values = list(values)

    def read(self):
        return self.values.pop(0)


def test_mic_envelope_is_peak_to_peak_of_the_window():
    class H2:
        def adc(self, pin):
            return Ramp([100, 900, 300, 500] * 2)

    mic = make(H2(), {"kind": "mic", "name": "mic", "pin": 35, "window": 4})
    assert mic.read() == 800 and mic.read() == 800


def test_digital_input_reads_the_pin():
    class H3:
        def pin_in(self, pin, pull):
            assert (pin, pull) == (0, "up")
            return Ramp([1, 0, 1])

    d = make(H3(), {"kind": "digital", "name": "btn", "pin": 0, "pull": "up"})
    assert [d.read(), d.read(), d.read()] == [1, 0, 1]
