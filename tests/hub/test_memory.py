"""becomingone.store: the hub's SQLite store (reports, tiers, state, BLEND memories, log).

Real SQLite files in tmp_path.  The kill -9 test runs a child process that
acknowledges each committed batch on stdout; every acknowledged frame must
survive the SIGKILL.
"""
import cmath
import json
import math
import os
import signal
import sqlite3
import subprocess
import sys

import numpy as np
import pytest
from support import damage
from support.rigs import wait_for

from becomingone import cli
from becomingone.store import DAY, SCHEMA_VERSION, Store, StoreError, anchor, eventlog, similarity


def rep(node="a", seq=0, t=1000.0, boot=1, chs=None, tick=None, **kw):
    """A decoded wire report plus t_hub."""
    if chs is None:
        chs = [[100, 5000, 2, 20000, 300, 0, 0], [-50, 700, 1, 1000, -20, 0, 1]]
    r = {"t": "report", "node": node, "boot": boot, "seq": seq,
         "tick": seq * 10 if tick is None else tick, "n": 10, "drop": 0, "miss": 0,
         "ch": chs, "t_hub": t}
    r.update(kw)
    return r


def ev(node="a", seq=0, t=1000.0, boot=1, i=0, on=1, c=30000):
    return {"t": "event", "node": node, "boot": boot, "seq": seq, "tick": seq * 10,
            "i": i, "on": on, "c": c, "n": seq * 10 + 3, "t_hub": t}


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "hub.db")
    yield s
    s.close()


# -- reports and events ----------------------------------------------------
def test_reports_idempotent(store):
    batch = [rep(seq=i, t=1000.0 + i) for i in range(10)] + [rep("b", 0, 1000.5)]
    assert store.add_reports(batch) == 22  # 11 reports x 2 channels
    assert store.add_reports(batch) == 0
    assert store.add_reports(batch[3:7] + [rep(seq=10, t=1010.0)]) == 2
    assert store.stats()["raw"] == 24
    assert store.has_frame("a", 1, 5) and store.has_frame("b", 1, 0)
    assert not store.has_frame("a", 2, 5) and not store.has_frame("zz", 1, 0)
    rows = store.reports("a", ch=1)
    assert [r["seq"] for r in rows] == list(range(11))
    assert rows[0] == {"node": "a", "ch": 1, "boot": 1, "seq": 0, "tick": 0, "t_hub": 1000.0,
                       "n": 10, "drop": 0, "miss": 0, "mean": -50, "e": 700, "k": 1,
                       "c": 1000, "t_re": -20, "t_im": 0, "coll": 1}
    assert [r["seq"] for r in store.reports("a", 0, since=1002, until=1004)] == [2, 3, 4]
    assert len(store.reports("a", 0, limit=3)) == 3
    assert store.reports("a", ch=5) == [] and store.reports("nobody") == []
    assert store.nodes() == ["a", "b"]


def test_report_without_channels_still_dedups(store):
    assert store.add_reports([rep(seq=3, chs=[])]) == 0  # no channel rows
    assert store.has_frame("a", 1, 3) and store.last_seq("a") == (1, 3)
    assert store.reports("a", 0) == [] and store.history("a", 0, 0, 1e9) == []


def test_bad_reports_are_skipped_counted_and_the_rest_stored(store):
    missing = rep(seq=1)
    del missing["tick"]
    no_ch = rep(seq=9)
    del no_ch["ch"]
    bad = [
        missing,
        rep(seq="2"),
        rep(seq=True),
        rep(seq=-1),
        rep(seq=2, t=float("nan")),
        rep(seq=2, t=-5.0),
        rep(seq=2, node=""),
        rep(seq=2, node=7),
        rep(seq=2, chs=[[1, 2, 3, 4.0, 5, 6, 0]]),
        rep(seq=2, chs=[[1, 2, 3, 40000, 5, 6, 0]]),
        rep(seq=2, chs=[[1, 2, 3]]),
        rep(seq=2, chs="nope"),
        rep(seq=2, t="later"),
        {"t": "event", "node": "a"},
        "not a dict",
        None,
        no_ch,
    ]
    good = [rep(seq=0), rep(seq=5)]
    assert store.add_reports(bad[:8] + good[:1] + bad[8:] + good[1:]) == 4
    assert store.rejected == len(bad)
    assert [r["seq"] for r in store.reports("a")] == [0, 5]
    for r, words in [
        (missing, "missing field 'tick'"),
        (rep(seq="2"), "'seq' must be an int"),
        (rep(seq=2, chs=[[1, 2, 3, 4.0, 5, 6, 0]]), "ch[0] must be 7 ints"),
        (rep(seq=2, chs=[[0] * 7, [1, 2, 3, 40000, 5, 6, 0]]), "ch[1] out of range"),
        (rep(seq=2, t=float("inf")), "'t_hub' must be a finite number"),
        (no_ch, "missing field 'ch'"),
        ("x", "must be a dict"),
    ]:
        with pytest.raises(StoreError, match=words.replace("[", r"\[").replace("]", r"\]")):
            Store.check_report(r)
    Store.check_report(rep())  # no error
    assert store.add_reports([rep(seq=7, t=np.float64(1007.0))]) == 2  # numpy float is fine
    with pytest.raises(StoreError, match="list of dicts"):
        store.add_reports("x")


def test_events_idempotent_and_queried(store):
    evs = [ev(seq=3, t=10.0), ev(seq=4, t=11.0, on=0), ev("b", 1, 10.5, i=2)]
    assert store.add_events(evs) == 3
    assert store.add_events(evs) == 0
    assert store.add_events([ev(seq=5, i=9), ev(seq=6, on=2), {"node": "a"}]) == 0
    assert store.rejected == 3
    assert store.has_frame("a", 1, 4) and store.has_frame("b", 1, 1)
    assert [(e["node"], e["seq"]) for e in store.events()] == [("a", 3), ("b", 1), ("a", 4)]
    assert store.events("a")[1] == {"node": "a", "boot": 1, "seq": 4, "t_hub": 11.0,
                                    "tick": 40, "i": 0, "on": 0, "c": 30000, "n": 43}
    assert store.events("nobody") == []


def test_last_seq(store):
    assert store.last_seq("a") is None
    store.add_reports([rep(seq=5, t=100.0), rep(seq=7, t=101.0), rep(seq=6, t=100.5)])
    assert store.last_seq("a") == (1, 7)
    store.add_reports([rep(seq=3, t=200.0)])  # a late replay of the same boot
    assert store.last_seq("a") == (1, 7)
    store.add_events([ev(seq=8, t=102.0)])  # events share the sequence
    assert store.last_seq("a") == (1, 8)
    store.add_reports([rep(seq=0, t=300.0, boot=99)])  # a new boot, later
    assert store.last_seq("a") == (99, 0)
    store.add_reports([rep(seq=50, t=150.0, boot=1)])  # old boot, older time
    assert store.last_seq("a") == (99, 0)


# -- restart and durability ------------------------------------------------
def test_restart_keeps_everything(tmp_path):
    path = tmp_path / "hub.db"
    s = Store(path)
    s.add_reports([rep(seq=i, t=float(i)) for i in range(5)])
    s.add_events([ev(seq=9)])
    s.save_state("master/a/0", {"z": 0.5 + 0.25j, "n": 3})
    mid = s.remember("collapse", {"a": (0.9, 0.5, 1.0, 0.0)}, 0.9, 10.0)
    hashes = [s.log("boot", {"i": i}, float(i)) for i in range(3)]
    s.close()
    with pytest.raises(StoreError, match="closed"):
        s.reports("a")
    s.close()  # twice is fine

    with Store(path) as s2:
        assert [r["seq"] for r in s2.reports("a")] == list(range(5))
        assert s2.has_frame("a", 1, 9) and s2.last_seq("a") == (1, 9)
        assert s2.load_state("master/a/0") == {"z": 0.5 + 0.25j, "n": 3}
        assert [m["id"] for m in s2.memories(10.0)] == [mid]
        assert s2.strength(mid, 10.0) == pytest.approx(0.9)
        assert [e["hash"] for e in s2.log_tail()] == hashes
        assert s2.verify_log() == (True, 3, None)
        assert s2.add_reports([rep(seq=i, t=float(i)) for i in range(5)]) == 0
        assert s2.log("more", {}, 5.0) != hashes[-1] and s2.verify_log() == (True, 4, None)
    db = sqlite3.connect(path)
    assert db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION
    assert db.execute("PRAGMA journal_mode").fetchone()[0] == "wal"
    db.close()


_CHILD = r"""
import sys
from becomingone.store import Store
s = Store(sys.argv[1])
seq = 0
for b in range(100000):
    batch = []
    for j in range(200):
        batch.append({"t": "report", "node": "n%d" % (j % 4), "boot": 1, "seq": seq,
                      "tick": seq, "n": 1, "drop": 0, "miss": 0, "t_hub": float(seq),
                      "ch": [[1, 2, 3, 4, 5, 6, 0], [7, 8, 1, 9, 10, 11, 1]]})
        seq += 1
    s.add_reports(batch)
    print(seq - 1, flush=True)  # acknowledged: every seq up to here is committed
"""


def test_kill_minus_9_loses_no_acknowledged_frame(tmp_path):
    path = str(tmp_path / "kill.db")
    child = subprocess.Popen(  # the installed becomingone, from anywhere
        [sys.executable, "-c", _CHILD, path], stdout=subprocess.PIPE, text=True, cwd=tmp_path
    )
    acked = []
    try:
        for _ in range(25):  # bounded: 25 acknowledged batches, then kill
            line = child.stdout.readline()
            if not line:
                break
            acked.append(int(line))
        child.send_signal(signal.SIGKILL)
        child.wait(timeout=60)
        acked += [int(x) for x in child.stdout.read().split()]  # acked before the kill landed
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
        child.stdout.close()
    assert child.returncode == -signal.SIGKILL
    assert len(acked) >= 25, "the child died before acknowledging 25 batches"
    last = acked[-1]
    with Store(path) as s:
        assert s._con().execute("PRAGMA integrity_check").fetchone()[0] == "ok"
        stored = s.stats()["raw"]
        assert stored >= 2 * (last + 1)  # two channel rows per acknowledged report
        assert stored % 400 == 0  # whole batches only: a transaction is all or nothing
        seqs = set()
        for node in ("n0", "n1", "n2", "n3"):
            seqs |= {r["seq"] for r in s.reports(node, 1, limit=10**7)}
        assert set(range(last + 1)) <= seqs
        assert all(s.has_frame("n%d" % (q % 4), 1, q) for q in (0, last // 2, last))


# -- compaction ------------------------------------------------------------
def _one(c, mean, e, coll=0):
    return [[mean, e, 0, c, 0, 0, coll]]


def test_compact_downsamples_by_hand(tmp_path):
    s = Store(tmp_path / "c.db", raw_days=1.0, minute_days=2.0, hour_days=3.0)
    # minute 0: four samples; minute 1: two; minute 2 stays raw after the first compact
    s.add_reports([
        rep(seq=0, t=0.0, chs=_one(100, 10, 1000)),
        rep(seq=1, t=10.0, chs=_one(200, 20, 2000, coll=1)),
        rep(seq=2, t=20.0, chs=_one(300, 30, 3000)),
        rep(seq=3, t=59.5, chs=_one(400, -40, 4000)),
        rep(seq=4, t=60.0, chs=_one(700, 5, 100)),
        rep(seq=5, t=119.0, chs=_one(701, 6, 101)),
        rep(seq=6, t=130.0, chs=_one(1, 2, 3)),
    ])
    now = DAY + 150.0  # cut-off 150 s: rounded down to the 120 s minute boundary
    counts = s.compact(now)
    assert counts == {"raw_compacted": 6, "minute_written": 2, "minute_compacted": 0,
                      "hour_written": 0, "hour_deleted": 0, "events_deleted": 0}
    assert s.compact(now) == dict.fromkeys(counts, 0)  # idempotent
    h = s.history("a", 0, 0.0, 1e9)
    assert h == [
        {"t": 0.0, "c": 250.0, "mean": 5.0, "e": 2500.0, "n_samples": 4, "coll": 1,
         "tier": "minute"},
        {"t": 60.0, "c": 700.5, "mean": 5.5, "e": 100.5, "n_samples": 2, "coll": 0,
         "tier": "minute"},
        {"t": 130.0, "c": 1.0, "mean": 2.0, "e": 3.0, "n_samples": 1, "coll": 0, "tier": "raw"},
    ]
    assert [r["seq"] for r in s.reports("a")] == [6]
    # a replay of summarised frames is not counted twice
    assert s.add_reports([rep(seq=1, t=10.0, chs=_one(200, 20, 2000))]) == 0
    assert s.too_old == 1
    assert s.history("a", 0, 0.0, 1e9)[0]["n_samples"] == 4
    assert s.last_seq("a") == (1, 6)  # survives compaction

    # minute -> hour: the average is weighted by the samples (4 and 2)
    counts = s.compact(2 * DAY + 3600.0)
    assert counts["hour_written"] == 1 and counts["minute_compacted"] == 3
    assert counts["raw_compacted"] == 1 and counts["minute_written"] == 1
    (hr,) = s.history("a", 0, 0.0, 1e9)
    assert hr == {"t": 0.0, "c": (1000 + 1401 + 1) / 7, "mean": (20 + 11 + 2) / 7,
                  "e": (10000 + 201 + 3) / 7, "n_samples": 7, "coll": 1, "tier": "hour"}
    assert s.history("a", 0, 1.0, 1e9) == []  # filtered by the bucket's start
    assert s.history("a", 1, 0.0, 1e9) == []
    s.add_events([ev(seq=9, t=5.0)])
    counts = s.compact(3 * DAY + 3600.0)  # the hour [0, 3600) is now older than hour_days
    assert counts["hour_deleted"] == 1 and counts["events_deleted"] == 1
    assert s.history("a", 0, 0.0, 1e9) == [] and s.events() == []
    st = s.stats()
    assert (st["raw"], st["minute"], st["hour"], st["event"]) == (0, 0, 0, 0)
    s.close()


def test_retention_parameters_are_checked(tmp_path):
    with pytest.raises(StoreError, match="raw_days <= minute_days"):
        Store(tmp_path / "x.db", raw_days=5, minute_days=2)
    with pytest.raises(StoreError, match="prune_below"):
        Store(tmp_path / "x.db", prune_below=1.5)


def test_a_year_of_30_nodes_ends_up_small(tmp_path, capsys):
    """A year of 30 nodes x 4 channels, on a shortened scale: one report per node
    per hour instead of per second (so every hour bucket of every channel gets
    data), compacted once a simulated day.  The hour tier then holds what a real
    year leaves (one row per channel-hour), and the bytes per row of each tier,
    from dbstat, project the size of the real 1 report/s store."""
    s = Store(tmp_path / "year.db")
    nodes, chans, days = 30, 4, 365
    seq = 0
    for day in range(days):
        batch = []
        for hour in range(24):
            for j in range(nodes):
                t = (day * 24 + hour) * 3600.0 + 7.0 * j
                chs = [[(seq + c) % 1000, 5000 + c, c, (seq * 7 + c) % 32768, 0, 0, 0]
                       for c in range(chans)]
                batch.append(rep("node%02d" % j, seq, t, chs=chs, tick=seq % 2**30))
                seq += 1
        assert s.add_reports(batch) == len(batch) * chans
        s.compact((day + 1) * DAY)
    st = s.stats()
    series = nodes * chans
    assert st["raw"] == 2 * 24 * series  # the last raw_days
    assert st["hour"] == (days - 60) * 24 * series  # everything older than minute_days
    assert st["minute"] == (60 - 2) * 24 * series  # sparse: one report per hour
    db = s._con()
    size = dict(db.execute(
        "SELECT name, sum(pgsize) FROM dbstat WHERE name IN "
        "('raw', 'raw_time', 'minute', 'hour') GROUP BY name"))
    per_row = {"raw": (size["raw"] + size["raw_time"]) / st["raw"],
               "minute": size["minute"] / st["minute"], "hour": size["hour"] / st["hour"]}
    # A real year at 1 report/s per node: raw keeps 2 days, minute 58 days, hour 305 days.
    real = {"raw": 2 * 86400 * series, "minute": 58 * 1440 * series, "hour": 305 * 24 * series}
    projected = {k: real[k] * per_row[k] for k in real}
    with capsys.disabled():
        print(f"\n[year] sparse simulation: rows {st['raw']}/{st['minute']}/{st['hour']} "
              f"(raw/minute/hour), file {st['bytes'] / 1e6:.1f} MB, "
              f"used {st['bytes_used'] / 1e6:.1f} MB; bytes per row "
              + ", ".join(f"{k} {v:.1f}" for k, v in per_row.items())
              + "; projected real 1 Hz store: "
              + ", ".join(f"{k} {real[k]:,} rows {projected[k] / 1e6:.0f} MB" for k in real))
    assert st["bytes_used"] < 60e6
    assert per_row["hour"] < 40 and per_row["minute"] < 40 and per_row["raw"] < 120
    assert projected["hour"] < 50e6  # a year of hourly history for 120 channels
    s.close()


# -- key/value state ---------------------------------------------------------
def test_state_round_trips_complex_numbers(store):
    value = {
        "M": {"60": 0.25 - 0.5j, "600": complex(1e-300, -0.0), "3600": 0j},
        "zs": [1 + 2j, 3.5, None, "x", True, [cmath.rect(0.9, 2.1)]],
        "np": np.complex128(0.1 + 0.2j),
        "arr": np.array([1.5, 2.5]),
        "i": np.int64(7),
        "tup": (1, 2),
        "nan": float("nan"),
        "big": 2**62,
    }
    store.save_state("master/a", value)
    got = store.load_state("master/a")
    assert got["M"] == {"60": 0.25 - 0.5j, "600": complex(1e-300, -0.0), "3600": 0j}
    assert math.copysign(1.0, got["M"]["600"].imag) == -1.0
    assert got["zs"] == [1 + 2j, 3.5, None, "x", True, [cmath.rect(0.9, 2.1)]]
    assert type(got["np"]) is complex and got["np"] == 0.1 + 0.2j
    assert got["arr"] == [1.5, 2.5] and got["i"] == 7 and got["tup"] == [1, 2]
    assert math.isnan(got["nan"]) and got["big"] == 2**62
    store.save_state("master/b", {"z": 1j})
    store.save_state("clock/a", {"offset": 0.5})
    store.save_state("master/a", {"z": 2j})  # replaces
    assert store.all_state("master/") == {"master/a": {"z": 2j}, "master/b": {"z": 1j}}
    assert set(store.all_state()) == {"master/a", "master/b", "clock/a"}
    assert store.load_state("none") is None
    assert store.delete_state("clock/a") and store.load_state("clock/a") is None
    # the tag looks like {"$complex": [re, im]} in the file
    raw = store._con().execute("SELECT value FROM state WHERE key = 'master/b'").fetchone()[0]
    assert raw == '{"z":{"$complex":[0.0,1.0]}}'
    for bad, words in [({1: 2}, "keys must be str"), ({"$complex": [1, 2]}, "reserved"),
                       ({"x": object()}, "cannot store"), ([1], "must be a dict")]:
        with pytest.raises(StoreError, match=words):
            store.save_state("k", bad)


# -- BLEND memories -------------------------------------------------------
def test_memory_strength_decays_as_exp(store):
    r0 = 1 / 3600
    a = store.remember("collapse", {"a": (0.8, 0.25, 1.0, 0.0)}, 0.8, 100.0)
    b = store.remember("emergence", {"a": (1.0, 0.25, 1.0, 0.0)}, 1.0, 100.0)
    assert store.strength(a, 100.0) == pytest.approx(0.8)
    assert store.strength(a, 100.0 + 3600) == pytest.approx(0.8 * math.exp(-r0 * 0.6 * 3600))
    assert store.strength(b, 100.0 + 7200) == pytest.approx(math.exp(-r0 * 0.5 * 7200))
    assert store.strength(a, 50.0) == pytest.approx(0.8)  # no growth before t_ref
    (m,) = [m for m in store.memories(3700.0) if m["id"] == a]
    assert m["kind"] == "collapse" and m["created"] == 100.0 and m["c"] == 0.8
    assert m["strength"] == pytest.approx(0.8 * math.exp(-r0 * 0.6 * 3600))
    assert m["signature"] == {"a": (0.8, 0.25, 1.0, 0.0)}
    with pytest.raises(StoreError, match="no memory"):
        store.strength(999, 0.0)
    for bad in [{}, {"a": (2.0, 1, 1, 0)}, {"a": (0.5, 1)}, {"a": (0.5, -1, 1, 0)},
                {"a": (0.5, 1, math.nan, 0)}, {"": (0.5, 1, 1, 0)}]:
        with pytest.raises(StoreError):
            store.remember("x", bad, 0.5, 0.0)
    with pytest.raises(StoreError):
        store.remember("x", {"a": (0.5, 1, 1, 0)}, 1.5, 0.0)


def test_similarity_measure():
    one = {"a": (0.9, 0.5, 1.0, 0.0)}
    assert similarity(one, one) == pytest.approx(1.0)
    assert similarity(one, {"a": (0.9, 0.5, -2.0, 0.0)}) == pytest.approx(0.0)  # opposite phase
    assert similarity(one, {"a": (0.9, 0.5, 0.0, 3.0)}) == pytest.approx(0.5)  # 90 degrees
    assert similarity(one, {"a": (0.6, 0.5, 1.0, 0.0)}) == pytest.approx(0.7)  # c differs 0.3
    assert similarity(one, {"a": (0.9, 1.0, 1.0, 0.0)}) == pytest.approx(0.5)  # tau halved
    assert similarity(one, {"a": (0.9, 0.5, 0.0, 0.0)}) == pytest.approx(0.5)  # phase unknown
    assert similarity(one, {"b": (0.9, 0.5, 1.0, 0.0)}) == 0.0
    two = {"a": (0.9, 0.5, 1.0, 0.0), "b": (0.2, 0.1, 0.0, 1.0)}
    assert similarity(one, two) == pytest.approx(0.5)  # one of two nodes shared
    assert similarity(two, one) == similarity(one, two)


def test_recall_orders_by_similarity_and_boosts(store):
    q = {"a": (0.9, 0.5, 1.0, 0.0), "b": (0.8, 1.0, 0.0, 1.0)}
    same = store.remember("collapse", q, 0.5, 0.0)
    near = store.remember("collapse", {"a": (0.9, 0.5, 1.0, 0.0), "b": (0.8, 1.0, 1.0, 1.0)},
                          0.9, 0.0)
    half = store.remember("collapse", {"a": (0.9, 0.5, 1.0, 0.0)}, 0.9, 0.0)
    other = store.remember("collapse", {"c": (0.9, 0.5, 1.0, 0.0)}, 0.9, 0.0)
    now = 1800.0
    before = {m["id"]: m["strength"] for m in store.memories(now)}
    got = store.recall(q, now, k=5, boost=0.2)
    assert [g[0] for g in got] == [same, near, half]  # 'other' shares no node
    sims = [g[1] for g in got]
    assert sims[0] == pytest.approx(1.0)
    assert sims[1] == pytest.approx((1 + 0.5 * (1 + math.cos(math.pi / 4))) / 2)
    assert sims[2] == pytest.approx(0.5)
    for mid, _, st in got:
        assert st == pytest.approx(before[mid] + 0.2 * (1 - before[mid]))
        assert store.strength(mid, now) == pytest.approx(st)  # t_ref reset to now
    assert store.strength(other, now) == pytest.approx(before[other])
    m = {m["id"]: m for m in store.memories(now)}
    assert m[same]["recalls"] == 1 and m[same]["t_ref"] == now and m[other]["recalls"] == 0
    # k limits; a recall later decays from the boosted value
    (top,) = store.recall(q, now + 3600, k=1, boost=0.0)
    r = 1 / 3600 * (1 - 0.5 * 0.5)
    assert top[0] == same and top[2] == pytest.approx(got[0][2] * math.exp(-r * 3600))
    again = store.recall(q, now + 3600, boost=0.0, min_similarity=0.95)
    assert again == [(same, pytest.approx(1.0), pytest.approx(top[2]))]


def test_decay_prunes_below_0_1(tmp_path):
    s = Store(tmp_path / "m.db", r0=1 / 3600, prune_below=0.1)
    weak = s.remember("collapse", {"a": (0.5, 1, 1, 0)}, 0.5, 0.0)
    strong = s.remember("collapse", {"a": (1.0, 1, 1, 0)}, 1.0, 0.0)
    t_weak = 3600 * math.log(5) / 0.75  # 0.5*exp(-0.75 t/3600) = 0.1
    t_strong = 3600 * math.log(10) / 0.5
    assert s.decay(t_weak - 1) == 0
    assert s.decay(t_weak + 1) == 1
    assert [m["id"] for m in s.memories(t_weak + 1)] == [strong]
    assert s.recall({"a": (0.5, 1, 1, 0)}, t_strong + 1) == []  # too weak to recall
    assert s.decay(t_strong + 1) == 1 and s.memories(0.0) == []
    assert s.remember("x", {"a": (0.5, 1, 1, 0)}, 0.5, 0.0) > strong  # ids are not reused
    assert weak < strong
    s.close()


# -- hash-chained log ---------------------------------------------------------
def _logged(store, n=8):
    for i in range(n):
        store.log("collapse" if i % 2 else "emergence",
                  {"i": i, "z": complex(i, -i), "nodes": ["a", "b"][: i % 3], "x": i / 3},
                  1000.0 + i * 0.1)


def test_log_chain_and_tail(store):
    assert store.verify_log() == (True, 0, None)
    assert store.log_head() == (0, "0" * 64)
    _logged(store)
    assert store.verify_log() == (True, 8, None)
    tail = store.log_tail(3)
    assert [e["seq"] for e in tail] == [6, 7, 8]
    assert tail[-1]["data"] == {"i": 7, "z": 7 - 7j, "nodes": ["a"], "x": 7 / 3}
    assert tail[-1]["kind"] == "collapse" and tail[-1]["t"] == 1000.7
    assert tail[1]["prev"] == tail[0]["hash"] and store.log_head() == (8, tail[-1]["hash"])
    import hashlib
    import json
    e = tail[-1]
    payload = json.dumps([e["seq"], e["t"], e["kind"],
                          {"i": 7, "nodes": ["a"], "x": 7 / 3, "z": {"$complex": [7.0, -7.0]}}],
                         sort_keys=True, separators=(",", ":"))
    assert e["hash"] == hashlib.sha256((e["prev"] + payload).encode()).hexdigest()
    for bad in [({"x": math.inf}, 1.0), ({"x": 1}, math.nan), ([1], 1.0)]:
        with pytest.raises(StoreError):
            store.log("k", *bad)
    with pytest.raises(StoreError):
        store.log("", {}, 1.0)
    assert store.verify_log() == (True, 8, None)


@pytest.mark.parametrize("column,value", [
    ("t", 1234.5), ("kind", "forged"), ("data", '{"i":99}'), ("prev", "1" * 64),
    ("hash", "f" * 64), ("seq", 1000),
])
def test_log_tampering_is_found_at_that_row(tmp_path, column, value):
    path = tmp_path / "log.db"
    with Store(path) as s:
        _logged(s)
    for row in (1, 4, 8):
        db = sqlite3.connect(path)
        old = db.execute(f"SELECT {column} FROM log WHERE seq = ?", (row,)).fetchone()[0]
        db.execute(f"UPDATE log SET {column} = ? WHERE seq = ?", (value, row))
        db.commit()
        db.close()
        with Store(path) as s:
            assert s.verify_log() == (False, row, row)
        db = sqlite3.connect(path)
        where = value if column == "seq" else row
        db.execute(f"UPDATE log SET {column} = ? WHERE seq = ?", (old, where))
        db.commit()
        db.close()
        with Store(path) as s:
            assert s.verify_log() == (True, 8, None)


def test_log_data_rewrite_keeping_meaning_and_deletion_are_found(tmp_path):
    path = tmp_path / "log.db"
    with Store(path) as s:
        _logged(s)
        head = s.log_head()
    db = sqlite3.connect(path)
    data = db.execute("SELECT data FROM log WHERE seq = 3").fetchone()[0]
    db.execute("UPDATE log SET data = ? WHERE seq = 3", (data.replace(",", ", "),))
    db.commit()
    with Store(path) as s:
        assert s.verify_log() == (False, 3, 3)
    db.execute("UPDATE log SET data = ? WHERE seq = 3", (data,))
    db.execute("DELETE FROM log WHERE seq = 5")
    db.commit()
    with Store(path) as s:
        assert s.verify_log() == (False, 5, 5)
    db.execute("DELETE FROM log WHERE seq > 5")
    db.commit()
    db.close()
    with Store(path) as s:  # cutting the end leaves a valid chain, but not the signed head
        assert s.verify_log() == (False, 4, 5) and s.log_head() != head
        assert "truncated after entry 4 (the signed head is entry 8)" in s.check_log().problem


# -- the signed log: key and head outside the database -------------------------
def _recompute(path, start, edit=None, drop_macs=False):
    """What the issue did: edit entry `start`, recompute every hash from it (all
    that someone without the key can do), perhaps clearing the signatures."""
    db = sqlite3.connect(path)
    rows = db.execute("SELECT seq, t, kind, data, hash FROM log ORDER BY seq").fetchall()
    prev = rows[start - 2][4] if start > 1 else eventlog.GENESIS
    for seq, t, kind, data, _ in rows[start - 1:]:
        data = edit if seq == start and edit else data
        h = eventlog.entry_hash(prev, seq, t, kind, data)
        db.execute("UPDATE log SET data = ?, prev = ?, hash = ?"
                   + (", mac = NULL" if drop_macs else "") + " WHERE seq = ?",
                   (data, prev, h, seq))
        prev = h
    db.commit()
    db.close()


def _sql(path, *statements):
    db = sqlite3.connect(path)
    for st in statements:
        db.execute(st)
    db.commit()
    db.close()


def verify_cli(capsys, path, *extra):
    """`becomingone verify-log --db path`: (exit status, the one line it said)."""
    rc = cli.main(["verify-log", "--db", str(path), *extra])
    out = capsys.readouterr()
    return rc, (out.out + out.err).strip()


def _signed_store(path, n=8):
    with Store(path) as s:
        _logged(s, n)


@pytest.mark.parametrize("start", [1, 3, 8])
def test_a_recomputed_chain_is_found_at_the_entry_edited(tmp_path, capsys, start):
    path = tmp_path / "log.db"
    _signed_store(path)
    assert verify_cli(capsys, path)[0] == 0
    _recompute(path, start, edit='{"i":99}')
    with Store(path) as s:  # the chain itself is intact again: only the signatures tell
        assert eventlog.verify(s._con()).ok
        c = s.check_log()
        assert (c.ok, c.bad) == (False, start)
        assert c.problem == (f"entry {start}: signature does not match: the log was rewritten"
                             f" from entry {start} (hashes recomputed without the key)")
    rc, said = verify_cli(capsys, path)
    assert rc == 1 and f"rewritten from entry {start}" in said, said


@pytest.mark.parametrize("start", [1, 4])
def test_a_recomputed_chain_without_signatures_is_found(tmp_path, capsys, start):
    path = tmp_path / "log.db"
    _signed_store(path)
    _recompute(path, start, edit='{"i":99}', drop_macs=True)
    rc, said = verify_cli(capsys, path)
    assert rc == 1
    if start > 1:  # unsigned entries after signed ones
        assert f"entry {start} is not signed" in said, said
    else:  # all unsigned, like a store from before signing: the head says it was rewritten
        assert "head signature does not match: entry 8 is not the one signed" in said, said


@pytest.mark.parametrize("keep", [5, 1, 0])
def test_deleting_the_last_entries_or_all_of_them_is_found(tmp_path, capsys, keep):
    path = tmp_path / "log.db"
    _signed_store(path)
    _sql(path, f"DELETE FROM log WHERE seq > {keep}")
    rc, said = verify_cli(capsys, path)
    assert rc == 1
    assert (f"head signature does not match: the log was rewritten or truncated after entry"
            f" {keep} (the signed head is entry 8)") in said, said


def test_a_truncated_log_is_not_signed_over_until_a_person_says_so(tmp_path, capsys):
    """The hub runs on a tampered log (ingest matters) but never signs a new
    head over it: the head file stays as the evidence, until verify-log
    --sign-head; the entries it writes meanwhile are signed one by one."""
    path = tmp_path / "log.db"
    _signed_store(path)
    head_file = tmp_path / "log.db.head"
    evidence = head_file.read_text()
    _sql(path, "DELETE FROM log WHERE seq > 6")
    with Store(path) as s:
        assert "truncated after entry 6" in s.log_problem and "verify-log" in s.log_problem
        assert s.health()["log"] == s.log_problem
        s.log("after", {"x": 1}, 2000.0)
    assert head_file.read_text() == evidence
    assert verify_cli(capsys, path)[0] == 1
    rc, said = verify_cli(capsys, path, "--sign-head")
    assert rc == 0 and "signed the head: entry 7" in said and "truncated after entry 7" in said
    with Store(path) as s:
        assert s.log_problem == "" and s.check_log().ok
        s.log("later", {"x": 2}, 2001.0)
    rc, said = verify_cli(capsys, path)
    assert rc == 0 and "ok: 8 event log entries" in said and "signed head (entry 8)" in said


def test_key_and_head_files(tmp_path, capsys):
    path = tmp_path / "hub.db"
    _signed_store(path)
    for f in ("hub.db", "hub.db.key", "hub.db.head"):  # what holds secrets (or evidence): 0600
        assert os.stat(tmp_path / f).st_mode & 0o777 == 0o600, f
    key = (tmp_path / "hub.db.key").read_text()
    assert len(bytes.fromhex(key.strip())) == 32
    head = json.loads((tmp_path / "hub.db.head").read_text())
    assert head["seq"] == 8
    # An edited head file: its signature is the key's only.
    (tmp_path / "hub.db.head").write_text(json.dumps(dict(head, seq=9)))
    rc, said = verify_cli(capsys, path)
    assert rc == 1 and "head's signature does not match the key" in said
    (tmp_path / "hub.db.head").write_text(json.dumps(head))
    assert verify_cli(capsys, path)[0] == 0
    # Without its key the log cannot be checked, and a hub will not sign on with a new one.
    os.rename(tmp_path / "hub.db.key", tmp_path / "elsewhere.key")
    os.rename(tmp_path / "hub.db.head", tmp_path / "elsewhere.head")
    rc, said = verify_cli(capsys, path)
    assert rc == 1 and "no key file" in said
    with pytest.raises(StoreError, match="signed with the key in .*hub.db.key, which is missing"):
        Store(path)
    assert not (tmp_path / "hub.db.key").exists()
    assert verify_cli(capsys, path, "--key", str(tmp_path / "elsewhere.key"))[0] == 0
    # The key somewhere else ([hub] log_key): the head goes beside it.
    other = tmp_path / "other.db"
    keys = tmp_path / "keys"
    keys.mkdir()
    with Store(other, log_key=keys / "log.key") as s:
        s.log("k", {}, 1.0)
    assert sorted(os.listdir(keys)) == ["log.head", "log.key"]
    assert not (tmp_path / "other.db.key").exists()
    assert verify_cli(capsys, other, "--key", str(keys / "log.key"))[0] == 0


def test_entries_after_the_last_signed_head_are_covered_by_their_own_signatures(tmp_path):
    """A hub killed between a commit and the next anchor leaves entries after the
    head; they are signed, so they check out, and the next open anchors them."""
    path = tmp_path / "log.db"
    _signed_store(path, 5)
    old_head = (tmp_path / "log.db.head").read_text()
    with Store(path) as s:
        _logged(s, 3)
    (tmp_path / "log.db.head").write_text(old_head)  # as if the hub died before anchoring
    db = sqlite3.connect(path)
    c = anchor.check(db, anchor.load_key(f"{path}.key"), str(tmp_path / "log.db.head"))
    db.close()
    assert (c.ok, c.checked, c.signed_head) == (True, 8, 5)
    with Store(path) as s:
        assert s.log_problem == ""
    assert json.loads((tmp_path / "log.db.head").read_text())["seq"] == 8


def test_a_store_from_before_signing_is_signed_on(tmp_path, capsys):
    path = tmp_path / "old.db"
    _signed_store(path, 4)
    # Back to schema 2: no mac column, no key, no head.
    _sql(path, "ALTER TABLE log DROP COLUMN mac", "PRAGMA user_version = 2")
    os.remove(f"{path}.key")
    os.remove(tmp_path / "old.db.head")
    with Store(path) as s:
        s.log("new", {"i": 5}, 2000.0)
        c = s.check_log()
        assert (c.ok, c.checked, c.unsigned) == (True, 5, 4)
    rc, said = verify_cli(capsys, path)
    assert rc == 0 and "4 from before signing" in said
    _recompute(path, 2, edit='{"i":99}')  # an old entry rewritten: the signed one after it fails
    rc, said = verify_cli(capsys, path)
    assert rc == 1 and "entry 5: signature does not match" in said


def test_in_memory_log_is_signed_too():
    with Store(":memory:") as s:
        _logged(s, 3)
        c = s.check_log()
        assert (c.ok, c.checked, c.signed_head) == (True, 3, 3)
        s._con().execute("DELETE FROM log WHERE seq = 3")
        assert "truncated after entry 2" in s.check_log().problem


# -- a damaged file ---------------------------------------------------------------
def _filled(path, n=3000):
    s = Store(path)
    s.add_reports([rep(seq=i, t=float(i)) for i in range(n)])
    return s


def test_a_damaged_store_is_refused_at_start_with_what_to_do(tmp_path, capsys):
    path = tmp_path / "hub.db"
    _filled(path).close()
    size, count = damage.pages(path)
    damage.overwrite(path, count // 2)  # one page, in the middle of the reports
    with pytest.raises(StoreError) as e:
        Store(path)
    msg = str(e.value)
    assert f"store {path} is damaged (" in msg and "Move it aside" in msg
    assert f"sqlite3 {path} .recover" in msg and "\n" not in msg
    rc = cli.main(["hub", "--db", str(path), "--no-web", "--seconds", "1", "--status", "0"])
    err = capsys.readouterr().err.strip()
    assert rc == 1 and err.startswith("becomingone: store ") and "is damaged" in err
    assert len(err.splitlines()) == 1
    # The check is bounded: given no time, it stops and says so (the store opens).
    with Store(path, check_seconds=0.0) as s:
        assert s.integrity.startswith("quick_check stopped after 0 s")
    # A healthy file: checked and fine.
    with Store(tmp_path / "fine.db") as s:
        assert s.integrity == "new store"
    with Store(tmp_path / "fine.db") as s:
        assert s.integrity == "ok" and s.health()["ok"]


def test_a_store_damaged_while_open_says_so_until_closed(tmp_path):
    path = tmp_path / "hub.db"
    s = _filled(path)
    assert s.health() == {"ok": True, "error": None, "since": None, "failures": 0,
                          "damaged": False, "integrity": "new store", "log": "ok"}
    damage.damage_live(path)
    with pytest.raises(StoreError, match="malformed"):
        s.add_reports([rep(seq=i, t=float(i)) for i in range(3000, 3010)])
    h = s.health()
    assert (h["ok"], h["damaged"], h["failures"]) == (False, True, 1)
    assert "database disk image is malformed" in h["error"]
    assert s.failing().startswith("STORE DAMAGED since ")
    s.close()  # does not raise: health() has said it


def test_a_failing_write_makes_health_false_until_one_succeeds(tmp_path):
    """SQLITE_FULL (the database may not grow): a real SQLite failure that ends."""
    with _filled(tmp_path / "hub.db", 100) as s:
        pages = s._con().execute("PRAGMA page_count").fetchone()[0]
        s._con().execute(f"PRAGMA max_page_count = {pages}")
        with pytest.raises(StoreError, match="full"):
            s.add_reports([rep(seq=i, t=float(i)) for i in range(100, 3000)])
        h = s.health()
        assert (h["ok"], h["damaged"]) == (False, False) and "full" in h["error"]
        assert s.failing().startswith("STORE FAILING since ")
        s._con().execute(f"PRAGMA max_page_count = {pages * 100}")
        s.add_reports([rep(seq=i, t=float(i)) for i in range(100, 3000)])
        h = s.health()
        assert (h["ok"], h["failures"], s.failing()) == (True, 1, "")


def test_the_hub_exits_non_zero_when_its_store_fails_while_running(tmp_path):
    """`becomingone hub --seconds N` on a store that is damaged while it runs:
    the status line says so and the exit status is not 0."""
    path = tmp_path / "hub.db"
    cfg = tmp_path / "hub.toml"
    cfg.write_text("[sim]\nnodes = 3\nperiod = 5.0\n")
    _filled(path, 100).close()
    log = tmp_path / "hub.log"
    with open(log, "wb") as f:
        p = subprocess.Popen([sys.executable, "-m", "becomingone", "hub", "--config", str(cfg),
                              "--db", str(path), "--no-web", "--seconds", "6", "--status", "0.5"],
                             stdout=f, stderr=subprocess.STDOUT, cwd=tmp_path)
    try:
        assert wait_for(lambda: "status: mesh:" in log.read_text(), 30), log.read_text()
        damage.damage_live(path)
        assert p.wait(60) == 1, log.read_text()
    finally:
        if p.poll() is None:
            p.kill()
    text = log.read_text()
    assert "status: STORE DAMAGED since " in text, text
    last = text.strip().splitlines()[-1]
    assert last.startswith("becomingone: ") and "malformed" in last, text


# -- files ----------------------------------------------------------------------
def test_in_memory_and_bad_files(tmp_path):
    with Store(":memory:") as s:
        assert s.add_reports([rep()]) == 2 and s.log("k", {}, 0.0)
    other = tmp_path / "other.db"
    db = sqlite3.connect(other)
    db.execute("CREATE TABLE t(x)")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="not a hub store"):
        Store(other)
    newer = tmp_path / "newer.db"
    Store(newer).close()
    db = sqlite3.connect(newer)
    db.execute(f"PRAGMA user_version = {SCHEMA_VERSION + 1}")
    db.commit()
    db.close()
    with pytest.raises(StoreError, match="newer"):
        Store(newer)
    junk = tmp_path / "junk.db"
    junk.write_bytes(b"this is not a database" * 100)
    with pytest.raises(StoreError):
        Store(junk)
    with pytest.raises(StoreError):
        Store(tmp_path / "no" / "such" / "dir.db")
