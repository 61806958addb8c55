"""The console's terminal-free part (docs/console.md): Console.feed(bytes)
-> lines to show (the node's @K1 frames decoded, everything else untouched),
Console.command(text) -> bytes to send (a console command as a frame, any
other line as typed; CommandError for a bad one).  becomingone.console is
the terminal around it."""

from __future__ import annotations

import random
import re
import time
from collections.abc import Callable

from becomingone.errors import BecomingOneError
from kairos import wire

SET_KEYS = ("lags", "s", "s0", "omega", "ic", "hysteresis", "dwell")  # firmware/node/commands.py
COMMANDS = ("ping", "hello", "set", "led", "pixel", "buzzer", "motor", "reboot")
USAGE = {
    "ping": "ping",
    "hello": "hello",
    "set": f"set [CH] KEY VALUE ... (KEY: {', '.join(SET_KEYS)}; e.g. set lags 2,4,8)",
    "led": "led on|off",
    "pixel": "pixel R G B (0..255 each)",
    "buzzer": "buzzer HZ (0..65535, 0 = silent)",
    "motor": "motor DUTY (0..65535)",
    "reboot": "reboot",
}
HELP = ("commands: ping | hello | set [CH] KEY VALUE | led on|off | pixel R G B | buzzer HZ | "
        "motor DUTY | reboot; any other line goes to the board; Ctrl-C goes to the board, "
        "Ctrl-] exits")
_INT = re.compile(r"[+-]?\d+\Z")
# "led = Pin(2)", "ping()", "motor.duty(3)", "set += 1": Python for the REPL,
# not console commands, even though the first word is a command's name.
_PYTHON = re.compile(r"(=|\(|\[|\.|:|,|[-+*/%&|^<>@]=|\*\*|//)")
_HOLD = 256  # unanswered pings / commands remembered (for the round trip)
_NODE_TYPES = ("hello", "report", "event", "pong", "ack")


class CommandError(BecomingOneError, ValueError):
    """A typed console command with bad arguments: nothing was sent."""


def _int(word: str, what: str, lo: int, hi: int) -> int:
    if not _INT.match(word):
        raise CommandError(f"{what} must be an integer, got {word!r}")
    v = int(word)
    if not lo <= v <= hi:
        raise CommandError(f"{what} must be {lo}..{hi}, got {v}")
    return v


def _text(b: bytes) -> str:
    """A line as the board sent it, without its line ending."""
    return b.rstrip(b"\r\n").decode("utf-8", "replace")


def _ms(v: float) -> str:
    return f"{v:.1f} ms" if v < 100 else f"{v:.0f} ms"


class Console:
    """Decoding, formatting and command encoding; no terminal, no port.

    now() gives the wall-clock time for the line stamps, mono() a monotonic
    clock for round trips (both in seconds).  node: the node commands go to
    (default: the last node heard from).
    """

    def __init__(self, node: str | None = None, now: Callable[[], float] = time.time,
                 mono: Callable[[], float] = time.monotonic, boot: int | None = None) -> None:
        self.target = node
        self.node: str | None = None  # the last node heard from
        self._now = now
        self._mono = mono
        self.boot = random.getrandbits(30) if boot is None else boot
        self.seq = 0
        self._id = 0
        self.hellos: dict[str, dict] = {}  # node -> its hello (of the boot in self.boots)
        self.boots: dict[str, int] = {}  # node -> the boot id of its latest frame
        self.sent: dict[int, tuple[str, float]] = {}  # cmd / ping id -> (text, mono)
        self.counts: dict[str, int] = {}  # frames rejected, by reason
        self._k: dict[tuple[str, int], int] = {}  # last dominant lag per (node, channel)
        self._buf = bytearray()  # the incomplete line
        # Frames of a boot whose hello we missed: ask the node for it (a cmd
        # "hello", once per boot); the terminal sends what collects here.
        self.ask_hello = True
        self.outbox: list[bytes] = []
        self._asked: dict[str, int] = {}  # node -> the boot we asked a hello of

    # -- board -> screen ----------------------------------------------------
    def feed(self, data: bytes) -> list[str]:
        """Bytes from the port -> complete lines to show (no line endings)."""
        self._buf += data
        out: list[str] = []
        while True:
            i = self._buf.find(b"\n")
            if i < 0:
                break
            line = bytes(self._buf[: i + 1])
            del self._buf[: i + 1]
            out += self._line(line)
        if len(self._buf) > wire.MAX_LINE + 256:  # a line that never ends: show it in pieces
            out += self.flush()
        return out

    def pending(self) -> str:
        """The incomplete line so far (a prompt such as ">>> "), up to any
        "@" (which may start a frame), for a terminal to show meanwhile."""
        b = bytes(self._buf)
        i = b.find(b"@")
        return _text(b if i < 0 else b[:i])

    def flush(self) -> list[str]:
        """The incomplete line as lines (the port went away mid-line)."""
        if not self._buf:
            return []
        line = bytes(self._buf)
        self._buf.clear()
        return self._line(line)

    def _line(self, line: bytes) -> list[str]:
        j = line.find(b"@K")
        if j < 0:
            return [_text(line)]
        dec = wire.LineDecoder()
        msgs = dec.feed(line[j:] if line.endswith(b"\n") else line[j:] + b"\n")
        bad = {k: n for k, n in dec.counts.items() if k != wire.NOISE}
        if not msgs and not bad:
            return [_text(line)]  # "@K" in a REPL line, not a frame
        out = [_text(line[:j])] if line[:j].strip() else []
        for m in msgs:
            out += self.show(m)
        if bad:
            for k, n in bad.items():
                self.counts[k] = self.counts.get(k, 0) + n
            frame = _text(line[j:])
            if len(frame) > 120:
                frame = frame[:120] + "..."
            out.append(f"?? bad frame ({', '.join(sorted(bad))}): {frame}")
        return out

    def show(self, m: dict) -> list[str]:
        """One decoded frame -> its line, after a note when it is the first
        frame of a new boot whose hello the console missed."""
        note = ""
        if m["t"] in _NODE_TYPES and m["t"] != "hello":
            note = self._boot(m["node"], m["boot"])
            self._want_hello(m["node"], m["boot"])
        line = self.format(m)
        return [f"{self._stamp(m['node'])} {note}", line] if note else [line]

    def _stamp(self, node: str) -> str:
        return time.strftime("%H:%M:%S", time.localtime(self._now())) + " " + node

    def format(self, m: dict) -> str:
        """One decoded frame as a readable line."""
        t, node = m["t"], m["node"]
        head = self._stamp(node)
        if t in _NODE_TYPES:
            self.node = node
        if t == "hello":
            prev = self.boots.get(node)
            self.hellos[node] = m
            self.boots[node] = m["boot"]
            self._forget_lags(node)  # the channels may have changed
            note = " (new boot)" if prev is not None and prev != m["boot"] else ""
            chs = "; ".join(
                f"{c['name'] or i}: lags {','.join(map(str, c['lags']))} s={c['s']} "
                f"s0={c['s0']} ic={c['ic']}" for i, c in enumerate(m["ch"]))
            return (f"{head} hello{note}: board {m['board']} fw {m['fw']}, "
                    f"{m['period']} ms period, report every {m['every']}, "
                    f"caps {','.join(m['caps']) or '-'} | {chs}")
        if t == "report":
            rows = m["ch"]
            parts = []
            for i, row in enumerate(rows):
                c, k, coll = row[3], row[2], row[6]
                self._k[(node, i)] = k
                name = self._chname(node, i) + " " if len(rows) > 1 else ""
                parts.append(f"{name}c={c / 32768:.2f} τ={self._tau(node, i, k)}"
                             + (" collapsed" if coll else ""))
            extra = "".join(f" {k}={m[k]}" for k in ("drop", "miss") if m[k])
            return f"{head} {' | '.join(parts) or 'no channels'}{extra}"
        if t == "event":
            i = m["i"]
            h = self.hellos.get(node)
            name = self._chname(node, i) + " " if h is None or len(h["ch"]) > 1 else ""
            k = self._k.get((node, i))
            tau = "" if k is None else f" τ={self._tau(node, i, k)}"
            what = "COLLAPSE" if m["on"] else "collapse over"
            return f"{head} {name}c={m['c'] / 32768:.2f}{tau} {what}"
        if t == "pong":
            held = (m["t2"] - m["t1"]) & wire.M30
            sent = self.sent.pop(m["id"], None)
            if sent is not None:
                rtt = (self._mono() - sent[1]) * 1000
            else:  # not ours (or forgotten): t0 is a 30-bit ms tick
                rtt = float((self._tick() - m["t0"]) & wire.M30)
            return (f"{head} pong #{m['id']}: round trip {_ms(rtt)} "
                    f"(node tick {m['t1']}, held {held} ms)")
        if t == "ack":
            sent = self.sent.pop(m["id"], None)
            what = f" ({sent[0]})" if sent is not None else ""
            if not m["ok"]:
                return f"{head} ack #{m['id']}{what}: ERROR {m['err']}"
            rtt = f" in {_ms((self._mono() - sent[1]) * 1000)}" if sent is not None else ""
            return f"{head} ack #{m['id']}{what}: ok{rtt}"
        if t == "cmd":  # hub->node frames on the port: the REPL echoing one back
            return f"{head} <- cmd #{m['id']} {m['op']} {m['args']}"
        return f"{head} <- ping #{m['id']}"

    def _boot(self, node: str, boot: int) -> str:
        """A frame from a boot other than the one we know for this node (the
        board was reset and its hello missed: the port came back after the
        node had sent it): forget the old hello, whose lags would give wrong
        τ, and say so once.  "" when nothing changed."""
        prev = self.boots.get(node)
        self.boots[node] = boot
        if prev is None or prev == boot:
            return ""
        self._forget_lags(node)
        if self.hellos.pop(node, None) is None:
            if self.ask_hello:
                return (f"new boot {boot} (no hello seen yet: asked for it; τ shown as lag#k "
                        "until then)")
            return f"new boot {boot} (no hello seen yet: τ shown as lag#k until one)"
        if self.ask_hello:
            return (f"new boot {boot}, its hello was missed: asked for it (τ shown as lag#k "
                    "until it comes)")
        return (f"new boot {boot}, its hello was missed: lags unknown, τ shown as lag#k "
                "until the next hello")

    def _want_hello(self, node: str, boot: int) -> None:
        """No hello of this boot yet: queue a "hello" cmd for it (once per boot)."""
        if not self.ask_hello or node in self.hellos or self._asked.get(node) == boot:
            return
        self._asked[node] = boot
        mid = self._next_id()
        msg = {"t": "cmd", "node": node, "boot": self.boot, "seq": self.seq,
               "tick": self._tick(), "id": mid, "op": "hello", "args": {}}
        self.outbox.append(self._send(msg, mid, "hello, automatic"))

    def take(self) -> list[bytes]:
        """The frames the console wants sent on its own (hello requests)."""
        out, self.outbox = self.outbox, []
        return out

    def _forget_lags(self, node: str) -> None:
        for key in [key for key in self._k if key[0] == node]:
            del self._k[key]

    def _chname(self, node: str, i: int) -> str:
        h = self.hellos.get(node)
        if h is not None and i < len(h["ch"]) and h["ch"][i]["name"]:
            return h["ch"][i]["name"]
        return f"ch{i}"

    def _tau(self, node: str, i: int, k: int) -> str:
        """The dominant lag k in ms (lag x period, from the hello), or the
        index before a hello was seen."""
        h = self.hellos.get(node)
        if h is None or i >= len(h["ch"]) or k >= len(h["ch"][i]["lags"]):
            return f"lag#{k}"
        ms = h["ch"][i]["lags"][k] * h["period"]
        return f"{ms}ms" if ms < 10000 else f"{ms / 1000:.1f}s"

    # -- keyboard -> board ----------------------------------------------------
    def command(self, text: str) -> bytes:
        """A typed line -> the bytes to send.  A console command becomes a
        frame; any other line goes as typed + "\\r\\n".  CommandError (and
        nothing sent, no id used) for a console command with bad arguments."""
        text = text.rstrip("\r\n")
        if not self.is_command(text):
            return text.encode("utf-8") + b"\r\n"
        word, _, rest = text.partition(" ")
        rest = rest.strip()
        op, args = self._parse(word, rest)
        mid = self._next_id()
        if op == "ping":  # the clock-sync ping: answered by a pong
            return self._send(self._head("ping", id=mid, t0=self._tick()), mid, text)
        return self._send(self._head("cmd", id=mid, op=op, args=args), mid, text)

    @staticmethod
    def is_command(text: str) -> bool:
        """Whether a typed line is a console command (else it is for the board)."""
        word, _, rest = text.rstrip("\r\n").partition(" ")
        return word in COMMANDS and not _PYTHON.match(rest.strip())

    def _parse(self, word: str, rest: str) -> tuple[str, dict]:
        words = rest.replace(",", " ").split()
        try:
            if word in ("ping", "hello", "reboot"):
                if rest:
                    raise CommandError(f"takes no arguments, got {rest!r}")
                return word, {}
            if word == "set":
                return "set", _set_args(rest.split())
            if word == "led":
                if rest not in ("on", "off", "1", "0"):
                    raise CommandError(f"expected on or off, got {rest or 'nothing'!r}")
                return "out", {"name": "led", "on": 1 if rest in ("on", "1") else 0}
            if word == "pixel":
                if len(words) != 3:
                    raise CommandError(f"expected 3 values (R G B), got {len(words)}")
                rgb = [_int(w, c, 0, 255) for w, c in zip(words, "RGB", strict=True)]
                return "out", {"name": "pixel", "rgb": rgb}
            if len(words) != 1:
                raise CommandError(f"expected one value, got {len(words)}")
            if word == "buzzer":
                freq = 0 if words[0] == "off" else _int(words[0], "HZ", 0, 65535)
                return "out", {"name": "buzzer", "freq": freq}
            return "out", {"name": "motor", "duty": _int(words[0], "DUTY", 0, 65535)}
        except CommandError as e:
            raise CommandError(f"{word}: {e} (usage: {USAGE[word]})") from None

    def _next_id(self) -> int:
        return (self._id % 65535) + 1  # 1..65535; committed by _send

    def _tick(self) -> int:
        return int(self._mono() * 1000) & wire.M30

    def _head(self, t: str, **fields) -> dict:
        node = self.target or self.node
        if node is None:
            raise CommandError("no node heard from yet: wait for one of its frames "
                               "(or name it: --node NAME)")
        return dict({"t": t, "node": node, "boot": self.boot, "seq": self.seq,
                     "tick": self._tick()}, **fields)

    def _send(self, msg: dict, mid: int, text: str) -> bytes:
        bad = wire.validate(msg)
        if bad:  # cannot happen for parsed commands; never send a bad frame
            raise CommandError(f"{text}: not a valid frame ({bad})")
        data = wire.encode_line(msg)
        self._id = mid
        self.seq = (self.seq + 1) & wire.M30
        self.sent[mid] = (text.strip(), self._mono())
        while len(self.sent) > _HOLD:
            del self.sent[next(iter(self.sent))]
        return data


def _set_args(words: list[str]) -> dict:
    """set [CH] KEY VALUE [KEY VALUE ...]: the value of lags may be spread
    over words ("2,4,8" or "2, 4, 8"); the node checks the values."""
    args: dict = {"ch": 0}
    if words and _INT.match(words[0]):
        args["ch"] = _int(words[0], "CH", 0, 7)
        words = words[1:]
    if not words:
        raise CommandError("nothing to set")
    i = 0
    while i < len(words):
        key = words[i]
        if key not in SET_KEYS:
            raise CommandError(f"cannot set {key!r} (settable: {', '.join(SET_KEYS)})")
        if key in args:
            raise CommandError(f"{key} given twice")
        j = i + 1
        while j < len(words) and words[j] not in SET_KEYS:
            j += 1
        vals = " ".join(words[i + 1: j]).replace(",", " ").split()
        if not vals:
            raise CommandError(f"{key} needs a value")
        if key == "lags":
            if len(vals) > 8:
                raise CommandError(f"lags: at most 8, got {len(vals)}")
            args[key] = [_int(v, "a lag", 1, 1024) for v in vals]
        else:
            if len(vals) != 1:
                raise CommandError(f"{key} takes one value, got {' '.join(vals)!r}")
            args[key] = _int(vals[0], key, -wire.M30, wire.M30)
        i = j
    return args
