"""The hub's MQTT transport against a real Mosquitto: frames and status in,
garbage and wrong-topic frames counted, QoS 1 frames acked only once the
core says they are stored (un-acked ones come back after a reconnect), the
broker's restart survived, commands out un-retained."""

import json
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from support.frames import Frames
from support.rigs import wait_for

from becomingone import config
from becomingone.nodes.registry import Registry
from becomingone.transports import TransportError, make
from kairos import wire

# An MQTT node's frames: node a, boot 5, tick = seq, n = seq * 10, one short row.
F = Frames(node="a", boot=5, tick=1, samples=10,
           report=dict(ch=[[1, 2, 3, 4, 5, 6, 0]], coh=[[1, 2, 3, 4]]))
frame, report = F.frame, F.report
HELLO = frame("hello", board="sim", fw="0.1", period=10, every=10, weight=1, caps=["mqtt"],
              ch=[{"name": "w", "lags": [2], "s": 6, "s0": 2, "ic": 100}])


class Client:
    """A plain paho client: the node side (publisher) or a cmd watcher."""

    def __init__(self, broker, client_id, subscribe=None):
        self.got = []
        self.subscribed = threading.Event()
        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id)
        c.on_message = lambda c, u, m: self.got.append((m.topic, m.payload, m.qos, m.retain))
        c.on_subscribe = lambda *a: self.subscribed.set()
        c.connect(broker.host, broker.port, keepalive=5)
        c.loop_start()
        if subscribe:
            c.subscribe(subscribe, qos=1)
            assert self.subscribed.wait(5)
        self.c = c

    def pub(self, topic, payload, retain=False, qos=1):
        if isinstance(payload, dict):
            payload = wire.encode_json(payload)
        info = self.c.publish(topic, payload, qos=qos, retain=retain)
        info.wait_for_publish(5)
        assert info.is_published()

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


class Sink:
    """The core's stand-in: acks what `keep` says is stored."""

    def __init__(self, keep=lambda msg: True):
        self.got = []
        self.keep = keep
        self.lock = threading.Lock()

    def __call__(self, msg, source, t_rx, ack):
        with self.lock:
            self.got.append((msg, source, ack is not None))
        if ack and self.keep(msg):
            ack()

    def msgs(self, t=None):
        with self.lock:
            return [m for m, _, _ in self.got if t is None or m["t"] == t]


def hub(broker, sink, client_id="hub-test", **cfg):
    logs = []
    t = make("mqtt", config.section("mqtt", host=broker.host, port=broker.port,
                                    client_id=client_id, keepalive=5, **cfg), sink, logs.append)
    t.logs = logs
    t.start()
    assert t.ready.wait(10), logs
    return t


def test_frames_status_garbage_and_wrong_topics(mosquitto):
    sink, reg = Sink(), Registry()
    t = hub(mosquitto, sink)
    t.on_reject = reg.reject
    node = Client(mosquitto, "node-a")
    try:
        node.pub("becomingone/a/status", b"online", retain=True)
        node.pub("becomingone/a/hello", HELLO, retain=True)
        node.pub("becomingone/a/report", report(1))
        node.pub("becomingone/a/event", frame("event", seq=2, i=0, on=1, c=20000, n=20))
        node.pub("becomingone/a/report", b"\x00\xffnot json")  # garbage
        node.pub("becomingone/a/report", b'{"v":1,"t":"report"}')  # malformed
        node.pub("becomingone/a/report", report(3, node="b"))  # b's frame on a's topic
        node.pub("becomingone/a/event", report(4))  # a report on the event topic
        node.pub("becomingone/a/pong", frame("pong", seq=5, id=1, t0=1, t1=2, t2=3))
        node.pub("becomingone/a/status", b"offline", retain=True)  # the last will
        assert wait_for(lambda: len(sink.msgs()) == 6)
        assert sink.msgs() == [
            {"t": "status", "node": "a", "online": True}, HELLO, report(1),
            frame("event", seq=2, i=0, on=1, c=20000, n=20),
            frame("pong", seq=5, id=1, t0=1, t1=2, t2=3),
            {"t": "status", "node": "a", "online": False}]
        # Stored frames come with an ack; the status (a retained state) doesn't.
        assert [a for _, _, a in sink.got] == [False, True, True, True, True, False]
        assert {s for _, s, _ in sink.got} == {"mqtt"}
        assert t.status()["counts"] == {"malformed": 2, "topic": 2}
        assert reg.rejects == {"mqtt": {"malformed": 2, "topic": 2}}
        assert t.nodes() == {"a"}
    finally:
        node.close()
        t.stop()
    assert not t.status()["connected"]


def test_send_reaches_the_cmd_topic_unretained(mosquitto):
    sink = Sink()
    t = hub(mosquitto, sink)
    node = Client(mosquitto, "node-a", subscribe="becomingone/a/cmd")
    try:
        with pytest.raises(TransportError):
            t.send(frame("cmd", id=1, op="out", args={}))  # not heard yet
        node.pub("becomingone/a/report", report(1))
        assert wait_for(lambda: t.nodes() == {"a"})
        cmd = frame("cmd", seq=9, id=3, op="out", args={"name": "led", "on": 1})
        t.send(cmd)
        assert wait_for(lambda: node.got)
        topic, payload, qos, retain = node.got[0]
        assert topic == "becomingone/a/cmd" and qos == 1 and not retain
        assert wire.decode_json(payload, {}) == cmd
        late = Client(mosquitto, "late", subscribe="becomingone/+/cmd")
        time.sleep(0.3)
        assert late.got == []  # nothing retained on the cmd topic
        late.close()
        t.publish("becomingone/hub/out", json.dumps({"x": 1}).encode(), qos=1, retain=True)
        late = Client(mosquitto, "late2", subscribe="becomingone/hub/out")
        assert wait_for(lambda: late.got, 5) and late.got[0][3]  # the adapters' publish
        late.close()
    finally:
        node.close()
        t.stop()


def test_unacked_frames_are_redelivered_after_a_reconnect(mosquitto):
    """The durability property: a hub that dies before storing a frame gets
    it again from its persistent session; a stored (acked) one never."""
    node = Client(mosquitto, "node-a")
    first = Sink(keep=lambda m: m["seq"] < 3)  # seqs 3..5 "not stored yet"
    t = hub(mosquitto, first, client_id="hub-dur")
    try:
        for s in range(6):
            node.pub("becomingone/a/report", report(s))
        assert wait_for(lambda: len(first.msgs()) == 6)
    finally:
        t.stop()  # the hub goes away holding 3 un-acked frames
    node.pub("becomingone/a/report", report(6))  # queued in the session meanwhile
    second, reg = Sink(), Registry()
    t = hub(mosquitto, second, client_id="hub-dur")
    try:
        assert wait_for(lambda: len(second.msgs()) >= 4)
        time.sleep(0.3)
        assert sorted(m["seq"] for m in second.msgs()) == [3, 4, 5, 6]
        assert t.logs[-1].endswith("(resumed session)")
        for m in first.msgs() + second.msgs():
            reg.accept(m, "mqtt", 0.0)
        assert reg.nodes["a"].duplicates == 3 and reg.nodes["a"].gaps == 0
    finally:
        t.stop()
    third = Sink()
    t = hub(mosquitto, third, client_id="hub-dur")
    try:
        time.sleep(0.5)
        assert third.msgs() == []  # everything acked: nothing comes back
    finally:
        t.stop()
        node.close()


def test_broker_restart_reconnects_by_itself(mosquitto):
    sink = Sink()
    t = hub(mosquitto, sink)
    try:
        node = Client(mosquitto, "node-a")
        node.pub("becomingone/a/report", report(1))
        assert wait_for(lambda: len(sink.msgs()) == 1)
        node.close()
        mosquitto.restart()
        assert wait_for(lambda: t.ready.is_set() and t.status()["reconnects"] == 1, 15), t.logs
        node = Client(mosquitto, "node-a")
        node.pub("becomingone/a/report", report(2))
        assert wait_for(lambda: len(sink.msgs()) == 2)
        assert sink.msgs()[-1] == report(2)
        node.close()
        assert sum("disconnected" in line for line in t.logs) == 1
    finally:
        t.stop()


def test_the_reconnect_waits_backoff_min(mosquitto):
    """[mqtt] backoff_min is what paho waits before its first reconnect: with
    2 s, the hub is not back before 2 s have passed since the broker went
    (with the default 0.2 s it was back in about 0.3 s here)."""
    t = hub(mosquitto, Sink(), backoff_min=2.0, backoff_max=2.0)
    try:
        gone = time.monotonic()  # (the broker closes the connection after this)
        mosquitto.restart()
        assert wait_for(lambda: t.status()["reconnects"] == 1, 15), t.logs
        assert time.monotonic() - gone >= 1.9
    finally:
        t.stop()


def test_routed_topics_share_the_connection_and_are_acked(mosquitto):
    """route(): another topic on the transport's own connection (what the
    hub-side inputs use), subscribed on connect, each message acked."""
    got = []
    t = make("mqtt", config.section("mqtt", host=mosquitto.host, port=mosquitto.port,
                                    client_id="hub-route", keepalive=5), Sink(), print)
    t.route("house/door/level", lambda topic, payload: got.append((topic, payload)))
    t.start()
    node = Client(mosquitto, "door")
    try:
        assert t.ready.wait(10)
        assert wait_for(lambda: "\thouse/door/level (QoS 1)" in mosquitto.logs())
        node.pub("house/door/level", b"12.5")
        assert wait_for(lambda: got == [("house/door/level", b"12.5")])
        t.route("house/window", lambda topic, payload: got.append((topic, payload)))  # live
        assert wait_for(lambda: "\thouse/window (QoS 1)" in mosquitto.logs())
        node.pub("house/window", b"1")
        assert wait_for(lambda: len(got) == 2)
    finally:
        t.stop()
    t = make("mqtt", config.section("mqtt", host=mosquitto.host, port=mosquitto.port,
                                    client_id="hub-route", keepalive=5), Sink(), print)
    t.route("house/door/level", lambda topic, payload: got.append((topic, payload)))
    t.start()
    try:
        assert t.ready.wait(10)
        time.sleep(0.5)
        assert len(got) == 2  # acked: the resumed session redelivers nothing
    finally:
        t.stop()
        node.close()
