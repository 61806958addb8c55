"""The documented example config is valid: the hub and its rules accept it."""
from support.mp import ROOT

from becomingone import config
from becomingone.transports.inputs import Inputs


def test_example_config_parses():
    text = (ROOT / "docs" / "hub.example.toml").read_text()
    cfg = config.parse(text, "docs/hub.example.toml")
    assert cfg["mesh"]["enter"] == 0.75 and cfg.weight("kitchen-1", 1) == 3.0
    assert [(r.name, r.line) for r in cfg.rules] == [("glow when one", 99), ("publish state", 109)]
    assert set(Inputs(cfg.inputs, lambda *a: None).inputs) == {"input-door"}
    # Every section and key in the defaults is shown in the example.
    for sec, keys in config.DEFAULTS.items():
        assert f"[{sec}]" in text, sec
        for key in keys:
            assert f"\n{key} = " in text, (sec, key)
