"""tools/flash.py through the real mpremote against the virtual board: from
scratch, nothing changed, a corrupted file, and every error a person gets."""
import importlib.util
import subprocess
import sys
import time

import pytest
from mp import ROOT
from test_vboard import MPREMOTE, Console, mpremote, pytestmark  # noqa: F401

sys.path.insert(0, str(ROOT / "tools"))
from vboard import VBoard  # noqa: E402

FLASH = [sys.executable, str(ROOT / "tools" / "flash.py")]


def flash(port, *extra, board="sim", timeout=120):
    t0 = time.monotonic()
    r = subprocess.run([*FLASH, "--board", board, "--node-id", "vb-1", "--port", port, *extra],
                       capture_output=True, text=True, timeout=timeout)
    return r.returncode, r.stdout, r.stderr, time.monotonic() - t0


def one_line_error(rc, out, err, start):
    assert rc == 1, out + err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("flash: " + start), err
    assert "Traceback" not in out + err
    return lines[0]


def load_flash():
    spec = importlib.util.spec_from_file_location("flash_tool", ROOT / "tools" / "flash.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_flash_from_scratch_unchanged_and_a_corrupted_file(tmp_path):
    from kairos import wire

    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, t_scratch = flash(vb.port)
        assert rc == 0, out + err
        assert "[35/35] /main.py" in out  # progress per file
        assert out.strip().splitlines()[-1].startswith("vb-1 is reporting: c=")
        on_board = tmp_path / "fs" / "lib"
        assert (on_board / "kairos" / "wire.mpy").exists()
        assert not (on_board / "kairos" / "batch.mpy").exists()  # hub-only numpy code
        assert not list(on_board.rglob("*.py"))

        # The node streams frames over the pty: decode them.
        with Console(vb.port) as c:
            dec = wire.LineDecoder()
            frames = []
            end = time.monotonic() + 10
            while time.monotonic() < end and sum(f["t"] == "report" for f in frames) < 2:
                frames += dec.feed(c.s.read(4096))
        reports = [f for f in frames if f["t"] == "report"]
        assert len(reports) >= 2 and all(f["node"] == "vb-1" for f in frames)
        assert 0 <= reports[-1]["ch"][0][3] <= 32767

        rc, out, err, t_same = flash(vb.port)
        assert rc == 0, out + err
        assert "all 35 files unchanged" in out and "[1/" not in out

        # A file corrupted on the board is found by its hash and rewritten.
        rc, o, e = mpremote(vb.port, "exec",
                            "f = open('lib/kairos/wire.mpy', 'r+b'); f.seek(40); "
                            "f.write(b'\\xff\\xff'); f.close()")
        assert rc == 0, e
        rc, out, err, _ = flash(vb.port)
        assert rc == 0, out + err
        assert "writing 1 file(s), 34 unchanged" in out
        assert "[1/1] /lib/kairos/wire.mpy" in out and "is reporting" in out

        # Free heap with the firmware running from .mpy (boot + 60 samples).
        rc, o, e = mpremote(vb.port, "exec",
                            "import gc, node.app\nn = node.app.boot()\nn.start()\nn.loop(60)\n"
                            "gc.collect()\nprint('heap', gc.mem_alloc(), gc.mem_free())")
        assert rc == 0, e
        alloc, free = (int(x) for x in o.strip().splitlines()[-1].split()[1:])

    py = sum(p.stat().st_size for base in (ROOT / "shared" / "kairos", ROOT / "firmware" / "node")
             for p in base.rglob("*.py")
             if "__pycache__" not in p.parts and not p.name.startswith(("batch.py", "_batch")))
    mpy = sum(p.stat().st_size for p in on_board.rglob("*.mpy"))
    print(f"\nflash from scratch {t_scratch:.1f} s, nothing changed {t_same:.1f} s; "
          f"firmware .py {py / 1024:.1f} kB -> .mpy {mpy / 1024:.1f} kB; "
          f"heap after boot + 60 samples: {alloc / 1024:.1f} kB allocated "
          f"({free / 1024:.0f} kB free)")
    assert mpy < py


def test_dry_run_writes_nothing_and_erase_rewrites_all(tmp_path):
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--dry-run")
        assert rc == 0, out + err
        assert "35 to write, 0 unchanged" in out and "dry run: nothing written" in out
        rc, o, e = mpremote(vb.port, "exec", "import os; print(sorted(os.listdir('/')))")
        assert "'lib'" not in o and "main.py" not in o
        rc, out, err, _ = flash(vb.port, "--no-watch")
        assert rc == 0, out + err
        mpremote(vb.port, "exec", "open('keep.txt', 'w').write('mine')")
        rc, out, err, _ = flash(vb.port, "--erase", "--no-watch")
        assert rc == 0, out + err
        assert "erasing" in out and "writing 35 file(s), 0 unchanged" in out
        rc, o, e = mpremote(vb.port, "exec", "print(open('keep.txt').read())")
        assert o.strip() == "mine"  # only our files are erased


def test_wrong_board_type(tmp_path):
    with VBoard(fs=tmp_path / "fs") as vb:
        line = one_line_error(*flash(vb.port, board="pico-w")[:3], "wrong board")
        assert "not a pico-w" in line
        rc, o, e = mpremote(vb.port, "exec", "import os; print('lib' in os.listdir('/'))")
        assert o.strip() == "False"  # nothing written


def test_flash_full_reports_the_space_needed(tmp_path):
    with VBoard(fs=tmp_path / "fs", quota=20000) as vb:
        line = one_line_error(*flash(vb.port)[:3], "flash full")
        assert "needs" in line and "kB" in line and "free" in line


def test_verification_mismatch(tmp_path):
    with VBoard(fs=tmp_path / "fs", bitrot="kairos/wire.mpy") as vb:
        line = one_line_error(*flash(vb.port)[:3], "verification failed")
        assert "/lib/kairos/wire.mpy" in line


def test_no_port_and_busy_port(tmp_path):
    one_line_error(*flash("/dev/ttyNOPE0")[:3], "no board at /dev/ttyNOPE0")
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


def test_too_old_micropython_and_cpython_boards():
    f = load_flash()
    dev = {"v": [1, 19, 1], "mpy": 6, "machine": "Raspberry Pi Pico W with RP2040",
           "platform": "rp2"}
    with pytest.raises(f.FlashError, match="too old"):
        f.check_device(dev, {"board": "pico-w", "chip": "rp2040w"}, "/dev/ttyACM0")
    dev["v"] = [1, 27, 0]
    f.check_device(dev, {"board": "pico-w", "chip": "rp2040w"}, "/dev/ttyACM0")
    f.check_device(dev, {"board": "pico", "chip": "rp2040"}, "/dev/ttyACM0")
    with pytest.raises(f.FlashError, match="wrong board"):
        f.check_device(dev, {"board": "esp32-s3", "chip": "esp32s3"}, "/dev/ttyACM0")
    with pytest.raises(f.FlashError, match="CPython"):
        f.check_device(dev, {"board": "pi-zero-w", "chip": "bcm2835", "runtime": "cpython"}, "x")


def test_wifi_password_stays_out_of_the_output(tmp_path, monkeypatch):
    monkeypatch.setenv("BECOMINGONE_WIFI_PASSWORD", "hunter2-secret")
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--transport", "mqtt", "--wifi", "HomeNet",
                                "--broker", "127.0.0.1", "--no-watch", board="sim")
        assert rc == 0, out + err
        assert "hunter2" not in out + err
    node = (tmp_path / "fs" / "node.json").read_text()
    assert "hunter2-secret" in node  # on the board, and only there


def test_becomingone_flash_command(tmp_path, capsys):
    from hub import cli

    with VBoard(fs=tmp_path / "fs") as vb:
        rc = cli.main(["flash", "--board", "sim", "--node-id", "vb-1", "--port", vb.port,
                       "--dry-run"])
        assert rc == 0
        assert "dry run: nothing written" in capsys.readouterr().out


def test_hub_ingests_the_flashed_vboard_over_serial(tmp_path):
    """flash -> the firmware boots on the vboard -> the hub's serial transport
    reads its frames off the pty -> the node is live in the hub with plausible c."""
    import threading

    from rigs import wait_for

    from hub import config, run
    from hub.logs import Log

    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--no-watch")  # flashed, idle at the REPL
        assert rc == 0, out + err
        cfg = config.parse(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mesh]
dwell = 0.0
[serial]
enabled = true
ports = ["{vb.port}"]
""")
        hub = run.build(cfg, Log(quiet=("collapse", "hello", "transport")))
        hub.start()
        try:
            time.sleep(0.5)
            import serial

            with serial.Serial(vb.port) as s:  # reset the board: it boots into the hub
                s.write(b"\x02\x04")
            assert wait_for(lambda: len(hub.store.reports("vb-1", 0)) >= 3, 20)
            info = hub.registry.nodes["vb-1"]
            assert info.hello["board"] == "sim" and info.source.startswith("serial:")
            rows = hub.store.reports("vb-1", 0)
            assert 0.5 * 32768 < max(r["c"] for r in rows) <= 32767
            assert wait_for(lambda: hub.mesh_state is not None
                            and "vb-1" in hub.mesh_state.live, 10)
        finally:
            threading.Thread(target=hub.stop, daemon=True).start()
            time.sleep(0.5)
