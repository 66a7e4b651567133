"""Whatever bytes a policy file holds and whatever a host reports, nothing raises.

A policy is either loaded or refused with located messages; a host's facts,
however malformed, give a HostPlan (rules not evaluated say why).
"""

from __future__ import annotations

import copy

import yaml
from casefiles import bases
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediate import policy as policy_api
from remediate.errors import PolicyError
from remediate.facts.model import HostFacts, Unknown
from remediate.policy.source import parse

json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20),
    lambda children: (
        st.lists(children, max_size=4) | st.dictionaries(st.text(max_size=12), children, max_size=4)
    ),
    max_leaves=30,
)

# policy-shaped documents with the right keys and wrong or random values
policy_like = st.fixed_dictionaries(
    {
        "id": st.one_of(st.just("p"), json_values),
        "version": st.one_of(st.just("1.0"), json_values),
        "description": st.one_of(st.just("d"), json_values),
        "rules": st.lists(
            st.fixed_dictionaries(
                {
                    "id": st.sampled_from(["a", "b", "A B"]),
                    "description": st.just("d"),
                    "when": st.dictionaries(
                        st.sampled_from(
                            [
                                "family",
                                "kernel",
                                "runc",
                                "dying",
                                "dying_ratio",
                                "pam_lastlog",
                                "kernel_log",
                                "nokmem_everywhere",
                                "cgroup_mode",
                                "bogus",
                            ]
                        ),
                        json_values,
                        max_size=3,
                    ),
                },
                optional={
                    "findings": st.lists(
                        st.fixed_dictionaries(
                            {
                                "id": st.just("f"),
                                "severity": st.just("info"),
                                "summary": st.text(max_size=30),
                            }
                        ),
                        max_size=2,
                    ),
                    "mitigations": st.lists(
                        st.fixed_dictionaries(
                            {
                                "id": st.sampled_from(
                                    ["nokmem", "kernel-upgrade", "drop-caches", "x"]
                                )
                            },
                            optional={"params": json_values, "alternatives": json_values},
                        ),
                        max_size=2,
                    ),
                },
            ),
            max_size=3,
        ),
    }
)


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.binary(max_size=400))
def test_any_bytes_are_parsed_or_refused(raw):
    try:
        parse(raw, "fuzz.yaml")
    except PolicyError as exc:  # anything else fails the test
        assert exc.message.startswith("fuzz.yaml")


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(policy_like)
def test_policy_shaped_documents_load_or_give_located_problems(tmp_path_factory, document):
    path = tmp_path_factory.mktemp("fuzz") / "p.yaml"
    path.write_text(yaml.safe_dump(document, allow_unicode=True), encoding="utf-8")
    policy, problems = policy_api.check(path, display="p.yaml")
    if policy is None:
        assert problems and all(p.startswith("p.yaml:") for p in problems)
        assert all("\n" not in p for p in problems)
    else:
        assert problems == []


def _paths(node, prefix=()):
    if isinstance(node, dict):
        for key, value in node.items():
            yield (*prefix, key)
            yield from _paths(value, (*prefix, key))


BASE = bases()["el7"]
PATHS = sorted(set(_paths(BASE["facts"])))


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(st.lists(st.tuples(st.sampled_from(PATHS), json_values), max_size=6))
def test_any_facts_give_a_host_plan(changes):
    policy = policy_api.load_default()
    facts = copy.deepcopy(BASE["facts"])
    for path, value in changes:
        node = facts
        for part in path[:-1]:
            if not isinstance(node, dict):
                break
            node = node.setdefault(part, {})
        else:
            if isinstance(node, dict):
                node[path[-1]] = value
    host = HostFacts("fuzz", facts, (Unknown("runc.version", "fuzzed"),))
    for explain in (True, False):
        plan = policy_api.evaluate_host(policy, host, explain)
        assert plan.status in ("planned", "attention", "undecided", "nothing-to-do")
        assert (plan.status == "planned") == bool(plan.mitigations)
        # a host is settled only when no rule that could plan or warn lacked facts
        if plan.status in ("attention", "nothing-to-do"):
            assert plan.blocked == ()
        if plan.status == "undecided":
            assert plan.blocked and plan.reason
        if explain:
            assert len(plan.rules) == len(policy.rules)
