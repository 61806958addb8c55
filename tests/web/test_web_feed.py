"""hub.web without a server: the feed's decimation (round-robin over 1,000
fake nodes, unchanged rows skipped), the generated token kept in the store,
loopback detection.  The API on a running hub: tests/web/test_web_api.py."""
from becomingone import config
from becomingone.logs import Log
from becomingone.web import auth
from becomingone.web.feed import Client, Feed, next_slot


class _FakeHub:
    def __init__(self, n):
        self.subscribers, self.recent = [], []
        self.nodes = {f"n{i:04d}": {"c": 0.5, "tau": 0.1, "online": True, "collapsed": False,
                                    "aligned": False, "channels": []} for i in range(n)}


def _feed_with(n):
    fh = _FakeHub(n)
    feed = Feed(fh, 10.0)
    feed.state = {"t": 0.0, "participants": [], "nodes": fh.nodes}
    feed.mesh_view = {"G": 0.5}
    return feed, fh


def test_decimation_round_robin_covers_every_node_and_skips_the_unchanged():
    import asyncio

    async def go():
        feed, fh = _feed_with(1000)
        c = Client(10.0)
        seen = []
        for _ in range(5):
            (msg,) = c.build(feed)
            assert len(msg["rows"]) == 200 and msg["n_nodes"] == 1000
            seen += [r[0] for r in msg["rows"]]
        assert sorted(seen) == sorted(fh.nodes)  # 5 messages x 200 rows: everyone once
        (msg,) = c.build(feed)
        assert msg["rows"] == []  # nothing changed
        fh.nodes["n0500"] = dict(fh.nodes["n0500"], c=0.9)
        (msg,) = c.build(feed)
        assert msg["rows"] == [["n0500", True, 0.9, 0.1, False]]
        assert len(str(msg)) < 400
    asyncio.run(go())


def test_generated_token_is_kept_in_the_store(tmp_path):
    cfg = config.parse(f'[hub]\ndb = "{tmp_path / "h.db"}"\n')
    from becomingone.core import Hub

    h = Hub(cfg, Log(quiet=("hello",)))
    check, tok = auth.resolve_token(h)  # the text only now, to be shown once
    assert len(tok) >= 24 and check.matches(tok) and not check.matches(tok + "x")
    h.store.close()
    h = Hub(cfg, Log())
    again, shown = auth.resolve_token(h)
    assert shown is None and again.matches(tok)
    h.cfg["web"]["token"] = "from-the-config"
    check, shown = auth.resolve_token(h)
    assert shown is None and check.matches("from-the-config") and not check.matches(tok)
    h.store.close()


def test_loopback_detection():
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1")
    assert auth.is_loopback("127.8.9.10")
    assert not auth.is_loopback("192.168.1.2") and not auth.is_loopback("testclient")
    assert not auth.is_loopback(None) and not auth.is_loopback("")



# -- the writer's pacing (hub/web/routes/ws.py) on a simulated clock ------------------------

def paced(ticks, max_hz):
    """The writer's loop: a wake at each core tick; before the slot it sleeps
    until the slot (wakes meanwhile go into that message).  Send times."""
    period, slot, sends, i = 1.0 / max_hz, 0.0, [], 0
    while i < len(ticks):
        t = max(ticks[i], slot)
        while i < len(ticks) and ticks[i] <= t:
            i += 1
        sends.append(t)
        slot = next_slot(slot, period, t)
    return sends


def most_in_a_second(sends):
    return max(sum(1 for u in sends if t <= u < t + 1.0 - 1e-6) for t in sends)


def test_pacing_after_a_pause_is_no_burst():
    # 10 Hz core ticks, a 1.5 s stall, 10 Hz again; a client asking for 5 Hz.
    ticks = [i / 10 for i in range(50)] + [6.5 + i / 10 for i in range(50)]
    sends = paced(ticks, 5)
    gaps = [b - a for a, b in zip(sends, sends[1:], strict=False)]
    assert min(gaps) > 0.2 - 1e-9, gaps  # the old grid sent 4 at 10 Hz after the stall
    assert most_in_a_second(sends) <= 5
    assert len(sends) >= 49  # and 5 a second while the core ticks


def test_pacing_keeps_jittered_ticks_and_a_slow_core():
    import random

    rnd = random.Random(7)
    ticks = [i / 10 + rnd.uniform(-0.03, 0.03) for i in range(200)]  # ~10 Hz, jittered
    sends = paced(sorted(ticks), 10)
    assert len(sends) >= 190 and most_in_a_second(sends) <= 11  # none merged away
    slow = [i * 0.116 for i in range(100)]  # a core at 8.6 ticks/s, max_hz 10
    assert paced(slow, 10) == slow  # every tick is a message, at once
