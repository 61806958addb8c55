"""Output adapters and the Router that fires them from rules (docs/rules.md).

The hub core builds an :class:`OutputContext` (what adapters may use) and a
:class:`Router` with :meth:`Router.from_config`; then it calls
:meth:`Router.tick` with the STATE dict on every hub tick.  Adapter modules
are imported lazily: only the actions the rules use are loaded and built.
"""

from __future__ import annotations

import abc
import contextlib
import importlib
import tempfile
import threading
from collections import deque
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from becomingone.rules.parser import Rule, RuleError, edit_rule, parse_rules

__all__ = ["ADAPTERS", "Adapter", "OutputContext", "OutputError", "Router", "adapter_class",
           "make_adapter"]

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


class OutputError(Exception):
    """An adapter could not carry out one firing (counted, never fatal)."""


class Adapter(abc.ABC):
    """Base of the output adapters.

    ``validate(params)`` checks a rule's ``with`` table at start-up (a
    classmethod: it needs no connection) and returns the normalised
    parameters, raising RuleError (with ``key``) for a bad one.
    ``fire(rule, state, params)`` carries out one firing; it must return
    quickly; raising means "this firing failed" (the Router counts it).
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
        unknown = [k for k in params if k not in cls.PARAMS]
        if unknown:
            allowed = ", ".join(cls.PARAMS) or "none"
            raise RuleError(f"unknown parameter for {cls.name} (allowed: {allowed})",
                            key=unknown[0])
        return {**cls.PARAMS, **params}

    @abc.abstractmethod
    def fire(self, rule: Rule, state: Mapping[str, Any], params: dict[str, Any]) -> None:
        """Carry out one firing (each adapter's own)."""

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
        queued = self.queued()
        with self._lock:
            return {"sent": self.sent, "failed": self.failed, "queued": queued,
                    "last_error": self.last_error, **self.counters}

    def close(self) -> None:  # noqa: B027 - an optional hook: most adapters hold nothing
        """Release threads/processes; bounded in time."""


# --- parameter checks shared by the adapters -------------------------------------------

def param_str(params: dict[str, Any], key: str, *, empty: bool = False) -> str:
    v = params.get(key)
    if not isinstance(v, str) or (not empty and not v.strip()):
        raise RuleError(f"must be a {'' if empty else 'non-empty '}string, got {v!r}", key=key)
    return v


def param_num(params: dict[str, Any], key: str, lo: float, hi: float, *,
              integer: bool = False) -> float | int:
    v = params.get(key)
    ok = isinstance(v, int) if integer else isinstance(v, int | float)
    if isinstance(v, bool) or not ok or not lo <= v <= hi:
        kind = "an integer" if integer else "a number"
        raise RuleError(f"must be {kind} in [{lo:g}, {hi:g}], got {v!r}", key=key)
    return int(v) if integer else float(v)


def param_bool(params: dict[str, Any], key: str) -> bool:
    v = params.get(key)
    if not isinstance(v, bool):
        raise RuleError(f"must be true or false, got {v!r}", key=key)
    return v


def adapter_class(action: str) -> type[Adapter]:
    """The adapter class for an action name (imports its module on first use)."""
    try:
        module, cls = ADAPTERS[action]
    except KeyError:
        raise RuleError(f"unknown action {action!r} (known: {', '.join(ADAPTERS)})",
                        key="action") from None
    return getattr(importlib.import_module(module), cls)


def make_adapter(action: str, ctx: OutputContext) -> Adapter:
    return adapter_class(action)(ctx)


class Router:
    """Evaluates the rules on every tick and fires their adapters.

    ``tick`` never raises and never waits on the network: a failing firing
    becomes a record with ok=False and is counted by its adapter.
    """

    def __init__(self, rules: list[Rule], adapters: dict[str, Adapter]) -> None:
        missing = sorted({r.action for r in rules} - set(adapters))
        if missing:
            raise RuleError(f"no adapter for action(s): {', '.join(missing)}", key="action")
        self.rules = list(rules)
        self.adapters = dict(adapters)
        self.recent: deque[dict[str, Any]] = deque(maxlen=100)
        self.ticks = 0
        self._lock = threading.Lock()  # tick (core thread) vs edit (web thread)

    @classmethod
    def from_config(cls, toml_text: str, ctx: OutputContext) -> Router:
        """Parse the config's rules and build only the adapters they use."""
        rules = parse_rules(toml_text)
        adapters: dict[str, Adapter] = {}
        try:
            for r in rules:
                if r.action not in adapters:
                    adapters[r.action] = make_adapter(r.action, ctx)
        except BaseException:
            for a in adapters.values():
                a.close()
            raise
        return cls(rules, adapters)

    def tick(self, state: Mapping[str, Any]) -> list[dict[str, Any]]:
        """Evaluate every rule on this state, fire those due; return the records
        ``{"rule", "action", "t", "ok", "error"}`` (also kept in ``recent``)."""
        self.ticks += 1
        out: list[dict[str, Any]] = []
        t = state.get("t")
        with self._lock:
            self._tick(state, t, out)
        return out

    def edit(self, name: str, changes: Mapping[str, Any]) -> Rule:
        """Change a rule at runtime (hub.rules.edit_rule: the config's checks);
        it takes effect from the next tick.  KeyError for an unknown name,
        RuleError for a bad change (nothing changed then)."""
        with self._lock:
            for i, rule in enumerate(self.rules):
                if rule.name == name:
                    self.rules[i] = new = edit_rule(rule, changes)
                    return new
        raise KeyError(name)

    def _tick(self, state: Mapping[str, Any], t: Any, out: list[dict[str, Any]]) -> None:
        for rule in self.rules:
            try:
                due = rule.check(state)
            except Exception as e:  # a malformed state: count it on the rule, go on
                rule.errors += 1
                rule.last_error = f"{type(e).__name__}: {e}"
                continue
            if not due:
                continue
            adapter = self.adapters[rule.action]
            error = None
            try:
                adapter.fire(rule, state, rule.params)
            except Exception as e:
                error = str(e) or type(e).__name__
                adapter.count("failed", error=f"{rule.name}: {error}")
            rec = {"rule": rule.name, "action": rule.action, "t": t, "ok": error is None,
                   "error": error}
            out.append(rec)
            self.recent.append(rec)

    def stats(self) -> dict[str, Any]:
        return {
            "rules": {r.name: {"fired": r.fired, "last_fired": r.last_fired, "errors": r.errors,
                               "last_error": r.last_error} for r in self.rules},
            "adapters": {name: a.stats() for name, a in self.adapters.items()},
        }

    def close(self) -> None:
        for a in self.adapters.values():
            with contextlib.suppress(Exception):  # one must not keep the others open
                a.close()
