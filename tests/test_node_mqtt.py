"""A CPython node (the Pi Zero / sim firmware, unchanged) against a real
Mosquitto: hello, reports, events, last will; the broker goes away and comes
back and every report made meanwhile still arrives, in order."""
import json
import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
from broker import Mosquitto, mosquitto  # noqa: F401 (fixture)
from kairos import wire
from nodeharness import sim_board, stage


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


def start_node(tmp_path, broker, samples=None, **over):
    cfg = {"node": "mq-1", "seed": 4, "transport": "mqtt", "realtime": True,
           "mqtt": {"host": broker.host, "port": broker.port, "keepalive": 5}}
    fs = stage(tmp_path, sim_board(period_ms=10, report_every=10, **over), cfg)
    args = [sys.executable, str(fs / "main.py"), "--board", str(fs / "board.json"),
            "--config", str(fs / "node.json")]
    if samples:
        args += ["--samples", str(samples)]
    env = dict(os.environ, PYTHONPATH=str(fs))
    return subprocess.Popen(args, cwd=fs, env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE)


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
        proc = start_node(tmp_path, broker, samples=1000)
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


def test_last_will_and_retained_hello(tmp_path, mosquitto):  # noqa: F811
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
