"""Where each key of a TOML text was written: the line numbers config errors cite.

tomllib, the standard library's parser that reads the hub's config, returns
plain dicts with no positions.  Of the alternatives, tomlkit keeps none either
(a format-preserving tree; line numbers are its issue #55, open since 2019)
and spanned-toml, a tomli fork with spans, has had no release since 2022.  A
regex over the text (what the rules used to do) is fooled by a header inside a
multi-line string or an inline array.  So the index asks tomllib itself:

A TOML document is a sequence of statements (a ``[table]`` or ``[[array]]``
header, or ``key = value``) and no statement depends on a later one.  So the
first k lines of a valid document parse on their own exactly when line k ends
a statement (a cut inside a multi-line string or array does not parse), and
what such a prefix holds only grows with k.  The line where a key's statement
starts is therefore the first line after the longest parsable prefix that
does not hold the key yet; a bisection finds it in about log2(lines) parses
of prefixes, each cached.  The answer cannot disagree with what was read: the
same parser read the file and places the key.  Lookups are made when a
message needs a line (and once per rule, for the rules' API), never per frame.
"""

from __future__ import annotations

import tomllib
from typing import Any

Path = tuple[str | int, ...]  # ("mqtt", "port"), ("rules", 2, "with", "topic")


def _holds(doc: Any, path: Path) -> bool:
    for part in path:
        if isinstance(part, int):
            if not isinstance(doc, list) or not 0 <= part < len(doc):
                return False
        elif not isinstance(doc, dict) or part not in doc:
            return False
        doc = doc[part]
    return True


class LineIndex:
    """The 1-based line of any key of ``text`` (a valid TOML document).

    ``line("mqtt", "port")`` is the line of ``port = ...`` under ``[mqtt]``;
    ``line("rules", 1)`` the line of the second ``[[rules]]`` header (or of
    ``rules = [...]`` for an inline array).  A path the document does not hold
    gives the line of its longest part that it does (a missing key: its
    table's header), and None when not even the first part is there.
    """

    def __init__(self, text: str, doc: dict[str, Any] | None = None) -> None:
        # Lines as TOML counts them: LF ends a line (CRLF too), nothing else does
        # (str.splitlines would also split at form feeds or U+2028 inside strings).
        parts = text.split("\n")
        self._lines = [p + "\n" for p in parts[:-1]] + ([parts[-1]] if parts[-1] else [])
        self._doc = tomllib.loads(text) if doc is None else doc
        self._parsed: dict[int, dict[str, Any] | None] = {0: {}, len(self._lines): self._doc}
        self._found: dict[Path, int | None] = {}

    def line(self, *path: str | int) -> int | None:
        held = tuple(path)
        while held and not _holds(self._doc, held):
            held = held[:-1]
        if not held:
            return None
        if held not in self._found:
            self._found[held] = self._bisect(held)
        return self._found[held]

    def _prefix(self, k: int) -> dict[str, Any] | None:
        """The first k lines, parsed; None if they end inside a statement."""
        if k not in self._parsed:
            try:
                self._parsed[k] = tomllib.loads("".join(self._lines[:k]))
            except tomllib.TOMLDecodeError:
                self._parsed[k] = None
        return self._parsed[k]

    def _holds_by(self, k: int, path: Path) -> bool:
        """Whether the statements within the first k lines (up to the end of
        the statement line k is in) hold path: monotone in k."""
        while (doc := self._prefix(k)) is None:
            k += 1  # (the whole text parses: this ends)
        return _holds(doc, path)

    def _bisect(self, path: Path) -> int:
        lo, hi = 1, len(self._lines)  # the answer is in [lo, hi]: the whole text holds path
        while lo < hi:
            mid = (lo + hi) // 2
            if self._holds_by(mid, path):
                hi = mid
            else:
                lo = mid + 1
        return lo
