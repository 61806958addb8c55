"""The BLE transport without a radio: its receive path driven with real
notification bytes (wirebin fragments), its no-adapter path for real, and
the factory's handling of a missing library for every transport."""

import sys
import time

import pytest
from support.frames import Frames

from becomingone import config
from becomingone.transports import Disabled, TransportError, make
from becomingone.transports.base import Transport
from kairos import wirebin

# A BLE node's frames: node b1, boot 9, tick = seq, three channels of four lags.
F = Frames(node="b1", boot=9, tick=1, samples=25,
           report=dict(miss=1, ch=[[-5, 12345, 3, 9000, -77, 88, 1]] * 3,
                       coh=[[100, 200, 300, 9000]] * 3))
frame, report = F.frame, F.report
HELLO = frame("hello", board="esp32c3", fw="0.1", period=20, every=25, weight=1,
              caps=["ble", "led"],
              ch=[{"name": n, "lags": [2, 4, 8, 16], "s": 6, "s0": 2, "ic": 16384}
                  for n in ("mic", "temp", "adc")])


class Sink:
    def __init__(self):
        self.got = []

    def __call__(self, msg, source, t_rx, ack):
        assert ack is None  # nothing to ack on BLE
        self.got.append((msg, source))


def notes(msg, mtu=20, counter=None):
    return wirebin.fragments(wirebin.encode_bin(msg), mtu, counter)


@pytest.fixture
def ble():
    sink, logs = Sink(), []
    t = make("ble", config.section("ble"), sink, logs.append)
    assert t.kind == "ble"
    return t, sink, logs


def test_notifications_are_reassembled_and_delivered(ble):
    t, sink, logs = ble
    frags = notes(HELLO)
    assert len(frags) > 5  # a hello spans many 20-byte notifications
    for f in frags:
        t.on_notify("AA:BB:CC:DD:EE:01", f)
    for f in notes(report(1), mtu=185):
        t.on_notify("AA:BB:CC:DD:EE:01", f)
    assert sink.got == [(HELLO, "ble:AA:BB:CC:DD:EE:01"), (report(1), "ble:AA:BB:CC:DD:EE:01")]
    assert t.nodes() == {"b1"} and t.status()["counts"] == {}


def test_two_devices_interleaved_and_bad_fragments_counted(ble):
    t, sink, logs = ble
    a, b = notes(report(1, "na"), counter=7), notes(report(1, "nb"), counter=7)
    for fa, fb in zip(a, b, strict=False):
        t.on_notify("AA:01", fa)
        t.on_notify("AA:02", fb)
    assert sorted(m["node"] for m, _ in sink.got) == ["na", "nb"]  # one Reassembler each
    lost = notes(report(2, "na"))
    for f in lost[:1] + lost[2:]:  # a lost notification
        t.on_notify("AA:01", f)
    bad = bytearray(b"".join(f[2:] for f in notes(report(3, "na"))))
    bad[5] ^= 0x40  # a corrupt frame: CRC reject
    for f in wirebin.fragments(bytes(bad), 20):
        t.on_notify("AA:01", f)
    t.on_notify("AA:01", b"\x01")  # too short to be a fragment
    for f in notes(report(4, "na")):
        t.on_notify("AA:01", f)
    assert [m["seq"] for m, s in sink.got if s == "ble:AA:01"] == [1, 4]
    counts = t.status()["counts"]
    assert counts["crc"] == 1 and counts["fragment"] >= 2


def test_send_needs_a_connected_node(ble):
    t, sink, logs = ble
    with pytest.raises(TransportError):
        t.send(frame("ping", node="b1", id=1, t0=0))  # never heard
    for f in notes(report(1)):
        t.on_notify("AA:01", f)
    with pytest.raises(TransportError, match="not connected"):
        t.send(frame("ping", node="b1", id=1, t0=0))  # heard, but no connection here


def test_no_adapter_logs_once_and_stops(ble):
    """No BLE adapter / no D-Bus here: scanning fails, one line, no thread left."""
    t, sink, logs = ble
    t.cfg["scan"] = t.scan_s = 1.0
    t.start()
    end = time.monotonic() + 20
    while any(th.is_alive() for th in t._threads) and time.monotonic() < end:
        time.sleep(0.05)
    if t.phase == "scanning":
        pytest.skip("a BLE adapter is present here")
    t.stop()
    assert t.phase.startswith("stopped: cannot scan")
    assert t.status()["phase"] == t.phase
    assert len(logs) == 1 and "BLE transport off" in logs[0]
    assert not t.status()["connected"]


@pytest.mark.parametrize("kind,lib,mod", [
    ("serial", "serial", "becomingone.transports.serial"),
    ("mqtt", "paho.mqtt.client", "becomingone.transports.mqtt"),
    ("ble", "bleak", "becomingone.transports.ble"),
])
def test_a_missing_library_is_reported_once_and_skipped(monkeypatch, kind, lib, mod):
    monkeypatch.setitem(sys.modules, lib, None)  # import -> ImportError
    monkeypatch.delitem(sys.modules, mod, raising=False)
    logs = []
    t = make(kind, {}, Sink(), logs.append)
    assert isinstance(t, Disabled) and isinstance(t, Transport) and t.kind == kind
    t.start()
    t.stop()
    assert len(logs) == 1 and "not installed" in logs[0]
    assert t.status()["disabled"] and not t.status()["connected"]
    with pytest.raises(TransportError):
        t.send(frame("ping", id=1, t0=0))


def test_unknown_kind():
    with pytest.raises(TransportError):
        make("carrier-pigeon", {}, Sink(), print)
