"""The pieces of tools/flash.py, one concern each:

    device  mpremote, finding the port, probing and checking the board
    build   the board definition, the node config, .mpy files, the plan
    write   copying files (with retries), erasing, making directories
    watch   resetting the board and waiting for the node's first report

Everything a person can act on is raised as FlashError (one line).
"""
import pathlib
import sys

ROOT = pathlib.Path(__file__).resolve().parents[2]
KAIROS = ROOT / "shared" / "kairos"
FIRMWARE = ROOT / "firmware"
MPREMOTE = [sys.executable, "-m", "mpremote"]
OURS = ("/lib/kairos", "/lib/node", "/main.py", "/boot.py", "/board.json", "/node.json")


class FlashError(Exception):
    """One line for a person: what is wrong and what to do."""


def say(*a):
    print(*a, flush=True)


def last_line(text, default="no output"):
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else default
