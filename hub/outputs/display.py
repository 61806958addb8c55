"""display: the docs/kairos.md §8 colour (hue = 360·x, brightness = G) on a NeoPixel and/or
the web page(s).

Parameters: ``node`` (optional: a node whose NeoPixel shows the colour),
``output`` (that output's name, default "pixel"), ``i`` (pixel index,
default 0).  With ``node`` it sends ``out {"name": output, "rgb": [r, g, b]}``;
it always broadcasts ``{"type": "display", "rgb", "hue", "brightness"}``
when a WebSocket broadcast is available.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from becomingone.outputs import Adapter, OutputError, mapping, param_num, param_str
from becomingone.outputs.node import check_caps


def _psi(state: Mapping[str, Any]) -> complex:
    try:
        return complex(state.get("psi") or 0)
    except (TypeError, ValueError):
        return 0j


class DisplayAdapter(Adapter):
    name = "display"
    PARAMS = {"node": "", "output": "pixel", "i": 0}

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        p = super().validate(params)
        param_str(p, "node", empty=True)
        param_str(p, "output")
        p["i"] = param_num(p, "i", 0, 65535, integer=True)
        return p

    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        hue, bright, rgb = mapping.display(_psi(state), state.get("G") or 0.0)
        node = params["node"]
        done = []
        errors = []
        if self.ctx.broadcast is not None:
            try:
                self.ctx.broadcast({"type": "display", "rule": rule_name, "rgb": list(rgb),
                                    "hue": hue, "brightness": bright})
                done.append("broadcast")
            except Exception as e:
                errors.append(f"broadcast: {e or type(e).__name__}")
        if node:
            try:
                if self.ctx.send_command is None:
                    raise OutputError("no command link to nodes")
                check_caps(self.ctx.node_caps, node, ("neopixel",))
                args: dict[str, Any] = {"name": params["output"], "rgb": list(rgb)}
                if params["i"]:
                    args["i"] = params["i"]
                self.ctx.send_command(node, "out", args)
                done.append("node")
            except Exception as e:
                errors.append(str(e) or type(e).__name__)
        if errors:
            raise OutputError("; ".join(errors))
        if not done:
            raise OutputError("nowhere to display: no node set and no WebSocket broadcast")
        self.count("sent")
