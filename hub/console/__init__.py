"""A terminal console on a node's USB serial port: ``becomingone console [PORT]``.

What the board prints is shown line by line: ``@K1`` frames decoded into
readable lines, everything else (the REPL, log lines, tracebacks) untouched.
A typed line is a console command when its first word is one of

    ping                      a clock-sync ping; the pong shows the round trip
    hello                     the node sends its hello again (the console also
                              asks by itself when it sees a boot whose hello it missed)
    set [CH] KEY VALUE ...    channel parameters (CH 0 if omitted), e.g.
                              set lags 2,4,8    set 1 lags 3,6,12 ic 20000    set s 6
    led on|off                pixel R G B       buzzer HZ       motor DUTY
    reboot

and anything else is sent to the board as typed, plus "\\r\\n" (REPL input).
Ctrl-C goes to the board (\\x03), Ctrl-] leaves the console.  The port is
reopened with backoff when it goes away (a board reset, an unplug).

The logic is terminal-free and testable: Console.feed(bytes) -> lines to
show, Console.command(text) -> bytes to send (CommandError for a bad one),
both in becomingone.console.frames; Keys.feed(bytes) -> what the keyboard asked
for.  run() is the terminal loop around them.  docs/console.md.
"""

from __future__ import annotations

import codecs
import contextlib
import os
import re
import select
import sys
import time

from becomingone.console.frames import CommandError, Console
from becomingone.errors import BecomingOneError
from kairos import wire

EXIT_KEY = "\x1d"  # Ctrl-]
CTRL_C = b"\x03"


class ConsoleError(BecomingOneError):
    """Cannot run the console (no port, port missing): one line for the user."""


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

    from becomingone.transports.serial import BRIDGES

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
    con.ask_hello = not raw  # raw shows bytes unchanged and sends only what is typed
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
                    for frame in con.take():  # a hello asked for (a boot we came late to)
                        send(frame)
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
