"""Board definitions (``boards/*.json``) and per-node configs: load and validate.

A board definition says what a node can run: its runtime and HAL, which pins
its sensors and outputs use, and each sensor's Normalizer and kairos.Channel
settings.  The node firmware only does a small check (it must fit on a
board); this is the full one, run on the hub and by ``becomingone boards
check``.  Every error is a BoardError naming the field, e.g.
``sensors[1].pin: 40 is not an ADC pin on esp32-devkit (32-39)``.

Raw units the HAL hands to the Normalizer (what ``offset``/``mul``/``shift``
must map to Q14):

- ``adc``: ``read_u16`` (0..65535, ``adc_bits`` 16) on the machine HAL;
- ``mic``: peak-to-peak of ``window`` ADC reads, same units;
- ``mcu_temp``: centi-degrees C (ESP32-S3, Pi, sim), the raw ``read_u16`` of
  ADC4 on an RP2040 (about 14022 at 27 C, -34 per degree);
- ``bme280``: centi-degrees C, pascals, or 1/1024 %RH (the datasheet's units);
- ``digital``: 0 or 1;  ``sim``: the synthesised value itself.

Optional keys beyond the firmware's schema: ``chip`` (which pin table the
board uses; implied by the shipped board ids) and ``notes`` (free text, as
JSON has no comments).
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = [
    "BoardError",
    "boards_dir",
    "list_boards",
    "load_board",
    "load_json",
    "validate_board",
    "validate_node_config",
    "merged_config",
    "check_file",
]


class BoardError(ValueError):
    """A bad board definition or node config; the message starts with the field path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


# -- chips: the real pin facts ------------------------------------------------


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

RUNTIMES = ("micropython", "cpython", "any")
HALS = ("machine", "pi", "sim")
TRANSPORTS = ("serial", "mqtt", "ble")
SENSOR_KINDS = ("adc", "mcu_temp", "bme280", "mic", "digital", "sim")
OUTPUT_KINDS = ("led", "neopixel", "buzzer", "motor")
BME280_FIELDS = ("temperature", "pressure", "humidity")
BME280_ADDRS = (0x76, 0x77)

# Kernel defaults (kairos.Normalizer / kairos.Channel).
CHANNEL_DEFAULTS: dict[str, Any] = {
    "offset": 0, "mul": 1, "shift": 0,
    "lags": [2, 4, 8, 16], "s": 8, "s0": 2, "omega": 0,
    "ic": 22938, "hysteresis": 1638, "dwell": 4,
}
_KIND_DEFAULTS: dict[str, dict[str, Any]] = {
    "adc": {},
    "mcu_temp": {},
    "bme280": {"field": "temperature"},
    "mic": {"window": 16},
    "digital": {"pull": None},
    "sim": {"period": 32, "amp": 8000, "noise": 0, "dc": 0, "burst_every": 0, "burst_len": 0,
            "seed": 1},
}
_KIND_KEYS = {k: {"name", "kind", *d, *CHANNEL_DEFAULTS} for k, d in _KIND_DEFAULTS.items()}
_KIND_KEYS["adc"].add("pin")
_KIND_KEYS["mic"].add("pin")
_KIND_KEYS["digital"].add("pin")
_KIND_KEYS["bme280"].add("i2c")
_OUTPUT_KEYS = {
    "led": {"name", "kind", "pin"},
    "neopixel": {"name", "kind", "pin", "count"},
    "buzzer": {"name", "kind", "pin"},
    "motor": {"name", "kind", "pin", "freq"},
}
_OUTPUT_DEFAULTS: dict[str, dict[str, Any]] = {
    "neopixel": {"count": 1},
    "motor": {"freq": 1000},
}
_BOARD_REQUIRED = (
    "board", "title", "runtime", "hal", "weight", "period_ms", "report_every",
    "watchdog_ms", "transports", "wifi", "ble", "adc_bits", "sensors",
)
_BOARD_KEYS = {*_BOARD_REQUIRED, "outputs", "chip", "notes"}

_NAME_RE = re.compile(r"[a-z0-9_-]{1,16}")
_NODE_RE = re.compile(r"[A-Za-z0-9_.-]{1,32}")
_BOARD_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")

# Node configs: keys that may override the board definition, and their own keys.
NODE_OVERRIDES = ("period_ms", "report_every", "weight", "sensors", "outputs", "watchdog_ms", "hal")
_NODE_KEYS = {
    "node", "board", "transport", "wifi", "mqtt", "seed", "serial", "realtime", "clock_start",
    *NODE_OVERRIDES,
}
_SECRET_KEYS = ("password",)
_MQTT_DEFAULTS: dict[str, Any] = {
    "port": 1883, "user": None, "password": None, "prefix": "becomingone", "keepalive": 30,
}


# -- small checkers -----------------------------------------------------------


def _kind_of(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int):
        return "an integer"
    if isinstance(value, float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return type(value).__name__


def _show(value: Any) -> str:
    """A short, safe rendering of a scalar; containers only by their type."""
    if isinstance(value, str):
        return repr(value)  # never truncated: a secret in it must stay maskable whole
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return _kind_of(value)


def _ranges(pins: frozenset[int]) -> str:
    """{32, 33, 34, 36} -> '32-34, 36'."""
    out: list[str] = []
    nums = sorted(pins)
    i = 0
    while i < len(nums):
        j = i
        while j + 1 < len(nums) and nums[j + 1] == nums[j] + 1:
            j += 1
        out.append(str(nums[i]) if i == j else f"{nums[i]}-{nums[j]}")
        i = j + 1
    return ", ".join(out)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _int(path: str, value: Any, lo: int, hi: int) -> int:
    if not _is_int(value):
        raise BoardError(path, f"expected an integer, got {_show(value)}")
    if not lo <= value <= hi:
        raise BoardError(path, f"{value} is out of range {lo}..{hi}")
    return value


def _str(path: str, value: Any, secret: bool = False) -> str:
    if not isinstance(value, str):
        got = _kind_of(value) if secret else _show(value)
        raise BoardError(path, f"expected a string, got {got}")
    return value


def _bool(path: str, value: Any) -> bool:
    if not isinstance(value, bool):
        raise BoardError(path, f"expected true or false, got {_show(value)}")
    return value


def _obj(path: str, value: Any) -> dict[str, Any]:
    if not isinstance(value, dict):
        raise BoardError(path or "(top level)", f"expected an object, got {_kind_of(value)}")
    return value


def _list(path: str, value: Any, lo: int, hi: int) -> list[Any]:
    if not isinstance(value, list):
        raise BoardError(path, f"expected a list, got {_kind_of(value)}")
    if not lo <= len(value) <= hi:
        raise BoardError(path, f"must hold {lo}..{hi} entries, got {len(value)}")
    return value


def _choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    if value not in choices or not isinstance(value, str):
        raise BoardError(path, f"{_show(value)} is not one of {', '.join(choices)}")
    return value


def _keys(
    path: str, obj: dict[str, Any], allowed: set[str], required: tuple[str, ...] = ()
) -> None:
    for key in required:
        if key not in obj:
            raise BoardError(f"{path}.{key}" if path else key, "missing")
    for key in obj:
        if key not in allowed:
            raise BoardError(f"{path}.{key}" if path else str(key), "unknown key")


def _p(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


# -- the kernel's own ranges --------------------------------------------------


def _check_channel(path: str, s: dict[str, Any]) -> None:
    """Normalizer and Channel arguments, with exactly the kernel's ranges."""
    off = s["offset"]
    if not _is_int(off) or not -(1 << 29) < off < (1 << 29):
        raise BoardError(_p(path, "offset"), f"must be an integer with |offset| < 2**29, "
                         f"got {_show(off)}")
    mul = s["mul"]
    if not _is_int(mul) or mul == 0 or not -32768 < mul < 32768:
        raise BoardError(_p(path, "mul"), f"must be a non-zero integer with |mul| < 32768, "
                         f"got {_show(mul)}")
    _int(_p(path, "shift"), s["shift"], 0, 14)
    lags = s["lags"]
    if not isinstance(lags, list):
        raise BoardError(_p(path, "lags"), f"expected a list, got {_kind_of(lags)}")
    if not 1 <= len(lags) <= 8:
        raise BoardError(_p(path, "lags"), f"must hold 1..8 lags, got {len(lags)}")
    prev = 0
    for i, lag in enumerate(lags):
        if not _is_int(lag):
            raise BoardError(f"{_p(path, 'lags')}[{i}]", f"expected an integer, got {_show(lag)}")
        if lag <= prev:
            raise BoardError(_p(path, "lags"),
                             f"must be strictly increasing integers >= 1, got {lags}")
        prev = lag
    if prev > 1024:
        raise BoardError(_p(path, "lags"), f"must not exceed 1024 samples, got {prev}")
    _int(_p(path, "s"), s["s"], 4, 12)
    _int(_p(path, "s0"), s["s0"], 0, 6)
    _int(_p(path, "omega"), s["omega"], 0, 65535)
    ic = _int(_p(path, "ic"), s["ic"], 1, 32767)
    _int(_p(path, "hysteresis"), s["hysteresis"], 0, ic - 1)
    _int(_p(path, "dwell"), s["dwell"], 1, 1 << 20)


# -- board definitions --------------------------------------------------------


class _Pins:
    """Which pin each sensor/output uses, so no two claim the same one."""

    def __init__(self, board: str) -> None:
        self.board = board
        self.used: dict[int | str, str] = {}
        self.buses: dict[int, tuple[Any, Any, str]] = {}

    def claim(self, path: str, pin: int | str) -> None:
        if pin in self.used:
            raise BoardError(path, f"pin {pin} is already used by {self.used[pin]}")
        self.used[pin] = path

    def bus(self, path: str, bus: int, sda: Any, scl: Any) -> None:
        if bus in self.buses:
            sda0, scl0, where = self.buses[bus]
            if (sda0, scl0) != (sda, scl):
                raise BoardError(path, f"I2C bus {bus} is already on sda {sda0}/scl {scl0} "
                                 f"({where})")
            return
        self.buses[bus] = (sda, scl, path)
        for pin in (sda, scl):
            if pin is not None:
                self.claim(path, pin)


def _gpio(path: str, pin: Any, chip: Chip, board: str, output: bool = False) -> int:
    if not _is_int(pin):
        raise BoardError(path, f"expected a GPIO number, got {_show(pin)}")
    if pin not in chip.gpio:
        raise BoardError(path, f"{pin} is not a usable GPIO on {board} ({_ranges(chip.gpio)})")
    if output and pin in chip.input_only:
        raise BoardError(path, f"GPIO{pin} is input-only on {board} "
                         f"({_ranges(chip.input_only)})")
    return pin


def _sensor(path: str, raw: Any, board: dict[str, Any], chip: Chip, pins: _Pins) -> dict:
    s = dict(_obj(path, raw))
    _keys(path, s, {"name", "kind"} | set().union(*_KIND_KEYS.values()), ("name", "kind"))
    name = _str(_p(path, "name"), s["name"])
    if not _NAME_RE.fullmatch(name):
        raise BoardError(_p(path, "name"), f"{_show(name)} must be 1..16 characters [a-z0-9_-]")
    kind = _choice(_p(path, "kind"), s["kind"], SENSOR_KINDS)
    _keys(path, s, _KIND_KEYS[kind])
    for key, value in {**CHANNEL_DEFAULTS, **_KIND_DEFAULTS[kind]}.items():
        s.setdefault(key, copy.copy(value))
    _check_channel(path, s)
    bid = board["board"]
    wifi_on = "mqtt" in board["transports"]

    if kind in ("adc", "mic"):
        if "pin" not in s:
            raise BoardError(_p(path, "pin"), "missing")
        adc = chip.adc if wifi_on else chip.adc | chip.adc_no_wifi
        if not adc:
            raise BoardError(_p(path, "kind"), f"{kind!r} needs an ADC; {bid} has none")
        pin = s["pin"]
        if not _is_int(pin):
            raise BoardError(_p(path, "pin"), f"expected an ADC pin number, got {_show(pin)}")
        if pin not in adc:
            extra = (" while Wi-Fi (mqtt) is used" if wifi_on and pin in chip.adc_no_wifi
                     else "")
            raise BoardError(_p(path, "pin"), f"{pin} is not an ADC pin on {bid}{extra} "
                             f"({_ranges(adc)})")
        pins.claim(_p(path, "pin"), pin)
        if board["adc_bits"] and not 0 <= s["offset"] < 1 << board["adc_bits"]:
            raise BoardError(_p(path, "offset"), f"{_show(s['offset'])} is outside the "
                             f"{board['adc_bits']}-bit ADC range 0..{(1 << board['adc_bits']) - 1}")
        if kind == "mic":
            _int(_p(path, "window"), s["window"], 1, 256)
    elif kind == "digital":
        if "pin" not in s:
            raise BoardError(_p(path, "pin"), "missing")
        pin = _gpio(_p(path, "pin"), s["pin"], chip, bid)
        pins.claim(_p(path, "pin"), pin)
        pull = s["pull"]
        if pull is not None:
            _choice(_p(path, "pull"), pull, ("up", "down"))
            if not chip.pull and board["hal"] != "sim":
                raise BoardError(_p(path, "pull"), f"{bid} GPIO (sysfs) cannot set a pull; "
                                 "use null and an external resistor")
            if pin in chip.no_pull:
                raise BoardError(_p(path, "pull"), f"GPIO{pin} has no internal pull resistor "
                                 f"on {bid} ({_ranges(chip.no_pull)}); use null")
    elif kind == "mcu_temp":
        if not chip.mcu_temp:
            raise BoardError(_p(path, "kind"),
                             f"'mcu_temp': {bid} has no usable internal temperature sensor")
    elif kind == "bme280":
        _bme280(_p(path, "i2c"), s, chip, bid, pins)
        _choice(_p(path, "field"), s["field"], BME280_FIELDS)
    else:  # sim
        _int(_p(path, "period"), s["period"], 2, 65535)
        _int(_p(path, "amp"), s["amp"], 0, 16384)
        _int(_p(path, "noise"), s["noise"], 0, 16384)
        _int(_p(path, "dc"), s["dc"], -(1 << 20), 1 << 20)  # the signal's DC level
        every = _int(_p(path, "burst_every"), s["burst_every"], 0, 65535)
        _int(_p(path, "burst_len"), s["burst_len"], 0, every)
        _int(_p(path, "seed"), s["seed"], 0, (1 << 30) - 1)
    return s


def _bme280(path: str, s: dict[str, Any], chip: Chip, bid: str, pins: _Pins) -> None:
    if "i2c" not in s:
        raise BoardError(path, "missing")
    i2c = dict(_obj(path, s["i2c"]))
    _keys(path, i2c, {"bus", "sda", "scl", "addr"})
    if not chip.i2c:
        raise BoardError(path, f"{bid} has no I2C bus")
    buses = tuple(sorted(chip.i2c))
    i2c.setdefault("bus", buses[0])
    bus = _int(_p(path, "bus"), i2c["bus"], 0, 255)
    if bus not in chip.i2c:
        raise BoardError(_p(path, "bus"), f"{bus} is not an I2C bus on {bid} "
                         f"({', '.join(map(str, buses))})")
    fixed = chip.i2c[bus]
    if fixed is not None and len(fixed[0]) == 1 and len(fixed[1]) == 1:
        i2c.setdefault("sda", next(iter(fixed[0])))
        i2c.setdefault("scl", next(iter(fixed[1])))
    i2c.setdefault("sda", None)
    i2c.setdefault("scl", None)
    if (i2c["sda"] is None) != (i2c["scl"] is None):
        raise BoardError(path, "give both sda and scl, or neither (the port's default pins)")
    for line, idx in (("sda", 0), ("scl", 1)):
        pin = i2c[line]
        if pin is None:
            continue
        _gpio(_p(path, line), pin, chip, bid, output=True)
        if fixed is not None and pin not in fixed[idx]:
            raise BoardError(_p(path, line), f"{pin} is not an {line.upper()} pin of I2C bus "
                             f"{bus} on {bid} ({_ranges(fixed[idx])})")
    if i2c["sda"] is not None and i2c["sda"] == i2c["scl"]:
        raise BoardError(_p(path, "scl"), "must differ from sda")
    addr = i2c.setdefault("addr", 0x76)
    if not _is_int(addr) or addr not in BME280_ADDRS:
        raise BoardError(_p(path, "addr"), f"{_show(addr)} is not a BME280 address "
                         "(118 = 0x76 or 119 = 0x77)")
    pins.bus(path, bus, i2c["sda"], i2c["scl"])
    s["i2c"] = i2c


def _output(path: str, raw: Any, board: dict[str, Any], chip: Chip, pins: _Pins) -> dict:
    o = dict(_obj(path, raw))
    _keys(path, o, {"name", "kind", "pin", "count", "freq"}, ("name", "kind", "pin"))
    name = _str(_p(path, "name"), o["name"])
    if not _NAME_RE.fullmatch(name):
        raise BoardError(_p(path, "name"), f"{_show(name)} must be 1..16 characters [a-z0-9_-]")
    kind = _choice(_p(path, "kind"), o["kind"], OUTPUT_KINDS)
    _keys(path, o, _OUTPUT_KEYS[kind])
    for key, value in _OUTPUT_DEFAULTS.get(kind, {}).items():
        o.setdefault(key, value)
    bid = board["board"]
    pin = o["pin"]
    if isinstance(pin, str):
        if kind != "led" or pin not in chip.named_pins:
            names = ", ".join(sorted(chip.named_pins)) or "none"
            raise BoardError(_p(path, "pin"), f"{_show(pin)} is not a named {kind} pin on "
                             f"{bid} (named pins: {names})")
    else:
        _gpio(_p(path, "pin"), pin, chip, bid, output=True)
    if kind == "neopixel":
        if not chip.neopixel:
            raise BoardError(_p(path, "kind"), f"'neopixel': {bid} has no NeoPixel driver")
        _int(_p(path, "count"), o["count"], 1, 1024)
    if kind in ("buzzer", "motor") and chip.pwm is not None and pin not in chip.pwm:
        raise BoardError(_p(path, "pin"), f"{pin} has no hardware PWM on {bid} "
                         f"({_ranges(chip.pwm)})")
    if kind == "motor":
        _int(_p(path, "freq"), o["freq"], 1, 40000)
    pins.claim(_p(path, "pin"), pin)
    return o


def _chip_for(data: dict[str, Any]) -> Chip:
    bid = data["board"]
    if "chip" in data:
        name = _choice("chip", data["chip"], tuple(CHIPS))
        if bid in BOARD_CHIPS and BOARD_CHIPS[bid] != name:
            raise BoardError("chip", f"{bid} is a {BOARD_CHIPS[bid]}, not {name}")
        return CHIPS[name]
    if bid not in BOARD_CHIPS:
        raise BoardError("chip", f"missing: a custom board must name its chip "
                         f"({', '.join(CHIPS)})")
    return CHIPS[BOARD_CHIPS[bid]]


def validate_board(data: dict) -> dict:
    """Check a board definition; return a copy with every default filled in."""
    b = copy.deepcopy(_obj("", data))
    _keys("", b, _BOARD_KEYS, _BOARD_REQUIRED)
    bid = _str("board", b["board"])
    if not _BOARD_ID_RE.fullmatch(bid):
        raise BoardError("board", f"{_show(bid)} must be 1..32 characters [a-z0-9_-]")
    title = _str("title", b["title"])
    if not title.strip():
        raise BoardError("title", "must not be empty")
    if "notes" in b:
        _str("notes", b["notes"])
    chip = _chip_for(b)
    b["chip"] = chip.name
    runtime = _choice("runtime", b["runtime"], RUNTIMES)
    if runtime != chip.runtime:
        raise BoardError("runtime", f"{bid} runs {chip.runtime!r}, not {runtime!r}")
    hal = _choice("hal", b["hal"], HALS)
    if hal not in (chip.hal, "sim"):
        raise BoardError("hal", f"{bid} uses the {chip.hal!r} (or 'sim') HAL, not {hal!r}")
    _int("weight", b["weight"], 1, 255)
    period = _int("period_ms", b["period_ms"], 1, 60000)
    _int("report_every", b["report_every"], 1, 65535)
    wd = _int("watchdog_ms", b["watchdog_ms"], 0, chip.watchdog_max)
    if wd and (wd < 1000 or wd <= 4 * period):
        raise BoardError("watchdog_ms", f"{wd} is too short: 0 (off) or >= 1000 and "
                         f"> 4 * period_ms = {4 * period}")
    wifi = _bool("wifi", b["wifi"])
    ble = _bool("ble", b["ble"])
    if wifi and not chip.wifi:
        raise BoardError("wifi", f"{bid} has no Wi-Fi")
    if ble and not chip.ble:
        raise BoardError("ble", f"{bid} has no Bluetooth LE")
    transports = _list("transports", b["transports"], 1, 3)
    for i, t in enumerate(transports):
        _choice(f"transports[{i}]", t, TRANSPORTS)
        if t in transports[:i]:
            raise BoardError(f"transports[{i}]", f"{t!r} is listed twice")
        if t == "mqtt" and not wifi:
            raise BoardError(f"transports[{i}]", "'mqtt' needs Wi-Fi, but wifi is false")
        if t == "ble" and not ble:
            raise BoardError(f"transports[{i}]", "'ble' needs Bluetooth LE, but ble is false")
    bits = _int("adc_bits", b["adc_bits"], 0, 16)
    if hal == "machine" and bits != 16:
        raise BoardError("adc_bits", f"the machine HAL reads ADCs with read_u16: 16, not {bits}")
    if not chip.adc and bits:
        raise BoardError("adc_bits", f"{bid} has no ADC: must be 0, not {bits}")

    pins = _Pins(bid)
    sensors = _list("sensors", b["sensors"], 1, 8)
    b["sensors"] = [_sensor(f"sensors[{i}]", s, b, chip, pins) for i, s in enumerate(sensors)]
    _unique("sensors", b["sensors"])
    outputs = _list("outputs", b.get("outputs", []), 0, 8)
    b["outputs"] = [_output(f"outputs[{i}]", o, b, chip, pins) for i, o in enumerate(outputs)]
    _unique("outputs", b["outputs"])
    return b


def _unique(path: str, items: list[dict[str, Any]]) -> None:
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item["name"] in seen:
            raise BoardError(f"{path}[{i}].name", f"{item['name']!r} is already the name of "
                             f"{path}[{seen[item['name']]}]")
        seen[item["name"]] = i


# -- files --------------------------------------------------------------------


def boards_dir() -> Path:
    """The repository's boards/ directory (next to hub/)."""
    return Path(__file__).resolve().parent.parent / "boards"


def list_boards() -> list[str]:
    """The ids of the shipped boards, sorted."""
    return sorted(p.stem for p in boards_dir().glob("*.json"))


def load_json(path: str | Path) -> Any:
    """Read a JSON file; a BoardError gives line and column if it does not parse."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        raise BoardError("", f"{path}: no such file") from None
    except (OSError, UnicodeDecodeError) as exc:
        raise BoardError("", f"{path}: cannot read ({exc.__class__.__name__})") from None
    try:
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise BoardError("", f"invalid JSON at line {exc.lineno}, column {exc.colno}: "
                         f"{exc.msg}") from None


def _board_path(name_or_path: str | Path) -> Path:
    text = str(name_or_path)
    if isinstance(name_or_path, Path) or "/" in text or "\\" in text or text.endswith(".json"):
        return Path(name_or_path)
    known = list_boards()
    if text not in known:
        raise BoardError("board", f"unknown board {_show(text)} (known: {', '.join(known)})")
    return boards_dir() / f"{text}.json"


def load_board(name_or_path: str | Path) -> dict:
    """Load a shipped board by id, or a board file by path, and validate it."""
    path = _board_path(name_or_path)
    board = validate_board(load_json(path))
    if board["board"] != path.stem:
        raise BoardError("board", f"{board['board']!r} does not match the file name "
                         f"{path.name!r}")
    return board


# -- node configs -------------------------------------------------------------


def _secrets(cfg: Any) -> list[str]:
    found: list[str] = []
    if isinstance(cfg, dict):
        for key in ("wifi", "mqtt"):
            sub = cfg.get(key)
            if isinstance(sub, dict):
                for skey in _SECRET_KEYS:
                    value = sub.get(skey)
                    if isinstance(value, str) and value:
                        found.append(value)
    return found


def _scrubbed(exc: BoardError, cfg: Any) -> BoardError:
    """The same error with any secret value of cfg masked (belt and braces)."""
    reason = exc.reason
    for secret in _secrets(cfg):
        # A very short secret only where it is shown as a value, not inside words.
        reason = reason.replace(secret if len(secret) >= 4 else repr(secret), "***")
    return BoardError(exc.path, reason)


def _node_config(cfg: dict, board: dict | None) -> tuple[dict, dict]:
    c = copy.deepcopy(_obj("", cfg))
    _keys("", c, _NODE_KEYS, ("node", "board"))
    node = _str("node", c["node"])
    if not _NODE_RE.fullmatch(node):
        raise BoardError("node", f"{_show(node)} must be 1..32 characters [A-Za-z0-9_.-]")
    bid = _str("board", c["board"])
    if board is None:
        board = load_board(bid)
    elif bid != board["board"]:
        raise BoardError("board", f"the node config is for {bid!r}, not {board['board']!r}")
    transports = board["transports"]
    c.setdefault("transport", transports[0])
    t = c["transport"]
    if t not in transports or not isinstance(t, str):
        raise BoardError("transport", f"{_show(t)} is not a transport of {board['board']} "
                         f"({', '.join(transports)})")
    if "wifi" in c or t == "mqtt":
        if "wifi" not in c:
            raise BoardError("wifi", "missing: the mqtt transport needs {\"ssid\", \"password\"}")
        wifi = dict(_obj("wifi", c["wifi"]))
        _keys("wifi", wifi, {"ssid", "password"}, ("ssid", "password"))
        ssid = _str("wifi.ssid", wifi["ssid"])
        if not 1 <= len(ssid) <= 32:
            raise BoardError("wifi.ssid", f"must be 1..32 characters, got {len(ssid)}")
        _str("wifi.password", wifi["password"], secret=True)
        c["wifi"] = wifi
    if "mqtt" in c or t == "mqtt":
        if "mqtt" not in c:
            raise BoardError("mqtt", "missing: the mqtt transport needs at least {\"host\"}")
        mqtt = dict(_obj("mqtt", c["mqtt"]))
        _keys("mqtt", mqtt, {"host", *_MQTT_DEFAULTS}, ("host",))
        for key, value in _MQTT_DEFAULTS.items():
            mqtt.setdefault(key, value)
        host = _str("mqtt.host", mqtt["host"])
        if not host or len(host) > 253 or any(ch.isspace() for ch in host):
            raise BoardError("mqtt.host", f"{_show(host)} is not a host name")
        _int("mqtt.port", mqtt["port"], 1, 65535)
        if mqtt["user"] is not None:
            _str("mqtt.user", mqtt["user"])
        if mqtt["password"] is not None:
            _str("mqtt.password", mqtt["password"], secret=True)
        prefix = _str("mqtt.prefix", mqtt["prefix"])
        if not prefix or any(ch in prefix for ch in "+#") or prefix.strip("/") != prefix:
            raise BoardError("mqtt.prefix", f"{_show(prefix)} must be a topic without "
                             "wildcards or leading/trailing '/'")
        _int("mqtt.keepalive", mqtt["keepalive"], 1, 65535)
        c["mqtt"] = mqtt
    c.setdefault("seed", 1)
    _int("seed", c["seed"], 0, (1 << 30) - 1)
    if "serial" in c:
        _obj("serial", c["serial"])
    if "realtime" in c:
        _bool("realtime", c["realtime"])
    if "clock_start" in c:
        _int("clock_start", c["clock_start"], 0, (1 << 30) - 1)
    return c, board


def _merge(board: dict, c: dict) -> dict:
    effective = {k: copy.deepcopy(v) for k, v in board.items()}
    for key in NODE_OVERRIDES:
        if key in c:
            effective[key] = copy.deepcopy(c[key])
    merged = validate_board(effective)
    for key in ("node", "transport", "wifi", "mqtt", "serial", "seed", "realtime", "clock_start"):
        if key in c:
            merged[key] = copy.deepcopy(c[key])
    return merged


def validate_node_config(cfg: dict) -> dict:
    """Check a node config (as the flash tool writes it) against its shipped board.

    Returns the config with defaults filled in (transport, mqtt settings,
    seed).  Overrides of board keys are checked as the merged board.
    Passwords never appear in an error message.
    """
    try:
        c, board = _node_config(cfg, None)
        _merge(board, c)
        return c
    except BoardError as exc:
        raise _scrubbed(exc, cfg) from None


def merged_config(board: dict, cfg: dict) -> dict:
    """What the firmware effectively runs: the node config over the board definition.

    Like the firmware's merge, board keys overridden by the node (period_ms,
    report_every, weight, sensors, outputs, watchdog_ms, hal) are replaced,
    then the node's own keys are added: node, transport, wifi (its
    credentials object replaces the board's capability flag), mqtt, seed...
    """
    try:
        c, b = _node_config(cfg, validate_board(board))
        return _merge(b, c)
    except BoardError as exc:
        raise _scrubbed(exc, cfg) from None


def check_file(path: str | Path) -> str:
    """Validate a board definition or node config file; return which it was."""
    data = load_json(path)
    if isinstance(data, dict) and "node" in data:
        validate_node_config(data)
        return "node config"
    load_board(Path(path))
    return "board"
