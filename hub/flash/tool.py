"""Put BecomingONE on a MicroPython board: `becomingone flash`.

    becomingone flash --board pico-w --node-id kitchen-1 --transport mqtt \\
        --wifi SSID --broker 192.168.1.10 [--port PORT] [--dry-run] [--erase]

mpremote's command line is the interface to the board.  The tool checks the
board's MicroPython (version and .mpy ABI), compiles shared/kairos and
firmware/node with the mpy-cross matching it, writes them under /lib with
the board definition (board.json), the node config (node.json) and
main.py/boot.py, skipping files whose SHA-256 on the board already matches,
verifies every file by SHA-256 on the board, resets it and waits until the
node's hello and first report arrive (on the console, or on the broker for
an MQTT node).  The pieces are the other modules of this package.

The Wi-Fi password is read from $BECOMINGONE_WIFI_PASSWORD or asked for; it
goes to the board's node.json only (a private temp file on the way), never
to the screen, a log or the repo.  Every failure is one line `flash: ...`
(`becomingone: ...` under `becomingone flash`) and exit code 1.
"""
import os
import pathlib
import sys
import tempfile
import time

from becomingone.flash.args import build_parser
from becomingone.flash.build import diff, load_board_and_config, plan_files, save_key, sha256
from becomingone.flash.common import FlashError, say
from becomingone.flash.device import check_device, find_port, mpremote, probe, version
from becomingone.flash.watch import reset_and_watch
from becomingone.flash.write import WAYS, copy, erase_script, mkdirs_script

__all__ = ["FlashError", "build_parser", "check_device", "main", "run"]


def flash(a):
    t0 = time.monotonic()
    board, board_bytes, cfg = load_board_and_config(a)
    port = find_port(a.port)
    say(f"probing {port} ...")
    dev = probe(port)
    say(f"board: MicroPython {version(dev)} on {dev.get('machine') or dev['platform']}, "
        f".mpy v{dev['mpy'] & 0xFF}.{dev['mpy'] >> 8 & 3}, "
        + (f"{dev['free'] // 1024} kB free" if dev["free"] >= 0 else "free space unknown"))
    check_device(dev, board, port)
    with tempfile.TemporaryDirectory(prefix="becomingone-flash-") as tmp:
        tmp = pathlib.Path(tmp)
        os.chmod(tmp, 0o700)  # node.json may hold the Wi-Fi password
        plan = plan_files(dev, board_bytes, cfg, tmp)
        have = {} if a.erase else dev["files"]
        files, skipped = diff(plan, have)
        if a.dry_run:
            _print_plan(port, a, cfg, dev, plan, files, skipped)
            return 0
        _check_room(port, a, dev, have, files)
        if a.key_is_new:  # before the board has it: a key the hub would not know is no use
            say(f"key: a new key for {a.node_id} in {save_key(a, cfg)}")
        if a.erase:
            say("erasing our files on the board ...")
            mpremote(port, "exec", erase_script())
        if files:
            _write(port, files, skipped)
            _verify(port, plan)
        else:  # the probe's hashes just now are the verification
            say(f"all {skipped} files unchanged")
        say(f"verified {len(plan)} files by SHA-256 ({time.monotonic() - t0:.1f} s)")
    if a.no_watch:
        say("not reset (--no-watch): the board is at its REPL")
        return 0
    say(reset_and_watch(port, cfg, a.watch_timeout))
    return 0


def _print_plan(port, a, cfg, dev, plan, files, skipped):
    say(f"plan for {port} ({'erase first, ' if a.erase else ''}{len(files)} to write, "
        f"{skipped} unchanged):")
    for remote, _l, size in files:
        secret = [w for w, k in (("Wi-Fi password", "wifi"), ("key", "key")) if k in cfg]
        hidden = f" ({' and '.join(secret)} hidden)" if remote == "/node.json" and secret else ""
        say(f"  write {remote} ({size / 1024:.1f} kB){hidden}")
    for remote in sorted(set(dev["files"]) - set(plan)) if not a.erase else []:
        say(f"  leave {remote} (not part of this firmware)")
    say("dry run: nothing written")


def _check_room(port, a, dev, have, files):
    need = sum(size for _r, _l, size in files) - sum(
        have[r][0] for r, _l, _s in files if r in have)
    if a.erase:
        need -= sum(v[0] for v in dev["files"].values())
    if dev["free"] >= 0 and need > dev["free"]:
        raise FlashError(f"flash full on {port}: the firmware needs {need / 1024:.1f} kB more "
                         f"but only {dev['free'] / 1024:.1f} kB are free; remove files from "
                         "the board (mpremote fs rm) or use a bigger board")


def _write(port, files, skipped):
    dirs = {str(pathlib.PurePosixPath(r).parent) for r, _l, _s in files}
    dirs = {str(x) for d in dirs for x in [pathlib.PurePosixPath(d),
                                           *pathlib.PurePosixPath(d).parents] if str(x) != "/"}
    say(f"writing {len(files)} file(s), {skipped} unchanged ...")
    if dirs:
        mpremote(port, "exec", mkdirs_script(dirs))
    # main.py goes last, and only when everything else is there: a
    # half-flashed board doesn't start.
    body = [f for f in files if f[0] != "/main.py"]
    failed = copy(port, body, 0, len(files))
    if not failed:
        failed = copy(port, [f for f in files if f[0] == "/main.py"], len(body), len(files))
    if failed:
        raise FlashError(f"could not copy {failed[0]} in {len(WAYS)} ways: check the cable, "
                         "then retry (or --erase)")


def _verify(port, plan):
    """Every file by SHA-256 on the board; a mismatch is written again once."""
    for attempt in (1, 2):
        got = probe(port)["files"]
        bad = [r for r, local in plan.items()
               if got.get(r, [0, None])[1] != sha256(local.read_bytes())]
        if not bad:
            return
        if attempt == 1:
            say(f"  {len(bad)} file(s) differ on the board; writing them again")
            copy(port, [(r, plan[r], plan[r].stat().st_size) for r in bad])
    r = bad[0]
    theirs = got.get(r, [0, "missing"])[1] or "missing"
    raise FlashError(f"verification failed: {r} on the board has sha256 {theirs[:12]}, "
                     f"expected {sha256(plan[r].read_bytes())[:12]}; the board's flash may be "
                     "failing (retry with --erase, or try another board)")


def main(argv=None):
    a = build_parser().parse_args(argv)
    return run(a)


def run(a):
    prog = "becomingone" if getattr(a, "command", None) == "flash" else "flash"
    try:
        return flash(a)
    except FlashError as e:
        msg = str(e)
    except KeyboardInterrupt:
        msg = "interrupted (the board may be half-flashed: run flash again)"
    except OSError as e:
        msg = f"{e.strerror or e}" + (f": {e.filename}" if e.filename else "")
    except Exception as e:  # noqa: BLE001 - a bug of ours: still one line, exit 1
        msg = f"unexpected {type(e).__name__}: {e} (a bug in becomingone.flash: please report it)"
    print(f"{prog}: {' '.join(msg.split())}", file=sys.stderr, flush=True)
    return 1


if __name__ == "__main__":
    sys.exit(main())
