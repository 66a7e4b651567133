"""docs/security.md, the threat model, stays tied to the code and tests it names."""

from __future__ import annotations

import re
from pathlib import Path

from remediate.resources import modules_dir, role_dir

REPO = Path(__file__).resolve().parents[2]
DOC = REPO / "docs" / "security.md"


def _text() -> str:
    return DOC.read_text(encoding="utf-8")


def test_it_says_who_runs_memcg_fix_what_each_input_can_do_and_what_stops_abuse():
    headings = re.findall(r"^## (.+)$", _text(), flags=re.M)
    for wanted in ("Who runs it", "Inputs, what they can do", "What stops abuse",
                   "out of scope", "Tests"):
        assert any(wanted in h for h in headings), (wanted, headings)


def test_every_input_memcg_fix_reads_has_a_row():
    rows = [line for line in _text().splitlines() if line.startswith("| ")]
    inputs = " ".join(row.split("|")[1] for row in rows)
    for name in ("host facts", "facts files", "inventory", "policy", "rendered playbook",
                 "extra vars", "--force"):
        assert name in inputs, name


def test_the_hostile_input_classes_each_have_a_row_and_a_test():
    text = _text()
    classes = text.split("### Hostile input", 1)[1].split("\n## ", 1)[0]
    tests = text.split("## Tests", 1)[1]
    for name in ("time", "memory", "terminal", "playbook parse"):
        assert f"| **{name}**" in classes, name
        assert any(row.startswith(f"| {name}") for row in tests.splitlines()), name


def test_every_test_file_it_cites_exists_and_every_promise_has_one():
    text = _text()
    cited = set(re.findall(r"tests/[\w/]+\.py", text))
    assert cited, "the Tests table cites no test file"
    missing = sorted(c for c in cited if not (REPO / c).is_file())
    assert missing == []
    table = text.split("## Tests", 1)[1]
    for row in (line for line in table.splitlines() if line.startswith("| ") and "---" not in line):
        promise, tests = row.split("|")[1:3]
        if promise.strip() == "promise":
            continue
        assert re.search(r"tests/[\w/]+\.py", tests), promise


def test_the_mechanisms_it_names_exist_in_the_code():
    # each "what stops abuse" claim points at something real
    role = role_dir()
    lock = modules_dir() / "memcg_lock.py"
    assert "!unsafe" in (REPO / "remediate" / "render.py").read_text()
    assert lock.is_file()
    assert "/var/lib/memcg-fix/lock" in lock.read_text()
    code = "".join(p.read_text() for p in (REPO / "remediate").rglob("*.py"))
    assert '"--verify"' in code  # gpg checks a detached signature
    units = list((role / "files").glob("memcg-fix-reaper*.service")) + list(
        (role / "templates").glob("*.service*"))
    assert units, "the reaper's hardened unit"
