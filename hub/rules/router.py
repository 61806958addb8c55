"""The Router: evaluates the rules on every hub tick and fires their adapters
(docs/rules.md).

The hub core builds an :class:`~becomingone.outputs.OutputContext` (what
adapters may use) and a :class:`Router` with :meth:`Router.from_config`; then
it calls :meth:`Router.tick` with the STATE dict on every hub tick.  Only the
adapters the rules use are imported and built.  The rules layer sits above
the outputs: it imports them, they import nothing from here.
"""

from __future__ import annotations

import contextlib
import copy
import threading
from collections import deque
from collections.abc import Mapping
from typing import Any

from becomingone.outputs import Adapter, OutputContext, make_adapter
from becomingone.rules.parser import Rule, RuleError, edit_rule, parse_rules

__all__ = ["Router"]


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
        """Parse the config's rules and build only the adapters they use
        (RuleError for a bad rule: the parser has checked each action and its
        parameters, so no adapter is built for a config that is refused)."""
        return cls.from_rules(parse_rules(toml_text), ctx)

    @classmethod
    def from_rules(cls, rules: list[Rule], ctx: OutputContext) -> Router:
        """A router for parsed rules (a HubConfig's, checked when it was read),
        building only the adapters they use.  It fires copies: the firing
        state of one hub's rules is not another's (a config can serve two)."""
        rules = [copy.copy(r) for r in rules]
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
        """Change a rule at runtime (rules.parser.edit_rule: the config's checks);
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
                adapter.fire(rule.name, state, rule.params)
            except Exception as e:
                error = str(e) or type(e).__name__
                adapter.count("failed", error=f"{rule.name}: {error}")
            rec = {"rule": rule.name, "action": rule.action, "t": t, "ok": error is None,
                   "error": error}
            out.append(rec)
            self.recent.append(rec)

    def firings(self) -> list[dict[str, Any]]:
        """A copy of the last 100 firing records, oldest first (any thread:
        the core's tick appends to them under the lock)."""
        with self._lock:
            return list(self.recent)

    def stats(self) -> dict[str, Any]:
        """Per rule: fired, last_fired, errors, last_error; per adapter: its stats()."""
        return {
            "rules": {r.name: {"fired": r.fired, "last_fired": r.last_fired, "errors": r.errors,
                               "last_error": r.last_error} for r in self.rules},
            "adapters": {name: a.stats() for name, a in self.adapters.items()},
        }

    def close(self) -> None:
        """Close every adapter (webhook workers, players), each bounded in time."""
        for a in self.adapters.values():
            with contextlib.suppress(Exception):  # one must not keep the others open
                a.close()
