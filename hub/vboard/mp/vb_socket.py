"""`socket` on the virtual board: TCP client sockets, enough for the
firmware's MQTT client (getaddrinfo, connect with a timeout, non-blocking
send/readinto, select.poll).  Each connection is a netbridge.py process the
glue (vboard.mjs, module `vbnet`) runs; bytes cross as hex.  Installed in
sys.modules at every boot; a reset closes every connection, as on a board."""
import io
import time
from binascii import hexlify, unhexlify

import vbnet

AF_INET, SOCK_STREAM, IPPROTO_TCP, TCP_NODELAY, SOL_SOCKET, SO_REUSEADDR = 2, 1, 6, 1, 1, 4
_EAGAIN, _ETIMEDOUT = 11, 110
_POLLIN, _POLLOUT, _POLLHUP = 1, 4, 16


def getaddrinfo(host, port, af=0, type=0, proto=0, flags=0):  # noqa: A002 - socket's names
    return [(AF_INET, SOCK_STREAM, IPPROTO_TCP, "", (host, port))]


class socket(io.IOBase):  # noqa: N801 - the name every program imports
    def __init__(self, af=AF_INET, type=SOCK_STREAM, proto=0):  # noqa: A002
        self._id = -1
        self._timeout = None
        self._blocking = True

    def settimeout(self, t):
        self._timeout = t
        self._blocking = t is None or t > 0

    def setblocking(self, flag):
        self._timeout = None
        self._blocking = bool(flag)

    def setsockopt(self, level, opt, value):
        pass

    def connect(self, addr):
        t = 30.0 if self._timeout is None else self._timeout
        r = vbnet.open(str(addr[0]), int(addr[1]), int(t * 1000))
        if r < 0:
            raise OSError(-r)
        self._id = r

    def _check(self):
        if self._id < 0:
            raise OSError(107)  # ENOTCONN

    def send(self, data):
        self._check()
        n = vbnet.send(self._id, hexlify(bytes(data)).decode())
        if n < 0:
            raise OSError(-n)
        if n == 0 and not self._blocking:
            raise OSError(_EAGAIN)
        return n

    write = send

    def sendall(self, data):
        mv = memoryview(data)
        while mv:
            n = self.send(mv)
            mv = mv[n:]

    def readinto(self, buf, nbytes=None):
        self._check()
        n = len(buf) if nbytes is None else nbytes
        t0 = time.ticks_ms()
        while True:
            r = vbnet.recv(self._id, n)
            if r != "":
                break
            if not self._blocking:
                return None
            if self._timeout is not None and time.ticks_diff(
                    time.ticks_ms(), t0) > self._timeout * 1000:
                raise OSError(_ETIMEDOUT)
            time.sleep_ms(1)
        if r == "!":
            return 0  # closed by the peer
        data = unhexlify(r)
        buf[:len(data)] = data
        return len(data)

    def recv(self, n):
        b = bytearray(n)
        r = self.readinto(b)
        if r is None:
            raise OSError(_EAGAIN)
        return bytes(b[:r])

    def ioctl(self, req, arg):
        if req == 3:  # MP_STREAM_POLL
            if self._id < 0:
                return _POLLHUP
            st = vbnet.ready(self._id)
            return arg & ((_POLLIN if st & 1 else 0) | _POLLOUT) | (_POLLHUP if st & 2 else 0)
        if req == 4:  # MP_STREAM_CLOSE
            self.close()
        return 0

    def close(self):
        if self._id >= 0:
            vbnet.close(self._id)
            self._id = -1
