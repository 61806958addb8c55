"""JSON codec and the SHA-256 hash-chained event log of the hub's store.

Used by :mod:`becomingone.store` (``Store.save_state``, ``Store.log`` ...) and
:mod:`becomingone.store.memories` (stored signatures); the functions here take an open
``sqlite3.Connection`` and leave transactions to the caller.

JSON codec (state values and log data)
--------------------------------------
``encode`` writes canonical JSON: keys sorted, no whitespace, ASCII only.
Complex numbers (and numpy complex scalars) are written as
``{"$complex": [re, im]}`` and ``decode`` turns that back into ``complex``,
so they round-trip exactly (floats are written with ``repr``).  Numpy scalars
and arrays become Python numbers and lists, tuples become lists.  Dict keys
must be ``str`` (json would silently turn ``1`` into ``"1"``), and a dict of
the caller's own may not use the reserved key ``"$complex"``; both raise
``TypeError``.  NaN and infinities are allowed in state (``allow_nan``) but
not in the log, whose JSON must be standard.

Hash chain
----------
Entry ``seq`` (1, 2, 3, ... with no gaps) stores ``t``, ``kind``, ``data``
(its canonical JSON text), ``prev`` (the previous entry's hash, 64 zeros for
the first) and ``hash = sha256(prev + payload)`` in hex, where ``payload`` is
the canonical JSON of ``[seq, t, kind, data]`` and ``t`` is a float.  Changing
any field of any row, deleting or reordering rows in the middle, is found by
``verify`` at that row.  Deleting entries at the *end* leaves a valid, shorter
chain: compare ``head`` with a copy kept elsewhere to detect that.
"""

from __future__ import annotations

import hashlib
import json
import math
import sqlite3
from typing import Any

GENESIS = "0" * 64
COMPLEX_KEY = "$complex"

LOG_SCHEMA = """
CREATE TABLE log(
    seq  INTEGER PRIMARY KEY,
    t    REAL NOT NULL,
    kind TEXT NOT NULL,
    data TEXT NOT NULL,
    prev TEXT NOT NULL,
    hash TEXT NOT NULL
);
"""


def _plain(v: Any) -> Any:
    """v as plain JSON types, complex numbers tagged."""
    if v is None or isinstance(v, bool | int | str):
        return v
    if isinstance(v, float):
        return float(v)
    if isinstance(v, complex):
        return {COMPLEX_KEY: [float(v.real), float(v.imag)]}
    if isinstance(v, dict):
        out = {}
        for k, x in v.items():
            if not isinstance(k, str):
                raise TypeError(f"dict keys must be str, not {type(k).__name__} ({k!r})")
            if k == COMPLEX_KEY:
                raise TypeError(f"{COMPLEX_KEY!r} is a reserved key")
            out[k] = _plain(x)
        return out
    if isinstance(v, list | tuple):
        return [_plain(x) for x in v]
    # numpy scalars and arrays, without importing numpy
    if hasattr(v, "tolist") and hasattr(v, "dtype"):
        return _plain(v.tolist())
    raise TypeError(f"cannot store a {type(v).__name__} as JSON")


def encode(v: Any, *, allow_nan: bool = True) -> str:
    """Canonical JSON of v (see the module docstring); TypeError/ValueError if it can't."""
    return json.dumps(
        _plain(v), sort_keys=True, separators=(",", ":"), ensure_ascii=True, allow_nan=allow_nan
    )


def _hook(d: dict) -> Any:
    if len(d) == 1 and COMPLEX_KEY in d:
        re, im = d[COMPLEX_KEY]
        return complex(re, im)
    return d


def decode(text: str) -> Any:
    return json.loads(text, object_hook=_hook)


def payload(seq: int, t: float, kind: str, data_text: str) -> str:
    """Canonical JSON of [seq, t, kind, data], data given as its canonical JSON."""
    return f"[{seq:d},{json.dumps(t)},{json.dumps(kind, ensure_ascii=True)},{data_text}]"


def entry_hash(prev: str, seq: int, t: float, kind: str, data_text: str) -> str:
    return hashlib.sha256((prev + payload(seq, t, kind, data_text)).encode("utf-8")).hexdigest()


def head(db: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash) of the last entry, (0, GENESIS) for an empty log."""
    row = db.execute("SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def append(db: sqlite3.Connection, kind: str, data: dict, t: float) -> str:
    """Append one entry (inside the caller's transaction); returns its hash."""
    if not isinstance(kind, str) or not kind:
        raise ValueError(f"log kind must be a non-empty str, got {kind!r}")
    if not isinstance(data, dict):
        raise ValueError(f"log data must be a dict, got {type(data).__name__}")
    if isinstance(t, bool) or not isinstance(t, int | float) or not math.isfinite(t):
        raise ValueError(f"log time must be a finite number, got {t!r}")
    data_text = encode(data, allow_nan=False)
    last, prev = head(db)
    seq, t = last + 1, float(t)
    h = entry_hash(prev, seq, t, kind, data_text)
    db.execute(
        "INSERT INTO log(seq, t, kind, data, prev, hash) VALUES (?, ?, ?, ?, ?, ?)",
        (seq, t, kind, data_text, prev, h),
    )
    return h


def tail(db: sqlite3.Connection, n: int) -> list[dict]:
    rows = db.execute(
        "SELECT seq, t, kind, data, prev, hash FROM log ORDER BY seq DESC LIMIT ?", (n,)
    ).fetchall()
    return [
        {"seq": s, "t": t, "kind": k, "data": decode(d), "prev": p, "hash": h}
        for s, t, k, d, p, h in reversed(rows)
    ]


def verify(db: sqlite3.Connection) -> tuple[bool, int, int | None]:
    """Walk the chain from the start: (ok, entries checked, first bad position).

    Entry i (1-based, in seq order) is bad when its seq is not i, its prev is
    not the hash of entry i-1, or its hash does not match its fields.  The walk
    stops at the first bad entry; "checked" counts it.
    """
    prev = GENESIS
    i = 0
    for seq, t, kind, data, p, h in db.execute(
        "SELECT seq, t, kind, data, prev, hash FROM log ORDER BY seq"
    ):
        i += 1
        ok = (
            seq == i
            and p == prev
            and isinstance(t, float)
            and isinstance(kind, str)
            and isinstance(data, str)
            and entry_hash(prev, seq, t, kind, data) == h
        )
        if not ok:
            return False, i, i
        prev = h
    return True, i, None
