"""The kernel's settings are written once (kairos.defaults) and every side
that builds or checks a channel reads them from there: the kernel, the
firmware, the hub's board checks, its hub-side inputs and its sim."""
import ast

from support.mp import ROOT

import node.commands
import node.config
from becomingone import boards
from becomingone.transports.inputs import Inputs
from becomingone.transports.sim import SimMesh
from kairos import Channel, Normalizer, defaults
from kairos.batch import Bank


def _settings(obj, keys):
    return {k: getattr(obj, k) for k in keys}


def _defaults(keys):
    return {k: getattr(defaults, k.upper()) for k in keys}


def test_the_kernel_takes_its_defaults_from_the_one_module():
    want = _defaults(defaults.CHANNEL_KEYS)
    assert want == {"lags": (2, 4, 8, 16), "s": 8, "s0": 2, "omega": 0, "ic": 22938,
                    "hysteresis": 1638, "dwell": 4}  # (the values the docs give)
    assert _settings(Channel(), defaults.CHANNEL_KEYS) == want
    assert _settings(Bank(3), defaults.CHANNEL_KEYS) == want
    assert _settings(Normalizer(), defaults.NORMALIZER_KEYS) == _defaults(
        defaults.NORMALIZER_KEYS) == {"offset": 0, "mul": 1, "shift": 0}


def test_the_hubs_board_checks_use_the_same_defaults_and_kinds():
    assert boards.SENSOR_KINDS == defaults.SENSOR_KINDS
    as_json = dict(_defaults(defaults.NORMALIZER_KEYS + defaults.CHANNEL_KEYS),
                   lags=list(defaults.LAGS))
    assert as_json == boards.CHANNEL_DEFAULTS


def test_the_firmware_checks_the_same_sensor_kinds():
    board = {"period_ms": 20, "report_every": 50, "weight": 1, "transports": ["serial"],
             "sensors": [{"name": "x", "kind": "sim"}]}
    for kind in defaults.SENSOR_KINDS:
        board["sensors"][0]["kind"] = kind
        assert node.config.check_board(board) is None, kind
    board["sensors"][0]["kind"] = "thermistor"
    assert "must be one of " + ", ".join(defaults.SENSOR_KINDS) in node.config.check_board(board)


def test_the_firmware_can_set_exactly_the_channel_keys():
    assert node.commands._SET_KEYS == defaults.CHANNEL_KEYS


def test_a_hub_input_without_kernel_keys_runs_the_default_kernel():
    inputs = Inputs([{"name": "door"}], lambda *a: None, lambda *a: None)
    (v,) = inputs.inputs.values()
    assert _settings(v.ch, defaults.CHANNEL_KEYS) == _settings(Channel(), defaults.CHANNEL_KEYS)
    assert _settings(v.norm, defaults.NORMALIZER_KEYS) == _settings(
        Normalizer(), defaults.NORMALIZER_KEYS)


def test_the_sims_hello_says_what_its_bank_runs():
    sim = SimMesh(2, lambda *a: None, lambda *a: None)
    (ch,) = sim._hello(0)["ch"]
    assert tuple(ch["lags"]) == defaults.LAGS == sim._bank.lags
    assert (ch["s0"], ch["ic"]) == (defaults.S0, defaults.IC)
    assert ch["s"] == sim._bank.s  # (the sim's own, shorter, integrator)


def _literals(tree):
    """The default-like literals in a module's code (not its comments or docs)."""
    for n in ast.walk(tree):
        if isinstance(n, ast.Constant) and type(n.value) is int and n.value in (22938, 1638):
            yield n.lineno, n.value
        elif isinstance(n, ast.Tuple | ast.List) and [
                getattr(e, "value", None) for e in n.elts] == list(defaults.LAGS):
            yield n.lineno, defaults.LAGS


def test_no_product_module_writes_the_kernel_defaults_again():
    found = []
    for base in ("hub", "firmware", "shared/kairos"):
        for path in sorted((ROOT / base).rglob("*.py")):
            if path.name != "defaults.py":
                for line, value in _literals(ast.parse(path.read_text())):
                    found.append(f"{path.relative_to(ROOT)}:{line}: {value}")
    assert not found, "\n".join(found)
