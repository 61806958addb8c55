"""What the pieces of `becomingone flash` share: where the kernel, the
firmware and the board definitions are, mpremote, FlashError.

Everything a person can act on is raised as FlashError (one line).
"""
import pathlib
import sys

import kairos
from becomingone import firmware
from becomingone.boards import defs
from becomingone.errors import BecomingOneError

KAIROS = pathlib.Path(kairos.__file__).resolve().parent  # the kernel's source, as boards import it
FIRMWARE = pathlib.Path(firmware.__file__).resolve().parent  # main.py, boot.py, node/
BOARDS = pathlib.Path(defs.__file__).resolve().parent  # the board definitions (JSON)
MPREMOTE = [sys.executable, "-m", "mpremote"]
OURS = ("/lib/kairos", "/lib/node", "/main.py", "/boot.py", "/board.json", "/node.json")


class FlashError(BecomingOneError):
    """One line for a person: what is wrong and what to do."""


def say(*a):
    print(*a, flush=True)


def last_line(text, default="no output"):
    lines = [x for x in text.strip().splitlines() if x.strip()]
    return lines[-1].strip() if lines else default
