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
