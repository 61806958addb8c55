"""Putting files on the board with mpremote, and taking ours off.

copy() tries three ways, each only for the files still missing:
  1. one chained `mpremote fs cp` for all of them (one raw REPL; mpremote
     sends 256-byte chunks);
  2. one `mpremote fs cp` per file (a fresh raw REPL each);
  3. per file, a chain of small `mpremote exec` writes of CHUNK bytes each
     (base64), so a link that loses long transfers still gets them across.
A full filesystem stops at once (retrying can't help)."""
import binascii
import os
import subprocess
import threading
import time

from becomingone.flash.common import MPREMOTE, OURS, FlashError, last_line, say
from becomingone.flash.device import mpremote_error

CHUNK = 128
# Seconds without a line of output from mpremote: the board hangs (tests
# shorten it through the environment).
STALL = float(os.environ.get("BECOMINGONE_FLASH_STALL", "60"))
WAYS = ("", "one file per mpremote call", f"{CHUNK}-byte chunks")


def _full(text):
    return "ENOSPC" in text or "Errno 28" in text or "OSError: 28" in text or \
        "No space left" in text


def _cp_args(batch):
    args = []
    for remote, local, _size in batch:
        args += ["fs", "cp", "-f", str(local), ":" + remote.lstrip("/"), "+"]
    return args[:-1]


def _chunk_args(remote, local):
    data = local.read_bytes()
    args = []
    for i in range(0, max(len(data), 1), CHUNK):
        b64 = binascii.b2a_base64(data[i:i + CHUNK]).strip()  # bytes: some ports want them
        mode = "wb" if i == 0 else "ab"
        args += ["exec", f"import binascii\nf = open({remote!r}, {mode!r})\n"
                 f"f.write(binascii.a2b_base64({b64!r}))\nf.close()", "+"]
    return args[:-1]


def _run(port, args, on_line):
    """One mpremote call, its output line by line; killed when it makes no
    progress (no line) for STALL seconds."""
    proc = subprocess.Popen([*MPREMOTE, "connect", port, *args], text=True,
                            stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
    out, seen, stalled = [], [time.monotonic()], threading.Event()

    def guard():
        while proc.poll() is None:
            if time.monotonic() - seen[0] > STALL:
                stalled.set()
                proc.kill()
                return
            time.sleep(0.5)

    threading.Thread(target=guard, daemon=True).start()
    for line in proc.stdout:
        seen[0] = time.monotonic()
        out.append(line)
        on_line(line)
    rc = proc.wait()
    proc.stdout.close()
    if stalled.is_set():
        raise FlashError(f"{port} stopped answering while copying (nothing for {STALL:.0f} s): "
                         "unplug and replug the board, then retry")
    return rc, "".join(out)


def copy(port, files, done=0, total=None):
    """Write [(remote, local, size)]; returns the remote paths that did not
    make it after every way was tried.  done/total number the progress."""
    total = len(files) if total is None else total
    pending = list(files)
    for way in range(len(WAYS)):
        if not pending:
            break
        if way:
            say(f"  retrying {len(pending)} file(s), {WAYS[way]} (try {way + 1}/{len(WAYS)})")
        queue, failed = pending, []
        while queue:
            batch = queue if way == 0 else queue[:1]
            ok, bad, text = _attempt(port, way, batch, done, total)
            done += len(ok)
            rest = [f for f in batch if f[0] not in ok and f[0] != bad]
            if bad is None:  # nothing got going: the whole batch waits for the next way
                failed += rest
                rest = []
            else:
                failed += [f for f in batch if f[0] == bad]
                if _full(text):
                    left = sum(size for _r, _l, size in failed + rest)
                    raise FlashError(f"flash full on {port} while writing {bad}: "
                                     f"{left / 1024:.1f} kB still to write and no room left "
                                     "(the board said it had more); make room (--erase, or "
                                     "mpremote fs rm) and retry")
                say(f"  copy failed at {bad}: {last_line(text, '?')}")
            queue = rest + queue[len(batch):]  # a chain goes on after the file that failed
        pending = failed
    return [f[0] for f in pending]


def _attempt(port, way, batch, done, total):
    """One mpremote call: (remotes written, the remote it failed at or None,
    its output)."""
    ok, current = [], None

    def progress(remote, size):
        say(f"  [{done + len(ok) + 1}/{total}] {remote} ({size / 1024:.1f} kB)")

    if way < 2:
        by_local = {str(local): (remote, size) for remote, local, size in batch}

        def on_line(line):
            nonlocal current
            f = line.split()
            if line.startswith("cp ") and len(f) > 1 and f[1] in by_local:
                if current is not None:  # the previous file went through
                    ok.append(current)
                current = by_local[f[1]][0]
                progress(current, by_local[f[1]][1])

        rc, text = _run(port, _cp_args(batch), on_line)
    else:
        remote, local, size = batch[0]
        current = remote
        progress(remote, size)
        rc, text = _run(port, _chunk_args(remote, local), lambda _line: None)
    low = text.lower()
    if rc != 0 and ("busy" in low or "in use" in low or "no module named mpremote" in low):
        raise FlashError(mpremote_error(port, text))
    if rc == 0 and current is not None:
        return [*ok, current], None, text
    return ok, current, text


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
