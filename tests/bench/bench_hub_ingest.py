"""Hub ingest figure.  Run (name the file: pyproject has no python_files for bench_*):

    .venv/bin/python -m pytest tests/bench/bench_hub_ingest.py -m bench -s

Report frames from Mosquitto on loopback through the real hub
(MqttTransport -> Hub core -> SQLite in a tmp file), measured in the same
run as the bare paho subscriber ceiling (a subscriber that only
json-decodes).  docs/hub-figures.md quotes the numbers.

How: every consumer holds a persistent QoS 1 session on the report topics
and is offline while a paho publisher (QoS 1, at most WINDOW publishes
un-acknowledged, so paho's 16-bit message ids never wrap onto a live one)
sends N valid report frames from K nodes.  Once the broker has PUBACKed
them all, every session holds the same N frames; each consumer then
connects and drains its backlog, one after the other, so each rate is the
consumer's own, not the publisher's.  The consumers:

* bare (threaded): paho with loop_start(), auto-ack, json.loads only: the
  ceiling, with the same threading the hub's MqttTransport uses;
* bare (main thread): the same with loop_forever() in the calling thread,
  paho's best case here (no loop thread, no GIL hand-over);
* the hub, from hub.start() until it has stored (and so acknowledged) the
  N-th frame.

Asserts zero loss only (every (node, seq) is a row in the Store, each bare
subscriber decoded N); never asserts on time.  With BENCH_PROFILE=1,
test_profile_hub_ingest runs the hub leg again with cProfile inside the
hub's two threads (paho's loop thread and the hub core) and prints both.
"""
import cProfile
import io
import json
import os
import pstats
import random
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from support.broker import Mosquitto

from becomingone import config, run
from becomingone.logs import Log
from becomingone.store import Store
from kairos import wire

pytestmark = pytest.mark.bench

N = int(os.environ.get("BENCH_N", 100_000))  # report frames in all
K = int(os.environ.get("BENCH_K", 20))  # simulated nodes
WINDOW = 1000  # publishes in flight at most (paho ids wrap at 65535)
PREFIX = "becomingone"


def frames(n=N, k=K, seed=4):
    """n valid report frames, round-robin over k nodes, seq 0.. per node."""
    rng = random.Random(seed)
    boots = [rng.randrange(1, wire.M30) for _ in range(k)]
    out = []
    for j in range(n):
        i, seq = j % k, j // k
        row = [rng.randrange(-16384, 16385), rng.randrange(0, 1 << 20), rng.randrange(8),
               rng.randrange(32768), rng.randrange(-(1 << 29), 1 << 29),
               rng.randrange(-(1 << 29), 1 << 29), rng.randrange(2)]
        out.append({"t": "report", "node": f"bench-{i:02d}", "boot": boots[i], "seq": seq,
                    "tick": (seq * 100) & wire.M30, "n": seq * 5, "drop": 0, "miss": 0,
                    "ch": [row], "coh": [[rng.randrange(32768) for _ in range(8)]]})
    return out


def client(cid, clean):
    c = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=cid, clean_session=clean)
    return c


def connect(c, broker, timeout=10.0):
    up = threading.Event()
    c.on_connect = lambda *a: up.set()
    c.connect(broker.host, broker.port, 30)
    c.loop_start()
    if not up.wait(timeout):
        raise RuntimeError(f"{c._client_id!r}: no CONNACK")


def make_session(broker, cid):
    """A persistent session subscribed (QoS 1) to the report topics, left offline."""
    c = client(cid, clean=False)
    connect(c, broker)
    done = threading.Event()
    c.on_subscribe = lambda *a: done.set()
    c.subscribe(f"{PREFIX}/+/report", 1)
    if not done.wait(10):
        raise RuntimeError("no SUBACK")
    c.disconnect()
    c.loop_stop()


def publish_all(broker, msgs):
    """QoS 1, in windows of WINDOW un-acknowledged publishes, paho's loop
    driven from this thread (no loop thread to hand the GIL to); returns
    (seconds, msgs/s)."""
    pub = client("bench-pub", clean=True)
    pub.max_inflight_messages_set(WINDOW)
    pub.max_queued_messages_set(0)
    pub.connect(broker.host, broker.port, 30)
    payloads = [(f"{PREFIX}/{m['node']}/report", wire.encode_json(m)) for m in msgs]
    t0 = time.perf_counter()
    deadline = t0 + 600
    for i in range(0, len(payloads), WINDOW):
        infos = [pub.publish(topic, p, qos=1) for topic, p in payloads[i:i + WINDOW]]
        k = 0
        while k < len(infos):
            if infos[k].is_published():
                k += 1
                continue
            if pub.loop(0.01) != mqtt.MQTT_ERR_SUCCESS or time.perf_counter() > deadline:
                raise RuntimeError("publisher: connection lost or PUBACKs missing")
    dt = time.perf_counter() - t0
    pub.disconnect()
    return dt, len(payloads) / dt


def drain_bare(broker, cid, n, threaded, timeout=300.0):
    """The ceiling: a paho subscriber (auto-ack) that only json-decodes;
    returns (frames decoded, seconds from connect to the n-th)."""
    c = client(cid, clean=False)
    got = [0]
    done = threading.Event()
    t_last = [0.0]

    def on_message(cl, ud, m):
        json.loads(m.payload)
        got[0] += 1
        if got[0] >= n:
            t_last[0] = time.perf_counter()
            done.set()
            if not threaded:
                cl.disconnect()

    c.on_message = on_message
    t0 = time.perf_counter()
    c.connect(broker.host, broker.port, 30)
    if threaded:
        c.loop_start()
        done.wait(timeout)
        c.disconnect()
        c.loop_stop()
    else:
        c.loop_forever()
    return got[0], (t_last[0] - t0) if done.is_set() else float("nan")


def hub_config(host, port, db, client_id="bench-hub"):
    return config.parse(f"""
[hub]
db = "{db}"
[mqtt]
enabled = true
host = "{host}"
port = {port}
client_id = "{client_id}"
""", "bench.toml")


def drain_hub(broker, db, n, timeout=600.0, prepare=None):
    log = Log(stream=io.StringIO())
    hub = run.build(hub_config(broker.host, broker.port, db), log)
    calls = [0]
    process = hub.process

    def counted(batch):
        calls[0] += 1
        return process(batch)

    hub.process = counted  # how many frames per store transaction
    if prepare is not None:
        prepare(hub)
    t0 = time.perf_counter()
    hub.start()
    deadline = t0 + timeout
    while hub.counters["stored"] < n and time.perf_counter() < deadline:
        time.sleep(0.002)
    dt = time.perf_counter() - t0
    # The last batch's acks are sent right after its store commits.
    while hub.counters["acked"] < n and time.perf_counter() < deadline:
        time.sleep(0.002)
    counters = dict(hub.counters, batches=calls[0])
    snap = hub.registry.snapshot(time.time())
    hub.stop()
    return counters, snap, dt, log


def broker_for(n, sessions):
    """A Mosquitto whose offline sessions can each hold n frames."""
    broker = Mosquitto()
    conf = broker.conf.read_text()
    assert "max_queued_messages 100000" in conf
    broker.conf.write_text(conf.replace("max_queued_messages 100000",
                                        f"max_queued_messages {sessions * n + 1000}"))
    return broker.start()


def stored_pairs(db, msgs):
    store = Store(str(db))
    try:
        pairs = set()
        for node in sorted({m["node"] for m in msgs}):
            for r in store.reports(node, limit=len(msgs) + 1):
                pairs.add((node, r["seq"]))
        return pairs
    finally:
        store.close()


def test_hub_ingest_vs_bare_ceiling(tmp_path):
    msgs = frames()
    broker = broker_for(N, 3)
    try:
        for cid in ("bench-bare", "bench-bare-main", "bench-hub"):
            make_session(broker, cid)
        t_pub, pub_rate = publish_all(broker, msgs)
        got, t_bare = drain_bare(broker, "bench-bare", N, threaded=True)
        got_main, t_main = drain_bare(broker, "bench-bare-main", N, threaded=False)
        db = tmp_path / "hub.db"
        counters, snap, t_hub, log = drain_hub(broker, db, N)
    finally:
        broker.cleanup()

    bare_rate, main_rate, hub_rate = got / t_bare, got_main / t_main, N / t_hub
    pairs = stored_pairs(db, msgs)
    want = {(m["node"], m["seq"]) for m in msgs}
    missing = want - pairs
    dups = sum(i["duplicates"] for i in snap["nodes"].values())
    print(f"\nN={N:,} report frames from K={K} nodes, QoS 1, Mosquitto on loopback, "
          f"drained from a backlog")
    print(f"publisher:                          {pub_rate:9,.0f} msg/s "
          f"({t_pub:.1f} s, window {WINDOW})")
    print(f"bare subscriber, loop thread:       {bare_rate:9,.0f} msg/s "
          f"({got:,} in {t_bare:.2f} s)  <- the ceiling")
    print(f"bare subscriber, main thread:       {main_rate:9,.0f} msg/s "
          f"({got_main:,} in {t_main:.2f} s)")
    print(f"hub (MqttTransport->core->SQLite):  {hub_rate:9,.0f} msg/s "
          f"({counters['stored']:,} stored in {t_hub:.2f} s; frames={counters['frames']:,} "
          f"acked={counters['acked']:,} duplicates={dups}; "
          f"{N / counters['batches']:.1f} frames per store transaction)")
    print(f"ratio hub/ceiling: {hub_rate / bare_rate:.2f} (aim >= 0.5); "
          f"hub/main-thread subscriber: {hub_rate / main_rate:.2f}")
    print(f"loss: {len(missing)} of {N:,} (node, seq) missing from the Store")
    assert got == N, f"bare subscriber got {got} of {N}"
    assert got_main == N, f"main-thread subscriber got {got_main} of {N}"
    assert not missing, f"{len(missing)} frames lost, e.g. {sorted(missing)[:5]}"
    assert counters["stored"] == N


def test_hub_process_batch_size(tmp_path):
    """Hub.process alone (no broker, frames decoded beforehand) at several
    batch sizes: the cost of one store transaction per batch.  The core
    takes whatever is queued when it wakes, so under MQTT load its batches
    are small (see "frames per store transaction" above)."""
    from becomingone.core import Hub

    n = 20_000
    raw = [wire.encode_json(m) for m in frames(n)]
    counts = {}
    print()
    for size in (1, 7, 50, 500, 5000):
        hub = Hub(hub_config("127.0.0.1", 1883, tmp_path / f"b{size}.db"),
                  Log(stream=io.StringIO()))
        t0 = time.perf_counter()
        batch = [(wire.decode_json(p, counts), "mqtt", time.time(), lambda: None) for p in raw]
        t_dec = time.perf_counter() - t0
        t0 = time.perf_counter()
        for i in range(0, n, size):
            hub.process(batch[i:i + size])
        t = time.perf_counter() - t0
        stored = hub.counters["stored"]
        hub.store.close()
        print(f"batch {size:5d}: Hub.process {t / n * 1e6:6.1f} us/frame "
              f"({n / t:8,.0f} frames/s); wire.decode_json {t_dec / n * 1e6:.1f} us/frame")
        assert stored == n


def _profiled(fn, prof):
    def run_profiled(*a, **kw):
        prof.enable()
        try:
            return fn(*a, **kw)
        finally:
            prof.disable()

    return run_profiled


def test_profile_hub_ingest(tmp_path):
    """The hub leg again, with a cProfile.Profile enabled inside each of the
    hub's threads: paho's loop thread (read, decode, hand to the core) and
    the hub core (registry, master, store, acks).  Only with BENCH_PROFILE=1."""
    if not os.environ.get("BENCH_PROFILE"):
        pytest.skip("set BENCH_PROFILE=1 to profile the hub's threads")
    n = min(N, 50_000)
    msgs = frames(n)
    profs = {"paho loop thread": cProfile.Profile(), "hub core thread": cProfile.Profile()}

    def prepare(hub):
        mq = next(t for t in hub.transports if t.kind == "mqtt")
        mq.client._thread_main = _profiled(mq.client._thread_main, profs["paho loop thread"])
        hub._loop = _profiled(hub._loop, profs["hub core thread"])

    broker = broker_for(n, 1)
    try:
        make_session(broker, "bench-hub")
        publish_all(broker, msgs)
        counters, _, dt, _ = drain_hub(broker, tmp_path / "hub.db", n, prepare=prepare)
    finally:
        broker.cleanup()
    print(f"\n{counters['stored']:,} of {n:,} stored in {dt:.2f} s under cProfile "
          f"({n / dt:,.0f} msg/s)")
    for name, prof in profs.items():
        s = io.StringIO()
        st = pstats.Stats(prof, stream=s)
        print(f"--- {name}: {st.total_tt:.2f} s profiled, {st.total_tt / n * 1e6:.0f} us/frame")
        st.sort_stats("tottime").print_stats(15)
        print("\n".join(s.getvalue().splitlines()[6:]))
    assert counters["stored"] == n
