"""firmware/node/mqtt.py against tiny scripted TCP servers, for the
byte-level corner cases a real broker won't produce: packets split across
reads, oversize packets, refusals, silent servers."""
import socket
import threading
import time

import pytest
from support.rigs import wait_for

from node.mqtt import MQTTClient, MQTTError

# --------------------------------------------------- scripted raw TCP servers


class RawServer:
    """One-connection TCP server on 127.0.0.1 running script(conn) in a thread."""

    def __init__(self, script):
        self.lsock = socket.socket()
        self.lsock.bind(("127.0.0.1", 0))
        self.lsock.listen(1)
        self.port = self.lsock.getsockname()[1]
        self.script = script
        self.received = bytearray()
        self.error = None
        self.done = threading.Event()
        self.t = threading.Thread(target=self._run, daemon=True)
        self.t.start()

    def _run(self):
        try:
            self.lsock.settimeout(5)
            conn, _ = self.lsock.accept()
            conn.settimeout(5)
            with conn:
                self.script(self, conn)
        except Exception as e:  # reported by the test via .join()
            self.error = e
        finally:
            self.done.set()

    def read_packet(self, conn):
        """Read one whole MQTT packet from conn (and keep a copy)."""
        head = self._read(conn, 2)
        rl, shift, b = 0, 0, head[1]
        while True:
            rl |= (b & 0x7F) << shift
            if not b & 0x80:
                break
            shift += 7
            b = self._read(conn, 1)[0]
        return bytes(head[:1]) + self._read(conn, rl)

    def _read(self, conn, n):
        buf = b""
        while len(buf) < n:
            chunk = conn.recv(n - len(buf))
            if not chunk:
                raise EOFError("client closed")
            buf += chunk
        self.received += buf
        return buf

    def join(self):
        assert self.done.wait(5)
        self.lsock.close()
        if self.error:
            raise self.error


def dribble(conn, data):
    # One byte per send with a pause so each arrives in its own recv().
    for b in data:
        conn.sendall(bytes((b,)))
        time.sleep(0.002)


def publish_packet(topic, payload, qos=0, pid=0):
    body = len(topic).to_bytes(2, "big") + topic
    if qos:
        body += pid.to_bytes(2, "big")
    body += payload
    rl, n = bytearray(), len(body)
    while True:
        b, n = n & 0x7F, n >> 7
        rl.append(b | (0x80 if n else 0))
        if not n:
            break
    return bytes((0x30 | (qos << 1),)) + bytes(rl) + body


def test_packets_split_across_recv_calls():
    payload = bytes(range(200)) * 2  # 400 bytes: two-byte remaining length
    seen = {}

    def script(srv, conn):
        connect = srv.read_packet(conn)
        seen["connect"] = connect
        dribble(conn, b"\x20\x02\x01\x00")  # CONNACK, session present
        dribble(conn, publish_packet(b"bo/split", payload, qos=1, pid=0x1234))
        seen["puback"] = srv.read_packet(conn)
        # Two packets in one send: both handled by one poll().
        conn.sendall(publish_packet(b"a", b"1") + publish_packet(b"b", b"2"))
        seen["tail"] = srv.read_packet(conn)  # the client's DISCONNECT

    srv = RawServer(script)
    got = []
    c = MQTTClient("split", "127.0.0.1", srv.port, user="u", password=b"pw", keepalive=30)
    c.on_message = lambda t, p: got.append((t, p))
    assert c.connect(will=("w", "gone", 0, False), timeout_ms=3000) is True
    # ~415 bytes one per send(): seconds under load, so a generous bound.
    assert wait_for(lambda: len(got) == 1, 60, poll=c.poll)
    assert got[0] == (b"bo/split", payload)
    assert wait_for(lambda: len(got) == 3, 60, poll=c.poll)
    assert got[1:] == [(b"a", b"1"), (b"b", b"2")]
    c.disconnect()
    srv.join()
    assert seen["puback"] == b"\x40\x12\x34"
    assert seen["tail"] == b"\xe0"
    # CONNECT: MQTT 3.1.1, flags user+password+will (qos 0), keepalive 30.
    connect = seen["connect"]
    assert connect[1:8] == b"\x00\x04MQTT\x04" and connect[8] == 0xC4
    assert connect[9:11] == b"\x00\x1e"
    assert connect.endswith(b"\x00\x05split\x00\x01w\x00\x04gone\x00\x01u\x00\x02pw")


def test_oversized_packets_are_skipped_acked_and_counted():
    # Bigger than the 2 kB receive buffer: a QoS 1 one (PUBACKed, or the
    # broker would redeliver it forever) and a QoS 0 one, each followed by a
    # good packet in the same write.  The client stays connected.
    seen = {}

    def script(srv, conn):
        srv.read_packet(conn)
        conn.sendall(b"\x20\x02\x00\x00")
        conn.sendall(publish_packet(b"big", bytes(5000), qos=1, pid=7)
                     + publish_packet(b"ok", b"1", qos=1, pid=8))
        seen["acks"] = [srv.read_packet(conn), srv.read_packet(conn)]
        conn.sendall(publish_packet(b"big0", bytes(range(256)) * 12)
                     + publish_packet(b"ok", b"2"))
        seen["tail"] = srv.read_packet(conn)

    srv = RawServer(script)
    c = MQTTClient("big", "127.0.0.1", srv.port)
    got = []
    c.on_message = lambda t, p: got.append((t, p))
    c.connect()
    assert wait_for(lambda: len(got) == 2, 30, poll=c.poll)
    assert got == [(b"ok", b"1"), (b"ok", b"2")]
    assert c.connected() and c.oversize == 2
    c.disconnect()
    srv.join()
    assert seen["acks"] == [b"\x40\x00\x07", b"\x40\x00\x08"]
    assert seen["tail"] == b"\xe0"


def test_a_packet_just_over_the_limit_all_in_the_buffer_is_skipped():
    # Remaining length MAX_PACKET + 1 (2049): the whole packet (2052 bytes)
    # fits the 2053-byte buffer, so one read may hold it and the next
    # packet's first byte; the skip must not run backwards into that one.
    def script(srv, conn):
        srv.read_packet(conn)
        conn.sendall(b"\x20\x02\x00\x00")
        big = publish_packet(b"big", bytes(2044))
        assert len(big) == 2052
        conn.sendall(big + publish_packet(b"ok", b"3"))
        sent.set()
        srv.read_packet(conn)  # the DISCONNECT

    sent = threading.Event()
    srv = RawServer(script)
    c = MQTTClient("edge", "127.0.0.1", srv.port)
    got = []
    c.on_message = lambda t, p: got.append((t, p))
    c.connect()
    assert sent.wait(10)  # both packets wait in the socket: one read takes 2053 bytes
    assert wait_for(lambda: got, 30, poll=c.poll)
    assert got == [(b"ok", b"3")] and c.oversize == 1 and c.connected()
    c.disconnect()
    srv.join()


def test_connack_refusal_says_why():
    def script(srv, conn):
        srv.read_packet(conn)
        conn.sendall(b"\x20\x02\x00\x05")
        time.sleep(0.2)

    srv = RawServer(script)
    c = MQTTClient("nope", "127.0.0.1", srv.port)
    with pytest.raises(MQTTError, match="connection refused: not authorised"):
        c.connect()
    assert not c.connected()
    srv.join()


def test_silent_server_connect_times_out():
    def script(srv, conn):
        srv.read_packet(conn)
        time.sleep(0.6)

    srv = RawServer(script)
    c = MQTTClient("slow", "127.0.0.1", srv.port)
    t = time.monotonic()
    with pytest.raises(MQTTError, match="no CONNACK within 300 ms"):
        c.connect(timeout_ms=300)
    assert time.monotonic() - t > 0.25  # it did wait for the CONNACK
    assert not c.connected()
    srv.join()


def test_silent_broker_trips_keepalive():
    def script(srv, conn):
        srv.read_packet(conn)
        conn.sendall(b"\x20\x02\x00\x00")
        # Swallow PINGREQs without answering until the client gives up.
        try:
            while True:
                srv.read_packet(conn)
        except (EOFError, OSError):
            pass

    srv = RawServer(script)
    c = MQTTClient("mute", "127.0.0.1", srv.port, keepalive=1)
    c.connect()
    t = time.monotonic()
    err = []

    def step():
        try:
            c.poll()
        except MQTTError as e:
            err.append(e)

    assert wait_for(lambda: err, 3, poll=step)
    assert "keepalive timeout" in str(err[0])
    assert time.monotonic() - t > 1.4  # not before 1.5 keep-alive periods (1 s)
    assert srv.received.count(b"\xc0\x00") == 1  # one PINGREQ, never answered
    srv.join()
