"""`becomingone flash` as a user runs it (a subprocess), and the check that a
refusal is one line `becomingone: ...` on stderr with exit status 1."""
import subprocess
import tempfile
import time
from pathlib import Path

from support.cli import BECOMINGONE

FLASH = [*BECOMINGONE, "flash"]
# The node keys file flash keeps the node's key in: one per test session, in a
# temp dir (not the checkout), so a second flash of vb-1 finds the first one's key.
KEYS = Path(tempfile.mkdtemp(prefix="becomingone-keys-")) / "nodes.keys"


def flash(port, *extra, board="sim", timeout=120):
    """Flash node vb-1 of `board` on `port`: (returncode, stdout, stderr, seconds)."""
    t0 = time.monotonic()
    keys = () if "--keys" in extra else ("--keys", str(KEYS))
    r = subprocess.run([*FLASH, "--board", board, "--node-id", "vb-1", "--port", port, *keys,
                        *extra], capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def one_line_error(rc, out, err, start):
    """The single stderr line (asserting exit 1, no traceback, and that it
    starts with `becomingone: ` + start)."""
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("becomingone: " + start), err
    assert "Traceback" not in out + err
    return lines[0]
