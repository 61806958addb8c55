"""Output rules from the hub's TOML config: parsing, the condition language and
the for/edge/min_interval timing (docs/rules.md).

A condition is parsed with :mod:`ast` in "eval" mode, checked against a small
whitelist (numbers, True/False, the state names, comparisons, and/or/not,
+ - * /, ``node("id").attr`` and ``node("id").channel(i).attr``), type-checked
(the whole expression must be a truth value) and evaluated by walking the
tree; nothing is ever passed to ``eval``.
"""

from __future__ import annotations

import ast
import math
import operator
import re
import tomllib
from collections.abc import Callable, Mapping
from typing import Any


class RuleError(ValueError):
    """A bad rule in the config: ``rules[i] (line n): 'key': reason``.

    ``index`` (0-based position in the ``rules`` array), ``line`` (1-based line
    of its ``[[rules]]`` header, or None) and ``key`` are None when unknown.
    """

    def __init__(self, message: str, *, index: int | None = None, line: int | None = None,
                 key: str | None = None, reason: str | None = None) -> None:
        super().__init__(message)
        self.index, self.line, self.key = index, line, key
        self.reason = reason if reason is not None else message


class EvalError(Exception):
    """A condition could not be evaluated on this state (missing value, x/0):
    the rule counts it and treats the condition as false."""


class _UnknownNode(Exception):
    """The condition names a node (or channel) the state does not have."""


NUM, BOOL = "number", "truth value"
NAMES: dict[str, str] = {
    "G": NUM, "R": NUM, "surprise": NUM, "psi_re": NUM, "psi_im": NUM, "x": NUM,
    "emerged": BOOL, "witness_event": BOOL,
}
NODE_ATTRS: dict[str, str] = {"c": NUM, "tau": NUM, "collapsed": BOOL, "online": BOOL,
                              "aligned": BOOL}
CHANNEL_ATTRS: dict[str, str] = {"c": NUM, "collapsed": BOOL}
_CMP = (ast.Eq, ast.NotEq, ast.Lt, ast.LtE, ast.Gt, ast.GtE)
_ARITH = (ast.Add, ast.Sub, ast.Mult, ast.Div)
_OPS: dict[type, Callable[[Any, Any], Any]] = {
    ast.Eq: operator.eq, ast.NotEq: operator.ne, ast.Lt: operator.lt, ast.LtE: operator.le,
    ast.Gt: operator.gt, ast.GtE: operator.ge, ast.Add: operator.add, ast.Sub: operator.sub,
    ast.Mult: operator.mul, ast.Div: operator.truediv}
MAX_WHEN = 1000  # characters; also keeps ast.parse far from its recursion limit


def _where(n: ast.AST) -> str:
    return f" at column {getattr(n, 'col_offset', 0) + 1}"


def _node_call(n: ast.AST) -> str | None:
    """The node id if ``n`` is ``node("id")`` (else None; raises if malformed)."""
    if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Name) and n.func.id == "node"):
        return None
    if (n.keywords or len(n.args) != 1 or not isinstance(n.args[0], ast.Constant)
            or not isinstance(n.args[0].value, str) or not n.args[0].value):
        raise ValueError('node(...) takes one node id in quotes, e.g. node("kitchen-1")'
                         + _where(n))
    return n.args[0].value


def _channel_call(n: ast.AST) -> tuple[str, int] | None:
    """(node id, channel index) if ``n`` is ``node("id").channel(i)``."""
    if not (isinstance(n, ast.Call) and isinstance(n.func, ast.Attribute)
            and n.func.attr == "channel"):
        return None
    node = _node_call(n.func.value)
    if node is None:
        return None
    a = n.args[0] if len(n.args) == 1 else None
    if (n.keywords or a is None or not isinstance(a, ast.Constant) or type(a.value) is not int
            or a.value < 0):
        raise ValueError(f"channel(...) takes one channel index (0, 1, ...){_where(n)}")
    return node, a.value


def _describe(n: ast.AST) -> str:
    names = {ast.Lambda: "lambda", ast.Subscript: "indexing [...]", ast.IfExp: "if/else",
             ast.List: "a list", ast.Tuple: "a tuple", ast.Dict: "a dict", ast.Set: "a set",
             ast.JoinedStr: "an f-string", ast.NamedExpr: "':='", ast.Starred: "'*'"}
    comp = isinstance(n, ast.ListComp | ast.GeneratorExp | ast.DictComp | ast.SetComp)
    return "a comprehension" if comp else names.get(type(n), type(n).__name__)


def _check(n: ast.AST) -> str:
    """Validate one node against the whitelist; return its type (NUM or BOOL)."""
    if isinstance(n, ast.Constant):
        v = n.value
        if isinstance(v, bool):
            return BOOL
        if isinstance(v, int | float) and math.isfinite(v):
            return NUM
        if isinstance(v, str):
            raise ValueError(f"a string is only allowed as node(\"id\"){_where(n)}")
        raise ValueError(f"constant {v!r} is not allowed{_where(n)}")
    if isinstance(n, ast.Name):
        if n.id not in NAMES:
            raise ValueError(f"unknown name {n.id!r}{_where(n)} (known: {', '.join(NAMES)})")
        return NAMES[n.id]
    if isinstance(n, ast.BoolOp):
        for v in n.values:
            if _check(v) != BOOL:
                raise ValueError(f"'and'/'or' need truth values on both sides{_where(v)}")
        return BOOL
    if isinstance(n, ast.UnaryOp):
        t = _check(n.operand)
        if isinstance(n.op, ast.Not):
            if t != BOOL:
                raise ValueError(f"'not' needs a truth value{_where(n)}")
            return BOOL
        if isinstance(n.op, ast.USub | ast.UAdd) and t == NUM:
            return NUM
        raise ValueError(f"operator not allowed here{_where(n)}")
    if isinstance(n, ast.BinOp):
        if not isinstance(n.op, _ARITH):
            raise ValueError(f"operator {type(n.op).__name__} is not allowed (only + - * /)"
                             f"{_where(n)}")
        if _check(n.left) != NUM or _check(n.right) != NUM:
            raise ValueError(f"+ - * / need numbers on both sides{_where(n)}")
        return NUM
    if isinstance(n, ast.Compare):
        for op in n.ops:
            if not isinstance(op, _CMP):
                raise ValueError(f"comparison {type(op).__name__} is not allowed"
                                 f" (only == != < <= > >=){_where(n)}")
        types = [_check(n.left)] + [_check(c) for c in n.comparators]
        for i, op in enumerate(n.ops):
            a, b = types[i], types[i + 1]
            if a != b:
                raise ValueError(f"cannot compare a {a} with a {b}{_where(n)}")
            if a == BOOL and not isinstance(op, ast.Eq | ast.NotEq):
                raise ValueError(f"< <= > >= need numbers, not truth values{_where(n)}")
        return BOOL
    if isinstance(n, ast.Attribute):
        ch = _channel_call(n.value)
        if ch is not None:
            if n.attr not in CHANNEL_ATTRS:
                raise ValueError(f"channel(...) has no attribute {n.attr!r}{_where(n)}"
                                 f" (allowed: {', '.join(CHANNEL_ATTRS)})")
            return CHANNEL_ATTRS[n.attr]
        if _node_call(n.value) is not None:
            if n.attr not in NODE_ATTRS:
                raise ValueError(f"node(...) has no attribute {n.attr!r}{_where(n)}"
                                 f" (allowed: {', '.join(NODE_ATTRS)}, channel(i))")
            return NODE_ATTRS[n.attr]
        raise ValueError(f"attribute {n.attr!r} is not allowed{_where(n)}"
                         ' (only node("id").attr and node("id").channel(i).attr)')
    if isinstance(n, ast.Call):
        if _channel_call(n) is not None or _node_call(n) is not None:
            raise ValueError(f"node(...) needs an attribute, e.g. node(\"id\").c{_where(n)}")
        what = f"{n.func.id}(...)" if isinstance(n.func, ast.Name) else "calling a method"
        raise ValueError(f'{what} is not allowed (the only call is node("id")){_where(n)}')
    raise ValueError(f"{_describe(n)} is not allowed{_where(n)}")


class Condition:
    """A compiled ``when`` expression; :meth:`evaluate` walks its AST."""

    def __init__(self, source: str) -> None:
        if not isinstance(source, str) or not source.strip():
            raise ValueError("must be a non-empty string")
        if len(source) > MAX_WHEN:
            raise ValueError(f"longer than {MAX_WHEN} characters")
        try:
            tree = ast.parse(source.strip(), mode="eval")
        except SyntaxError as e:
            raise ValueError(f"syntax error at column {e.offset or 0}: {e.msg}") from None
        except (RecursionError, MemoryError, ValueError):
            raise ValueError("cannot be parsed (too deeply nested?)") from None
        try:
            kind = _check(tree.body)
        except RecursionError:
            raise ValueError("too deeply nested") from None
        if kind != BOOL:
            raise ValueError("must be a condition (true/false), e.g. 'G >= 0.8', not a number")
        self.source = source
        self.tree = tree

    def __repr__(self) -> str:
        return f"Condition({self.source!r})"

    def evaluate(self, state: Mapping[str, Any]) -> bool:
        """True/False; False when a named node or channel is unknown.
        Raises EvalError for a missing or mistyped state value or a division by zero."""
        try:
            return bool(self._eval(self.tree.body, state))
        except _UnknownNode:
            return False
        except (TypeError, ValueError, OverflowError) as e:  # e.g. a string where G should be
            raise EvalError(f"{type(e).__name__}: {e}") from None

    def _eval(self, n: ast.AST, st: Mapping[str, Any]) -> Any:
        if isinstance(n, ast.Constant):
            return n.value
        if isinstance(n, ast.Name):
            return _name(n.id, st)
        if isinstance(n, ast.BoolOp):
            if isinstance(n.op, ast.And):
                return all(self._eval(v, st) for v in n.values)
            return any(self._eval(v, st) for v in n.values)
        if isinstance(n, ast.UnaryOp):
            v = self._eval(n.operand, st)
            return not v if isinstance(n.op, ast.Not) else -v if isinstance(n.op, ast.USub) else v
        if isinstance(n, ast.BinOp):
            a, b = self._eval(n.left, st), self._eval(n.right, st)
            if isinstance(n.op, ast.Div) and b == 0:
                raise EvalError("division by zero")
            return _OPS[type(n.op)](a, b)
        if isinstance(n, ast.Compare):
            left = self._eval(n.left, st)
            for op, c in zip(n.ops, n.comparators, strict=True):
                right = self._eval(c, st)
                if not _OPS[type(op)](left, right):
                    return False
                left = right
            return True
        if isinstance(n, ast.Attribute):
            ch = _channel_call(n.value)
            if ch is not None:
                chans = _node_state(ch[0], st).get("channels") or []
                if ch[1] >= len(chans):
                    raise _UnknownNode
                return _field(chans[ch[1]], n.attr, f"node {ch[0]!r} channel {ch[1]}")
            node = _node_call(n.value)
            assert node is not None
            return _field(_node_state(node, st), n.attr, f"node {node!r}")
        raise EvalError(f"cannot evaluate {type(n).__name__}")  # unreachable after _check


def _psi(st: Mapping[str, Any]) -> complex:
    try:
        return complex(st["psi"])
    except KeyError:
        raise EvalError("state has no 'psi'") from None
    except (TypeError, ValueError):
        raise EvalError("state 'psi' is not a number") from None


def _name(name: str, st: Mapping[str, Any]) -> Any:
    if name == "psi_re":
        return _psi(st).real
    if name == "psi_im":
        return _psi(st).imag
    if name == "x":
        return (1.0 + _psi(st).real) / 2.0
    return _field(st, name, "state")


def _field(d: Any, key: str, what: str) -> Any:
    try:
        v = d[key]
    except (KeyError, TypeError, IndexError):
        raise EvalError(f"{what} has no {key!r}") from None
    if v is None:
        raise EvalError(f"{what} {key!r} is None")
    return v


def _node_state(node: str, st: Mapping[str, Any]) -> Mapping[str, Any]:
    nodes = st.get("nodes") or {}
    n = nodes.get(node) if isinstance(nodes, Mapping) else None
    if not isinstance(n, Mapping):
        raise _UnknownNode
    return n


RULE_KEYS = ("name", "when", "for", "min_interval", "edge", "action", "with")


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
                 line: int | None = None) -> None:
        self.name = name
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

    def __repr__(self) -> str:
        return f"Rule({self.name!r}, when={self.when.source!r}, action={self.action!r})"

    def reset(self) -> None:
        """Forget the timing state (not the counters)."""
        self._since, self._armed = None, True

    def check(self, state: Mapping[str, Any]) -> bool:
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


_HEADER = re.compile(r"""^\s*\[\[\s*(?:rules|"rules"|'rules')\s*\]\]""")
_TRIPLE = re.compile(r'"""|\'\'\'')


def rule_lines(toml_text: str) -> list[int]:
    """1-based line numbers of the ``[[rules]]`` headers, in order (lines
    inside multi-line strings are skipped, roughly: by counting quotes)."""
    out, in_str = [], ""
    for no, line in enumerate(toml_text.splitlines(), 1):
        if not in_str and _HEADER.match(line):
            out.append(no)
        for q in _TRIPLE.findall(line):
            if not in_str:
                in_str = q
            elif q == in_str:
                in_str = ""
    return out


def _number(v: Any, key: str) -> float:
    if isinstance(v, bool) or not isinstance(v, int | float) or not math.isfinite(v) or v < 0:
        raise ValueError(f"{key!r}: must be a number >= 0 (seconds), got {v!r}")
    return float(v)


def _parse_one(i: int, raw: Any, line: int | None, names: set[str]) -> Rule:
    def fail(key: str | None, reason: str) -> RuleError:
        where = f"rules[{i}]" + (f" (line {line})" if line else "")
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
    from hub.outputs import ADAPTERS, adapter_class  # lazy: hub.outputs imports this module

    action = raw["action"]
    if not isinstance(action, str) or action not in ADAPTERS:
        raise fail("action", f"unknown action {action!r} (known: {', '.join(ADAPTERS)})")
    try:
        hold = _number(raw.get("for", 0.0), "for")
        interval = _number(raw.get("min_interval", 0.0), "min_interval")
    except ValueError as e:
        key, _, reason = str(e).partition(": ")
        raise fail(key.strip("'"), reason) from None
    edge = raw.get("edge", True)
    if not isinstance(edge, bool):
        raise fail("edge", f"must be true or false, got {edge!r}")
    params = raw.get("with", {})
    if not isinstance(params, dict):
        raise fail("with", "must be a table ([rules.with])")
    try:
        params = adapter_class(action).validate(dict(params))
    except (RuleError, ValueError, TypeError) as e:
        reason = getattr(e, "reason", str(e))
        key = getattr(e, "key", None)
        raise fail(f"with.{key}" if key else "with", reason) from None
    return Rule(name, when, action, hold=hold, min_interval=interval, edge=edge,
                params=params, index=i, line=line)


def parse_rules(toml_text: str) -> list[Rule]:
    """The ``[[rules]]`` of a hub config (other tables are ignored).

    Raises RuleError for invalid TOML or any bad rule, naming the rule's index
    and the line of its ``[[rules]]`` header.  Adapter parameters are checked
    by each adapter's ``validate`` (which needs no connection).
    """
    try:
        doc = tomllib.loads(toml_text)
    except tomllib.TOMLDecodeError as e:
        raise RuleError(f"config: invalid TOML: {e}") from None
    raw = doc.get("rules", [])
    if not isinstance(raw, list):
        raise RuleError("config: 'rules' must be an array of tables ([[rules]])", key="rules")
    lines = rule_lines(toml_text)
    if len(lines) != len(raw):  # e.g. rules = [{...}] inline: no headers to point at
        lines = []
    out: list[Rule] = []
    names: set[str] = set()
    for i, r in enumerate(raw):
        rule = _parse_one(i, r, lines[i] if lines else None, names)
        names.add(rule.name)
        out.append(rule)
    return out
