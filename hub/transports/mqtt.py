"""MQTT: JSON frames on <prefix>/<node>/<kind> (paho-mqtt 2.x).

A persistent session (clean_session=False, a fixed client id) and manual
acks: a QoS 1 frame is acknowledged only when the hub core calls the ack it
was handed with the frame, i.e. once the frame is stored.  A hub killed
before that gets the frame again from the broker when it reconnects.
Frames that are refused (bad JSON, wrong topic) are acked at once: a
redelivery would be refused again.  `status` (the node's retained "online"
and its last will "offline") becomes {"t": "status", "node", "online"}.
paho's own thread reconnects with backoff; nothing here raises at runtime.

Other topics can ride on the same connection (and login): route(topic,
handler) is how the hub-side inputs (becomingone.transports.inputs) take
numbers from a topic without a second client.  The settings are the [mqtt]
section of the config, complete (becomingone.config has the defaults).
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from typing import Any

import paho.mqtt.client as mqtt

from becomingone.transports.base import Ack, Log, Reject, Sink, Transport, TransportError
from kairos import wire

FRAME_KINDS = ("hello", "report", "event", "pong", "ack")
TOPIC = "topic"  # reject reason: a frame whose node or type is not its topic's


class MqttTransport(Transport):
    kind = "mqtt"
    e2e = True  # gots go out on the node's cmd topic, at QoS 1

    def __init__(self, cfg: dict[str, Any], sink: Sink, log: Log = print,
                 reject: Reject | None = None) -> None:
        super().__init__(cfg, sink, log, reject)
        c = self.cfg  # the [mqtt] section: every key is there (config.DEFAULTS)
        self.host = str(c["host"])
        self.port = int(c["port"])
        self.prefix = str(c["prefix"]).rstrip("/")
        self.client_id = str(c["client_id"])
        self.keepalive = int(c["keepalive"])
        self.connected = False
        self.ready = threading.Event()  # connected and subscribed
        self._gen = 0  # connection generation: an ack from an older one is dropped
        self._connects = 0
        self._topics: dict[str, Callable[[str, bytes], None]] = {}  # route(): topic -> handler
        self._mac_check: Callable[..., bool] | None = None  # the keys' check, made on first use
        cl = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=self.client_id,
                         clean_session=False, manual_ack=True)
        if c["username"]:
            cl.username_pw_set(str(c["username"]), c["password"] or None)
        cl.reconnect_delay_set(float(c["backoff_min"]),  # type: ignore[arg-type]
                               float(c["backoff_max"]))  # type: ignore[arg-type]
        cl.on_connect = self._on_connect
        cl.on_disconnect = self._on_disconnect
        cl.on_message = self._on_message
        cl.on_subscribe = lambda *_a: self.ready.set()
        self.client = cl

    # -- life cycle ------------------------------------------------------------
    def start(self) -> None:
        super().start()
        # connect_async: a broker that is down now is retried by paho's thread.
        self.client.connect_async(self.host, self.port, self.keepalive)
        self.client.loop_start()

    def _halt(self) -> None:
        self.client.disconnect()  # clean: the session (and un-acked frames) stay
        self.client.loop_stop()
        self.connected = False
        self.ready.clear()

    def _on_connect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                    props: Any = None) -> None:
        if rc.is_failure:
            self._say_once("connect", f"mqtt: {self.host}:{self.port} refused: {rc}")
            return
        with self._lock:
            self._gen += 1
            self._connects += 1
            if self._connects > 1:
                self.reconnects += 1
            self.connected = True  # (under the lock: route() then subscribes by itself)
            routed = [(t, 1) for t in self._topics]
        self._unsay("connect")
        self._unsay("down")
        if not flags.session_present:
            # A new session: subscribe.  A resumed one still has the
            # subscriptions (and re-subscribing would resend retained frames).
            subs = [(f"{self.prefix}/+/{k}", 1) for k in FRAME_KINDS]
            subs.append((f"{self.prefix}/+/status", 1))
            client.subscribe(subs + routed)
        else:
            self.ready.set()
            if routed:  # the config may name a topic the saved session does not have
                client.subscribe(routed)
        session = "resumed" if flags.session_present else "new"
        self.log(f"mqtt: connected to {self.host}:{self.port} ({session} session)")

    def _on_disconnect(self, client: mqtt.Client, userdata: Any, flags: Any, rc: Any,
                       props: Any = None) -> None:
        self.connected = False
        self.ready.clear()
        if not self._stop.is_set():
            where = f"{self.host}:{self.port}"
            self._say_once("down", f"mqtt: disconnected from {where} ({rc}); reconnecting")

    # -- frames in -----------------------------------------------------------------
    def _ack_once(self, mid: int, qos: int) -> Ack:
        gen = self._gen
        done = [False]  # a plain flag: the core calls an ack from one thread

        def ack() -> None:
            if done[0]:
                return
            done[0] = True
            # After a reconnect the broker redelivers the frame itself (with
            # a new packet id on a new session): a stale PUBACK is not sent.
            if gen == self._gen and self.connected:
                self.client.ack(mid, qos)

        return ack

    def _on_message(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        t_rx = time.time()
        ack = self._ack_once(m.mid, m.qos) if m.qos > 0 else None
        head = self.prefix + "/"
        parts = m.topic[len(head):].split("/") if m.topic.startswith(head) else []
        node, kind = parts if len(parts) == 2 else (None, None)
        if node is not None and not wire.node_ok(node):
            node = None  # not a node id: refused here, the name goes no further
        msg: dict | None = None
        counts: dict[str, int] = {}
        if node is None:
            counts[TOPIC] = 1
        elif kind == "status":
            if m.payload in (b"online", b"offline"):
                msg = {"t": "status", "node": node, "online": m.payload == b"online"}
            elif m.payload:  # (an empty payload only clears the retained status)
                counts[wire.MALFORMED] = 1
            if ack:
                ack()  # a retained state, not a frame to store
            ack = None
        else:
            if self._mac_check is None and self.keys is not None:
                self._mac_check = self._auth("mqtt")
            msg = wire.decode_json(m.payload, counts, auth=self._mac_check)
            if msg is not None and (msg["node"] != node or msg["t"] != kind):
                msg, counts[TOPIC] = None, 1
        if msg is not None:
            self._deliver(msg, "mqtt", node, ack, t_rx)
            return
        if ack:
            ack()  # refused: a redelivery would be refused again
        self._merge(counts, "mqtt", node)

    # -- other topics on this connection --------------------------------------------
    def route(self, topic: str, handler: Callable[[str, bytes], None]) -> None:
        """Deliver the messages on ``topic`` (an exact topic name) to
        ``handler(topic, payload)``, in paho's thread, over this transport's
        connection and login.  Subscribed at QoS 1 on every connect (now too,
        if connected); each message is acknowledged once the handler returns.
        After a reconnect a retained message on the topic comes again."""
        with self._lock:
            self._topics[topic] = handler
            live = self.connected
        self.client.message_callback_add(topic, self._on_routed)  # not to _on_message
        if live:
            self.client.subscribe(topic, qos=1)

    def _on_routed(self, client: mqtt.Client, userdata: Any, m: mqtt.MQTTMessage) -> None:
        handler = self._topics.get(m.topic)
        try:
            if handler is not None:
                handler(m.topic, m.payload)
        except Exception as e:  # noqa: BLE001 - a handler's bug must not kill paho's thread
            more = self._limit.allow("route:" + m.topic)
            if more is not None:
                self.log(f"mqtt: handler for {m.topic} failed: {e!r}{more}")
        finally:
            if m.qos > 0:
                self._ack_once(m.mid, m.qos)()  # (a redelivery would fail the same way)

    # -- frames out ----------------------------------------------------------------
    def _send(self, route: Any, msg: dict) -> None:
        self.publish(f"{self.prefix}/{route}/cmd", wire.encode_json(msg), qos=1)

    def publish(self, topic: str, payload: bytes, qos: int = 0, retain: bool = False) -> None:
        """Publish for the hub's output adapters (queued by paho while down)."""
        info = self.client.publish(topic, payload, qos, retain)
        if info.rc not in (mqtt.MQTT_ERR_SUCCESS, mqtt.MQTT_ERR_NO_CONN):
            raise TransportError(f"mqtt: publish to {topic}: {mqtt.error_string(info.rc)}")

    def _status(self) -> dict:
        return {"connected": self.connected, "ready": self.ready.is_set(),
                "broker": f"{self.host}:{self.port}", "client_id": self.client_id}
