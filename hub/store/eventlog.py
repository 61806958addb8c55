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
``verify`` at that row.

Signatures (the anchor)
-----------------------
A hash chain alone can be rewritten: edit an entry, recompute every hash
after it, and the chain is valid again; cut its end and it is a valid,
shorter chain.  So the store signs it with a key kept *outside* the database
(:mod:`becomingone.store.anchor` keeps the key file and the signed head):

* every entry's ``mac`` column is ``HMAC-SHA256(key, "becomingone-log-entry:"
  + hash)``: a chain recomputed from entry k (by anyone without the key)
  fails at entry k;
* the head (seq and hash of the newest entry) is signed the same way (with
  ``"becomingone-log-head:<seq>:"``) and written to a file beside the key: a
  log that ends before that seq was truncated, one whose entry at that seq
  has another hash was rewritten.

Entries written before the log was signed (a schema-2 store) have no mac;
they may only come first, and the signed head (whose hash depends on every
entry before it) covers them.
"""

from __future__ import annotations

import hashlib
import hmac
import json
import math
import sqlite3
from dataclasses import dataclass
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
    hash TEXT NOT NULL,
    mac  TEXT
);
"""
# Schema 2 -> 3: entries from before the log was signed keep mac NULL.
LOG_UPGRADE = "ALTER TABLE log ADD COLUMN mac TEXT"


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


def entry_mac(key: bytes, h: str) -> str:
    """The signature of the entry whose hash is h."""
    return hmac.new(key, f"becomingone-log-entry:{h}".encode(), hashlib.sha256).hexdigest()


def head_mac(key: bytes, seq: int, h: str) -> str:
    """The signature of the head (seq, h): another message than an entry's, so
    an entry's mac cannot be passed off as a head's."""
    return hmac.new(key, f"becomingone-log-head:{seq:d}:{h}".encode(),
                    hashlib.sha256).hexdigest()


def same_mac(a: str | None, b: str) -> bool:
    return isinstance(a, str) and hmac.compare_digest(a.encode(), b.encode())


def head(db: sqlite3.Connection) -> tuple[int, str]:
    """(seq, hash) of the last entry, (0, GENESIS) for an empty log."""
    row = db.execute("SELECT seq, hash FROM log ORDER BY seq DESC LIMIT 1").fetchone()
    return (0, GENESIS) if row is None else (int(row[0]), str(row[1]))


def hash_at(db: sqlite3.Connection, seq: int) -> str | None:
    """The stored hash of entry seq (GENESIS for 0), None when there is none."""
    if seq == 0:
        return GENESIS
    row = db.execute("SELECT hash FROM log WHERE seq = ?", (seq,)).fetchone()
    return None if row is None else str(row[0])


def append(db: sqlite3.Connection, kind: str, data: dict, t: float,
           key: bytes | None = None) -> tuple[int, str]:
    """Append one entry (inside the caller's transaction), signed with key;
    returns its (seq, hash)."""
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
    mac = None if key is None else entry_mac(key, h)
    db.execute(
        "INSERT INTO log(seq, t, kind, data, prev, hash, mac) VALUES (?, ?, ?, ?, ?, ?, ?)",
        (seq, t, kind, data_text, prev, h, mac),
    )
    return seq, h


def tail(db: sqlite3.Connection, n: int) -> list[dict]:
    rows = db.execute(
        "SELECT seq, t, kind, data, prev, hash FROM log ORDER BY seq DESC LIMIT ?", (n,)
    ).fetchall()
    return [
        {"seq": s, "t": t, "kind": k, "data": decode(d), "prev": p, "hash": h}
        for s, t, k, d, p, h in reversed(rows)
    ]


@dataclass(frozen=True)
class Signed:
    """A signed head: the log had entries up to seq, the last with hash h."""
    seq: int
    hash: str
    mac: str

    def valid(self, key: bytes) -> bool:
        return same_mac(self.mac, head_mac(key, self.seq, self.hash))


@dataclass(frozen=True)
class LogCheck:
    """What ``verify`` found.  ``bad`` is the first bad entry (1-based
    position; for a truncated log, the last entry left + 1); ``problem`` says
    where and how in one sentence; ``unsigned`` counts entries from before
    the log was signed; ``signed_head`` is the seq the head signature covers."""
    ok: bool
    checked: int
    bad: int | None = None
    problem: str = ""
    unsigned: int = 0
    signed_head: int | None = None


def entry_problem(i: int, prev: str, row: tuple, key: bytes | None = None,
                  signing: bool = True) -> str | None:
    """Why row (seq, t, kind, data, prev, hash, mac) is not a good entry i after
    prev (a hash), or None.  With a key its mac must be the key's, or absent
    while nothing before it was signed (signing False)."""
    seq, t, kind, data, p, h, mac = row
    if seq != i:
        return (f"entry {i}: its seq is {seq}: entries were deleted or renumbered"
                if isinstance(seq, int) else f"entry {i}: its seq is {seq!r}")
    if p != prev:
        return f"entry {i}: its prev is not entry {i - 1}'s hash: entries were deleted or reordered"
    if not (isinstance(t, float) and isinstance(kind, str) and isinstance(data, str)
            and entry_hash(prev, seq, t, kind, data) == h):
        return f"entry {i}: its hash does not match its fields: it was changed after it was written"
    if key is None or (mac is None and not signing):
        return None
    if mac is None:
        return f"entry {i} is not signed: it was written without the key"
    if not same_mac(mac, entry_mac(key, h)):
        return (f"entry {i}: signature does not match: the log was rewritten from"
                f" entry {i} (hashes recomputed without the key)")
    return None


def verify(db: sqlite3.Connection, key: bytes | None = None,
           signed: Signed | None = None) -> LogCheck:
    """Walk the chain from the start, then check the head.

    Entry i (1-based, in seq order) is bad when its seq is not i, its prev is
    not the hash of entry i-1, or its hash does not match its fields; with a
    key, also when its mac is not the key's signature of its hash, or it has
    none after a signed entry.  The walk stops at the first bad entry
    ("checked" counts it).  Then, given the signed head (seq N, hash H): the
    head's own mac must be valid, the log must reach entry N and entry N's
    hash must be H.  Without a key only the chain is checked.
    """
    cols = {r[1] for r in db.execute("PRAGMA table_info(log)")}
    mac_col = "mac" if "mac" in cols else "NULL"
    prev, i, unsigned, signing = GENESIS, 0, 0, False
    for row in db.execute(
        f"SELECT seq, t, kind, data, prev, hash, {mac_col} FROM log ORDER BY seq"
    ):
        i += 1
        problem = entry_problem(i, prev, row, key, signing)
        if problem is not None:
            return LogCheck(False, i, i, problem, unsigned)
        if key is not None:
            signing = signing or row[6] is not None
            unsigned += not signing
        prev = row[5]
    if key is None or signed is None:
        return LogCheck(True, i, None, "", unsigned)
    if not signed.valid(key):
        return LogCheck(False, i, None, "the head's signature does not match the key: the head"
                                        " file was edited, or belongs to another key", unsigned)
    if i < signed.seq:
        return LogCheck(False, i, i + 1,
                        f"head signature does not match: the log was rewritten or truncated"
                        f" after entry {i} (the signed head is entry {signed.seq})",
                        unsigned, signed.seq)
    if hash_at(db, signed.seq) != signed.hash:
        return LogCheck(False, i, None,
                        f"head signature does not match: entry {signed.seq} is not the one"
                        f" signed: the log was rewritten at or before entry {signed.seq}",
                        unsigned, signed.seq)
    return LogCheck(True, i, None, "", unsigned, signed.seq)
