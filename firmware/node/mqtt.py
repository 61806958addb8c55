"""A minimal MQTT 3.1.1 client for the node firmware.

Runs unmodified on MicroPython (ESP32, Pico W) and CPython (Pi Zero, sim):
only socket, select, time and errno; no typing, no f-strings, no asyncio.
After connect() the socket is non-blocking and every wait is bounded, so the
node's main loop calls poll() often and never hangs on the network.

The byte level (buffers, bounded writes and waits that call on_wait()
so the node can feed its watchdog) is node.mqtt_io.

QoS 0 and 1 only.  publish() never waits for the PUBACK: the broker's ack
arrives later through poll() and is reported to on_puback(pid), so the link
layer keeps its own table of unacknowledged frames.  Errors close the socket
and raise OSError (MQTTError is one); connected() then returns False and the
caller reconnects with connect().
"""
import select
import socket

from .mqtt_io import Io, MQTTError, const, ticks_diff, ticks_ms, to_bytes

# Packet types (high nibble of the first byte).
_CONNECT = const(0x10)
_CONNACK = const(0x20)
_PUBLISH = const(0x30)
_PUBACK = const(0x40)
_SUBSCRIBE = const(0x82)  # SUBSCRIBE's reserved flags must be 0b0010
_SUBACK = const(0x90)
_PINGREQ = const(0xC0)
_PINGRESP = const(0xD0)
_DISCONNECT = const(0xE0)

_REFUSED = (
    None,
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorised",
)


class MQTTClient(Io):
    # Largest incoming packet (remaining length); anything bigger is an error
    # because the whole packet must fit in the receive buffer.  The node only
    # receives commands (< 2 kB as JSON), so 2 kB is plenty.
    MAX_PACKET = 2048

    on_message = None  # callable(topic: bytes, payload: bytes)
    on_puback = None  # callable(pid: int)

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30):
        self.client_id = to_bytes(client_id)
        self.host = host
        self.port = port
        self.user = None if user is None else to_bytes(user)
        self.password = None if password is None else to_bytes(password)
        self.keepalive = keepalive
        Io.__init__(self, self.MAX_PACKET)
        self._pid = 0
        self._ping_out = False
        self._connack = None
        self._suback = None

    # ------------------------------------------------------------------ state

    def connected(self):
        return self._sock is not None

    def _next_pid(self):
        # 1..65535 then back to 1: 0 is not a valid packet identifier.
        self._pid = self._pid % 65535 + 1
        return self._pid

    # ---------------------------------------------------------------- connect

    def connect(self, clean_session=False, will=None, timeout_ms=5000):
        self._drop()
        self.timeout_ms = timeout_ms
        self._open(timeout_ms)
        try:
            self._send_connect(clean_session, will)
            self._connack = None
            self._wait(_CONNACK, timeout_ms, "no CONNACK")
            flags, rc = self._connack
            if rc:
                reason = _REFUSED[rc] if rc < len(_REFUSED) else "code " + str(rc)
                raise MQTTError("connection refused: " + reason)
        except BaseException:
            self._drop()
            raise
        return bool(flags & 1)

    def _open(self, timeout_ms):
        # Blocking TCP connect with a timeout, then non-blocking for good.
        # The one wait that can't call on_wait(): keep timeout_ms below the
        # watchdog's timeout.
        if self.on_wait is not None:
            self.on_wait()
        where = str(self.host) + ":" + str(self.port)
        try:
            ai = socket.getaddrinfo(self.host, self.port, 0, socket.SOCK_STREAM)[0]
            sock = socket.socket(ai[0], ai[1], ai[2])
        except OSError as e:
            raise MQTTError("cannot resolve " + where + ": " + str(e)) from e
        try:
            sock.settimeout(timeout_ms / 1000)
            sock.connect(ai[-1])
            sock.setblocking(False)
        except OSError as e:
            sock.close()
            raise MQTTError("cannot connect to " + where + ": " + str(e)) from e
        self._nodelay(sock)
        self._sock = sock
        self._poller = select.poll()
        self._poller.register(sock, select.POLLIN)
        self._rlen = 0
        self._ping_out = False
        now = ticks_ms()
        self._last_tx = now
        self._last_rx = now

    @staticmethod
    def _nodelay(sock):
        # Nagle would hold back a QoS 1 PUBACK or a split packet; not every
        # port has the option, and it is only an optimisation.
        opt = getattr(socket, "TCP_NODELAY", None)
        if opt is not None:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                sock.setsockopt(socket.IPPROTO_TCP, opt, 1)
            except (OSError, AttributeError):
                pass

    def _send_connect(self, clean_session, will):
        cid = self.client_id
        n = 10 + 2 + len(cid)
        flags = 0x02 if clean_session else 0
        if will is not None:
            wtopic, wmsg, wqos, wretain = will
            wtopic = to_bytes(wtopic)
            wmsg = to_bytes(wmsg)
            if wqos not in (0, 1, 2):
                raise ValueError("will qos")
            n += 4 + len(wtopic) + len(wmsg)
            flags |= 0x04 | (wqos << 3) | (0x20 if wretain else 0)
        if self.user is not None:
            n += 2 + len(self.user)
            flags |= 0x80
            if self.password is not None:
                n += 2 + len(self.password)
                flags |= 0x40
        ka = self.keepalive
        i = self._begin(_CONNECT, n)
        i = self._put(i, b"\x00\x04MQTT\x04")  # protocol name and level 4 (3.1.1)
        self._tx[i] = flags
        i = self._put16(i + 1, ka)
        i = self._put_str(i, cid)
        if will is not None:
            i = self._put_str(i, wtopic)
            i = self._put_str(i, wmsg)
        if flags & 0x80:
            i = self._put_str(i, self.user)
        if flags & 0x40:
            i = self._put_str(i, self.password)
        self._flush(i)

    # ------------------------------------------------------------- operations

    def publish(self, topic, payload, qos=0, retain=False):
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        self._check()
        topic = to_bytes(topic)
        payload = to_bytes(payload)
        pid = self._next_pid() if qos else 0
        n = 2 + len(topic) + len(payload) + (2 if qos else 0)
        try:
            i = self._begin(_PUBLISH | (qos << 1) | (1 if retain else 0), n)
            i = self._put_str(i, topic)
            if qos:
                i = self._put16(i, pid)
            i = self._put(i, payload)
            self._flush(i)
        except BaseException:
            # A half-written packet desynchronises the stream: start over.
            self._drop()
            raise
        return pid

    def subscribe(self, topic, qos=1):
        if qos not in (0, 1):
            raise ValueError("qos must be 0 or 1")
        self._check()
        topic = to_bytes(topic)
        pid = self._next_pid()
        try:
            i = self._begin(_SUBSCRIBE, 2 + 2 + len(topic) + 1)
            i = self._put16(i, pid)
            i = self._put_str(i, topic)
            self._tx[i] = qos  # fits: _put_str leaves room for one byte
            self._flush(i + 1)
            self._suback = None
            # Other packets (PUBLISH, PUBACK) are handled while we wait.
            while True:
                self._wait(_SUBACK, self.timeout_ms, "no SUBACK")
                if self._suback[0] == pid:
                    break
        except BaseException:
            self._drop()
            raise
        if self._suback[1] & 0x80:
            raise MQTTError("subscription refused: " + str(topic))

    def poll(self):
        self._check()
        try:
            while self._read_one():
                pass
            self._keepalive()
        except BaseException:
            self._drop()
            raise

    def disconnect(self):
        # DISCONNECT tells the broker to discard the will.
        if self._sock is not None:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                self._write(bytes((_DISCONNECT, 0)))
            except OSError:
                pass
        self._drop()

    def close(self):
        # No DISCONNECT: the broker publishes the will.
        self._drop()

    def _check(self):
        if self._sock is None:
            raise MQTTError("not connected")

    def _keepalive(self):
        ka = self.keepalive
        if not ka or self._sock is None:
            return
        now = ticks_ms()
        # Dead if the broker has been silent for 1.5 keepalives despite pings.
        if ticks_diff(now, self._last_rx) > ka * 1500:
            raise MQTTError("keepalive timeout: broker silent")
        # Ping after half a keepalive of silence in either direction: the
        # broker sees us alive, and its PINGRESP proves it is alive too.
        half = ka * 500
        if not self._ping_out and (
            ticks_diff(now, self._last_tx) >= half or ticks_diff(now, self._last_rx) >= half
        ):
            self._write(bytes((_PINGREQ, 0)))
            self._ping_out = True

    # -------------------------------------------------------------- receiving

    def _wait(self, ptype, timeout_ms, what):
        # Handle packets until one of type ptype arrives, bounded by timeout_ms.
        start = ticks_ms()
        while True:
            while True:
                t = self._read_one()
                if not t:
                    break
                if t == ptype:
                    return
            left = timeout_ms - ticks_diff(ticks_ms(), start)
            if left <= 0:
                raise MQTTError("timeout: " + what + " within " + str(timeout_ms) + " ms")
            self._pause(left)

    def _read_one(self):
        # Handle one complete packet if there is one; return its type or 0.
        total = self._parse()
        if not total:
            self._fill()
            total = self._parse()
            if not total:
                return 0
        return self._handle(total)

    def _handle(self, total):
        rx = self._rx
        first = rx[0]
        ptype = first & 0xF0
        i = self._hlen
        self._last_rx = ticks_ms()
        if ptype == _PUBLISH:
            self._on_publish(first, i, total)
        elif ptype == _PUBACK:
            pid = (rx[i] << 8) | rx[i + 1]
            self._consume(total)
            if self.on_puback is not None:
                self.on_puback(pid)
        elif ptype == _PINGRESP:
            self._ping_out = False
            self._consume(total)
        elif ptype == _SUBACK:
            self._suback = ((rx[i] << 8) | rx[i + 1], rx[i + 2])
            self._consume(total)
        elif ptype == _CONNACK:
            self._connack = (rx[i], rx[i + 1])
            self._consume(total)
        else:
            # UNSUBACK, or QoS 2 flows we never ask for: ignore.
            self._consume(total)
        return ptype

    def _on_publish(self, first, i, total):
        rx = self._rx
        qos = (first >> 1) & 3
        tlen = (rx[i] << 8) | rx[i + 1]
        i += 2
        topic = bytes(self._rxmv[i : i + tlen])
        i += tlen
        pid = 0
        if qos:
            pid = (rx[i] << 8) | rx[i + 1]
            i += 2
        payload = bytes(self._rxmv[i:total])
        # Consume before the callback so an exception there cannot replay it.
        self._consume(total)
        if self.on_message is not None:
            self.on_message(topic, payload)
        # Ack only after the application has the message (at least once).
        if qos == 1 and self._sock is not None:
            self._write(bytes((_PUBACK, 2, pid >> 8, pid & 0xFF)))
