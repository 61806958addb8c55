"""Small test rigs shared by several test files: a virtual USB cable made of
two linked ptys (socat, fixed paths that survive unplug/replug) and a
bounded wait."""
import os
import subprocess
import time


class Cable:
    """socat joining two ptys at fixed paths: `host` (what the hub or the
    console opens) and `node` (the board's end).  unplug()/plug() kill and
    restart socat, so the paths vanish and come back like a USB replug."""

    def __init__(self, d, host_name="ttyV0"):
        self.host = str(d / host_name)
        self.node = str(d / "ttyNode")
        self.proc = None

    def plug(self, timeout=5.0):
        self.proc = subprocess.Popen(
            ["socat", f"pty,raw,echo=0,link={self.host}", f"pty,raw,echo=0,link={self.node}"],
            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        end = time.monotonic() + timeout
        while not (os.path.exists(self.host) and os.path.exists(self.node)):
            assert time.monotonic() < end, "socat made no ptys"
            time.sleep(0.02)

    def unplug(self):
        self.proc.terminate()
        self.proc.wait(5)
        self.proc = None

    def close(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)


def wait_for(pred, timeout=10.0, step=0.02):
    """True as soon as pred() is; False after timeout seconds."""
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if pred():
            return True
        time.sleep(step)
    return False
