"""A real Mosquitto broker for tests, on a free 127.0.0.1 port.

Any test asks for the `mosquitto` fixture by name: tests/conftest.py loads
this module as a plugin (pytest_plugins).  The fixture never skips: without
/usr/sbin/mosquitto it fails and says how to install it (tools/setup.sh does).
"""
import os
import pathlib
import shutil
import signal
import socket
import subprocess
import tempfile
import time

import pytest

from support.rigs import free_port

MOSQUITTO = "/usr/sbin/mosquitto"


def port_open(host, port, timeout=0.2):
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


class Mosquitto:
    """One mosquitto process; restart() brings it back on the same port."""

    host = "127.0.0.1"

    def __init__(self, port=None, workdir=None, binary=None, persistence=False, users=None):
        self.binary = binary or shutil.which("mosquitto") or MOSQUITTO
        if not os.path.exists(self.binary):
            raise RuntimeError(
                "mosquitto not found at %s: install it with `apt-get install mosquitto` "
                "(bash tools/setup.sh does)" % self.binary
            )
        self.port = port or free_port()
        self._own_dir = workdir is None
        self.dir = pathlib.Path(workdir or tempfile.mkdtemp(prefix="mosquitto-"))
        self.conf = self.dir / "mosquitto.conf"
        self.log = self.dir / "mosquitto.log"
        self.proc = None
        # persistence=True: sessions and queued messages survive restart()
        # (mosquitto saves them on SIGTERM), like a broker with a disk.
        keep = ("persistence true\npersistence_location %s/\n" % self.dir if persistence
                else "persistence false\n")
        # users={"name": "password"}: anonymous clients are refused and these
        # logins checked (a password file made with mosquitto_passwd).
        login = "allow_anonymous true\n"
        if users:
            login = "allow_anonymous false\npassword_file %s\n" % self._password_file(users)
        self.conf.write_text(
            "listener %d 127.0.0.1\n" % self.port
            + login + keep +
            "max_queued_messages 100000\n"
            "max_inflight_messages 0\n"
            "log_dest file %s\n"
            "log_type all\n"
            "connection_messages true\n" % self.log
            # As root, mosquitto would drop to user "mosquitto", which cannot
            # write the log in our private temp dir.
            + ("user root\n" if os.geteuid() == 0 else "")
        )

    def _password_file(self, users):
        tool = shutil.which("mosquitto_passwd") or "/usr/bin/mosquitto_passwd"
        path = self.dir / "passwd"
        for i, (name, password) in enumerate(users.items()):
            create = ["-c"] if i == 0 else []
            subprocess.run([tool, "-b", *create, str(path), name, password], check=True,
                           capture_output=True, timeout=30)
        return path

    def start(self, timeout=5.0):
        if self.proc is not None and self.proc.poll() is None:
            return self
        self.proc = subprocess.Popen(
            [self.binary, "-c", str(self.conf)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.PIPE,
        )
        deadline = time.monotonic() + timeout
        while not port_open(self.host, self.port):
            if self.proc.poll() is not None:
                err = self.proc.stderr.read().decode(errors="replace")
                self.proc = None
                raise RuntimeError(
                    "mosquitto exited on start (port %d): %s\n%s" % (self.port, err, self.logs())
                )
            if time.monotonic() > deadline:
                self.kill()
                raise RuntimeError("mosquitto did not listen on port %d" % self.port)
            time.sleep(0.02)
        return self

    def stop(self, timeout=5.0):
        """SIGTERM and wait; SIGKILL if it does not go in time."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.send_signal(signal.SIGTERM)
            try:
                p.wait(timeout)
            except subprocess.TimeoutExpired:
                p.kill()
                p.wait(timeout)
        p.stderr.close()
        self.proc = None

    def kill(self):
        """SIGKILL: the broker vanishes without closing anything cleanly."""
        p = self.proc
        if p is None:
            return
        if p.poll() is None:
            p.kill()
            p.wait(5)
        p.stderr.close()
        self.proc = None

    def restart(self, timeout=5.0):
        """stop() then start() on the same port (bounded wait for the port)."""
        self.stop()
        deadline = time.monotonic() + timeout
        while True:
            try:
                return self.start(timeout=max(0.5, deadline - time.monotonic()))
            except RuntimeError:
                # The port can stay busy for a moment after the old process.
                if time.monotonic() > deadline:
                    raise
                time.sleep(0.05)

    def running(self):
        return self.proc is not None and self.proc.poll() is None

    def logs(self):
        try:
            return self.log.read_text(errors="replace")
        except OSError:
            return ""

    def cleanup(self):
        self.stop()
        if self._own_dir:
            shutil.rmtree(self.dir, ignore_errors=True)

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.cleanup()


@pytest.fixture
def mosquitto():
    """A started Mosquitto on a free 127.0.0.1 port, always stopped after."""
    if not os.path.exists(shutil.which("mosquitto") or MOSQUITTO):
        pytest.fail(
            "mosquitto is not installed (%s): run `bash tools/setup.sh` or "
            "`apt-get install mosquitto`" % MOSQUITTO,
            pytrace=False,
        )
    broker = Mosquitto()
    try:
        broker.start()
        yield broker
    finally:
        broker.cleanup()
