"""The `becomingone` command: the kernel demo and one-line user errors."""
import subprocess
import sys

import pytest
from support.cli import becomingone


def test_kernel_demo_prints_coherence_and_collapse_events():
    r = becomingone("demo", "--kernel", "--fast", "--seconds", "40")
    assert r.returncode == 0, r.stderr
    lines = r.stdout.splitlines()
    assert any("burst16" in line and "c=" in line for line in lines)
    events = [line for line in lines if "COLLAPSE" in line and "tick" in line]
    assert any("entered" in line for line in events) and any("left" in line for line in events)


@pytest.mark.parametrize(
    "args",
    [
        ("demo", "--nodes", "0"),
        ("hub", "--config", "/nonexistent/hub.toml"),
        ("verify-log", "--db", "/nonexistent/hub.db"),
        ("frobnicate",),
        ("demo", "--kernel", "--rate", "-5"),
        ("demo", "--kernel", "--seconds", "x"),
    ],
)
def test_user_errors_are_one_line_and_exit_1(args):
    r = becomingone(*args)
    assert r.returncode == 1
    assert r.stderr.startswith("becomingone: ") and "Traceback" not in r.stderr
    assert len(r.stderr.strip().splitlines()) == 1


def test_errors_from_every_layer_are_caught_once_in_main(tmp_path):
    """Each command lets its layer's BecomingOneError through; main() prints
    it as one line (no command translates its own list of errors)."""
    (tmp_path / "bad.json").write_text("{\n")
    (tmp_path / "hub.toml").write_text("[[rules]]\nname = 'r'\nwhen = 'G >'\naction = 'mqtt'\n")
    cases = [
        (("console", str(tmp_path / "no-such-tty")), "cannot open"),  # ConsoleError
        (("vboard", "--mp-version", "x"), "--mp-version wants X.Y.Z"),  # VBoardError
        (("boards", "check", str(tmp_path / "bad.json")), "invalid JSON at line 2"),  # BoardError
        (("hub", "--config", str(tmp_path / "hub.toml")), "hub.toml:3: rules[0] when:"),  # config
    ]
    for args, said in cases:
        r = becomingone(*args)
        assert r.returncode == 1, (args, r.stderr)
        assert r.stderr.startswith("becomingone: ") and said in r.stderr, (args, r.stderr)
        assert len(r.stderr.strip().splitlines()) == 1 and "Traceback" not in r.stderr


# Exception classes that never reach a person: caught and counted where raised.
INTERNAL = {"becomingone.store.checks.Bad", "becomingone.rules.condition._UnknownNode"}


def test_every_exception_class_is_under_the_one_root():
    import importlib
    import inspect
    import pkgutil

    import becomingone
    from becomingone.errors import BecomingOneError

    found = []
    for mod in pkgutil.walk_packages(becomingone.__path__, "becomingone."):
        if mod.name.startswith(("becomingone.firmware", "becomingone.boards.defs",
                                "becomingone.vboard.mp")) or mod.name.endswith(".__main__"):
            continue  # the boards' code and data (MicroPython), and entry points that run
        module = importlib.import_module(mod.name)
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ == mod.name and issubclass(cls, BaseException):
                found.append(f"{mod.name}.{name}")
                if f"{mod.name}.{name}" not in INTERNAL:
                    assert issubclass(cls, BecomingOneError), f"{mod.name}.{name}"
    assert len(found) >= 15 and set(found) >= INTERNAL, found


def test_version():
    r = becomingone("version")
    assert r.returncode == 0 and r.stdout.startswith("becomingone ")


def test_demo_without_a_config_runs_the_demo_rules(tmp_path):
    # `becomingone demo` (the README's run command) takes hub/demo.toml: the
    # running hub's API lists its output rules.
    import json
    import re
    import time
    import urllib.request

    log = tmp_path / "demo.log"
    with open(log, "wb") as out:
        p = subprocess.Popen([sys.executable, "-m", "becomingone", "demo", "--nodes", "3",
                              "--port", "0", "--status", "0"], stdout=out, stderr=out)
    try:
        url, end = None, time.monotonic() + 30
        while url is None and time.monotonic() < end and p.poll() is None:
            m = re.search(r"page at (http://\S+)", log.read_text(errors="replace"))
            url = m and m.group(1)
            time.sleep(0.2)
        assert url, log.read_text(errors="replace")
        with urllib.request.urlopen(url + "api/rules", timeout=10) as r:
            body = json.load(r)
        rules = body["rules"] if isinstance(body, dict) else body
        assert {(x["name"], x["action"]) for x in rules} == {
            ("the one: colour", "display"), ("the one: tell the page", "websocket"),
            ("surprise", "websocket")}
    finally:
        p.terminate()
        p.wait(15)
    assert p.returncode == 0
