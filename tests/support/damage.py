"""Real damage to a real SQLite store, for the store-health tests."""
import sqlite3
import time


def pages(path):
    """(page size, page count) of the database file at path."""
    db = sqlite3.connect(path)
    try:
        return (db.execute("PRAGMA page_size").fetchone()[0],
                db.execute("PRAGMA page_count").fetchone()[0])
    finally:
        db.close()


def overwrite(path, first, last=None, byte=0xA5):
    """Overwrite pages first..last (1-based, inclusive) of the file with garbage,
    as a bad sector or a stray write would."""
    size, count = pages(path)
    last = first if last is None else min(last, count)
    with open(path, "r+b") as f:
        for pg in range(first, last + 1):
            f.seek((pg - 1) * size)
            f.write(bytes([byte]) * size)


def damage_live(path, tries=100):
    """Damage a store another connection (a running hub) has open: checkpoint
    its WAL into the file (so the hub must read pages from the file again: a
    checkpoint resets the WAL, and every connection then drops its page cache),
    then overwrite every page but the schema's (page 1)."""
    db = sqlite3.connect(path, timeout=10)
    try:
        for _ in range(tries):
            busy, _, _ = db.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()
            if not busy:
                break
            time.sleep(0.05)
    finally:
        db.close()
    overwrite(path, 2, 1 << 30)
