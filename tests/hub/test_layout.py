"""The package layout holds: dependencies point one way, and every module
imports on its own.

``lint-imports`` checks the import-linter contracts in pyproject.toml (layers,
no circles inside a package, the kernel apart, a pure slow tier, tools without
the hub, who builds the Hub).  Then each module of becomingone and kairos is imported in a fresh
interpreter of its own: an import circle that only works when something else
was imported first (``from a import x`` while ``a`` is half-initialised) fails
there, whatever order the test suite happened to import things in.
"""
import ast
import importlib.util
import pkgutil
import re
import subprocess
import sys
import tomllib
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from support.mp import ROOT

# Packages shipped as data, not imported on the hub: the node's own code (imported
# as `node` on a board, with its MicroPython-only modules) and the board JSON files.
# (vboard/mp, the virtual board's MicroPython stand-ins, is a folder without
# __init__.py, so the walk below does not enter it.)
DATA_PACKAGES = ("becomingone.firmware", "becomingone.boards.defs")


def modules(package: str, where: list[str] | None = None) -> list[str]:
    """Every module and package under ``package``, found on disk: nothing is
    imported (a subpackage's folder is its parent's folder plus its name)."""
    if where is None:  # find_spec of a top-level name imports nothing
        spec = importlib.util.find_spec(package)
        assert spec is not None and spec.submodule_search_locations, package
        where = list(spec.submodule_search_locations)
    out = [package]
    for info in pkgutil.iter_modules(where):
        name = f"{package}.{info.name}"
        if name.startswith(DATA_PACKAGES):
            continue
        if info.ispkg:
            out += modules(name, [str(Path(info.module_finder.path) / info.name)])
        else:
            out.append(name)
    return out


ALL = modules("becomingone") + modules("kairos")


def import_alone(name: str, tmp: Path) -> tuple[str, int, str]:
    """(name, exit code, stderr) of importing ``name`` in a new interpreter.

    A ``__main__`` module runs its program when imported, so it is run as
    ``python -m <package> --help`` instead (which imports it the same way).
    Started in an empty directory, so nothing in the current one shadows a module.
    """
    if name.endswith(".__main__"):
        cmd = [sys.executable, "-m", name.removesuffix(".__main__"), "--help"]
    else:
        cmd = [sys.executable, "-c", f"import importlib; importlib.import_module({name!r})"]
    p = subprocess.run(cmd, cwd=tmp, capture_output=True, text=True, timeout=120,
                       stdin=subprocess.DEVNULL)
    return name, p.returncode, p.stderr


def test_the_walk_finds_the_modules():
    # the import test below is only as good as this list
    for name in ("becomingone.cli", "becomingone.__main__", "becomingone.rules.router",
                 "becomingone.outputs.webhook", "becomingone.boards.checks",
                 "becomingone.web.routes.outputs", "kairos.wire", "kairos.channel"):
        assert name in ALL
    assert len(ALL) > 60
    assert not [m for m in ALL if m.startswith(DATA_PACKAGES)]


def test_import_contracts_hold():
    contracts = tomllib.loads((ROOT / "pyproject.toml").read_text())["tool"]["importlinter"]
    n = len(contracts["contracts"])
    assert n >= 5
    lint = Path(sys.executable).with_name("lint-imports")
    p = subprocess.run([str(lint), "--no-cache"], cwd=ROOT, capture_output=True, text=True,
                       timeout=300, stdin=subprocess.DEVNULL)
    out = p.stdout + p.stderr
    assert p.returncode == 0, out
    assert re.search(rf"^Contracts: {n} kept, 0 broken\.$", out, re.M), out


@pytest.mark.parametrize("package", ["becomingone", "kairos"])
def test_every_module_imports_in_a_fresh_interpreter(package, tmp_path):
    names = [m for m in ALL if m == package or m.startswith(package + ".")]
    # a few at a time: each start is mostly waiting on imports, on 2 shared cores
    with ThreadPoolExecutor(max_workers=4) as pool:
        results = list(pool.map(lambda m: import_alone(m, tmp_path), names))
    failed = {name: err.strip().splitlines()[-1:] for name, rc, err in results if rc != 0}
    assert not failed, failed


def test_no_module_imports_another_modules_private_names():
    # what one module of becomingone shares with another gets a public name (the
    # board checkers did not: 34 `from ... import _x`).  kairos is left out: the
    # kernel's modules share private constants on purpose (one module's const()
    # names, read on MicroPython's hot paths).
    found = []
    for path in sorted((ROOT / "hub").rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, ast.ImportFrom):
                private = [a.name for a in node.names
                           if a.name.startswith("_") and not a.name.startswith("__")]
                if private:
                    found.append(f"{path.relative_to(ROOT)}:{node.lineno}: {private}")
    assert not found, found
