"""node: send an "out" command to a node's output (LED, NeoPixel, buzzer, motor).

Parameters: ``node`` (node id, required), ``name`` (the output's name in the
node's board config, required) and the output's arguments, as the firmware
takes them: ``on`` (LED, 0/1 or true/false), ``rgb`` ([r, g, b] bytes) and
``i`` (pixel index) for a NeoPixel, ``freq`` (Hz, 0 = silent) and ``duty``
(0..65535) for a buzzer or motor.  The node may not be known at start-up, so
only the shape is checked then; at fire time an unknown/offline node or a
node without the needed kind of output is a counted failure.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from becomingone.outputs import Adapter, OutputError, ParamError, param_num, param_str

ARGS = ("on", "rgb", "i", "freq", "duty")


def needed_kinds(args: Mapping[str, Any]) -> tuple[str, ...]:
    """Output kinds (node capabilities) that accept these arguments."""
    if "rgb" in args or "i" in args:
        return ("neopixel",)
    if "freq" in args:
        return ("buzzer",)
    if "duty" in args:
        return ("motor", "buzzer")
    return ("led",)


def check_caps(ctx_caps: Any, node: str, kinds: tuple[str, ...]) -> None:
    """Raise OutputError unless the node's hello lists one of ``kinds``."""
    if ctx_caps is None:
        return
    try:
        caps = list(ctx_caps(node))
    except Exception as e:
        raise OutputError(f"node {node!r}: {e or 'unknown node'}") from None
    if not any(k in caps for k in kinds):
        raise OutputError(f"node {node!r} has no {' or '.join(kinds)} output"
                          f" (caps: {', '.join(caps) or 'none'})")


class NodeAdapter(Adapter):
    name = "node"
    PARAMS = {"node": None, "name": None, **dict.fromkeys(ARGS)}

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        unknown = [k for k in params if k not in cls.PARAMS]
        if unknown:
            raise ParamError(f"unknown parameter for node (allowed: {', '.join(cls.PARAMS)})",
                             key=unknown[0])
        out: dict[str, Any] = {"node": param_str(params, "node"),
                               "name": param_str(params, "name")}
        if "on" in params:
            on = params["on"]
            if on not in (0, 1) or isinstance(on, float):
                raise ParamError(f"must be 0, 1, true or false, got {on!r}", key="on")
            out["on"] = int(on)
        if "rgb" in params:
            rgb = params["rgb"]
            if (not isinstance(rgb, list) or len(rgb) != 3
                    or any(isinstance(v, bool) or not isinstance(v, int) or not 0 <= v <= 255
                           for v in rgb)):
                raise ParamError(f"must be [r, g, b] with integers 0..255, got {rgb!r}",
                                 key="rgb")
            out["rgb"] = list(rgb)
        if "i" in params:
            out["i"] = param_num(params, "i", 0, 65535, integer=True)
        if "freq" in params:
            out["freq"] = param_num(params, "freq", 0, 100_000, integer=True)
        if "duty" in params:
            out["duty"] = param_num(params, "duty", 0, 65535, integer=True)
        if "on" in out and len(out) > 3:
            raise ParamError("'on' is for an LED; do not mix it with rgb/i/freq/duty", key="on")
        if "rgb" in out and ("freq" in out or "duty" in out):
            raise ParamError("'rgb' is for a NeoPixel; do not mix it with freq/duty", key="rgb")
        return out

    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        send = self.ctx.send_command
        if send is None:
            raise OutputError("no command link to nodes")
        node = params["node"]
        args = {k: v for k, v in params.items() if k != "node"}
        check_caps(self.ctx.node_caps, node, needed_kinds(args))
        try:
            send(node, "out", args)
        except Exception as e:
            raise OutputError(f"node {node!r}: {e or type(e).__name__}") from None
        self.count("sent")
