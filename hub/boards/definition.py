"""Board definitions: the whole-board check and the boards/ files (part of becomingone.boards)."""

from __future__ import annotations

import copy
import json
import re
from importlib import resources
from pathlib import Path
from typing import Any

from becomingone.boards.checks import (
    BoardError,
    check_bool,
    check_choice,
    check_int,
    check_keys,
    check_list,
    check_obj,
    check_str,
    show,
)
from becomingone.boards.chips import chip_for
from becomingone.boards.parts import PinClaims, check_output, check_sensor, check_unique_names

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
    b = copy.deepcopy(check_obj("", data))
    check_keys("", b, _BOARD_KEYS, _BOARD_REQUIRED)
    bid = check_str("board", b["board"])
    if not _BOARD_ID_RE.fullmatch(bid):
        raise BoardError("board", f"{show(bid)} must be 1..32 characters [a-z0-9_-]")
    title = check_str("title", b["title"])
    if not title.strip():
        raise BoardError("title", "must not be empty")
    if "notes" in b:
        check_str("notes", b["notes"])
    chip = chip_for(b)
    b["chip"] = chip.name
    runtime = check_choice("runtime", b["runtime"], RUNTIMES)
    if runtime != chip.runtime:
        raise BoardError("runtime", f"{bid} runs {chip.runtime!r}, not {runtime!r}")
    hal = check_choice("hal", b["hal"], HALS)
    if hal not in (chip.hal, "sim"):
        raise BoardError("hal", f"{bid} uses the {chip.hal!r} (or 'sim') HAL, not {hal!r}")
    check_int("weight", b["weight"], 1, 255)
    period = check_int("period_ms", b["period_ms"], 1, 60000)
    check_int("report_every", b["report_every"], 1, 65535)
    wd = check_int("watchdog_ms", b["watchdog_ms"], 0, chip.watchdog_max)
    if wd and (wd < 1000 or wd <= 4 * period):
        raise BoardError("watchdog_ms", f"{wd} is too short: 0 (off) or >= 1000 and "
                         f"> 4 * period_ms = {4 * period}")
    wifi = check_bool("wifi", b["wifi"])
    ble = check_bool("ble", b["ble"])
    if wifi and not chip.wifi:
        raise BoardError("wifi", f"{bid} has no Wi-Fi")
    if ble and not chip.ble:
        raise BoardError("ble", f"{bid} has no Bluetooth LE")
    transports = check_list("transports", b["transports"], 1, 3)
    for i, t in enumerate(transports):
        check_choice(f"transports[{i}]", t, TRANSPORTS)
        if t in transports[:i]:
            raise BoardError(f"transports[{i}]", f"{t!r} is listed twice")
        if t == "mqtt" and not wifi:
            raise BoardError(f"transports[{i}]", "'mqtt' needs Wi-Fi, but wifi is false")
        if t == "ble" and not ble:
            raise BoardError(f"transports[{i}]", "'ble' needs Bluetooth LE, but ble is false")
    bits = check_int("adc_bits", b["adc_bits"], 0, 16)
    if hal == "machine" and bits != 16:
        raise BoardError("adc_bits", f"the machine HAL reads ADCs with read_u16: 16, not {bits}")
    if not chip.adc and bits:
        raise BoardError("adc_bits", f"{bid} has no ADC: must be 0, not {bits}")

    pins = PinClaims(bid)
    sensors = check_list("sensors", b["sensors"], 1, 8)
    b["sensors"] = [check_sensor(f"sensors[{i}]", s, b, chip, pins) for i, s in enumerate(sensors)]
    check_unique_names("sensors", b["sensors"])
    outputs = check_list("outputs", b.get("outputs", []), 0, 8)
    b["outputs"] = [check_output(f"outputs[{i}]", o, b, chip, pins) for i, o in enumerate(outputs)]
    check_unique_names("outputs", b["outputs"])
    return b


def boards_dir() -> Path:
    """The board definitions: the repository's boards/ folder (in the wheel too)."""
    # Located as package data (becomingone.boards.defs holds only JSON), not imported
    # as a module: `from becomingone.boards import defs` read as an import of this
    # package's own __init__, a circle import-linter sees.
    return Path(str(resources.files("becomingone.boards.defs"))).resolve()


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
        raise BoardError("board", f"unknown board {show(text)} (known: {', '.join(known)})")
    return boards_dir() / f"{text}.json"


def load_board(name_or_path: str | Path) -> dict:
    """Load a shipped board by id, or a board file by path, and validate it."""
    path = _board_path(name_or_path)
    board = validate_board(load_json(path))
    if board["board"] != path.stem:
        raise BoardError("board", f"{board['board']!r} does not match the file name "
                         f"{path.name!r}")
    return board
