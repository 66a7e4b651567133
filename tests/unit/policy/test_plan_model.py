"""The Plan: JSON contract, canonical form and the fingerprint over decisions."""

from __future__ import annotations

import copy
import hashlib
import json

import pytest
from casefiles import case_files, host_facts, load_case
from jsonschema import Draft202012Validator

from remediate import policy as policy_api
from remediate.errors import InputError
from remediate.facts.model import HostFacts
from remediate.plan import STATUSES, Plan, canonical_json
from remediate.schemas import plan_schema


@pytest.fixture(scope="module")
def fleet() -> list[HostFacts]:
    return [host_facts(load_case(p)) for p in case_files()]


@pytest.fixture(scope="module")
def plan(fleet) -> Plan:
    return policy_api.evaluate(policy_api.load_default(), fleet)


def test_json_follows_the_contract(plan):
    for explain in (False, True):
        doc = plan.to_json(explain)
        Draft202012Validator(plan_schema()).validate(doc)
        assert doc["schema_version"] == 1
        assert doc["policy"]["id"] == "default" and doc["policy"]["version"] == "1.0.0"
        assert doc["fingerprint"] == plan.fingerprint()
        for entry in doc["hosts"]:
            assert ("rules" in entry) is explain
            for m in entry["mitigations"]:
                assert set(m) >= {
                    "id",
                    "needs_reboot",
                    "risk",
                    "disruption",
                    "rationale",
                    "alternatives",
                    "params",
                    "rule",
                }
    hosts = [h["host"] for h in plan.to_json()["hosts"]]
    assert hosts == sorted(hosts)


def test_summary_counts(plan):
    s = plan.summary
    assert s["hosts"] == len(plan.hosts) == sum(s[status] for status in STATUSES)
    assert s["reboots"] == sum(1 for h in plan.hosts if any(m.needs_reboot for m in h.mitigations))
    for status in STATUSES:
        assert s[status] == sum(1 for h in plan.hosts if h.status == status)
    assert s["undecided"] >= 1 and s["attention"] >= 1 and s["planned"] >= 10


def test_fingerprint_is_sha256_of_the_canonical_decisions(plan):
    decisions = plan.decisions()
    assert set(decisions) == {"policy", "hosts"}
    assert set(decisions["policy"]) == {"id", "version"}
    for entry in decisions["hosts"]:
        assert set(entry) == {"host", "mitigations"}
        for m in entry["mitigations"]:
            assert set(m) == {"id", "params"}
    raw = json.dumps(decisions, sort_keys=True, separators=(",", ":")).encode()
    assert canonical_json(decisions) == raw
    assert plan.fingerprint() == "sha256:" + hashlib.sha256(raw).hexdigest()


def _replan(fleet, change) -> Plan:
    hosts = []
    for h in fleet:
        facts = copy.deepcopy(dict(h.facts))
        change(h.host, facts)
        hosts.append(HostFacts(h.host, facts, h.unknown, h.error))
    return policy_api.evaluate(policy_api.load_default(), hosts)


def test_fingerprint_ignores_fluctuating_facts(fleet, plan):
    def churn(name, facts):
        if "memcg" in facts and isinstance(facts["memcg"].get("dying"), int):
            # the count moves every second; the decision stays on the same side of 1000
            dying = facts["memcg"]["dying"]
            facts["memcg"]["dying"] = dying + 7 if dying >= 1000 else max(dying - 7, 0)

    moved = _replan(fleet, churn)
    assert moved.to_json() != plan.to_json()  # the summaries quote the new counts
    assert moved.fingerprint() == plan.fingerprint()


def test_fingerprint_follows_decisions(fleet, plan):
    def fix_runc(name, facts):
        if name == "el7-old-runc":
            facts["runc"]["version"] = "1.1.12"

    assert _replan(fleet, fix_runc).fingerprint() != plan.fingerprint()

    def cross_threshold(name, facts):
        if name == "dying-999":
            facts["memcg"]["dying"] = 1000

    assert _replan(fleet, cross_threshold).fingerprint() != plan.fingerprint()


def test_fingerprint_does_not_depend_on_input_order(fleet, plan):
    backwards = policy_api.evaluate(policy_api.load_default(), list(reversed(fleet)))
    assert backwards.fingerprint() == plan.fingerprint()
    assert backwards.to_json(True) == plan.to_json(True)


def test_from_json_round_trips_and_refuses_edits(plan):
    doc = json.loads(json.dumps(plan.to_json(explain=True)))
    again = Plan.from_json(doc)
    assert again.to_json(explain=True) == plan.to_json(explain=True)
    assert again.fingerprint() == plan.fingerprint()

    edited = copy.deepcopy(doc)
    planned = next(h for h in edited["hosts"] if h["mitigations"])
    planned["mitigations"][0]["params"]["sneaky"] = True
    with pytest.raises(InputError, match="do not match its fingerprint"):
        Plan.from_json(edited)

    # prose may be reworded without changing a decision
    reworded = copy.deepcopy(doc)
    planned = next(h for h in reworded["hosts"] if h["mitigations"])
    planned["mitigations"][0]["rationale"] = "reviewed by ops"
    assert Plan.from_json(reworded).fingerprint() == plan.fingerprint()

    with pytest.raises(InputError, match=r"not a memcg-fix plan: \$\.hosts\[0\]\.status"):
        broken = copy.deepcopy(doc)
        broken["hosts"][0]["status"] = "maybe"
        Plan.from_json(broken)


def test_skipping_explanations_changes_no_decision(fleet, plan):
    quick = policy_api.evaluate(policy_api.load_default(), fleet, explain=False)
    assert quick.to_json() == plan.to_json()
    assert all(h.rules == () for h in quick.hosts)
    assert all(len(h.rules) == 15 for h in plan.hosts)


def test_the_playbook_check_recomputes_the_plans_own_fingerprint(plan):
    """render.check() and the plan share one fingerprint: an untouched
    playbook's recorded decisions give back the plan's fingerprint."""
    from remediate.plan import decisions_of, fingerprint_of
    from remediate.render import check, render

    checked = check(render(plan))
    assert checked.untouched
    assert checked.plan == plan.host_decisions()
    assert checked.fingerprint == plan.fingerprint() == fingerprint_of(
        decisions_of(plan.policy.id, plan.policy.version, checked.plan)
    )


def _host(name, mitigations=(), error=None):
    from types import MappingProxyType

    from remediate.plan import HostPlan, PlannedMitigation

    return HostPlan(
        host=name,
        status="undecided" if error else ("planned" if mitigations else "nothing-to-do"),
        error=error,
        mitigations=tuple(
            PlannedMitigation(mid, MappingProxyType(params), False, "low", "none", "why", (), "r")
            for mid, params in mitigations
        ),
    )


def test_changes_since_names_what_the_recorded_decisions_do_not_cover():
    from remediate.plan import PolicyRef

    recorded = {
        "done": [{"id": "nokmem", "params": {}}, {"id": "pam-lastlog", "params": {"method": "x"}}],
        "same": [{"id": "nokmem", "params": {}}],
        "moved": [{"id": "pam-lastlog", "params": {"method": "noupdate"}}],
        "gone": [{"id": "nokmem", "params": {}}],
        "elsewhere": [{"id": "nokmem", "params": {}}],
    }
    fresh = Plan(
        PolicyRef("p", "1", ""),
        hosts=(
            _host("done", [("nokmem", {})]),  # part of it applied already: progress
            _host("same", [("nokmem", {})]),
            _host("moved", [("pam-lastlog", {"method": "comment"})]),  # other parameters
            _host("gone", error="unreachable"),
            _host("new", [("nokmem", {})]),
        ),
    )
    assert fresh.changes_since(recorded) == [
        "gone: planned, but it cannot be read now (unreachable)",
        "moved: planned pam-lastlog, now pam-lastlog",
        "new: not in the plan",
    ]
    assert fresh.changes_since(fresh.host_decisions()) == []
