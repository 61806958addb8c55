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
stored as ``{"$complex": [re, im]}`` and round-trip) and the hash chain, and
:mod:`becomingone.store.anchor` for the key and the signed head kept beside the file.

Health.  Opening a store file runs ``PRAGMA quick_check`` (stopped after
``check_seconds``) and refuses a damaged file with a StoreError that says what
to do.  While it runs, every SQLite error is counted in ``health()``: a
failing write makes it not ok until a write succeeds again; a corruption
error ("database disk image is malformed") keeps it not ok until the store
is closed.  New files (the database and the key/head files) are made 0600.
"""

from __future__ import annotations

import os
import secrets
import sqlite3
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager, suppress

from becomingone.store import anchor, eventlog
from becomingone.store.checks import Signature, StoreError, finite
from becomingone.store.memories import MemoriesMixin, similarity
from becomingone.store.reports import DAY, HOUR, MINUTE, ReportsMixin

__all__ = ["DAY", "HOUR", "MINUTE", "SCHEMA_VERSION", "LogCheck", "Signature", "Store",
           "StoreError", "similarity"]

LogCheck = eventlog.LogCheck
# 2: raw.coh, the report's per-lag spectrum; 3: log.mac, the entries' signatures
# (older stores are upgraded on open)
SCHEMA_VERSION = 3
CHECK_SECONDS = 10.0  # PRAGMA quick_check at open stops after this (a big file on an SD card)
_DAMAGED = (11, 26)  # SQLITE_CORRUPT, SQLITE_NOTADB (primary result codes)


def _damaged(path: str, detail: str) -> StoreError:
    return StoreError(
        f"store {path} is damaged ({detail}): the hub will not use it. Move it aside (with"
        f" its -wal file) to start a new store, or save what it holds with:"
        f" sqlite3 {path} .recover | sqlite3 recovered.db")


def _is_damage(e: sqlite3.Error) -> bool:
    return (getattr(e, "sqlite_errorcode", 0) or 0) & 0xFF in _DAMAGED

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
    (reports below the compaction watermark, not stored), ``last_error``
    (the last rejection).  ``health()`` says whether SQLite itself fails.

    ``log_key``: the event log's key file (default ``<path>.key``, made 0600
    when missing); ``check_seconds`` bounds the integrity check at open.
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
        log_key: str | os.PathLike = "",
        check_seconds: float = CHECK_SECONDS,
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
        self.in_memory = self.path in ("", ":memory:")
        self.integrity = "not checked"  # what the check at open found: "ok", or why not all
        self.log_problem = ""  # what the start-up check of the log's head found
        self._failure: dict | None = None
        self._failures = 0
        self._damage = ""
        self._key = b""
        self._head_file: str | None = None
        self._signed: eventlog.Signed | None = None  # the newest head anchored
        self._log_head: tuple[int, str] = (0, eventlog.GENESIS)
        self._anchored_at = 0.0
        self._db: sqlite3.Connection | None = None
        try:
            if not self.in_memory:
                self._create_private()
            self._db = sqlite3.connect(self.path, isolation_level=None, check_same_thread=False)
            self._open(synchronous.upper(), check_seconds)
            self._open_log(os.fspath(log_key))
        except (sqlite3.Error, StoreError, OSError) as e:
            if self._db is not None:
                self._db.close()
                self._db = None
            if isinstance(e, StoreError):
                raise
            if isinstance(e, sqlite3.Error) and _is_damage(e):
                raise _damaged(self.path, str(e)) from e
            raise StoreError(f"cannot open store {self.path!r}: {e}") from e

    def _create_private(self) -> None:
        """A new database file is made 0600 (SQLite gives its -wal and -shm
        files the same mode): it holds node ids, the API token's hash ..."""
        with suppress(FileExistsError):
            os.close(os.open(self.path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600))

    def _open(self, synchronous: str, check_seconds: float) -> None:
        db = self._con()
        db.execute("PRAGMA busy_timeout = 10000")
        version = db.execute("PRAGMA user_version").fetchone()[0]
        if version > SCHEMA_VERSION:
            raise StoreError(f"{self.path!r} has schema {version}, newer than {SCHEMA_VERSION}")
        if version > 0 and not self.in_memory:
            self._quick_check(check_seconds)
        else:
            self.integrity = "in memory" if self.in_memory else "new store"
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
        elif version < SCHEMA_VERSION:
            with self._tx():
                if version < 2:  # a store from before reports kept their spectrum
                    db.execute("ALTER TABLE raw ADD COLUMN coh BLOB")
                cols = {r[1] for r in db.execute("PRAGMA table_info(log)")}
                if version < 3 and "mac" not in cols:  # ... and before the log was signed
                    db.execute(eventlog.LOG_UPGRADE)
                db.execute(f"PRAGMA user_version = {SCHEMA_VERSION}")
        self._load_nodes()

    def _quick_check(self, seconds: float) -> None:
        """PRAGMA quick_check, interrupted after `seconds` (then the part it
        read was fine: the store opens, and says so in ``integrity``)."""
        db = self._con()
        deadline = time.monotonic() + seconds
        db.set_progress_handler(lambda: time.monotonic() > deadline, 10000)
        try:
            problems = [r[0] for r in db.execute("PRAGMA quick_check(5)")]
        except sqlite3.OperationalError as e:
            if "interrupt" not in str(e):
                raise
            self.integrity = f"quick_check stopped after {seconds:g} s, no damage until then"
            return
        finally:
            db.set_progress_handler(None, 0)
        if problems != ["ok"]:
            detail = " ".join(" ".join(problems).split())
            detail = detail if len(detail) <= 160 else detail[:157] + "..."
            raise _damaged(self.path, f"quick_check: {detail}")
        self.integrity = "ok"

    def _open_log(self, log_key: str) -> None:
        """The key that signs the log and the start-up check of its head."""
        db = self._con()
        if self.in_memory:  # nobody can edit it from outside: key and head in memory
            self._log_head = eventlog.head(db)
            self._key = secrets.token_bytes(anchor.KEY_BYTES)
            self._signed = anchor.sign(self._key, *self._log_head)
            return
        kp = anchor.key_path(self.path, log_key)
        self._head_file = anchor.head_path(kp)
        key = anchor.load_key(kp)
        if key is None:
            if anchor.has_signed_entries(db) or os.path.exists(self._head_file):
                raise StoreError(
                    f"store {self.path}: its event log is signed with the key in {kp}, which"
                    f" is missing: put it back (or set [hub] log_key to where it is); to start"
                    f" a new store instead, move {self.path} aside")
            key = anchor.make_key(kp)
        self._key = key
        try:
            signed = anchor.read_head(self._head_file)
        except ValueError as e:
            signed, self.log_problem = None, str(e)
        if not self.log_problem:
            self.log_problem, self._log_head = anchor.head_problem(db, key, signed)
        if self.log_problem:  # keep the head file as it is: it is the evidence
            self.log_problem += (f" (becomingone verify-log --db {self.path} says more;"
                                 " --sign-head accepts the log as it is)")
            return
        # What this store signs from now on: the signed head, or the entries
        # after it that check out (written since the last anchor).
        self._signed = signed
        self._anchor(force=True)

    def _anchor(self, force: bool = False) -> None:
        """Sign the log's newest entry into the head file, when it is newer
        than the last one signed (at most every ANCHOR_EVERY s unless force)."""
        head = self._log_head
        if not self._key or self.log_problem or (
                self._signed and (self._signed.seq, self._signed.hash) == head):
            return  # (no key yet: still opening)
        now = time.monotonic()
        if not force and self._head_file and now - self._anchored_at < anchor.ANCHOR_EVERY:
            return
        signed = anchor.sign(self._key, *head)
        if self._head_file is not None:
            try:
                anchor.write_head(self._head_file, signed)
            except OSError as e:  # the log is kept; only its anchor is late
                self._note_failure(f"cannot write the log's head file: {e}", damage=False)
                return
        self._signed, self._anchored_at = signed, now

    def _note_failure(self, msg: str, damage: bool) -> None:
        self._failures += 1
        if self._failure is None:
            self._failure = {"error": msg, "since": time.time()}
        self._failure["last"] = msg
        if damage and not self._damage:
            self._damage = msg

    def _failed(self, what: str, e: sqlite3.Error) -> None:
        self._note_failure(f"{what}: {e}", _is_damage(e))

    def failing(self) -> str:
        """"" while the store works, else one line for the status line and the
        exit status: what fails, since when, how often."""
        h = self.health()
        if h["ok"]:
            return ""
        since = time.strftime("%H:%M:%S", time.localtime(h["since"])) if h["since"] else "?"
        what = "STORE DAMAGED" if h["damaged"] else "STORE FAILING"
        return f"{what} since {since} ({h['failures']} failed operations): {h['error']}"

    def health(self) -> dict:
        """{"ok", "error", "since", "failures", "damaged", "integrity", "log"}: ok is
        False while writes fail (until one succeeds) and for good once SQLite has
        reported the file damaged; failures counts every failed operation."""
        f = self._failure
        error = self._damage or (f["last"] if f else None)
        return {"ok": not self._damage and f is None, "error": error,
                "since": f["since"] if f else None, "failures": self._failures,
                "damaged": bool(self._damage), "integrity": self.integrity,
                "log": self.log_problem or "ok"}

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
                self._failed("cannot start a transaction", e)
                raise StoreError(f"cannot start a transaction: {e}") from e
            try:
                yield db
                db.execute("COMMIT")
            except BaseException as e:
                with suppress(sqlite3.Error):
                    db.execute("ROLLBACK")
                with suppress(sqlite3.Error):
                    self._load_nodes()  # ids handed out in the failed transaction are gone
                if isinstance(e, sqlite3.Error):
                    self._failed("store write failed", e)
                    raise StoreError(f"store write failed: {e}") from e
                raise
            self._failure = None  # writes work (again); damage stays
            self._anchor()

    @contextmanager
    def _read(self) -> Iterator[sqlite3.Connection]:
        with self._lock:
            try:
                yield self._con()
            except sqlite3.Error as e:
                self._failed("store read failed", e)
                raise StoreError(f"store read failed: {e}") from e

    def _load_nodes(self) -> None:
        db = self._con()
        self._nodes = {name: i for i, name in db.execute("SELECT id, name FROM node")}

    def close(self) -> None:
        """Anchor the log's head, close the file.  Never raises for a damaged
        file: health() has already said what failed."""
        with self._lock:
            if self._db is not None:
                try:
                    self._anchor(force=True)
                    self._db.execute("PRAGMA optimize")
                except sqlite3.Error as e:
                    self._failed("closing the store", e)
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
        """Append to the event log (signed); returns the entry's hash (hex)."""
        with self._tx() as db:
            try:
                seq, h = eventlog.append(db, kind, data, t, self._key)
            except (TypeError, ValueError) as e:
                raise StoreError(f"log {kind!r}: {e}") from None
            self._log_head = (seq, h)  # anchored when the transaction has committed
        return h

    def log_tail(self, n: int = 100) -> list[dict]:
        """The last n entries, oldest first: seq, t, kind, data, prev, hash."""
        with self._read() as db:
            return eventlog.tail(db, n)

    def log_head(self) -> tuple[int, str]:
        """(seq, hash) of the newest entry; keep a copy elsewhere to detect truncation."""
        with self._read() as db:
            return eventlog.head(db)

    def check_log(self) -> LogCheck:
        """The event log checked: chain, signatures and the signed head
        (see :func:`becomingone.store.eventlog.verify`); ``problem`` says where and how."""
        with self._read() as db:
            return anchor.check(db, self._key, self._head_file, self._signed)

    def verify_log(self) -> tuple[bool, int, int | None]:
        """(ok, entries checked, position of the first bad entry): check_log, short."""
        c = self.check_log()
        return c.ok, c.checked, c.bad
