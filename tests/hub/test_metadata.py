"""The project's metadata: an MIT licence, and one version for the wheel, the
hub and the firmware's hello (kairos.__version__, the one package both sides
import)."""
import re
import tomllib

from support.mp import ROOT

import becomingone
import kairos
from node import app

PROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())


def test_the_version_is_written_once_and_everyone_reads_it():
    assert "version" not in PROJECT["project"]
    assert PROJECT["project"]["dynamic"] == ["version"]
    attr = PROJECT["tool"]["setuptools"]["dynamic"]["version"]["attr"]
    assert attr == "kairos.__version__"
    assert becomingone.__version__ == kairos.__version__ == app.FW_VERSION
    # the hello's fw field holds at most 16 characters (kairos.wire)
    assert re.fullmatch(r"[0-9]+\.[0-9]+\.[0-9]+[A-Za-z0-9.+-]*", kairos.__version__)
    assert len(kairos.__version__) <= 16
    # No other module writes a version string of its own.
    literal = re.compile(r"^(__version__|FW_VERSION|VERSION_STR)\s*=\s*['\"]", re.M)
    written = [p.relative_to(ROOT).as_posix()
               for top in ("hub", "shared", "firmware") for p in (ROOT / top).rglob("*.py")
               if literal.search(p.read_text())]
    assert written == ["shared/kairos/__init__.py"]


def test_mit_licence_and_metadata():
    text = (ROOT / "LICENSE").read_text()
    assert text.startswith("MIT License\n") and "Copyright (c) 2026 The BecomingONE authors" in text
    proj = PROJECT["project"]
    assert proj["license"] == "MIT" and proj["license-files"] == ["LICENSE"]
    assert proj["readme"] == "README.md"
    assert set(proj["urls"]) == {"Homepage", "Documentation", "Source", "Issues"}
    for c in ("Programming Language :: Python :: 3.11",
              "Programming Language :: Python :: Implementation :: MicroPython",
              "Operating System :: POSIX :: Linux", "Topic :: Home Automation",
              "Topic :: Scientific/Engineering"):
        assert c in proj["classifiers"], c
    # setuptools reads an SPDX licence string with license-files from 77 on
    assert PROJECT["build-system"]["requires"] == ["setuptools>=77"]
