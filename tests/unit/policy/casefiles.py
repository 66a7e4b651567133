"""Read the policy cases in policies/cases/ (shared by the tests in this folder).

A case is one host built from a base in ``_bases.yaml`` plus ``set:``
overrides (dotted fact paths), optional ``unknown:`` facts (set to null, with
the collector's reason) and an optional ``error:``; ``expect:`` says what
the policy must decide. Unknown keys are refused so a typo cannot make an
expectation silently vacuous.
"""

from __future__ import annotations

import copy
from functools import cache
from pathlib import Path
from typing import Any

import yaml

from remediate.facts.model import HostFacts, Unknown

REPO = Path(__file__).resolve().parents[3]
POLICIES = REPO / "policies"
CASES = POLICIES / "cases"

CASE_KEYS = {"description", "base", "host", "set", "unknown", "error", "expect", "policy"}
EXPECT_KEYS = {
    "status",
    "fired",
    "not_fired",
    "not_evaluated",
    "findings",
    "mitigations",
    "params",
    "alternatives",
    "quotes",
    "unknown",
    "reason",
    "blocked",
}


def case_files() -> list[Path]:
    return sorted(p for p in CASES.glob("*.yaml") if not p.name.startswith("_"))


@cache
def bases() -> dict[str, Any]:
    with open(CASES / "_bases.yaml", encoding="utf-8") as handle:
        data: dict[str, Any] = yaml.safe_load(handle)
    return data


@cache
def load_case(path: Path) -> dict[str, Any]:
    with open(path, encoding="utf-8") as handle:
        case: dict[str, Any] = yaml.safe_load(handle)
    extra = set(case) - CASE_KEYS
    assert not extra, f"{path.name}: unknown case keys {sorted(extra)}"
    extra = set(case["expect"]) - EXPECT_KEYS
    assert not extra, f"{path.name}: unknown expect keys {sorted(extra)}"
    assert case["base"] in bases(), f"{path.name}: unknown base {case['base']!r}"
    assert case.get("description"), f"{path.name}: every case says what it shows"
    return case


def _set(facts: dict[str, Any], dotted: str, value: Any) -> None:
    *parents, leaf = dotted.split(".")
    node = facts
    for part in parents:
        node = node.setdefault(part, {})
        assert isinstance(node, dict), f"cannot set {dotted}: {part} is not a mapping"
    node[leaf] = copy.deepcopy(value)


def host_entry(case: dict[str, Any]) -> dict[str, Any]:
    """The case's host as one entry of a facts document (JSON-able)."""
    entry = copy.deepcopy(bases()[case["base"]])
    entry["host"] = case.get("host", entry["host"])
    for dotted, value in (case.get("set") or {}).items():
        _set(entry["facts"], dotted, value)
    unknown = [u for u in entry.get("unknown", [])]
    for item in case.get("unknown") or []:
        _set(entry["facts"], item["fact"], None)
        unknown = [u for u in unknown if u["fact"] != item["fact"]] + [item]
    entry["unknown"] = unknown
    if case.get("error"):
        # a host that could not be read has no facts, only the reason
        entry.update(facts={}, unknown=[], error=case["error"])
    return entry


def host_facts(case: dict[str, Any]) -> HostFacts:
    entry = host_entry(case)
    return HostFacts(
        host=entry["host"],
        facts=entry["facts"],
        unknown=tuple(Unknown(u["fact"], u["reason"]) for u in entry["unknown"]),
        error=entry.get("error"),
    )
