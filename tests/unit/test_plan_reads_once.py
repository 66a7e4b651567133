"""`memcg-fix plan --facts` reads each facts file once, whatever it renders.

Planning a fleet must not go back to its facts: not per host, not per rule,
not to explain or render. Two independent proofs:

* in process, Python's audit hooks (PEP 578) report every ``open`` the
  command makes; each facts file must be opened exactly once;
* as a command, the facts arrive through a pipe (``--facts /dev/stdin``),
  which can be read only once: a second read would find it empty and fail.

The fleet is built from the policy cases' base hosts (policies/cases/_bases.yaml),
with a few of them changed so that rules fire and mitigations are planned.
"""

from __future__ import annotations

import copy
import json
import os
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate import cli

REPO = Path(__file__).resolve().parents[2]
BASES = yaml.safe_load((REPO / "policies" / "cases" / "_bases.yaml").read_text())

# Paths whose opens are being counted; the hook stays installed (audit hooks
# cannot be removed) but only counts while a test has put paths here.
_WATCHED: dict[str, int] = {}


def _count_opens(event: str, args: tuple[Any, ...]) -> None:
    if event != "open" or not _WATCHED or not args:
        return
    path = args[0]
    if isinstance(path, int):
        return  # an already-open descriptor, not a file name
    try:
        key = os.path.realpath(os.fsdecode(path))
    except (TypeError, ValueError):
        return
    if key in _WATCHED:
        _WATCHED[key] += 1


sys.addaudithook(_count_opens)


@pytest.fixture
def watch() -> Iterator[dict[str, int]]:
    try:
        yield _WATCHED
    finally:
        _WATCHED.clear()


def fleet(count: int, prefix: str) -> dict[str, Any]:
    """A facts document of ``count`` hosts; every third writes wtmp, every fifth runs old runc."""
    kinds = sorted(k for k in BASES if not k.startswith("_"))
    hosts = []
    for index in range(count):
        entry = copy.deepcopy(BASES[kinds[index % len(kinds)]])
        entry["host"] = f"{prefix}-{index:03d}"
        facts = entry["facts"]
        if index % 3 == 0 and isinstance(facts.get("pam"), dict):
            facts["pam"].update(lastlog_active=True, lastlog_writes_wtmp=True,
                                lastlog_writes_in_session=True)
        if index % 5 == 0 and isinstance(facts.get("runc"), dict):
            facts["runc"]["version"] = "1.0.0-rc10"
        hosts.append(entry)
    return {"schema_version": 1, "memcg_fix_version": "test", "hosts": hosts}


def write(path: Path, doc: dict[str, Any]) -> str:
    path.write_text(json.dumps(doc), encoding="utf-8")
    return os.path.realpath(path)


@pytest.mark.parametrize("extra", [["--format", "json"], ["--format", "table"],
                                   ["--format", "markdown", "--explain"]])
def test_each_facts_file_is_opened_exactly_once(tmp_path, watch, capsys, extra) -> None:
    first = write(tmp_path / "a.json", fleet(40, "a"))
    second = write(tmp_path / "b.json", fleet(25, "b"))
    watch.update({first: 0, second: 0})
    code = cli.main(["plan", "--facts", first, second, *extra])
    out = capsys.readouterr().out
    assert code == 2, "mitigations were planned for the fleet"
    assert watch == {first: 1, second: 1}
    assert "a-039" in out and "b-024" in out  # every host of both files is in the plan


def test_a_facts_file_that_cannot_be_read_twice_is_enough(tmp_path) -> None:
    doc = fleet(30, "pipe")
    run = subprocess.run([sys.executable, "-m", "remediate", "plan", "--facts", "/dev/stdin",
                          "--format", "json"], input=json.dumps(doc), capture_output=True,
                         text=True, timeout=120, check=False)
    assert run.returncode == 2, run.stderr
    plan = json.loads(run.stdout)
    assert [h["host"] for h in plan["hosts"]] == sorted(h["host"] for h in doc["hosts"])
    planned = {h["host"] for h in plan["hosts"] if h["mitigations"]}
    assert "pipe-000" in planned  # wtmp and an old runc: something to do
