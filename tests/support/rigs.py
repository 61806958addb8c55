"""Small test rigs shared by several test files: a virtual USB cable made of
two linked ptys (socat, fixed paths that survive unplug/replug), a bounded
wait, a clock the test moves, a free port and a log's text."""
import os
import shutil
import socket
import subprocess
import time

import pytest

needs_socat = pytest.mark.skipif(shutil.which("socat") is None,
                                 reason="socat not installed (bash tools/setup.sh)")


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


class FakeClock:
    """A clock the test moves by hand (clock.t += dt): for code that takes a
    clock() callable.  The default start is a plausible time.time()."""

    def __init__(self, t=1_800_000_000.0):
        self.t = t

    def __call__(self):
        return self.t


def wait_for(pred, timeout=10.0, step=0.02, poll=None):
    """True as soon as pred() is, False if it still is not once timeout
    seconds have passed (pred gets a last look at the deadline).  poll(),
    when given, runs before each look: the way to drive a client that has no
    thread of its own (the firmware's MQTTClient.poll)."""
    end = time.monotonic() + timeout
    while True:
        if poll is not None:
            poll()
        if pred():
            return True
        if time.monotonic() >= end:
            return False
        time.sleep(step)


def free_port():
    """A 127.0.0.1 port nobody listens on right now (the kernel's pick)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text(path):
    """A log file's text so far, whatever bytes a crashing child left in it."""
    return path.read_text(errors="replace")
