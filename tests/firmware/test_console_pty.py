"""`becomingone console` for real: the console as a subprocess (`python -m
becomingone console PORT`, stdin a pipe or a pty) on a real pty with the CPython
node firmware on the other end (socat joins two ptys under fixed link names,
so the port path survives a node restart), or a pty the test holds."""
import json
import os
import re
import select
import signal
import subprocess
import sys
import termios
import threading
import time

import pytest
from support.console import HELLO, report_line
from support.mp import ROOT
from support.nodeharness import sim_board, stage, start_cpython
from support.rigs import Cable, needs_socat

from kairos import wire

# -- through real ptys ---------------------------------------------------------------


class NodeProc:
    """The real firmware on CPython (main.py from a staged filesystem) on
    the node's end of the cable."""

    def __init__(self, tmp, port):
        board = sim_board(period_ms=20, report_every=10)
        board["outputs"] += [{"name": "buzzer", "kind": "buzzer", "pin": 5},
                             {"name": "motor", "kind": "motor", "pin": 6}]
        self.cfg = {"node": "kitchen-1", "seed": 5, "realtime": True, "serial": {"port": port}}
        self.fs = stage(tmp, board, self.cfg)
        self.proc = None
        self.starts = 0

    def start(self):
        self.starts += 1
        self.cfg["seed"] = 4 + self.starts  # the seed draws the boot id: a new one per start
        (self.fs / "node.json").write_text(json.dumps(self.cfg))
        self.log = open(self.fs / f"node{self.starts}.log", "wb")  # noqa: SIM115
        self.proc = start_cpython(self.fs, stdout=self.log, stderr=subprocess.STDOUT)

    def kill(self):
        if self.proc is not None:
            self.proc.kill()
            self.proc.wait(5)
            self.proc = None
            self.log.close()


class ConsoleProc:
    """`python -m becomingone console ...` with stdin a pipe (or a pty), its
    stdout collected line by line by a thread."""

    def __init__(self, *args, stdin=subprocess.PIPE):
        self.proc = subprocess.Popen(
            [sys.executable, "-m", "becomingone", "console", *args], cwd=ROOT,
            stdin=stdin, stdout=subprocess.PIPE, stderr=subprocess.PIPE)
        self.out = b""
        self.lock = threading.Lock()
        self.reader = threading.Thread(target=self._read, daemon=True)
        self.reader.start()

    def _read(self):
        while True:
            chunk = self.proc.stdout.read1(4096)
            if not chunk:
                return
            with self.lock:
                self.out += chunk

    def lines(self):
        with self.lock:
            return self.out.decode("utf-8", "replace").splitlines()

    def type(self, data):
        self.proc.stdin.write(data)
        self.proc.stdin.flush()

    def wait_for(self, pattern, after=0, timeout=10.0):
        """The first output line from index `after` on that matches; its index."""
        rx = re.compile(pattern)
        end = time.monotonic() + timeout
        while time.monotonic() < end:
            for i, text in enumerate(self.lines()[after:], after):
                if rx.search(text):
                    return i
            time.sleep(0.02)
        raise AssertionError(f"no line matching {pattern!r} in:\n" + "\n".join(self.lines()))

    def exit(self, timeout=5.0):
        rc = self.proc.wait(timeout)
        self.reader.join(timeout)
        return rc

    def kill(self):
        if self.proc.poll() is None:
            self.proc.kill()
            self.proc.wait(5)


@pytest.fixture
def rig(tmp_path):
    cable = Cable(tmp_path, "ttyConsole")
    cable.plug()
    fs = tmp_path / "fs"
    fs.mkdir()
    node = NodeProc(fs, cable.node)
    procs = []
    try:
        yield cable, node, procs
    finally:
        for p in procs:
            p.kill()
        node.kill()
        cable.close()


@needs_socat
def test_console_on_a_real_node_commands_and_a_restart(rig):
    cable, node, procs = rig
    con = ConsoleProc(cable.host)
    procs.append(con)
    con.wait_for(r"^console on .*ttyConsole at 115200 baud; Ctrl-\] exits")
    node.start()
    i = con.wait_for(r"^\d\d:\d\d:\d\d kitchen-1 hello: board sim .*wave: lags 2,4,8,16 s=6")
    con.wait_for(r"^\d\d:\d\d:\d\d kitchen-1 wave c=\d\.\d\d τ=\d+ms( collapsed)? \| burst c=",
                 after=i)
    # The board's own text on the same port passes through untouched.
    with open(cable.node, "wb", buffering=0) as board:
        board.write(b"MicroPython v1.27.0; a REPL line \x1b[1mbold\x1b[0m\r\n")
    con.wait_for(r"^MicroPython v1\.27\.0; a REPL line \x1b\[1mbold\x1b\[0m$")

    con.type(b"led on\n")
    con.wait_for(r"kitchen-1 ack #1 \(led on\): ok in \d+\.\d ms$")
    con.type(b"ping\n")
    con.wait_for(r"kitchen-1 pong #2: round trip \d+\.\d ms \(node tick \d+, held \d+ ms\)$")
    con.type(b"set s 99\n")
    con.wait_for(r"kitchen-1 ack #3 \(set s 99\): ERROR s must be")
    con.type(b"led maybe\n")  # a local error: nothing sent, no id used
    con.wait_for(r"^console: led: expected on or off, got 'maybe' .*; not sent$")
    con.type(b"pixel 255 0 0\nbuzzer 440\nmotor 30000\nset 1 lags 3,6,12\n")
    for cid, text in ((4, "pixel 255 0 0"), (5, "buzzer 440"), (6, "motor 30000"),
                      (7, "set 1 lags 3,6,12")):
        con.wait_for(rf"kitchen-1 ack #{cid} \({text}\): ok")
    con.wait_for(r"kitchen-1 hello: .*burst: lags 3,6,12")  # the node re-announces itself
    con.wait_for(r"kitchen-1 wave c=\S+ τ=\d+ms( collapsed)? \| burst c=\S+ τ=(60|120|240)ms")

    # A reset whose hello may come before the console has the port again
    # (pyserial flushes what was waiting when it opens): the console must
    # not decode the new boot's reports with the old boot's lags 3,6,12.
    node.kill()
    cable.unplug()
    lost = con.wait_for(r"^console: .*ttyConsole lost \(.*\); reconnecting \(Ctrl-\] exits\)$")
    cable.plug()
    node.start()
    back = con.wait_for(r"^console: .*ttyConsole reconnected$", after=lost)
    con.wait_for(r"kitchen-1 (hello \(new boot\)|new boot \d+, its hello was missed)", after=back)
    # (channel names come with the hello too: ch0, ch1 while it is unknown)
    i = con.wait_for(r"kitchen-1 (wave|ch0) c=\S+ τ=\S+( collapsed)? \| (burst|ch1) c=",
                     after=back)
    taus = [re.search(r"(burst|ch1) c=\S+ τ=(\S+)", x) for x in con.lines()[back:i + 1]]
    assert {m.group(2) for m in taus if m} <= {"40ms", "80ms", "160ms", "320ms", "lag#0",
                                                "lag#1", "lag#2", "lag#3"}
    con.type(b"print('not a command')\n")  # raw text: the node skips it as noise
    con.type(b"reboot\n")  # (#8, or #9 when the console asked for the missed hello)
    con.wait_for(r"kitchen-1 ack #\d+ \(reboot\): ok", after=i)

    # The node restarts and its port disappears and comes back (USB CDC);
    # here the console has the port again before the node starts.
    node.kill()
    cable.unplug()
    lost = con.wait_for(r"^console: .*ttyConsole lost \(.*\); reconnecting \(Ctrl-\] exits\)$",
                        after=i)
    cable.plug()
    back = con.wait_for(r"^console: .*ttyConsole reconnected$", after=lost)
    node.start()
    i = con.wait_for(r"kitchen-1 hello \(new boot\): board sim .*burst: lags 2,4,8,16", after=back)
    con.wait_for(r"^\d\d:\d\d:\d\d kitchen-1 wave c=\d\.\d\d τ=\d+ms", after=i)
    con.type(b"ping\n")
    con.wait_for(r"kitchen-1 pong #\d+: round trip", after=i)
    assert len([x for x in con.lines() if " lost (" in x]) == 2  # said once per loss

    con.type(b"\x1d")
    assert con.exit() == 0
    assert con.proc.stderr.read() == b""
    assert not [x for x in con.lines() if x.startswith("?? bad frame")]


@needs_socat
def test_a_console_started_late_asks_the_node_for_its_hello(rig):
    cable, node, procs = rig
    # The test holds the port first and takes the node's hello and a report,
    # so the console only ever sees frames of a boot whose hello it missed.
    fd = os.open(cable.host, os.O_RDWR | os.O_NOCTTY)
    try:
        node.start()
        dec, seen, end = wire.LineDecoder(), [], time.monotonic() + 10
        while "report" not in seen and time.monotonic() < end:
            if select.select([fd], [], [], 0.1)[0]:  # bounded: a node that died sends nothing
                seen += [m["t"] for m in dec.feed(os.read(fd, 4096))]
        assert seen[0] == "hello" and "report" in seen, seen
        con = ConsoleProc(cable.host)
        procs.append(con)
        con.wait_for(r"^console on ")
    finally:
        os.close(fd)
    # The first frame of the boot it missed the hello of makes it ask: a report
    # or, as often, an event (the node's "burst" channel collapses near its
    # first report, and the hello comes back long before the next report).
    # Until the hello, channels go by index and a report's τ by lag index;
    # after it, by name and in ms.
    before = r"^\S+ kitchen-1 ch\d c=\S+ (τ=lag#\d|COLLAPSE$|collapse over$)"
    i = con.wait_for(before)
    j = con.wait_for(r"kitchen-1 hello: board sim .*wave: lags 2,4,8,16", after=i)
    early = [x for x in con.lines()[:j] if " kitchen-1 " in x]
    assert early and all(re.search(before, x) for x in early), early
    con.wait_for(r"kitchen-1 ack #1 \(hello, automatic\): ok in \d+\.\d ms$", after=j)
    con.wait_for(r"kitchen-1 wave c=\S+ τ=\d+ms( collapsed)? \| burst c=\S+ τ=\d+ms", after=j)
    assert len([x for x in con.lines() if "(hello, automatic)" in x]) == 1  # asked once
    con.type(b"hello\n")  # typed, it asks again
    k = con.wait_for(r"kitchen-1 ack #2 \(hello\): ok", after=j)
    assert [x for x in con.lines()[j + 1:k] if " hello: board sim " in x]
    con.type(b"\x1d")
    assert con.exit() == 0
    assert not [x for x in con.lines() if x.startswith("?? bad frame")]


class FakeBoard:
    """A pty whose other end the test holds: what the console sends."""

    def __init__(self):
        self.master, self.slave = os.openpty()
        self.path = os.ttyname(self.slave)

    def read(self, n=1 << 20, timeout=5.0, until=None):
        """n bytes, or up to and including `until`, or what came in `timeout`."""
        got = b""
        end = time.monotonic() + timeout
        os.set_blocking(self.master, False)
        while len(got) < n and time.monotonic() < end and not (until and got.endswith(until)):
            try:
                got += os.read(self.master, 4096)
            except BlockingIOError:
                time.sleep(0.01)
        return got

    def close(self):
        os.close(self.master)
        os.close(self.slave)


@pytest.fixture
def board():
    b = FakeBoard()
    yield b
    b.close()


def test_ctrl_c_goes_to_the_board_and_raw_shows_bytes_unchanged(board):
    con = ConsoleProc(board.path, "--raw")
    try:
        con.wait_for(r"^console on .* \(raw\); Ctrl-\] exits")
        data = HELLO + b"\x00\xfe junk \x1b[0m\r\n>>> "
        os.write(board.master, data)
        end = time.monotonic() + 5
        while data not in con.out and time.monotonic() < end:
            time.sleep(0.02)
        assert data in con.out
        con.type(b"\x03")
        assert board.read(1) == b"\x03"
        con.type(b"reboot\nimport machine\n")  # the node was learnt from its hello
        got = board.read(until=b"import machine\r\n")
        msgs = wire.LineDecoder().feed(got)
        assert [(m["t"], m["op"], m["node"]) for m in msgs] == [("cmd", "reboot", "kitchen-1")]
        assert got.endswith(b"\nimport machine\r\n")
        con.type(b"\x1d")
        assert con.exit() == 0
    finally:
        con.kill()


def test_a_terminal_keyboard_is_raw_while_running_and_restored(board):
    kb_master, kb_slave = os.openpty()
    before = termios.tcgetattr(kb_slave)
    con = ConsoleProc(board.path, "--node", "kitchen-1", stdin=kb_slave)
    try:
        con.wait_for(r"^console on ")
        time.sleep(0.2)
        attrs = termios.tcgetattr(kb_slave)
        assert not attrs[3] & (termios.ICANON | termios.ECHO | termios.ISIG)
        os.write(kb_master, b"led ofx\x7ff\r")  # Enter is \r; one typo fixed
        msgs = wire.LineDecoder().feed(board.read(until=b"\n"))
        assert msgs[0]["args"] == {"name": "led", "on": 0}
        os.write(kb_master, b"\x03")  # not a signal: a byte for the board
        assert board.read(1) == b"\x03"
        assert con.proc.poll() is None
        os.write(kb_master, b"\x1d")
        assert con.exit() == 0
        assert termios.tcgetattr(kb_slave) == before
    finally:
        con.kill()
        os.close(kb_master)
        os.close(kb_slave)


def test_a_missing_port_is_one_line_and_exit_1(tmp_path):
    r = subprocess.run([sys.executable, "-m", "becomingone", "console", str(tmp_path / "ttyNone")],
                       cwd=ROOT, capture_output=True, text=True, timeout=30, stdin=subprocess.PIPE)
    assert r.returncode == 1 and r.stdout == ""
    missing = tmp_path / "ttyNone"
    assert r.stderr == f"becomingone: cannot open {missing}: No such file or directory\n"


def test_stdin_ending_keeps_the_console_running_until_sigint(board):
    """stdin ending (e.g. `< /dev/null` for a log) keeps the console showing
    the board; Ctrl-C from the shell (SIGINT) ends it."""
    con = ConsoleProc(board.path)
    try:
        con.wait_for(r"^console on ")
        con.proc.stdin.close()
        os.write(board.master, report_line())
        con.wait_for(r"^\d\d:\d\d:\d\d kitchen-1 c=0\.82 τ=lag#3$")
        assert con.proc.poll() is None
        con.proc.send_signal(signal.SIGINT)
        assert con.exit() == 130
    finally:
        con.kill()
