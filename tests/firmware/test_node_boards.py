"""Every shipped board's full sensor set (the sim HAL stands in for the
hardware: its I2C bus has a BME280): every channel is in the hello, the
hello always goes out, and the spool's slot holds the largest frame the
config can make, so nothing is ever refused as too big."""
import json
import os
import threading
import time

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from support.mp import ROOT
from support.nodeharness import decode_lines, run_cpython, sim_board, stage

from kairos import wire, wirebin
from node import config  # noqa: E402
from node.app import Node  # noqa: E402
from node.hal_sim import SimHal  # noqa: E402
from node.link import Link  # noqa: E402
from node.link_mqtt import MqttLink  # noqa: E402
from node.link_serial import SerialLink  # noqa: E402

BOARDS = sorted(p.stem for p in (ROOT / "boards").glob("*.json"))
M30 = wire.M30


def board(name):
    return json.loads((ROOT / "boards" / (name + ".json")).read_text())


def sim_node(name, transport="serial", node="n" * 32, **over):
    said = []
    cfg = config.merge(board(name), dict({"node": node, "hal": "sim", "transport": transport},
                                         **over))
    return Node(cfg, SimHal(cfg), say=said.append), said


class BinLink(Link):
    """The base link with BLE's codec (BleLink itself needs `bluetooth`)."""

    codec = "bin"
    name = "ble"


def links(cfg, node):
    clock = SimHal(cfg).clock
    args = (cfg, node, clock, lambda: 0, lambda *_: None)
    return [SerialLink(*args), MqttLink(*args), BinLink(*args)]


@pytest.mark.parametrize("name", BOARDS)
def test_every_sensor_runs_and_the_hello_fits_every_encoding(name):
    n, said = sim_node(name)
    assert said == [] and [c.name for c in n.chans] == [s["name"] for s in board(name)["sensors"]]
    hello = n.hello()
    assert len(hello["ch"]) == len(board(name)["sensors"])
    line, js, bn = wire.encode_line(hello), wire.encode_json(hello), wirebin.encode_bin(hello)
    assert len(line) <= wire.MAX_LINE and len(js) <= wire.MAX_JSON and len(bn) <= wirebin.MAX_BIN
    assert wire.LineDecoder().feed(line) == [hello]
    assert wire.decode_json(js, {}) == hello and wirebin.decode_bin(bn, {}) == hello
    for _ in range(64):  # the BME280 and every other driver read without error
        n.sample()
    # The default spool: as many worst-case slots as fit in 8 kB (8..32) in
    # RAM, and in its file as many more as 10 minutes of this board's reports
    # need at its default rate, with a quarter more for events and acks.
    sp = n.link.spool
    assert sp.size == n.link.frame_max("n" * 32, len(n.chans))
    assert sp.slots == max(8, min(32, 8192 // sp.size)) and sp.slots * sp.size <= 8192
    b = board(name)
    reports = 600_000 // (b["period_ms"] * b["report_every"])
    assert sp.file == "spool.bin" and sp.capacity >= reports * 5 // 4 >= 600


_ROW = st.tuples(st.sampled_from([-16384, 16384, 0, -1]), st.sampled_from([M30, 0, 99999]),
                 st.integers(0, 7), st.sampled_from([32767, 0]), st.sampled_from([-M30, M30, 0]),
                 st.sampled_from([-M30, M30, 1]), st.integers(0, 1))


@settings(max_examples=60, deadline=None)
@given(name=st.sampled_from(BOARDS), rows=st.lists(_ROW, min_size=8, max_size=8),
       head=st.tuples(*[st.sampled_from([0, 9, M30])] * 6), err=st.text(max_size=200),
       coh=st.lists(st.lists(st.sampled_from([32767, 10000, 0]), min_size=8, max_size=8),
                    min_size=8, max_size=8))
def test_no_frame_outgrows_a_slot(name, rows, head, err, coh):
    # Any report, event or ack this node can make fits its spool's slot, in
    # every encoding (the slot is sized by encoding the worst case; a report
    # with 8 lags per channel: a set command may give a channel 8).
    cfg = config.merge(board(name), {"node": "z" * 32, "hal": "sim"})
    nch = len(cfg["sensors"])
    boot, seq, tick, n, drop, miss = head
    common = {"node": "z" * 32, "boot": boot, "seq": seq, "tick": tick}
    report = dict(common, t="report", n=n, drop=drop, miss=miss,
                  ch=[list(r) for r in rows[:nch]], coh=coh[:nch])
    event = dict(common, t="event", i=7, on=1, c=32767, n=n)
    from node.app import _plain

    ack = dict(common, t="ack", id=65535, ok=0, err=_plain(err + "@\"\\" * 30))
    for link in links(cfg, "z" * 32):
        for m in (report, event, ack):
            assert len(link.encode(m)) <= link.spool.size, (link.codec, m["t"])


@pytest.mark.parametrize("name", BOARDS)
def test_each_shipped_board_sends_its_hello_first(tmp_path, name):
    # Staged as the flash tool would (board.json unchanged) with the sim HAL.
    fs = stage(tmp_path, board(name), {"node": "b-1", "hal": "sim", "transport": "serial"})
    frames, counts = decode_lines(run_cpython(fs, 120))
    assert not {k: v for k, v in counts.items() if k != "noise"}, counts
    hello = frames[0]
    assert hello["t"] == "hello" and len(hello["ch"]) == len(board(name)["sensors"])
    reports = [f for f in frames if f["t"] == "report"]
    assert reports and all(len(r["ch"]) == len(hello["ch"]) for r in reports)
    assert all(r["drop"] == 0 for r in reports)


def test_a_frame_the_spool_refuses_is_counted_in_drop():
    n, _ = sim_node("sim")
    sp = n.link.spool
    assert not sp.put(2, bytes(sp.size + 1))
    assert n.report()["drop"] == 1 and sp.oversize == 1


def test_serial_link_down_spools_then_hello_first_and_oldest_first(tmp_path):
    # The node's serial port does not exist yet: the link is down, frames go
    # to a ring of 6 slots.  Then the port appears (a pty): the hello comes
    # first, then the 6 newest waiting reports, oldest first; the 'drop'
    # count says how many were lost.
    master, slave = os.openpty()
    port = tmp_path / "ttyNODE"
    cfg = config.merge(sim_board(period_ms=10, report_every=10),
                       {"node": "sp-1", "realtime": True, "serial": {"port": str(port)},
                        "spool": {"slots": 6}})
    node = Node(cfg, SimHal(cfg), say=lambda *_: None)
    t = threading.Thread(target=node.run, args=(700,), daemon=True)
    t.start()
    dec, frames = wire.LineDecoder(), []
    try:
        end = time.monotonic() + 30
        while node.link.spool.dropped < 3 and time.monotonic() < end:
            time.sleep(0.02)  # wait for the ring to overflow
        assert node.link.spool.dropped >= 3 and not node.link.up
        os.symlink(os.ttyname(slave), port)
        while time.monotonic() < end and not (frames and frames[-1]["t"] == "report"
                                              and frames[-1]["n"] >= 700):
            import select

            if select.select([master], [], [], 0.05)[0]:
                frames += dec.feed(os.read(master, 4096))
        t.join(10)
    finally:
        os.close(master)
        os.close(slave)
    assert frames[0]["t"] == "hello" and frames[0]["node"] == "sp-1"
    reports = [f for f in frames if f["t"] == "report"]
    ns = [r["n"] for r in reports]
    assert ns == list(range(ns[0], 701, 10))  # oldest first, no gap after the drops
    lost = ns[0] // 10 - 1  # reports; events were dropped from the ring too
    assert lost >= 1 and reports[-1]["drop"] == node.link.spool.dropped >= lost
    assert frames[0]["seq"] > reports[0]["seq"]  # made later, sent first
