"""becomingone.nodes.spectra: the per-lag spectrum history kept per node channel
(exact column means, the 10-minute ring, resent frames, lag changes, memory
at 1,000 nodes), and the sim's spectra agreeing with its dominant lag."""
import tracemalloc

from becomingone.nodes.spectra import Spectra
from becomingone.transports.sim import SimMesh

HELLO = {"ch": [{"lags": [2, 4, 8, 16]}, {"lags": [1, 3]}]}


def test_columns_are_bucket_means_and_the_open_one_comes_last():
    s = Spectra(span=60, bucket=5)
    s.add("a", [[100, 200, 300, 400], [10, 20]], 1000.0, HELLO)
    s.add("a", [[300, 200, 101, 0], [30, 20]], 1004.9, HELLO)  # same bucket: 1000..1005
    s.add("a", [[7, 7, 7, 7], [1, 2]], 1005.0, HELLO)  # the next, still open
    got = s.get("a", 0, 1006.0)
    assert got == {"times": [1000.0, 1005.0], "lags": [2, 4, 8, 16],
                   "c": [[200, 200, 201, 200], [7, 7, 7, 7]]}  # (101 + 300) / 2 rounds up
    assert s.get("a", 1, 1006.0)["c"] == [[20, 20], [1, 2]]
    assert s.get("a", 2, 1006.0) is None and s.get("b", 0, 1006.0) is None


def test_history_is_bounded_to_the_span_and_ignores_resent_frames():
    s = Spectra(span=60, bucket=5)  # 12 columns
    for i in range(100):
        s.add("a", [[i, 2 * i]], 5.0 * i, None)
    got = s.get("a", 0, 5.0 * 99)
    assert len(got["times"]) == 12 and got["times"][0] == 5.0 * 88 and got["c"][-1] == [99, 198]
    s.add("a", [[32767, 32767]], 5.0 * 50, None)  # an old frame resent: its column is gone
    assert s.get("a", 0, 5.0 * 99) == got
    # Columns older than the span are not served even if still held.
    assert s.get("a", 0, 5.0 * 99 + 30)["times"][0] == 5.0 * 94


def test_new_lags_start_a_new_history():
    s = Spectra(span=60, bucket=5)
    s.add("a", [[1, 2, 3, 4], [5, 6]], 10.0, HELLO)
    s.on_hello("a", [[2, 4, 8, 16], [1, 3]])  # the same lags (a reconnect): kept
    assert s.get("a", 0, 11.0)["c"] == [[1, 2, 3, 4]]
    s.on_hello("a", [[2, 4, 8, 32]])  # channel 0 re-lagged, channel 1 gone
    assert s.get("a", 0, 11.0) is None and s.get("a", 1, 11.0) is None
    s.add("a", [[9, 9, 9, 9, 9]], 12.0, {"ch": [{"lags": [1, 2, 3, 4, 5]}]})
    assert s.get("a", 0, 13.0) == {"times": [10.0], "lags": [1, 2, 3, 4, 5],
                                   "c": [[9, 9, 9, 9, 9]]}
    s.add("a", [[1, 1]], 14.0, None)  # another K without a hello: new, lags unknown
    assert s.get("a", 0, 15.0)["lags"] == [] and len(s) == 1
    s.drop("a")
    assert len(s) == 0


def test_a_thousand_nodes_of_ten_minutes_stay_small():
    tracemalloc.start()
    base = tracemalloc.get_traced_memory()[0]
    s = Spectra()  # 10 minutes of 5 s columns
    hello = {"ch": [{"lags": [2, 4, 8, 16]}]}
    coh = [[32767, 20000, 100, 5]]
    for t in range(0, 700, 5):  # every column of every node filled
        for i in range(1000):
            s.add(f"sim-{i:04d}", coh, float(t), hello)
    used = tracemalloc.get_traced_memory()[0] - base
    tracemalloc.stop()
    print(f"\n1,000 nodes x 1 channel x 4 lags, 10 min: {used / 1e6:.1f} MB")
    assert used < 4e6
    assert len(s.get("sim-0999", 0, 695.0)["times"]) == 120


def test_the_sims_spectrum_holds_its_dominant_lag():
    sim = SimMesh(20, lambda *a: None, lambda s: None, seed=3)
    reports = []
    for _ in range(60):
        reports += [f for f in sim.block() if f["t"] == "report"]
    assert reports
    for r in reports:
        (row,), (coh,) = r["ch"], r["coh"]
        # c is the spectrum at k (k: the largest c^2, compared to the kernel's
        # resolution, so a near tie may pick a lag a few Q15 below the max)
        assert len(coh) == 4 and row[3] == coh[row[2]] and max(coh) - row[3] < 256
