"""Evaluate a policy against host facts: pure, never calls Ansible.

For each host every rule is judged: ``fired`` (all its conditions match),
``not-matched`` (a condition is false; unknown facts then do not matter) or
``not-evaluated`` (nothing is false, but a condition needs a fact the host
could not report). Only fired rules contribute findings and mitigations.

When two rules select the same mitigation the first one in policy order
wins (its parameters and rule id); the rationale notes the others.

A host's status (docs/design.md): ``planned`` when it has mitigations;
otherwise ``undecided`` when it could not be read, when no rule could be
evaluated, or when a rule that could plan or warn was not evaluated (unless
the rule says ``on_unknown: ignore``); otherwise ``attention`` when a critical
finding has no mitigation; otherwise ``nothing-to-do``. "Nothing to do" is
never a guess made from facts the host did not give.
"""

from __future__ import annotations

from collections.abc import Iterable
from types import MappingProxyType
from typing import Any

from .. import catalogue
from ..errors import InputError
from ..facts.model import HostFacts, Unknown
from ..plan import (
    SEVERITIES,
    BlockedRule,
    Finding,
    HostPlan,
    Plan,
    PlannedMitigation,
    RuleResult,
)
from .conditions import MATCH, MISS, UNKNOWN, Outcome
from .model import Policy, Rule

_SEVERITY_RANK = {name: rank for rank, name in enumerate(SEVERITIES)}


def _rationale(rule: Rule, outcomes: list[Outcome]) -> str:
    facts = "; ".join(o.text for o in outcomes)
    return f"{rule.description.rstrip('.')}. Rule {rule.id} matched: {facts}."


def _some(items: list[str], limit: int) -> str:
    shown = ", ".join(items[:limit])
    return shown + (f" and {len(items) - limit} more" if len(items) > limit else "")


def _blocked_reason(blocked: list[BlockedRule]) -> str:
    """``el7-nokmem, el7-... could not be evaluated: kmem.accounting_active unknown``.

    Short on purpose (a table cell, a playbook header line); the plan lists
    every blocked rule with its facts.
    """
    facts = list(dict.fromkeys(f for entry in blocked for f in entry.facts))
    rules = [entry.rule for entry in blocked]
    return f"{_some(rules, 3)} could not be evaluated: {_some(facts, 4) or 'facts'} unknown"


def _status(
    policy: Policy,
    results: dict[str, str],
    blocked: list[BlockedRule],
    findings: list[Finding],
    mitigations: list[PlannedMitigation],
) -> tuple[str, str | None]:
    if mitigations:
        return "planned", None
    if policy.rules and all(r == "not-evaluated" for r in results.values()):
        facts = list(dict.fromkeys(f for entry in blocked for f in entry.facts))
        return "undecided", f"no rule could be evaluated: {_some(facts, 4) or 'facts'} unknown"
    if blocked:
        return "undecided", _blocked_reason(blocked)
    critical = [f for f in findings if f.severity == "critical"]
    if critical:
        ids = ", ".join(f.id for f in critical)
        return "attention", f"critical finding(s) {ids} that no mitigation addresses"
    return "nothing-to-do", None


def evaluate_host(policy: Policy, host: HostFacts, explain: bool = True) -> HostPlan:
    """The plan for one host; ``explain=False`` skips the per-rule texts (faster)."""
    if host.error is not None:
        reason = " ".join(str(host.error).split()) or "the host could not be read"
        return HostPlan(
            host=host.host,
            status="undecided",
            reason=reason,
            error=reason,
            rules=tuple(
                RuleResult(r.id, "not-evaluated", f"the host could not be read: {reason}")
                for r in policy.rules
            )
            if explain
            else (),
        )

    results: list[RuleResult] = []
    judged: dict[str, str] = {}
    blocked: list[BlockedRule] = []
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
            judged[rule.id] = "not-matched"
            if explain:
                detail = "; ".join(o.text for o in misses)
                results.append(RuleResult(rule.id, "not-matched", detail))
            continue
        lacking = [o for o in outcomes if o.state == UNKNOWN]
        if lacking:
            judged[rule.id] = "not-evaluated"
            facts: dict[str, None] = {}
            for outcome in lacking:
                for entry in outcome.unknown:
                    unknown.setdefault(entry.fact, entry)
                    facts.setdefault(entry.fact)
            if rule.blocks_when_unknown:
                blocked.append(BlockedRule(rule.id, tuple(facts)))
            if explain:
                detail = "; ".join(o.text for o in lacking)
                if rule.on_unknown == "ignore":
                    detail += " (on_unknown: ignore, so the host stays decided)"
                results.append(RuleResult(rule.id, "not-evaluated", detail))
            continue
        judged[rule.id] = "fired"
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
    ordered = sorted(findings.values(), key=lambda f: (_SEVERITY_RANK[f.severity], f.id))
    status, why = _status(policy, judged, blocked, ordered, mitigations)
    return HostPlan(
        host=host.host,
        status=status,
        reason=why,
        findings=tuple(ordered),
        mitigations=tuple(mitigations),
        unknown=tuple(unknown[k] for k in sorted(unknown)),
        rules=tuple(results),
        blocked=tuple(blocked),
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
