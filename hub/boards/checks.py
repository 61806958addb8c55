"""Board definitions: BoardError and the small field checkers (part of becomingone.boards).

Every checker takes the field path first, so each error names its field,
e.g. ``sensors[1].shift: 15 is out of range 0..14``.
"""

from __future__ import annotations

import json
from typing import Any

from becomingone.errors import BecomingOneError


class BoardError(BecomingOneError, ValueError):
    """A bad board definition or node config; the message starts with the field path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


def kind_of(value: Any) -> str:
    """How an error names a value's JSON type: "an integer", "a list", "null", ..."""
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


def show(value: Any) -> str:
    """A short, safe rendering of a scalar; containers only by their type."""
    if isinstance(value, str):
        return repr(value)  # never truncated: a secret in it must stay maskable whole
    if value is None or isinstance(value, bool | int | float):
        return json.dumps(value)
    return kind_of(value)


def pin_ranges(pins: frozenset[int]) -> str:
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


def subpath(prefix: str, key: str) -> str:
    """The field path of ``key`` inside ``prefix`` ("sensors[1]" + "pin")."""
    return f"{prefix}.{key}" if prefix else key


def is_int(value: Any) -> bool:
    """An int that is not a bool (JSON true is not 1 here)."""
    return isinstance(value, int) and not isinstance(value, bool)


def check_int(path: str, value: Any, lo: int, hi: int) -> int:
    """``value`` if it is an integer in lo..hi, else BoardError at ``path``."""
    if not is_int(value):
        raise BoardError(path, f"expected an integer, got {show(value)}")
    if not lo <= value <= hi:
        raise BoardError(path, f"{value} is out of range {lo}..{hi}")
    return value


def check_str(path: str, value: Any, secret: bool = False) -> str:
    """``value`` if it is a string, else BoardError (a ``secret`` shows only its type)."""
    if not isinstance(value, str):
        got = kind_of(value) if secret else show(value)
        raise BoardError(path, f"expected a string, got {got}")
    return value


def check_bool(path: str, value: Any) -> bool:
    """``value`` if it is true or false, else BoardError at ``path``."""
    if not isinstance(value, bool):
        raise BoardError(path, f"expected true or false, got {show(value)}")
    return value


def check_obj(path: str, value: Any) -> dict[str, Any]:
    """``value`` if it is a JSON object, else BoardError at ``path``."""
    if not isinstance(value, dict):
        raise BoardError(path or "(top level)", f"expected an object, got {kind_of(value)}")
    return value


def check_list(path: str, value: Any, lo: int, hi: int) -> list[Any]:
    """``value`` if it is a list of lo..hi entries, else BoardError at ``path``."""
    if not isinstance(value, list):
        raise BoardError(path, f"expected a list, got {kind_of(value)}")
    if not lo <= len(value) <= hi:
        raise BoardError(path, f"must hold {lo}..{hi} entries, got {len(value)}")
    return value


def check_choice(path: str, value: Any, choices: tuple[str, ...]) -> str:
    """``value`` if it is one of the strings ``choices``, else BoardError."""
    if value not in choices or not isinstance(value, str):
        raise BoardError(path, f"{show(value)} is not one of {', '.join(choices)}")
    return value


def check_keys(
    path: str, obj: dict[str, Any], allowed: set[str], required: tuple[str, ...] = ()
) -> None:
    """BoardError for a missing ``required`` key or a key not in ``allowed``."""
    for key in required:
        if key not in obj:
            raise BoardError(subpath(path, key), "missing")
    for key in obj:
        if key not in allowed:
            raise BoardError(subpath(path, str(key)), "unknown key")
