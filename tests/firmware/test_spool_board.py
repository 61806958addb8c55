"""The spool's file tier on a MicroPython filesystem: the virtual board
(MicroPython's npm WebAssembly port, its filesystem behind mpremote), the
same spool.py a board runs.  Ten minutes of a board's reports at its
default rate (600 reports, 750 slots with events and acks) move through
8 RAM slots into the file and come back in order."""
import re

import pytest
from support.mp import ROOT
from support.vboard import mpremote, needs_node

pytestmark = [needs_node, pytest.mark.faults]

SPOOL = ROOT / "firmware" / "node" / "spool.py"

SCRIPT = """
import os, time, spool
said = []
sp = spool.Spool(slots=8, size=720, file='spool.bin', file_slots=750, window=16,
                 say=said.append)
sp.got(10**6, 10**6)  # hub mode
frame = bytearray(720)
for i in range(720):
    frame[i] = i & 0xFF
t0 = time.ticks_ms()
for s in range(758):
    frame[0] = s & 0xFF
    sp.put(2, memoryview(frame)[:600 + s % 100], 2 * s)
t1 = time.ticks_ms()
print('MOVED', sp.moved, 'DROPPED', sp.dropped, 'LEN', len(sp), 'SAID', len(said))
ok, s = True, 0
while sp.unsent():
    k, d = sp.peek()
    n = 600 + s % 100
    ok = ok and k == 2 and len(d) == n and d[0] == s & 0xFF and d[-1] == (n - 1) & 0xFF
    sp.mark_sent(0)
    s += 1
t2 = time.ticks_ms()
print('BACK', s, ok)
print('GOT', sp.got(0, 2 * 399), len(sp), sp.got(2 * 400, 2 * 757), len(sp))
print('FILE', os.stat('spool.bin')[6], 'MARKER', os.stat('spool.bin.e2e')[6])
print('MS', time.ticks_diff(t1, t0), time.ticks_diff(t2, t1))
st = os.statvfs('/')
print('FREE', st[1] * st[4])
"""


def test_ten_minutes_of_reports_through_the_file_on_micropython(tmp_path):
    from becomingone.vboard import VBoard

    script = tmp_path / "run_spool.py"
    script.write_text(SCRIPT)
    vb = VBoard(fs=tmp_path / "fs").start()
    try:
        rc, out, err = mpremote(vb.port, "fs", "cp", str(SPOOL), ":spool.py", "+",
                                "run", str(script), timeout=120)
    finally:
        vb.stop()
    assert rc == 0, err + out
    got = dict((m[0], m[1:]) for m in (line.split() for line in out.splitlines()) if m)
    assert got["MOVED"] == ["750", "DROPPED", "0", "LEN", "758", "SAID", "0"], out
    assert got["BACK"] == ["758", "True"]  # oldest first, every byte back
    assert got["GOT"] == ["400", "358", "358", "0"]
    size = int(got["FILE"][0])
    # The ring: 750 slots of a 7-byte header and up to 720 bytes (the last
    # one written as long as its frame), and the hub-mode marker.
    assert 749 * 727 < size <= 750 * 727 and got["FILE"][2] == "1"
    print("\nvboard: 758 frames, 750 moved to spool.bin (%d kB) in %s ms, read back in %s ms"
          % (size // 1024, *got["MS"]))
    assert re.fullmatch(r"\d+", got["FREE"][0])
