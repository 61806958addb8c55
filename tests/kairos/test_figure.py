"""tools/kairos_figure.py draws the docs figure from the real kernel."""
import importlib.util
import struct

import pytest
from support.mp import ROOT

SCRIPT = ROOT / "tools" / "kairos_figure.py"


def test_figure_is_written(tmp_path):
    pytest.importorskip("matplotlib")
    spec = importlib.util.spec_from_file_location("kairos_figure", SCRIPT)
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "fig.png"
    assert mod.main(["--out", str(out)]) == 0
    data = out.read_bytes()
    assert len(data) > 20_000
    # PNG signature, then the IHDR chunk: length, b"IHDR", width, height (big-endian).
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and data[12:16] == b"IHDR"
    assert struct.unpack(">II", data[16:24]) == (1100, 770)  # 10 x 7 in at 110 dpi
