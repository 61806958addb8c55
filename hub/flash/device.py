"""The board through mpremote's command line: find it, probe it, check it."""
import errno
import json
import os
import subprocess
import sys

from becomingone.flash.common import MPREMOTE, OURS, FlashError, last_line, say

MIN_MICROPYTHON = (1, 20, 0)  # the oldest release we claim (only 1.27 is tested, on the vboard)


def mpremote(port, *args, timeout=120):
    cmd = [*MPREMOTE, "connect", port, *args]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise FlashError(f"{port} did not answer in {timeout} s: unplug and replug the board, "
                         "then retry") from None
    if r.returncode != 0:
        raise FlashError(mpremote_error(port, r.stdout + r.stderr))
    return r.stdout


def mpremote_error(port, out):
    text = out.strip()
    low = text.lower()
    if "no module named mpremote" in low:
        return f"mpremote is not installed for {sys.executable}: pip install mpremote"
    busy = ("in use by another program", "resource busy", "could not exclusively")
    if any(w in low for w in busy):
        return (f"{port} is busy: another program has it open (a console, Thonny, the hub, "
                "another mpremote?); close it and retry")
    if "failed to access" in low or "no such file" in low or "could not open port" in low:
        return f"no board at {port}: check the cable and the port (`mpremote connect list`)"
    if "could not enter raw repl" in low or "inappropriate ioctl" in low:
        return (f"{port} does not answer like MicroPython: is MicroPython installed? "
                "(flash its firmware first, e.g. the .uf2 / esptool image)")
    return f"mpremote failed on {port}: {last_line(text)}"


def find_port(port):
    if port:
        if port.startswith("/"):
            _check_path(port)
        return port
    try:
        r = subprocess.run([*MPREMOTE, "connect", "list"], capture_output=True, text=True,
                           timeout=30)
    except subprocess.TimeoutExpired:
        raise FlashError("`mpremote connect list` did not answer in 30 s: pass --port") from None
    if r.returncode != 0:
        raise FlashError(mpremote_error("connect list", r.stdout + r.stderr))
    boards = []
    for line in r.stdout.splitlines():
        f = line.split()
        if len(f) >= 3 and f[2] not in ("None", "0000:0000"):
            boards.append((f[0], " ".join(f[3:])))
    if not boards:
        raise FlashError("no board found: plug one in with a data USB cable, or pass --port "
                         "(no hardware? `becomingone vboard` gives a virtual board)")
    if len(boards) == 1:
        say(f"board: {boards[0][0]} {boards[0][1]}")
        return boards[0][0]
    if not sys.stdin.isatty():
        raise FlashError("several boards found (" + ", ".join(b[0] for b in boards) +
                         "): pass --port")
    for i, (p, desc) in enumerate(boards, 1):
        say(f"  {i}. {p} {desc}")
    try:
        choice = input("which board? ").strip()
    except EOFError:
        choice = ""
    if not choice.isdigit() or not 1 <= int(choice) <= len(boards):
        raise FlashError("no board chosen")
    return boards[int(choice) - 1][0]


def _check_path(port):
    """A path given as --port: there, openable, and a terminal (mpremote says
    'may be in use' for all of these)."""
    if not os.path.exists(port):
        raise FlashError(f"no board at {port}: check the cable and the port "
                         "(`mpremote connect list`)")
    try:
        fd = os.open(port, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    except OSError as e:
        if e.errno == errno.EBUSY:
            raise FlashError(f"{port} is busy: another program has it open; close it and "
                             "retry") from None
        if e.errno == errno.EACCES:
            raise FlashError(f"no permission to open {port}: add yourself to its group "
                             "(e.g. sudo usermod -aG dialout $USER, then log in again)") from None
        raise FlashError(f"can't open {port}: {e.strerror}") from None
    try:
        tty = os.isatty(fd)
    finally:
        os.close(fd)
    if not tty:
        raise FlashError(f"{port} is not a serial port: pass the board's port "
                         "(`mpremote connect list`)")


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
            try:
                dev = json.loads(line[7:])
                dev["v"] = [int(x) for x in dev["v"]]
                dev["mpy"], dev["files"] = int(dev["mpy"]), dict(dev["files"])
            except (ValueError, KeyError, TypeError, AttributeError):
                break
            return dev
    raise FlashError(f"{port} answered, but garbled: {out.strip()[-120:]!r} (a noisy cable? "
                     "retry, or try another USB port)")


def version(dev):
    return ".".join(str(x) for x in dev["v"])


# What each chip's MicroPython says about itself (os.uname().machine).
CHIP_MACHINE = {
    "esp32": ("ESP32",), "esp32s3": ("ESP32S3", "ESP32-S3"),
    "rp2040": ("RP2040",), "rp2040w": ("Pico W",),
}


def check_device(dev, board, port):
    v = tuple(dev["v"])
    if v < MIN_MICROPYTHON:
        need = ".".join(map(str, MIN_MICROPYTHON))
        raise FlashError(f"MicroPython {version(dev)} on {port} is too old: BecomingONE needs "
                         f"{need} or newer; update the board's MicroPython first")
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
