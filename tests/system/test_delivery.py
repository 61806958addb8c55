"""Nothing a node took is lost on its way to the store (issue 11, items 1-3):
a node restarted with the same seed is a new boot, not a replay; the hub's
dedup cannot be poisoned by one frame; a backlog of any length is taken.
The firmware runs under CPython in its own process; the hub (store, dedup,
registry) is the real one, fed what the node printed."""
from support.nodeharness import decode_lines, run_cpython, sim_board, stage

from becomingone import config
from becomingone.core import Hub
from becomingone.logs import Log

QUIET = ("collapse", "hello", "transport", "clock", "memory", "status", "witness", "reject",
         "emergence", "hub", "ack")


def make_hub(tmp_path):
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n')
    return Hub(cfg, Log(quiet=QUIET))


def feed(hub, frames, source="serial:/dev/ttyACM0"):
    hub.process([(f, source, hub.clock(), None) for f in frames])


def test_the_same_sim_node_run_twice_is_stored_twice(tmp_path):
    # Issue 11 item 3: the sim board drew its boot id from its seeded PRNG,
    # so a second run of the same node had the first run's boot id and all
    # its 100 reports were dropped as duplicates.
    fs = stage(tmp_path / "fs", sim_board(report_every=10), {"node": "twice", "seed": 7})
    runs = [decode_lines(run_cpython(fs, 1000))[0] for _ in range(2)]
    boots = [{f["boot"] for f in frames} for frames in runs]
    assert len(boots[0]) == len(boots[1]) == 1 and boots[0] != boots[1]
    hub = make_hub(tmp_path)
    try:
        for frames in runs:
            feed(hub, frames)
        rows = hub.store.reports("twice", 0, limit=10**5)
        per_boot = {}
        for r in rows:
            per_boot.setdefault(r["boot"], []).append(r["n"])
        assert sorted(per_boot) == sorted(b.pop() for b in boots)
        for ns in per_boot.values():
            assert sorted(ns) == list(range(10, 1001, 10))  # 100 reports each, none dropped
        info = hub.registry.nodes["twice"]
        assert info.duplicates == 0 and info.replays == 0 and info.reboots == 1
    finally:
        hub.store.close()


def _report(node, boot, seq):
    return {"t": "report", "node": node, "boot": boot, "seq": seq, "tick": seq * 100,
            "n": seq * 10, "drop": 0, "miss": 0, "ch": [[100, 5000, 1, 12000, 300, -300, 0]],
            "coh": [[6000, 12000]]}


def _hello(node, boot, seq):
    return {"t": "hello", "node": node, "boot": boot, "seq": seq, "tick": seq * 100,
            "board": "sim", "fw": "0.1", "period": 20, "every": 5, "weight": 1, "caps": [],
            "ch": [{"name": "wave", "lags": [2, 4], "s": 6, "s0": 2, "ic": 16384}]}


def test_one_frame_cannot_silence_a_node_at_the_hub(tmp_path):
    # Issue 11 item 2, through the hub and its store: one valid-looking
    # report with the node's boot and seq 2**30 - 1 made the next 99 real
    # reports replays (99/99 lost, and acknowledged); one with another boot
    # id did the same to the next 100.
    hub = make_hub(tmp_path)
    try:
        feed(hub, [_hello("p1", 5, 0)] + [_report("p1", 5, s) for s in range(1, 11)])
        feed(hub, [_report("p1", 5, 2**30 - 1)])
        feed(hub, [_report("p1", 5, s) for s in range(11, 110)])
        feed(hub, [_report("p1", 77, 110)])
        feed(hub, [_report("p1", 5, s) for s in range(110, 210)])
        seqs = sorted(r["seq"] for r in hub.store.reports("p1", 0, limit=10**5))
        assert seqs == list(range(1, 210))  # every real report, and neither poison
        info = hub.registry.nodes["p1"]
        assert info.rejects == {"ahead": 1, "nohello": 1} and info.boot == 5
        assert info.replays == 0 and info.duplicates == 0
    finally:
        hub.store.close()


def test_after_a_restart_an_old_resent_frame_is_looked_up_in_the_store(tmp_path):
    # The restarted hub remembers the node's newest stored seqs only; a frame
    # older than those is looked up: a stored one is a duplicate (not stored
    # twice), one that never arrived is taken, however old.
    hub = make_hub(tmp_path)
    feed(hub, [_hello("r1", 9, 0)] + [_report("r1", 9, s) for s in range(1, 400) if s != 20])
    hub.store.close()  # as after kill -9
    hub = make_hub(tmp_path)
    try:
        assert hub.registry.dedup.state("r1")[2] > 20  # the floor: what was seeded
        feed(hub, [_report("r1", 9, 10), _report("r1", 9, 20), _report("r1", 9, 400)])
        info = hub.registry.nodes["r1"]
        assert info.duplicates == 1 and info.frames == {"report": 2}
        seqs = [r["seq"] for r in hub.store.reports("r1", 0, limit=10**5)]
        assert sorted(seqs) == list(range(1, 401))
    finally:
        hub.store.close()
