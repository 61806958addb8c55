"""`becomingone flash` as a user runs it (a subprocess), and the check that a
refusal is one line `becomingone: ...` on stderr with exit status 1."""
import subprocess
import time

from support.cli import BECOMINGONE

FLASH = [*BECOMINGONE, "flash"]


def flash(port, *extra, board="sim", timeout=120):
    """Flash node vb-1 of `board` on `port`: (returncode, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    r = subprocess.run([*FLASH, "--board", board, "--node-id", "vb-1", "--port", port, *extra],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def one_line_error(rc, out, err, start):
    """The single stderr line (asserting exit 1, no traceback, and that it
    starts with `becomingone: ` + start)."""
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("becomingone: " + start), err
    assert "Traceback" not in out + err
    return lines[0]
