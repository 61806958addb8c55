"""The serial link: frames as `@K1 ...` lines on the USB console (or, on a
Pi, a UART / USB-gadget tty).  REPL chatter on the same port is harmless:
the hub skips lines without the marker.  Commands arrive as lines too and
are read without blocking."""
import sys

from kairos import wire

from .link import Link

try:
    import select
except ImportError:  # a port without select: write-only console
    select = None


class SerialLink(Link):
    name = "serial"
    codec = "line"

    def __init__(self, cfg, node, clock, rand, say=print):
        Link.__init__(self, cfg, node, clock, rand, say)
        self._dec = wire.LineDecoder(2048)  # commands are < 2 kB; bounds what garbage costs
        self.rejects = self._dec.counts
        ser = cfg.get("serial", {})
        self._port = ser.get("port")
        self._baud = ser.get("baud", 115200)
        self._fd = None
        self._out = getattr(sys.stdout, "buffer", sys.stdout)
        self._poller = None

    def _open(self):
        if self._port:
            self._fd = _open_tty(self._port, self._baud)
            self._out = None
        if select is not None:
            self._poller = select.poll()
            src = self._fd if self._fd is not None else sys.stdin
            try:
                self._poller.register(src, select.POLLIN)
            except (OSError, ValueError, TypeError, AttributeError):
                self._poller = None  # stdin is not pollable here (a test VM)

    def _close(self):
        if self._fd is not None:
            import os

            os.close(self._fd)
            self._fd = None

    def _write(self, kind, data):
        if self._fd is not None:
            import os

            view = memoryview(data)
            while view:
                n = os.write(self._fd, view)
                view = view[n:]
        else:
            self._out.write(data if self._out is not sys.stdout else bytes(data).decode())
        return 0

    def _ready(self):
        # MicroPython's ipoll() reuses its result; poll() would allocate a
        # list on every call, and this runs between every two samples.
        p = self._poller
        if p is None:
            return False
        if hasattr(p, "ipoll"):
            for _ in p.ipoll(0):
                return True
            return False
        return bool(p.poll(0))

    def _poll(self):
        while self._ready():
            chunk = self._read()
            if not chunk:
                self._poller = None  # end of input: nothing more will come
                return
            for msg in self._dec.feed(chunk):
                self._accept(msg, self.node)

    def _read(self):
        if self._fd is not None:
            import os

            return os.read(self._fd, 256)
        c = sys.stdin.read(1)  # one char: never blocks after poll() said so
        return c.encode() if isinstance(c, str) else c


def _open_tty(path, baud):
    """A raw, non-blocking tty on CPython (a Pi's UART or USB gadget)."""
    import os
    import termios
    import tty

    fd = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(fd)
    attrs = termios.tcgetattr(fd)
    speed = getattr(termios, "B%d" % baud)
    attrs[4] = attrs[5] = speed
    termios.tcsetattr(fd, termios.TCSANOW, attrs)
    return fd
