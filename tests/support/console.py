"""Serial lines as the console reads them from node kitchen-1 (its hello
and reports, built with support.frames and encoded by kairos.wire)."""
from kairos import wire
from support.frames import Frames

CH = [{"name": "wave", "lags": [2, 4, 8, 16], "s": 6, "s0": 2, "ic": 22938}]
KITCHEN = Frames(node="kitchen-1", boot=77, tick=10, samples=25,
                 hello=dict(fw="0.1.0", every=25, weight=1, caps=["led", "serial"], ch=CH))


def line(t, **kw):
    """The serial line of a kitchen-1 frame of type t (kw: header and fields)."""
    return wire.encode_line(KITCHEN.frame(t, **kw))


HELLO = wire.encode_line(KITCHEN.hello())


def report_line(c=26870, k=3, coll=0, seq=1, rows=None, **kw):
    """A report line: one row with coherence c at peak lag k (collapsed if
    coll), or the given rows; each row's spectrum is its c at every lag up
    to k."""
    rows = rows or [[100, 5000, k, c, 300, -300, coll]]
    coh = [[r[3]] * (r[2] + 1) for r in rows]
    return wire.encode_line(KITCHEN.report(seq, ch=rows, coh=coh, **kw))
