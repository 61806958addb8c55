"""Reset the board and wait until the node is seen working.

The board is soft-reset from its friendly REPL (so boot.py and main.py
run), then:
  - serial: the node's frames come on the console; hello + first report;
  - mqtt: the tool subscribes to <prefix>/<node>/{hello,report} on the
    broker before the reset and waits for a live (not retained) hello and a
    report.  If the broker can't be reached from this machine, it watches
    the console instead: the node prints `link mqtt up` there when it got
    out, a `link ... down` line or a crash when it didn't; a console that
    says none of these for QUIET seconds (older firmware) is taken as
    running, and said so;
  - ble: the console, as for an unreachable broker.
The console is watched in every case, so a crash on boot is reported at
once with its exception line."""
import os
import queue
import re
import threading
import time

from becomingone.flash.common import FlashError, say
from kairos import wire

QUIET = 20.0  # longer than the firmware's Wi-Fi wait (15 s): its first failure shows
_DOWN = re.compile(r"link (\w+) down \((.*)\); retry")
_UP = re.compile(r"link (\w+) up$")


class Console:
    """The board's console: frames, and what its log lines say."""

    def __init__(self, s):
        self.s = s
        self.dec = wire.LineDecoder()
        self.partial = b""
        self.booted = False  # "soft reboot" seen: what follows is the new boot
        self.traceback = False
        self.crash = self.down = self.up = None
        self.ended = False
        self.last = ""

    def read(self):
        data = self.s.read(4096)
        frames = self.dec.feed(data)
        self.partial += data
        *lines, self.partial = self.partial.split(b"\n")
        for raw in lines:
            self._line(raw.decode(errors="replace").rstrip("\r"))
        self.partial = self.partial[-400:]
        if self.booted and not data and self.partial.endswith(b">>> "):
            self.ended = True  # main.py returned: the friendly REPL is back
        return frames

    def _line(self, line):
        if "soft reboot" in line:
            self.booted, self.traceback, self.crash = True, False, None
            return
        if not line.strip() or line.startswith("@K1"):
            return
        self.last = line.strip()
        if line.startswith("Traceback (most recent call last)"):
            self.traceback = True
        elif self.traceback and not line[:1].isspace():
            self.crash = self.crash or line.strip()
        m = _DOWN.search(line)
        if m:
            self.down, self.up = f"link {m.group(1)} down ({m.group(2)})", None
        m = _UP.search(line.strip())
        if m:
            self.up, self.down = m.group(1), None


class MqttWatch:
    """Live hello/report frames of one node, from the broker."""

    def __init__(self, host, port, node, prefix="becomingone"):
        self.host, self.port, self.node = host, port, node
        self.base = f"{prefix}/{node}/"
        self.q = queue.Queue()
        self.c = None

    def start(self, timeout=5.0):
        import paho.mqtt.client as mqtt

        c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2,
                        client_id=f"becomingone-flash-{os.getpid()}", clean_session=True)
        ready = threading.Event()
        c.on_subscribe = lambda *_a: ready.set()
        c.on_connect = lambda cl, *_a: cl.subscribe([(self.base + "hello", 1),
                                                     (self.base + "report", 1)])
        c.on_message = lambda _c, _u, m: None if m.retain else self.q.put(m.payload)
        c.connect_timeout = timeout
        c.connect(self.host, self.port, keepalive=30)  # OSError: not reachable
        c.loop_start()
        self.c = c
        if not ready.wait(timeout):
            self.stop()
            raise OSError(f"no answer to subscribe in {timeout:.0f} s")
        return self

    def frames(self):
        out, counts = [], {}
        while True:
            try:
                msg = wire.decode_json(self.q.get_nowait(), counts)
            except queue.Empty:
                return out
            if msg is not None:
                out.append(msg)

    def stop(self):
        if self.c is not None:
            self.c.loop_stop()
            self.c.disconnect()
            self.c = None


def reset(s):
    """Interrupt whatever runs, go to the friendly REPL and soft-reset there."""
    s.write(b"\r\x03\x03")
    time.sleep(0.1)
    s.write(b"\x02")  # friendly REPL: a soft reset there runs main.py
    time.sleep(0.2)
    s.reset_input_buffer()
    s.write(b"\x04")


def success(node, hello, report):
    rows = report["ch"]
    i = max(range(len(rows)), key=lambda j: rows[j][3])
    c = rows[i][3] / 32768
    lags = hello["ch"][i]["lags"]
    tau = lags[min(rows[i][2], len(lags) - 1)] * hello["period"]
    return f"{node} is reporting: c={c:.2f}, τ*={tau} ms ({hello['ch'][i]['name']})"


def reset_and_watch(port, cfg, timeout):
    """Reset the board; the one-line success, or FlashError."""
    import serial

    node, transport = cfg["node"], cfg["transport"]
    sub, where = None, "its console"
    if transport == "mqtt":
        host, bport = cfg["mqtt"]["host"], cfg["mqtt"]["port"]
        try:
            sub = MqttWatch(host, bport, node).start()
            where = f"MQTT at {host}:{bport}"
        except OSError as e:
            say(f"the broker {host}:{bport} can't be reached from here ({e}); watching the "
                "board's console instead")
    try:
        s = serial.Serial(port, 115200, timeout=0.2, exclusive=True)
    except (OSError, serial.SerialException) as e:
        if sub:
            sub.stop()
        raise FlashError(f"could not reopen {port} to reset the board: {e}") from None
    say(f"reset; waiting for {node}'s hello and first report on {where} ...")
    try:
        with s:
            reset(s)
            return _watch(Console(s), sub, node, transport, port, timeout)
    except (OSError, serial.SerialException) as e:
        raise FlashError(f"lost {port} while watching the node: {e}") from None
    finally:
        if sub:
            sub.stop()


def _watch(con, sub, node, transport, port, timeout):
    hello = report = None
    t0 = time.monotonic()
    quiet = min(QUIET, timeout)
    hint = f"(watch it: becomingone console {port})"
    while report is None:
        frames = con.read()
        if sub is not None:
            frames = sub.frames()
        elif transport != "serial":
            frames = []
        for f in frames:
            if f.get("node") != node:
                continue
            if f.get("t") == "hello":
                hello = f
            elif f.get("t") == "report" and hello is not None:
                report = f
        if report is not None:
            break
        if con.crash:
            raise FlashError(f"flashed, but {node} crashed on boot: {con.crash} {hint}")
        if con.ended:
            raise FlashError(f"flashed, but main.py ended: the board is at its REPL {hint}")
        waited = time.monotonic() - t0
        if transport != "serial" and sub is None:
            if con.up:
                return (f"{node} is running: its {con.up} link is up (its reports can't be "
                        "seen from here: check them with becomingone hub)")
            if con.down:
                raise FlashError(f"flashed, but {node} can't report: {con.down} {hint}")
            if waited >= quiet:
                return (f"{node} is running: its console showed no error in {quiet:.0f} s (its "
                        f"{transport} reports can't be seen from here: check them with "
                        "becomingone hub)")
        if waited >= timeout:
            what = "no hello" if hello is None else "a hello but no report"
            said = con.down or con.last or "nothing"
            raise FlashError(f"flashed, but {what} from {node} on "
                             f"{'its console' if sub is None else 'MQTT'} in {timeout:.0f} s; "
                             f"the board said: {said[:120]} {hint}")
    return success(node, hello, report)
