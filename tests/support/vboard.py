"""The virtual board from the test side: the skip mark for machines without
Node.js, the real mpremote as a subprocess, and pyserial on the board's
port reading up to markers (Console)."""
import shutil
import subprocess
import sys
import time

import pytest

# The npm port is fetched on first use when tools/setup.sh has not put it in place;
# only Node.js itself must be there.  Test modules say `pytestmark = needs_node`.
needs_node = pytest.mark.skipif(shutil.which("node") is None,
                                reason="needs Node.js (bash tools/setup.sh)")

MPREMOTE = [sys.executable, "-m", "mpremote"]


def mpremote(port, *args, timeout=30):
    """Run `mpremote connect PORT ARGS...`: (returncode, stdout, stderr)."""
    r = subprocess.run([*MPREMOTE, "connect", port, *args], capture_output=True, text=True,
                       timeout=timeout)
    return r.returncode, r.stdout, r.stderr


class Console:
    """pyserial on the board's port, reading up to markers (the rest is kept)."""

    def __init__(self, port):
        import serial

        self.s = serial.Serial(port, 115200, timeout=0.05)
        self.buf = b""

    def write(self, data):
        self.s.write(data)

    def until(self, marker, timeout=10.0):
        """The bytes up to and including marker (asserting it came in time)."""
        end = time.monotonic() + timeout
        while marker not in self.buf and time.monotonic() < end:
            self.buf += self.s.read(4096)
        assert marker in self.buf, self.buf[-300:]
        i = self.buf.index(marker) + len(marker)
        got, self.buf = self.buf[:i], self.buf[i:]
        return got

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.s.close()
