"""Writing a file whole: the one way the hub replaces the files it owns
(node keys, node configs, the event log's signed head, the broker's files),
private (0600) unless asked otherwise."""

from __future__ import annotations

import os
from pathlib import Path


def write_atomic(path: str | Path, text: str, mode: int = 0o600) -> None:
    """Replace ``path`` with ``text``: a temp file beside it, ``mode`` from the
    first byte, flushed to disk, then renamed over the old one, so a reader or
    a crash sees the old file or the new one, never half of one.  OSError as
    the OS gives it (the temp file is removed); callers say what failed."""
    p = Path(path)
    tmp = p.with_name(f".{p.name}.{os.getpid()}.tmp")
    try:
        fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, mode)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(text)
            f.flush()
            os.fsync(f.fileno())
        os.chmod(tmp, mode)  # an existing temp file keeps its old mode through O_CREAT
        os.replace(tmp, p)
    except OSError:
        tmp.unlink(missing_ok=True)
        raise
