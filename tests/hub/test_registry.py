"""becomingone.nodes.registry: duplicates, gaps, reboots, replays, staleness, status."""

import json

import pytest
from support.frames import Frames

from becomingone.nodes.registry import Registry
from kairos import wire, wirebin
from kairos.crc16 import crc16

# A registry node's frames: boot 100, tick = seq, n = seq, reports without rows.
F = Frames(boot=100, tick=1, samples=1, report=dict(ch=[], coh=[]),
           hello=dict(board="esp32s3", fw="0.3", every=25,
                      ch=[{"name": "mic", "lags": [2, 4], "s": 6, "s0": 2, "ic": 16000}]))
hello, report = F.hello, F.report


def test_dedup_gaps_and_frames_by_type():
    r = Registry()
    assert r.accept(hello(0), "serial:/dev/ttyACM0", 10.0)
    assert r.accept(report(1), "serial:/dev/ttyACM0", 10.5)
    assert not r.accept(report(1), "mqtt", 10.6)  # the same frame by another path
    assert r.accept(report(4), "mqtt", 11.0)  # 2 and 3 missing
    assert r.accept(report(3), "mqtt", 11.1)  # late, inside the window: still new
    assert not r.accept(report(3), "mqtt", 11.2)
    n = r.nodes["n1"]
    assert n.frames == {"hello": 1, "report": 3}
    assert n.duplicates == 2 and n.rejects == {"duplicate": 2}
    # 3 came late and filled its gap: only 2 is still missing.
    assert n.gaps == 1 and n.late == 1 and n.replays == 0 and n.reboots == 0
    assert n.source == "mqtt" and n.last_seen == 11.1 and n.boot == 100
    assert n.hello == {"board": "esp32s3", "fw": "0.3", "period": 20, "every": 25, "weight": 2,
                       "caps": ["led"], "ch": hello()["ch"]}
    assert n.report_period == pytest.approx(0.5)


def test_reboot_and_replay_of_an_old_boot():
    r = Registry()
    for s in range(5):
        assert r.accept(report(s, boot=100), "mqtt", float(s))
    assert r.accept(hello(0, boot=200), "mqtt", 10.0)  # a new boot id, seq from 0
    assert r.accept(report(1, boot=200), "mqtt", 10.1)
    n = r.nodes["n1"]
    assert n.reboots == 1 and n.boot == 200 and n.gaps == 0
    # A spool flushed late from the previous boot: a replay, refused.
    assert not r.accept(report(5, boot=100), "mqtt", 10.2)
    assert not r.accept(report(2, boot=100), "mqtt", 10.3)
    assert n.replays == 2 and n.rejects == {"replay": 2} and n.reboots == 1 and n.boot == 200
    assert r.accept(report(2, boot=200), "mqtt", 10.4)
    assert n.frames == {"report": 7, "hello": 1}
    # Another node's seqs are its own.
    assert r.accept(report(1, node="n2"), "mqtt", 10.5)
    assert r.nodes["n2"].reboots == 0 and r.nodes["n2"].gaps == 0


def test_drops_are_the_nodes_own_count():
    r = Registry()
    r.accept(report(1, drop=0), "mqtt", 1.0)
    r.accept(report(2, drop=7), "mqtt", 2.0)
    assert r.nodes["n1"].drops == 7


def test_stale_after_three_report_periods():
    r = Registry()
    r.accept(hello(0, period=100, every=10), "mqtt", 100.0)  # a report each 1.0 s
    r.accept(report(1, node="n2"), "mqtt", 100.0)  # no hello: 1.0 s by default
    assert r.nodes["n1"].report_period == pytest.approx(1.0)
    assert r.live(102.9) == ["n1", "n2"] and r.stale(102.9) == []
    assert r.stale(103.1) == ["n1", "n2"] and r.live(103.1) == []
    r.accept(hello(0, period=1000, every=2, node="n2"), "mqtt", 103.0)  # 2 s per report
    assert r.stale(108.5) == ["n1"] and r.live(108.5) == ["n2"]
    assert r.stale(109.1) == ["n1", "n2"]
    r.accept(report(1), "mqtt", 109.0)
    assert r.live(109.1) == ["n1"]
    wide = Registry(stale_periods=10)
    wide.accept(report(1), "mqtt", 0.0)
    assert wide.live(9.9) == ["n1"] and wide.stale(10.1) == ["n1"]


def test_status_offline_at_once_and_back_online():
    r = Registry()
    r.accept(hello(0, period=100, every=10), "mqtt", 50.0)
    assert r.live(50.1) == ["n1"]
    assert r.accept({"t": "status", "node": "n1", "online": False}, "mqtt", 50.2)
    assert r.stale(50.2) == ["n1"] and r.live(50.2) == []  # at once, not 3 periods later
    assert not r.accept({"t": "status", "node": "n1", "online": False}, "mqtt", 50.3)
    assert r.accept(report(1), "mqtt", 60.0)  # it speaks again: online
    assert r.nodes["n1"].online and r.live(60.0) == ["n1"]
    # A status for a node never heard makes no node (anyone may publish one,
    # under any name): counted, and the node comes with its first frame.
    assert not r.accept({"t": "status", "node": "n9", "online": True}, "mqtt", 70.0)
    assert "n9" not in r.nodes and r.rejects["mqtt"] == {"unknown": 1}
    assert r.accept(report(1, node="n9"), "mqtt", 70.1)
    assert r.live(70.5) == ["n9"]  # n1 has been silent for 10 report periods
    assert r.nodes["n9"].hello is None and r.nodes["n9"].report_period == 1.0


def test_malformed_hello_is_rejected_by_the_decoders_and_counted():
    r = Registry()
    bad = hello()
    bad["period"] = 0  # out of range (1..60000)
    # Serial: a valid CRC over a malformed message.
    j = json.dumps(dict(bad, v=1), separators=(",", ":")).encode()
    line = b"@K1 " + j + (f" {crc16(j):04X}\n").encode()
    dec = wire.LineDecoder()
    assert dec.feed(line) == [] and dec.counts == {"malformed": 1}
    # MQTT and BLE decoders refuse it too.
    counts = {}
    assert wire.decode_json(j, counts) is None and counts == {"malformed": 1}
    with pytest.raises(ValueError):
        wirebin.encode_bin(bad)  # nobody can even encode it
    # The transports report such rejects; the registry counts them by source
    # and, when the node is known, on the node.
    r.accept(report(1), "mqtt", 1.0)
    r.reject("serial:/dev/ttyACM0", "malformed")
    r.reject("mqtt", "malformed", "n1")
    r.reject("mqtt", "topic", "ghost")  # unknown nodes are not created
    assert r.rejects == {"serial:/dev/ttyACM0": {"malformed": 1},
                         "mqtt": {"malformed": 1, "topic": 1}}
    assert r.nodes["n1"].rejects == {"malformed": 1} and "ghost" not in r.nodes
    # And accept() refuses an invalid dict that got past a decoder anyway.
    assert not r.accept(bad, "mqtt", 2.0)
    assert r.nodes["n1"].rejects == {"malformed": 2} and r.nodes["n1"].hello is None


def test_snapshot_is_json_ready():
    r = Registry()
    r.accept(hello(0), "ble:AA:BB", 5.0)
    r.accept(report(2), "ble:AA:BB", 5.5)
    r.reject("ble:AA:BB", "fragment", "n1")
    snap = r.snapshot(6.0)
    assert json.loads(json.dumps(snap)) == snap
    n = snap["nodes"]["n1"]
    assert n["age"] == pytest.approx(0.5) and n["gaps"] == 1 and not n["stale"]
    assert n["rejects"] == {"fragment": 1} and n["hello"]["board"] == "esp32s3"
    assert snap["live"] == ["n1"] and snap["stale"] == []
    assert snap["rejects"] == {"ble:AA:BB": {"fragment": 1}}
