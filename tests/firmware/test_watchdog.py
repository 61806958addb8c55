"""The watchdog: armed only when main.py runs the node unattended, after
the first connect attempt; fed every sample and through every connect wait
(a silent broker cannot starve it); still fed after Ctrl-C.  The sim HAL's
watchdog records feeds and the longest gap instead of resetting."""
import os
import select
import signal
import socket
import threading
import time

from support.nodeharness import sim_board, stage, start_cpython

from node import config  # noqa: E402
from node.app import Node  # noqa: E402
from node.hal_sim import SimHal  # noqa: E402


def make(unattended, **over):
    said = []
    cfg = config.merge(sim_board(watchdog_ms=over.pop("watchdog_ms", 3000)),
                       dict({"node": "wd-1", "seed": 2}, **over))
    n = Node(cfg, SimHal(cfg), say=said.append)
    n.unattended = unattended
    return n, said


class _Out:
    def write(self, b):
        pass


def test_not_armed_when_started_by_hand():
    n, said = make(False)
    n.link._out = _Out()
    n.run(50)
    assert n.wdt is None and not hasattr(n.hal, "wdt")


def test_armed_after_the_first_connect_and_fed_every_sample():
    n, said = make(True, watchdog_ms=300)  # too short: raised to the floor
    n.link._out = _Out()
    n.start()
    assert n.wdt is None  # nothing armed before the loop's first connect
    n.loop(200)
    assert n.wdt is n.hal.wdt and n.wdt.timeout == 1000
    assert "watchdog: armed, 1000 ms" in said
    assert n.wdt.feeds >= 200 and n.wdt.late == 0
    assert n.link.wait_ms == 500  # no blocking step may take half the timeout


class SilentBroker:
    """Accepts TCP connections and never says a word (no CONNACK)."""

    def __init__(self):
        self.s = socket.socket()
        self.s.bind(("127.0.0.1", 0))
        self.s.listen(8)
        self.port = self.s.getsockname()[1]
        self.conns = []
        threading.Thread(target=self._accept, daemon=True).start()

    def _accept(self):
        while True:
            try:
                c, _ = self.s.accept()
            except OSError:
                return
            self.conns.append(c)

    def close(self):
        self.s.close()
        for c in self.conns:
            c.close()


def test_a_silent_broker_cannot_starve_the_watchdog():
    broker = SilentBroker()
    try:
        n, said = make(True, watchdog_ms=2000, transport="mqtt", realtime=True,
                       mqtt={"host": "127.0.0.1", "port": broker.port, "keepalive": 5})
        n.start()
        n.loop(1)  # the first connect attempt, then armed
        assert n.wdt is not None and n.link.wait_ms == 1000
        assert not n.link.up
        f0 = n.wdt.feeds
        n.link._retry_at = n.clock.ms()
        n.link.service()  # a whole CONNACK wait (1000 ms) with no sample taken
        assert not n.link.up
        # The wait was cut into slices of at most 250 ms, each fed.
        assert n.wdt.feeds - f0 >= 4 and n.wdt.late == 0
        assert any("no CONNACK within 1000 ms" in s for s in said), said
    finally:
        broker.close()


def test_ctrl_c_leaves_a_fed_watchdog_and_says_so(tmp_path):
    fs = stage(tmp_path, sim_board(watchdog_ms=1000),
               {"node": "wd-2", "realtime": True})
    p = start_cpython(fs)
    try:
        out = b""
        end = time.monotonic() + 30
        while b'"t":"report"' not in out and time.monotonic() < end:
            if select.select([p.stdout], [], [], 0.1)[0]:
                out += os.read(p.stdout.fileno(), 4096)
        p.send_signal(signal.SIGINT)
        rest, err = p.communicate(timeout=20)
    finally:
        if p.poll() is None:
            p.kill()
    text = (out + rest).decode()
    assert p.returncode == 0, err.decode()
    assert "watchdog: armed, 1000 ms" in text
    assert text.rstrip().endswith("node stopped\nwatchdog: still armed (it cannot be stopped); "
                                  "a timer feeds it until reset")
