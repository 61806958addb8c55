"""The docs stand alone and match the tree.

* Every "docs/kairos.md §N" (or "kairos.md §N.M", "§3–§8") in the code and the
  docs names a section that docs/kairos.md has.
* Nothing cites a file outside the repository (the math contract used to be
  cited as a file beside the checkout) or an unnamed "spec".
* Every repository path the docs and the README write in backticks exists.
"""
import re

import pytest
from support.mp import ROOT

# Where references live: the sources of all three programs, the tests, the docs.
_DIRS = ("hub", "shared", "firmware", "boards", "tests", "tools", "docs")
_SUFFIXES = {".py", ".md", ".toml", ".js", ".mjs", ".html", ".css", ".json", ".sh"}
_SKIP_PARTS = {"node_modules", "__pycache__", ".venv"}

_REF = re.compile(r"kairos\.md`?\s*((?:§\s*[0-9]+(?:\.[0-9]+)?)(?:\s*(?:–|-|and|,)\s*§\s*[0-9]+"
                  r"(?:\.[0-9]+)?)*)")
_NUM = re.compile(r"§\s*([0-9]+(?:\.[0-9]+)?)")
_HEADING = re.compile(r"^#{2,3} ([0-9]+(?:\.[0-9]+)?)\.? ", re.M)
# A file beside the checkout, or a "spec" that names no document.
_OUTSIDE = re.compile(r"\.\./shared|shared/spec|KAIROS\.md|\bspec (?:§|section)|KAIROS spec")
_PATH = re.compile(r"`((?:hub|shared|firmware|tests|tools|boards|docs)/[A-Za-z0-9_./*-]*)")
# Made by tools/setup.sh, not kept in the repository.
_INSTALLED = ("tools/node_modules",)


def sections(text: str) -> set[str]:
    """The numbers of the "## N." and "### N.M" headings of a page."""
    return set(_HEADING.findall(text))


def bad_refs(text: str, known: set[str]) -> list[str]:
    """The section numbers ``text`` cites in docs/kairos.md that it lacks."""
    return [n for m in _REF.finditer(text) for n in _NUM.findall(m.group(1)) if n not in known]


def _files():
    me = __file__
    for top in _DIRS:
        for p in sorted((ROOT / top).rglob("*")):
            if (p.is_file() and p.suffix in _SUFFIXES and str(p) != me
                    and not _SKIP_PARTS & set(p.relative_to(ROOT).parts)):
                yield p
    yield ROOT / "README.md"
    yield ROOT / "pyproject.toml"


def test_the_checker_catches_a_missing_section_and_an_outside_file():
    known = {"1", "1.2", "3", "4", "8"}
    assert bad_refs("see docs/kairos.md §1.2 and §8, and `docs/kairos.md` §3–§4", known) == []
    assert bad_refs("(docs/kairos.md §9)", known) == ["9"]
    assert bad_refs("kairos.md §1.7", known) == ["1.7"]
    assert _OUTSIDE.search("the contract is ../shared/spec/KAIROS.md §1")
    assert _OUTSIDE.search("Mesh sync (spec section 5)")
    assert not _OUTSIDE.search("field specs; a spec per item")


def test_kairos_md_has_the_contract_sections():
    have = sections((ROOT / "docs" / "kairos.md").read_text())
    # §1-§8 the contract, §1.1-§1.3 the steps, bounds and properties the code cites
    assert {str(n) for n in range(1, 13)} | {"1.1", "1.2", "1.3"} <= have


def test_every_kairos_md_reference_names_a_section_it_has():
    have = sections((ROOT / "docs" / "kairos.md").read_text())
    bad = []
    for p in _files():
        text = p.read_text(errors="replace")
        bad += [f"{p.relative_to(ROOT)}: §{n}" for n in bad_refs(text, have)]
    assert bad == []


def test_nothing_cites_a_file_outside_the_repository():
    bad = []
    for p in _files():
        for i, line in enumerate(p.read_text(errors="replace").splitlines(), 1):
            if _OUTSIDE.search(line):
                bad.append(f"{p.relative_to(ROOT)}:{i}: {line.strip()}")
    assert bad == []


@pytest.mark.parametrize("doc", sorted([*(ROOT / "docs").glob("*.md"), ROOT / "README.md"]),
                         ids=lambda p: p.name)
def test_the_paths_a_doc_names_exist(doc):
    missing = []
    for i, line in enumerate(doc.read_text().splitlines(), 1):
        for m in _PATH.finditer(line):
            path = m.group(1).rstrip(".,:;)").split("::")[0]
            if path.startswith(_INSTALLED):
                continue
            found = list(ROOT.glob(path)) if "*" in path else (ROOT / path).exists()
            if not found:
                missing.append(f"{doc.name}:{i}: {path}")
    assert missing == []
