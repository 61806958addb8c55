"""Node keys: the file that holds them, and the hub's check of each frame's MAC.

The keys file (``[hub] keys``, ``nodes.keys`` by default) is written by
``becomingone flash`` and ``becomingone keys add``, mode 0600, one node a line:

    # BecomingONE node keys: <node id> <key, 32..128 hex digits>.  Keep it private.
    kitchen-1 3f9c0b6e6a1d4e0fa8b3c2d1e0f9a8b7

A node flashed with a key signs every frame (kairos.mac, docs/protocol.md §9).
NodeKeys is what the transports' decoders ask about every frame, before the
dedup sees it (kairos.wire's ``auth``): a frame of a node that has a key
stands only with that key's MAC; a node without one is taken as before,
unless ``[hub] require_keys`` is true.  A refused frame is counted, per
source and per node (Registry.reject, reason "auth"), never logged one by
one.  The file is read again when it changes (looked at, at most, once a
second), so a node flashed while the hub runs is known at once.

The node's MQTT password (for a broker that checks logins,
``becomingone broker-config``) is derived from its key (mqtt_password): one
secret per node, and the MAC key itself never goes over the wire.
"""

from __future__ import annotations

import hmac
import os
import secrets
import stat
import threading
import time
from collections.abc import Callable
from pathlib import Path

from becomingone.errors import BecomingOneError
from becomingone.files import write_atomic
from kairos import wire
from kairos.mac import AUTH, KEY_MIN, Mac, key_from_hex

HEADER = ("# BecomingONE node keys: <node id> <key, 32..128 hex digits>, one node a line.\n"
          "# Keep this file private (0600): a key lets its holder speak as its node.\n")
RELOAD_EVERY = 1.0  # s: how often NodeKeys looks whether the file changed
MAX_OTHERS = 1000  # unkeyed nodes remembered (for saying once that they sign)
# reject(source, reason, node): Registry.reject
Reject = Callable[[str, str, str | None], None]
Auth = Callable[[dict, bytes | None, bytes | None], bool]


class KeysError(BecomingOneError):
    """A keys file that cannot be read or written: ``path:line: reason``."""


def new_key() -> str:
    """A fresh node key: 16 random bytes (os.urandom), as 32 hex digits."""
    return secrets.token_hex(KEY_MIN)


def mqtt_password(key: str) -> str:
    """The node's MQTT password, derived from its key (hex): a broker login
    that can be sent in the clear without giving the MAC key away."""
    return hmac.new(key_from_hex(key), b"becomingone mqtt password", "sha256").hexdigest()[:32]


def read_keys(path: str | Path) -> dict[str, str]:
    """node -> key (hex) of a keys file; {} if there is none.  KeysError for
    a line that is not ``<node id> <key>`` or a node given twice."""
    p = Path(path)
    try:
        text = p.read_text(encoding="ascii")
    except FileNotFoundError:
        return {}
    except (OSError, UnicodeError) as e:
        raise KeysError(f"{p}: cannot read: {e}") from None
    keys: dict[str, str] = {}
    for n, line in enumerate(text.splitlines(), 1):
        words = line.split()
        if not words or words[0].startswith("#"):
            continue
        if len(words) != 2 or not wire.node_ok(words[0]):
            raise KeysError(f"{p}:{n}: expected '<node id> <key>' (the key is never shown)")
        node, key = words
        try:
            key_from_hex(key)
        except ValueError:
            raise KeysError(f"{p}:{n}: {node}: the key must be 32..128 hex digits") from None
        if node in keys:
            raise KeysError(f"{p}:{n}: {node} is given twice")
        keys[node] = key.lower()
    return keys


def write_keys(path: str | Path, keys: dict[str, str]) -> None:
    """Write the keys file whole: a private temp file renamed over it, so a
    reader sees the old file or the new one, and its mode is 0600 from the
    first byte."""
    p = Path(path)
    body = HEADER + "".join(f"{n} {k}\n" for n, k in sorted(keys.items()))
    try:
        write_atomic(p, body)
    except OSError as e:
        raise KeysError(f"{p}: cannot write: {e.strerror or e}") from None


def ensure_key(path: str | Path, node: str, renew: bool = False) -> tuple[str, bool]:
    """(the node's key, whether it is new): the one in the keys file, or a
    new one added to it (renew=True: always a new one)."""
    if not wire.node_ok(node):
        raise KeysError(f"{node!r} is not a node id (1..32 characters [A-Za-z0-9_.-])")
    keys = read_keys(path)
    if node in keys and not renew:
        return keys[node], False
    keys[node] = new_key()
    write_keys(path, keys)
    return keys[node], True


def loose_mode(path: str | Path) -> int | None:
    """The file's mode if group or others may read or write it, else None."""
    try:
        mode = stat.S_IMODE(os.stat(path).st_mode)
    except OSError:
        return None
    return mode if mode & 0o077 else None


class NodeKeys:
    """The hub's node keys and its check of every frame (thread-safe: every
    transport thread calls check)."""

    def __init__(self, path: str | Path | None, require: bool = False,
                 log: Callable[[str], None] = print, reject: Reject | None = None,
                 clock: Callable[[], float] = time.monotonic) -> None:
        self.path = Path(path) if path else None
        self.require = require
        self.log = log
        self.reject = reject
        self.clock = clock
        self.rejected: dict[str, int] = {}  # keyed node -> frames refused ("*": the others)
        self._macs: dict[str, Mac] = {}
        self._stamp: tuple[int, int] | None = None  # (mtime_ns, size) of the file read
        self._next_look = 0.0
        self._signers: set[str] = set()  # unkeyed nodes that sign (said once)
        self._lock = threading.Lock()
        self._load(strict=True)  # a bad file at start: KeysError, the hub does not start

    # -- the file ---------------------------------------------------------------
    def _load(self, strict: bool = False) -> None:
        if self.path is None:
            return
        try:
            st = os.stat(self.path)
            stamp: tuple[int, int] | None = (st.st_mtime_ns, st.st_size)
        except OSError:
            stamp = None
        if stamp == self._stamp:
            return
        try:
            keys = read_keys(self.path)
        except KeysError as e:
            if strict:
                raise
            # Keep what was read before: one bad edit must not open the door.
            self.log(f"keys: {e}; keeping the {len(self._macs)} keys read before")
            self._stamp = stamp
            return
        first = self._stamp is None and not self._macs
        self._macs = {n: Mac(key_from_hex(k)) for n, k in keys.items()}
        self._stamp = stamp
        if keys or not first:
            self.log(f"keys: {len(keys)} node key{'s' * (len(keys) != 1)} from {self.path}"
                     + ("" if first else " (the file changed)"))
        mode = loose_mode(self.path)
        if mode is not None:
            self.log(f"keys: {self.path} may be read by others (mode {mode:04o}): "
                     f"chmod 600 {self.path}")

    def _mac(self, node: str) -> Mac | None:
        now = self.clock()
        if now >= self._next_look:
            self._next_look = now + RELOAD_EVERY
            self._load()
        return self._macs.get(node)

    def nodes(self) -> list[str]:
        """The nodes that have a key."""
        with self._lock:
            return sorted(self._macs)

    # -- the check ----------------------------------------------------------------
    def auth(self, source: str) -> Auth:
        """The auth callable for a decoder of frames from source."""
        return lambda msg, signed, tag: self.check(source, msg, signed, tag)

    def check(self, source: str, msg: dict, signed: bytes | None, tag: bytes | None) -> bool:
        """Whether a decoded frame stands: a keyed node's frame needs its MAC
        (tag over signed); an unkeyed node's frame stands unless keys are
        required.  A refusal is counted (and handed to reject)."""
        node = msg["node"]
        with self._lock:
            m = self._mac(node)
            if m is None:
                if not self.require:
                    if tag is not None and node not in self._signers \
                            and len(self._signers) < MAX_OTHERS:
                        self._signers.add(node)
                        self.log(f"keys: {node} signs its frames but has no key in "
                                 f"{self.path or '(no keys file)'}: taken unchecked")
                    return True
                key = "*"
            elif signed is not None and m.verify(signed, tag):
                return True
            else:
                key = node
            self.rejected[key] = self.rejected.get(key, 0) + 1
        if self.reject is not None:
            self.reject(source, AUTH, node)
        return False

    def status(self) -> dict:
        """The file, how many keys, whether keys are required, the refusals."""
        with self._lock:
            return {"file": str(self.path) if self.path else None, "nodes": len(self._macs),
                    "require": self.require, "rejected": dict(self.rejected)}


def write_node_json(path: str | Path, node: str, key: str) -> dict:
    """Put the node's key into a node config (a CPython node's node.json;
    made if missing) and, if it has an [mqtt] part, its broker login (user =
    the node id, password = mqtt_password(key)).  Written 0600; returns it."""
    import json

    p = Path(path)
    try:
        cfg = json.loads(p.read_text()) if p.exists() else {"node": node}
    except (OSError, ValueError) as e:
        raise KeysError(f"{p}: cannot read the node config: {e}") from None
    if not isinstance(cfg, dict) or cfg.get("node", node) != node:
        raise KeysError(f"{p}: is the config of node {cfg.get('node')!r}, not {node!r}"
                        if isinstance(cfg, dict) else f"{p}: not a JSON object")
    cfg["node"], cfg["key"] = node, key
    if isinstance(cfg.get("mqtt"), dict):
        cfg["mqtt"]["user"], cfg["mqtt"]["password"] = node, mqtt_password(key)
    try:
        write_atomic(p, json.dumps(cfg, indent=1))
    except OSError as e:
        raise KeysError(f"{p}: cannot write: {e.strerror or e}") from None
    return cfg
