"""One node id rule on every entry, no node without a valid frame, a bound
on nodes awaiting their hello, and a log that repeated failures cannot
flood (issue 11 item 9).

Before: 5,000 publishes on becomingone/<odd>/status made 4,004 phantom nodes
(SQL-looking names, 5,200-character names), never removed, and their failing
pings wrote 16 MB of log in 70 s."""
import io

import paho.mqtt.client as paho
import pytest
from support.frames import Frames
from support.hub import make
from support.rigs import wait_for

from becomingone import config, run
from becomingone.boards import BoardError, validate_node_config
from becomingone.logs import Limiter, Log
from becomingone.nodes.registry import MAX_UNANNOUNCED, UNANNOUNCED, UNKNOWN, Registry
from becomingone.transports.mqtt import TOPIC
from kairos import wire, wirebin

F = Frames()
ODD = ["x'; DROP TABLE nodes; --", "n" * 5200, "k\u00fcche", "a b", "", "x" * 33,
       "1 OR 1=1", "<script>", "../../etc"]


def odd_names(n):
    """n names that are not node ids, in the shapes the attack used."""
    return [f"{ODD[i % len(ODD)]}{i}" if ODD[i % len(ODD)] else f" {i}" for i in range(n)]


def test_an_odd_status_flood_makes_no_node_and_a_bounded_log(tmp_path, mosquitto):
    # 5,000 publishes on becomingone/<odd>/status (and 5,000 on valid names
    # the hub never heard a frame from), pings every 0.2 s for 4 s: no node,
    # every publish counted, a log of a few lines.
    cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
ping_interval = 0.2
[mqtt]
enabled = true
host = "{mosquitto.host}"
port = {mosquitto.port}
""")
    out = io.StringIO()
    hub = run.build(cfg, Log(stream=out))
    hub.start()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="flood")
    try:
        mq = next(t for t in hub.transports if t.kind == "mqtt")
        assert mq.ready.wait(10)
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        names = odd_names(5000)
        for i, name in enumerate(names):
            c.publish(f"becomingone/{name}/status", b"online" if i % 2 else b"offline", 1)
        for i in range(5000):
            c.publish(f"becomingone/ghost-{i}/status", b"online", 1, retain=i < 100)
        c.publish("becomingone/ghost-x/status", b"online", 1).wait_for_publish(30)

        def counted():
            r = hub.registry.rejects.get("mqtt", {})
            return r.get(TOPIC, 0) + r.get(UNKNOWN, 0)

        # (A name with a "/" makes a topic the hub's becomingone/+/status does
        # not match: the broker never hands it over.)
        heard = sum("/" not in n for n in names)
        assert wait_for(lambda: counted() == heard + 5001, 60), hub.registry.rejects
        hub_time = hub.counters["ticks"]
        assert wait_for(lambda: hub.counters["ticks"] >= hub_time + 40, 30)  # 4 s of ticks
        assert hub.registry.count() == 0 and hub.registry.unannounced == set()
        assert hub.registry.rejects["mqtt"] == {TOPIC: heard, UNKNOWN: 5001}
        log = out.getvalue()
        print(f"\n10,001 odd or unknown statuses ({heard + 5001} reached the hub): "
              f"{hub.registry.count()} nodes, "
              f"{len(log.encode())} bytes of log in {len(log.splitlines())} lines")
        assert len(log.encode()) < 20_000, log[-2000:]
        assert not any(n[:20] in log for n in names if len(n) > 20)  # no odd name echoed
        # A real node still gets in: its hello, then its reports.
        for f in (F.hello(0, node="real-1"), F.report(1, node="real-1")):
            c.publish(f"becomingone/real-1/{f['t']}", wire.encode_json(f), 1).wait_for_publish(5)
        assert wait_for(lambda: hub.registry.known("real-1"), 10)
        assert wait_for(lambda: len(hub.store.reports("real-1", 0)) == 1, 10)
    finally:
        c.loop_stop()
        c.disconnect()
        hub.stop()


def test_frames_on_odd_topics_are_refused_before_the_registry(tmp_path, mosquitto):
    # The same odd names on the frame topics: refused by the topic check
    # (the payload's node must be the topic's, and is itself checked).
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n[mqtt]\nenabled = true\n'
                       f'host = "{mosquitto.host}"\nport = {mosquitto.port}\n')
    hub = run.build(cfg, Log(quiet=("transport",)))
    hub.start()
    c = paho.Client(paho.CallbackAPIVersion.VERSION2, client_id="odd-frames")
    try:
        mq = next(t for t in hub.transports if t.kind == "mqtt")
        assert mq.ready.wait(10)
        c.connect(mosquitto.host, mosquitto.port)
        c.loop_start()
        names = [n for n in odd_names(200) if "/" not in n]  # (see above)
        for name in names:
            frame = wire.encode_json(F.report(1)).replace(b'"n1"', b'"%s"' % name.encode())
            c.publish(f"becomingone/{name}/report", frame, 1)
        c.publish("becomingone/zz/hello", b"{}", 1).wait_for_publish(10)
        assert wait_for(lambda: sum(mq.counts.values()) >= len(names) + 1, 20), mq.counts
        assert mq.counts == {TOPIC: len(names), wire.MALFORMED: 1}
        assert hub.registry.count() == 0
    finally:
        c.loop_stop()
        c.disconnect()
        hub.stop()


@pytest.mark.parametrize("name", ODD + ["kitchen-1"])
def test_the_same_rule_at_every_entry(name):
    ok = wire.node_ok(name)
    assert ok is (name == "kitchen-1")
    rep = F.report(1, node=name)
    counts = {}
    # Serial lines and MQTT payloads (the JSON decoder), BLE (the binary one).
    line = wire.encode_line(F.report(1)).replace(b'"n1"', b'"%s"' % name.encode("utf-8"))
    from kairos.crc16 import crc16

    body = line[4:-6]
    line = b"@K1 " + body + b" %04X\n" % crc16(body)
    got = wire.LineDecoder().feed(line)
    assert (got == [rep]) is ok, (got, counts)
    frame = bytearray(wirebin.encode_bin(F.report(1)))
    enc = name.encode("utf-8")
    frame = bytes(frame[:2]) + bytes([len(enc) & 0xFF]) + enc + bytes(frame[5:-2])
    frame += crc16(frame).to_bytes(2, "little")
    assert (wirebin.decode_bin(frame, {}) == rep) is ok
    # The node configs: the hub's board checks and the firmware's own.
    from node.config import merge

    problems = []
    merge({"board": "sim", "period_ms": 20, "report_every": 50, "weight": 1,
           "transports": ["serial"], "sensors": [{"name": "w", "kind": "sim"}]},
          {"node": name}, problems)
    assert (problems == []) is ok
    if ok:
        validate_node_config({"node": name, "board": "sim"})
    else:
        with pytest.raises(BoardError, match="node"):
            validate_node_config({"node": name, "board": "sim"})


def test_a_status_makes_no_node_and_a_refused_frame_keeps_none():
    r = Registry()
    assert not r.accept({"t": "status", "node": "ghost", "online": True}, "mqtt", 1.0)
    assert not r.accept({"t": "status", "node": "ghost", "online": False}, "mqtt", 1.0)
    assert r.count() == 0 and r.rejects["mqtt"] == {UNKNOWN: 2}
    assert not r.accept(dict(F.report(1), node="a/b"), "mqtt", 1.0)  # invalid: no node
    assert r.count() == 0
    assert r.accept(F.hello(0), "mqtt", 2.0)  # a valid frame makes the node ...
    assert r.accept({"t": "status", "node": "n1", "online": False}, "mqtt", 3.0)  # ... then
    assert not r.nodes["n1"].online


def test_nodes_awaiting_their_hello_are_bounded():
    # 1,000 names, one valid report each, no hello: MAX_UNANNOUNCED of them
    # are taken (a node started before the hub says hello only on its next
    # connect), the rest held out, counted, and not created.
    r = Registry()
    taken = sum(r.accept(F.report(1, node=f"u{i}"), "mqtt", 1.0) for i in range(1000))
    assert taken == MAX_UNANNOUNCED == r.count() == len(r.unannounced)
    assert r.rejects["mqtt"][UNANNOUNCED] == 1000 - MAX_UNANNOUNCED
    assert not r.known("u999")
    # A hello always gets in, and an announced node frees a place.
    assert r.accept(F.hello(0, node="h1"), "mqtt", 2.0) and r.known("h1")
    assert not r.accept(F.report(1, node="late"), "mqtt", 2.0)
    assert r.accept(F.hello(5, node="u0"), "mqtt", 3.0)
    assert "u0" not in r.unannounced
    assert r.accept(F.report(1, node="late"), "mqtt", 3.0) and r.known("late")


def test_a_restored_store_skips_odd_names(tmp_path):
    r = Registry()
    bad = r.restore({"kitchen-1": {}, "x'; DROP": {}, "n" * 5200: {}, "a/b": {}, "k": {}},
                    lambda node: None)
    assert sorted(r.nodes) == ["k", "kitchen-1"]
    assert len(bad) == 1 and bad[0].startswith("3 saved names are not node ids")


def test_repeated_failures_are_logged_once_a_minute():
    out, clock = io.StringIO(), [0.0]
    log = Log(stream=out)
    log.limiter = Limiter(60.0, clock=lambda: clock[0])
    for i in range(10_000):
        log.limited("ping", "clock", f"ping n{i} failed: down")
    assert out.getvalue().count("\n") == 1 and log.counts["clock"] == 10_000
    clock[0] = 61.0
    log.limited("ping", "clock", "ping n1 failed: down")
    lines = out.getvalue().splitlines()
    assert len(lines) == 2 and lines[1].endswith("ping n1 failed: down (+9999 more like it "
                                                 f"since {lines[1].split('since ')[1][:8]})")
    log.limited("other", "clock", "another key: its own line")
    assert out.getvalue().count("\n") == 3


def test_pings_that_fail_for_many_nodes_write_a_bounded_log(tmp_path):
    # 500 nodes heard over MQTT with no MQTT transport running: every ping
    # fails.  Old: a line per node per ping (16 MB in 70 s at 4,004 nodes).
    hub = make(tmp_path)
    out = io.StringIO()
    hub.log.stream = out
    hub.log.quiet = set()
    try:
        hub.process([(F.hello(0, node=f"m{i}"), "mqtt", hub.clock(), None) for i in range(500)])
        for _ in range(20):
            hub.ping_all(hub.clock())
        lines = [ln for ln in out.getvalue().splitlines() if "ping" in ln]
        assert len(lines) == 1 and "which is not running" in lines[0]
        assert hub.log.counts["clock"] == 10_000
    finally:
        hub.store.close()


def test_a_flood_of_valid_made_up_names_stays_bounded(tmp_path, monkeypatch):
    # Valid names, one valid report each, through the whole core: 256 nodes
    # (awaiting their hello), the rest counted; a log of a few lines; and
    # what a transport remembers of them is bounded too.
    hub = make(tmp_path)
    out = io.StringIO()
    hub.log.stream, hub.log.quiet = out, set()
    try:
        hub.process([(F.report(1, node=f"fake-{i}"), "mqtt", hub.clock(), None)
                     for i in range(5000)])
        hub.tick(hub.clock())
        assert hub.registry.count() == MAX_UNANNOUNCED
        assert hub.registry.rejects["mqtt"] == {UNANNOUNCED: 5000 - MAX_UNANNOUNCED}
        assert len(out.getvalue().splitlines()) < 10, out.getvalue()[-2000:]
    finally:
        hub.store.close()
    from becomingone.transports import base

    monkeypatch.setattr(base, "MAX_ROUTES", 10)
    t = base.Transport({}, lambda *a: None)
    for i in range(1000):
        t._deliver(F.report(1, node=f"fake-{i}"), "mqtt", f"fake-{i}")
    t._deliver(F.report(2, node="fake-995"), "mqtt", "fake-995")  # heard again: newest
    assert t.nodes() == {f"fake-{i}" for i in range(990, 1000)}
    t._deliver(F.report(1, node="new"), "mqtt", "new")
    assert "fake-995" in t.nodes() and "fake-990" not in t.nodes()
