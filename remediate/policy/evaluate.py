"""Evaluate a policy against host facts: pure, never calls Ansible.

For each host every rule is judged: ``fired`` (all its conditions match),
``not-matched`` (a condition is false; unknown facts then do not matter) or
``not-evaluated`` (nothing is false, but a condition needs a fact the host
could not report). Only fired rules contribute findings and mitigations.

When two rules select the same mitigation the first one in policy order
wins (its parameters and rule id); the rationale notes the others.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from .. import catalogue
from ..errors import InputError
from ..facts.model import HostFacts, Unknown
from ..plan import SEVERITIES, Finding, HostPlan, Plan, PlannedMitigation, RuleResult
from .conditions import MATCH, MISS, UNKNOWN, Outcome
from .model import Policy, Rule

_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def _rationale(rule: Rule, outcomes: list[Outcome]) -> str:
    facts = "; ".join(o.text for o in outcomes)
    return f"{rule.description.rstrip('.')}. Rule {rule.id} matched: {facts}."


def evaluate_host(policy: Policy, host: HostFacts, explain: bool = True) -> HostPlan:
    """The plan for one host; ``explain=False`` skips the per-rule texts (faster)."""
    if host.error is not None:
        reason = " ".join(str(host.error).split()) or "the host could not be read"
        return HostPlan(
            host=host.host,
            status="unknown",
            reason=reason,
            rules=tuple(
                RuleResult(r.id, "not-evaluated", f"the host could not be read: {reason}")
                for r in policy.rules
            )
            if explain
            else (),
        )

    results: list[RuleResult] = []
    findings: dict[str, Finding] = {}
    selected: dict[str, dict[str, Any]] = {}
    unknown: dict[str, Unknown] = {}
    for rule in policy.rules:
        outcomes: list[Outcome] = []
        misses: list[Outcome] = []
        for condition in rule.conditions:
            outcome = condition.evaluate(host)
            if outcome.state == MISS:
                misses.append(outcome)
                if not explain:
                    break  # the first false condition settles the rule
            else:
                outcomes.append(outcome)
        if misses:
            if explain:
                detail = "; ".join(o.text for o in misses)
                results.append(RuleResult(rule.id, "not-matched", detail))
            continue
        blocked = [o for o in outcomes if o.state == UNKNOWN]
        if blocked:
            for outcome in blocked:
                for entry in outcome.unknown:
                    unknown.setdefault(entry.fact, entry)
            if explain:
                detail = "; ".join(o.text for o in blocked)
                results.append(RuleResult(rule.id, "not-evaluated", detail))
            continue
        assert all(o.state == MATCH for o in outcomes)
        if explain:
            results.append(RuleResult(rule.id, "fired", "; ".join(o.text for o in outcomes)))
        for spec in rule.findings:
            if spec.id not in findings:
                findings[spec.id] = Finding(
                    spec.id, spec.severity, spec.summary.render(host.facts), rule.id
                )
        rationale = _rationale(rule, outcomes)
        for m in rule.mitigations:
            if m.id in selected:
                selected[m.id]["also"].append(rule.id)
                continue
            selected[m.id] = {"spec": m, "rule": rule.id, "rationale": rationale, "also": []}

    mitigations = []
    for mitigation_id in sorted(selected, key=catalogue.ORDER.index):
        choice = selected[mitigation_id]
        listed = catalogue.CATALOGUE[mitigation_id]
        rationale = choice["rationale"]
        if choice["also"]:
            rationale += f" Also selected by rule(s) {', '.join(choice['also'])}."
        mitigations.append(
            PlannedMitigation(
                id=mitigation_id,
                params=MappingProxyType(dict(choice["spec"].params)),
                needs_reboot=listed.needs_reboot,
                risk=listed.risk,
                disruption=listed.disruption,
                rationale=rationale,
                alternatives=choice["spec"].alternatives,
                rule=choice["rule"],
            )
        )
    return HostPlan(
        host=host.host,
        status="planned" if mitigations else "nothing-to-do",
        findings=tuple(sorted(findings.values(), key=lambda f: (_SEVERITY_RANK[f.severity], f.id))),
        mitigations=tuple(mitigations),
        unknown=tuple(unknown[k] for k in sorted(unknown)),
        rules=tuple(results),
    )


def evaluate(policy: Policy, hosts: Iterable[HostFacts], explain: bool = True) -> Plan:
    """The plan for a fleet: one entry per host, sorted by host name.

    Two entries for the same host name are refused: which one to believe is
    not a decision to take silently.
    """
    plans: dict[str, HostPlan] = {}
    for host in hosts:
        if host.host in plans:
            raise InputError(f"host {host.host!r} appears more than once in the facts")
        plans[host.host] = evaluate_host(policy, host, explain)
    return Plan(policy=policy.ref, hosts=tuple(plans[name] for name in sorted(plans)))
