"""The hub's persistent store: reports, events, state, BLEND memories, event log.

One SQLite file (stdlib ``sqlite3``) holds everything the hub must keep across
a restart (KAIROS spec §2 and §7).  ``StoreError`` is the root of this layer's
exceptions; sqlite3 errors come out wrapped in it.

Durability.  The database runs in WAL mode with ``synchronous=NORMAL``.  A
commit appends the transaction's pages to the ``-wal`` file with write(2)
before it returns, and the file is fsync'ed only at checkpoints.  So once a
call such as ``add_reports`` has returned, its data is in the operating
system's page cache and survives the hub process being killed (even
``kill -9``): the next open replays the WAL.  A power cut or kernel crash can
lose the last transactions before a checkpoint, but never corrupts the file.
Pass ``synchronous="FULL"`` to fsync on every commit (slower, power-safe).

Reports.  One row per (node, boot, seq, channel) in the ``raw`` tier.  Each
report is validated; a bad one (missing field, wrong type, out-of-range value)
is skipped, counted in ``Store.rejected`` (its message kept in
``Store.last_error``) and the rest of the batch is stored.  ``check_report``
raises ``StoreError`` with the message for a single report.  A report with an
empty channel list is kept as one row with ``ch = -1`` (no values), so
``has_frame`` and the dedup key still see it; ``reports``/``history`` ignore it.

Tiers.  ``compact(now)`` moves raw rows older than ``raw_days`` into 1-minute
buckets and minute buckets older than ``minute_days`` into 1-hour buckets, and
deletes hour buckets (and events) older than ``hour_days``.  A bucket keeps
the *sums* of c, mean and e (exact integers), the max of coll and the sample
count, so merging buckets is exact and ``history`` returns sum/count.  The
cut-offs are rounded down to whole buckets and only move forward (the
"watermarks"); a report whose ``t_hub`` is below the raw watermark has already
been summarised and is not stored again (counted in ``Store.too_old``), which
keeps ``add_reports`` idempotent after compaction too.  Call ``compact`` often
(every few minutes): each call then has little to move.  Times are hub
seconds, ``t_hub >= 0``.

Units: ``c`` is Q15 everywhere (``c_q15 / 32768`` is the coherence), in raw
rows an int and in ``history`` a float average; mean and e are the report's
integer units.  Time ranges (``since``/``until``) are inclusive and compare
against a row's ``t_hub`` or a bucket's start time.

BLEND memories (§7).  ``remember`` stores a signature ``{node: (c, tau_s,
phase_re, phase_im)}`` (c in [0, 1]) with strength s = c and decay rate
r = r0·(1 − 0.5·c); the strength at ``now`` is s·exp(−r·(now − t_ref)) (no
growth if ``now < t_ref``).  See ``similarity`` for the recall measure.

State and log: see :mod:`hub.eventlog` for the JSON codec (complex numbers are
stored as ``{"$complex": [re, im]}`` and round-trip) and the hash chain.
"""

from __future__ import annotations

import math
import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress
from typing import Any

from . import eventlog

SCHEMA_VERSION = 1
DAY = 86400.0
MINUTE = 60
HOUR = 3600

_SCHEMA = (
    """
CREATE TABLE meta(key TEXT PRIMARY KEY, value REAL NOT NULL);
CREATE TABLE node(
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    last_boot INTEGER, last_seq INTEGER, last_t REAL
);
CREATE TABLE raw(
    node INTEGER NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL, ch INTEGER NOT NULL,
    t_hub REAL NOT NULL, tick INTEGER NOT NULL, n INTEGER NOT NULL,
    dropped INTEGER NOT NULL, miss INTEGER NOT NULL,
    mean INTEGER, e INTEGER, k INTEGER, c INTEGER, t_re INTEGER, t_im INTEGER, coll INTEGER,
    PRIMARY KEY (node, boot, seq, ch)
) WITHOUT ROWID;
CREATE INDEX raw_time ON raw(node, t_hub);
CREATE TABLE minute(
    node INTEGER NOT NULL, ch INTEGER NOT NULL, b INTEGER NOT NULL,
    n INTEGER NOT NULL, sc INTEGER NOT NULL, smean INTEGER NOT NULL, se INTEGER NOT NULL,
    coll INTEGER NOT NULL,
    PRIMARY KEY (node, b, ch)
) WITHOUT ROWID;
CREATE TABLE hour(
    node INTEGER NOT NULL, ch INTEGER NOT NULL, b INTEGER NOT NULL,
    n INTEGER NOT NULL, sc INTEGER NOT NULL, smean INTEGER NOT NULL, se INTEGER NOT NULL,
    coll INTEGER NOT NULL,
    PRIMARY KEY (node, b, ch)
) WITHOUT ROWID;
CREATE TABLE event(
    node INTEGER NOT NULL, boot INTEGER NOT NULL, seq INTEGER NOT NULL,
    t_hub REAL NOT NULL, tick INTEGER NOT NULL,
    ch INTEGER NOT NULL, "on" INTEGER NOT NULL, c INTEGER NOT NULL, n INTEGER NOT NULL,
    PRIMARY KEY (node, boot, seq)
) WITHOUT ROWID;
CREATE INDEX event_time ON event(t_hub);
CREATE TABLE state(key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE memory(
    id INTEGER PRIMARY KEY AUTOINCREMENT,
    kind TEXT NOT NULL, created REAL NOT NULL, c REAL NOT NULL,
    s REAL NOT NULL, t_ref REAL NOT NULL, r REAL NOT NULL,
    recalls INTEGER NOT NULL DEFAULT 0,
    signature TEXT NOT NULL
);
"""
    + eventlog.LOG_SCHEMA
)

_REPORT_INTS = ("boot", "seq", "tick", "n", "drop", "miss")
_EVENT_INTS = ("boot", "seq", "tick", "i", "on", "c", "n")
_M30 = 0x3FFFFFFF


class StoreError(Exception):
    """Anything that goes wrong in the store: bad input, bad file, SQLite errors."""


class _Bad(Exception):
    pass


Signature = dict[str, tuple[float, float, float, float]]


def _finite(v: Any) -> bool:
    return isinstance(v, int | float) and not isinstance(v, bool) and math.isfinite(v)


def _head(r: Any, ints: tuple[str, ...], what: str) -> tuple[str, list[int], float]:
    """Checks the fields common to reports and events: node, the ints, t_hub."""
    if not isinstance(r, dict):
        raise _Bad(f"{what} must be a dict, got {type(r).__name__}")
    try:
        node = r["node"]
        vals = [r[f] for f in ints]
        t_hub = r["t_hub"]
    except KeyError as e:
        raise _Bad(f"{what} from {r.get('node')!r}: missing field {e.args[0]!r}") from None
    if (
        type(node) is str and node and r.get("t", what) == what
        and all(type(v) is int and 0 <= v <= _M30 for v in vals)
        and (type(t_hub) is float or type(t_hub) is int) and 0 <= t_hub < math.inf
    ):
        return node, vals, float(t_hub)
    t = r.get("t", what)
    if t != what:
        raise _Bad(f"{what}: 't' is {t!r}, expected {what!r}")
    if type(node) is not str or not node:
        raise _Bad(f"{what}: 'node' must be a non-empty str, got {node!r}")
    for f, v in zip(ints, vals, strict=True):
        if type(v) is not int or not 0 <= v <= _M30:
            raise _Bad(f"{what} from {node!r}: {f!r} must be an int in 0..2**30-1, got {v!r}")
    if not _finite(t_hub) or t_hub < 0:
        raise _Bad(f"{what} from {node!r}: 't_hub' must be a finite number >= 0, got {t_hub!r}")
    return node, vals, float(t_hub)


def _channels(node: str, chs: Any) -> list:
    """The report's channel rows, checked; raises _Bad naming the first bad one."""
    if type(chs) is not list and type(chs) is not tuple or len(chs) > 8:
        raise _Bad(f"report from {node!r}: 'ch' must be a list of at most 8 rows, got {chs!r}")
    for row in chs:
        # one fast test per row; the loop below only runs to word the error
        if (type(row) is list or type(row) is tuple) and len(row) == 7:
            mean, e, k, c, t_re, t_im, coll = row
            if (
                type(mean) is int and type(e) is int and type(k) is int and type(c) is int
                and type(t_re) is int and type(t_im) is int and type(coll) is int
                and -16384 <= mean <= 16384 and 0 <= e <= _M30 and 0 <= k <= 7
                and 0 <= c <= 32767 and -_M30 <= t_re <= _M30 and -_M30 <= t_im <= _M30
                and 0 <= coll <= 1
            ):
                continue
        i = list(chs).index(row)
        if type(row) not in (list, tuple) or len(row) != 7:
            raise _Bad(f"report from {node!r}: ch[{i}] must be 7 ints, got {row!r}")
        if any(type(v) is not int for v in row):
            raise _Bad(f"report from {node!r}: ch[{i}] must be 7 ints, got {row!r}")
        raise _Bad(
            f"report from {node!r}: ch[{i}] out of range (mean -16384..16384, e >= 0,"
            f" k 0..7, c 0..32767, coll 0/1): {row!r}"
        )
    return chs


def _fast_report(r: Any) -> tuple | None:
    """The hot path of add_reports: (node, boot, seq, t_hub, tail, chs) of a valid
    report, else None (then _head/_channels word the error)."""
    try:
        node, boot, seq, tick, n, drop, miss, t_hub, chs = (
            r["node"], r["boot"], r["seq"], r["tick"], r["n"], r["drop"], r["miss"],
            r["t_hub"], r["ch"],
        )
        if not (
            type(node) is str and node and type(boot) is int and type(seq) is int
            and type(tick) is int and type(n) is int and type(drop) is int and type(miss) is int
            and 0 <= boot <= _M30 and 0 <= seq <= _M30 and 0 <= tick <= _M30
            and 0 <= n <= _M30 and 0 <= drop <= _M30 and 0 <= miss <= _M30
            and (type(t_hub) is float or type(t_hub) is int) and 0 <= t_hub < math.inf
            and r.get("t", "report") == "report"
        ):
            return None
        _channels(node, chs)
    except (KeyError, TypeError, AttributeError, _Bad):
        return None
    return node, boot, seq, float(t_hub), (tick, n, drop, miss), chs


def _slow_report(r: Any) -> tuple:
    """As _fast_report, but raises _Bad with a message (and accepts numpy floats)."""
    node, (boot, seq, tick, n, drop, miss), t_hub = _head(r, _REPORT_INTS, "report")
    if "ch" not in r:
        raise _Bad(f"report from {node!r}: missing field 'ch'")
    return node, boot, seq, t_hub, (tick, n, drop, miss), _channels(node, r["ch"])


def _signature(sig: Any) -> Signature:
    if not isinstance(sig, dict) or not sig:
        raise StoreError("signature must be a non-empty dict node -> (c, tau, re, im)")
    out: Signature = {}
    for node, v in sig.items():
        if not isinstance(node, str) or not node:
            raise StoreError(f"signature node ids must be non-empty str, got {node!r}")
        try:
            c, tau, re, im = v
        except (TypeError, ValueError):
            raise StoreError(f"signature[{node!r}] must be (c, tau, re, im), got {v!r}") from None
        if not all(_finite(x) for x in (c, tau, re, im)):
            raise StoreError(f"signature[{node!r}] must hold finite numbers, got {v!r}")
        if not 0.0 <= c <= 1.0 or tau < 0:
            raise StoreError(f"signature[{node!r}]: need 0 <= c <= 1 and tau >= 0, got {v!r}")
        out[node] = (float(c), float(tau), float(re), float(im))
    return out


def similarity(a: Signature, b: Signature) -> float:
    """Similarity of two signatures in [0, 1].

    Per node present in both: phase * c_agreement * tau_agreement, where
    phase = (1 + cos Δφ)/2 from the phasors (re, im) (0.5 when either phasor
    is zero: phase unknown), c_agreement = 1 − |c_a − c_b| and
    tau_agreement = min(τ_a, τ_b)/max(τ_a, τ_b) (1 when both are 0).  These
    are summed and divided by the number of nodes in *either* signature, so
    nodes only one side has count as 0: a one-node query matches a one-node
    memory better than a ten-node one.  0 when no node is shared.
    """
    shared = a.keys() & b.keys()
    if not shared:
        return 0.0
    total = 0.0
    for node in shared:
        ca, ta, ra, ia = a[node]
        cb, tb, rb, ib = b[node]
        ma, mb = math.hypot(ra, ia), math.hypot(rb, ib)
        phase = 0.5 * (1.0 + (ra * rb + ia * ib) / (ma * mb)) if ma > 0 and mb > 0 else 0.5
        hi = max(ta, tb)
        tau = min(ta, tb) / hi if hi > 0 else 1.0
        total += phase * (1.0 - abs(ca - cb)) * tau
    return min(1.0, max(0.0, total / len(a.keys() | b.keys())))


class Store:
    """The hub's SQLite store.  Thread-safe (one connection behind a lock).

    Counters: ``rejected`` (invalid reports/events skipped), ``too_old``
    (reports below the compaction watermark, not stored), ``last_error``.
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        raw_days: float = 2.0,
        minute_days: float = 60.0,
        hour_days: float = 3650.0,
        r0: float = 1 / 3600,
        prune_below: float = 0.1,
        synchronous: str = "NORMAL",
    ) -> None:
        if not all(_finite(x) for x in (raw_days, minute_days, hour_days, r0, prune_below)):
            raise StoreError("retention and decay parameters must be finite numbers")
        if not 0 < raw_days <= minute_days <= hour_days:
            raise StoreError(
                f"need 0 < raw_days <= minute_days <= hour_days, "
                f"got {raw_days}, {minute_days}, {hour_days}"
            )
        if r0 < 0 or not 0 <= prune_below < 1:
            raise StoreError(f"need r0 >= 0 and 0 <= prune_below < 1, got {r0}, {prune_below}")
        if synchronous.upper() not in ("NORMAL", "FULL", "EXTRA"):
            raise StoreError(f"synchronous must be NORMAL, FULL or EXTRA, got {synchronous!r}")
        self.raw_days, self.minute_days, self.hour_days = raw_days, minute_days, hour_days
        self.r0, self.prune_below = float(r0), float(prune_below)
        self.rejected = 0
        self.too_old = 0
        self.last_error: str | None = None
        self._lock = threading.RLock()
        self._nodes: dict[str, int] = {}
        self.path = os.fspath(path)
        self._db: sqlite3.Connection | None = None
        try:
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._open(synchronous.upper())
        except (sqlite3.Error, StoreError) as e:
            if self._db is not None:
                self._db.close()
                self._db = None
            if isinstance(e, StoreError):
                raise
            raise StoreError(f"cannot open store {self.path!r}: {e}") from e

    def _open(self, synchronous: str) -> None:
        db = self._con()
        db.execute("PRAGMA busy_timeout = 10000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path!r} has schema {version}, newer than {SCHEMA_VERSION}")
        if version == 0:
            if db.execute("SELECT count(*) FROM sqlite_master").fetchone()[0]:
                raise StoreError(f"{self.path!r} is an SQLite file but not a hub store")
            # auto_vacuum must be chosen before the first table exists.
            db.execute("PRAGMA auto_vacuum = INCREMENTAL")
        db.execute("PRAGMA journal_mode = WAL")  # ":memory:" stays "memory"
        db.execute(f"PRAGMA synchronous = {synchronous}")
        db.execute("PRAGMA cache_size = -32768")  # 32 MiB
        if version == 0:
            with self._tx():
                for stmt in _SCHEMA.split(";"):
                    if stmt.strip():
                        db.execute(stmt)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._load_nodes()

    # -- plumbing ----------------------------------------------------------
    def _con(self) -> sqlite3.Connection:
        if self._db is None:
            raise StoreError("store is closed")
        return self._db

    @contextmanager
    def _tx(self) -> Iterator[sqlite3.Connection]:
        """One write transaction; sqlite3 errors become StoreError."""
        with self._lock:
            db = self._con()
            try:
                db.execute("BEGIN IMMEDIATE")
            except sqlite3.Error as e:
                raise StoreError(f"cannot start a transaction: {e}") from e
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as e:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                self._load_nodes()  # ids handed out in the failed transaction are gone
                if isinstance(e, sqlite3.Error):
                    raise StoreError(f"store write failed: {e}") from e
                raise

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._con()
            except sqlite3.Error as e:
                raise StoreError(f"store read failed: {e}") from e

    def _load_nodes(self) -> None:
        db = self._con()
        self._nodes = {name: i for i, name in db.execute("SELECT id, name FROM node")}

    def _node_id(self, db: sqlite3.Connection, name: str) -> int:
        nid = self._nodes.get(name)
        if nid is None:
            db.execute("INSERT OR IGNORE INTO node(name) VALUES (?)", (name,))
            nid = db.execute("SELECT id FROM node WHERE name = ?", (name,)).fetchone()[0]
            self._nodes[name] = nid
        return nid

    def _meta(self, db: sqlite3.Connection, key: str, default: float = 0.0) -> float:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else float(row[0])

    def _reject(self, msg: str) -> None:
        self.rejected += 1
        self.last_error = msg

    @staticmethod
    def _newer(last: tuple[float, int, int] | None, t: float, boot: int, seq: int) -> bool:
        """Is (t, boot, seq) a newer frame than last?  Same boot: by seq; else by time."""
        if last is None:
            return True
        if last[1] == boot:
            return seq > last[2]
        return t >= last[0]

    def _bump_last(self, db: sqlite3.Connection, newest: dict[int, tuple[float, int, int]]) -> None:
        for nid, (t, boot, seq) in newest.items():
            db.execute(
                "UPDATE node SET last_t = ?, last_boot = ?, last_seq = ? WHERE id = ? AND ("
                "last_t IS NULL OR (last_boot = ? AND last_seq < ?)"
                " OR (last_boot != ? AND last_t <= ?))",
                (t, boot, seq, nid, boot, seq, boot, t),
            )

    def close(self) -> None:
        with self._lock:
            if self._db is not None:
                try:
                    self._db.execute("PRAGMA optimize")
                finally:
                    self._db.close()
                    self._db = None

    def __enter__(self) -> Store:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- reports and events (§2) -------------------------------------------
    @staticmethod
    def check_report(report: Any) -> None:
        """Raises StoreError saying what is wrong with one report dict (with t_hub)."""
        try:
            _slow_report(report)
        except _Bad as e:
            raise StoreError(str(e)) from None

    def add_reports(self, reports: list[dict]) -> int:
        """Store a batch of reports in one transaction; returns the channel rows inserted.

        Bad reports are skipped and counted (``rejected``); duplicates of
        stored frames are ignored (INSERT OR IGNORE on (node, boot, seq, ch)).
        """
        if not isinstance(reports, list | tuple):
            raise StoreError(f"add_reports needs a list of dicts, got {type(reports).__name__}")
        with self._tx() as db:
            wm = self._meta(db, "raw_wm")
            rows: list[tuple] = []
            empty: list[tuple] = []
            newest: dict[int, tuple[float, int, int]] = {}
            node_id, newer = self._node_id, self._newer
            for r in reports:
                ok = _fast_report(r)
                if ok is None:
                    try:
                        ok = _slow_report(r)
                    except _Bad as e:
                        self._reject(str(e))
                        continue
                node, boot, seq, t_hub, (tick, n, drop, miss), chs = ok
                if t_hub < wm:
                    self.too_old += 1
                    continue
                nid = node_id(db, node)
                head = (nid, boot, seq)
                tail = (t_hub, tick, n, drop, miss)
                if chs:
                    for i, row in enumerate(chs):
                        rows.append((*head, i, *tail, *row))
                else:
                    empty.append((*head, -1, *tail))
                if newer(newest.get(nid), t_hub, boot, seq):
                    newest[nid] = (t_hub, boot, seq)
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO raw(node, boot, seq, ch, t_hub, tick, n, dropped, miss,"
                " mean, e, k, c, t_re, t_im, coll) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
                rows,
            )
            inserted = db.total_changes - before
            if empty:
                db.executemany(
                    "INSERT OR IGNORE INTO raw(node, boot, seq, ch, t_hub, tick, n, dropped, miss)"
                    " VALUES (?,?,?,?,?,?,?,?,?)",
                    empty,
                )
            self._bump_last(db, newest)
        return inserted

    def add_events(self, events: list[dict]) -> int:
        """Store collapse events (with t_hub), idempotent by (node, boot, seq); returns rows
        inserted.  Bad events are skipped and counted like reports."""
        if not isinstance(events, list | tuple):
            raise StoreError(f"add_events needs a list of dicts, got {type(events).__name__}")
        with self._tx() as db:
            rows = []
            newest: dict[int, tuple[float, int, int]] = {}
            for ev in events:
                try:
                    node, (boot, seq, tick, i, on, c, n), t_hub = _head(ev, _EVENT_INTS, "event")
                    if i > 7 or on > 1 or c > 32767:
                        raise _Bad(f"event from {node!r}: need i <= 7, on in 0/1, c <= 32767")
                except _Bad as e:
                    self._reject(str(e))
                    continue
                nid = self._node_id(db, node)
                rows.append((nid, boot, seq, t_hub, tick, i, on, c, n))
                if self._newer(newest.get(nid), t_hub, boot, seq):
                    newest[nid] = (t_hub, boot, seq)
            before = db.total_changes
            db.executemany(
                'INSERT OR IGNORE INTO event(node, boot, seq, t_hub, tick, ch, "on", c, n)'
                " VALUES (?,?,?,?,?,?,?,?,?)",
                rows,
            )
            inserted = db.total_changes - before
            self._bump_last(db, newest)
        return inserted

    def has_frame(self, node: str, boot: int, seq: int) -> bool:
        """Is this report or event stored?  (Reports only while still in the raw tier.)"""
        with self._read() as db:
            nid = self._nodes.get(node)
            if nid is None:
                return False
            key = (nid, boot, seq)
            q = "SELECT 1 FROM {} WHERE node = ? AND boot = ? AND seq = ? LIMIT 1"
            return bool(
                db.execute(q.format("raw"), key).fetchone()
                or db.execute(q.format("event"), key).fetchone()
            )

    def last_seq(self, node: str) -> tuple[int, int] | None:
        """(boot, seq) of the node's newest stored frame: within a boot the highest
        seq, across boots the latest t_hub.  Kept in the node table, so it
        survives compaction."""
        with self._read() as db:
            row = db.execute(
                "SELECT last_boot, last_seq FROM node WHERE name = ? AND last_t IS NOT NULL",
                (node,),
            ).fetchone()
            return None if row is None else (int(row[0]), int(row[1]))

    def nodes(self) -> list[str]:
        with self._read():
            return sorted(self._nodes)

    def reports(
        self,
        node: str,
        ch: int = 0,
        since: float | None = None,
        until: float | None = None,
        limit: int = 10000,
    ) -> list[dict]:
        """Raw rows of one node channel, oldest first (since <= t_hub <= until)."""
        with self._read() as db:
            nid = self._nodes.get(node)
            if nid is None:
                return []
            cur = db.execute(
                "SELECT boot, seq, tick, t_hub, n, dropped, miss, mean, e, k, c, t_re, t_im, coll"
                " FROM raw WHERE node = ? AND t_hub >= ? AND t_hub <= ? AND ch = ?"
                " ORDER BY t_hub, boot, seq LIMIT ?",
                (nid, -math.inf if since is None else since,
                 math.inf if until is None else until, ch, limit),
            )
            keys = ("boot", "seq", "tick", "t_hub", "n", "drop", "miss",
                    "mean", "e", "k", "c", "t_re", "t_im", "coll")
            return [{"node": node, "ch": ch, **dict(zip(keys, r, strict=True))} for r in cur]

    def events(
        self, node: str | None = None, since: float | None = None, until: float | None = None,
        limit: int = 10000,
    ) -> list[dict]:
        """Stored events, oldest first, optionally of one node."""
        with self._read() as db:
            names = {i: name for name, i in self._nodes.items()}
            cur = db.execute(
                'SELECT node, boot, seq, t_hub, tick, ch, "on", c, n FROM event'
                " WHERE t_hub >= ? AND t_hub <= ? AND (? IS NULL OR node = ?)"
                " ORDER BY t_hub, node, boot, seq LIMIT ?",
                (-math.inf if since is None else since, math.inf if until is None else until,
                 node, self._nodes.get(node, -1), limit),
            )
            keys = ("boot", "seq", "t_hub", "tick", "i", "on", "c", "n")
            return [{"node": names[r[0]], **dict(zip(keys, r[1:], strict=True))} for r in cur]

    def history(self, node: str, ch: int, since: float, until: float) -> list[dict]:
        """Raw, minute and hour tiers merged, oldest first: dicts with t (t_hub or the
        bucket's start), c (Q15), mean, e (averages), n_samples, coll (max), tier."""
        with self._read() as db:
            nid = self._nodes.get(node)
            if nid is None:
                return []
            out = []
            for tier, width in (("hour", HOUR), ("minute", MINUTE)):
                cur = db.execute(
                    f"SELECT b, n, sc, smean, se, coll FROM {tier}"
                    " WHERE node = ? AND ch = ? AND b >= ? AND b <= ? ORDER BY b",
                    (nid, ch, math.ceil(since / width), math.floor(until / width)),
                )
                out += [
                    {"t": float(b * width), "c": sc / n, "mean": sm / n, "e": se / n,
                     "n_samples": n, "coll": coll, "tier": tier}
                    for b, n, sc, sm, se, coll in cur
                ]
            cur = db.execute(
                "SELECT t_hub, c, mean, e, coll FROM raw WHERE node = ? AND t_hub >= ?"
                " AND t_hub <= ? AND ch = ? ORDER BY t_hub, boot, seq",
                (nid, since, until, ch),
            )
            out += [
                {"t": t, "c": float(c), "mean": float(m), "e": float(e), "n_samples": 1,
                 "coll": coll, "tier": "raw"}
                for t, c, m, e, coll in cur
            ]
        out.sort(key=lambda d: d["t"])  # stable: tiers do not overlap in time
        return out

    # -- retention ---------------------------------------------------------
    def compact(self, now: float) -> dict:
        """Downsample and expire (see the module docstring).  Idempotent; returns counts."""
        if not _finite(now):
            raise StoreError(f"compact: now must be a finite number, got {now!r}")
        counts = dict.fromkeys(
            ("raw_compacted", "minute_written", "minute_compacted", "hour_written",
             "hour_deleted", "events_deleted"), 0)
        with self._tx() as db:
            raw_wm = max(self._meta(db, "raw_wm"),
                         math.floor((now - self.raw_days * DAY) / MINUTE) * MINUTE)
            min_wm = max(self._meta(db, "minute_wm"),
                         math.floor((now - self.minute_days * DAY) / HOUR) * HOUR)
            nids = list(self._nodes.values())
            up = ("ON CONFLICT(node, b, ch) DO UPDATE SET n = n + excluded.n,"
                  " sc = sc + excluded.sc, smean = smean + excluded.smean,"
                  " se = se + excluded.se, coll = max(coll, excluded.coll)")
            for nid in nids:
                c0 = db.total_changes
                db.execute(
                    "INSERT INTO minute(node, ch, b, n, sc, smean, se, coll)"
                    " SELECT node, ch, CAST(t_hub / 60 AS INTEGER) AS bb, count(*), sum(c),"
                    " sum(mean), sum(e), max(coll) FROM raw"
                    " WHERE node = ? AND t_hub < ? AND ch >= 0 GROUP BY ch, bb " + up,
                    (nid, raw_wm),
                )
                counts["minute_written"] += db.total_changes - c0
                cur = db.execute("DELETE FROM raw WHERE node = ? AND t_hub < ?", (nid, raw_wm))
                counts["raw_compacted"] += cur.rowcount
            bmin = int(min_wm // MINUTE)
            bhour = math.floor((now - self.hour_days * DAY) / HOUR)  # hours ending <= cut-off
            cutoff = now - self.hour_days * DAY
            for nid in nids:  # per node: (node, b) is a prefix of the tiers' keys
                c0 = db.total_changes
                db.execute(
                    "INSERT INTO hour(node, ch, b, n, sc, smean, se, coll)"
                    " SELECT node, ch, b / 60 AS bb, sum(n), sum(sc), sum(smean), sum(se),"
                    " max(coll) FROM minute WHERE node = ? AND b < ? GROUP BY ch, bb " + up,
                    (nid, bmin),
                )
                counts["hour_written"] += db.total_changes - c0
                counts["minute_compacted"] += db.execute(
                    "DELETE FROM minute WHERE node = ? AND b < ?", (nid, bmin)).rowcount
                counts["hour_deleted"] += db.execute(
                    "DELETE FROM hour WHERE node = ? AND b < ?", (nid, bhour)).rowcount
            counts["events_deleted"] = db.execute(
                "DELETE FROM event WHERE t_hub < ?", (cutoff,)).rowcount
            db.executemany(
                "INSERT INTO meta(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                [("raw_wm", raw_wm), ("minute_wm", min_wm)],
            )
        return counts

    def vacuum(self) -> int:
        """Give free pages back to the file system (incremental vacuum); returns pages freed.
        Not needed for a bounded size: new rows reuse free pages anyway."""
        with self._lock:
            db = self._con()
            before = db.execute("PRAGMA freelist_count").fetchone()[0]
            db.execute("PRAGMA incremental_vacuum").fetchall()
            db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchall()
            return before - db.execute("PRAGMA freelist_count").fetchone()[0]

    def stats(self) -> dict:
        """Row counts per table and the file's size in bytes (used = without free pages)."""
        with self._read() as db:
            out: dict[str, int] = {}
            for t in ("raw", "minute", "hour", "event", "state", "memory", "log", "node"):
                out[t] = db.execute(f"SELECT count(*) FROM {t}").fetchone()[0]
            ps = db.execute("PRAGMA page_size").fetchone()[0]
            pages = db.execute("PRAGMA page_count").fetchone()[0]
            free = db.execute("PRAGMA freelist_count").fetchone()[0]
            out["bytes"] = ps * pages
            out["bytes_used"] = ps * (pages - free)
            return out

    # -- key/value state ---------------------------------------------------
    def save_state(self, key: str, value: dict) -> None:
        """Store a JSON-able dict under key (replacing it).  Complex numbers round-trip."""
        if not isinstance(key, str) or not key:
            raise StoreError(f"state key must be a non-empty str, got {key!r}")
        if not isinstance(value, dict):
            raise StoreError(f"state {key!r} must be a dict, got {type(value).__name__}")
        try:
            text = eventlog.encode(value)
        except (TypeError, ValueError) as e:
            raise StoreError(f"state {key!r}: {e}") from None
        with self._tx() as db:
            db.execute(
                "INSERT INTO state(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                (key, text),
            )

    def load_state(self, key: str) -> dict | None:
        with self._read() as db:
            row = db.execute("SELECT value FROM state WHERE key = ?", (key,)).fetchone()
            return None if row is None else eventlog.decode(row[0])

    def all_state(self, prefix: str = "") -> dict[str, dict]:
        with self._read() as db:
            rows = db.execute(
                "SELECT key, value FROM state WHERE substr(key, 1, ?) = ? ORDER BY key",
                (len(prefix), prefix),
            ).fetchall()
            return {k: eventlog.decode(v) for k, v in rows}

    def delete_state(self, key: str) -> bool:
        with self._tx() as db:
            return db.execute("DELETE FROM state WHERE key = ?", (key,)).rowcount > 0

    # -- BLEND memories (§7) -----------------------------------------------
    def remember(self, kind: str, signature: Signature, c: float, t: float) -> int:
        """A new memory with strength c (in [0, 1]); returns its id (never reused)."""
        if not isinstance(kind, str) or not kind:
            raise StoreError(f"memory kind must be a non-empty str, got {kind!r}")
        sig = _signature(signature)
        if not _finite(c) or not 0 <= c <= 1 or not _finite(t):
            raise StoreError(f"remember: need 0 <= c <= 1 and a finite t, got c={c!r}, t={t!r}")
        r = self.r0 * (1.0 - 0.5 * c)
        with self._tx() as db:
            cur = db.execute(
                "INSERT INTO memory(kind, created, c, s, t_ref, r, signature)"
                " VALUES (?, ?, ?, ?, ?, ?, ?)",
                (kind, float(t), float(c), float(c), float(t), r,
                 eventlog.encode({k: list(v) for k, v in sig.items()})),
            )
            return int(cur.lastrowid)

    @staticmethod
    def _decayed(s: float, r: float, t_ref: float, now: float) -> float:
        return s * math.exp(-r * max(0.0, now - t_ref))

    def strength(self, mem_id: int, now: float) -> float:
        with self._read() as db:
            row = db.execute("SELECT s, r, t_ref FROM memory WHERE id = ?", (mem_id,)).fetchone()
        if row is None:
            raise StoreError(f"no memory with id {mem_id!r}")
        return self._decayed(row[0], row[1], row[2], now)

    def recall(
        self, signature: dict, now: float, k: int = 5, boost: float = 0.2,
        min_similarity: float = 0.0,
    ) -> list[tuple[int, float, float]]:
        """The k memories most similar to signature (similarity > min_similarity, and
        not already below prune_below), best first: (id, similarity, new strength).
        Each is boosted: s ← s_now + boost·(1 − s_now), decay restarts at now."""
        sig = _signature(signature)
        if not 0 <= boost <= 1 or not _finite(now):
            raise StoreError(f"recall: need 0 <= boost <= 1 and a finite now, got {boost}, {now}")
        with self._tx() as db:
            found = []
            for mid, s, r, t_ref, text in db.execute(
                "SELECT id, s, r, t_ref, signature FROM memory"
            ):
                st = self._decayed(s, r, t_ref, now)
                if st < self.prune_below:
                    continue
                m = {n: tuple(v) for n, v in eventlog.decode(text).items()}
                sim = similarity(sig, m)
                if sim > min_similarity:
                    found.append((sim, st, mid))
            found.sort(key=lambda x: (-x[0], -x[1], x[2]))
            out = []
            for sim, st, mid in found[:k]:
                new = st + boost * (1.0 - st)
                db.execute(
                    "UPDATE memory SET s = ?, t_ref = ?, recalls = recalls + 1 WHERE id = ?",
                    (new, float(now), mid),
                )
                out.append((mid, sim, new))
            return out

    def decay(self, now: float) -> int:
        """Delete memories whose strength at now is below prune_below; returns how many."""
        with self._tx() as db:
            dead = [
                (mid,)
                for mid, s, r, t_ref in db.execute("SELECT id, s, r, t_ref FROM memory")
                if self._decayed(s, r, t_ref, now) < self.prune_below
            ]
            db.executemany("DELETE FROM memory WHERE id = ?", dead)
            return len(dead)

    def memories(self, now: float) -> list[dict]:
        """All memories by id: id, kind, created, c, strength (at now), t_ref, recalls,
        signature {node: (c, tau, re, im)}."""
        with self._read() as db:
            rows = db.execute(
                "SELECT id, kind, created, c, s, r, t_ref, recalls, signature FROM memory"
                " ORDER BY id"
            ).fetchall()
        return [
            {"id": mid, "kind": kind, "created": created, "c": c,
             "strength": self._decayed(s, r, t_ref, now), "t_ref": t_ref, "recalls": n,
             "signature": {k: tuple(v) for k, v in eventlog.decode(sig).items()}}
            for mid, kind, created, c, s, r, t_ref, n, sig in rows
        ]

    # -- hash-chained event log ---------------------------------------------
    def log(self, kind: str, data: dict, t: float) -> str:
        """Append to the event log; returns the entry's hash (hex)."""
        with self._tx() as db:
            try:
                return eventlog.append(db, kind, data, t)
            except (TypeError, ValueError) as e:
                raise StoreError(f"log {kind!r}: {e}") from None

    def log_tail(self, n: int = 100) -> list[dict]:
        """The last n entries, oldest first: seq, t, kind, data, prev, hash."""
        with self._read() as db:
            return eventlog.tail(db, n)

    def log_head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry; keep a copy elsewhere to detect truncation."""
        with self._read() as db:
            return eventlog.head(db)

    def verify_log(self) -> tuple[bool, int, int | None]:
        """(ok, entries checked, seq of the first bad entry) - see hub.eventlog.verify."""
        with self._read() as db:
            return eventlog.verify(db)

