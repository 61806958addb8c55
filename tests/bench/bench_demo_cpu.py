"""Demo CPU figure.  Run (name the file: pyproject has no python_files for bench_*):

    .venv/bin/python -m pytest tests/bench/bench_demo_cpu.py -m bench -s

`becomingone demo --nodes 1000 --no-web` in its own process for SECONDS:
the hub plus 1,000 simulated nodes without the web server, each reporting
at 10 Hz (SimMesh: 50 Hz samples, a report every 5), SQLite in memory (the
demo's default).
Measures the process's CPU seconds per wall second, from /proc/<pid>/stat
between the first and the last status line (steady state) and from
getrusage(RUSAGE_CHILDREN) over the whole run, and the frames the hub
processed per second from the status lines' frames= counter.  Expected
input: 1,000 x 10 = 10,000 reports/s plus collapse events and pongs.
docs/hub-figures.md quotes the numbers.  Never asserts on time.
"""
import os
import re
import resource
import shutil
import subprocess
import sys
import threading
import time

import pytest

pytestmark = pytest.mark.bench

NODES = int(os.environ.get("BENCH_NODES", 1000))
SECONDS = float(os.environ.get("BENCH_SECONDS", 30))
STATUS = 2.0  # s between status lines
TCK = os.sysconf("SC_CLK_TCK")


def command():
    exe = shutil.which("becomingone", path=os.path.dirname(sys.executable))
    base = [exe] if exe else [sys.executable, "-m", "becomingone"]
    # --no-web: the hub and the mesh alone (the page's cost is tests/bench/bench_web.py's).
    return base + ["demo", "--nodes", str(NODES), "--seconds", str(SECONDS),
                   "--status", str(STATUS), "--no-web"]


def cpu_seconds(pid):
    """utime + stime of a live process (all its threads), in seconds."""
    with open(f"/proc/{pid}/stat") as f:
        fields = f.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / TCK  # fields 14, 15 of proc(5)


def test_demo_1000_nodes_cpu():
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    cmd = command()
    t0 = time.monotonic()
    p = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    samples = []  # (wall, cpu, frames, line) at each status line
    lines = []

    def read():
        for line in p.stderr:
            lines.append(line.rstrip())
            m = re.search(r"frames=(\d+)", line)
            if m:
                try:
                    cpu = cpu_seconds(p.pid)
                except OSError:
                    continue
                samples.append((time.monotonic(), cpu, int(m.group(1)), line.strip()))

    reader = threading.Thread(target=read, daemon=True)
    reader.start()
    rc = p.wait(SECONDS + 120)
    wall = time.monotonic() - t0
    reader.join(10)
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu_all = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    print(f"\n$ {' '.join(cmd)}")
    print(f"machine: {os.cpu_count()} CPUs")
    for _, _, _, line in samples:
        print("  " + line)
    assert rc == 0, "\n".join(lines[-20:])
    assert len(samples) >= 3, "\n".join(lines[-20:])
    (w0, c0, f0, _), (w1, c1, f1, _) = samples[0], samples[-1]
    print(f"whole run: {cpu_all:.1f} CPU s in {wall:.1f} s wall = {cpu_all / wall:.2f} CPUs "
          f"(user {after.ru_utime - before.ru_utime:.1f} s, "
          f"sys {after.ru_stime - before.ru_stime:.1f} s; includes start-up)")
    print(f"steady state ({w1 - w0:.0f} s between the first and last status line): "
          f"{(c1 - c0) / (w1 - w0):.2f} CPUs, {(f1 - f0) / (w1 - w0):,.0f} frames/s processed "
          f"(input: {NODES} nodes x 10 Hz = {NODES * 10:,} reports/s + events + pongs)")
