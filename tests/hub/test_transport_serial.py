"""The hub's serial transport on a real pseudo-terminal pair made by socat
(a fixed link name, so the path survives unplug = kill socat and replug =
start it again), and against the real node firmware."""

import threading
import time

import pytest
import serial
from support.frames import Frames
from support.nodeharness import sim_board, stage, start_cpython
from support.rigs import Cable, needs_socat, wait_for

from becomingone import config
from becomingone.nodes.registry import Registry
from becomingone.transports import TransportError, make
from kairos import wire

pytestmark = needs_socat


# A serial node's frames: tick = seq * 10, a report every 25 samples, two-lag rows.
F = Frames(tick=10, samples=25, report=dict(ch=[[100, 5000, 2, 12000, 300, -300, 0]],
                                            coh=[[0, 6000, 12000, 3000]]))
frame, report = F.frame, F.report
HELLO = frame("hello", board="sim", fw="0.1", period=20, every=25, weight=1, caps=["serial"],
              ch=[{"name": "wave", "lags": [2, 4], "s": 6, "s0": 2, "ic": 16384}])


class Collect:
    """A sink: keeps what arrives, acks at once."""

    def __init__(self):
        self.got = []
        self.lock = threading.Lock()

    def __call__(self, msg, source, t_rx, ack):
        with self.lock:
            self.got.append((msg, source, t_rx))
        if ack:
            ack()

    def msgs(self, t=None):
        with self.lock:
            return [m for m, _, _ in self.got if t is None or m["t"] == t]


@pytest.fixture
def rig(tmp_path):
    cable = Cable(tmp_path)
    cable.plug()
    sink, reg, logs = Collect(), Registry(), []
    t = make("serial", config.section("serial", ports=[cable.host]), sink, logs.append, reg.reject)
    t.start()
    try:
        # pyserial flushes the input when it opens a port: bytes the node end
        # writes before the hub has the port open are gone (a loaded machine
        # showed it).  Tests write only once the port is open.
        assert wait_for(lambda: t.status()["connected"], 10), logs
        yield cable, t, sink, reg, logs
    finally:
        t.stop()
        cable.close()
        assert not [th for th in t._threads if th.is_alive()]


def open_node_end(cable):
    return serial.Serial(cable.node, 115200, timeout=0.05)


def read_frames(ser, pred, timeout=5.0):
    dec, out = wire.LineDecoder(), []
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        out += dec.feed(ser.read(4096))
        if any(pred(m) for m in out):
            return out
    raise AssertionError(f"no such frame; got {out!r}")


def test_frames_arrive_and_noise_is_skipped_and_counted(rig):
    cable, t, sink, reg, logs = rig
    with open_node_end(cable) as ser:
        ser.write(b"MicroPython v1.22.0 on 2024-01-01; ESP32S3 module\r\n>>> \r\n")
        ser.write(wire.encode_line(HELLO))
        ser.write(b"Traceback (most recent call last):\r\n  File \"main.py\", line 9, in <module>"
                  b"\r\nOSError: [Errno 5] EIO\r\n")
        ser.write(wire.encode_line(report(1))[:25])  # a frame split across writes
        time.sleep(0.05)
        ser.write(wire.encode_line(report(1))[25:])
        bad = bytearray(wire.encode_line(report(2)))
        bad[20] ^= 1  # one flipped bit: a CRC reject
        ser.write(bytes(bad) + b"\x00\xff garbage \x1b[0m\r\n")
        ser.write(wire.encode_line(report(3)))
        assert wait_for(lambda: len(sink.msgs("report")) == 2)
    assert sink.msgs() == [HELLO, report(1), report(3)]
    assert {s for _, s, _ in sink.got} == {"serial:" + cable.host}
    assert all(abs(tr - time.time()) < 30 for _, _, tr in sink.got)
    st = t.status()
    assert st["counts"] == {"noise": 6, "crc": 1}
    assert reg.rejects["serial:" + cable.host] == {"noise": 6, "crc": 1}
    assert t.nodes() == {"n1"} and st["nodes"] == ["n1"]
    assert st["ports"][cable.host]["open"] and st["reconnects"] == 0


def test_unplug_replug_and_send(rig):
    cable, t, sink, reg, logs = rig
    with open_node_end(cable) as ser:
        ser.write(wire.encode_line(report(1)))
        assert wait_for(lambda: len(sink.msgs()) == 1)
    cable.unplug()
    assert wait_for(lambda: not t.status()["connected"], 5)
    with pytest.raises(TransportError):  # heard, but its port is gone now
        t.send(frame("ping", seq=1, id=1, t0=5))
    time.sleep(0.5)  # a few failed reopens
    cable.plug()
    assert wait_for(lambda: t.status()["connected"], 10)
    assert t.status()["reconnects"] == 1
    with open_node_end(cable) as ser:
        ser.write(wire.encode_line(report(2)))
        assert wait_for(lambda: len(sink.msgs()) == 2)
        assert sink.msgs()[-1] == report(2)
        cmd = frame("cmd", seq=2, id=9, op="out", args={"name": "led", "on": 1})
        t.send(cmd)
        got = read_frames(ser, lambda m: m["t"] == "cmd")
        assert got == [cmd]
    with pytest.raises(TransportError):
        t.send(frame("ping", node="nobody", id=1, t0=5))
    # One "unavailable" line for the whole outage, not one per retry.
    assert sum("unavailable" in line for line in logs) == 1


def test_real_firmware_node_over_serial(rig, tmp_path):
    cable, t, sink, reg, logs = rig

    def sink2(msg, source, t_rx, ack):
        reg.accept(msg, source, t_rx)
        sink(msg, source, t_rx, ack)

    t.sink = sink2
    fs = stage(tmp_path / "fs", sim_board(period_ms=10, report_every=10),
               {"node": "ser-1", "seed": 3, "transport": "serial", "realtime": True,
                "serial": {"port": cable.node}})
    log = tmp_path / "node.out"
    with open(log, "wb") as out:
        proc = start_cpython(fs, 3000, stdout=out, stderr=out)
    try:
        assert wait_for(lambda: sink.msgs("hello") and len(sink.msgs("report")) >= 3, 20), \
            log.read_text()
        hello = sink.msgs("hello")[0]
        assert hello["node"] == "ser-1" and len(hello["ch"]) == 3
        t.send({"t": "ping", "node": "ser-1", "boot": 1, "seq": 1, "tick": 0, "id": 42,
                "t0": 123456})
        assert wait_for(lambda: [p for p in sink.msgs("pong") if p["id"] == 42], 10)
        info = reg.nodes["ser-1"]
        assert info.hello["period"] == 10 and info.report_period == pytest.approx(0.1)
        assert info.duplicates == 0 and info.gaps == 0 and info.source == "serial:" + cable.host
        assert reg.live(time.time()) == ["ser-1"]
        assert t.status()["counts"] == {}
    finally:
        proc.kill()
        proc.wait(5)


def test_auto_without_boards_says_so_once_and_keeps_looking(monkeypatch):
    from becomingone.transports import serial as hub_serial

    monkeypatch.setattr(hub_serial, "DISCOVER_EVERY", 0.05)
    logs = []
    t = make("serial", config.section("serial", ports="auto"), Collect(), logs.append)
    t.start()
    try:
        time.sleep(0.5)  # ~10 scans
        st = t.status()
        assert st["auto"] and not st["connected"]
        if hub_serial.discover():
            pytest.skip("a USB board is plugged in here")
        assert st["ports"] == {}
        assert logs == ["serial: no USB serial ports of known boards yet"]
    finally:
        t.stop()
    assert not [th for th in t._threads if th.is_alive()]
