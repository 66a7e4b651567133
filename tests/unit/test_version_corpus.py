"""One version corpus, both sides: the controller and the memcg_package_status module.

The controller plans with ``remediate.versions.compare``; the module, on the
host, decides whether a minimum is met with its ``judge``/``at_least``. Both
must give the same answer for every pair of tests/data/versions/corpus.txt,
and so must independent oracles: the real ``rpm`` and ``dpkg`` binaries
where installed, and rpm-version, python-debian and packaging (PEP 440).
Before memcg-fix had one comparator, the module ordered ``1.0.0_rc94`` at
``1.0.0`` while the controller ordered it below (the pair is in the corpus).
"""

from __future__ import annotations

import importlib.util
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType

import pytest

from remediate.hostside.packages import upstream_of_package_version
from remediate.versions import compare

REPO = Path(__file__).resolve().parents[2]
CORPUS = REPO / "tests" / "data" / "versions" / "corpus.txt"
COLLECTIONS = REPO / "playbooks" / "collections"
MODULE = (
    COLLECTIONS
    / "ansible_collections/memcg_fix/remediate/plugins/modules/memcg_package_status.py"
)


def _sections() -> dict[str, list[list[str]]]:
    sections: dict[str, list[list[str]]] = {}
    current = None
    for raw in CORPUS.read_text(encoding="utf-8").splitlines():
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        if line.startswith("["):
            current = line.strip("[]")
            sections[current] = []
            continue
        assert current is not None
        sections[current].append(line.split())
    return sections


SECTIONS = _sections()
PAIRS = [
    (scheme, a, b, int(expected))
    for scheme in ("rpm", "dpkg", "upstream")
    for a, b, expected in SECTIONS[scheme]
]
PACKAGE_UPSTREAM = [(s, p, m, int(e)) for s, p, m, e in SECTIONS["package-upstream"]]


@pytest.fixture(scope="module")
def module() -> ModuleType:
    """memcg_package_status as Ansible ships it to a host, imported from its file."""
    if str(COLLECTIONS) not in sys.path:
        sys.path.insert(0, str(COLLECTIONS))
    spec = importlib.util.spec_from_file_location("memcg_package_status", MODULE)
    assert spec and spec.loader
    loaded = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(loaded)
    return loaded


def test_the_corpus_covers_every_scheme_and_runc_spelling():
    assert {len(SECTIONS[s]) >= 10 for s in ("rpm", "dpkg", "upstream")} == {True}
    spellings = {a for _s, a, _b, _e in PAIRS} | {b for _s, _a, b, _e in PAIRS}
    for runc in ("1.0.0-rc94", "1.0.0_rc94", "1.0.0~rc94", "1.0.0-0.rc94.el7", "1.1.12"):
        assert runc in spellings


@pytest.mark.parametrize(("scheme", "a", "b", "expected"), PAIRS,
                         ids=[f"{s}:{a}~{b}" for s, a, b, _ in PAIRS])
def test_controller_and_module_agree(module, scheme, a, b, expected):
    assert compare(a, b, scheme) == expected
    assert compare(b, a, scheme) == -expected
    # the module's decision: is the installed version (a) at least the minimum (b)?
    assert module.at_least(a, b, scheme) is (expected >= 0)
    assert module.at_least(b, a, scheme) is (expected <= 0)
    if scheme != "upstream":
        ordered, satisfied = module.judge([b, a], b, scheme)
        assert satisfied is True
        assert ordered[0] == (a if expected > 0 else b)


@pytest.mark.parametrize(("scheme", "package", "minimum", "expected"), PACKAGE_UPSTREAM,
                         ids=[f"{s}:{p}>={m}" for s, p, m, _ in PACKAGE_UPSTREAM])
def test_package_against_an_upstream_minimum(module, scheme, package, minimum, expected):
    # the controller reads runc's version offline from its package (collect.py)
    controller = compare(upstream_of_package_version(package), minimum, "upstream") >= 0
    _ordered, host = module.judge([package], minimum, scheme, upstream=True)
    assert controller is host is (expected > 0)


def test_the_reported_disagreement_is_gone(module):
    # runc 1.0.0_rc94 against a minimum of 1.0.0: both sides say "too old"
    assert compare("1.0.0_rc94", "1.0.0", "upstream") == -1
    assert module.at_least("1.0.0_rc94", "1.0.0", "upstream") is False


# --- oracles ------------------------------------------------------------------


def _rpm_binary(pairs: list[tuple[str, str]]) -> list[int]:
    calls = " ".join(f'print(rpm.vercmp("{a}", "{b}") .. ";")' for a, b in pairs)
    out = subprocess.run(
        ["rpm", "--eval", "%{lua: " + calls + "}"], capture_output=True, text=True, check=True
    ).stdout
    return [int(x) for x in out.replace("\n", "").split(";") if x.strip()]


def _dpkg_binary(a: str, b: str) -> int:
    def holds(op: str) -> bool:
        run = subprocess.run(["dpkg", "--compare-versions", "--", a, op, b], capture_output=True)
        assert run.returncode in (0, 1), run.stderr
        return run.returncode == 0

    return -1 if holds("lt") else 0 if holds("eq") else 1


RPM = [(a, b, e) for s, a, b, e in PAIRS if s == "rpm"]
DPKG = [(a, b, e) for s, a, b, e in PAIRS if s == "dpkg"]
UPSTREAM = [(a, b, e) for s, a, b, e in PAIRS if s == "upstream"]


@pytest.mark.skipif(shutil.which("rpm") is None, reason="rpm is not installed")
def test_rpm_binary_agrees():
    assert _rpm_binary([(a, b) for a, b, _ in RPM]) == [e for _, _, e in RPM]


@pytest.mark.skipif(shutil.which("dpkg") is None, reason="dpkg is not installed")
def test_dpkg_binary_agrees():
    assert [_dpkg_binary(a, b) for a, b, _ in DPKG] == [e for _, _, e in DPKG]


def test_libraries_agree():
    rpm_version = pytest.importorskip("rpm_version")
    debian_support = pytest.importorskip("debian.debian_support")
    pep440 = pytest.importorskip("packaging.version")

    def sign(value: int) -> int:
        return (value > 0) - (value < 0)

    for a, b, expected in RPM:
        if "-" in a and "-" in b:  # rpm-version reads a missing release as an empty one
            assert sign(rpm_version.evr_compare(a, b)) == expected, (a, b)
    for a, b, expected in DPKG:
        va, vb = debian_support.Version(a), debian_support.Version(b)
        assert (va > vb) - (va < vb) == expected, (a, b)
    checked = 0
    for a, b, expected in UPSTREAM:
        try:
            # the public part: memcg-fix ignores a local tail such as "+ds1"
            va, vb = (pep440.Version(pep440.Version(v).public) for v in (a, b))
        except pep440.InvalidVersion:
            continue  # "1.0.0~rc94", "6.1.0-18-amd64": not PEP 440 text
        checked += 1
        assert (va > vb) - (va < vb) == expected, (a, b)
    assert checked >= 10
