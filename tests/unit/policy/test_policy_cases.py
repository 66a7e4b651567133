"""Run the policy's own cases (policies/cases/*.yaml) against the policy.

Each case is one host and what the policy must decide for it: the exact set
of rules that fire, the exact findings and mitigations (in order), and
optionally rules that must not fire, rules that cannot be evaluated,
parameters, alternatives and quoted facts. A coverage test makes sure every
rule of the default policy has a case where it fires and a case that names
it as deliberately not firing.
"""

from __future__ import annotations

from pathlib import Path

import pytest
from casefiles import POLICIES, case_files, host_entry, host_facts, load_case

from remediate import policy as policy_api
from remediate.policy.model import Policy


def _policy(case: dict) -> Policy:
    return policy_api.load(POLICIES / case.get("policy", "default.yaml"))


@pytest.mark.parametrize("path", case_files(), ids=lambda p: p.stem)
def test_case(path: Path) -> None:
    case = load_case(path)
    expect = case["expect"]
    policy = _policy(case)
    rule_ids = [r.id for r in policy.rules]
    plan = policy_api.evaluate_host(policy, host_facts(case))

    fired = sorted(r.rule for r in plan.rules if r.result == "fired")
    not_evaluated = sorted(r.rule for r in plan.rules if r.result == "not-evaluated")
    explanation = "\n".join(f"{r.result}: {r.rule}: {r.detail}" for r in plan.rules)

    assert plan.status == expect["status"], explanation
    assert fired == sorted(expect["fired"]), explanation
    for rule in expect.get("not_fired", []):
        assert rule in rule_ids, f"not_fired names {rule!r}, which the policy does not have"
        assert rule not in fired, explanation
    if "not_evaluated" in expect:
        # "all": every rule of the policy (a host that could not be read)
        wanted = rule_ids if expect["not_evaluated"] == "all" else expect["not_evaluated"]
        assert not_evaluated == sorted(wanted), explanation
    if "findings" in expect:
        assert [f.id for f in plan.findings] == expect["findings"]
    assert [m.id for m in plan.mitigations] == expect["mitigations"]
    by_id = {m.id: m for m in plan.mitigations}
    for mitigation, params in (expect.get("params") or {}).items():
        for name, value in params.items():
            assert by_id[mitigation].params[name] == value, (mitigation, name)
    for mitigation, alternatives in (expect.get("alternatives") or {}).items():
        assert list(by_id[mitigation].alternatives) == alternatives
    if "unknown" in expect:
        assert [u.fact for u in plan.unknown] == expect["unknown"]
    if "reason" in expect:
        assert plan.reason == " ".join(expect["reason"].split())
    if "blocked" in expect:
        assert sorted(b.rule for b in plan.blocked) == sorted(expect["blocked"]), explanation
    # a host is never "nothing to do" while a rule that could plan or warn lacked facts
    if plan.blocked and not plan.mitigations:
        assert plan.status == "undecided"
    text = "\n".join(
        [explanation]
        + [f.summary for f in plan.findings]
        + [m.rationale for m in plan.mitigations]
        + [f"{u.fact} unknown because {u.reason}" for u in plan.unknown]
    )
    for quote in expect.get("quotes", []):
        assert quote in text, f"{quote!r} not in:\n{text}"
    # every mitigation quotes the facts that triggered it, and says which rule
    for m in plan.mitigations:
        assert m.rule in fired
        assert f"Rule {m.rule} matched:" in m.rationale


def test_every_rule_fires_somewhere_and_is_shown_not_firing_somewhere() -> None:
    policy = policy_api.load(POLICIES / "default.yaml")
    fired: set[str] = set()
    shown_not_firing: set[str] = set()
    for path in case_files():
        case = load_case(path)
        if case.get("policy", "default.yaml") != "default.yaml":
            continue
        fired.update(case["expect"]["fired"])
        shown_not_firing.update(case["expect"].get("not_fired", []))
    rules = {r.id for r in policy.rules}
    assert rules - fired == set(), "rules without a case where they fire"
    assert rules - shown_not_firing == set(), "rules without a case where they must not fire"
    assert fired <= rules and shown_not_firing <= rules


def test_done_when_hosts_have_cases() -> None:
    """The hosts issue 4 names, each with its decision (cases are the proof)."""
    expected = {
        "el7-514-kmem-active": ["kernel-upgrade", "nokmem"],
        "el7-1062.1.2-below-nokmem": ["kernel-upgrade", "nokmem"],
        "el7-1062.4.1-honours-nokmem": ["nokmem"],
        "el7-1160-without-nokmem": ["nokmem"],
        "el7-1160-nokmem-everywhere": [],
        "el8-418-v1-kmem-active": ["nokmem"],
        "debian12-v2-5000-dying": ["reclaim-before-rmdir"],
        # issue 13: Ubuntu's login writes before pam_systemd, outside the session
        "ubuntu-pam-lastlog": [],
        "el8-postlogin-lastlog-always-writes": ["pam-lastlog"],
        "runc-rc10-on-v1": ["nokmem", "runc-upgrade"],
        "kmem-cache-close-module-leak": [],
    }
    names = {p.stem: p for p in case_files()}
    for stem, mitigations in expected.items():
        assert load_case(names[stem])["expect"]["mitigations"] == mitigations, stem


def test_case_kernels_agree_with_the_host_side_parser() -> None:
    """The kernel facts in the cases are what the real collector derives from uname."""
    kernel = pytest.importorskip("remediate.hostside.kernel")
    checked = 0
    for path in case_files():
        facts = host_entry(load_case(path))["facts"]
        if "kernel" not in facts:
            continue
        k = facts["kernel"]
        try:
            parsed = kernel.parse_uname(k["release"], k["version"])
        except Exception as exc:  # the parser is another module's contract; say what broke
            pytest.fail(f"{path.name}: parse_uname({k['release']!r}) raised {exc!r}")
        if k["package_version"] is None or " " in str(k["package_version"]):
            continue  # cases that deliberately break the version
        for key in ("family", "upstream_version", "package_version", "version_scheme", "el_tag"):
            assert parsed[key] == k[key], (path.name, key, parsed[key], k[key])
        checked += 1
    assert checked >= 20


def kernel_family(facts: dict[str, object]) -> str:
    """``el7/v1``, ``ubuntu22.04/v2``, ``ol-uek/v1``...: the kernel family of a case's host."""
    kernel: dict[str, str] = facts["kernel"]  # type: ignore[assignment]
    distro: dict[str, str] = facts["distro"]  # type: ignore[assignment]
    cgroup: dict[str, str] = facts["cgroup"]  # type: ignore[assignment]
    name = kernel["family"]
    if name == "rhel":
        name = kernel["el_tag"]
    elif name in ("ubuntu", "debian"):
        name += distro["version_id"]
    return f"{name}/{cgroup['memory_controller']}"


# Issue 13: each kernel-dependent rule, for each kernel family of its
# simulated fleet, with a case where it must fire and one where it must not
# (listed in expect.not_fired). The reasons are in docs/facts.md ("Kernel
# facts the default policy relies on").
V1 = ["el8/v1", "ubuntu20.04/v1", "amzn/v1", "ol-uek/v1", "suse/v1"]
KERNEL_FAMILY_CASES: dict[str, dict[str, list[str]]] = {
    # IDs of dying memcgs are released from 4.7 (73f576c04b94); el7 keeps them
    "dying-memcgs-near-id-limit": {
        "fires": ["el7/v1"],
        "not": [*V1, "el8/v2", "el9/v2", "ubuntu22.04/v2", "debian12/v2"]},
    # reclaim-before-rmdir only where a memcg can be reclaimed on demand
    "dying-memcgs-no-reaper": {
        "fires": ["el7/v1", *V1, "el9/v2", "debian12/v2"],
        "not": ["el8/v2", "el9/v2", "ubuntu22.04/v2"]},
    "dying-memcgs-no-reclaim-interface": {
        "fires": ["el8/v2", "el9/v2", "ubuntu22.04/v2"],
        "not": ["amzn/v1", "ol-uek/v1", "suse/v1", "el9/v2", "debian12/v2"]},
    # runc's kmem limit matters only before 4.6 (b313aeee2509)
    "runc-enables-kmem": {
        "fires": ["el7/v1"],
        "not": [*V1, "debian12/v2"]},
    # slab pins removed memcgs on v1 from 4.6 (kmem for all) until 5.9
    "v1-kmem-pre-5.9": {
        "fires": V1,
        "not": ["el7/v1", "amzn/v1", "suse/v1", "el8/v1", "el9/v2", "debian12/v2"]},
    "v2-no-kmem-action": {
        "fires": ["el9/v2", "ubuntu22.04/v2", "debian12/v2"],
        "not": ["el8/v2", "el8/v1"]},
    # 3.10 says kmem_cache_close(), 4.6 and later __kmem_cache_shutdown()
    "kmem-cache-close-leak": {
        "fires": ["el7/v1", "el8/v1", "ubuntu22.04/v2"],
        "not": ["debian12/v2"]},
    # only where pam_lastlog writes after pam_systemd, for sshd or login
    "pam-lastlog-pins-sessions": {
        "fires": ["el7/v1", "el8/v1", "debian12/v2"],
        "not": ["el7/v1", "el8/v1", "ubuntu22.04/v2"]},
    # the el7 rules are for the RHEL 7 kernel, not UEK on Oracle Linux 7
    "el7-kmem-leak-old-kernel": {"fires": ["el7/v1"], "not": ["el7/v1", "el8/v1", "ol-uek/v1"]},
    "el7-nokmem": {"fires": ["el7/v1"], "not": ["el7/v1", "el8/v1", "ol-uek/v1"]},
    "el7-old-kernel-kmem-off": {"fires": ["el7/v1"], "not": ["el7/v1", "ol-uek/v1"]},
}


def test_each_kernel_dependent_rule_has_cases_per_kernel_family() -> None:
    shown: dict[tuple[str, str], set[str]] = {}
    for path in case_files():
        case = load_case(path)
        if case.get("policy", "default.yaml") != "default.yaml" or case.get("error"):
            continue
        family = kernel_family(host_entry(case)["facts"])
        for rule in case["expect"]["fired"]:
            shown.setdefault((rule, "fires"), set()).add(family)
        for rule in case["expect"].get("not_fired", []):
            shown.setdefault((rule, "not"), set()).add(family)
    missing = [
        f"{rule} {'firing' if how == 'fires' else 'not firing'} on {family}"
        for rule, wanted in KERNEL_FAMILY_CASES.items()
        for how, families in wanted.items()
        for family in families
        if family not in shown.get((rule, how), set())
    ]
    assert missing == [], "cases missing: " + "; ".join(missing)
