"""The byte side of the node's MQTT client (node.mqtt): one preallocated
transmit buffer that small packets are assembled in, one receive buffer that
holds a whole incoming packet, and writes and waits that are bounded and
call on_wait() (the link feeds the watchdog there) at least every
_SLICE_MS.  Only errno, select and time: MicroPython and CPython alike.
"""
import errno
import select
import time

try:
    from micropython import const
except ImportError:  # CPython

    def const(x):
        return x


# MicroPython has wrap-aware ticks; CPython gets the same 30-bit circle.
try:
    ticks_ms = time.ticks_ms
    ticks_diff = time.ticks_diff
except AttributeError:  # CPython

    def ticks_ms():
        return (time.monotonic_ns() // 1000000) & 0x3FFFFFFF

    def ticks_diff(a, b):
        # Signed a - b, correct across the 2**30 wrap.
        return ((a - b + 0x20000000) & 0x3FFFFFFF) - 0x20000000


TX_SIZE = const(256)  # small packets are assembled here and sent in one write
_SLICE_MS = const(250)  # the longest wait between two on_wait() calls

# Non-blocking sockets report "try again" as one of these.
_WOULD_BLOCK = (errno.EAGAIN, getattr(errno, "EWOULDBLOCK", errno.EAGAIN), errno.ETIMEDOUT)


class MQTTError(OSError):
    pass


def to_bytes(s):
    # Topics and payloads may be str or any bytes-like object.
    if isinstance(s, str):
        return s.encode()
    return s


def _would_block(e):
    return bool(e.args) and e.args[0] in _WOULD_BLOCK


class Io:
    """Buffers and bounded socket I/O; MQTTClient adds the protocol."""

    MAX_PACKET = 4096  # largest incoming packet (remaining length) accepted
    on_wait = None  # callable(): called during every wait, at least each _SLICE_MS

    def __init__(self, max_packet):
        self.MAX_PACKET = max_packet
        self.timeout_ms = 5000
        self._sock = None
        self._poller = None
        # Buffers are allocated once; the receive buffer holds one full packet.
        self._tx = bytearray(TX_SIZE)
        self._txmv = memoryview(self._tx)
        self._rx = bytearray(max_packet + 5)
        self._rxmv = memoryview(self._rx)
        self._rlen = 0  # bytes held in _rx
        self._hlen = 0  # fixed-header length of the packet at _rx[0]
        self._last_tx = 0
        self._last_rx = 0
        self._skip = 0  # bytes of an oversize packet still to discard
        self.oversize = 0  # incoming packets too big for the buffer, skipped

    def _pause(self, left):
        # Wait for the socket (poller as set up), at most `left` ms, calling
        # on_wait() first: a long wait is many short ones.
        if self.on_wait is not None:
            self.on_wait()
        self._poller.poll(left if left < _SLICE_MS else _SLICE_MS)

    def _drop(self):
        # Forget the socket; used on every error so connected() tells the truth.
        s = self._sock
        self._sock = None
        self._poller = None
        self._rlen = 0
        self._skip = 0
        if s is not None:
            try:  # noqa: SIM105 (no contextlib on MicroPython)
                s.close()
            except OSError:
                pass

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
        skip = self._skip
        if skip:  # discarding an oversize packet (n is 0 meanwhile)
            self._last_rx = ticks_ms()
            if r <= skip:
                self._skip = skip - r
                return
            self._rx[0 : r - skip] = self._rx[skip:r]
            self._skip = 0
            r -= skip
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
            return self._too_big(i, rl)
        if i + rl > n:
            return 0
        self._hlen = i
        return i + rl

    def _too_big(self, hlen, rl):
        # A packet bigger than the receive buffer: count it and discard its
        # bytes as they come, staying connected.  A QoS 1 PUBLISH is PUBACKed
        # (once its packet id has arrived), or the broker would redeliver it
        # on every reconnect and the link could never get past it.
        rx, n = self._rx, self._rlen
        first = rx[0]
        pid = 0
        if first & 0xF0 == 0x30 and (first >> 1) & 3:
            if n < hlen + 2:
                return 0  # wait for the topic length
            j = hlen + 2 + ((rx[hlen] << 8) | rx[hlen + 1])
            if j + 2 > len(rx):
                raise MQTTError("incoming packet too large: a " + str(j) + "-byte header")
            if n < j + 2:
                return 0  # wait for the packet id
            pid = (rx[j] << 8) | rx[j + 1]
        self.oversize += 1
        if n >= hlen + rl:  # just over MAX_PACKET, it may all be in the buffer
            self._consume(hlen + rl)
        else:
            self._skip = hlen + rl - n  # the rest is still to come: drop it as it does
            self._rlen = 0
        if pid:
            self._write(bytes((0x40, 2, pid >> 8, pid & 0xFF)))
        return 0

    def _consume(self, total):
        # Drop the handled packet, keeping any bytes of the next one.
        rest = self._rlen - total
        if rest:
            self._rx[0:rest] = self._rx[total : self._rlen]
        self._rlen = rest

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
        if i + n <= TX_SIZE:
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
        if i + 3 > TX_SIZE:
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
        start = ticks_ms()
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
            left = self.timeout_ms - ticks_diff(ticks_ms(), start)
            if left <= 0:
                raise MQTTError("timeout: send stalled for " + str(self.timeout_ms) + " ms")
            self._poller.modify(sock, select.POLLOUT)
            self._pause(left)
            self._poller.modify(sock, select.POLLIN)
        self._last_tx = ticks_ms()
