"""The hub's core, driven by hand with frames on a fake clock: a restart
restores the registry and the dedup from the store, a collapse before the
first report is kept, rejects reach the recent events coalesced, a missing
MQTT library does not stop the hub."""
import io
import subprocess
import sys
import threading

import pytest
from support.frames import event, frame, hello, report
from support.hub import feed, make
from support.rigs import FakeClock, wait_for

from becomingone import config
from becomingone.core import FAILED, Hub
from becomingone.logs import Log


def test_a_restart_restores_hello_metadata_and_dedup(tmp_path):
    hub = make(tmp_path)
    feed(hub, [hello(0)] + [report(s) for s in range(1, 201)] + [event(201)])
    hub.store.close()  # as after kill -9: no stop(), no save()

    hub2 = make(tmp_path)
    try:
        info = hub2.registry.nodes["n1"]
        assert info.hello["board"] == "sim" and info.hello["weight"] == 2
        assert info.report_period == pytest.approx(0.1) and info.source == "mqtt"
        assert hub2.nodes.caps("n1") == ["led"]
        assert hub2.registry.stale(hub2.clock()) == ["n1"]  # until it speaks
        stored = len(hub2.store.reports("n1", 0, limit=10000))
        # The same frames again (a redelivery, a replaying node): none is new.
        # (report 3 is older than what the dedup was seeded with: the store
        # is asked, and has it.)
        feed(hub2, [report(s) for s in range(150, 201)] + [event(201)] + [report(3)])
        info = hub2.registry.nodes["n1"]
        assert info.duplicates == 53 and info.replays == 0
        assert info.frames == {} and len(hub2.store.reports("n1", 0, limit=10000)) == stored
        # New frames are.
        feed(hub2, [report(202), report(203)])
        assert info.frames == {"report": 2} and info.gaps == 0
        assert hub2.registry.live(hub2.clock()) == ["n1"]
    finally:
        hub2.store.close()


def test_a_restart_remembers_old_boots_as_replays(tmp_path):
    hub = make(tmp_path)
    feed(hub, [hello(0, boot=1), report(1, boot=1), hello(0, boot=2), report(1, boot=2)])
    hub.store.close()
    hub2 = make(tmp_path)
    try:
        feed(hub2, [report(5, boot=1)])  # the previous boot: a replay
        info = hub2.registry.nodes["n1"]
        assert info.replays == 1 and info.boots == [1] and info.boot == 2
        feed(hub2, [hello(0, boot=3), report(1, boot=3)])  # a reboot: new boot id, seq from 0
        assert info.frames == {"hello": 1, "report": 1} and info.reboots == 1
        assert info.boots == [1, 2]
    finally:
        hub2.store.close()


def test_a_bad_saved_node_is_logged_and_skipped(tmp_path):
    hub = make(tmp_path)
    feed(hub, [hello(0), hello(0, node="n2"), report(1, node="n2")])
    hub.store.save_state("node/n1", {"hello": {"board": 5}, "boot": 77})
    hub.store.close()
    out = io.StringIO()
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n')
    hub2 = Hub(cfg, Log(stream=out), clock=FakeClock())
    try:
        assert "n1" not in hub2.registry.nodes and hub2.registry.nodes["n2"].hello
        assert "node state not restored: n1" in out.getvalue(), out.getvalue()
    finally:
        hub2.store.close()


def test_a_collapse_before_the_first_report_is_kept_and_remembered(tmp_path):
    hub = make(tmp_path)
    try:
        feed(hub, [hello(0), event(1, c=31000)])
        assert hub.registry.rejects == {} and hub.store.rejected == 0
        assert len(hub.store.events("n1")) == 1 and hub.store.memories(hub.clock()) == []
        feed(hub, [report(2)])
        mems = hub.store.memories(hub.clock())
        assert len(mems) == 1 and mems[0]["kind"] == "collapse"
        assert mems[0]["c"] == pytest.approx(31000 / 32768)
        assert set(mems[0]["signature"]) == {"n1"}
        assert FAILED not in str(hub.registry.snapshot(hub.clock()))
    finally:
        hub.store.close()


def test_rejects_reach_recent_events_coalesced(tmp_path):
    clock = FakeClock()
    hub = make(tmp_path, clock)
    try:
        feed(hub, [hello(0), report(1)])
        hub.tick(clock.t)
        for _ in range(500):  # garbage at any rate ...
            hub.registry.reject("serial:/dev/ttyX", "crc")
        hub.registry.reject("mqtt", "topic", "n1")
        feed(hub, [report(1)] * 3)
        clock.t += 0.1
        hub.tick(clock.t)  # ... within the second: nothing yet
        clock.t += 1.0
        hub.tick(clock.t)
        rej = [e for e in hub.recent if e["kind"] == "reject"]
        assert sorted((e["source"], e["reason"], e["n"]) for e in rej) == [
            ("dedup", "duplicate", 3), ("mqtt", "topic", 1), ("serial:/dev/ttyX", "crc", 500)]
        assert any(e["text"] == "500 crc frames from serial:/dev/ttyX" for e in rej)
        clock.t += 1.0
        hub.tick(clock.t)  # nothing new: nothing added
        assert len([e for e in hub.recent if e["kind"] == "reject"]) == 3
    finally:
        hub.store.close()


@pytest.mark.parametrize("node_weight", ["", '[nodes.n1]\nweight = 0.5\n'])
def test_node_weight_from_config_or_hello(tmp_path, node_weight):
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n{node_weight}')
    hub = Hub(cfg, Log(quiet=("hello",)), clock=FakeClock())
    try:
        feed(hub, [hello(0), report(1)])
        (view,) = hub.nodes.views(hub.clock())
        assert view.weight == (0.5 if node_weight else 2)
        hub.tick(hub.clock())  # and the mesh runs on it
    finally:
        hub.store.close()


def test_mqtt_enabled_without_paho_runs_on(tmp_path):
    # paho made unimportable in a child process, as on a machine without it.
    (tmp_path / "hub.toml").write_text(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mqtt]
enabled = true
[sim]
nodes = 3
[[rules]]
name = "publish"
when = "True"
edge = false
min_interval = 0.2
action = "mqtt"
[rules.with]
topic = "x/state"
[[inputs]]
name = "door"
mqtt_topic = "house/door"
""")
    code = ("import sys; sys.modules['paho'] = None; sys.modules['paho.mqtt'] = None; "
            "sys.modules['paho.mqtt.client'] = None; from becomingone.cli import main; "
            f"sys.exit(main(['hub', '--config', {str(tmp_path / 'hub.toml')!r}, "
            "'--seconds', '2', '--no-web']))")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60)
    out = r.stdout + r.stderr
    assert r.returncode == 0, out
    assert "Traceback" not in out and "AttributeError" not in out, out
    assert "mqtt: paho-mqtt is not installed" in out, out
    assert ("input: house/door: the MQTT transport is off (paho-mqtt is not installed"
            in out and "inputs take numbers by POST" in out), out


def test_a_store_without_saved_nodes_still_seeds_the_dedup(tmp_path):
    hub = make(tmp_path)
    feed(hub, [hello(0)] + [report(s) for s in range(1, 11)])
    assert hub.store.delete_state("node/n1")  # as a store written before node/<id> existed
    hub.store.close()
    hub2 = make(tmp_path)
    try:
        feed(hub2, [report(s) for s in range(5, 11)] + [report(11)])
        info = hub2.registry.nodes["n1"]
        assert info.duplicates == 6 and info.frames == {"report": 1} and info.hello is None
    finally:
        hub2.store.close()


def test_a_full_queue_holds_the_transport_back_instead_of_losing(tmp_path, monkeypatch):
    import threading

    from becomingone import core

    monkeypatch.setattr(core, "QUEUE_MAX", 5)
    hub = make(tmp_path)
    hub.start()
    done = threading.Event()
    try:
        with hub.store._lock:  # the core gets stuck at its next store access ...
            def transport():
                hub.sink(hello(0), "mqtt", hub.clock(), None)
                for s in range(1, 21):
                    hub.sink(report(s), "mqtt", hub.clock(), None)
                done.set()

            threading.Thread(target=transport, daemon=True).start()
            assert wait_for(lambda: hub.queue_depth() >= 5, 5)
            assert not done.wait(0.3) and hub.queue_depth() <= 5  # ... so the transport waits
        assert done.wait(10)  # the store is free again: it goes on
        assert wait_for(lambda: len(hub.store.reports("n1", 0)) == 20, 10)
    finally:
        hub.stop()


def test_ack_events_carry_the_command_id(tmp_path):
    hub = make(tmp_path)
    try:
        feed(hub, [hello(0), frame("ack", 1, id=4242, ok=0, err="no such output"),
                   frame("ack", 2, id=7, ok=1, err="")])
        acks = [e for e in hub.recent if e["kind"] == "ack"]
        assert [(e["id"], e["ok"], e["node"]) for e in acks] == [(4242, 0, "n1"), (7, 1, "n1")]
        assert acks[0]["text"] == "n1 command 4242 failed: no such output"
    finally:
        hub.stop()


def test_a_batch_the_store_refuses_is_retried_until_it_is_in(tmp_path):
    # A real SQLITE_FULL ("database or disk is full"): the store may not grow.
    # The batch must not be dropped (its frames are already in the dedup, so
    # a redelivery would be refused): the core retries, acks only once it is
    # stored, and everything is there when the disk has room again.
    import threading

    hub = make(tmp_path)
    feed(hub, [hello(0), report(1)])
    db = hub.store._db
    pages = db.execute("PRAGMA page_count").fetchone()[0]
    db.execute(f"PRAGMA max_page_count = {pages}")
    acked = []
    batch = [(report(s), "mqtt", hub.clock(), lambda s=s: acked.append(s))
             for s in range(2, 400)]
    th = threading.Thread(target=hub.process, args=(batch,))
    th.start()
    try:
        assert wait_for(lambda: hub.counters["store_retries"] >= 3, 20)
        assert acked == []  # nothing acknowledged while it is not stored
    finally:
        db.execute("PRAGMA max_page_count = 1073741823")
        th.join(30)
    assert not th.is_alive()
    assert acked == list(range(2, 400))
    seqs = [r[0] for r in db.execute("SELECT seq FROM raw JOIN node ON raw.node = node.id "
                                     "WHERE node.name = 'n1' ORDER BY seq")]
    assert seqs == list(range(1, 400))
    hub.store.close()


def test_frames_to_a_node_leave_in_seq_order_from_any_thread(tmp_path):
    # A node drops a hub frame whose seq is not above the last it took (a
    # replay), so web commands and the core's pings, sent from two threads,
    # must reach the transport in the order of their numbers.
    import threading

    from becomingone import run

    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n[web]\nenabled = false\n')
    hub = run.build(cfg, Log(quiet=("hello", "collapse", "memory", "clock", "ack", "witness",
                                    "status", "emergence", "transport")), sim_nodes=2)
    sim = hub.transports[0]
    seen, real_send = [], sim.send

    def send(msg):
        seen.append(msg["seq"])
        real_send(msg)

    sim.send = send
    hub.start()
    old = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible
    try:
        assert wait_for(lambda: len(hub.registry.live(hub.clock())) == 2, 10)
        cmds = threading.Thread(target=lambda: [hub.send_command("sim-0000", "led", {"on": 1})
                                                for _ in range(2000)])
        cmds.start()
        for _ in range(1000):
            hub.ping_all(hub.clock())
        cmds.join(30)
    finally:
        sys.setswitchinterval(old)
        hub.stop()
    assert len(seen) >= 2000 + 2 * 1000
    assert seen == sorted(seen)


def test_a_restart_keeps_the_state_but_takes_the_new_configs_settings(tmp_path):
    db = tmp_path / "hub.db"
    hub = Hub(config.parse(f'[hub]\ndb = "{db}"\n'), Log(quiet=("hello",)), clock=FakeClock())
    feed(hub, [hello(0), report(1)])
    hub.tick(hub.clock())
    hub.save()
    n = hub.witness.n
    hub.store.close()
    cfg = config.parse(f'[hub]\ndb = "{db}"\n[mesh]\nenter = 0.8\nleave = 0.6\ndwell = 5.0\n'
                       'stale_periods = 4.0\n[witness]\nbeta = 0.2\nk = 4.0\nrefractory = 25\n')
    hub2 = Hub(cfg, Log(quiet=("hello",)), clock=FakeClock())
    try:
        m, w = hub2.mesh, hub2.witness
        assert (m.enter, m.leave, m.dwell, m.stale_periods) == (0.8, 0.6, 5.0, 4.0)
        assert (w.beta, w.k, w.refractory) == (0.2, 4.0, 25)
        assert w.n == n > 0  # the state itself is the saved one
    finally:
        hub2.store.close()


SETTINGS = {"mesh": {"enter", "leave", "dwell", "stale_periods"},
            "witness": {"beta", "k", "avg_alpha", "warmup", "eps", "refractory"},
            "master": {"taus", "align_rad", "w_m", "w_e"},
            "clock": {"window", "tick_mask", "min_span", "max_drift_ppm"}}


def test_the_saved_state_holds_state_only_and_resumes_under_the_new_master_settings(tmp_path):
    db = tmp_path / "hub.db"
    hub = Hub(config.parse(f'[hub]\ndb = "{db}"\n[master]\ntaus = [30.0, 300.0]\n'),
              Log(quiet=("hello",)), clock=FakeClock())
    feed(hub, [hello(0)] + [report(s) for s in range(1, 11)])
    hub.tick(hub.clock())
    hub.save()
    saved = hub.store.all_state()
    n = hub.witness.n
    hub.store.close()
    kinds = {key.split("/")[0] for key in saved}
    assert {"mesh", "witness", "master"} <= kinds
    for key, blob in saved.items():
        assert not set(blob) & SETTINGS.get(key.split("/")[0], set()), (key, sorted(blob))

    # Same taus, another align_rad: the averages resume under the new setting.
    cfg = config.parse(f'[hub]\ndb = "{db}"\n[master]\ntaus = [30.0, 300.0]\n'
                       'align_rad = 0.1\n')
    hub2 = Hub(cfg, Log(quiet=("hello",)), clock=FakeClock())
    try:
        assert hub2.nodes.saved() == {k: v for k, v in saved.items() if k.startswith("master/")}
        assert hub2.nodes.align_rad == 0.1 and hub2.witness.n == n
        feed(hub2, [report(11)])
        went_on = hub2.nodes.saved()["master/n1/0"]
        assert went_on["n"] == saved["master/n1/0"]["n"] + 1 == 11  # from the saved averages
    finally:
        hub2.store.close()

    # Three taus now: the two saved averages cannot be them; that channel starts afresh.
    log = io.StringIO()
    hub3 = Hub(config.parse(f'[hub]\ndb = "{db}"\n'), Log(stream=log), clock=FakeClock())
    try:
        assert hub3.nodes.saved() == {}
        assert "master n1/0: ema: saved 2 averages, the taus are 3" in log.getvalue()
        feed(hub3, [report(12)])
        assert len(hub3.nodes.saved()["master/n1/0"]["ema"]) == 3
    finally:
        hub3.store.close()


def test_readers_on_other_threads_never_see_the_core_change_under_them(tmp_path):
    """The web's way in (nodes, registry, events, STATE) from four threads
    while the core takes frames from 300 new nodes: no RuntimeError, and
    every read is consistent in itself."""
    hub = make(tmp_path)
    feed(hub, [hello(0), report(1)])
    hub.tick(hub.clock())
    done, errors = threading.Event(), []

    def read():
        while not done.is_set():
            try:
                now = hub.clock()
                rows = hub.nodes.rows(now)
                assert all(set(r) >= {"online", "c", "channels"} for r in rows.values())
                hub.nodes.views(now)
                hub.nodes.signature(hub.nodes.reported())
                hub.registry.presence(now)
                hub.registry.snapshot(now)
                seqs = [s for s, _ in hub.events_after(0)]
                assert seqs == sorted(seqs)
                assert len(hub.recent) <= 200
                hub.state(now)
            except Exception as e:  # noqa: BLE001 - any is the failure
                errors.append(repr(e))
                return

    readers = [threading.Thread(target=read) for _ in range(4)]
    interval = sys.getswitchinterval()
    sys.setswitchinterval(1e-6)  # switch threads as often as possible: races show
    for r in readers:
        r.start()
    try:
        for i in range(300):
            node = f"new-{i:03d}"
            feed(hub, [hello(0, node=node), report(1, node=node), event(2, node=node)])
            if i % 10 == 0:
                hub.tick(hub.clock())
    finally:
        done.set()
        for r in readers:
            r.join(10)
        sys.setswitchinterval(interval)
        hub.store.close()
    assert not errors, errors[:3]
    assert len(hub.nodes) == 301 and hub.registry.count() == 301
