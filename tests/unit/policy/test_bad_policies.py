"""Malformed policies: each one is refused with exit 3 and a located one-line message.

The corpus is tests/data/bad/policies/*.yaml; expected.json names, per file,
the line, the JSON path (when the problem is inside the document) and a
phrase of the message. The whole corpus goes through the real command line
(``memcg-fix policy validate`` in a subprocess) and through ``plan --policy``.
"""

from __future__ import annotations

import json
import re
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remediate import cli
from remediate import policy as policy_api
from remediate.errors import PolicyError
from remediate.policy.source import MAX_BYTES

REPO = Path(__file__).resolve().parents[3]
BAD = REPO / "tests" / "data" / "bad" / "policies"
EXPECTED = json.loads((BAD / "expected.json").read_text(encoding="utf-8"))
FILES = sorted(p.name for p in BAD.glob("*.yaml"))
GOOD_FACTS = REPO / "tests" / "data" / "facts" / "adversarial.json"

# FILE:LINE[:COL]: [$.json.path: ]message
LOCATED = re.compile(r"^(?P<file>[^:]+):(?P<line>\d+)(?::\d+)?: (?:(?P<path>\$\S*): )?(?P<msg>.+)$")


def test_corpus_is_large_and_fully_described():
    assert len(FILES) >= 15
    assert sorted(EXPECTED) == FILES
    # the kinds the issue names are all there
    for name in (
        "yaml-syntax-error.yaml",
        "wrong-type-version-number.yaml",
        "unknown-mitigation-id.yaml",
        "bad-version-range.yaml",
        "duplicate-rule-id.yaml",
        "empty.yaml",
        "non-utf8.yaml",
    ):
        assert name in FILES


@pytest.mark.parametrize("name", FILES)
def test_check_locates_the_problem(name):
    policy, problems = policy_api.check(BAD / name, display=name)
    assert policy is None and problems
    match = LOCATED.match(problems[0])
    assert match, problems[0]
    expected = EXPECTED[name]
    assert match["file"] == name
    assert int(match["line"]) == expected["line"], problems[0]
    assert match["path"] == expected["path"], problems[0]
    assert expected["says"] in match["msg"], problems[0]
    assert all("\n" not in p for p in problems)


@pytest.mark.parametrize("name", FILES)
def test_plan_with_a_bad_policy_exits_3_without_traceback(name, capsys):
    code = cli.main(["plan", "--policy", str(BAD / name), "--facts", str(GOOD_FACTS)])
    out, err = capsys.readouterr()
    assert code == 3
    assert out == ""
    lines = err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("memcg-fix: ")
    assert EXPECTED[name]["says"] in lines[0]
    assert "Traceback" not in err


def test_validate_the_whole_corpus_in_one_real_process():
    run = subprocess.run(
        [sys.executable, "-m", "remediate", "policy", "validate", *FILES],
        cwd=BAD,
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert run.returncode == 3
    assert run.stdout == ""
    assert "Traceback" not in run.stderr
    lines = run.stderr.splitlines()
    assert all(line.startswith("memcg-fix: ") for line in lines)
    for name in FILES:
        mine = [line for line in lines if line.startswith(f"memcg-fix: {name}:")]
        assert mine, f"no message for {name}"
        assert any(EXPECTED[name]["says"] in line for line in mine)


def test_validate_reports_valid_and_invalid_files_together():
    run = subprocess.run(
        [
            sys.executable,
            "-m",
            "remediate",
            "policy",
            "validate",
            str(REPO / "policies" / "default.yaml"),
            str(BAD / "empty.yaml"),
        ],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert run.returncode == 3
    assert "default.yaml: ok (policy default" in run.stdout
    assert "empty.yaml:1: empty policy" in run.stderr


def test_every_problem_is_reported_not_only_the_first(tmp_path):
    policy = tmp_path / "many.yaml"
    policy.write_text(
        'id: many\nversion: "1.0.0"\ndescription: d\nsurprise: 1\nrules:\n'
        "  - id: r1\n    description: d\n    when: {family: [rhel], uptime: 3}\n"
        "    findings:\n      - {id: f, severity: fatal, summary: s}\n",
        encoding="utf-8",
    )
    _, problems = policy_api.check(policy)
    text = "\n".join(problems)
    assert len(problems) == 3, text
    assert ":4: $.surprise: unknown key" in text
    assert ":8: $.rules[0].when.uptime: unknown key" in text
    assert ":10: $.rules[0].findings[0].severity: 'fatal'" in text
    with pytest.raises(PolicyError, match=r"and 2 more problem"):
        policy_api.load(policy)


def test_huge_policy_is_refused_before_parsing(tmp_path, capsys):
    huge = tmp_path / "huge.yaml"
    with open(huge, "w", encoding="utf-8") as handle:
        handle.write('id: huge\nversion: "1.0.0"\ndescription: d\nrules:\n')
        handle.write("# padding\n" * (MAX_BYTES // 10 + 1))
    assert huge.stat().st_size > MAX_BYTES
    code = cli.main(["policy", "validate", str(huge)])
    err = capsys.readouterr().err
    assert code == 3
    assert "larger than 1024 KiB" in err


def test_missing_and_directory_policies_are_input_errors(tmp_path, capsys):
    assert cli.main(["policy", "validate", str(tmp_path / "nope.yaml")]) == 3
    assert "no such policy file (the shipped default policy is" in capsys.readouterr().err
    assert cli.main(["policy", "validate", str(tmp_path)]) == 3
    assert "is a directory" in capsys.readouterr().err


def test_python_tags_are_never_constructed():
    marker = Path("/tmp/memcg-fix-pwned")  # what python-tag.yaml would create
    existed = marker.exists()
    policy, _ = policy_api.check(BAD / "python-tag.yaml")
    assert policy is None
    assert marker.exists() == existed


def test_alias_bomb_is_refused_quickly():
    # 9**7 "lol"s if it were expanded; refused while composing, before any expansion
    started = time.monotonic()
    policy, problems = policy_api.check(BAD / "alias-bomb.yaml")
    assert policy is None and "aliases" in problems[0]
    assert time.monotonic() - started < 2
