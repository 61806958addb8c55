"""A minimal MQTT 3.1.1 client for the node firmware.

Runs unmodified on MicroPython (ESP32, Pico W) and CPython (Pi Zero, sim):
only socket, select, time and errno; no typing, no f-strings, no asyncio.
After connect() the socket is non-blocking and every wait is bounded, so the
node's main loop calls poll() often and never hangs on the network.

QoS 0 and 1 only.  publish() never waits for the PUBACK: the broker's ack
arrives later through poll() and is reported to on_puback(pid), so the link
layer keeps its own table of unacknowledged frames.  Errors close the socket
and raise OSError (MQTTError is one); connected() then returns False and the
caller reconnects with connect().
"""
import errno
import select
import socket
import time

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# MicroPython has wrap-aware ticks; CPython gets the same 30-bit circle.
try:
    _ticks_ms = time.ticks_ms
    _ticks_diff = time.ticks_diff
except AttributeError:  # CPython

    def _ticks_ms():
        return (time.monotonic_ns() // 1000000) & 0x3FFFFFFF

    def _ticks_diff(a, b):
        # Signed a - b, correct across the 2**30 wrap.
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


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

_TX_SIZE = const(256)  # small packets are assembled here and sent in one write

# Non-blocking sockets report "try again" as one of these.
_WOULD_BLOCK = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN), errno.ETIMEDOUT)

_REFUSED = (
    None,
    "unacceptable protocol version",
    "identifier rejected",
    "server unavailable",
    "bad user name or password",
    "not authorised",
)


class MQTTError(OSError):
    pass


def _bytes(s):
    # Topics and payloads may be str or any bytes-like object.
    if isinstance(s, str):
        return s.encode()
    return s


def _would_block(e):
    return bool(e.args) and e.args[0] in _WOULD_BLOCK


class MQTTClient:
    # Largest incoming packet (remaining length); anything bigger is an error
    # because the whole packet must fit in the receive buffer.
    MAX_PACKET = 4096

    on_message = None  # callable(topic: bytes, payload: bytes)
    on_puback = None  # callable(pid: int)

    def __init__(self, client_id, host, port=1883, user=None, password=None, keepalive=30):
        self.client_id = _bytes(client_id)
        self.host = host
        self.port = port
        self.user = None if user is None else _bytes(user)
        self.password = None if password is None else _bytes(password)
        self.keepalive = keepalive
        self.timeout_ms = 5000
        self._sock = None
        self._poller = None
        self._pid = 0
        # Buffers are allocated once; the receive buffer holds one full packet.
        self._tx = bytearray(_TX_SIZE)
        self._txmv = memoryview(self._tx)
        self._rx = bytearray(self.MAX_PACKET + 5)
        self._rxmv = memoryview(self._rx)
        self._rlen = 0  # bytes held in _rx
        self._hlen = 0  # fixed-header length of the packet at _rx[0]
        self._last_tx = 0
        self._last_rx = 0
        self._ping_out = False
        self._connack = None
        self._suback = None

    # ------------------------------------------------------------------ state

    def connected(self):
        return self._sock is not None

    def _drop(self):
        # Forget the socket; used on every error so connected() tells the truth.
        s = self._sock
        self._sock = None
        self._poller = None
        self._rlen = 0
        if s is not None:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                s.close()
            except OSError:
                pass

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
        now = _ticks_ms()
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
            wtopic = _bytes(wtopic)
            wmsg = _bytes(wmsg)
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
        topic = _bytes(topic)
        payload = _bytes(payload)
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
        topic = _bytes(topic)
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
        now = _ticks_ms()
        # Dead if the broker has been silent for 1.5 keepalives despite pings.
        if _ticks_diff(now, self._last_rx) > ka * 1500:
            raise MQTTError("keepalive timeout: broker silent")
        # Ping after half a keepalive of silence in either direction: the
        # broker sees us alive, and its PINGRESP proves it is alive too.
        half = ka * 500
        if not self._ping_out and (
            _ticks_diff(now, self._last_tx) >= half or _ticks_diff(now, self._last_rx) >= half
        ):
            self._write(bytes((_PINGREQ, 0)))
            self._ping_out = True

    # -------------------------------------------------------------- receiving

    def _wait(self, ptype, timeout_ms, what):
        # Handle packets until one of type ptype arrives, bounded by timeout_ms.
        start = _ticks_ms()
        while True:
            while True:
                t = self._read_one()
                if not t:
                    break
                if t == ptype:
                    return
            left = timeout_ms - _ticks_diff(_ticks_ms(), start)
            if left <= 0:
                raise MQTTError("timeout: " + what + " within " + str(timeout_ms) + " ms")
            self._poller.poll(left)

    def _read_one(self):
        # Handle one complete packet if there is one; return its type or 0.
        total = self._parse()
        if not total:
            self._fill()
            total = self._parse()
            if not total:
                return 0
        return self._handle(total)

    def _fill(self):
        # Append whatever the socket has to _rx, without waiting.
        n = self._rlen
        sock = self._sock
        if sock is None or n >= len(self._rx):
            return  # closed by a callback, or full (_parse rejects that)
        try:
            if hasattr(sock, "recv_into"):
                r = sock.recv_into(self._rxmv[n:])  # CPython
            else:
                r = sock.readinto(self._rxmv[n:])  # MicroPython: None = no data
        except OSError as e:
            if _would_block(e):
                return
            raise
        if r is None:
            return
        if r == 0:
            raise MQTTError("connection closed by broker")
        self._rlen = n + r

    def _parse(self):
        # Length of the complete packet at _rx[0], or 0 while it is incomplete.
        n = self._rlen
        rx = self._rx
        rl = 0
        shift = 0
        i = 1
        while True:
            if i >= n:
                return 0
            b = rx[i]
            rl |= (b & 0x7F) << shift
            i += 1
            if not b & 0x80:
                break
            shift += 7
            if shift > 21:
                raise MQTTError("malformed remaining length")
        if rl > self.MAX_PACKET:
            raise MQTTError("incoming packet too large: " + str(rl) + " bytes")
        if i + rl > n:
            return 0
        self._hlen = i
        return i + rl

    def _consume(self, total):
        # Drop the handled packet, keeping any bytes of the next one.
        rest = self._rlen - total
        if rest:
            self._rx[0:rest] = self._rx[total : self._rlen]
        self._rlen = rest

    def _handle(self, total):
        rx = self._rx
        first = rx[0]
        ptype = first & 0xF0
        i = self._hlen
        self._last_rx = _ticks_ms()
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

    # ---------------------------------------------------------------- sending

    def _begin(self, first, rlen):
        # Fixed header: type byte and the variable-length remaining length.
        tx = self._tx
        tx[0] = first
        i = 1
        while True:
            b = rlen & 0x7F
            rlen >>= 7
            if rlen:
                b |= 0x80
            tx[i] = b
            i += 1
            if not rlen:
                return i

    def _put(self, i, data):
        # Copy into _tx if it fits; otherwise flush and send data directly.
        n = len(data)
        if i + n <= _TX_SIZE:
            self._txmv[i : i + n] = data
            return i + n
        self._flush(i)
        self._write(data)
        return 0

    def _put16(self, i, v):
        # Big-endian 16-bit field; callers keep i small enough for it to fit.
        self._tx[i] = v >> 8
        self._tx[i + 1] = v & 0xFF
        return i + 2

    def _put_str(self, i, data):
        # Length-prefixed field; flush first so the prefix and one more byte fit.
        if i + 3 > _TX_SIZE:
            self._flush(i)
            i = 0
        return self._put(self._put16(i, len(data)), data)

    def _flush(self, i):
        if i:
            self._write(self._txmv[:i])

    def _write(self, data):
        # Send all of data, waiting (bounded) whenever the socket is full.
        sock = self._sock
        mv = memoryview(data)
        n = len(mv)
        off = 0
        start = _ticks_ms()
        while off < n:
            try:
                w = sock.send(mv[off:])
            except OSError as e:
                if not _would_block(e):
                    raise
                w = 0
            if w:
                off += w
                continue
            left = self.timeout_ms - _ticks_diff(_ticks_ms(), start)
            if left <= 0:
                raise MQTTError("timeout: send stalled for " + str(self.timeout_ms) + " ms")
            self._poller.modify(sock, select.POLLOUT)
            self._poller.poll(left)
            self._poller.modify(sock, select.POLLIN)
        self._last_tx = _ticks_ms()
