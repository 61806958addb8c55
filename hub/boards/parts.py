"""Board definitions: sensor, output and kairos.Channel checks (part of becomingone.boards).

See becomingone.boards for the raw units each sensor kind hands to the Normalizer.
"""

from __future__ import annotations

import copy
import re
from typing import Any

from becomingone.boards.checks import (
    BoardError,
    check_choice,
    check_int,
    check_keys,
    check_obj,
    check_str,
    is_int,
    kind_of,
    pin_ranges,
    show,
    subpath,
)
from becomingone.boards.chips import Chip, check_gpio
from kairos import defaults as kernel_defaults
from kairos.defaults import SENSOR_KINDS

OUTPUT_KINDS = ("led", "neopixel", "buzzer", "motor")
BME280_FIELDS = ("temperature", "pressure", "humidity")
BME280_ADDRS = (0x76, 0x77)


def _kernel_default(key: str) -> Any:
    """kairos.defaults names each key's default in capitals; JSON has lists."""
    v = getattr(kernel_defaults, key.upper())
    return list(v) if isinstance(v, tuple) else v


# Kernel defaults (kairos.Normalizer / kairos.Channel), as a board's JSON has them.
CHANNEL_DEFAULTS: dict[str, Any] = {
    k: _kernel_default(k) for k in kernel_defaults.NORMALIZER_KEYS + kernel_defaults.CHANNEL_KEYS}

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

_NAME_RE = re.compile(r"[a-z0-9_-]{1,16}")


def _check_channel(path: str, s: dict[str, Any]) -> None:
    """Normalizer and Channel arguments, with exactly the kernel's ranges."""
    off = s["offset"]
    if not is_int(off) or not -(1 << 29) < off < (1 << 29):
        raise BoardError(subpath(path, "offset"), f"must be an integer with |offset| < 2**29, "
                         f"got {show(off)}")
    mul = s["mul"]
    if not is_int(mul) or mul == 0 or not -32768 < mul < 32768:
        raise BoardError(subpath(path, "mul"), f"must be a non-zero integer with |mul| < 32768, "
                         f"got {show(mul)}")
    check_int(subpath(path, "shift"), s["shift"], 0, 14)
    lags = s["lags"]
    if not isinstance(lags, list):
        raise BoardError(subpath(path, "lags"), f"expected a list, got {kind_of(lags)}")
    if not 1 <= len(lags) <= 8:
        raise BoardError(subpath(path, "lags"), f"must hold 1..8 lags, got {len(lags)}")
    prev = 0
    for i, lag in enumerate(lags):
        if not is_int(lag):
            raise BoardError(f"{subpath(path, 'lags')}[{i}]",
                             f"expected an integer, got {show(lag)}")
        if lag <= prev:
            raise BoardError(subpath(path, "lags"),
                             f"must be strictly increasing integers >= 1, got {lags}")
        prev = lag
    if prev > 1024:
        raise BoardError(subpath(path, "lags"), f"must not exceed 1024 samples, got {prev}")
    check_int(subpath(path, "s"), s["s"], 4, 12)
    check_int(subpath(path, "s0"), s["s0"], 0, 6)
    check_int(subpath(path, "omega"), s["omega"], 0, 65535)
    ic = check_int(subpath(path, "ic"), s["ic"], 1, 32767)
    check_int(subpath(path, "hysteresis"), s["hysteresis"], 0, ic - 1)
    check_int(subpath(path, "dwell"), s["dwell"], 1, 1 << 20)


class PinClaims:
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


def _name(path: str, obj: dict[str, Any]) -> str:
    name = check_str(subpath(path, "name"), obj["name"])
    if not _NAME_RE.fullmatch(name):
        raise BoardError(subpath(path, "name"), f"{show(name)} must be 1..16 characters [a-z0-9_-]")
    return name


def check_unique_names(path: str, items: list[dict[str, Any]]) -> None:
    """BoardError if two entries of ``path`` (sensors, outputs) share a name."""
    seen: dict[str, int] = {}
    for i, item in enumerate(items):
        if item["name"] in seen:
            raise BoardError(f"{path}[{i}].name", f"{item['name']!r} is already the name of "
                             f"{path}[{seen[item['name']]}]")
        seen[item["name"]] = i


def check_sensor(path: str, raw: Any, board: dict[str, Any], chip: Chip, pins: PinClaims) -> dict:
    """One ``sensors[i]`` entry checked against the board and its chip, with
    the kind's and the kernel's defaults filled in; claims its pins."""
    s = dict(check_obj(path, raw))
    check_keys(path, s, set().union(*_KIND_KEYS.values()), ("name", "kind"))
    _name(path, s)
    kind = check_choice(subpath(path, "kind"), s["kind"], SENSOR_KINDS)
    check_keys(path, s, _KIND_KEYS[kind])
    for key, value in {**CHANNEL_DEFAULTS, **_KIND_DEFAULTS[kind]}.items():
        s.setdefault(key, copy.copy(value))
    _check_channel(path, s)
    bid = board["board"]
    wifi_on = "mqtt" in board["transports"]

    for key in ("pin", "i2c"):  # required by the kinds that have them
        if key in _KIND_KEYS[kind] and key not in s:
            raise BoardError(subpath(path, key), "missing")
    if kind in ("adc", "mic"):
        adc = chip.adc if wifi_on else chip.adc | chip.adc_no_wifi
        if not adc:
            raise BoardError(subpath(path, "kind"), f"{kind!r} needs an ADC; {bid} has none")
        pin = s["pin"]
        if not is_int(pin):
            raise BoardError(subpath(path, "pin"), f"expected an ADC pin number, got {show(pin)}")
        if pin not in adc:
            extra = (" while Wi-Fi (mqtt) is used" if wifi_on and pin in chip.adc_no_wifi
                     else "")
            raise BoardError(subpath(path, "pin"), f"{pin} is not an ADC pin on {bid}{extra} "
                             f"({pin_ranges(adc)})")
        pins.claim(subpath(path, "pin"), pin)
        if board["adc_bits"] and not 0 <= s["offset"] < 1 << board["adc_bits"]:
            raise BoardError(subpath(path, "offset"), f"{show(s['offset'])} is outside the "
                             f"{board['adc_bits']}-bit ADC range 0..{(1 << board['adc_bits']) - 1}")
        if kind == "mic":
            check_int(subpath(path, "window"), s["window"], 1, 256)
    elif kind == "digital":
        pin = check_gpio(subpath(path, "pin"), s["pin"], chip, bid)
        pins.claim(subpath(path, "pin"), pin)
        pull = s["pull"]
        if pull is not None:
            check_choice(subpath(path, "pull"), pull, ("up", "down"))
            if not chip.pull and board["hal"] != "sim":
                raise BoardError(subpath(path, "pull"), f"{bid} GPIO (sysfs) cannot set a pull; "
                                 "use null and an external resistor")
            if pin in chip.no_pull:
                raise BoardError(subpath(path, "pull"), f"GPIO{pin} has no internal pull resistor "
                                 f"on {bid} ({pin_ranges(chip.no_pull)}); use null")
    elif kind == "mcu_temp":
        if not chip.mcu_temp:
            raise BoardError(subpath(path, "kind"),
                             f"'mcu_temp': {bid} has no usable internal temperature sensor")
    elif kind == "bme280":
        _bme280(subpath(path, "i2c"), s, chip, bid, pins)
        check_choice(subpath(path, "field"), s["field"], BME280_FIELDS)
    else:  # sim
        check_int(subpath(path, "period"), s["period"], 2, 65535)
        check_int(subpath(path, "amp"), s["amp"], 0, 16384)
        check_int(subpath(path, "noise"), s["noise"], 0, 16384)
        check_int(subpath(path, "dc"), s["dc"], -(1 << 20), 1 << 20)  # the signal's DC level
        every = check_int(subpath(path, "burst_every"), s["burst_every"], 0, 65535)
        check_int(subpath(path, "burst_len"), s["burst_len"], 0, every)
        check_int(subpath(path, "seed"), s["seed"], 0, (1 << 30) - 1)
    return s


def _bme280(path: str, s: dict[str, Any], chip: Chip, bid: str, pins: PinClaims) -> None:
    i2c = dict(check_obj(path, s["i2c"]))
    check_keys(path, i2c, {"bus", "sda", "scl", "addr"})
    if not chip.i2c:
        raise BoardError(path, f"{bid} has no I2C bus")
    buses = tuple(sorted(chip.i2c))
    i2c.setdefault("bus", buses[0])
    bus = check_int(subpath(path, "bus"), i2c["bus"], 0, 255)
    if bus not in chip.i2c:
        raise BoardError(subpath(path, "bus"), f"{bus} is not an I2C bus on {bid} "
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
        check_gpio(subpath(path, line), pin, chip, bid, output=True)
        if fixed is not None and pin not in fixed[idx]:
            raise BoardError(subpath(path, line), f"{pin} is not an {line.upper()} pin of I2C bus "
                             f"{bus} on {bid} ({pin_ranges(fixed[idx])})")
    if i2c["sda"] is not None and i2c["sda"] == i2c["scl"]:
        raise BoardError(subpath(path, "scl"), "must differ from sda")
    addr = i2c.setdefault("addr", 0x76)
    if not is_int(addr) or addr not in BME280_ADDRS:
        raise BoardError(subpath(path, "addr"), f"{show(addr)} is not a BME280 address "
                         "(118 = 0x76 or 119 = 0x77)")
    pins.bus(path, bus, i2c["sda"], i2c["scl"])
    s["i2c"] = i2c


def check_output(path: str, raw: Any, board: dict[str, Any], chip: Chip, pins: PinClaims) -> dict:
    """One ``outputs[i]`` entry checked against the board and its chip, with
    defaults filled in; claims its pin."""
    o = dict(check_obj(path, raw))
    check_keys(path, o, set().union(*_OUTPUT_KEYS.values()), ("name", "kind", "pin"))
    _name(path, o)
    kind = check_choice(subpath(path, "kind"), o["kind"], OUTPUT_KINDS)
    check_keys(path, o, _OUTPUT_KEYS[kind])
    for key, value in _OUTPUT_DEFAULTS.get(kind, {}).items():
        o.setdefault(key, value)
    bid = board["board"]
    pin = o["pin"]
    if isinstance(pin, str):
        if kind != "led" or pin not in chip.named_pins:
            names = ", ".join(sorted(chip.named_pins)) or "none"
            raise BoardError(subpath(path, "pin"), f"{show(pin)} is not a named {kind} pin on "
                             f"{bid} (named pins: {names})")
    else:
        check_gpio(subpath(path, "pin"), pin, chip, bid, output=True)
    if kind == "neopixel":
        if not chip.neopixel:
            raise BoardError(subpath(path, "kind"), f"'neopixel': {bid} has no NeoPixel driver")
        check_int(subpath(path, "count"), o["count"], 1, 1024)
    if kind in ("buzzer", "motor") and chip.pwm is not None and pin not in chip.pwm:
        raise BoardError(subpath(path, "pin"), f"{pin} has no hardware PWM on {bid} "
                         f"({pin_ranges(chip.pwm)})")
    if kind == "motor":
        check_int(subpath(path, "freq"), o["freq"], 1, 40000)
    pins.claim(subpath(path, "pin"), pin)
    return o


