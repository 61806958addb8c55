"""Board definitions: the per-chip pin tables (part of becomingone.boards).

The real pin facts of each chip a board can use, which chip each shipped
board id has, and the GPIO check built on them.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from becomingone.boards.checks import BoardError, check_choice, is_int, pin_ranges, show


def _pins(*spans: int | tuple[int, int]) -> frozenset[int]:
    out: set[int] = set()
    for s in spans:
        if isinstance(s, tuple):
            out.update(range(s[0], s[1] + 1))
        else:
            out.add(s)
    return frozenset(out)


@dataclass(frozen=True)
class Chip:
    name: str
    runtime: str
    hal: str
    gpio: frozenset[int]  # usable GPIO numbers
    adc: frozenset[int] = frozenset()  # ADC pins usable while Wi-Fi is on
    adc_no_wifi: frozenset[int] = frozenset()  # more ADC pins when Wi-Fi is off
    input_only: frozenset[int] = frozenset()
    no_pull: frozenset[int] = frozenset()  # inputs without internal pull resistors
    named_pins: frozenset[str] = frozenset()  # string pins (LED only)
    wifi: bool = False
    ble: bool = False
    mcu_temp: bool = True
    pull: bool = True  # can the HAL set a pull at all
    # I2C bus -> (SDA pins, SCL pins); None = any output-capable GPIO.
    i2c: dict[int, tuple[frozenset[int], frozenset[int]] | None] = field(default_factory=dict)
    pwm: frozenset[int] | None = None  # None = any output pin
    neopixel: bool = True
    watchdog_max: int = 600_000


_RP2040_I2C: dict[int, tuple[frozenset[int], frozenset[int]] | None] = {
    0: (_pins(0, 4, 8, 12, 16, 20), _pins(1, 5, 9, 13, 17, 21)),
    1: (_pins(2, 6, 10, 14, 18, 26), _pins(3, 7, 11, 15, 19, 27)),
}

CHIPS: dict[str, Chip] = {
    # ESP32-WROOM-32: GPIO6-11 are the flash, 1/3 the USB serial (REPL);
    # ADC2 is taken by the Wi-Fi driver, so only ADC1 (32-39) works with it.
    "esp32": Chip(
        "esp32", "micropython", "machine",
        gpio=_pins(0, 2, 4, 5, (12, 19), (21, 23), (25, 27), (32, 39)),
        adc=_pins((32, 39)),
        adc_no_wifi=_pins(0, 2, 4, (12, 15), (25, 27)),
        input_only=_pins((34, 39)), no_pull=_pins((34, 39)),
        wifi=True, ble=True, mcu_temp=False,
        i2c={0: None, 1: None},
    ),
    # ESP32-S3-DevKitC-1: 19/20 USB, 26-37 flash/PSRAM, 43/44 UART0;
    # ADC1 on GPIO1-10, ADC2 (11-20) unusable with Wi-Fi.
    "esp32s3": Chip(
        "esp32s3", "micropython", "machine",
        gpio=_pins((0, 18), 21, (38, 42), (45, 48)),
        adc=_pins((1, 10)),
        adc_no_wifi=_pins((11, 18)),
        wifi=True, ble=True,
        i2c={0: None, 1: None},
    ),
    # Raspberry Pi Pico: GPIO23/24/29 are internal (SMPS, VBUS, VSYS/3),
    # GPIO25 the LED; ADC0-2 on GPIO26-28, the temperature sensor is ADC4.
    # The watchdog counts at most 8388 ms (RP2040-E1).
    "rp2040": Chip(
        "rp2040", "micropython", "machine",
        gpio=_pins((0, 22), 25, (26, 28)),
        adc=_pins(26, 27, 28),
        named_pins=frozenset({"LED"}),
        i2c=_RP2040_I2C,
        watchdog_max=8388,
    ),
    # Pico W: GPIO23/24/25/29 belong to the CYW43; its LED is Pin("LED").
    "rp2040w": Chip(
        "rp2040w", "micropython", "machine",
        gpio=_pins((0, 22), (26, 28)),
        adc=_pins(26, 27, 28),
        named_pins=frozenset({"LED"}),
        wifi=True, ble=True,
        i2c=_RP2040_I2C,
        watchdog_max=8388,
    ),
    # Pi Zero W (BCM2835, CPython): BCM GPIO2-27, 0/1 are the HAT EEPROM bus;
    # I2C bus 1 on 2/3; sysfs GPIO sets no pulls; hardware PWM on 12/13/18/19;
    # no ADC and no NeoPixel driver.
    "bcm2835": Chip(
        "bcm2835", "cpython", "pi",
        gpio=_pins((2, 27)),
        wifi=True, ble=True, pull=False,
        i2c={1: (_pins(2), _pins(3))},
        pwm=_pins(12, 13, 18, 19),
        neopixel=False,
    ),
    # The sim HAL: no real pins; any small number names a simulated one.
    "sim": Chip(
        "sim", "any", "sim",
        gpio=_pins((0, 63)),
        adc=_pins((0, 63)),
        named_pins=frozenset({"LED"}),
        wifi=True, ble=True,
        i2c={0: None, 1: None},
    ),
}

# The chip of each shipped board id (a custom board names its "chip").
BOARD_CHIPS = {
    "esp32-devkit": "esp32",
    "esp32-s3": "esp32s3",
    "pico": "rp2040",
    "pico-w": "rp2040w",
    "pi-zero-w": "bcm2835",
    "sim": "sim",
}


def chip_for(data: dict[str, Any]) -> Chip:
    """The Chip of a board: its "chip" key, or the one its shipped board id has."""
    bid = data["board"]
    if "chip" in data:
        name = check_choice("chip", data["chip"], tuple(CHIPS))
        if bid in BOARD_CHIPS and BOARD_CHIPS[bid] != name:
            raise BoardError("chip", f"{bid} is a {BOARD_CHIPS[bid]}, not {name}")
        return CHIPS[name]
    if bid not in BOARD_CHIPS:
        raise BoardError("chip", f"missing: a custom board must name its chip "
                         f"({', '.join(CHIPS)})")
    return CHIPS[BOARD_CHIPS[bid]]


def check_gpio(path: str, pin: Any, chip: Chip, board: str, output: bool = False) -> int:
    """``pin`` if it is a usable GPIO of ``chip`` (and not input-only for an
    ``output``), else BoardError at ``path``."""
    if not is_int(pin):
        raise BoardError(path, f"expected a GPIO number, got {show(pin)}")
    if pin not in chip.gpio:
        raise BoardError(path, f"{pin} is not a usable GPIO on {board} ({pin_ranges(chip.gpio)})")
    if output and pin in chip.input_only:
        raise BoardError(path, f"GPIO{pin} is input-only on {board} "
                         f"({pin_ranges(chip.input_only)})")
    return pin
