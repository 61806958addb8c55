"""A virtual board: MicroPython's WebAssembly port (run by Node.js, see
vboard.mjs beside this file) behind a pseudo-terminal that mpremote, pyserial
and `becomingone flash` open like /dev/ttyACM0.

    becomingone vboard [--fs DIR] [--quota BYTES] [--link PATH]

prints the port path and runs until Ctrl-C.  --fs keeps the board's files in
DIR (loaded at start, mirrored back whenever the board goes idle); --quota
makes the flash that small (--quota-hidden: os.statvfs doesn't say so);
--bitrot SUFFIX flips a bit in every write to a file ending in SUFFIX (a
worn flash); --fail-writes SUFFIX:N fails the first N writes to such files
(a flaky link); --hang-writes SUFFIX hangs the board on such a write;
--mp-version X.Y.Z makes the board claim that MicroPython;
--net-map A:P=B:Q sends the board's TCP connections to A:P to B:Q (the
board has TCP client sockets, no Wi-Fi).
Tests use VBoard as a context manager.

The port is the official npm package (NPM_PACKAGE at NPM_VERSION).  It is
looked for in $BECOMINGONE_NPM_DIR, in a source checkout's tools/node_modules
(what tools/setup.sh installs) and in the user's cache; when it is in none of
them, the first start fetches it into the cache with npm, saying so.
"""
import argparse
import contextlib
import os
import pathlib
import select
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import tty

from becomingone.errors import BecomingOneError

HERE = pathlib.Path(__file__).resolve().parent
GLUE = HERE / "vboard.mjs"
NPM_PACKAGE = "@micropython/micropython-webassembly-pyscript"
NPM_VERSION = "1.27.0"  # as tools/package.json pins it for the tests
# A source checkout (or an editable install of one): hub/vboard -> tools/.  In
# an installed wheel the folder two up is site-packages, which is no checkout.
_ROOT = HERE.parent.parent
CHECKOUT_NPM = _ROOT / "tools" if (_ROOT / "pyproject.toml").is_file() else None


class VBoardError(BecomingOneError):
    """The virtual board could not start (one line: what to do)."""


def _cache_dir() -> pathlib.Path:
    base = os.environ.get("XDG_CACHE_HOME") or os.path.join(os.path.expanduser("~"), ".cache")
    return pathlib.Path(base) / "becomingone" / "npm"


def _npm_dirs():
    env = os.environ.get("BECOMINGONE_NPM_DIR")
    return [d for d in (pathlib.Path(env) if env else None, CHECKOUT_NPM, _cache_dir()) if d]


def micropython_mjs(fetch=True, say=None):
    """The npm port's micropython.mjs.  Fetched with npm into the first of
    $BECOMINGONE_NPM_DIR or the cache when it is nowhere (and fetch is true)."""
    for d in _npm_dirs():
        mjs = d / "node_modules" / NPM_PACKAGE / "micropython.mjs"
        if mjs.is_file():
            return mjs
    target = _npm_dirs()[0] if os.environ.get("BECOMINGONE_NPM_DIR") else _cache_dir()
    how = f"npm install --prefix {target} {NPM_PACKAGE}@{NPM_VERSION}"
    npm = shutil.which("npm")
    if not fetch or npm is None:
        raise VBoardError(f"needs Node.js and MicroPython's npm port: {how}"
                          + ("" if npm else " (npm is not installed: apt install nodejs npm)"))
    (say or (lambda m: print(m, file=sys.stderr, flush=True)))(
        f"vboard: fetching MicroPython's WebAssembly port once ({how}) ...")
    target.mkdir(parents=True, exist_ok=True)
    p = subprocess.run([npm, "install", "--prefix", str(target), "--no-audit", "--no-fund",
                        "--no-save", f"{NPM_PACKAGE}@{NPM_VERSION}"],
                       capture_output=True, text=True)
    mjs = target / "node_modules" / NPM_PACKAGE / "micropython.mjs"
    if p.returncode != 0 or not mjs.is_file():
        why = (p.stderr.strip().splitlines() or ["no micropython.mjs after install"])[-1]
        raise VBoardError(f"npm could not fetch {NPM_PACKAGE}@{NPM_VERSION}: {why}")
    return mjs


class VBoard:
    """One virtual board.  `port` is the path to open; stop() ends it."""

    def __init__(self, fs=None, quota=0, bitrot=None, link=None, heap=None, quota_hidden=False,
                 fail_writes=None, mp_version=None, net_map=None, hang_writes=None, fetch=True):
        self.fs, self.quota, self.bitrot, self.link, self.heap = fs, quota, bitrot, link, heap
        self.quota_hidden, self.fail_writes, self.mp_version = quota_hidden, fail_writes, mp_version
        self.hang_writes = hang_writes
        self.fetch = fetch  # fetch the npm port on first use when it is nowhere
        self.net_map = net_map or {}  # {"host:port": "host:port"} for the board's connections
        self.proc = None
        self.port = None
        self._hold = None
        self._log = None

    def start(self, timeout=30.0):
        node = shutil.which("node")
        if node is None:
            raise VBoardError("needs Node.js: apt install nodejs npm (or https://nodejs.org)")
        mjs = micropython_mjs(fetch=self.fetch)
        master, slave = os.openpty()
        tty.setraw(slave)  # no echo, no CR/LF translation: like a USB CDC port
        os.set_blocking(master, False)
        self.port = os.ttyname(slave)
        args = [node, str(GLUE), "--fd", str(master)]
        for flag, value in (("--fs", self.fs), ("--quota", self.quota),
                            ("--bitrot", self.bitrot), ("--heap", self.heap),
                            ("--fail-writes", self.fail_writes),
                            ("--hang-writes", self.hang_writes),
                            ("--mp-version", self.mp_version),
                            ("--net-map", ",".join(f"{a}={b}" for a, b in self.net_map.items()))):
            if value:
                args += [flag, str(value)]
        if self.quota_hidden:
            args.append("--quota-hidden")
        self._log = tempfile.TemporaryFile()  # noqa: SIM115 - lives as long as the board
        env = dict(os.environ, VBOARD_PYTHON=sys.executable,  # runs netbridge.py (sockets)
                   VBOARD_MICROPYTHON=str(mjs))
        self.proc = subprocess.Popen(args, pass_fds=(master,), stdin=subprocess.DEVNULL,
                                     stdout=subprocess.PIPE, stderr=self._log, env=env)
        os.close(master)
        # Keep the slave open ourselves so the board's end never sees a hangup
        # while no program has the port open (a USB board stays powered too).
        self._hold = slave
        end = time.monotonic() + timeout
        line = b""
        while not line.endswith(b"\n"):
            left = end - time.monotonic()
            if left <= 0 or self.proc.poll() is not None:
                err = self.stderr()
                self.stop()
                raise VBoardError("the virtual board did not start: " + (err.strip().splitlines() or
                                                                         ["timed out"])[-1])
            if select.select([self.proc.stdout], [], [], min(left, 0.2))[0]:
                line += os.read(self.proc.stdout.fileno(), 100)
        if self.link:
            with contextlib.suppress(FileNotFoundError):
                os.unlink(self.link)
            os.symlink(self.port, self.link)
        return self

    def stderr(self):
        if self._log is None:
            return ""
        self._log.seek(0)
        return self._log.read().decode(errors="replace")

    def stop(self):
        if self.proc is not None:
            if self.proc.poll() is None:
                self.proc.terminate()
                try:
                    self.proc.wait(5)
                except subprocess.TimeoutExpired:
                    self.proc.kill()
                    self.proc.wait(5)
            self.proc.stdout.close()
            self.proc = None
        if self._hold is not None:
            os.close(self._hold)
            self._hold = None
        if self.link and os.path.islink(self.link):
            os.unlink(self.link)
        if self._log is not None:
            self._log.close()
            self._log = None

    def __enter__(self):
        return self.start()

    def __exit__(self, *exc):
        self.stop()


def build_parser(p=None):
    p = p or argparse.ArgumentParser(
        prog="vboard", description="Run a virtual MicroPython board on a pseudo-terminal.")
    p.add_argument("--fs", help="keep the board's files in this directory")
    p.add_argument("--quota", type=int, default=0, help="flash size in bytes (default: unlimited)")
    p.add_argument("--quota-hidden", action="store_true",
                   help="os.statvfs doesn't show the quota (a too hopeful free count)")
    p.add_argument("--bitrot", help="flip a bit in every write to files ending in this")
    p.add_argument("--fail-writes", metavar="SUFFIX:N",
                   help="the first N writes to files ending in SUFFIX fail (EIO)")
    p.add_argument("--hang-writes", metavar="SUFFIX",
                   help="the board hangs for good on a write to a file ending in this")
    p.add_argument("--mp-version", metavar="X.Y.Z", help="claim this MicroPython version")
    p.add_argument("--net-map", metavar="HOST:PORT=HOST:PORT", action="append", default=[],
                   help="the board's TCP connections to the first go to the second")
    p.add_argument("--heap", type=int, help="MicroPython heap in bytes (default 196608)")
    p.add_argument("--link", help="also make this symlink to the port (a stable path)")
    return p


def main(argv=None):
    try:
        return run(build_parser().parse_args(argv))
    except VBoardError as e:
        print(f"vboard: {e}", file=sys.stderr)
        return 1


def run(a):
    """Start the board, print its port, run until Ctrl-C or SIGTERM.
    VBoardError for a user error."""
    if a.mp_version and not all(x.isdigit() for x in a.mp_version.split(".")):
        raise VBoardError(f"--mp-version wants X.Y.Z, got {a.mp_version!r}")
    vb = VBoard(fs=a.fs, quota=a.quota, bitrot=a.bitrot, link=a.link, heap=a.heap,
                quota_hidden=a.quota_hidden, fail_writes=a.fail_writes, mp_version=a.mp_version,
                hang_writes=a.hang_writes,
                net_map=dict(m.split("=", 1) for m in a.net_map if "=" in m))
    vb.start()
    print(a.link or vb.port, flush=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))  # stop the board cleanly
    try:
        rc = vb.proc.wait()
        print(f"vboard: the board stopped (exit {rc}): {vb.stderr().strip()[-500:]}",
              file=sys.stderr)
        return 1
    except KeyboardInterrupt:
        return 0
    finally:
        vb.stop()


if __name__ == "__main__":
    sys.exit(main())
