"""The MQTT link: JSON frames on becomingone/<node>/<kind> (docs/protocol.md).

Reports, events, hellos and acks go out at QoS 1 and stay in the spool until
the broker's PUBACK; at most `window` are in flight (paho-style packet ids
wrap at 65535, and a slow broker shouldn't see a burst of thousands).  The
last will marks the node `offline` the moment its connection dies; `online`
is published retained on every connect.  On a board, Wi-Fi comes up first.
Every wait while connecting is bounded and feeds the watchdog.
"""
from kairos import wire

from .link import Link
from .mqtt import MQTTClient

_WIFI_WAIT_MS = 15000


class MqttLink(Link):
    name = "mqtt"
    codec = "json"
    window = 16

    def __init__(self, cfg, node, clock, rand, say=print):
        Link.__init__(self, cfg, node, clock, rand, say)
        m = cfg.get("mqtt", {})
        self._host = m.get("host", "127.0.0.1")
        self._port = m.get("port", 1883)
        self._user = m.get("user")
        self._password = m.get("password")
        self._keepalive = m.get("keepalive", 30)
        base = "%s/%s/" % (m.get("prefix", "becomingone"), node)
        self.topics = [None, base + "hello", base + "report", base + "event", base + "pong",
                       base + "ack"]
        self.status = base + "status"
        self.cmd = base + "cmd"
        self._wifi = cfg.get("wifi")
        # One client for the node's life: its buffers are allocated once.
        c = MQTTClient(node, self._host, self._port, self._user, self._password,
                       self._keepalive)
        c.on_message = self._on_message
        c.on_puback = self.spool.ack
        self._mq = c
        self._c = None

    def _open(self):
        # Every wait in here is bounded and calls self.feed (the watchdog).
        if self._wifi:
            _wifi_up(self._wifi, self.clock, self.feed)
        c = self._mq
        c.on_wait = self.feed
        c.connect(clean_session=False, will=(self.status, b"offline", 1, True),
                  timeout_ms=self.wait_ms)
        self._c = c
        c.publish(self.status, b"online", 1, True)
        c.subscribe(self.cmd, 1)

    def _close(self):
        if self._c is not None:
            self._c.close()
            self._c = None

    def disconnect(self):
        """A clean goodbye: `offline` retained, then DISCONNECT (no will)."""
        if self._c is not None and self.up:
            try:
                self._c.publish(self.status, b"offline", 1, True)
                self._c.disconnect()
            except OSError:
                pass
            self._c = None
            self.up = False

    def _write(self, kind, data):
        # Pongs are QoS 0 (a late one is useless); hello is retained so a hub
        # that starts later still learns the node's channels.
        if kind == 4:
            self._c.publish(self.topics[kind], data, 0, False)
            return 0
        return self._c.publish(self.topics[kind], data, 1, kind == 1)

    def _poll(self):
        c = self._c
        c.poll()
        if c.oversize:  # commands too big for the client's buffer, skipped
            self.rejects[wire.OVERSIZE] = c.oversize

    def _on_message(self, topic, payload):
        self._accept(wire.decode_json(payload, self.rejects), self.node)


def _wifi_up(wifi, clock, feed=None):
    """Join the configured network (MicroPython only; a Pi is already on),
    feeding the watchdog while we wait."""
    try:
        import network
    except ImportError:
        return
    from .ticks import ticks_diff

    sta = network.WLAN(network.STA_IF)
    sta.active(True)
    if sta.isconnected():
        return
    sta.connect(wifi.get("ssid", ""), wifi.get("password", ""))
    t0 = clock.ms()
    while not sta.isconnected():
        if ticks_diff(clock.ms(), t0) > _WIFI_WAIT_MS:
            raise OSError("Wi-Fi %r not joined" % (wifi.get("ssid", ""),))
        if feed is not None:
            feed()
        clock.sleep(100)
