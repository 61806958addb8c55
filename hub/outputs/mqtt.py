"""mqtt: publish the docs/kairos.md §8 state JSON to a topic through the hub's MQTT connection.

Parameters: ``topic`` (default "becomingone/hub/state"), ``qos`` (0, 1, 2;
default 0), ``retain`` (default false).  Retain is allowed only on a state
topic (last level "state"), and never on a topic with a "/cmd" level: a
retained command would be replayed to a node on every reconnect.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any

from becomingone.outputs import Adapter, OutputError, ParamError, param_bool, param_num, param_str
from becomingone.outputs.mapping import state_json

DEFAULT_TOPIC = "becomingone/hub/state"


def is_state_topic(topic: str) -> bool:
    return topic.rsplit("/", 1)[-1] == "state"


def is_cmd_topic(topic: str) -> bool:
    return "/cmd" in topic


class MqttAdapter(Adapter):
    name = "mqtt"
    PARAMS = {"topic": DEFAULT_TOPIC, "qos": 0, "retain": False}

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        p = super().validate(params)
        topic = param_str(p, "topic")
        if "+" in topic or "#" in topic or "\0" in topic:
            raise ParamError("a publish topic cannot contain '+', '#' or NUL", key="topic")
        if len(topic.encode()) > 65535:
            raise ParamError("longer than 65535 bytes", key="topic")
        p["qos"] = param_num(p, "qos", 0, 2, integer=True)
        retain = param_bool(p, "retain")
        if retain and is_cmd_topic(topic):
            raise ParamError(f"a command topic ({topic!r}) must never be retained", key="retain")
        if retain and not is_state_topic(topic):
            raise ParamError(f"retain is only allowed on a state topic (…/state), not {topic!r}",
                             key="retain")
        return p

    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        publish = self.ctx.mqtt_publish
        if publish is None:
            raise OutputError("no MQTT connection")
        payload = json.dumps(state_json(state), separators=(",", ":")).encode()
        publish(params["topic"], payload, params["qos"], params["retain"])
        self.count("sent")
