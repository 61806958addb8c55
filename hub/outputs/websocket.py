"""websocket: broadcast ``{"type": "rule", "rule": name, ...state summary}`` to
the web page(s).  Parameter: ``message`` (optional text passed along)."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from becomingone.outputs import Adapter, OutputError, param_str
from becomingone.outputs.mapping import state_json


class WebsocketAdapter(Adapter):
    name = "websocket"
    PARAMS = {"message": ""}

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        p = super().validate(params)
        param_str(p, "message", empty=True)
        return p

    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        broadcast = self.ctx.broadcast
        if broadcast is None:
            raise OutputError("no WebSocket broadcast")
        msg: dict[str, Any] = {"type": "rule", "rule": rule_name, **state_json(state)}
        if params["message"]:
            msg["message"] = params["message"]
        broadcast(msg)
        self.count("sent")
