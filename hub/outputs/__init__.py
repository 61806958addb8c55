"""Output adapters: what a rule's action does (docs/rules.md).

This layer knows nothing of rules: an adapter gets plain values (the firing
rule's name, the STATE dict, its checked parameters) and an
:class:`OutputContext` (what the hub core lends it).  The rules layer
(:mod:`becomingone.rules.router`) decides when to fire and turns a
:class:`ParamError` into a RuleError naming the rule and its line.  Adapter
modules are imported lazily: only the actions the rules use are loaded.
"""

from __future__ import annotations

import abc
import importlib
import tempfile
import threading
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from becomingone.errors import BecomingOneError

__all__ = ["ADAPTERS", "Adapter", "OutputContext", "OutputError", "ParamError", "adapter_class",
           "make_adapter", "param_bool", "param_num", "param_str"]

# action name -> (module, class); imported on first use
ADAPTERS: dict[str, tuple[str, str]] = {
    "mqtt": ("becomingone.outputs.mqtt", "MqttAdapter"),
    "webhook": ("becomingone.outputs.webhook", "WebhookAdapter"),
    "websocket": ("becomingone.outputs.websocket", "WebsocketAdapter"),
    "node": ("becomingone.outputs.node", "NodeAdapter"),
    "speaker": ("becomingone.outputs.speaker", "SpeakerAdapter"),
    "display": ("becomingone.outputs.display", "DisplayAdapter"),
}


def _default_sound_dir() -> Path:
    return Path(tempfile.gettempdir()) / "becomingone-sound"


@dataclass
class OutputContext:
    """What adapters may use, provided by the hub core.

    mqtt_publish(topic, payload, qos, retain); send_command(node, op, args)
    -> command id (raises for an unknown/offline node); node_caps(node) ->
    capabilities from the node's hello (None: capabilities are not checked);
    broadcast(message) to the web page(s); sound_dir for the speaker's WAVs.
    """

    mqtt_publish: Callable[[str, bytes, int, bool], None] | None = None
    send_command: Callable[[str, str, dict], int] | None = None
    node_caps: Callable[[str], list[str]] | None = None
    broadcast: Callable[[dict], None] | None = None
    sound_dir: Path = field(default_factory=_default_sound_dir)


class OutputError(BecomingOneError):
    """An adapter could not carry out one firing (counted, never fatal)."""


class ParamError(BecomingOneError, ValueError):
    """A bad ``with`` parameter of an action, found by ``validate`` at start-up.

    ``key`` is the parameter at fault (``"action"`` for an unknown action;
    None: the table as a whole) and ``reason`` what is wrong with it.  The
    rules layer re-raises it as a RuleError with the rule's index and line.
    """

    def __init__(self, reason: str, *, key: str | None = None) -> None:
        super().__init__(reason)
        self.key, self.reason = key, reason


class Adapter(abc.ABC):
    """Base of the output adapters.

    ``validate(params)`` checks a rule's ``with`` table at start-up (a
    classmethod: it needs no connection) and returns the normalised
    parameters, raising ParamError (with ``key``) for a bad one.
    ``fire(rule_name, state, params)`` carries out one firing of the rule
    named ``rule_name``; it must return quickly; raising means "this firing
    failed" (the caller counts it).
    """

    name = "?"
    PARAMS: dict[str, Any] = {}  # allowed keys -> default (documentation + unknown-key check)

    def __init__(self, ctx: OutputContext) -> None:
        self.ctx = ctx
        self._lock = threading.Lock()
        self.sent = 0
        self.failed = 0
        self.last_error: str | None = None
        self.counters: dict[str, int] = {}  # adapter-specific (dropped, no_player, ...)

    @classmethod
    def validate(cls, params: dict[str, Any]) -> dict[str, Any]:
        """The parameters with defaults filled in; ParamError for an unknown key."""
        unknown = [k for k in params if k not in cls.PARAMS]
        if unknown:
            allowed = ", ".join(cls.PARAMS) or "none"
            raise ParamError(f"unknown parameter for {cls.name} (allowed: {allowed})",
                             key=unknown[0])
        return {**cls.PARAMS, **params}

    @abc.abstractmethod
    def fire(self, rule_name: str, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        """Carry out one firing of rule ``rule_name`` (each adapter's own)."""

    def count(self, what: str, n: int = 1, error: str | None = None) -> None:
        """Thread-safe counting: "sent", "failed" or an adapter-specific name."""
        with self._lock:
            if what == "sent":
                self.sent += n
            elif what == "failed":
                self.failed += n
            else:
                self.counters[what] = self.counters.get(what, 0) + n
            if error is not None:
                self.last_error = error

    def queued(self) -> int:
        """Firings accepted but not finished yet (asynchronous adapters)."""
        return 0

    def stats(self) -> dict[str, Any]:
        """sent, failed, queued, last_error and the adapter's own counters."""
        queued = self.queued()
        with self._lock:
            return {"sent": self.sent, "failed": self.failed, "queued": queued,
                    "last_error": self.last_error, **self.counters}

    def close(self) -> None:  # noqa: B027 - an optional hook: most adapters hold nothing
        """Release threads/processes; bounded in time."""


# --- parameter checks shared by the adapters -------------------------------------------

def param_str(params: dict[str, Any], key: str, *, empty: bool = False) -> str:
    """``params[key]`` as a string (non-empty unless ``empty``); else ParamError."""
    v = params.get(key)
    if not isinstance(v, str) or (not empty and not v.strip()):
        raise ParamError(f"must be a {'' if empty else 'non-empty '}string, got {v!r}", key=key)
    return v


def param_num(params: dict[str, Any], key: str, lo: float, hi: float, *,
              integer: bool = False) -> float | int:
    """``params[key]`` as a number in [lo, hi] (an int with ``integer``); else ParamError."""
    v = params.get(key)
    ok = isinstance(v, int) if integer else isinstance(v, int | float)
    if isinstance(v, bool) or not ok or not lo <= v <= hi:
        kind = "an integer" if integer else "a number"
        raise ParamError(f"must be {kind} in [{lo:g}, {hi:g}], got {v!r}", key=key)
    return int(v) if integer else float(v)


def param_bool(params: dict[str, Any], key: str) -> bool:
    """``params[key]`` as a boolean (true/false only); else ParamError."""
    v = params.get(key)
    if not isinstance(v, bool):
        raise ParamError(f"must be true or false, got {v!r}", key=key)
    return v


def adapter_class(action: str) -> type[Adapter]:
    """The adapter class for an action name (imports its module on first use);
    ParamError (key "action") for an unknown one."""
    try:
        module, cls = ADAPTERS[action]
    except KeyError:
        raise ParamError(f"unknown action {action!r} (known: {', '.join(ADAPTERS)})",
                         key="action") from None
    return getattr(importlib.import_module(module), cls)


def make_adapter(action: str, ctx: OutputContext) -> Adapter:
    """A new adapter for ``action`` with the hub's context."""
    return adapter_class(action)(ctx)
