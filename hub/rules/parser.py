"""Output rules from the hub's TOML config: parsing and the for/edge/min_interval
timing (docs/rules.md).  The ``when`` expressions are :mod:`becomingone.rules.condition`.
"""

from __future__ import annotations

import math
import tomllib
from collections.abc import Callable, Mapping
from typing import Any

from becomingone.errors import BecomingOneError
from becomingone.outputs import ADAPTERS, ParamError, adapter_class
from becomingone.rules.condition import Condition, EvalError
from becomingone.tomllines import LineIndex

__all__ = ["Condition", "EvalError", "Rule", "RuleError", "edit_rule", "parse_rule_tables",
           "parse_rules", "rule_lines"]


class RuleError(BecomingOneError, ValueError):
    """A bad rule in the config: ``rules[i] (line n): 'key': reason``.

    ``index`` (0-based position in the ``rules`` array), ``line`` (1-based line
    of its ``[[rules]]`` header, or None) and ``key`` are None when unknown.
    """

    def __init__(self, message: str, *, index: int | None = None, line: int | None = None,
                 key: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.index, self.line, self.key = index, line, key
        self.reason = reason if reason is not None else message


RULE_KEYS = ("name", "when", "for", "min_interval", "edge", "enabled", "action", "with")
EDIT_KEYS = ("enabled", "when", "for", "min_interval", "edge", "with")  # changeable at runtime


class Rule:
    """One parsed rule plus its firing state.

    :meth:`check` is called once per hub tick with the STATE dict and answers
    "fire now?": the condition must have held continuously for ``hold``
    seconds (``for``); with ``edge`` it fires once per true-episode (a firing
    held back by ``min_interval`` happens as soon as the interval has passed,
    if the condition still holds); without ``edge`` it fires on every tick
    while true, at most once per ``min_interval``.  Times are ``state["t"]``.
    """

    def __init__(self, name: str, when: Condition | str, action: str, *, hold: float = 0.0,
                 min_interval: float = 0.0, edge: bool = True,
                 params: dict[str, Any] | None = None, index: int | None = None,
                 line: int | None = None, enabled: bool = True) -> None:
        self.name = name
        self.enabled = enabled
        self.when = when if isinstance(when, Condition) else Condition(when)
        self.hold = float(hold)
        self.min_interval = float(min_interval)
        self.edge = edge
        self.action = action
        self.params: dict[str, Any] = dict(params or {})
        self.index, self.line = index, line
        self.last_fired: float | None = None
        self.fired = 0
        self.errors = 0  # evaluations that failed (EvalError): counted as false
        self.last_error: str | None = None
        self._since: float | None = None  # when the condition last became true
        self._armed = True  # edge: not yet fired in this true-episode
        self.table: dict[str, Any] | None = None  # the TOML table it was parsed from

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, when={self.when.source!r}, action={self.action!r})"

    def reset(self) -> None:
        """Forget the timing state (not the counters)."""
        self._since, self._armed = None, True

    def to_table(self) -> dict[str, Any]:
        """The rule as a ``[[rules]]`` table (what it was parsed from, if it was)."""
        if self.table is not None:
            return dict(self.table)
        return {"name": self.name, "when": self.when.source, "for": self.hold,
                "min_interval": self.min_interval, "edge": self.edge, "enabled": self.enabled,
                "action": self.action, "with": dict(self.params)}

    def check(self, state: Mapping[str, Any]) -> bool:
        if not self.enabled:  # a disabled rule is not evaluated (and starts afresh)
            self.reset()
            return False
        t = float(state["t"])
        try:
            true = self.when.evaluate(state)
        except EvalError as e:
            self.errors += 1
            self.last_error = str(e)
            true = False
        if not true:
            self.reset()
            return False
        if self._since is None or t < self._since:  # (t < since: the clock stepped back)
            self._since = t
        if t - self._since < self.hold:
            return False
        if self.edge and not self._armed:
            return False
        if self.last_fired is not None and 0.0 <= t - self.last_fired < self.min_interval:
            return False
        self.last_fired = t
        self.fired += 1
        self._armed = False
        return True


def rule_lines(toml_text: str) -> list[int]:
    """1-based line numbers of the ``[[rules]]`` headers, in order (for an
    inline ``rules = [...]``, the line of that array), from
    becomingone.tomllines: tomllib itself says where each rule begins, so a
    header inside a multi-line string is not one."""
    doc = tomllib.loads(toml_text)
    raw = doc.get("rules")
    if not isinstance(raw, list):
        return []
    lines = LineIndex(toml_text, doc)
    return [lines.line("rules", i) or 0 for i in range(len(raw))]


def _number(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{key!r}: must be a number >= 0 (seconds), got {v!r}")
    return float(v)


def _parse_one(i: int, raw: Any, line: int | None, names: set[str],
               where: str | None = None) -> Rule:
    def fail(key: str | None, reason: str) -> RuleError:
        nonlocal where
        where = where or f"rules[{i}]" + (f" (line {line})" if line else "")
        msg = f"{where}: {reason}" if key is None else f"{where}: {key!r}: {reason}"
        return RuleError(msg, index=i, line=line, key=key, reason=reason)

    if not isinstance(raw, dict):
        raise fail(None, "must be a table ([[rules]])")
    unknown = [k for k in raw if k not in RULE_KEYS]
    if unknown:
        raise fail(unknown[0], f"unknown key (allowed: {', '.join(RULE_KEYS)})")
    for key in ("name", "when", "action"):
        if key not in raw:
            raise fail(key, "required")
    name = raw["name"]
    if not isinstance(name, str) or not name.strip():
        raise fail("name", "must be a non-empty string")
    if name in names:
        raise fail("name", f"duplicate rule name {name!r}")
    try:
        when = Condition(raw["when"])
    except ValueError as e:
        raise fail("when", str(e)) from None
    action = raw["action"]
    if not isinstance(action, str) or action not in ADAPTERS:
        raise fail("action", f"unknown action {action!r} (known: {', '.join(ADAPTERS)})")
    try:
        hold = _number(raw.get("for", 0.0), "for")
        interval = _number(raw.get("min_interval", 0.0), "min_interval")
    except ValueError as e:
        key, _, reason = str(e).partition(": ")
        raise fail(key.strip("'"), reason) from None
    edge, enabled = raw.get("edge", True), raw.get("enabled", True)
    for key, v in (("edge", edge), ("enabled", enabled)):
        if not isinstance(v, bool):
            raise fail(key, f"must be true or false, got {v!r}")
    params = raw.get("with", {})
    if not isinstance(params, dict):
        raise fail("with", "must be a table ([rules.with])")
    try:
        params = adapter_class(action).validate(dict(params))
    except (ParamError, ValueError, TypeError) as e:  # -> a RuleError with this rule's place
        reason = getattr(e, "reason", str(e))
        key = getattr(e, "key", None)
        raise fail(f"with.{key}" if key else "with", reason) from None
    rule = Rule(name, when, action, hold=hold, min_interval=interval, edge=edge,
                params=params, index=i, line=line, enabled=enabled)
    rule.table = dict(raw)
    return rule


def edit_rule(rule: Rule, changes: Mapping[str, Any]) -> Rule:
    """A new Rule: ``rule`` with ``changes`` applied, checked by the same
    parser as the config.  Keys as in the TOML (EDIT_KEYS: enabled, when,
    for, min_interval, edge, with; ``with`` replaces the whole parameter
    table); name and action stay.  The counters carry over, the timing
    starts afresh.  RuleError ``rule 'name': 'key': reason`` for a bad change."""
    where = f"rule {rule.name!r}"
    for key in changes:
        if key not in EDIT_KEYS:
            reason = (f"cannot be changed at runtime (changeable: {', '.join(EDIT_KEYS)})"
                      if key in RULE_KEYS else
                      f"unknown key (changeable: {', '.join(EDIT_KEYS)})")
            raise RuleError(f"{where}: {key!r}: {reason}", key=key, reason=reason)
    raw = rule.to_table()
    raw.update(changes)
    new = _parse_one(rule.index or 0, raw, rule.line, set(), where=where)
    new.index = rule.index
    new.fired, new.last_fired = rule.fired, rule.last_fired
    new.errors, new.last_error = rule.errors, rule.last_error
    return new


def parse_rule_tables(raw: Any, line: Callable[[int], int | None] | None = None) -> list[Rule]:
    """Rules from the parsed ``rules`` array of a config (what becomingone.config
    calls, with the TOML already read); ``line(i)`` is the line of rule i's
    ``[[rules]]`` header, for the messages and ``Rule.line``.

    Raises RuleError for any bad rule, with its ``index``, ``key`` and
    ``reason``.  Adapter parameters are checked by each adapter's
    ``validate`` (which needs no connection)."""
    if not isinstance(raw, list):
        reason = "must be an array of tables ([[rules]])"
        raise RuleError(f"'rules' {reason}", key="rules", reason=reason)
    out: list[Rule] = []
    names: set[str] = set()
    for i, r in enumerate(raw):
        rule = _parse_one(i, r, line(i) if line else None, names)
        names.add(rule.name)
        out.append(rule)
    return out


def parse_rules(toml_text: str) -> list[Rule]:
    """The ``[[rules]]`` of a hub config's text (other tables are ignored).

    Raises RuleError for invalid TOML or any bad rule, naming the rule's index
    and the line of its ``[[rules]]`` header: ``rules[i] (line n): 'key': reason``.
    """
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"config: invalid TOML: {e}") from None
    lines = LineIndex(toml_text, doc)
    return parse_rule_tables(doc.get("rules", []), lambda i: lines.line("rules", i))
