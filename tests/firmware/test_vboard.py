"""The virtual board (becomingone.vboard): MicroPython's WebAssembly port behind a
pty, driven by the real mpremote and by pyserial the way a USB board is."""
import time

import pytest
from support.rigs import free_port, wait_for
from support.vboard import Console, mpremote, needs_node

from becomingone.vboard import VBoard

pytestmark = needs_node


@pytest.fixture
def board(tmp_path):
    vb = VBoard(fs=tmp_path / "fs").start()
    yield vb
    vb.stop()


def test_mpremote_exec_on_the_vboard(board):
    rc, out, err = mpremote(board.port, "exec",
                            "import sys; print(1 + 1, sys.implementation.name, "
                            "sys.implementation._mpy)")
    assert rc == 0, err
    two, name, mpy = out.split()
    assert (two, name) == ("2", "micropython")
    assert int(mpy) & 0xFF == 6  # .mpy v6 as the port reports it


def test_files_survive_soft_reset_and_mirror_to_the_host(board, tmp_path):
    src = tmp_path / "hello.txt"
    src.write_bytes(b"hello board\n" * 100)
    rc, out, err = mpremote(board.port, "fs", "mkdir", ":lib", "+", "fs", "cp", str(src),
                            ":lib/hello.txt", "+", "soft-reset", "+", "fs", "ls", ":lib",
                            "+", "fs", "sha256sum", ":lib/hello.txt")
    assert rc == 0, err
    assert "hello.txt" in out
    import hashlib

    assert hashlib.sha256(src.read_bytes()).hexdigest() in out
    rc, out, err = mpremote(board.port, "exec", "print(open('lib/hello.txt').read()[:11])")
    assert (rc, out) == (0, "hello board\n"), err
    host = tmp_path / "fs" / "lib" / "hello.txt"
    assert wait_for(lambda: host.exists() and host.read_bytes() == src.read_bytes())


def test_raw_repl_raw_paste_and_soft_reboot_bytes(board):
    with Console(board.port) as s:
        s.write(b"\r\x03\r\x01")
        s.until(b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"\x05A\x01")  # raw-paste: R\x01 and a window size
        head = s.until(b"R\x01")
        s.write(b"print(6 * 7)\x04")
        out = s.until(b"\x04>", timeout=5)
        assert b"42" in head + out
        s.write(b"\x04")  # Ctrl-D at an empty raw line: soft reset
        out = s.until(b"soft reboot\r\n")
        s.until(b"raw REPL; CTRL-B to exit\r\n>")
        s.write(b"\x02")  # back to the friendly REPL
        s.until(b">>> ")
        s.write(b"x = 5\r")
        s.until(b">>> ")
        s.write(b"x * 2\r")
        assert b"10" in s.until(b"10\r\n")


def test_main_py_runs_and_ctrl_c_stops_it(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "boot.py").write_text("print('boot ran')\n")
    (fs / "main.py").write_text(
        "import time\nn = 0\nwhile True:\n    print('tick', n)\n    n += 1\n"
        "    time.sleep_ms(50)\n")
    with VBoard(fs=fs) as vb, Console(vb.port) as s:
        s.write(b"\x04")  # friendly REPL Ctrl-D: the main loop is running, so nothing
        s.until(b"tick 3")
        s.write(b"\x03")
        out = s.until(b">>> ", timeout=5)
        assert b"KeyboardInterrupt" in out
        s.write(b"\x04")  # soft reset from the friendly REPL: boot.py, then main.py
        out = s.until(b"tick 1")
        assert b"MPY: soft reboot" in out and b"boot ran" in out
    # mpremote interrupts the running main.py by itself ("resume": no soft reset,
    # so main.py's globals are still there, as on a board)
    with VBoard(fs=fs) as vb:
        time.sleep(0.3)
        rc, out, err = mpremote(vb.port, "resume", "exec", "print(n > 0)")
        assert (rc, out.strip()) == (0, "True"), err


def test_machine_stand_in_and_reset(tmp_path):
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("import machine\nprint('cause', machine.reset_cause())\n")
    with VBoard(fs=fs) as vb:
        rc, out, err = mpremote(
            vb.port, "exec",
            "import machine, errno\na = machine.ADC(machine.Pin(26))\n"
            "v = [a.read_u16() for _ in range(50)]\n"
            "print(0 <= min(v) < max(v) <= 65535, errno.ENOENT, machine.unique_id())")
        assert rc == 0, err
        assert out.split()[:2] == ["True", "2"]
        with Console(vb.port) as s:
            s.write(b"\r\x03\r\x01import machine\r\nmachine.reset()\x04")
            out = s.until(b"cause 2")  # main.py ran again after the reset


def test_quota_fills_the_flash(tmp_path):
    with VBoard(fs=tmp_path / "fs", quota=8192) as vb:
        rc, out, err = mpremote(vb.port, "df")
        assert rc == 0 and "8192" in out, out + err
        rc, out, err = mpremote(
            vb.port, "exec",
            "import os\ntry:\n    f = open('big', 'wb')\n    f.write(bytes(6000))\n"
            "    f.write(bytes(6000))\nexcept OSError as e:\n    print('errno', e.errno)\n"
            "print(os.stat('big')[6], os.statvfs('/')[4])")
        assert rc == 0, err
        assert out.split()[:3] == ["errno", "28", "6000"]  # ENOSPC, the first write stays


def test_ctrl_c_interrupts_a_long_sleep(tmp_path):
    # The port's own sleep is a C busy wait that ignores Ctrl-C; the vboard's
    # `time` sleeps in steps, so a node in a long wait (the firmware's 5 s
    # restart delay) can be interrupted, as on a board.
    fs = tmp_path / "fs"
    fs.mkdir()
    (fs / "main.py").write_text("import time\nprint('sleeping')\ntime.sleep(600)\n")
    with VBoard(fs=fs) as vb, Console(vb.port) as s:
        # The board may be in main.py's sleep already (it boots before the
        # port is opened here): to the REPL first, then a soft reset runs it.
        s.write(b"\x03")
        s.until(b">>> ", timeout=10)
        s.write(b"\x04")
        s.until(b"sleeping")
        s.write(b"\x03")
        out = s.until(b">>> ", timeout=10)  # not 600 s
        assert b"KeyboardInterrupt" in out


def test_fault_options_fail_writes_hidden_quota_old_version(tmp_path):
    with VBoard(fs=tmp_path / "fs", quota=8192, quota_hidden=True, fail_writes="x.bin:2",
                mp_version="1.18.0") as vb:
        rc, out, err = mpremote(
            vb.port, "exec",
            "import os, sys\nfor i in range(3):\n    try:\n"
            "        open('x.bin', 'wb').write(b'abc')\n        print('ok')\n"
            "    except OSError as e:\n        print('errno', e.errno)\n"
            "print(os.statvfs('/')[2] * os.statvfs('/')[0] > 8192, sys.implementation.version)\n"
            "try:\n    open('big', 'wb').write(bytes(9000))\nexcept OSError as e:\n"
            "    print('errno', e.errno)")
        assert rc == 0, err
        assert out.split("\n")[:5] == ["errno 5", "errno 5", "ok",
                                       "True (1, 18, 0, '')", "errno 28"], out


def test_sockets_reach_a_real_broker(mosquitto):
    closed = free_port()
    with VBoard(net_map={f"10.9.9.9:{closed}": f"127.0.0.1:{mosquitto.port}"}) as vb:
        code = (
            "import socket, select\n"
            f"def connack(host, port):\n"
            "    s = socket.socket()\n    s.settimeout(5)\n"
            "    s.connect(socket.getaddrinfo(host, port, 0, socket.SOCK_STREAM)[0][-1])\n"
            "    s.setblocking(False)\n"
            "    s.send(bytes([0x10, 14, 0, 4]) + b'MQTT' + bytes([4, 2, 0, 30, 0, 2]) + b'vb')\n"
            "    p = select.poll()\n    p.register(s, select.POLLIN)\n    p.poll(5000)\n"
            "    b = bytearray(8)\n    n = s.readinto(b)\n    s.close()\n"
            "    return bytes(b[:n])\n"
            f"print(connack('127.0.0.1', {mosquitto.port}))\n"
            f"print(connack('10.9.9.9', {closed}))\n"  # through --net-map
            "try:\n"
            f"    connack('127.0.0.1', {closed})\n"
            "except OSError as e:\n    print('errno', e.errno)\n")
        rc, out, err = mpremote(vb.port, "exec", code)
        assert rc == 0, err
        lines = out.strip().splitlines()
        assert lines == ["b' \\x02\\x00\\x00'", "b' \\x02\\x00\\x00'", "errno 111"], out
