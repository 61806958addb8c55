"""Faults through the whole hub with real parts, and what each one cost:
a broker restarted mid-stream, a node rebooting (new boot id, seq from 0)
and a node replaying old frames, over a real Mosquitto; a serial cable
pulled and plugged back mid-stream, over socat ptys.  Firmware nodes run
under CPython in their own processes; the hub runs in this one."""
import json
import subprocess
import threading

import paho.mqtt.client as mqtt
import pytest
from support.broker import Mosquitto
from support.hub import QUIET, mqtt_hub
from support.nodeharness import sim_board, stage, start_cpython
from support.rigs import Cable, needs_socat, wait_for

from becomingone import config, transports
from becomingone.core import Hub
from becomingone.logs import Log

pytestmark = pytest.mark.faults  # the fault suite: pytest -m faults (docs/hub.md)


def start_node(tmp_path, name, node_cfg, samples, tag):
    fs = stage(tmp_path / tag, sim_board(period_ms=10, report_every=10), node_cfg)
    return start_cpython(fs, samples, stdout=subprocess.DEVNULL)


class Tap:
    """A plain MQTT client that records what a node publishes (to replay it)."""

    def __init__(self, broker, topic):
        self.frames, self.lock = [], threading.Lock()
        self.c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="tap")
        self.c.on_message = self._msg
        self.c.on_connect = lambda cl, *a: cl.subscribe(topic, 1)
        self.c.connect(broker.host, broker.port)
        self.c.loop_start()

    def _msg(self, cl, u, m):
        with self.lock:
            self.frames.append((m.topic, bytes(m.payload)))

    def reports(self):
        with self.lock:
            return [(t, p) for t, p in self.frames if t.endswith("/report")]

    def publish(self, topic, payload):
        self.c.publish(topic, payload, qos=1).wait_for_publish(5)

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def test_broker_restart_node_reboot_and_replay_lose_nothing_acknowledged(tmp_path):
    broker = Mosquitto(persistence=True).start()
    hub = tap = None
    procs = []
    try:
        hub, mq = mqtt_hub(tmp_path, broker)
        tap = Tap(broker, "becomingone/n1/report")
        node = {"node": "n1", "seed": 1, "transport": "mqtt", "realtime": True,
                "spool": {"slots": 512},
                "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5}}
        procs.append(start_node(tmp_path, "n1", node, 800, "boot1"))
        assert wait_for(lambda: len(hub.store.reports("n1", 0)) >= 15, 20)
        broker.restart()  # mid-stream: every client drops, sessions come back from disk
        assert procs[0].wait(40) == 0, procs[0].stderr.read().decode()
        boot1 = hub.registry.nodes["n1"].boot
        assert wait_for(lambda: len(hub.store.reports("n1", 0, limit=10**5)) >= 80, 20)
        assert mq.status()["reconnects"] >= 1

        # The node reboots: a new boot id (another seed here), seq from 0.
        node2 = dict(node, seed=2)
        procs.append(start_node(tmp_path, "n1", node2, 300, "boot2"))
        assert procs[1].wait(30) == 0, procs[1].stderr.read().decode()
        info = hub.registry.nodes["n1"]
        assert wait_for(lambda: len(hub.store.reports("n1", 0, limit=10**5)) >= 110, 20)
        assert info.boot != boot1 and info.reboots == 1

        # A node replaying old frames: the first boot's (replays) and this
        # boot's latest (duplicates).  None is stored again; all are counted.
        old = [p for _, p in tap.reports() if json.loads(p)["boot"] == boot1][:20]
        new = [p for _, p in tap.reports() if json.loads(p)["boot"] == info.boot][-5:]
        assert len(old) == 20 and len(new) == 5
        before = (info.replays, info.duplicates)
        for p in old + new:
            tap.publish("becomingone/n1/report", p)
        assert wait_for(lambda: (info.replays, info.duplicates)
                        >= (before[0] + 20, before[1] + 5), 10)
        assert (info.replays - before[0], info.duplicates - before[1]) == (20, 5)

        rows = hub.store.reports("n1", 0, limit=10**5)
        by_boot = {}
        for r in rows:
            by_boot.setdefault(r["boot"], []).append(r["n"])
        # Nothing lost: every report of both boots, each once.
        assert sorted(by_boot[boot1]) == list(range(10, 801, 10))
        assert sorted(by_boot[info.boot]) == list(range(10, 301, 10))
        # (The hub's gap count may be a few: pongs go at QoS 0, and one sent
        # while the broker was down is gone - by design, a late pong is useless.)
        assert info.drops == 0 and hub.store.rejected == 0
    finally:
        for p in procs:
            if p.poll() is None:
                p.kill()
                p.wait(5)
        if tap is not None:
            tap.close()
        if hub is not None:
            hub.stop()
        broker.cleanup()


@needs_socat
def test_serial_cable_pulled_and_plugged_back_mid_stream(tmp_path):
    cable = Cable(tmp_path)
    cable.plug()
    cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
ping_interval = 1.0
[serial]
enabled = true
ports = ["{cable.host}"]
""")
    log = Log(quiet=QUIET)
    hub = Hub(cfg, log)
    seen, lock = [], threading.Lock()

    def sink(msg, source, t_rx, ack):  # what reached the hub, to count the loss
        with lock:
            seen.append((msg["t"], msg.get("boot"), msg.get("seq")))
        hub.sink(msg, source, t_rx, ack)

    ser = transports.make("serial", dict(cfg["serial"], backoff_max=0.5), sink, log.line,
                          hub.registry.reject)
    hub.add_transport(ser)
    hub.start()
    node = {"node": "s1", "seed": 4, "transport": "serial", "realtime": True,
            "spool": {"slots": 64}, "serial": {"port": cable.node}}
    proc = None
    try:
        assert wait_for(lambda: ser.status()["connected"], 10)
        proc = start_node(tmp_path, "s1", node, 1500, "fs")
        assert wait_for(lambda: len(hub.store.reports("s1", 0)) >= 20, 20), \
            proc.stderr.read1().decode() if proc.poll() is not None else ""
        cable.unplug()  # mid-stream, both ends vanish
        assert wait_for(lambda: not ser.status()["connected"], 5)
        n_out = len(hub.store.reports("s1", 0, limit=10**5))
        cable.plug()
        assert wait_for(lambda: ser.status()["connected"], 10)
        assert wait_for(lambda: len(hub.store.reports("s1", 0, limit=10**5)) >= n_out + 20, 20)
        assert proc.wait(40) == 0, proc.stderr.read().decode()
        info = hub.registry.nodes["s1"]
        assert wait_for(lambda: hub.registry.nodes["s1"].frames.get("report", 0)
                        == len(hub.store.reports("s1", 0, limit=10**5)), 5)
        rows = hub.store.reports("s1", 0, limit=10**5)
        ns = [r["n"] for r in rows]
        assert len(ns) == len(set(ns)) and ns == sorted(ns)  # each once, in order
        with lock:
            got_reports = sum(1 for t, b, _ in seen if t == "report")
        # The hub acknowledges what it stored (got lines back over the
        # cable) and the node keeps every frame until then: the lines cut or
        # written into the void while the cable was out went again after
        # it came back.  Nothing is lost; a frame that reached the hub twice
        # (its got was on the way) is a duplicate, stored once.
        assert ns == list(range(10, 1501, 10))
        assert got_reports == len(rows) + info.duplicates and info.gaps == 0
        assert hub.counters["gots"] > 0 and ser.status()["reconnects"] == 1
        # A clock sync survived the outage (pings answered before and after).
        assert hub.clocks["s1"].synced
    finally:
        if proc is not None and proc.poll() is None:
            proc.kill()
            proc.wait(5)
        hub.stop()
        cable.close()


def test_garbage_and_a_malformed_hello_over_mqtt_are_counted_and_shown(tmp_path):
    from kairos import wire

    broker = Mosquitto().start()
    hub = tap = None
    try:
        hub, _ = mqtt_hub(tmp_path, broker)
        tap = Tap(broker, "nothing/here")
        head = {"node": "bad-1", "boot": 5, "tick": 0}
        hello = dict(head, t="hello", seq=0, board="sim", fw="0.1", period=0, every=10,
                     weight=1, caps=[], ch=[])  # period 0: not a valid hello
        good = dict(head, t="report", seq=1, n=10, drop=0, miss=0,
                    ch=[[1, 2, 0, 30000, 3, 0, 1]], coh=[[30000]])
        tap.publish("becomingone/bad-1/hello", json.dumps(hello).encode())
        for junk in (b"\x00\xff garbage", b"{", b'{"v":1,"t":"report"}'):
            tap.publish("becomingone/bad-1/report", junk)
        tap.publish("becomingone/bad-1/report", wire.encode_json(good))
        assert wait_for(lambda: len(hub.store.reports("bad-1", 0)) == 1, 10)
        assert sum(hub.registry.rejects["mqtt"].values()) == 4

        def shown():  # in recent events within a second or two, coalesced
            return [e for e in list(hub.recent) if e["kind"] == "reject"]

        assert wait_for(lambda: sum(e["n"] for e in shown()) == 4, 5), list(hub.recent)
        assert {e["source"] for e in shown()} == {"mqtt"} and len(shown()) <= 4
        info = hub.registry.nodes["bad-1"]
        assert info.hello is None and info.frames == {"report": 1}  # the bad hello: refused
    finally:
        if tap is not None:
            tap.close()
        if hub is not None:
            hub.stop()
        broker.cleanup()
