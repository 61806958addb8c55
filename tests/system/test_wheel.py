"""The wheel, proven from outside the checkout (issue 12).

One module fixture copies the source tree (so a stale in-tree build/ cannot
leak into the wheel, and other builds in the checkout cannot race this one),
builds the wheel with `pip wheel --no-deps`, checks what it holds against the
source folders, and installs it into a fresh venv (pip fetches the
dependencies; its cache makes that quick).  Every command then runs from the
venv's bin/ in an empty directory with no PYTHONPATH, so nothing can come
from the checkout: `becomingone version`, `python -m becomingone`, `boards`,
`boards check`, `vboard` (with an empty XDG_CACHE_HOME, so it really fetches
MicroPython's npm port and says so), `flash --board sim` onto that virtual
board up to the node's first report, `console` on it decoding frames and
timing a ping, and the demo.
"""
import os
import pathlib
import re
import select
import shutil
import subprocess
import sys
import threading
import time
import zipfile

import pytest
from support.mp import ROOT
from support.rigs import wait_for

pytestmark = pytest.mark.skipif(
    shutil.which("node") is None or shutil.which("npm") is None,
    reason="needs Node.js and npm (the virtual board; bash tools/setup.sh)")

# Copied to build from: the source, not what tools and builds leave beside it.
IGNORE = shutil.ignore_patterns(".git", ".venv", "build", "dist", "*.egg-info", "node_modules",
                                "__pycache__", ".pytest_cache", ".hypothesis", ".ruff_cache",
                                ".benchmarks", "*.db", "*.db-shm", "*.db-wal", "test-output",
                                "test-results")
# Source folder -> where its files land in the wheel (pyproject's package-dir).
SHIPPED = {"hub": "becomingone", "shared/kairos": "kairos",
           "firmware": "becomingone/firmware", "boards": "becomingone/boards/defs"}


def expected_files(root=ROOT):
    """Every file of the shipped source folders, as its path in the wheel:
    the code, the firmware, the board definitions, the vboard's glue, the
    web page, the demo's config.  A new file there must ship too."""
    want = set()
    for src, dst in SHIPPED.items():
        for f in (root / src).rglob("*"):
            rel = f.relative_to(root / src)
            if f.is_file() and "__pycache__" not in rel.parts and f.suffix != ".pyc":
                want.add(f"{dst}/{rel.as_posix()}")
    return want


def _ours(top):
    return top in ("becomingone", "kairos") or top.endswith(".dist-info")


def wheel_faults(names, root=ROOT):
    """What is wrong with a wheel holding `names`: files of the source folders
    it lacks, and anything outside becomingone/, kairos/ and its dist-info
    (tests/ and tools/ above all).  Empty when it is complete."""
    missing = sorted(expected_files(root) - set(names))
    stray = sorted(n for n in names if not _ours(n.split("/", 1)[0]))
    return ([f"missing {n}" for n in missing] + [f"not ours to ship: {n}" for n in stray])


class Wheel:
    """The built wheel and the venv it is installed in."""

    def __init__(self, path, venv, figures):
        self.path, self.venv, self.figures = path, venv, figures
        self.bin = venv / "bin"

    def env(self, cache):
        """The environment commands run in: the venv first on PATH (node and
        npm stay reachable), nothing pointing at the checkout, an npm cache
        of this test's own."""
        env = {k: v for k, v in os.environ.items()
               if k not in ("PYTHONPATH", "PYTHONHOME", "VIRTUAL_ENV", "BECOMINGONE_NPM_DIR")}
        env["PATH"] = f"{self.bin}{os.pathsep}{env.get('PATH', '')}"
        env["XDG_CACHE_HOME"] = str(cache)
        return env


def _timed(figures, what, cmd, timeout, **kw):
    t0 = time.monotonic()
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, **kw)
    figures[what] = time.monotonic() - t0
    assert r.returncode == 0, f"{what} failed:\n{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    return r


@pytest.fixture(scope="module")
def wheel(tmp_path_factory):
    base = tmp_path_factory.mktemp("wheel")
    figures = {}
    src = base / "src"
    shutil.copytree(ROOT, src, ignore=IGNORE)
    _timed(figures, "pip wheel", [sys.executable, "-m", "pip", "wheel", "--no-deps", "-q",
                                  "-w", str(base / "dist"), str(src)], 300)
    (path,) = (base / "dist").glob("becomingone-*.whl")
    _timed(figures, "venv", [sys.executable, "-m", "venv", str(base / "venv")], 120)
    _timed(figures, "pip install", [str(base / "venv" / "bin" / "python"), "-m", "pip", "install",
                                    "-q", "--disable-pip-version-check", str(path)], 600)
    print("\nwheel: " + ", ".join(f"{k} {v:.1f} s" for k, v in figures.items()))
    return Wheel(path, base / "venv", figures)


@pytest.fixture(scope="module")
def outside(tmp_path_factory):
    """An empty working directory and an empty cache (the npm port is not
    there: the vboard must fetch it)."""
    return tmp_path_factory.mktemp("cwd"), tmp_path_factory.mktemp("cache")


def run(wheel, outside, *args, timeout=120, tool="becomingone"):
    cwd, cache = outside
    return subprocess.run([str(wheel.bin / tool), *args], cwd=cwd, env=wheel.env(cache),
                          capture_output=True, text=True, timeout=timeout)


# -- what the wheel holds --------------------------------------------------------------
def test_the_wheel_holds_the_firmware_boards_and_tools_and_no_tests(wheel):
    names = zipfile.ZipFile(wheel.path).namelist()
    assert wheel_faults(names) == []
    for must in ("becomingone/firmware/main.py", "becomingone/firmware/node/app.py",
                 "becomingone/boards/defs/sim.json", "becomingone/vboard/vboard.mjs",
                 "becomingone/vboard/mp/machine.py", "becomingone/flash/tool.py",
                 "becomingone/console/frames.py", "becomingone/web/static/index.html",
                 "becomingone/demo/demo.toml", "kairos/wire.py"):
        assert must in names
    assert not [n for n in names if n.startswith(("tests/", "tools/")) or "/tests/" in n
                or "/tools/" in n]


def test_the_content_check_names_what_a_wheel_lacks(wheel):
    # The check above can fail: the same wheel without its firmware, a
    # board, the vboard's glue, and with a test file, is refused line by line.
    names = [n for n in zipfile.ZipFile(wheel.path).namelist()
             if not n.startswith("becomingone/firmware/")
             and n not in ("becomingone/boards/defs/pico.json", "becomingone/vboard/net.mjs")]
    faults = wheel_faults([*names, "tests/test_x.py", "tools/setup.sh"])
    assert "missing becomingone/firmware/main.py" in faults
    assert "missing becomingone/firmware/node/sensors/sim.py" in faults
    assert "missing becomingone/boards/defs/pico.json" in faults
    assert "missing becomingone/vboard/net.mjs" in faults
    assert "not ours to ship: tests/test_x.py" in faults
    assert "not ours to ship: tools/setup.sh" in faults


# -- the commands, from outside ----------------------------------------------------------
def test_version_and_imports_come_from_the_venv(wheel, outside):
    r = run(wheel, outside, "version")
    assert r.returncode == 0 and re.fullmatch(r"becomingone \d+\.\d+\.\d+\n", r.stdout), r
    m = run(wheel, outside, "-m", "becomingone", "version", tool="python")
    assert m.returncode == 0 and m.stdout == r.stdout, m
    where = run(wheel, outside, "-c", "import becomingone, kairos, becomingone.firmware as f; "
                "print(becomingone.__file__, kairos.__file__, f.__file__)", tool="python")
    assert where.returncode == 0, where.stderr
    for path in where.stdout.split():
        assert pathlib.Path(path).resolve().is_relative_to(wheel.venv.resolve()), where.stdout


def test_boards_lists_and_checks_from_the_wheel(wheel, outside, tmp_path):
    r = run(wheel, outside, "boards")
    assert r.returncode == 0, r.stderr
    listed = {line.split()[0] for line in r.stdout.splitlines() if not line.startswith(" ")}
    assert listed == {p.stem for p in (ROOT / "boards").glob("*.json")}
    good = tmp_path / "sim.json"
    shutil.copy(ROOT / "boards" / "sim.json", good)
    bad = tmp_path / "bad.json"
    bad.write_text('{"board": "bad"}')
    ok = run(wheel, outside, "boards", "check", str(good))
    assert ok.returncode == 0 and ok.stdout.strip() == f"ok: {good}", ok
    no = run(wheel, outside, "boards", "check", str(bad))
    assert no.returncode == 1 and "bad.json" in no.stderr and "missing" in no.stderr, no


@pytest.fixture(scope="module")
def vboard(wheel, outside):
    """`becomingone vboard` from the venv: (port, its stderr so far).  The
    cache is empty, so the first start fetches the npm port."""
    cwd, cache = outside
    log = open(cwd.parent / "vboard.err", "w+b")  # noqa: SIM115 - closed below
    proc = subprocess.Popen([str(wheel.bin / "becomingone"), "vboard"], cwd=cwd,
                            env=wheel.env(cache), stdin=subprocess.DEVNULL,
                            stdout=subprocess.PIPE, stderr=log)
    try:
        line, end = b"", time.monotonic() + 300  # an npm fetch without its cache is slow
        while not line.endswith(b"\n") and time.monotonic() < end and proc.poll() is None:
            if select.select([proc.stdout], [], [], 0.5)[0]:
                line += os.read(proc.stdout.fileno(), 200)
        log.seek(0)
        err = log.read().decode(errors="replace")
        assert line.endswith(b"\n"), f"no port from becomingone vboard: {err[-1000:]}"
        yield line.decode().strip(), err
    finally:
        proc.terminate()  # vboard stops the board on SIGTERM
        try:
            proc.wait(15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait(5)
        proc.stdout.close()
        log.close()


def test_vboard_fetches_the_npm_port_and_says_so(vboard, outside):
    port, err = vboard
    assert os.path.exists(port)
    assert "fetching MicroPython's WebAssembly port" in err and "npm install" in err, err
    _cwd, cache = outside
    assert list((cache / "becomingone" / "npm" / "node_modules").glob(
        "@micropython/*/micropython.mjs")), "the port is not in the cache it named"


def test_vboard_without_npm_says_how_to_get_the_port(wheel, tmp_path):
    # Node.js but no npm on PATH, and the port nowhere: one line naming the
    # npm command (and where npm comes from), exit 1, no traceback.
    (tmp_path / "bin").mkdir()
    (tmp_path / "bin" / "node").symlink_to(shutil.which("node"))
    env = wheel.env(tmp_path / "cache")
    env["PATH"] = f"{wheel.bin}{os.pathsep}{tmp_path / 'bin'}"
    r = subprocess.run([str(wheel.bin / "becomingone"), "vboard"], cwd=tmp_path, env=env,
                       capture_output=True, text=True, timeout=60)
    assert r.returncode == 1, r
    want = (f"npm install --prefix {tmp_path / 'cache' / 'becomingone' / 'npm'} "
            "@micropython/micropython-webassembly-pyscript@")
    assert want in r.stderr and "npm is not installed" in r.stderr, r.stderr
    assert "Traceback" not in r.stderr and len(r.stderr.strip().splitlines()) == 1, r.stderr


@pytest.fixture(scope="module")
def flashed(wheel, outside, vboard):
    port, _err = vboard
    r = run(wheel, outside, "flash", "--board", "sim", "--node-id", "w-1", "--port", port,
            timeout=300)
    return port, r


def test_flash_from_the_wheel_onto_the_vboard(flashed):
    _port, r = flashed
    assert r.returncode == 0, f"{r.stdout[-2000:]}\n{r.stderr[-2000:]}"
    assert "/lib/node/app.mpy" in r.stdout and "/main.py" in r.stdout  # the shipped firmware
    assert re.search(r"verified \d+ files by SHA-256", r.stdout), r.stdout
    assert re.search(r"w-1 is reporting: c=\d\.\d\d", r.stdout), r.stdout  # hello + 1st report


def test_console_from_the_wheel_decodes_the_node(wheel, outside, flashed):
    port, r = flashed
    assert r.returncode == 0, r.stderr
    cwd, cache = outside
    proc = subprocess.Popen([str(wheel.bin / "becomingone"), "console", port], cwd=cwd,
                            env=wheel.env(cache), stdin=subprocess.PIPE,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE)
    out = bytearray()
    reader = threading.Thread(target=lambda: [out.extend(c) for c in
                                              iter(lambda: proc.stdout.read1(4096), b"")],
                              daemon=True)
    reader.start()
    try:
        def seen(pattern):
            return re.search(pattern, out.decode(errors="replace"))

        assert wait_for(lambda: seen(r"w-1 wave16 c=\d\.\d\d τ=\d+ms"), 60), bytes(out)
        proc.stdin.write(b"ping\n")
        proc.stdin.flush()
        assert wait_for(lambda: seen(r"w-1 pong #\d+: round trip"), 30), bytes(out)
        proc.stdin.write(b"\x1d")  # Ctrl-]: leave
        proc.stdin.flush()
        assert proc.wait(30) == 0, proc.stderr.read()
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait(5)
        reader.join(5)
        proc.stdin.close()
        proc.stdout.close()
        proc.stderr.close()


def test_demo_from_the_wheel(wheel, outside):
    r = run(wheel, outside, "demo", "--seconds", "3", "--no-web", timeout=120)
    assert r.returncode == 0, r.stderr[-2000:]
    assert "hello: sim-0000" in r.stdout + r.stderr
