"""Loader and evaluator behaviour beyond the default policy's cases.

Custom policies are written to tmp files and loaded through the real loader;
hosts are HostFacts as the facts loader builds them.
"""

from __future__ import annotations

import textwrap
from pathlib import Path

import pytest
from jsonschema import Draft202012Validator

from remediate import catalogue
from remediate import policy as policy_api
from remediate.errors import InputError
from remediate.facts.model import HostFacts, Unknown
from remediate.policy.source import json_path, parse
from remediate.schemas import plan_schema, policy_schema

REPO = Path(__file__).resolve().parents[3]


def write_policy(tmp_path: Path, rules: str, name: str = "p.yaml") -> Path:
    path = tmp_path / name
    path.write_text(
        'id: test\nversion: "2.1"\ndescription: a test policy\nrules:\n'
        + textwrap.indent(textwrap.dedent(rules).strip("\n"), "  ")
        + "\n",
        encoding="utf-8",
    )
    return path


def host(name: str = "h", unknown: tuple[Unknown, ...] = (), **facts: dict) -> HostFacts:
    return HostFacts(host=name, facts=facts, unknown=unknown)


def results(plan) -> dict[str, tuple[str, str]]:
    return {r.rule: (r.result, r.detail) for r in plan.rules}


def test_the_shipped_schemas_are_valid_draft_2020_12():
    Draft202012Validator.check_schema(policy_schema())
    Draft202012Validator.check_schema(plan_schema())
    assert policy_schema()["$schema"].endswith("/2020-12/schema")


def test_default_policy_loads_with_id_version_and_hash():
    policy = policy_api.load_default()
    raw = (REPO / "policies" / "default.yaml").read_bytes()
    import hashlib

    assert (policy.id, policy.version) == ("default", "1.0.0")
    assert policy.sha256 == hashlib.sha256(raw).hexdigest()
    assert len({r.id for r in policy.rules}) == len(policy.rules) >= 10


def test_line_map_follows_yaml_nodes():
    doc = parse(b"a:\n  b:\n    - 1\n    - {c: 2}\n", "x.yaml")
    assert doc.line_of(("a",)) == 1
    assert doc.line_of(("a", "b", 0)) == 3
    assert doc.line_of(("a", "b", 1, "c")) == 4
    assert doc.line_of(("a", "b", 1, "missing")) == 4  # nearest ancestor
    assert json_path(("rules", 0, "when", "kernel")) == "$.rules[0].when.kernel"
    assert json_path(("odd key",)) == "$['odd key']"


def test_utf8_bom_and_dates_are_tolerated(tmp_path):
    path = write_policy(
        tmp_path,
        """
        - id: r1
          description: d
          when: {family: [rhel]}
          findings: [{id: f, severity: info, summary: "seen 2024-01-01"}]
    """,
    )
    path.write_bytes(b"\xef\xbb\xbf" + path.read_bytes())
    assert policy_api.load(path).rules[0].id == "r1"


def test_conditions_are_anded_and_all_misses_are_explained(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: r1
          description: d
          when:
            family: [rhel]
            cgroup_mode: [v1, hybrid]
            dying: {ge: 10, lt: 100}
          findings: [{id: f, severity: info, summary: "{memcg.dying} dying"}]
    """,
        )
    )
    hit = policy_api.evaluate_host(
        policy, host(kernel={"family": "rhel"}, cgroup={"mode": "hybrid"}, memcg={"dying": 10})
    )
    assert results(hit)["r1"][0] == "fired"
    assert hit.findings[0].summary == "10 dying"
    miss = policy_api.evaluate_host(
        policy, host(kernel={"family": "debian"}, cgroup={"mode": "v2"}, memcg={"dying": 100})
    )
    result, detail = results(miss)["r1"]
    assert result == "not-matched"
    assert "kernel.family=debian is not in [rhel]" in detail
    assert "cgroup.mode=v2 is not in [v1, hybrid]" in detail
    assert "memcg.dying=100 >= 100" in detail


def test_a_false_condition_wins_over_an_unknown_one(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: r1
          description: d
          when: {family: [rhel], dying: {ge: 1}}
          findings: [{id: f, severity: info, summary: s}]
    """,
        )
    )
    unknown = (Unknown("memcg.dying", "cgroup.stat unreadable"),)
    plan = policy_api.evaluate_host(policy, host(kernel={"family": "debian"}, unknown=unknown))
    assert results(plan)["r1"][0] == "not-matched"
    assert plan.unknown == ()  # the unknown fact did not matter
    plan = policy_api.evaluate_host(policy, host(kernel={"family": "rhel"}, unknown=unknown))
    assert results(plan)["r1"] == (
        "not-evaluated",
        "memcg.dying unknown because cgroup.stat unreadable",
    )
    assert [u.fact for u in plan.unknown] == ["memcg.dying"]


def test_facts_missing_without_a_reason_are_unknown_not_false(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: r1
          description: d
          when: {kmem_active: false}
          findings: [{id: f, severity: info, summary: s}]
    """,
        )
    )
    plan = policy_api.evaluate_host(policy, host())
    assert results(plan)["r1"] == (
        "not-evaluated",
        "kmem.accounting_active unknown because it is not in the facts",
    )
    plan = policy_api.evaluate_host(policy, host(kmem={"accounting_active": None}))
    assert "it is null in the facts" in results(plan)["r1"][1]
    plan = policy_api.evaluate_host(policy, host(kmem={"accounting_active": "yes"}))
    assert "is not true/false" in results(plan)["r1"][1]


def test_dying_ratio_distro_and_cmdline_conditions(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: ratio
          description: many dying per live
          when: {dying_ratio: {ge: 0.5}, distro: [ubuntu], cmdline_nokmem: false}
          findings: [{id: f, severity: warning, summary: s}]
    """,
        )
    )
    base = {"distro": {"id": "ubuntu"}, "cmdline": {"nokmem": False}}
    fired = policy_api.evaluate_host(policy, host(memcg={"dying": 50, "live": 100}, **base))
    assert results(fired)["ratio"] == (
        "fired",
        "memcg.dying/memcg.live=50/100=0.50 >= 0.5; distro.id=ubuntu is in [ubuntu]; "
        "cmdline.nokmem=false",
    )
    below = policy_api.evaluate_host(policy, host(memcg={"dying": 49, "live": 100}, **base))
    assert results(below)["ratio"][0] == "not-matched"
    zero = policy_api.evaluate_host(policy, host(memcg={"dying": 5, "live": 0}, **base))
    assert results(zero)["ratio"][0] == "not-evaluated"
    assert "memcg.live=0" in results(zero)["ratio"][1]


def test_kernel_ranges_in_each_scheme(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: rpm
          description: d
          when: {kernel: {scheme: rpm, ge: 3.10.0-1062.4.1.el7, lt: 3.10.0-1127.el7}}
          findings: [{id: f1, severity: info, summary: s}]
        - id: dpkg
          description: d
          when: {kernel: {scheme: dpkg, lt: 6.1.76-1}}
          findings: [{id: f2, severity: info, summary: s}]
        - id: upstream
          description: d
          when: {kernel: {scheme: upstream, gt: "5.9", le: "6.1"}}
          findings: [{id: f3, severity: info, summary: s}]
    """,
        )
    )

    def kernel(package: str, scheme: str, upstream: str) -> HostFacts:
        return host(
            kernel={
                "package_version": package,
                "version_scheme": scheme,
                "upstream_version": upstream,
            }
        )

    r = results(policy_api.evaluate_host(policy, kernel("3.10.0-1062.12.1.el7", "rpm", "3.10.0")))
    assert [r[k][0] for k in ("rpm", "dpkg", "upstream")] == ["fired", "not-matched", "not-matched"]
    assert r["dpkg"][1] == "kernel.version_scheme=rpm, the rule compares dpkg versions"
    r = results(policy_api.evaluate_host(policy, kernel("6.1.69-1", "dpkg", "6.1.0")))
    assert [r[k][0] for k in ("rpm", "dpkg", "upstream")] == ["not-matched", "fired", "fired"]
    r = results(policy_api.evaluate_host(policy, kernel("6.1.76-1", "dpkg", "5.9.0")))
    assert r["dpkg"] == ("not-matched", "kernel.package_version=6.1.76-1 >= 6.1.76-1 (dpkg)")
    assert r["upstream"] == ("not-matched", "kernel.upstream_version=5.9.0 <= 5.9 (upstream)")


def test_version_results_are_cached_per_value_not_shared_across_values(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: runc
          description: d
          when: {runc: {lt: 1.0.0-rc94}}
          mitigations: [{id: runc-upgrade}]
    """,
        )
    )
    verdicts = []
    for version in ["1.0.0-rc10", "1.1.12", "1.0.0-rc10", "1.1.12", "0.1.1"]:
        plan = policy_api.evaluate_host(policy, host(runc={"version": version}))
        verdicts.append(results(plan)["runc"][0])
    assert verdicts == ["fired", "not-matched", "fired", "not-matched", "fired"]


def test_kernel_log_signature_missing_from_the_log_counts_as_zero(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: oom
          description: d
          when: {kernel_log: {signature: memcg_oom, min_count: 2}}
          findings:
            - {id: f, severity: warning, summary: "{kernel_log.signatures.memcg_oom.memcgs}"}
    """,
        )
    )
    none_seen = policy_api.evaluate_host(policy, host(kernel_log={"signatures": {}}))
    assert results(none_seen)["oom"] == (
        "not-matched",
        "kernel_log.signatures.memcg_oom.count=0 < 2",
    )
    two = policy_api.evaluate_host(
        policy, host(kernel_log={"signatures": {"memcg_oom": {"count": 2, "memcgs": ["/a", "/b"]}}})
    )
    assert two.findings[0].summary == "[/a, /b]"


def test_first_rule_wins_a_shared_mitigation_and_the_rationale_says_so(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: first
          description: First reason.
          when: {dying: {ge: 1}}
          mitigations: [{id: reclaim-before-rmdir, params: {grace_seconds: 60}}]
        - id: second
          description: Second reason.
          when: {dying: {ge: 2}}
          mitigations:
            - {id: reclaim-before-rmdir, params: {grace_seconds: 600}}
            - {id: drop-caches, params: {dying_threshold: 2}}
    """,
        )
    )
    plan = policy_api.evaluate_host(policy, host(memcg={"dying": 5}))
    assert [m.id for m in plan.mitigations] == ["reclaim-before-rmdir", "drop-caches"]
    reclaim = plan.mitigations[0]
    assert reclaim.rule == "first"
    assert reclaim.params["grace_seconds"] == 60
    assert reclaim.rationale == (
        "First reason. Rule first matched: memcg.dying=5 >= 1. Also selected by rule(s) second."
    )
    assert plan.mitigations[1].params == {
        "dying_threshold": 2,
        "min_interval_seconds": 3600,
        "require_growth": True,
        "dry_run": False,
    }


def test_mitigations_follow_the_fixed_order_not_the_policy_order(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: backwards
          description: d
          when: {dying: {ge: 0}}
          mitigations:
            - {id: drop-caches}
            - {id: reclaim-before-rmdir}
            - {id: runc-upgrade}
            - {id: pam-lastlog}
            - {id: nokmem}
            - {id: kernel-upgrade, params: {min_version: "6.1.76-1"}}
    """,
        )
    )
    plan = policy_api.evaluate_host(policy, host(memcg={"dying": 0}))
    listed = ["drop-caches", "reclaim-before-rmdir", "runc-upgrade", "pam-lastlog", "nokmem",
              "kernel-upgrade"]
    assert [m.id for m in plan.mitigations] == sorted(listed, key=catalogue.ORDER.index)
    assert [m.needs_reboot for m in plan.mitigations] == [
        catalogue.CATALOGUE[m.id].needs_reboot for m in plan.mitigations]


def test_findings_sorted_by_severity_then_id(tmp_path):
    policy = policy_api.load(
        write_policy(
            tmp_path,
            """
        - id: r1
          description: d
          when: {dying: {ge: 0}}
          findings:
            - {id: b-info, severity: info, summary: s}
            - {id: z-critical, severity: critical, summary: s}
            - {id: a-info, severity: info, summary: s}
            - {id: m-warning, severity: warning, summary: s}
    """,
        )
    )
    plan = policy_api.evaluate_host(policy, host(memcg={"dying": 0}))
    assert [f.id for f in plan.findings] == ["z-critical", "m-warning", "a-info", "b-info"]


def test_duplicate_host_names_are_refused():
    policy = policy_api.load_default()
    with pytest.raises(InputError, match="'web1' appears more than once"):
        policy_api.evaluate(policy, [host("web1"), host("web2"), host("web1")])


def test_a_broken_host_never_stops_the_fleet():
    policy = policy_api.load_default()
    hosts = [
        HostFacts(
            host="broken", facts={}, error="module failure: Traceback (most recent call last)"
        ),
        host(
            "garbage",
            kernel="not a mapping",
            memcg={"dying": "many"},
            runc={"version": ["x"]},
            kernel_log={"signatures": {"memcg_oom": "oops"}},
        ),
        host("fine", memcg={"dying": 5000, "live": 10}, memcg_fix={"reaper_reclaim": False},
             reclaim={"interface": "memory.reclaim"}),
    ]
    plan = policy_api.evaluate(policy, hosts)
    by_name = {h.host: h for h in plan.hosts}
    assert by_name["broken"].status == "undecided"
    assert by_name["broken"].reason.startswith("module failure")
    assert by_name["broken"].error == by_name["broken"].reason
    # garbage facts decide nothing: the rules that needed them block the host
    assert by_name["garbage"].status == "undecided"
    assert "dying-memcgs" in {b.rule for b in by_name["garbage"].blocked}
    assert {u.fact for u in by_name["garbage"].unknown} >= {"memcg.dying", "runc.version"}
    assert [m.id for m in by_name["fine"].mitigations] == ["reclaim-before-rmdir"]
    assert [h.host for h in plan.hosts] == ["broken", "fine", "garbage"]
