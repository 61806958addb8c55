"""The `becomingone` command as a user runs it: a new interpreter running
the installed package (python -m becomingone), output captured as text."""
import subprocess
import sys

BECOMINGONE = [sys.executable, "-m", "becomingone"]


def becomingone(*args, timeout=60, cwd=None):
    """Run `becomingone ARGS...` to its end: the CompletedProcess."""
    return subprocess.run([*BECOMINGONE, *args], capture_output=True, text=True,
                          timeout=timeout, cwd=cwd)
