"""A CPython node (the Pi Zero / sim firmware, unchanged) against a real
Mosquitto: hello, reports, events, last will; the broker goes away and comes
back and every report made meanwhile still arrives, in order."""
import json
import signal
import threading
import time

import paho.mqtt.client as mqtt
from support.broker import Mosquitto
from support.mp import ROOT
from support.nodeharness import sim_board, stage, start_cpython

from kairos import wire


class Hub:
    """A paho subscriber with a persistent session on becomingone/#."""

    def __init__(self, broker, client_id="test-hub"):
        self.msgs = []
        self.lock = threading.Lock()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id,
                        clean_session=False)
        c.reconnect_delay_set(0.05, 0.2)
        c.on_message = self._on_message
        c.on_connect = lambda c, u, f, rc, p: c.subscribe("becomingone/#", qos=1)
        c.connect(broker.host, broker.port, keepalive=5)
        c.loop_start()
        self.c = c

    def _on_message(self, c, u, m):
        with self.lock:
            self.msgs.append((m.topic, m.payload, m.retain))

    def of(self, kind):
        with self.lock:
            return [(p, r) for t, p, r in self.msgs if t.endswith("/" + kind)]

    def wait(self, pred, timeout=10.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            if pred():
                return True
            time.sleep(0.05)
        return False

    def close(self):
        self.c.loop_stop()
        self.c.disconnect()


def persistent(broker):
    # Sessions survive the broker's restart, so the test's subscriber misses
    # nothing; what we measure is the node's own store-and-forward.
    broker.conf.write_text(broker.conf.read_text().replace(
        "persistence false", "persistence true\npersistence_location %s/" % broker.dir))
    return broker


def start_node(tmp_path, broker, samples=None, board=None, node=None, **over):
    cfg = dict({"node": "mq-1", "seed": 4, "transport": "mqtt", "realtime": True,
                "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5}}, **(node or {}))
    fs = stage(tmp_path, board or sim_board(period_ms=10, report_every=10, **over), cfg)
    return start_cpython(fs, samples)


def decoded(payloads):
    counts = {}
    out = [wire.decode_json(p, counts) for p, _ in payloads]
    assert not counts, counts
    return out


def test_reports_survive_a_broker_restart(tmp_path):
    broker = persistent(Mosquitto()).start()
    hub = proc = None
    try:
        hub = Hub(broker)
        # Room for the outage (10 reports a second, 10x a normal node, plus
        # events): nothing may be lost while the ring has room.
        proc = start_node(tmp_path, broker, samples=1000, node={"spool": {"slots": 128}})
        assert hub.wait(lambda: len(hub.of("report")) >= 15)
        broker.stop()
        time.sleep(2.0)  # ~20 reports are made while the broker is gone
        broker.start()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert b"link mqtt down" in out  # the node noticed, and said so once
        assert hub.wait(lambda: any(p == b"offline" for p, _ in hub.of("status")))
        reports = decoded(hub.of("report"))
        dedup = wire.Dedup()
        kept = [r for r in reports if dedup.accept(r)]
        assert [r["n"] for r in kept] == list(range(10, 1001, 10))
        assert [r["seq"] for r in kept] == sorted(r["seq"] for r in kept)
        assert kept[-1]["drop"] == 0
        hello = decoded(hub.of("hello"))
        assert hello[0]["node"] == "mq-1" and len(hello[0]["ch"]) == 3
        assert decoded(hub.of("event"))  # collapse events went out too
    finally:
        if proc and proc.poll() is None:
            proc.kill()
        if hub:
            hub.close()
        broker.cleanup()


def test_last_will_and_retained_hello(tmp_path, mosquitto):
    hub = Hub(mosquitto, client_id="will-watch")
    proc = start_node(tmp_path, mosquitto)
    try:
        assert hub.wait(lambda: (b"online", True) in hub.of("status") or
                        any(p == b"online" for p, _ in hub.of("status")))
        assert hub.wait(lambda: len(hub.of("report")) >= 3)
        proc.send_signal(signal.SIGKILL)  # no goodbye: the broker's will speaks
        proc.wait(5)
        assert hub.wait(lambda: any(p == b"offline" for p, _ in hub.of("status")), 5)
        # A hub that starts later still learns the node: hello is retained.
        late = Hub(mosquitto, client_id="late-hub")
        try:
            assert late.wait(lambda: late.of("hello"), 5)
            payload, retained = late.of("hello")[0]
            assert retained and json.loads(payload)["node"] == "mq-1"
            assert late.wait(lambda: late.of("status"), 5)
            assert late.of("status")[0] == (b"offline", True)
        finally:
            late.close()
    finally:
        if proc.poll() is None:
            proc.kill()
        hub.close()


def test_a_pi_zero_w_node_with_its_whole_sensor_set(tmp_path):
    # boards/pi-zero-w.json as shipped (3 BME280 fields, SoC temperature, a
    # button); no Pi here, so the sim HAL stands in (its I2C bus has a
    # BME280).  A ring of 6 slots overflows while the broker is away: the
    # drops are counted, and the hello (never spooled) still comes back.
    board = json.loads((ROOT / "boards" / "pi-zero-w.json").read_text())
    broker = persistent(Mosquitto()).start()
    hub = proc = None
    try:
        hub = Hub(broker, client_id="pz-hub")
        proc = start_node(tmp_path, broker, samples=1000, board=board,
                          node={"node": "pz-1", "hal": "sim", "period_ms": 10,
                                "report_every": 10, "spool": {"slots": 6}})
        assert hub.wait(lambda: len(hub.of("report")) >= 5)
        hello = decoded(hub.of("hello"))[0]
        assert hello["board"] == "pi-zero-w" and hello["weight"] == 4
        assert [c["name"] for c in hello["ch"]] == [s["name"] for s in board["sensors"]]
        assert hello["caps"] == ["led", "buzzer", "motor", "mqtt"]
        broker.stop()
        time.sleep(2.0)  # ~20 reports are made; 6 slots keep the newest
        broker.start()
        out, err = proc.communicate(timeout=60)
        assert proc.returncode == 0, err.decode()
        assert b"skipped" not in out and b"config:" not in out
        hellos = decoded(hub.of("hello"))
        assert len(hellos) >= 2 and hellos[-1]["ch"] == hello["ch"]  # re-announced
        dedup = wire.Dedup()
        kept = [r for r in decoded(hub.of("report")) if dedup.accept(r)]
        ns = [r["n"] for r in kept]
        assert ns == sorted(ns) and ns[-1] == 1000 and all(len(r["ch"]) == 5 for r in kept)
        lost = 100 - len(ns)
        assert lost > 0 and kept[-1]["drop"] >= lost  # every lost report is counted
        # The BME280 channels carry their readings: temperature near 25 C
        # (offset 2200, x8), pressure near 1007 hPa (offset 101325).
        mean_t, mean_p = kept[-1]["ch"][0][0], kept[-1]["ch"][1][0]
        assert 0 < mean_t < 16384 and -2000 < mean_p < 0
    finally:
        if proc and proc.poll() is None:
            proc.kill()
        if hub:
            hub.close()
        broker.cleanup()
