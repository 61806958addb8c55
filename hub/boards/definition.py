"""Board definitions: the whole-board check and the boards/ files (part of hub.boards)."""

from __future__ import annotations

import copy
import json
import re
from pathlib import Path
from typing import Any

from becomingone.boards.checks import (
    BoardError,
    _bool,
    _choice,
    _int,
    _keys,
    _list,
    _obj,
    _show,
    _str,
)
from becomingone.boards.chips import _chip_for
from becomingone.boards.parts import _output, _Pins, _sensor, _unique

RUNTIMES = ("micropython", "cpython", "any")
HALS = ("machine", "pi", "sim")
TRANSPORTS = ("serial", "mqtt", "ble")
_BOARD_REQUIRED = (
    "board", "title", "runtime", "hal", "weight", "period_ms", "report_every",
    "watchdog_ms", "transports", "wifi", "ble", "adc_bits", "sensors",
)
_BOARD_KEYS = {*_BOARD_REQUIRED, "outputs", "chip", "notes"}

_BOARD_ID_RE = re.compile(r"[a-z0-9][a-z0-9_-]{0,31}")


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


def boards_dir() -> Path:
    """The board definitions: the repository's boards/ folder (in the wheel too)."""
    from becomingone.boards import defs  # the repo's boards/ folder, shipped in the wheel

    return Path(defs.__file__).resolve().parent


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
