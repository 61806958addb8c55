"""Reports, collapse events and the downsampling tiers of the hub's store.

``ReportsMixin`` is part of :class:`becomingone.store.Store` (which supplies the
connection, the transactions and the node-id cache); use it through ``Store``.

Reports.  One row per (node, boot, seq, channel) in the ``raw`` tier.  Each
report is validated; a bad one (missing field, wrong type, out-of-range value)
is skipped, counted in ``Store.rejected`` (its message kept in
``Store.last_error``) and the rest of the batch is stored.  ``check_report``
raises ``StoreError`` with the message for a single report.  A report with an
empty channel list is kept as one row with ``ch = -1`` (no values), so
``has_frame`` and the dedup key still see it; ``reports``/``history`` ignore it.
A report's per-lag spectra (``coh``, optional here) are kept per channel row
as a blob of u16 (``spectra`` reads them back), in the raw tier only.

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
"""

from __future__ import annotations

import math
import sqlite3
from collections.abc import Callable
from contextlib import AbstractContextManager
from typing import Any

from becomingone.store.checks import (
    Bad,
    StoreError,
    check_event,
    coh_blobs,
    coh_list,
    fast_report,
    finite,
    slow_report,
)

DAY = 86400.0
MINUTE = 60
HOUR = 3600

_REPORT_KEYS = ("boot", "seq", "tick", "t_hub", "n", "drop", "miss",
                "mean", "e", "k", "c", "t_re", "t_im", "coll")
_EVENT_KEYS = ("boot", "seq", "t_hub", "tick", "i", "on", "c", "n")
# merging a bucket into an existing one of the same (node, b, ch) is exact: sums and max
_MERGE = ("ON CONFLICT(node, b, ch) DO UPDATE SET n = n + excluded.n,"
          " sc = sc + excluded.sc, smean = smean + excluded.smean,"
          " se = se + excluded.se, coll = max(coll, excluded.coll)")


def _span(since: float | None, until: float | None) -> tuple[float, float]:
    return -math.inf if since is None else since, math.inf if until is None else until


def _newer(last: tuple[float, int, int] | None, t: float, boot: int, seq: int) -> bool:
    """Is (t, boot, seq) a newer frame than last?  Same boot: by seq; else by time."""
    if last is None:
        return True
    if last[1] == boot:
        return seq > last[2]
    return t >= last[0]


class ReportsMixin:
    """Store methods for reports, events, history and compaction."""

    # supplied by becomingone.store.Store
    _nodes: dict[str, int]
    _tx: Callable[[], AbstractContextManager[sqlite3.Connection]]
    _read: Callable[[], AbstractContextManager[sqlite3.Connection]]
    raw_days: float
    minute_days: float
    hour_days: float
    rejected: int
    too_old: int
    last_error: str | None

    # -- helpers -----------------------------------------------------------
    def _node_id(self, db: sqlite3.Connection, name: str) -> int:
        nid = self._nodes.get(name)
        if nid is None:
            db.execute("INSERT OR IGNORE INTO node(name) VALUES (?)", (name,))
            nid = db.execute("SELECT id FROM node WHERE name = ?", (name,)).fetchone()[0]
            self._nodes[name] = nid
        return nid

    @staticmethod
    def _meta(db: sqlite3.Connection, key: str, default: float = 0.0) -> float:
        row = db.execute("SELECT value FROM meta WHERE key = ?", (key,)).fetchone()
        return default if row is None else float(row[0])

    def _reject(self, msg: str) -> None:
        self.rejected += 1
        self.last_error = msg

    @staticmethod
    def _bump_last(db: sqlite3.Connection, newest: dict[int, tuple[float, int, int]]) -> None:
        for nid, (t, boot, seq) in newest.items():
            db.execute(
                "UPDATE node SET last_t = ?, last_boot = ?, last_seq = ? WHERE id = ? AND ("
                "last_t IS NULL OR (last_boot = ? AND last_seq < ?)"
                " OR (last_boot != ? AND last_t <= ?))",
                (t, boot, seq, nid, boot, seq, boot, t),
            )

    # -- reports and events (docs/kairos.md §2) ------------------------------
    @staticmethod
    def check_report(report: Any) -> None:
        """Raises StoreError saying what is wrong with one report dict (with t_hub)."""
        try:
            slow_report(report)
        except Bad as e:
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
            node_id, newer = self._node_id, _newer  # locals: this loop is the hot path
            for r in reports:
                ok = fast_report(r)
                if ok is None:
                    try:
                        ok = slow_report(r)
                    except Bad as e:
                        self._reject(str(e))
                        continue
                node, boot, seq, t_hub, (tick, n, drop, miss), chs = ok
                try:
                    blobs = coh_blobs(node, r.get("coh"), len(chs))
                except Bad as e:
                    self._reject(str(e))
                    continue
                if t_hub < wm:
                    self.too_old += 1
                    continue
                nid = node_id(db, node)
                head = (nid, boot, seq)
                tail = (t_hub, tick, n, drop, miss)
                if chs:
                    for i, row in enumerate(chs):
                        rows.append((*head, i, *tail, *row, blobs[i]))
                else:
                    empty.append((*head, -1, *tail))
                if newer(newest.get(nid), t_hub, boot, seq):
                    newest[nid] = (t_hub, boot, seq)
            before = db.total_changes
            db.executemany(
                "INSERT OR IGNORE INTO raw(node, boot, seq, ch, t_hub, tick, n, dropped, miss,"
                " mean, e, k, c, t_re, t_im, coll, coh) VALUES (?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?,?)",
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
                    node, (boot, seq, tick, i, on, c, n), t_hub = check_event(ev)
                except Bad as e:
                    self._reject(str(e))
                    continue
                nid = self._node_id(db, node)
                rows.append((nid, boot, seq, t_hub, tick, i, on, c, n))
                if _newer(newest.get(nid), t_hub, boot, seq):
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

    def recent_seqs(self, node: str, window: int = 128) -> tuple[int, list[int]] | None:
        """(boot, seqs): the node's newest stored boot (as last_seq) and the
        seqs of its reports and events stored in the last `window` seqs up
        to the newest, ascending; what a restarted hub seeds its dedup with."""
        last = self.last_seq(node)
        if last is None:
            return None
        boot, top = last
        with self._read() as db:
            key = (self._nodes[node], boot, top - window + 1, top)
            q = "SELECT DISTINCT seq FROM {} WHERE node = ? AND boot = ? AND seq BETWEEN ? AND ?"
            seqs = {r[0] for t in ("raw", "event") for r in db.execute(q.format(t), key)}
        return boot, sorted(seqs | {top})

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
                (nid, *_span(since, until), ch, limit),
            )
            return [{"node": node, "ch": ch, **dict(zip(_REPORT_KEYS, r, strict=True))}
                    for r in cur]

    def spectra(self, node: str, ch: int, since: float, until: float,
                limit: int = 200000) -> list[tuple[float, list[int]]]:
        """(t_hub, Q15 per lag) of the raw rows of one node channel that carry
        a spectrum, oldest first (since <= t_hub <= until)."""
        with self._read() as db:
            nid = self._nodes.get(node)
            if nid is None:
                return []
            cur = db.execute(
                "SELECT t_hub, coh FROM raw WHERE node = ? AND t_hub >= ? AND t_hub <= ?"
                " AND ch = ? AND coh IS NOT NULL ORDER BY t_hub, boot, seq LIMIT ?",
                (nid, since, until, ch, limit),
            )
            return [(t, coh_list(b)) for t, b in cur]

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
                (*_span(since, until), node, self._nodes.get(node, -1), limit),
            )
            return [{"node": names[r[0]], **dict(zip(_EVENT_KEYS, r[1:], strict=True))}
                    for r in cur]

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
        if not finite(now):
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
            for nid in nids:
                c0 = db.total_changes
                db.execute(
                    "INSERT INTO minute(node, ch, b, n, sc, smean, se, coll)"
                    " SELECT node, ch, CAST(t_hub / 60 AS INTEGER) AS bb, count(*), sum(c),"
                    " sum(mean), sum(e), max(coll) FROM raw"
                    " WHERE node = ? AND t_hub < ? AND ch >= 0 GROUP BY ch, bb " + _MERGE,
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
                    " max(coll) FROM minute WHERE node = ? AND b < ? GROUP BY ch, bb " + _MERGE,
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
