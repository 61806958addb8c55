"""A terminal console on a node's USB serial port: ``becomingone console [PORT]``.

What the board prints is shown line by line: ``@K1`` frames decoded into
readable lines, everything else (the REPL, log lines, tracebacks) untouched.
A typed line is a console command when its first word is one of

    ping                      a clock-sync ping; the pong shows the round trip
    set [CH] KEY VALUE ...    channel parameters (CH 0 if omitted), e.g.
                              set lags 2,4,8    set 1 lags 3,6,12 ic 20000    set s 6
    led on|off                pixel R G B       buzzer HZ       motor DUTY
    reboot

and anything else is sent to the board as typed, plus "\\r\\n" (REPL input).
Ctrl-C goes to the board (\\x03), Ctrl-] leaves the console.  The port is
reopened with backoff when it goes away (a board reset, an unplug).

The logic is terminal-free and testable: Console.feed(bytes) -> lines to
show, Console.command(text) -> bytes to send (CommandError for a bad one),
Keys.feed(bytes) -> what the keyboard asked for.  run() is the terminal
loop around them.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import random
import re
import select
import sys
import time
from collections.abc import Callable

from kairos import wire

EXIT_KEY = "\x1d"  # Ctrl-]
CTRL_C = b"\x03"
SET_KEYS = ("lags", "s", "s0", "omega", "ic", "hysteresis", "dwell")  # firmware/node/commands.py
COMMANDS = ("ping", "set", "led", "pixel", "buzzer", "motor", "reboot")
USAGE = {
    "ping": "ping",
    "set": f"set [CH] KEY VALUE ... (KEY: {', '.join(SET_KEYS)}; e.g. set lags 2,4,8)",
    "led": "led on|off",
    "pixel": "pixel R G B (0..255 each)",
    "buzzer": "buzzer HZ (0..65535, 0 = silent)",
    "motor": "motor DUTY (0..65535)",
    "reboot": "reboot",
}
HELP = ("commands: ping | set [CH] KEY VALUE | led on|off | pixel R G B | buzzer HZ | "
        "motor DUTY | reboot; any other line goes to the board; Ctrl-C goes to the board, "
        "Ctrl-] exits")
_INT = re.compile(r"[+-]?\d+\Z")
# "led = Pin(2)", "ping()", "motor.duty(3)", "set += 1": Python for the REPL,
# not console commands, even though the first word is a command's name.
_PYTHON = re.compile(r"(=|\(|\[|\.|:|,|[-+*/%&|^<>@]=|\*\*|//)")
_HOLD = 256  # unanswered pings / commands remembered (for the round trip)
_NODE_TYPES = ("hello", "report", "event", "pong", "ack")


class ConsoleError(Exception):
    """Cannot run the console (no port, port missing): one line for the user."""


class CommandError(ValueError):
    """A typed console command with bad arguments: nothing was sent."""


def _int(word: str, what: str, lo: int, hi: int) -> int:
    if not _INT.match(word):
        raise CommandError(f"{what} must be an integer, got {word!r}")
    v = int(word)
    if not lo <= v <= hi:
        raise CommandError(f"{what} must be {lo}..{hi}, got {v}")
    return v


def _text(b: bytes) -> str:
    """A line as the board sent it, without its line ending."""
    return b.rstrip(b"\r\n").decode("utf-8", "replace")


def _ms(v: float) -> str:
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


class Console:
    """Decoding, formatting and command encoding; no terminal, no port.

    now() gives the wall-clock time for the line stamps, mono() a monotonic
    clock for round trips (both in seconds).  node: the node commands go to
    (default: the last node heard from).
    """

    def __init__(self, node: str | None = None, now: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic, boot: int | None = None) -> None:
        self.target = node
        self.node: str | None = None  # the last node heard from
        self._now = now
        self._mono = mono
        self.boot = random.getrandbits(30) if boot is None else boot
        self.seq = 0
        self._id = 0
        self.hellos: dict[str, dict] = {}  # node -> its hello (of the boot in self.boots)
        self.boots: dict[str, int] = {}  # node -> the boot id of its latest frame
        self.sent: dict[int, tuple[str, float]] = {}  # cmd / ping id -> (text, mono)
        self.counts: dict[str, int] = {}  # frames rejected, by reason
        self._k: dict[tuple[str, int], int] = {}  # last dominant lag per (node, channel)
        self._buf = bytearray()  # the incomplete line

    # -- board -> screen ----------------------------------------------------
    def feed(self, data: bytes) -> list[str]:
        """Bytes from the port -> complete lines to show (no line endings)."""
        self._buf += data
        out: list[str] = []
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                break
            line = bytes(self._buf[: i + 1])
            del self._buf[: i + 1]
            out += self._line(line)
        if len(self._buf) > wire.MAX_LINE + 256:  # a line that never ends: show it in pieces
            out += self.flush()
        return out

    def pending(self) -> str:
        """The incomplete line so far (a prompt such as ">>> "), up to any
        "@" (which may start a frame), for a terminal to show meanwhile."""
        b = bytes(self._buf)
        i = b.find(b"@")
        return _text(b if i < 0 else b[:i])

    def flush(self) -> list[str]:
        """The incomplete line as lines (the port went away mid-line)."""
        if not self._buf:
            return []
        line = bytes(self._buf)
        self._buf.clear()
        return self._line(line)

    def _line(self, line: bytes) -> list[str]:
        j = line.find(b"@K")
        if j < 0:
            return [_text(line)]
        dec = wire.LineDecoder()
        msgs = dec.feed(line[j:] if line.endswith(b"\n") else line[j:] + b"\n")
        bad = {k: n for k, n in dec.counts.items() if k != wire.NOISE}
        if not msgs and not bad:
            return [_text(line)]  # "@K" in a REPL line, not a frame
        out = [_text(line[:j])] if line[:j].strip() else []
        for m in msgs:
            out += self.show(m)
        if bad:
            for k, n in bad.items():
                self.counts[k] = self.counts.get(k, 0) + n
            frame = _text(line[j:])
            if len(frame) > 120:
                frame = frame[:120] + "..."
            out.append(f"?? bad frame ({', '.join(sorted(bad))}): {frame}")
        return out

    def show(self, m: dict) -> list[str]:
        """One decoded frame -> its line, after a note when it is the first
        frame of a new boot whose hello the console missed."""
        note = ""
        if m["t"] in _NODE_TYPES and m["t"] != "hello":
            note = self._boot(m["node"], m["boot"])
        line = self.format(m)
        return [f"{self._stamp(m['node'])} {note}", line] if note else [line]

    def _stamp(self, node: str) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self._now())) + " " + node

    def format(self, m: dict) -> str:
        """One decoded frame as a readable line."""
        t, node = m["t"], m["node"]
        head = self._stamp(node)
        if t in _NODE_TYPES:
            self.node = node
        if t == "hello":
            prev = self.boots.get(node)
            self.hellos[node] = m
            self.boots[node] = m["boot"]
            self._forget_lags(node)  # the channels may have changed
            note = " (new boot)" if prev is not None and prev != m["boot"] else ""
            chs = "; ".join(
                f"{c['name'] or i}: lags {','.join(map(str, c['lags']))} s={c['s']} "
                f"s0={c['s0']} ic={c['ic']}" for i, c in enumerate(m["ch"]))
            return (f"{head} hello{note}: board {m['board']} fw {m['fw']}, "
                    f"{m['period']} ms period, report every {m['every']}, "
                    f"caps {','.join(m['caps']) or '-'} | {chs}")
        if t == "report":
            rows = m["ch"]
            parts = []
            for i, row in enumerate(rows):
                c, k, coll = row[3], row[2], row[6]
                self._k[(node, i)] = k
                name = self._chname(node, i) + " " if len(rows) > 1 else ""
                parts.append(f"{name}c={c / 32768:.2f} τ={self._tau(node, i, k)}"
                             + (" collapsed" if coll else ""))
            extra = "".join(f" {k}={m[k]}" for k in ("drop", "miss") if m[k])
            return f"{head} {' | '.join(parts) or 'no channels'}{extra}"
        if t == "event":
            i = m["i"]
            h = self.hellos.get(node)
            name = self._chname(node, i) + " " if h is None or len(h["ch"]) > 1 else ""
            k = self._k.get((node, i))
            tau = "" if k is None else f" τ={self._tau(node, i, k)}"
            what = "COLLAPSE" if m["on"] else "collapse over"
            return f"{head} {name}c={m['c'] / 32768:.2f}{tau} {what}"
        if t == "pong":
            held = (m["t2"] - m["t1"]) & wire.M30
            sent = self.sent.pop(m["id"], None)
            if sent is not None:
                rtt = (self._mono() - sent[1]) * 1000
            else:  # not ours (or forgotten): t0 is a 30-bit ms tick
                rtt = float((self._tick() - m["t0"]) & wire.M30)
            return (f"{head} pong #{m['id']}: round trip {_ms(rtt)} "
                    f"(node tick {m['t1']}, held {held} ms)")
        if t == "ack":
            sent = self.sent.pop(m["id"], None)
            what = f" ({sent[0]})" if sent is not None else ""
            if not m["ok"]:
                return f"{head} ack #{m['id']}{what}: ERROR {m['err']}"
            rtt = f" in {_ms((self._mono() - sent[1]) * 1000)}" if sent is not None else ""
            return f"{head} ack #{m['id']}{what}: ok{rtt}"
        if t == "cmd":  # hub->node frames on the port: the REPL echoing one back
            return f"{head} <- cmd #{m['id']} {m['op']} {m['args']}"
        return f"{head} <- ping #{m['id']}"

    def _boot(self, node: str, boot: int) -> str:
        """A frame from a boot other than the one we know for this node (the
        board was reset and its hello missed: the port came back after the
        node had sent it): forget the old hello, whose lags would give wrong
        τ, and say so once.  "" when nothing changed."""
        prev = self.boots.get(node)
        self.boots[node] = boot
        if prev is None or prev == boot:
            return ""
        self._forget_lags(node)
        if self.hellos.pop(node, None) is None:
            return f"new boot {boot} (no hello seen yet: τ shown as lag#k until one)"
        return (f"new boot {boot}, its hello was missed: lags unknown, τ shown as lag#k "
                "until the next hello")

    def _forget_lags(self, node: str) -> None:
        for key in [key for key in self._k if key[0] == node]:
            del self._k[key]

    def _chname(self, node: str, i: int) -> str:
        h = self.hellos.get(node)
        if h is not None and i < len(h["ch"]) and h["ch"][i]["name"]:
            return h["ch"][i]["name"]
        return f"ch{i}"

    def _tau(self, node: str, i: int, k: int) -> str:
        """The dominant lag k in ms (lag x period, from the hello), or the
        index before a hello was seen."""
        h = self.hellos.get(node)
        if h is None or i >= len(h["ch"]) or k >= len(h["ch"][i]["lags"]):
            return f"lag#{k}"
        ms = h["ch"][i]["lags"][k] * h["period"]
        return f"{ms}ms" if ms < 10000 else f"{ms / 1000:.1f}s"

    # -- keyboard -> board ----------------------------------------------------
    def command(self, text: str) -> bytes:
        """A typed line -> the bytes to send.  A console command becomes a
        frame; any other line goes as typed + "\\r\\n".  CommandError (and
        nothing sent, no id used) for a console command with bad arguments."""
        text = text.rstrip("\r\n")
        if not self.is_command(text):
            return text.encode("utf-8") + b"\r\n"
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        op, args = self._parse(word, rest)
        mid = self._next_id()
        if op == "ping":  # the clock-sync ping: answered by a pong
            return self._send(self._head("ping", id=mid, t0=self._tick()), mid, text)
        return self._send(self._head("cmd", id=mid, op=op, args=args), mid, text)

    @staticmethod
    def is_command(text: str) -> bool:
        """Whether a typed line is a console command (else it is for the board)."""
        word, _, rest = text.rstrip("\r\n").partition(" ")
        return word in COMMANDS and not _PYTHON.match(rest.strip())

    def _parse(self, word: str, rest: str) -> tuple[str, dict]:
        words = rest.replace(",", " ").split()
        try:
            if word in ("ping", "reboot"):
                if rest:
                    raise CommandError(f"takes no arguments, got {rest!r}")
                return word, {}
            if word == "set":
                return "set", _set_args(rest.split())
            if word == "led":
                if rest not in ("on", "off", "1", "0"):
                    raise CommandError(f"expected on or off, got {rest or 'nothing'!r}")
                return "out", {"name": "led", "on": 1 if rest in ("on", "1") else 0}
            if word == "pixel":
                if len(words) != 3:
                    raise CommandError(f"expected 3 values (R G B), got {len(words)}")
                rgb = [_int(w, c, 0, 255) for w, c in zip(words, "RGB", strict=True)]
                return "out", {"name": "pixel", "rgb": rgb}
            if len(words) != 1:
                raise CommandError(f"expected one value, got {len(words)}")
            if word == "buzzer":
                freq = 0 if words[0] == "off" else _int(words[0], "HZ", 0, 65535)
                return "out", {"name": "buzzer", "freq": freq}
            return "out", {"name": "motor", "duty": _int(words[0], "DUTY", 0, 65535)}
        except CommandError as e:
            raise CommandError(f"{word}: {e} (usage: {USAGE[word]})") from None

    def _next_id(self) -> int:
        return (self._id % 65535) + 1  # 1..65535; committed by _send

    def _tick(self) -> int:
        return int(self._mono() * 1000) & wire.M30

    def _head(self, t: str, **fields) -> dict:
        node = self.target or self.node
        if node is None:
            raise CommandError("no node heard from yet: wait for one of its frames "
                               "(or name it: --node NAME)")
        return dict({"t": t, "node": node, "boot": self.boot, "seq": self.seq,
                     "tick": self._tick()}, **fields)

    def _send(self, msg: dict, mid: int, text: str) -> bytes:
        bad = wire.validate(msg)
        if bad:  # cannot happen for parsed commands; never send a bad frame
            raise CommandError(f"{text}: not a valid frame ({bad})")
        data = wire.encode_line(msg)
        self._id = mid
        self.seq = (self.seq + 1) & wire.M30
        self.sent[mid] = (text.strip(), self._mono())
        while len(self.sent) > _HOLD:
            del self.sent[next(iter(self.sent))]
        return data


def _set_args(words: list[str]) -> dict:
    """set [CH] KEY VALUE [KEY VALUE ...]: the value of lags may be spread
    over words ("2,4,8" or "2, 4, 8"); the node checks the values."""
    args: dict = {"ch": 0}
    if words and _INT.match(words[0]):
        args["ch"] = _int(words[0], "CH", 0, 7)
        words = words[1:]
    if not words:
        raise CommandError("nothing to set")
    i = 0
    while i < len(words):
        key = words[i]
        if key not in SET_KEYS:
            raise CommandError(f"cannot set {key!r} (settable: {', '.join(SET_KEYS)})")
        if key in args:
            raise CommandError(f"{key} given twice")
        j = i + 1
        while j < len(words) and words[j] not in SET_KEYS:
            j += 1
        vals = " ".join(words[i + 1: j]).replace(",", " ").split()
        if not vals:
            raise CommandError(f"{key} needs a value")
        if key == "lags":
            if len(vals) > 8:
                raise CommandError(f"lags: at most 8, got {len(vals)}")
            args[key] = [_int(v, "a lag", 1, 1024) for v in vals]
        else:
            if len(vals) != 1:
                raise CommandError(f"{key} takes one value, got {' '.join(vals)!r}")
            args[key] = _int(vals[0], key, -wire.M30, wire.M30)
        i = j
    return args


class Keys:
    """Keystrokes (or piped stdin) -> actions: ("line", text), ("send", bytes)
    for control keys that go to the board at once, ("echo", text) for the
    local echo (tty only), ("exit", None) for Ctrl-]."""

    _PASS = {"\x01", "\x02", "\x03", "\x04", "\x05"}  # MicroPython REPL controls

    def __init__(self, echo: bool) -> None:
        self.echo = echo
        self.buf = ""
        self._dec = codecs.getincrementaldecoder("utf-8")("replace")
        self._cr = False
        self._esc = 0  # 1 after ESC, 2 inside a CSI sequence

    def feed(self, data: bytes) -> list[tuple[str, object]]:
        out: list[tuple[str, object]] = []
        for ch in self._dec.decode(data):
            if self._esc:  # drop arrow keys and the like: this is a line editor
                if self._esc == 1 and ch in "[O":
                    self._esc = 2
                elif self._esc == 1 or "@" <= ch <= "~":
                    self._esc = 0
                continue
            cr, self._cr = self._cr, False
            if ch == EXIT_KEY:
                out.append(("exit", None))
                return out
            if ch in "\r\n":
                if ch == "\n" and cr:
                    continue  # the \n of a \r\n
                self._cr = ch == "\r"
                out.append(("line", self.buf))  # the caller ends or clears the echoed line
                self.buf = ""
            elif ch in ("\x7f", "\b"):
                if self.buf:
                    self.buf = self.buf[:-1]
                    if self.echo:
                        out.append(("echo", "\b \b"))
            elif ch == "\x1b":
                self._esc = 1
            elif ch in self._PASS:
                if ch == "\x03":
                    if self.echo and self.buf:
                        out.append(("echo", "^C\n"))
                    self.buf = ""
                out.append(("send", ch.encode()))
            elif ch == "\t" or ch >= " ":
                self.buf += ch
                if self.echo:
                    out.append(("echo", ch))
        return out


# -- ports --------------------------------------------------------------------
def discover() -> str:
    """The only USB serial device, or ConsoleError naming what there is."""
    from serial.tools import list_ports

    usb = [p for p in list_ports.comports() if p.vid is not None]
    if len(usb) == 1:
        return usb[0].device
    if not usb:
        raise ConsoleError("no USB serial device found; name the port "
                           "(becomingone console /dev/ttyACM0)")
    names = ", ".join(f"{p.device} ({p.description})" for p in usb)
    raise ConsoleError(f"{len(usb)} USB serial devices: {names}; name one "
                       "(becomingone console PORT)")


def _vid(path: str) -> int | None:
    from serial.tools import list_ports

    real = os.path.realpath(path)
    for p in list_ports.comports():
        if p.device in (path, real):
            return p.vid
    return None


def open_port(path: str, baud: int = 115200):
    """pyserial, non-blocking; USB-UART bridges opened with DTR/RTS
    released so that opening does not reset an ESP32 (as the hub does)."""
    import serial

    from hub.transports.serial import BRIDGES

    ser = serial.Serial()
    ser.port = path
    ser.baudrate = baud
    ser.timeout = 0
    ser.write_timeout = 2.0
    if _vid(path) in BRIDGES:
        ser.dtr = False
        ser.rts = False
    ser.open()
    return ser


def _why(e: BaseException) -> str:
    err = getattr(e, "errno", None)
    if isinstance(err, int) and err > 0:
        return os.strerror(err)
    s = str(e)
    if "returned no data" in s:  # pyserial's words for a vanished device
        return "device disconnected"
    m = re.search(r"\[Errno (\d+)\]", s)
    return os.strerror(int(m.group(1))) if m else s


def _isatty(f) -> bool:
    try:
        return os.isatty(f.fileno())
    except (AttributeError, OSError, ValueError):
        return False


# -- the terminal ---------------------------------------------------------------
class Screen:
    """Writes to stdout.  On a tty the current line shows the board's
    unfinished line (a prompt) followed by what the user is typing, and
    board lines are printed above it."""

    def __init__(self, out, tty: bool) -> None:
        self.out = out
        self.tty = tty
        self.enc = getattr(out, "encoding", None) or "utf-8"
        self._cur = ""  # what the current line shows

    def _w(self, s: str) -> None:
        b = s.encode(self.enc, "replace")
        buf = getattr(self.out, "buffer", None)
        if buf is not None:
            buf.write(b)
        else:
            self.out.write(s)
        self.out.flush()

    def lines(self, lines: list[str], board: str = "", typed: str = "") -> None:
        cur = board + typed
        if not lines and cur == self._cur:
            return
        if not self.tty:
            if lines:
                self._w("".join(line + "\n" for line in lines))
            return
        s = "\r\x1b[K" if self._cur else ""
        self._w(s + "".join(line + "\n" for line in lines) + cur)
        self._cur = cur

    def echo(self, s: str) -> None:
        if self.tty:
            self._w(s)
            self._cur = "" if s.endswith("\n") else self._cur + s

    def raw(self, data: bytes) -> None:
        buf = getattr(self.out, "buffer", None)
        if buf is not None:
            buf.write(data)
        else:
            self.out.write(data.decode("utf-8", "replace"))
        self.out.flush()

    def say(self, text: str, board: str = "", typed: str = "") -> None:
        self.lines([text], board, typed)


@contextlib.contextmanager
def _keyboard(fd: int, tty: bool):
    """Keys one at a time, no local echo, no signals (Ctrl-C is a byte for
    the board); output processing stays on.  Restored on the way out."""
    if not tty:
        yield
        return
    import termios

    old = termios.tcgetattr(fd)
    new = termios.tcgetattr(fd)
    new[0] &= ~(termios.IXON | termios.ICRNL | termios.INLCR | termios.IGNCR)
    new[3] &= ~(termios.ICANON | termios.ECHO | termios.ISIG | termios.IEXTEN)
    new[6][termios.VMIN] = 1
    new[6][termios.VTIME] = 0
    termios.tcsetattr(fd, termios.TCSANOW, new)
    try:
        yield
    finally:
        termios.tcsetattr(fd, termios.TCSAFLUSH, old)


BACKOFF = (0.2, 2.0)  # s between reopen attempts: doubling from, up to


def run(port: str | None = None, raw: bool = False, baud: int = 115200, node: str | None = None,
        stdin=None, stdout=None, opener=open_port) -> int:
    """The console loop; returns the exit status (0 on Ctrl-]).  ConsoleError
    if there is no port to open at the start; later losses are retried."""
    import serial

    stdin = sys.stdin if stdin is None else stdin
    stdout = sys.stdout if stdout is None else stdout
    if node is not None and wire.validate(
            {"t": "ping", "node": node, "boot": 0, "seq": 0, "tick": 0, "id": 0, "t0": 0}):
        raise ConsoleError(f"not a node id: {node!r} (1..32 of A-Z a-z 0-9 _ . -)")
    path = port or discover()
    try:
        ser = opener(path, baud)
    except (serial.SerialException, OSError, ValueError) as e:
        raise ConsoleError(f"cannot open {path}: {_why(e)}") from None
    fd = stdin.fileno()
    tty = os.isatty(fd)
    screen = Screen(stdout, tty and _isatty(stdout))
    con = Console(node=node)
    keys = Keys(echo=screen.tty)
    kb_open = True
    retry_at, delay = 0.0, BACKOFF[0]

    def show(lines: list[str]) -> None:
        screen.lines(lines, "" if raw else con.pending(), keys.buf)

    def lost(e: BaseException) -> None:
        nonlocal ser, retry_at, delay
        with contextlib.suppress(Exception):
            ser.close()
        ser = None
        if not raw:
            show(con.flush())
        show([f"console: {path} lost ({_why(e)}); reconnecting (Ctrl-] exits)"])
        retry_at, delay = time.monotonic() + BACKOFF[0], BACKOFF[0]

    def send(data: bytes) -> None:
        if ser is None:
            show([f"console: {path} is not connected; not sent"])
            return
        try:
            ser.write(data)
        except serial.SerialTimeoutException:
            show([f"console: {path}: write timed out; not sent"])
        except (serial.SerialException, OSError) as e:
            lost(e)

    show([f"console on {path} at {baud} baud{' (raw)' if raw else ''}; "
          "Ctrl-] exits, Ctrl-C goes to the board"])
    with _keyboard(fd, tty):
        while True:
            now = time.monotonic()
            if ser is None and now >= retry_at:
                try:
                    ser = opener(path, baud)
                    show([f"console: {path} reconnected"])
                except (serial.SerialException, OSError, ValueError):
                    delay = min(delay * 2, BACKOFF[1])
                    retry_at = now + delay
            fds = ([fd] if kb_open else []) + ([ser.fileno()] if ser is not None else [])
            wait = 0.5 if ser is not None else max(0.0, min(0.5, retry_at - now))
            try:
                ready, _, _ = select.select(fds, [], [], wait)
            except InterruptedError:
                continue
            if ser is not None and ser.fileno() in ready:
                try:
                    data = ser.read(4096)
                except (serial.SerialException, OSError, TypeError) as e:
                    lost(e)
                    data = b""
                if data and raw:
                    screen.raw(data)
                    con.feed(data)  # not shown: learns the node, times the pongs
                elif data:
                    show(con.feed(data))
            if fd in ready:
                chunk = os.read(fd, 1024)
                if not chunk:
                    kb_open = False  # stdin ended: keep showing the board
                    continue
                for what, arg in keys.feed(chunk):
                    if what == "exit":
                        if screen.tty:
                            screen.echo("\n")
                        if ser is not None:
                            ser.close()
                        return 0
                    if what == "echo":
                        screen.echo(arg)
                    elif what == "send":
                        send(arg)
                    elif what == "line":
                        if raw or con.is_command(arg):
                            screen.echo("\n")  # keep the command on screen
                        else:
                            show([])  # REPL input: the board echoes it after its prompt
                        try:
                            data = con.command(arg)
                        except CommandError as e:
                            show([f"console: {e}; not sent"])
                            continue
                        send(data)
                        show([])
