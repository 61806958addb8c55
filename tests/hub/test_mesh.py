"""becomingone.slowtier.mesh: Psi, G, R over live nodes, staleness and the emergence hysteresis."""
# SIM300 misreads the spec's capitalised names (s.G == approx(...)) as constants.
# ruff: noqa: SIM300
import json
import math

import pytest
from hypothesis import given
from hypothesis import strategies as st

from becomingone.slowtier.mesh import Mesh, MeshState, NodeView


def nv(node, z, c, weight=1.0, last_seen=100.0, period=1.0):
    return NodeView(node=node, weight=weight, z=z, c=c, last_seen=last_seen, period=period)


def test_two_nodes_in_phase_have_r_1():
    # Same phase, different magnitudes: R counts only the phase.
    s = Mesh().update([nv("a", 0.9, 0.9), nv("b", 0.5, 0.5)], 100.0)
    assert s.R == pytest.approx(1.0)
    assert s.psi == pytest.approx(0.7)  # (0.9 + 0.5) / 2
    assert s.G == pytest.approx(0.7)
    assert s.live == ["a", "b"] and s.stale == []


def test_two_nodes_in_opposite_phase_have_r_0():
    s = Mesh().update([nv("a", 0.8j, 0.8), nv("b", -0.8j, 0.8)], 100.0)
    assert s.R == pytest.approx(0.0, abs=1e-15)
    assert s.psi == pytest.approx(0.0, abs=1e-15)
    assert s.G == pytest.approx(0.8)  # coherent nodes, just not with each other


def test_weights_hand_numbers():
    # w = 3 at z = i (c 0.9), w = 1 at z = 1 (c 0.5):
    # Psi = (3i + 1) / 4 = 0.25 + 0.75i;  G = (2.7 + 0.5) / 4 = 0.8;
    # R = |3i + 1| / 4 = sqrt(10) / 4 = 0.790569...
    s = Mesh().update([nv("big", 1j, 0.9, weight=3), nv("small", 1, 0.5)], 100.0)
    assert s.psi == pytest.approx(0.25 + 0.75j)
    assert s.G == pytest.approx(0.8)
    assert s.R == pytest.approx(math.sqrt(10) / 4)
    # Unit phasors in R: magnitudes do not matter, so 0.1i with w = 3 is the same.
    s2 = Mesh().update([nv("big", 0.1j, 0.9, weight=3), nv("small", 1, 0.5)], 100.0)
    assert s2.R == pytest.approx(math.sqrt(10) / 4)
    assert s2.psi == pytest.approx(0.25 + 0.075j)


def test_a_phaseless_node_counts_in_the_weight_only():
    # z = 0 adds nothing to R's sum: R = |1 * 1 + 0| / 2 = 0.5
    s = Mesh().update([nv("a", 0.6, 0.6), nv("b", 0, 0.0)], 100.0)
    assert s.R == pytest.approx(0.5)
    assert s.psi == pytest.approx(0.3)
    assert s.G == pytest.approx(0.3)


def test_a_stale_node_drops_out():
    # period 2 s, 3 periods: silent for exactly 6 s is live, 6.01 s is stale.
    nodes = [
        nv("a", 1, 1.0, last_seen=94.0, period=2.0),
        nv("b", -1, 0.2, last_seen=93.99, period=2.0),
    ]
    s = Mesh().update(nodes, 100.0)
    assert s.live == ["a"] and s.stale == ["b"]
    assert (s.G, s.R, s.psi) == (1.0, 1.0, 1)
    s = Mesh(stale_periods=10.0).update(nodes, 100.0)
    assert s.live == ["a", "b"]
    assert s.G == pytest.approx(0.6) and s.R == pytest.approx(0.0)


def test_no_live_nodes():
    for nodes in ([], [nv("a", 1, 1.0, last_seen=0.0)]):
        s = Mesh().update(nodes, 100.0)
        assert (s.psi, s.G, s.R) == (0, 0.0, 0.0)
        assert not s.emerged and s.participants == [] and s.event is None


def one(c, name="n"):
    """A single live node of coherence c: the mesh G is c."""
    return [nv(name, c, c, last_seen=1e9)]


def run(mesh, steps):
    """(t, G) steps -> the list of states."""
    return [mesh.update(one(g), t) for t, g in steps]


def test_emergence_enters_only_after_the_dwell():
    m = Mesh()  # enter 0.75, leave 0.70, dwell 3 s
    states = run(m, [(0.0, 0.8), (1.0, 0.8), (2.0, 0.9), (2.999, 0.76)])
    assert not any(s.emerged for s in states)
    s = m.update(one(0.75), 3.0)  # G >= 0.75 held from t = 0 to t = 3
    assert s.emerged and s.event == "entered" and s.since == 3.0
    assert s.participants == ["n"]
    s = m.update(one(0.9), 4.0)
    assert s.emerged and s.event is None and s.since == 3.0


def test_a_dip_restarts_the_dwell():
    m = Mesh()
    states = run(m, [(0.0, 0.8), (1.0, 0.8), (2.0, 0.74), (3.0, 0.8), (4.0, 0.8), (5.9, 0.8)])
    assert not any(s.emerged for s in states)
    assert m.update(one(0.8), 6.0).event == "entered"


def test_hysteresis_between_leave_and_enter():
    m = Mesh()
    run(m, [(0.0, 0.8), (3.0, 0.8)])
    assert m.emerged
    # In the band [0.70, 0.75): stays emerged, no events.
    states = run(m, [(4.0, 0.74), (5.0, 0.70), (6.0, 0.72), (60.0, 0.7)])
    assert all(s.emerged and s.event is None for s in states)
    s = m.update(one(0.6999), 61.0)
    assert not s.emerged and s.event == "left" and s.since is None
    assert s.participants == []
    # ... and not emerged in the band does not enter either.
    states = run(m, [(t, 0.74) for t in range(62, 100)])
    assert not any(s.emerged or s.event for s in states)


def test_dwell_zero_enters_at_once():
    s = Mesh(dwell=0.0).update(one(0.75), 5.0)
    assert s.emerged and s.event == "entered" and s.since == 5.0


def test_participants_are_live_nodes_with_c_at_least_leave():
    nodes = [
        nv("a", 1, 0.95),
        nv("b", 1, 0.70),  # exactly leave: takes part
        nv("c", 1, 0.69),
        nv("d", 1, 1.0, last_seen=0.0),  # stale
    ]
    m = Mesh(dwell=0.0, enter=0.7)
    s = m.update(nodes, 100.0)  # G = (0.95 + 0.70 + 0.69) / 3 = 0.78
    assert s.G == pytest.approx(0.78)
    assert s.emerged and s.participants == ["a", "b"]
    assert s.stale == ["d"]


def test_state_round_trip_mid_dwell():
    m = Mesh(dwell=3.0)
    run(m, [(0.0, 0.8), (2.0, 0.8)])
    saved = json.loads(json.dumps(m.to_dict()))
    assert set(saved) == {"emerged", "since", "above"}  # the state, not the settings
    back = Mesh.from_dict(saved, dwell=3.0)
    assert back.update(one(0.8), 3.0).event == "entered"
    m2 = Mesh.from_dict(back.to_dict(), dwell=3.0)
    assert m2.emerged and m2.since == 3.0
    assert m2.update(one(0.5), 4.0).event == "left"


def test_saved_state_resumes_under_other_settings():
    m = Mesh(dwell=3.0)
    run(m, [(0.0, 0.8), (2.0, 0.8)])  # 2 s above enter: 1 s of dwell to go
    back = Mesh.from_dict(m.to_dict(), dwell=1.0, enter=0.75, leave=0.5)
    assert (back.dwell, back.leave) == (1.0, 0.5)
    assert back.update(one(0.8), 2.0).event == "entered"  # its own dwell, the saved start
    assert back.update(one(0.6), 3.0).event is None  # its own leave


def test_order_of_nodes_does_not_matter():
    nodes = [nv("b", 0.3j, 0.4, weight=2), nv("a", -0.5, 0.9), nv("c", 0.7, 0.7, weight=5)]
    s1 = Mesh().update(nodes, 100.0)
    s2 = Mesh().update(list(reversed(nodes)), 100.0)
    assert s1 == s2
    assert isinstance(s1, MeshState) and s1.live == ["a", "b", "c"]


@pytest.mark.parametrize(
    "kwargs, name",
    [
        ({"enter": 0.0}, "enter"),
        ({"enter": 1.5}, "enter"),
        ({"leave": 0.8}, "leave"),  # above enter
        ({"leave": 0.0}, "leave"),
        ({"dwell": -1.0}, "dwell"),
        ({"stale_periods": 0.0}, "stale_periods"),
        ({"dwell": math.nan}, "dwell"),
    ],
)
def test_bad_arguments_name_themselves(kwargs, name):
    with pytest.raises(ValueError, match=name):
        Mesh(**kwargs)


@pytest.mark.parametrize(
    "node, name",
    [
        (nv("x", 1, 0.5, weight=0.0), "weight"),
        (nv("x", 1, 0.5, period=0.0), "period"),
        (nv("x", 1, 1.5), "c must"),
        (nv("x", 1 + 1j, 0.5), "z must"),
        (nv("x", 1, 0.5, last_seen=math.nan), "last_seen"),
    ],
)
def test_bad_nodes_name_node_and_field(node, name):
    with pytest.raises(ValueError, match=f"node 'x': {name}"):
        Mesh().update([node], 100.0)


def test_duplicate_nodes_rejected():
    with pytest.raises(ValueError, match="duplicate"):
        Mesh().update([nv("a", 1, 1.0), nv("a", 1, 1.0)], 100.0)


NODE = st.builds(
    lambda w, r, ph, c, age: (w, r * complex(math.cos(ph), math.sin(ph)), c, age),
    st.floats(1e-6, 1e6),
    st.floats(0, 1),
    st.floats(-4, 4),
    st.floats(0, 1),
    st.floats(0, 10),
)


@given(st.lists(NODE, max_size=12), st.floats(0.5, 1.0), st.floats(0, 5))
def test_outputs_are_bounded(nodes, enter, dwell):
    m = Mesh(enter=enter, leave=enter * 0.9, dwell=dwell)
    views = [
        nv(f"n{i}", z, c, weight=w, last_seen=100.0 - age, period=2.0)
        for i, (w, z, c, age) in enumerate(nodes)
    ]
    for t in (100.0, 101.0, 105.0):
        s = m.update(views, t)
        assert 0.0 <= s.G <= 1.0 and 0.0 <= s.R <= 1.0 and abs(s.psi) <= 1.0
        assert sorted(s.live + s.stale) == sorted(v.node for v in views)
        assert set(s.participants) <= set(s.live)
        assert s.emerged == (s.since is not None)
