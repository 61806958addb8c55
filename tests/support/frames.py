"""Frames as the hub receives them (decoded wire dicts), built by one set of
builders that every hub-side test shares.

The module-level frame/hello/report/event use the defaults most tests want
(node "n1", boot 77, one sim channel).  A test file whose frames must look
different (another node name or boot id, a BLE node's three channels, a
registry test's empty rows) makes its own Frames(...) with those defaults
and takes the builders from it, so each difference is one visible line:

    F = Frames(node="b1", boot=9, tick=1, report=dict(ch=..., coh=...))
    frame, report = F.frame, F.report
"""

# The hello of one sim channel (what hub-core tests assume a node says).
HELLO = dict(board="sim", fw="0.1", period=20, every=5, weight=2, caps=["led"],
             ch=[{"name": "wave", "lags": [2, 4], "s": 6, "s0": 2, "ic": 16384}])


class Frames:
    """Frame builders with one test file's defaults.

    node, boot: the header's defaults (each builder takes node= and boot= too);
    tick: ticks per seq (a frame's tick is seq * tick); samples: samples per
    seq (a report's n); hello, report: fields that replace the defaults of
    that type.  Any builder's keyword fields replace the defaults again."""

    def __init__(self, node="n1", boot=77, tick=100, samples=5, hello=None, report=None):
        self.node, self.boot, self.tick, self.samples = node, boot, tick, samples
        self.hello_fields = dict(HELLO, **(hello or {}))
        self.report_fields = dict(report or {})

    def frame(self, t, seq=0, node=None, boot=None, **fields):
        """A frame of type t: the header (node, boot, seq, tick) and fields."""
        head = {"t": t, "node": self.node if node is None else node,
                "boot": self.boot if boot is None else boot, "seq": seq, "tick": seq * self.tick}
        return dict(head, **fields)

    def hello(self, seq=0, node=None, boot=None, **fields):
        """A hello (board, firmware, period, channels ...)."""
        return self.frame("hello", seq, node, boot, **dict(self.hello_fields, **fields))

    def report(self, seq, node=None, boot=None, c=12000, **fields):
        """A report: by default one channel row with coherence c (Q15) and
        its two-lag spectrum [c // 2, c]; n counts samples up to seq."""
        body = dict(n=seq * self.samples, drop=0, miss=0,
                    ch=[[100, 5000, 1, c, 300, -300, 0]], coh=[[c // 2, c]])
        body.update(self.report_fields)
        body.update(fields)
        return self.frame("report", seq, node, boot, **body)

    def event(self, seq, on=1, node=None, boot=None, c=30000, **fields):
        """A collapse event of channel 0 (on=1 entered, on=0 left)."""
        body = dict(i=0, on=on, c=c, n=seq * self.samples)
        body.update(fields)
        return self.frame("event", seq, node, boot, **body)


DEFAULT = Frames()
frame, hello, report, event = DEFAULT.frame, DEFAULT.hello, DEFAULT.report, DEFAULT.event
