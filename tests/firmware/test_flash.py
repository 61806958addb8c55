"""`becomingone flash` through the real mpremote against the virtual board: from
scratch, nothing changed, a corrupted file, dry run, erase, and the flashed
node ingested by a running `becomingone hub`.  The errors are in
test_flash_errors.py, the MQTT path in test_flash_mqtt.py."""
import re
import time

from support.flash import flash
from support.hub import RunningHub
from support.mp import ROOT
from support.rigs import wait_for
from support.vboard import Console, mpremote, needs_node

from becomingone.vboard import VBoard

pytestmark = needs_node

HEAP = "import gc\ngc.collect()\nprint('heap', gc.mem_alloc(), gc.mem_free())"


def heap(port, *before):
    """(allocated, free) after gc.collect(), in its own mpremote call: while
    a script runs, gc.collect() on the vboard frees next to nothing."""
    rc, o, e = mpremote(port, "resume", *before, "exec", HEAP)
    assert rc == 0, o + e
    return tuple(int(x) for x in o.strip().splitlines()[-1].split()[1:])


def test_flash_from_scratch_unchanged_and_a_corrupted_file(tmp_path):
    from kairos import wire

    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, t_scratch = flash(vb.port)
        assert rc == 0, out + err
        n = int(re.search(r"writing (\d+) file\(s\), 0 unchanged", out)[1])
        assert f"[{n}/{n}] /main.py" in out  # progress per file, main.py last
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
        assert f"all {n} files unchanged" in out and "[1/" not in out

        # A file corrupted on the board is found by its hash and rewritten.
        rc, o, e = mpremote(vb.port, "exec",
                            "f = open('lib/kairos/wire.mpy', 'r+b'); f.seek(40); "
                            "f.write(b'\\xff\\xff'); f.close()")
        assert rc == 0, e
        rc, out, err, _ = flash(vb.port)
        assert rc == 0, out + err
        assert f"writing 1 file(s), {n - 1} unchanged" in out
        assert "[1/1] /lib/kairos/wire.mpy" in out and "is reporting" in out

        # Heap: main.py's node ran, then was interrupted (its modules stay
        # loaded); then a node booted by hand, kept in a global, after 60
        # samples.  Each figure in a call of its own.
        ran = heap(vb.port)
        live = heap(vb.port, "exec", "import node.app\nn = node.app.boot()\nn.start()\n"
                    "n.loop(60)", "+")
        assert 0 < ran[0] <= live[0]

    py = sum(p.stat().st_size for base in (ROOT / "shared" / "kairos", ROOT / "firmware" / "node")
             for p in base.rglob("*.py")
             if "__pycache__" not in p.parts and not p.name.startswith(("batch.py", "_batch")))
    mpy = sum(p.stat().st_size for p in on_board.rglob("*.mpy"))
    rest = sum((tmp_path / "fs" / f).stat().st_size
               for f in ("board.json", "node.json", "boot.py", "main.py"))
    print(f"\nflash from scratch ({n} files) {t_scratch:.1f} s, nothing changed {t_same:.1f} s;"
          f" firmware .py {py / 1024:.1f} kB -> .mpy {mpy / 1024:.1f} kB (+ {rest / 1024:.1f} kB"
          f" board.json/node.json/boot.py/main.py); heap in use: {ran[0] / 1024:.1f} kB after the"
          f" node ran and was interrupted, {live[0] / 1024:.1f} kB with a booted node alive after"
          f" 60 samples ({live[1] / 1024:.0f} kB free: the vboard grows its heap on demand)")
    assert mpy < py


def test_dry_run_writes_nothing_and_erase_rewrites_all(tmp_path):
    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--dry-run")
        assert rc == 0, out + err
        n = int(re.search(r"(\d+) to write, 0 unchanged", out)[1])
        assert n == out.count("  write /") and "dry run: nothing written" in out
        rc, o, e = mpremote(vb.port, "exec", "import os; print(sorted(os.listdir('/')))")
        assert "'lib'" not in o and "main.py" not in o
        rc, out, err, _ = flash(vb.port, "--no-watch")
        assert rc == 0, out + err
        mpremote(vb.port, "exec", "open('keep.txt', 'w').write('mine')")
        rc, out, err, _ = flash(vb.port, "--erase", "--no-watch")
        assert rc == 0, out + err
        assert "erasing" in out and f"writing {n} file(s), 0 unchanged" in out
        rc, o, e = mpremote(vb.port, "exec", "print(open('keep.txt').read())")
        assert o.strip() == "mine"  # only our files are erased


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
    from becomingone import cli

    with VBoard(fs=tmp_path / "fs") as vb:
        rc = cli.main(["flash", "--board", "sim", "--node-id", "vb-1", "--port", vb.port,
                       "--dry-run"])
        assert rc == 0
        assert "dry run: nothing written" in capsys.readouterr().out


def test_becomingone_hub_ingests_the_flashed_vboard(tmp_path):
    """flash -> the firmware boots on the vboard -> a running `becomingone hub`
    (its own process, serial transport, web API on a free port) ingests its
    frames -> GET /api/nodes shows the node live with plausible c."""
    import serial

    with VBoard(fs=tmp_path / "fs") as vb:
        rc, out, err, _ = flash(vb.port, "--no-watch")  # flashed, idle at the REPL
        assert rc == 0, out + err
        (tmp_path / "hub.toml").write_text(f"""
[hub]
db = "{tmp_path / 'hub.db'}"
[mesh]
dwell = 0.0
[serial]
enabled = true
ports = ["{vb.port}"]
""")
        with RunningHub(tmp_path / "hub.toml") as hub:
            with serial.Serial(vb.port) as s:  # reset the board: it boots into the hub
                s.write(b"\r\x02\x04")
            assert wait_for(lambda: hub.live("vb-1"), 30, 0.2), hub.log()
            row = hub.node("vb-1")
            assert row["board"] == "sim" and row["transport"].startswith("serial")
            assert 0.5 < row["c"] <= 1.0, row
