"""The hub's core on a simulated mesh, stepped by hand on a fake clock: no
threads, no sleeping, every number reproducible."""
import cmath

import pytest
from support.rigs import FakeClock

from becomingone import config
from becomingone.core import Hub
from becomingone.logs import Log
from becomingone.transports.sim import SimMesh, validate_all


def make_hub(tmp_path, n=12, period=8.0, extra=""):
    clock = FakeClock()
    cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
ping_interval = 1.0
[mesh]
dwell = 0.5
[sim]
period = {period}
{extra}
""")
    log = Log(quiet=("hello", "collapse", "status", "clock", "output", "ack", "memory"))
    hub = Hub(cfg, log, clock=clock)
    sim = SimMesh(n, hub.sink, log.line, seed=3, period=period, clock=clock)
    hub.add_transport(sim)
    return hub, sim, clock


def step(hub, sim, clock, seconds, dt=0.1):
    """Advance the fake clock; each step the sim sends one block of frames."""
    for _ in range(round(seconds / dt)):
        clock.t += dt
        frames = sim.block()
        assert not validate_all(frames)
        hub.process([(f, "sim", clock.t, None) for f in frames])
        hub.tick(clock.t)


@pytest.fixture
def mesh(tmp_path):
    hub, sim, clock = make_hub(tmp_path)
    hub.process([(f, "sim", clock.t, None) for f in [sim._hello(i) for i in range(sim.n)]])
    hub.tick(clock.t)
    yield hub, sim, clock
    hub.store.close()


def test_emergence_enters_and_leaves_with_the_mood(mesh):
    hub, sim, clock = mesh
    seen = []
    for _ in range(40):  # two mood cycles of 8 s
        step(hub, sim, clock, 0.4)
        ms = hub.mesh_state
        assert 0 <= ms.G <= 1 and 0 <= ms.R <= 1 and abs(ms.psi) <= 1 + 1e-9
        seen.append((ms.G, ms.emerged))
    kinds = [e["text"] for e in hub.recent if e["kind"] == "emergence"]
    assert "THE_ONE entered" in kinds and "THE_ONE left" in kinds
    assert max(g for g, _ in seen) > 0.8 and min(g for g, _ in seen) < 0.5
    # Never emerged below the leave threshold.
    assert all(g >= 0.70 for g, e in seen if e)


def test_reports_are_stored_and_nodes_live(mesh):
    hub, sim, clock = mesh
    step(hub, sim, clock, 2.0)
    assert len(hub.registry.live(clock.t)) == sim.n
    rows = hub.store.reports("sim-0003", 0)
    # 20 blocks of 5 samples, a report per block.
    assert len(rows) == 20
    assert hub.counters["stored"] == 20 * sim.n


def test_clock_sync_learns_each_nodes_offset(mesh):
    hub, sim, clock = mesh
    step(hub, sim, clock, 3.0)
    for i in (0, 5, 11):
        cs = hub.clocks[sim.names[i]]
        assert cs.synced
        # node ms = hub ms + offset (mod 2**30): the estimate recovers it.
        got_ms = cs.offset * 1000
        want = (int(sim._offset_ms[i]) + 2**29) % 2**30 - 2**29
        assert abs(((got_ms - want + 2**29) % 2**30) - 2**29) < 150
    # Reports now carry hub timestamps from the node's own ticks.
    rows = hub.store.reports("sim-0000", 0)
    assert abs(rows[-1]["t_hub"] - clock.t) < 0.3


def test_commands_reach_sim_nodes_and_are_acked(mesh):
    hub, sim, clock = mesh
    step(hub, sim, clock, 0.5)
    cid = hub.send_command("sim-0002", "out", {"name": "led", "on": 1})
    step(hub, sim, clock, 0.2)
    acks = [e for e in hub.recent if e["kind"] == "ack"]
    assert any(f"command {cid} ok" in e["text"] for e in acks)


def test_restart_resumes_from_sqlite(tmp_path):
    hub, sim, clock = make_hub(tmp_path)
    hub.process([(sim._hello(i), "sim", clock.t, None) for i in range(sim.n)])
    step(hub, sim, clock, 3.0)
    masters = hub.nodes.saved()
    offsets = {k: c.offset for k, c in hub.clocks.items()}
    hub.save()
    hub.store.close()
    hub2 = Hub(hub.cfg, hub.log, clock=clock)
    try:
        assert hub2.nodes.saved() == masters
        assert {k: c.offset for k, c in hub2.clocks.items()} == pytest.approx(offsets)
        assert len(hub2.store.reports("sim-0001", 0)) == 30
    finally:
        hub2.store.close()


def test_phase_is_a_unit_phasor_average(mesh):
    hub, sim, clock = mesh
    step(hub, sim, clock, 2.0)
    st = hub.state(clock.t)
    assert set(st["nodes"]) == set(sim.names)
    assert abs(st["psi"]) <= 1 and -180 <= cmath.phase(st["psi"]) * 180 / cmath.pi <= 180


def test_collapse_events_carry_c_at_the_transition(tmp_path):
    # The firmware sends kernel.c right after the step that made the event;
    # one kairos.Channel per node, fed the same samples, is that firmware.
    from kairos import Channel

    hub, sim, clock = make_hub(tmp_path, n=4, period=4.0)
    chans = [Channel(lags=(2, 4, 8, 16), s=6, s0=2) for _ in range(sim.n)]
    run = sim._bank.run
    want = []

    def tap(U):  # record the samples the bank gets, and step the channels on them
        for i, ch in enumerate(chans):
            for u in U[i].tolist():
                if ch.step(u):
                    want.extend((sim.names[i], int(on), ch.c) for _, on in ch.events())
        return run(U)

    sim._bank.run = tap
    frames = []
    for _ in range(200):  # 20 s of blocks: several collapses and releases per node
        clock.t += 0.1
        frames += sim.block()
    got = [(f["node"], bool(f["on"]), f["c"]) for f in frames if f["t"] == "event"]
    assert len(got) >= 8 and any(not on for _, on, _ in got)
    assert sorted(got) == sorted((n, bool(on), c) for n, on, c in want)
    hub.store.close()


def test_a_sim_mesh_restarted_on_the_same_store_is_new_frames(tmp_path):
    hub, sim, clock = make_hub(tmp_path, n=3)
    hub.process([(sim._hello(i), "sim", clock.t, None) for i in range(sim.n)])
    step(hub, sim, clock, 1.0)
    hub.store.close()
    clock.t += 60  # the next run, a minute later: new boot ids, seqs from 0
    hub2 = Hub(hub.cfg, hub.log, clock=clock)
    sim2 = SimMesh(3, hub2.sink, hub2.log.line, seed=3, clock=clock)
    try:
        assert set(sim2._boot.tolist()).isdisjoint(sim._boot.tolist())
        hub2.process([(sim2._hello(i), "sim", clock.t, None) for i in range(sim2.n)])
        step(hub2, sim2, clock, 1.0)
        info = hub2.registry.nodes["sim-0000"]
        assert info.duplicates == 0 and info.replays == 0 and info.reboots == 1
        assert len(hub2.store.reports("sim-0000", 0)) == 20
    finally:
        hub2.store.close()
