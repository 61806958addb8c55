"""Serial ports: `@K1 ...` lines from nodes on USB (or a Pi's UART / pty).

One reader thread per port, pyserial with a short read timeout, one
wire.LineDecoder per open (REPL chatter and tracebacks between frames are
skipped and counted as "noise").  Unplug, replug and board resets are
survived: on SerialException / OSError the port is closed and reopened
with backoff ([serial] backoff_min doubling up to backoff_max: 0.2 s to 5 s
by default).  With "ports": "auto" a discovery
thread lists the USB serial ports of the usual MCU vendors every few
seconds and starts a reader for each new one; a reader of a discovered
port ends when its port is gone (discovery starts it again on return).
"""

from __future__ import annotations

import contextlib
import threading
from typing import Any

import serial
import serial.tools.list_ports

from becomingone.transports.base import Log, Reject, Sink, Transport, TransportError
from kairos import wire

# USB vendor ids of boards that run nodes.
VIDS = {
    0x303A: "Espressif",
    0x10C4: "Silicon Labs",
    0x1A86: "WCH",
    0x0403: "FTDI",
    0x2E8A: "Raspberry Pi",
}
# USB-UART bridges wire DTR/RTS to the ESP32's EN/IO0 auto-reset circuit:
# open with both released so opening the port does not reset the board or
# hold it in the bootloader (as mpremote does).  Native USB (Espressif,
# RP2040) keeps pyserial's defaults: MicroPython's TinyUSB console only
# sends while DTR is asserted.
BRIDGES = {0x10C4, 0x1A86, 0x0403}
DISCOVER_EVERY = 2.0  # s between port scans in "auto"
READ_TIMEOUT = 0.1  # s: how quickly a reader notices stop()


def discover() -> dict[str, int]:
    """USB serial ports of known MCU vendors: device path -> VID."""
    out = {}
    for p in serial.tools.list_ports.comports():
        if p.vid in VIDS:
            out[p.device] = p.vid
    return out


class _Port:
    """One port's state; its reader thread owns `ser` (send() borrows it)."""

    def __init__(self, path: str, vid: int | None) -> None:
        self.path = path
        self.vid = vid
        self.ser: serial.Serial | None = None
        self.wlock = threading.Lock()
        self.opens = 0
        self.thread: threading.Thread | None = None


class SerialTransport(Transport):
    kind = "serial"
    e2e = True  # gots go out as lines, like commands

    def __init__(self, cfg: dict[str, Any], sink: Sink, log: Log = print,
                 reject: Reject | None = None) -> None:
        super().__init__(cfg, sink, log, reject)
        # The [serial] section: every key is there (config.DEFAULTS has the defaults).
        ports = self.cfg["ports"]
        self.auto = ports == "auto"
        self.baud = int(self.cfg["baud"])
        self.backoff = (float(self.cfg["backoff_min"]), float(self.cfg["backoff_max"]))
        self._ports: dict[str, _Port] = {}
        if not self.auto:
            if isinstance(ports, str):
                ports = [ports]
            for path in ports:
                self._ports[path] = _Port(path, None)

    def start(self) -> None:
        super().start()
        if self.auto:
            self._spawn(self._discover, name="hub-serial-discover")
        else:
            for port in list(self._ports.values()):
                self._start_reader(port)

    def _start_reader(self, port: _Port) -> None:
        port.thread = self._spawn(self._reader, port, name="hub-serial:" + port.path)

    # -- discovery ---------------------------------------------------------
    def _discover(self) -> None:
        while not self._stop.is_set():
            try:
                found = discover()
            except Exception as e:  # noqa: BLE001 - e.g. no /sys here
                self._say_once("discover", f"serial: cannot list ports: {e!r}")
                found = {}
            if not found and not self._ports:
                self._say_once("none", "serial: no USB serial ports of known boards yet")
            for path, vid in found.items():
                self._unsay("none")
                with self._lock:
                    port = self._ports.get(path)
                    if port is None:
                        port = self._ports[path] = _Port(path, vid)
                alive = port.thread is not None and port.thread.is_alive()
                if not alive and not self._stop.is_set():
                    self.log(f"serial: found {path} ({VIDS.get(vid, '?')})")
                    self._start_reader(port)
            with self._lock:
                self._threads = [t for t in self._threads if t.is_alive()]
            self._stop.wait(DISCOVER_EVERY)

    # -- the reader thread -----------------------------------------------
    def _open(self, port: _Port) -> serial.Serial:
        ser = serial.Serial()
        ser.port = port.path
        ser.baudrate = self.baud
        ser.timeout = READ_TIMEOUT
        ser.write_timeout = 1.0
        if port.vid in BRIDGES:
            ser.dtr = False
            ser.rts = False
        ser.open()
        return ser

    def _reader(self, port: _Port) -> None:
        delay = self.backoff[0]
        key = "port:" + port.path
        source = "serial:" + port.path
        while not self._stop.is_set():
            try:
                ser = self._open(port)
            except (serial.SerialException, OSError) as e:
                self._say_once(key, f"serial: {port.path} unavailable ({e}); retrying")
                if self.auto and port.path not in _quiet_discover():
                    return  # unplugged: discovery restarts this reader on return
                self._stop.wait(delay)
                delay = min(delay * 2, self.backoff[1])
                continue
            with self._lock:  # counted before it shows as open (status() reads both)
                port.opens += 1
                if port.opens > 1:
                    self.reconnects += 1
            with port.wlock:
                port.ser = ser
            self._unsay(key)
            self.log(f"serial: {port.path} open")
            delay = self.backoff[0]
            # A fresh decoder: a cut line is not glued.  It checks the MACs.
            dec = wire.LineDecoder(auth=self._auth(source))
            try:
                while not self._stop.is_set():
                    data = ser.read(ser.in_waiting or 1)
                    if not data:
                        continue
                    for msg in dec.feed(data):
                        self._deliver(msg, source, port)
                    if dec.counts:
                        counts, dec.counts = dec.counts, {}
                        self._merge(counts, source)
            except (serial.SerialException, OSError, TypeError) as e:
                # TypeError: seen from pyserial on a device that vanished mid-read.
                if not self._stop.is_set():
                    self.log(f"serial: {port.path} lost ({e}); reopening")
            finally:
                with port.wlock:
                    port.ser = None
                with contextlib.suppress(serial.SerialException, OSError):
                    ser.close()

    # -- I/O for the base class ---------------------------------------------
    def _send(self, route: Any, msg: dict) -> None:
        port: _Port = route
        data = wire.encode_line(msg)
        with port.wlock:
            if port.ser is None:
                raise TransportError(f"serial: {port.path} is not open")
            try:
                port.ser.write(data)
                port.ser.flush()
            except serial.SerialException as e:
                raise TransportError(f"serial: write to {port.path}: {e}") from e

    def _status(self) -> dict:
        with self._lock:
            ports = {p.path: {"open": p.ser is not None, "opens": p.opens}
                     for p in self._ports.values()}
        return {"connected": any(p["open"] for p in ports.values()), "ports": ports,
                "auto": self.auto}


def _quiet_discover() -> dict[str, int]:
    try:
        return discover()
    except Exception:  # noqa: BLE001
        return {}
