"""The node's side of end-to-end acknowledgement, step by step on its virtual
clock, over a real pty (the firmware's serial link opens the slave end, the
test plays the hub on the master end): frames stay until a got names them,
frames the hub lacks go again after ack_wait (all of them while the hub is
heard), and only the oldest goes, as a probe, while it is not."""
import os
import select

import pytest
from support.nodeharness import sim_board

from kairos import wire
from node import config
from node.app import Node
from node.hal_sim import SimHal
from node.link import ACK_WAIT


class Hub:
    """The master end of the pty: what the node wrote, and gots to send."""

    def __init__(self, fd):
        self.fd = fd
        self.dec = wire.LineDecoder()
        self.frames = []
        self.seq = 0

    def read(self):
        while select.select([self.fd], [], [], 0)[0]:
            self.frames += self.dec.feed(os.read(self.fd, 65536))
        return self.frames

    def got(self, node, boot, ranges):
        self.seq += 1
        os.write(self.fd, wire.encode_line({"t": "got", "node": node, "boot": 99, "seq": self.seq,
                                            "tick": 0, "b": boot, "s": ranges}))


def run(node, hub, samples):
    """Sample on the virtual clock, keeping the pty drained (its buffer is small)."""
    for _ in range(samples // 5):
        node.loop(5)
        hub.read()


@pytest.fixture
def rig(tmp_path):
    master, slave = os.openpty()
    cfg = config.merge(sim_board(period_ms=20, report_every=10),
                       {"node": "pr-1", "serial": {"port": os.ttyname(slave)},
                        "spool": {"slots": 64, "file": ""}})
    node = Node(cfg, SimHal(cfg), say=lambda *_: None)
    node.start()
    yield node, Hub(master)
    node.link._close()
    os.close(master)
    os.close(slave)


def kept(frames):
    return [f for f in frames if f["t"] in ("report", "event", "ack")]


def test_resent_after_ack_wait_all_while_the_hub_is_heard_then_one_probe(rig):
    node, hub = rig
    run(node, hub, 100)  # 10 reports: 2 s of virtual time
    first = kept(hub.read())
    assert len(first) >= 10 and node.link.spool.owed() == 0  # link mode: nothing owed
    # The hub has stored all but the last three.
    hub.got("pr-1", node.boot, [[0, first[-4]["seq"]]])
    run(node, hub, 5)
    sp = node.link.spool
    assert sp.e2e and len(sp) >= 3  # (and whatever came meanwhile)
    missing = [f["seq"] for f in first[-3:]]
    # ACK_WAIT of virtual time without a got: all it lacks again, oldest first.
    mark = len(hub.frames)
    run(node, hub, ACK_WAIT // 20 + 10)
    again = [f["seq"] for f in hub.frames[mark:] if f["seq"] in missing]
    assert again == missing and node.link.resends == 1
    # Still no got: the hub is away now.  After twice the wait, one probe:
    # the oldest frame, nothing else of the old ones.
    mark = len(hub.frames)
    run(node, hub, 2 * ACK_WAIT // 20 + 10)
    old = {f["seq"] for f in first}
    probe = [f["seq"] for f in hub.frames[mark:] if f["seq"] in old]
    assert probe == missing[:1] and node.link.resends == 2
    # The hub is back and acknowledges everything: nothing is owed any more.
    top = hub.read()[-1]["seq"]
    hub.got("pr-1", node.boot, [[0, top]])
    run(node, hub, 5)
    assert sp.owed() <= 1 and sp.dropped == 0  # (a report may have come after `top`)


def test_a_got_for_another_boot_or_a_repeated_hub_seq_changes_nothing(rig):
    node, hub = rig
    run(node, hub, 50)
    frames = kept(hub.read())
    hub.got("pr-1", node.boot, [[0, frames[0]["seq"]]])  # hub mode, one frame acknowledged
    run(node, hub, 5)
    n = len(node.link.spool)
    hub.got("pr-1", node.boot + 1, [[0, 10**6]])  # an earlier boot of ours
    hub.seq -= 1
    hub.got("pr-1", node.boot, [[0, 10**6]])  # the hub's seq again: a repeat, dropped
    run(node, hub, 5)
    assert len(node.link.spool) >= n and node.link.rejects.get("duplicate") == 1
