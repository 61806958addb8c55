"""The event log's anchor: the key that signs it and its signed head, kept
outside the database (:mod:`becomingone.store.eventlog` has the signatures).

Files (both mode 0600, beside the database unless ``[hub] log_key`` says
where the key goes; the head goes beside the key):

* the key file, ``<db>.key``: 32 random bytes as hex, made once (``O_EXCL``)
  when a store that has none is opened.  Whoever holds it can sign a log,
  so keep it where the database's editors cannot write;
* the head file, ``<db>.head`` (``<key>.head`` with ``.key`` replaced): one
  JSON object ``{"seq": N, "hash": H, "mac": M}``, the newest entry the store
  had signed, rewritten (a temporary file, fsync, rename) after new entries
  at most once per ``ANCHOR_EVERY`` seconds and when the store closes.

A log that ends before the head's seq was truncated; one whose entry at that
seq has another hash was rewritten.  Entries after the head (written since
the last anchor, e.g. before a crash) are still covered by their own macs.
"""
from __future__ import annotations

import json
import os
import secrets
import sqlite3
from pathlib import Path
from urllib.parse import quote

from becomingone.files import write_atomic
from becomingone.store import eventlog
from becomingone.store.checks import StoreError
from becomingone.store.eventlog import LogCheck, Signed

KEY_BYTES = 32
ANCHOR_EVERY = 1.0  # s: the head file is rewritten at most this often (and on close)


def key_path(db_path: str, configured: str = "") -> str:
    """Where the key of the store at db_path lives: configured, or ``<db>.key``."""
    return configured or f"{db_path}.key"


def head_path(key: str) -> str:
    """The head file beside the key: ``x.key`` -> ``x.head``, else ``x`` -> ``x.head``."""
    return key[:-len(".key")] + ".head" if key.endswith(".key") else key + ".head"


def load_key(path: str) -> bytes | None:
    """The key in path, None when there is no such file; StoreError if it is not a key."""
    try:
        text = Path(path).read_text(encoding="ascii").strip()
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise StoreError(f"cannot read the event log's key file {path}: {e}") from None
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != KEY_BYTES:
        raise StoreError(f"{path} is not an event log key ({KEY_BYTES} bytes as hex)")
    return key


def make_key(path: str) -> bytes:
    """A new key in a new file (mode 0600; never replaces one)."""
    key = secrets.token_bytes(KEY_BYTES)
    try:
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as e:
        raise StoreError(f"cannot make the event log's key file {path}: {e.strerror}") from None
    with os.fdopen(fd, "w", encoding="ascii") as f:
        f.write(key.hex() + "\n")
        f.flush()
        os.fsync(f.fileno())
    return key


def read_head(path: str) -> Signed | None:
    """The signed head in path, None when there is none; ValueError if unreadable."""
    try:
        text = Path(path).read_text(encoding="utf-8")
    except FileNotFoundError:
        return None
    except (OSError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the head file {path}: {e}") from None
    try:
        d = json.loads(text)
        signed = Signed(int(d["seq"]), str(d["hash"]), str(d["mac"]))
    except (ValueError, TypeError, KeyError):
        raise ValueError(f"the head file {path} is not a signed head") from None
    return signed


def write_head(path: str, signed: Signed) -> None:
    """Replace the head file atomically (a crash leaves the old or the new one)."""
    write_atomic(path, json.dumps({"seq": signed.seq, "hash": signed.hash,
                                    "mac": signed.mac}) + "\n")


def sign(key: bytes, seq: int, h: str) -> Signed:
    return Signed(seq, h, eventlog.head_mac(key, seq, h))


def has_signed_entries(db: sqlite3.Connection) -> bool:
    cols = {r[1] for r in db.execute("PRAGMA table_info(log)")}
    return "mac" in cols and db.execute(
        "SELECT 1 FROM log WHERE mac IS NOT NULL LIMIT 1").fetchone() is not None


def head_problem(db: sqlite3.Connection, key: bytes,
                 signed: Signed | None) -> tuple[str, tuple[int, str]]:
    """The check at start-up: does the log still reach the signed head with the
    same hash, and are the entries after it (written since the last anchor)
    linked and signed?  ("" or the problem, the newest entry that is fine)."""
    if signed is None:
        if has_signed_entries(db):
            return "the head file is missing: truncation cannot be ruled out", (0, "")
        return "", eventlog.head(db)  # a new store, or one from before the log was signed
    if not signed.valid(key):
        return "the head's signature does not match the key (head file edited?)", (0, "")
    last, _ = eventlog.head(db)
    if last < signed.seq:
        return (f"head signature does not match: the log was rewritten or truncated after"
                f" entry {last} (the signed head is entry {signed.seq})"), (0, "")
    if eventlog.hash_at(db, signed.seq) != signed.hash:
        return (f"head signature does not match: entry {signed.seq} is not the one signed:"
                f" the log was rewritten at or before entry {signed.seq}"), (0, "")
    seq, prev = signed.seq, signed.hash
    for row in db.execute("SELECT seq, t, kind, data, prev, hash, mac FROM log WHERE seq > ?"
                          " ORDER BY seq", (signed.seq,)):
        problem = eventlog.entry_problem(seq + 1, prev, row, key)
        if problem:
            return problem, (0, "")
        seq, prev = row[0], row[5]
    return "", (seq, prev)


def check(db: sqlite3.Connection, key: bytes, head_file: str | None,
          signed: Signed | None = None) -> LogCheck:
    """The whole check: chain, entry signatures, then the head (from head_file,
    or the signed head given for an in-memory store)."""
    if head_file is not None:
        try:
            signed = read_head(head_file)
        except ValueError as e:
            return LogCheck(False, 0, None, str(e))
    res = eventlog.verify(db, key, signed)
    if res.ok and signed is None and has_signed_entries(db):
        return LogCheck(False, res.checked, None,
                        f"no signed head ({head_file} is missing): the log may have been"
                        " truncated", res.unsigned)
    return res


def _open_ro(db_path: str) -> sqlite3.Connection:
    if not Path(db_path).is_file():
        raise StoreError(f"{db_path}: no such database")
    uri = f"file:{quote(os.path.abspath(db_path))}?mode=ro"
    try:
        db = sqlite3.connect(uri, uri=True)
        db.execute("SELECT count(*) FROM log").fetchone()
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the event log in {db_path}: {e}") from None
    return db


def verify_file(db_path: str, key_file: str = "") -> tuple[LogCheck, str]:
    """verify-log: (what the check found, the key file used), reading the
    database without writing to it."""
    if not Path(db_path).is_file():
        raise StoreError(f"{db_path}: no such database")
    kp = key_path(db_path, key_file)
    key = load_key(kp)
    if key is None:
        raise StoreError(f"no key file {kp}: the log's signatures cannot be checked (a hub"
                         " makes it beside the database; --key FILE if it is elsewhere)")
    db = _open_ro(db_path)
    try:
        return check(db, key, head_path(kp)), kp
    except sqlite3.Error as e:
        raise StoreError(f"cannot read the event log in {db_path}: {e}") from None
    finally:
        db.close()


def sign_head(db_path: str, key_file: str = "") -> Signed:
    """Sign the log's head as it is now (verify-log --sign-head: after a person
    looked at what verify-log found, so that the hub anchors again)."""
    kp = key_path(db_path, key_file)
    key = load_key(kp)
    if key is None:
        raise StoreError(f"no key file {kp}")
    db = _open_ro(db_path)
    try:
        signed = sign(key, *eventlog.head(db))
    finally:
        db.close()
    write_head(head_path(kp), signed)
    return signed
