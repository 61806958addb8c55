"""The hub's persistent store: reports, events, state, BLEND memories, event log.

One SQLite file (stdlib ``sqlite3``) holds everything the hub must keep across
a restart (docs/kairos.md §2 and §7).  ``StoreError`` is the root of this layer's
exceptions; sqlite3 errors come out wrapped in it.

Durability.  The database runs in WAL mode with ``synchronous=NORMAL``.  A
commit appends the transaction's pages to the ``-wal`` file with write(2)
before it returns, and the file is fsync'ed only at checkpoints.  So once a
call such as ``add_reports`` has returned, its data is in the operating
system's page cache and survives the hub process being killed (even
``kill -9``): the next open replays the WAL.  A power cut or kernel crash can
lose the last transactions before a checkpoint, but never corrupts the file.
Pass ``synchronous="FULL"`` to fsync on every commit (slower, power-safe).

``Store`` is this module's connection, transactions, key/value state and log;
its other methods live beside it, by concern:

* :mod:`becomingone.store.reports`: reports, events, ``history`` and the downsampling
  tiers (``compact``), with the units and time ranges they use;
* :mod:`becomingone.store.memories`: BLEND memories and ``similarity``;
* :mod:`becomingone.store.checks`: validation of reports, events and signatures.

State and log: see :mod:`becomingone.store.eventlog` for the JSON codec (complex numbers are
stored as ``{"$complex": [re, im]}`` and round-trip) and the hash chain.
"""

from __future__ import annotations

import os
import sqlite3
import threading
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from becomingone.store import eventlog
from becomingone.store.checks import Signature, StoreError, finite
from becomingone.store.memories import MemoriesMixin, similarity
from becomingone.store.reports import DAY, HOUR, MINUTE, ReportsMixin

__all__ = ["DAY", "HOUR", "MINUTE", "SCHEMA_VERSION", "Signature", "Store", "StoreError",
           "similarity"]

SCHEMA_VERSION = 2  # 2: raw.coh, the report's per-lag spectrum (1 is upgraded on open)

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
    coh BLOB,
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


class Store(ReportsMixin, MemoriesMixin):
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
        if not all(finite(x) for x in (raw_days, minute_days, hour_days, r0, prune_below)):
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
        elif version == 1:  # a store from before reports kept their spectrum
            with self._tx():
                db.execute("ALTER TABLE raw ADD COLUMN coh BLOB")
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

    # -- the file ----------------------------------------------------------
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
        self.save_states({key: value})

    def save_states(self, items: dict[str, dict]) -> None:
        """save_state for many keys in one transaction (all or none)."""
        rows = []
        for key, value in items.items():
            if not isinstance(key, str) or not key:
                raise StoreError(f"state key must be a non-empty str, got {key!r}")
            if not isinstance(value, dict):
                raise StoreError(f"state {key!r} must be a dict, got {type(value).__name__}")
            try:
                rows.append((key, eventlog.encode(value)))
            except (TypeError, ValueError) as e:
                raise StoreError(f"state {key!r}: {e}") from None
        with self._tx() as db:
            db.executemany(
                "INSERT INTO state(key, value) VALUES (?, ?)"
                " ON CONFLICT(key) DO UPDATE SET value = excluded.value",
                rows,
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
        """(ok, entries checked, seq of the first bad entry) - see eventlog.verify."""
        with self._read() as db:
            return eventlog.verify(db)
