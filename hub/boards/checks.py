"""Board definitions: BoardError and the small field checkers (part of hub.boards).

Every checker takes the field path first, so each error names its field,
e.g. ``sensors[1].shift: 15 is out of range 0..14``.
"""

from __future__ import annotations

import json
from typing import Any


class BoardError(ValueError):
    """A bad board definition or node config; the message starts with the field path."""

    def __init__(self, path: str, message: str) -> None:
        self.path = path
        self.reason = message
        super().__init__(f"{path}: {message}" if path else message)


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


def _p(prefix: str, key: str) -> str:
    return f"{prefix}.{key}" if prefix else key


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
            raise BoardError(_p(path, key), "missing")
    for key in obj:
        if key not in allowed:
            raise BoardError(_p(path, str(key)), "unknown key")
