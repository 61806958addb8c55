"""End to end with real parts: node firmware (CPython) -> real Mosquitto ->
`becomingone hub` in its own process, killed with SIGKILL mid-stream and
restarted; and firmware on real MicroPython -> a real pty -> the hub's serial
transport.  What was acknowledged is never lost."""
import os
import signal
import subprocess
import sys
import threading
import time

import pytest
from support.broker import Mosquitto
from support.nodeharness import FirmwareVM, sim_board, stage, start_cpython
from support.rigs import text, wait_for

from becomingone import config
from becomingone.logs import Log
from becomingone.slowtier.clocksync import ClockSync
from becomingone.store import Store

pytestmark = pytest.mark.faults  # the fault suite: pytest -m faults (docs/hub.md)


def hub_proc(tmp_path, broker, db, name):
    cfg = tmp_path / "hub.toml"
    cfg.write_text(f"""
[hub]
db = "{db}"
ping_interval = 1.0
[mesh]
dwell = 1.0
[mqtt]
enabled = true
host = "{broker.host}"
port = {broker.port}
""")
    with open(tmp_path / f"{name}.log", "wb") as log:  # the child keeps its own copy
        p = subprocess.Popen([sys.executable, "-m", "becomingone", "hub", "--config", str(cfg),
                              "--status", "1"], stdout=log, stderr=subprocess.STDOUT)
    return p, tmp_path / f"{name}.log"


def node_proc(tmp_path, broker, name, samples):
    fs = stage(tmp_path / name, sim_board(period_ms=10, report_every=10),
               {"node": name, "seed": len(name), "transport": "mqtt", "realtime": True,
                "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5}})
    return start_cpython(fs, samples, stdout=subprocess.DEVNULL)


def assert_clock_close(store, node):
    """The hub's clock estimate for a node against the truth: the firmware
    under CPython counts ticks as time.monotonic() in ms (mod 2**30), the
    hub's time is time.time(), and both are this machine's clocks.  The
    midpoint estimator is off by at most half the round trip of its best
    sample (docs/kairos.md §3); 20 ms more for drift fitted over a short run."""
    d = store.load_state(f"clock/{node}")
    assert d is not None, node
    d.pop("boot", None)
    cs = ClockSync.from_dict(d)
    assert cs.synced
    for _ in range(3):
        now = time.time()
        tick = (time.monotonic_ns() // 1_000_000) & 0x3FFFFFFF
        err = cs.to_hub(tick, now) - now
        assert abs(err) <= cs.delay / 2 + 0.02, (node, err, cs.delay)
        time.sleep(0.2)


def test_mqtt_nodes_to_hub_survive_a_hub_kill(tmp_path):
    (tmp_path / "n1").mkdir()
    (tmp_path / "n2").mkdir()
    db = tmp_path / "hub.db"
    broker = Mosquitto().start()
    procs = []
    try:
        hub1, log1 = hub_proc(tmp_path, broker, db, "hub1")
        procs.append(hub1)
        assert wait_for(lambda: "mqtt" in text(log1) or "status" in text(log1), 10)
        nodes = [node_proc(tmp_path, broker, n, 1500) for n in ("n1", "n2")]
        procs += nodes
        assert wait_for(lambda: text(log1).count("hello:") >= 2, 20), text(log1)
        assert wait_for(lambda: "THE_ONE entered" in text(log1), 20), text(log1)
        hub1.send_signal(signal.SIGKILL)  # mid-stream, nothing flushed on purpose
        hub1.wait(5)
        time.sleep(1.0)  # the broker queues for the hub's persistent session
        hub2, log2 = hub_proc(tmp_path, broker, db, "hub2")
        procs.append(hub2)
        for n in nodes:
            assert n.wait(60) == 0, n.stderr.read().decode()
        # Both nodes said goodbye (offline): stale at once, emergence ends.
        assert wait_for(lambda: "THE_ONE left" in text(log2), 20), text(log2)
        hub2.send_signal(signal.SIGINT)
        assert hub2.wait(15) == 0, text(log2)
        store = Store(db)
        try:
            for name in ("n1", "n2"):
                ns = sorted({r["n"] for r in store.reports(name, 0, limit=100000)})
                assert ns == list(range(10, 1501, 10)), (name, len(ns))
                # Collapse events arrived and were stored (the coherent "wave"
                # channel collapses early in every run).
                evs = store.events(name)
                assert any(e["on"] and e["i"] == 0 for e in evs), evs
                assert_clock_close(store, name)
            ok, entries, _ = store.verify_log()
            assert ok and entries > 0
        finally:
            store.close()
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
        broker.cleanup()


def test_micropython_node_over_a_pty_into_the_hub(tmp_path):
    master, slave = os.openpty()
    port = os.ttyname(slave)
    cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mesh]
dwell = 0.0
[serial]
enabled = true
ports = ["{port}"]
""")
    log = Log(quiet=("collapse", "hello", "transport"))
    from becomingone import run

    hub = run.build(cfg, log)
    hub.start()
    vm = FirmwareVM(stage(tmp_path / "fs", sim_board(), {"node": "mp-9", "seed": 6}))
    try:
        vm.boot()
        sent = 0
        for _ in range(16):  # 800 samples, streamed as the VM produces them
            vm.loop(50)
            out = vm.stdout()
            os.write(master, out[sent:])
            sent = len(out)
        assert wait_for(lambda: len(hub.store.reports("mp-9", 0)) >= 32, 20)
        info = hub.registry.nodes["mp-9"]
        assert info.hello["board"] == "sim" and info.source.startswith("serial:")
        rows = hub.store.reports("mp-9", 0)
        assert [r["n"] for r in rows] == list(range(25, 801, 25))
        assert max(r["c"] for r in rows) > 0.9 * 32768
        evs = hub.store.events("mp-9")  # the wave channel's collapse, in the store ...
        assert any(e["on"] and e["i"] == 0 for e in evs), evs
        assert wait_for(lambda: hub.mesh_state is not None and hub.mesh_state.emerged, 10)
        # ... and in the hub's events, with emergence entering; then the VM
        # stops sending: after 3 report periods the node is stale, out of the
        # mesh, and emergence leaves.
        assert wait_for(lambda: not hub.mesh_state.emerged, 15)
        kinds = [(e["kind"], e["text"]) for e in hub.recent]
        assert ("emergence", "THE_ONE entered") in kinds and ("emergence", "THE_ONE left") in kinds
        assert [e for e in hub.recent if e["kind"] == "collapse" and "mp-9" in e["text"]]
        assert hub.registry.stale(time.time()) == ["mp-9"]
    finally:
        vm.close()
        threading.Thread(target=hub.stop, daemon=True).start()
        time.sleep(0.5)
        os.close(master)
        os.close(slave)
