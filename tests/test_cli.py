"""The `becomingone` command: the kernel demo and one-line user errors."""
import subprocess
import sys

import pytest


def becomingone(*args, timeout=60):
    return subprocess.run(
        [sys.executable, "-c", "import sys; from hub.cli import main; sys.exit(main())", *args],
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
