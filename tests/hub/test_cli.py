"""The `becomingone` command: the kernel demo and one-line user errors."""
import subprocess
import sys

import pytest


def becomingone(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-m", "becomingone", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )


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
