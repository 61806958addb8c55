import sys
import pathlib

import pytest

sys.path.insert(0, str(pathlib.Path(__file__).resolve().parent))


@pytest.fixture(scope="session")
def mpy():
    """One MicroPython VM for the session (starting one costs ~0.3 s)."""
    from mp import MicroPython

    vm = MicroPython()
    yield vm
    vm.close()
