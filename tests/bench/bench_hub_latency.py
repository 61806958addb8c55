"""Hub latency figure.  Run (name the file: pyproject has no python_files for bench_*):

    .venv/bin/python -m pytest tests/bench/bench_hub_latency.py -m bench -s

End to end: a report published to Mosquitto -> the hub's MqttTransport ->
core (stored, acknowledged) -> the next tick's rule -> the mqtt action's
publish -> a subscriber on the output topic.  docs/hub-figures.md quotes
the numbers.

The hub runs in this process (its own threads, a tmp SQLite file) with one
rule, ``node("bench-1").c > 0.9`` with edge = false, publishing the hub state
JSON to an output topic on every tick the condition holds.  A paho publisher
alternates reports of bench-1 with c high and low.  For each high report the
latency is (arrival of the first output whose state time "t" is not older
than the report's publish time) - (publish time), both from time.time() in
this process.  After the low report the bench waits until the hub has taken
it plus one tick, so no output of the previous high can be mistaken for the
next one; each high is published at a random phase of the tick.  The tick
bounds the latency (a rule is evaluated on the tick after the frame is
stored), so it is measured at tick_hz = 10 (the default) and 50.

Prints p50 / p99 (and min, mean, max); never asserts on time.
"""
import io
import json
import os
import queue
import random
import statistics
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from support.broker import Mosquitto
from support.frames import Frames
from support.rigs import wait_for

from becomingone import config, run
from becomingone.logs import Log
from kairos import wire

pytestmark = pytest.mark.bench

TRANSITIONS = int(os.environ.get("BENCH_TRANSITIONS", 300))
OUT_TOPIC = "bench/hub/state"
NODE = "bench-1"
HIGH, LOW = 32000, 1000  # c in Q15: 0.977 and 0.031


def hub_config(broker, db, tick_hz):
    return config.parse(f"""
[hub]
db = "{db}"
tick_hz = {tick_hz}
[mqtt]
enabled = true
host = "{broker.host}"
port = {broker.port}
client_id = "bench-hub-latency"

[[rules]]
name = "bench high"
when = 'node("{NODE}").c > 0.9'
edge = false
action = "mqtt"
[rules.with]
topic = "{OUT_TOPIC}"
""", "bench.toml")


BENCH = Frames(node=NODE, boot=12345)  # tick = seq * 100, n = seq * 5


def report_payload(seq, c):
    """The MQTT payload of a report whose one channel has coherence c."""
    return wire.encode_json(BENCH.report(seq, c=c, ch=[[0, 1000, 2, c, 100, -100, 0]],
                                         coh=[[c // 4, c // 2, c, c // 2]]))


def started(cid, broker, subscribe=None):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=True)
    ready = threading.Event()

    def on_connect(cl, ud, flags, rc, props=None):
        if subscribe:
            cl.subscribe(subscribe, 1)
        else:
            ready.set()

    c.on_connect = on_connect
    c.on_subscribe = lambda *a: ready.set()
    c.connect(broker.host, broker.port, 30)
    c.loop_start()
    if not ready.wait(10):
        raise RuntimeError(f"{cid}: not connected/subscribed")
    return c


def measure(broker, db, tick_hz, n=TRANSITIONS, seed=7):
    rng = random.Random(seed)
    period = 1.0 / tick_hz
    arrivals: queue.Queue = queue.Queue()
    sub = started("bench-out", broker, subscribe=OUT_TOPIC)
    sub.on_message = lambda cl, ud, m: arrivals.put((time.time(), json.loads(m.payload)["t"]))
    pub = started("bench-pub", broker)
    hub = run.build(hub_config(broker, db, tick_hz), Log(stream=io.StringIO()))
    hub.start()
    mq = next(t for t in hub.transports if t.kind == "mqtt")
    lat, seq = [], 0
    try:
        if not mq.ready.wait(10):
            raise RuntimeError("hub: not subscribed")

        def taken(s):
            m = hub.nodes.report(NODE)
            return m is not None and m["seq"] >= s

        for _ in range(n):
            # low: wait until the hub has it, plus a tick (and a margin) for
            # any output of the previous high still on its way
            pub.publish(f"becomingone/{NODE}/report", report_payload(seq, LOW), qos=1)
            if not wait_for(lambda s=seq: taken(s), 10, step=0.001):
                raise RuntimeError("hub did not take the low report")
            seq += 1
            time.sleep(period + 0.02 + rng.uniform(0, period))
            while not arrivals.empty():
                arrivals.get_nowait()
            t_pub = time.time()
            pub.publish(f"becomingone/{NODE}/report", report_payload(seq, HIGH), qos=1)
            seq += 1
            while True:
                t_arr, t_state = arrivals.get(timeout=10)
                if t_state >= t_pub:
                    lat.append(t_arr - t_pub)
                    break
    finally:
        hub.stop()
        for c in (pub, sub):
            c.disconnect()
            c.loop_stop()
    return lat


@pytest.mark.parametrize("tick_hz", [10, 50])
def test_report_to_rule_to_mqtt_latency(tmp_path, tick_hz):
    broker = Mosquitto().start()
    try:
        lat = measure(broker, tmp_path / "hub.db", tick_hz)
    finally:
        broker.cleanup()
    ms = [x * 1000 for x in lat]
    q = statistics.quantiles(ms, n=100, method="inclusive")
    print(f"\ntick_hz={tick_hz} (tick {1000 / tick_hz:.0f} ms): {len(ms)} transitions, "
          f"report -> rule -> MQTT output latency p50 {q[49]:.1f} ms, p99 {q[98]:.1f} ms "
          f"(min {min(ms):.1f}, mean {statistics.fmean(ms):.1f}, max {max(ms):.1f})")
    assert len(ms) == TRANSITIONS
