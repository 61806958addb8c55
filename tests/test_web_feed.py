"""hub.web without a server: the feed's decimation (round-robin over 1,000
fake nodes, unchanged rows skipped), the generated token kept in the store,
loopback detection.  The API on a running hub: tests/test_web_api.py."""
from hub import config
from hub.logs import Log
from hub.web import auth
from hub.web.feed import Client, Feed


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
    from hub.core import Hub

    h = Hub(cfg, Log(quiet=("hello",)))
    tok, new = auth.resolve_token(h)
    assert new and len(tok) >= 24
    h.store.close()
    h = Hub(cfg, Log())
    assert auth.resolve_token(h) == (tok, False)
    h.cfg["web"]["token"] = "from-the-config"
    assert auth.resolve_token(h) == ("from-the-config", False)
    h.store.close()


def test_loopback_detection():
    assert auth.is_loopback("127.0.0.1") and auth.is_loopback("::1")
    assert auth.is_loopback("127.8.9.10")
    assert not auth.is_loopback("192.168.1.2") and not auth.is_loopback("testclient")
    assert not auth.is_loopback(None) and not auth.is_loopback("")

