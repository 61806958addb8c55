"""The per-lag spectra in SQLite (becomingone.store.reports, raw.coh): stored with
each report's channel rows, read back, checked, a schema-1 store upgraded in
place, and a restarted hub serving the spectrum of the minutes before it
from its store."""
import sqlite3

import pytest
from support.frames import hello, report
from support.hub import feed, make
from support.rigs import FakeClock

from becomingone.store import _SCHEMA, SCHEMA_VERSION, Store
from becomingone.web import views


def rep(seq, t, coh, node="a"):
    r = {"t": "report", "node": node, "boot": 1, "seq": seq, "tick": seq, "n": seq,
         "drop": 0, "miss": 0, "t_hub": t,
         "ch": [[0, 10, 1, 500, 0, 0, 0], [0, 10, 0, 900, 0, 0, 0]]}
    if coh is not None:
        r["coh"] = coh
    return r


@pytest.fixture
def store(tmp_path):
    s = Store(tmp_path / "s.db")
    yield s
    s.close()


def test_spectra_are_stored_per_channel_row_and_read_back(store):
    assert store.add_reports([rep(1, 10.0, [[1, 500, 32767], [900]]),
                              rep(2, 11.0, [[0, 2, 3], [32767]]),
                              rep(3, 12.0, None)]) == 6  # a report without: rows, no spectrum
    assert store.spectra("a", 0, 0, 100) == [(10.0, [1, 500, 32767]), (11.0, [0, 2, 3])]
    assert store.spectra("a", 1, 10.5, 100) == [(11.0, [32767])]
    assert store.spectra("a", 2, 0, 100) == [] and store.spectra("ghost", 0, 0, 100) == []
    assert len(store.reports("a", 0)) == 3


@pytest.mark.parametrize("coh", [
    [[1, 2]],  # one spectrum for two rows
    [[1, 2], []],  # an empty one
    [[1, 2], [1] * 9],  # 9 lags
    [[1, 2], [32768]],
    [[1, 2], [-1]],
    [[1, 2], [1.5]],
    [[1, 2], [True]],
    [[1, 2], "ab"],
    "coh",
])
def test_a_bad_spectrum_rejects_its_report_only(store, coh):
    assert store.add_reports([rep(1, 10.0, coh), rep(2, 11.0, [[5], [6]])]) == 2
    assert store.rejected == 1 and "'coh' must be one list of 1..8 ints" in store.last_error
    assert store.spectra("a", 0, 0, 100) == [(11.0, [5])]


def test_a_schema_1_store_gets_the_column(tmp_path):
    path = tmp_path / "old.db"
    db = sqlite3.connect(path)
    db.executescript(_SCHEMA.replace("    coh BLOB,\n", "") + "PRAGMA user_version = 1;")
    db.execute("INSERT INTO node(id, name) VALUES (1, 'a')")
    db.execute("INSERT INTO raw VALUES (1, 1, 0, 0, 5.0, 0, 0, 0, 0, 0, 10, 0, 700, 0, 0, 0)")
    db.commit()
    db.close()
    with Store(path) as s:
        assert s._db.execute("PRAGMA user_version").fetchone()[0] == SCHEMA_VERSION == 3
        assert [r["c"] for r in s.reports("a", 0)] == [700]  # the old row is kept
        assert s.spectra("a", 0, 0, 100) == []
        s.add_reports([rep(1, 10.0, [[1, 2], [3]])])
        assert s.spectra("a", 0, 0, 100) == [(10.0, [1, 2])]
    with Store(path) as s:  # opened again: no second upgrade
        assert s.spectra("a", 1, 0, 100) == [(10.0, [3])]


def test_a_restarted_hub_serves_the_minutes_before_it_from_its_store(tmp_path):
    clock = FakeClock(1_800_000_000.0)
    hub = make(tmp_path, clock)
    t0 = clock.t
    frames = [hello(0)]
    for s in range(1, 121):  # two minutes, a report a second
        clock.t = t0 + s
        frames.append(report(s, c=100 * s))
        feed(hub, frames[-1:] if s > 1 else frames)
    before = views.spectrum(hub, "n1", 0, clock.t)
    assert len(before["times"]) == 25 and before["lags"] == [2, 4]
    assert before["lags_ms"] == [40.0, 80.0]
    hub.stop()

    clock.t += 30  # the hub was down for 30 s
    hub2 = make(tmp_path, clock)
    try:
        after = views.spectrum(hub2, "n1", 0, clock.t)
        assert after == before  # every column from SQLite, the same means
        feed(hub2, [report(500, c=32000)])
        now = views.spectrum(hub2, "n1", 0, clock.t)
        assert now["times"][:-1] == before["times"] and now["c"][:-1] == before["c"]
        assert now["c"][-1] == [round(16000 / 32768, 4), round(32000 / 32768, 4)]
    finally:
        hub2.stop()
