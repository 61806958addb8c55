"""A CPython node on a real pseudo-terminal, driven like the hub drives it:
commands in, acks / pongs / hellos out, garbage survived, missed deadlines
and tick wrap-around counted right."""
import io
import os
import select
import threading
import time

import pytest
from support.nodeharness import sim_board

from kairos import wire
from node import config  # noqa: E402
from node.app import Node  # noqa: E402
from node.hal_sim import SimHal  # noqa: E402
from node.ticks import MASK  # noqa: E402


def make_node(**node_cfg):
    cfg = config.merge(sim_board(), dict({"node": "pty-1", "seed": 5}, **node_cfg))
    return Node(cfg, SimHal(cfg), say=lambda *_: None)


class PtyHub:
    """The hub's end of the node's serial port: write commands, read frames."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)
        self.dec = wire.LineDecoder()
        self.frames = []
        self.cid = 0

    def send(self, t, **fields):
        self.cid += 1
        msg = dict({"t": t, "node": "pty-1", "boot": 7, "seq": self.cid, "tick": 0}, **fields)
        os.write(self.master, wire.encode_line(msg))

    def raw(self, data):
        os.write(self.master, data)

    def wait_for(self, pred, timeout=5.0):
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for f in self.frames:
                if pred(f):
                    return f
            r, _, _ = select.select([self.master], [], [], 0.05)
            if r:
                self.frames += self.dec.feed(os.read(self.master, 4096))
        raise AssertionError("no such frame; got %r" % [f["t"] for f in self.frames])

    def close(self):
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def pty_node():
    hub = PtyHub()
    node = make_node(realtime=True, period_ms=10, serial={"port": hub.path})
    t = threading.Thread(target=node.run, args=(600,), daemon=True)
    t.start()
    yield hub, node
    t.join(timeout=15)
    hub.close()


def test_commands_over_a_pty(pty_node):
    hub, node = pty_node
    hello = hub.wait_for(lambda f: f["t"] == "hello")
    assert hello["caps"] == ["led", "neopixel", "serial"]
    hub.raw(b"REPL noise\r\n@K1 {\"t\": garbage}\r\n")  # must be survived
    hub.send("ping", id=41, t0=123456)
    pong = hub.wait_for(lambda f: f["t"] == "pong")
    assert pong["id"] == 41 and pong["t0"] == 123456
    assert 0 <= (pong["t2"] - pong["t1"]) & MASK < 1000
    hub.send("cmd", id=1, op="out", args={"name": "led", "on": 1})
    hub.send("cmd", id=2, op="out", args={"name": "pixel", "rgb": [255, 0, 64]})
    hub.send("cmd", id=3, op="out", args={"name": "siren"})
    hub.send("cmd", id=4, op="dance", args={})
    hub.send("cmd", id=5, op="set", args={"ch": 0, "s": 99})
    hub.send("cmd", id=6, op="set", args={"ch": 1, "lags": [3, 6, 12], "ic": 20000})
    acks = {i: hub.wait_for(lambda f, i=i: f["t"] == "ack" and f["id"] == i) for i in range(1, 7)}
    assert acks[1]["ok"] == 1 and acks[2]["ok"] == 1
    assert acks[3]["ok"] == 0 and "siren" in acks[3]["err"]
    assert acks[4]["ok"] == 0 and "unknown op" in acks[4]["err"]
    assert acks[5]["ok"] == 0 and acks[5]["err"].startswith("s must be")
    assert acks[6]["ok"] == 1
    rehello = hub.wait_for(lambda f: f["t"] == "hello" and f["seq"] > hello["seq"])
    assert rehello["ch"][1]["lags"] == [3, 6, 12] and rehello["ch"][1]["ic"] == 20000
    assert node.hal.outs[2].level == 1 and node.hal.outs[48].pixels[0] == (255, 0, 64)
    # "hello": the hello again (this boot, the current lags), before its ack.
    hub.send("cmd", id=8, op="hello", args={})
    again = hub.wait_for(lambda f: f["t"] == "hello" and f["seq"] > rehello["seq"])
    ack = hub.wait_for(lambda f: f["t"] == "ack" and f["id"] == 8)
    assert ack["ok"] == 1 and ack["seq"] > again["seq"]
    assert again["boot"] == hello["boot"] and again["ch"] == rehello["ch"]
    hub.send("cmd", id=7, op="reboot", args={})
    assert hub.wait_for(lambda f: f["t"] == "ack" and f["id"] == 7)["ok"] == 1
    end = time.monotonic() + 5
    while node.hal.resets == 0 and time.monotonic() < end:
        time.sleep(0.02)
    assert node.hal.resets == 1
    assert node.link.rejects.get("malformed", 0) + node.link.rejects.get("truncated", 0) >= 1
    assert node.link.rejects.get("noise", 0) >= 1


def test_commands_for_another_node_are_ignored(pty_node):
    hub, node = pty_node
    hub.wait_for(lambda f: f["t"] == "hello")
    os.write(hub.master, wire.encode_line({"t": "cmd", "node": "other", "boot": 7, "seq": 1,
                                           "tick": 0, "id": 9, "op": "ping", "args": {}}))
    hub.send("cmd", id=10, op="ping", args={})
    hub.wait_for(lambda f: f["t"] == "ack" and f["id"] == 10)
    assert not [f for f in hub.frames if f["t"] == "ack" and f["id"] == 9]


def test_a_repeated_or_replayed_command_is_dropped_and_counted(pty_node):
    hub, node = pty_node
    hub.wait_for(lambda f: f["t"] == "hello")
    toggle = wire.encode_line({"t": "cmd", "node": "pty-1", "boot": 7, "seq": 100, "tick": 0,
                               "id": 20, "op": "out", "args": {"name": "led", "on": 1}})
    hub.raw(toggle + toggle)  # an MQTT-style redelivery: same (boot, seq)
    hub.cid = 100
    hub.send("cmd", id=21, op="ping", args={})  # seq 101: new
    hub.wait_for(lambda f: f["t"] == "ack" and f["id"] == 21)
    # The hub restarts (boot 8); a frame of its old boot 7 is then a replay.
    os.write(hub.master, wire.encode_line({"t": "cmd", "node": "pty-1", "boot": 8, "seq": 1,
                                           "tick": 0, "id": 22, "op": "ping", "args": {}}))
    hub.wait_for(lambda f: f["t"] == "ack" and f["id"] == 22)
    os.write(hub.master, wire.encode_line({"t": "cmd", "node": "pty-1", "boot": 7, "seq": 500,
                                           "tick": 0, "id": 23, "op": "ping", "args": {}}))
    hub.send("cmd", id=24, op="ping", args={})  # boot 7 again: still a replay
    os.write(hub.master, wire.encode_line({"t": "cmd", "node": "pty-1", "boot": 8, "seq": 2,
                                           "tick": 0, "id": 25, "op": "ping", "args": {}}))
    hub.wait_for(lambda f: f["t"] == "ack" and f["id"] == 25)
    acks = [f["id"] for f in hub.frames if f["t"] == "ack"]
    assert acks == [20, 21, 22, 25]  # each obeyed once, in order
    assert node.link.rejects.get("duplicate") == 1 and node.link.rejects.get("replay") == 2


def _frames(node):
    return wire.LineDecoder().feed(node.link._out.getvalue())


def test_ticks_wrap_and_missed_deadlines_are_counted():
    node = make_node(clock_start=MASK - 300)  # the 30-bit tick wraps at sample 16
    node.link._out = io.BytesIO()
    reader = node.chans[0].reader

    class Slow:
        """A sensor read that stalls 95 ms once: the next sample is 75 ms late,
        so 3 whole 20 ms deadlines are missed and skipped."""

        n = 0

        def read(self):
            Slow.n += 1
            if Slow.n == 100:
                node.clock.now = (node.clock.now + 95) & MASK
            return reader.read()

    node.chans[0].reader = Slow()
    node.run(200)
    reports = [f for f in _frames(node) if f["t"] == "report"]
    assert [r["n"] for r in reports] == list(range(25, 201, 25))
    assert reports[-1]["miss"] == 3 and reports[2]["miss"] == 0
    ticks = [r["tick"] for r in reports]
    assert ticks[0] < ticks[1] - 400 or ticks[0] > ticks[1]  # wrapped between
    assert all(0 <= t <= MASK for t in ticks)
    # Sample times keep the 20 ms grid across the wrap and after the stall.
    assert [(b - a) & MASK for a, b in zip(ticks[4:], ticks[5:])] == [500] * 3
