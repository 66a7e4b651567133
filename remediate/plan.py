"""The Plan: what memcg-fix decided for each host, and why.

Frozen values, built by :mod:`remediate.policy` and read by the renderer,
``apply`` and :mod:`remediate.report`. ``to_json()`` is the contract of
``memcg-fix plan --format json`` (docs/design.md, schemas/plan.schema.json).

The fingerprint covers decisions only: the policy's id and version, and per
host the mitigation ids with their parameters. Facts that fluctuate (the
dying count changes every second) and prose (rationales) stay out, so
``apply`` can re-plan from fresh facts and refuse only when a decision moved.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from functools import cached_property
from types import MappingProxyType
from typing import Any, Final

from . import __version__
from .errors import InputError
from .facts.model import Unknown
from .schemas import plan_validator, short_message

SCHEMA_VERSION: Final = 1
# planned: mitigations to apply. attention: nothing to apply, but a critical
# finding that no mitigation addresses needs a person. undecided: the plan
# cannot tell (a rule that could plan or warn was blocked by unknown facts, no
# rule could be evaluated, or the host could not be read). nothing-to-do:
# every rule that matters was evaluated and none asks for anything.
STATUSES: Final = ("planned", "attention", "undecided", "nothing-to-do")
SEVERITIES: Final = ("critical", "warning", "info")  # most severe first
RESULTS: Final = ("fired", "not-matched", "not-evaluated")


@dataclass(frozen=True)
class Finding:
    id: str
    severity: str
    summary: str
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "severity": self.severity,
            "summary": self.summary,
            "rule": self.rule,
        }


@dataclass(frozen=True)
class PlannedMitigation:
    """One catalogue mitigation selected for one host, with everything a reviewer needs."""

    id: str
    params: Mapping[str, Any] = field(hash=False)
    needs_reboot: bool
    risk: str
    disruption: str
    rationale: str
    alternatives: tuple[str, ...]
    rule: str

    def to_json(self) -> dict[str, Any]:
        return {
            "id": self.id,
            "params": dict(self.params),
            "needs_reboot": self.needs_reboot,
            "risk": self.risk,
            "disruption": self.disruption,
            "rationale": self.rationale,
            "alternatives": list(self.alternatives),
            "rule": self.rule,
        }


@dataclass(frozen=True)
class RuleResult:
    """What one rule did for one host (shown by ``--explain``)."""

    rule: str
    result: str  # one of RESULTS
    detail: str

    def to_json(self) -> dict[str, str]:
        return {"rule": self.rule, "result": self.result, "detail": self.detail}


@dataclass(frozen=True)
class BlockedRule:
    """A rule that could plan or warn and was not evaluated: the facts it lacked."""

    rule: str
    facts: tuple[str, ...]

    def to_json(self) -> dict[str, Any]:
        return {"rule": self.rule, "facts": list(self.facts)}


@dataclass(frozen=True)
class HostPlan:
    host: str
    status: str  # one of STATUSES
    findings: tuple[Finding, ...] = ()
    mitigations: tuple[PlannedMitigation, ...] = ()
    unknown: tuple[Unknown, ...] = ()
    rules: tuple[RuleResult, ...] = ()
    reason: str | None = None  # why the status is "undecided" or "attention"
    blocked: tuple[BlockedRule, ...] = ()  # rules that block a decision, also when planned
    error: str | None = None  # the host could not be read at all

    @property
    def needs_reboot(self) -> bool:
        return any(m.needs_reboot for m in self.mitigations)

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        out: dict[str, Any] = {"host": self.host, "status": self.status}
        if self.reason is not None:
            out["reason"] = self.reason
        if self.error is not None:
            out["error"] = self.error
        out["findings"] = [f.to_json() for f in self.findings]
        out["mitigations"] = [m.to_json() for m in self.mitigations]
        out["blocked"] = [b.to_json() for b in self.blocked]
        out["unknown"] = [u.to_json() for u in self.unknown]
        if explain:
            out["rules"] = [r.to_json() for r in self.rules]
        return out


@dataclass(frozen=True)
class PolicyRef:
    id: str
    version: str
    sha256: str

    def to_json(self) -> dict[str, str]:
        return {"id": self.id, "version": self.version, "sha256": self.sha256}


def canonical_json(value: Any) -> bytes:
    """Sorted keys, no spaces, ASCII only: the same bytes for the same value, always."""
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=True).encode(
        "ascii"
    )


@dataclass(frozen=True)
class Plan:
    policy: PolicyRef
    hosts: tuple[HostPlan, ...]
    memcg_fix_version: str = __version__

    @cached_property
    def summary(self) -> dict[str, int]:
        counts = {"hosts": len(self.hosts), "reboots": 0}
        counts.update(dict.fromkeys(STATUSES, 0))
        for host in self.hosts:
            counts[host.status] += 1
            counts["reboots"] += host.needs_reboot
        return counts

    @property
    def has_mitigations(self) -> bool:
        return any(h.mitigations for h in self.hosts)

    @property
    def undecided_or_attention(self) -> tuple[HostPlan, ...]:
        """Hosts that keep ``plan`` from exiting 0 even when nothing is planned."""
        return tuple(h for h in self.hosts if h.status in ("undecided", "attention"))

    def host_decisions(self) -> dict[str, list[dict[str, Any]]]:
        """Per host, the mitigation ids with their parameters: what a playbook carries."""
        return {
            h.host: [{"id": m.id, "params": dict(m.params)} for m in h.mitigations]
            for h in sorted(self.hosts, key=lambda h: h.host)
        }

    def decisions(self) -> dict[str, Any]:
        """The part of the plan the fingerprint covers (docs/design.md)."""
        return decisions_of(self.policy.id, self.policy.version, self.host_decisions())

    def fingerprint(self) -> str:
        return fingerprint_of(self.decisions())

    def changes_since(self, recorded: Mapping[str, Sequence[Mapping[str, Any]]]) -> list[str]:
        """Hosts whose decisions here are not covered by ``recorded`` (host ->
        [{id, params}], the decisions of the plan a playbook was rendered from).

        A host whose decisions are a subset of the recorded ones has only made
        progress (an earlier, interrupted apply already fixed part of it), and
        re-running the reviewed playbook on it is safe: that is not a change.
        Anything new (a mitigation, other parameters, a host the recorded plan
        did not know, a planned host that cannot be read now) is.
        """
        fresh = self.host_decisions()
        unreadable = {h.host: h.error for h in self.hosts if h.error is not None}
        changes = []
        for host in sorted(set(fresh) | set(recorded)):
            if host in unreadable and recorded.get(host):
                changes.append(f"{host}: planned, but it cannot be read now ({unreadable[host]})")
                continue
            if host not in fresh:
                continue  # outside this run's inventory or --limit
            if host not in recorded:
                changes.append(f"{host}: not in the plan")
                continue
            if any(m not in recorded[host] for m in fresh[host]):
                before = ", ".join(str(m["id"]) for m in recorded[host]) or "nothing"
                after = ", ".join(str(m["id"]) for m in fresh[host]) or "nothing"
                changes.append(f"{host}: planned {before}, now {after}")
        return changes

    def to_json(self, explain: bool = False) -> dict[str, Any]:
        return {
            "schema_version": SCHEMA_VERSION,
            "memcg_fix_version": self.memcg_fix_version,
            "policy": self.policy.to_json(),
            "fingerprint": self.fingerprint(),
            "summary": dict(self.summary),
            "hosts": [h.to_json(explain) for h in self.hosts],
        }

    @classmethod
    def from_json(cls, obj: Any) -> Plan:
        """Read a plan written by ``to_json`` (checked against the shipped schema)."""
        errors = sorted(plan_validator().iter_errors(obj), key=lambda e: list(e.absolute_path))
        if errors:
            where = "".join(
                f"[{p}]" if isinstance(p, int) else f".{p}" for p in errors[0].absolute_path
            )
            raise InputError(f"not a memcg-fix plan: ${where}: {short_message(errors[0])}")
        policy = obj["policy"]
        hosts = tuple(
            HostPlan(
                host=h["host"],
                # plans of memcg-fix before "undecided" called an unreadable host "unknown"
                status="undecided" if h["status"] == "unknown" else h["status"],
                reason=h.get("reason"),
                error=h.get("error"),
                blocked=tuple(
                    BlockedRule(b["rule"], tuple(b.get("facts") or ()))
                    for b in h.get("blocked") or ()
                ),
                findings=tuple(
                    Finding(f["id"], f["severity"], f["summary"], f.get("rule", ""))
                    for f in h["findings"]
                ),
                mitigations=tuple(
                    PlannedMitigation(
                        id=m["id"],
                        params=MappingProxyType(dict(m.get("params") or {})),
                        needs_reboot=m["needs_reboot"],
                        risk=m["risk"],
                        disruption=m["disruption"],
                        rationale=m["rationale"],
                        alternatives=tuple(m["alternatives"]),
                        rule=m.get("rule", ""),
                    )
                    for m in h["mitigations"]
                ),
                unknown=tuple(Unknown(u["fact"], u["reason"]) for u in h.get("unknown") or ()),
                rules=tuple(
                    RuleResult(r["rule"], r["result"], r["detail"]) for r in h.get("rules") or ()
                ),
            )
            for h in obj["hosts"]
        )
        plan = cls(
            policy=PolicyRef(policy["id"], policy["version"], policy.get("sha256", "")),
            hosts=hosts,
            memcg_fix_version=obj["memcg_fix_version"],
        )
        if plan.fingerprint() != obj["fingerprint"]:
            raise InputError(
                f"the plan's decisions do not match its fingerprint {obj['fingerprint']}: "
                "it was edited after memcg-fix wrote it; plan again"
            )
        return plan


def decisions_of(
    policy_id: str, policy_version: str, hosts: Mapping[str, Sequence[Mapping[str, Any]]]
) -> dict[str, Any]:
    """The fingerprinted decisions: the policy's id and version, and per host
    (sorted by name) its mitigations as ``{id, params}``."""
    return {
        "policy": {"id": policy_id, "version": policy_version},
        "hosts": [{"host": h, "mitigations": list(hosts[h])} for h in sorted(hosts)],
    }


def fingerprint_of(decided: Mapping[str, Any]) -> str:
    """The fingerprint of :func:`decisions_of` (as a plan or a playbook header carries it)."""
    return "sha256:" + hashlib.sha256(canonical_json(decided)).hexdigest()


def sort_hosts(hosts: Iterable[HostPlan]) -> tuple[HostPlan, ...]:
    return tuple(sorted(hosts, key=lambda h: h.host))
