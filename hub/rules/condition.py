"""The condition language of output rules: the ``when`` expressions (docs/rules.md).

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
from collections.abc import Callable, Mapping
from typing import Any

from becomingone.errors import BecomingOneError


class EvalError(BecomingOneError):
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
