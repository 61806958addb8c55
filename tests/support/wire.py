"""Wire messages the kairos tests share: one fixed message of every type
(EXAMPLES), Hypothesis strategies for every valid message (MESSAGES,
ANY_MESSAGE), the longest valid message of a type (largest), the serial
garbage corpus with its exact reject counts (corpus) and the binary frames
the BLE and stream tests feed (FRAMES)."""
from hypothesis import HealthCheck, settings
from hypothesis import strategies as st

from kairos import wire, wirebin
from kairos.crc16 import crc16

M30 = 2**30 - 1
HEAD = {"node": "node-01", "boot": 123456789, "seq": 42, "tick": 987654321}

# One fixed message of every type.
EXAMPLES = [
    dict(HEAD, t="hello", board="esp32s3", fw="0.1.0", period=10, every=100, weight=1,
         caps=["led", "neopixel", "ble"],
         ch=[{"name": "acc_x", "lags": [2, 4, 8, 16], "s": 8, "s0": 2, "ic": 22938},
             {"name": "mic", "lags": [1], "s": 6, "s0": 0, "ic": 0}]),
    dict(HEAD, t="report", n=4096, drop=0, miss=3,
         ch=[[-1234, 5678, 2, 30000, -100000, 99999, 1], [16384, M30, 7, 32767, M30, -M30, 0],
             [-16384, 0, 0, 0, 0, 0, 0], [0, 1, 3, 1, -1, 1, 1]],
         coh=[[12000, 21000, 30000, 8000], [100, 2000, 5000, 9000, 16000, 24000, 30000, 32767],
              [0], [0, 0, 0, 1]]),
    dict(HEAD, t="event", i=2, on=1, c=31000, n=4100),
    dict(HEAD, t="ping", node="node-01", id=7, t0=5000),
    dict(HEAD, t="pong", id=7, t0=5000, t1=100, t2=102),
    dict(HEAD, t="cmd", id=9, op="set", args={"led": [255, 0, 0], "mode": 'a@b"c\\', "x": -5}),
    dict(HEAD, t="cmd", id=10, op="reboot", args={}),
    dict(HEAD, t="ack", id=9, ok=0, err="bad arg: 'mode'"),
]


# -- strategies: valid messages, written from the spec, not from wire.TYPES ----
def ascii_text(lo, hi):
    return st.text(st.characters(min_codepoint=32, max_codepoint=126), min_size=lo, max_size=hi)


U30 = st.integers(0, M30)
S30 = st.integers(-M30, M30)
ID = st.integers(0, 65535)
Q15 = st.integers(0, 32767)
NODE = st.text("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789_.-",
               min_size=1, max_size=32)
COMMON = {"node": NODE, "boot": U30, "seq": U30, "tick": U30}
CH_CFG = st.fixed_dictionaries({
    "name": ascii_text(0, 16),
    "lags": st.lists(st.integers(1, 1024), min_size=1, max_size=8),
    "s": st.integers(0, 255), "s0": st.integers(0, 255), "ic": Q15,
})
ROW = st.tuples(st.integers(-16384, 16384), U30, st.integers(0, 7), Q15, S30, S30,
                st.integers(0, 1)).map(list)
COH = st.lists(Q15, min_size=1, max_size=8)


@st.composite
def report_rows(draw):
    """ch and coh of a report: one spectrum per row, each row's k < its K."""
    coh = draw(st.lists(COH, max_size=8))
    rows = [draw(ROW) for _ in coh]
    for r, c in zip(rows, coh):
        r[2] %= len(c)
    return {"ch": rows, "coh": coh}


ARG = st.one_of(S30, ascii_text(0, 32), st.lists(S30, max_size=16))


def msg_of(t, **fields):
    return st.fixed_dictionaries(dict(COMMON, t=st.just(t), **fields))


MESSAGES = {
    "hello": msg_of("hello", board=ascii_text(0, 32), fw=ascii_text(0, 16),
                    period=st.integers(1, 60000), every=st.integers(1, 65535),
                    weight=st.integers(1, 255), caps=st.lists(ascii_text(0, 16), max_size=16),
                    ch=st.lists(CH_CFG, max_size=8)),
    "report": st.tuples(msg_of("report", n=U30, drop=U30, miss=U30),
                        report_rows()).map(lambda m: dict(m[0], **m[1])),
    "event": msg_of("event", i=st.integers(0, 7), on=st.integers(0, 1), c=Q15, n=U30),
    "ping": msg_of("ping", id=ID, t0=U30),
    "pong": msg_of("pong", id=ID, t0=U30, t1=U30, t2=U30),
    "cmd": msg_of("cmd", id=ID, op=ascii_text(1, 16),
                  args=st.dictionaries(ascii_text(1, 16), ARG, max_size=8)),
    "ack": msg_of("ack", id=ID, ok=st.integers(0, 1), err=ascii_text(0, 64)),
}
ANY_MESSAGE = st.one_of(*MESSAGES.values())
SLOW = settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def line_frame(j):
    """A serial line around the JSON bytes j, with a correct CRC."""
    return wire.MARKER + j + b" %04X\n" % crc16(j)


def largest(t):
    """The longest valid message of a type: longest strings (with "@", which
    JSON escapes to 6 bytes), most items, widest numbers."""
    at = lambda n: "@" * n  # noqa: E731
    head = {"node": "N" * 32, "boot": M30, "seq": M30, "tick": M30}
    row = [-16384, M30, 7, 32767, -M30, -M30, 1]
    cfg = {"name": at(16), "lags": [1024] * 8, "s": 255, "s0": 255, "ic": 32767}
    body = {
        "hello": dict(board=at(32), fw=at(16), period=60000, every=65535, weight=255,
                      caps=[at(16)] * 16, ch=[cfg] * 8),
        "report": dict(n=M30, drop=M30, miss=M30, ch=[row] * 8, coh=[[32767] * 8] * 8),
        "event": dict(i=7, on=1, c=32767, n=M30),
        "ping": dict(id=65535, t0=M30),
        "pong": dict(id=65535, t0=M30, t1=M30, t2=M30),
        "cmd": dict(id=65535, op=at(16),
                    args={"%s%02d" % (at(14), i): [-M30] * 16 for i in range(8)}),
        "ack": dict(id=65535, ok=1, err=at(64)),
    }[t]
    return dict(head, t=t, **body)


# -- binary frames (BLE fragments, mixed streams) ------------------------------
FRAMES = [wirebin.encode_bin(m) for m in (EXAMPLES[0], EXAMPLES[1], EXAMPLES[3])] + [
    wirebin.encode_bin(largest("hello"))]
FRAME_MSGS = [EXAMPLES[0], EXAMPLES[1], EXAMPLES[3], largest("hello")]


# -- the serial garbage corpus -------------------------------------------------
def ev(seq, boot=123456789, node="node-01"):
    return dict(HEAD, t="event", node=node, boot=boot, seq=seq, i=1, on=1, c=30000, n=seq)


def corpus():
    """(stream, messages expected out of LineDecoder, its exact counts)."""
    L = lambda m: wire.encode_line(m)  # noqa: E731
    body = lambda m: L(m)[4:-6]  # noqa: E731  the JSON of a line
    corrupt = bytearray(L(ev(6)))
    corrupt[30] ^= 0x04  # one flipped bit inside the JSON
    parts = [
        (L(ev(1)), [ev(1)]),
        (b"MicroPython v1.27.0 on 2026-06-01; ESP32S3 module\r\n", []),  # noise
        (b">>> \r\n\r\n\n", []),  # noise, then two blank lines (not counted)
        (b'Traceback (most recent call last):\n  File "main.py", line 4\n', []),  # 2 noise
        (L(ev(2)), [ev(2)]),
        (L(ev(3))[:40] + L(ev(4)), [ev(4)]),  # truncated: cut by the next marker
        (L(ev(5))[:50] + b"\n", []),  # truncated: the line ends before the CRC
        (b"@K1\n", []),  # truncated inside the marker
        (bytes(corrupt), []),  # crc
        (b"@K1 " + b"x" * (wire.MAX_LINE + 10) + b"@K1 more\n", []),  # oversize
        (L(ev(7)).replace(b"@K1 ", b"@K2 "), []),  # version (marker)
        (line_frame(body(ev(8)).replace(b'"v":1', b'"v":2')), []),  # version (JSON field)
        (line_frame(b'{"v":1,"t":"event",'), []),  # malformed JSON with a good CRC
        (line_frame(body(ev(9)).replace(b'"event"', b'"eventx"')), []),  # type
        (line_frame(body(ev(10)).replace(b'"i":1', b'"i":9')), []),  # malformed: range
        (b"mail me @Kevin\n", []),  # noise that contains "@K"
        (b"\xff\xfe\x00garbage\x80\n", []),  # noise, binary
        (L(ev(11)), [ev(11)]),
        (L(ev(2)), [ev(2)]),  # a valid frame again: the line layer passes it
        (L(ev(12, boot=1)), [ev(12, boot=1)]),  # a new boot
        (L(ev(13)), [ev(13)]),  # the old boot again: a replay
        (L(ev(1, boot=1)), [ev(1, boot=1)]),
    ]
    stream = b"".join(p[0] for p in parts)
    msgs = [m for p in parts for m in p[1]]
    counts = {"noise": 6, "truncated": 3, "crc": 1, "oversize": 1, "version": 2,
              "malformed": 2, "type": 1}
    return stream, msgs, counts
