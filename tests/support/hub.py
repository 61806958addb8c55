"""The hub for tests: built in-process on a fake clock and driven by hand
(make, feed), built and started on a broker (mqtt_hub), or started as
`becomingone hub` in its own process (RunningHub)."""
import json
import re
import subprocess
import threading
import urllib.request

from becomingone import config, run
from becomingone.core import Hub
from becomingone.logs import Log
from support.cli import BECOMINGONE
from support.mp import ROOT
from support.rigs import FakeClock, wait_for

# What a system test's hub keeps quiet: the routine lines of a running mesh.
QUIET = ("collapse", "hello", "transport", "clock", "memory", "status", "witness", "reject",
         "emergence", "hub", "ack")


def make(tmp_path, clock=None):
    """A Hub on tmp_path/hub.db with every default setting, on a FakeClock
    (or the clock given: time.time for the real one), no threads started;
    its routine log lines quiet."""
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "hub.db"}"\n')
    log = Log(quiet=("hello", "collapse", "memory", "reject"))
    return Hub(cfg, log, clock=clock or FakeClock())


def feed(hub, frames, source="mqtt"):
    """Process frames as one batch from `source`, received now (hub.clock())."""
    hub.process([(f, source, hub.clock(), None) for f in frames])


def mqtt_hub(tmp_path, broker, quiet=QUIET):
    """A started hub (threads and all) on the broker, its store in tmp_path:
    (hub, its MQTT transport), once that transport is connected."""
    cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mqtt]
enabled = true
host = "{broker.host}"
port = {broker.port}
""")
    hub = run.build(cfg, Log(quiet=quiet))
    hub.start()
    mq = next(t for t in hub.transports if t.kind == "mqtt")
    if not mq.ready.wait(10):
        hub.stop()
        raise AssertionError(f"the hub never connected to {broker.host}:{broker.port}")
    return hub, mq


class RunningHub:
    """`becomingone hub --config TOML --port 0` in its own process; url is its
    web API once it listens; node(name) is that node's GET /api/nodes row."""

    def __init__(self, toml):
        exe = ROOT / ".venv" / "bin" / "becomingone"
        cmd = [str(exe)] if exe.exists() else BECOMINGONE
        self.proc = subprocess.Popen([*cmd, "hub", "--config", str(toml), "--status", "0",
                                      "--port", "0"], stdout=subprocess.PIPE,
                                     stderr=subprocess.STDOUT, text=True)
        self.lines = []
        threading.Thread(target=self._read, daemon=True).start()
        assert wait_for(lambda: self._url() or self.proc.poll() is not None, 30), self.log()
        self.url = self._url()
        assert self.url, self.log()

    def _read(self):
        for line in self.proc.stdout:
            self.lines.append(line)

    def _url(self):
        m = re.search(r"page at (http://\S+)", self.log())
        return m and m[1].rstrip("/")

    def log(self):
        return "".join(self.lines)

    def node(self, name):
        with urllib.request.urlopen(self.url + "/api/nodes", timeout=5) as r:
            rows = json.load(r)["nodes"]
        return next((n for n in rows if n["node"] == name), None)

    def live(self, name):
        n = self.node(name)
        return n is not None and n["online"] and not n["stale"] and n["c"] is not None

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.proc.terminate()
        try:
            self.proc.wait(10)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(5)
