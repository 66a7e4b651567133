"""Load and validate a policy: schema first, then the checks a schema cannot make.

Every problem comes back as ``FILE:LINE: $.json.path: message``. The schema
(schemas/policy.schema.json, draft 2020-12) fixes the shape and rejects
unknown keys; the checks here need the catalogue and the version orderings:
parameters against the catalogue, version bounds that parse and form a
non-empty range, duplicate ids, and finding summaries that quote facts.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterable, Mapping
from pathlib import Path
from types import MappingProxyType
from typing import Any, Final

from jsonschema import ValidationError

from .. import catalogue, versions
from ..errors import PolicyError
from ..facts import known_fact_paths
from ..resources import default_policy_path
from ..schemas import policy_validator
from . import conditions
from .model import FACT_PATH, PLACEHOLDER, FindingSpec, MitigationSpec, Policy, Rule, Template
from .source import JsonPath, Located, json_path, read

_SHORT: Final = 60
_BOUNDS: Final = ("ge", "gt", "le", "lt")


def _short(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= _SHORT else text[: _SHORT - 3] + "..."


def _kind(value: Any) -> str:
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, (int, float)):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "a mapping"
    return type(value).__name__


_TYPE_NAMES: Final = {
    "object": "a mapping",
    "array": "a list",
    "string": "a string",
    "integer": "an integer",
    "number": "a number",
    "boolean": "true or false",
}


class _Problems:
    """Collects ``(line, path, message)``; renders them sorted and de-duplicated."""

    def __init__(self, doc: Located) -> None:
        self.doc = doc
        self.items: set[tuple[int, str, str]] = set()

    def add(self, path: Iterable[str | int], message: str) -> None:
        path = tuple(path)
        self.items.add((self.doc.line_of(path), json_path(path), message))

    def messages(self) -> list[str]:
        return [
            f"{self.doc.name}:{line}: {where}: {msg}" for line, where, msg in sorted(self.items)
        ]


def _schema_problem(problems: _Problems, error: ValidationError) -> None:
    path: JsonPath = tuple(error.absolute_path)
    instance = error.instance
    kind = error.validator
    value: Any = error.validator_value
    schema = error.schema if isinstance(error.schema, Mapping) else {}
    if kind == "additionalProperties" and isinstance(instance, dict):
        known = sorted(schema.get("properties", {}))
        for extra in sorted(set(instance) - set(known)):
            problems.add(
                (*path, extra), f"unknown key {extra!r}; expected one of: {', '.join(known)}"
            )
    elif kind == "required" and isinstance(instance, dict):
        for name in value:
            if name not in instance:
                problems.add(path, f"missing required key {name!r}")
    elif kind == "type":
        wanted = value if isinstance(value, str) else value[0]
        hint = ""
        if (
            wanted == "string"
            and isinstance(instance, (int, float))
            and not isinstance(instance, bool)
        ):
            hint = f" (quote it: YAML reads {instance!r} as a number)"
        problems.add(
            path,
            f"expected {_TYPE_NAMES.get(wanted, wanted)}, "
            f"got {_kind(instance)} {_short(instance)}{hint}",
        )
    elif kind == "enum":
        if path and path[-1] == "id" and len(path) >= 3 and path[-3] == "mitigations":
            problems.add(
                path,
                f"unknown mitigation id {_short(instance)}; "
                f"the catalogue has: {', '.join(catalogue.IDS)}",
            )
        elif len(path) >= 2 and path[-2] == "alternatives":
            problems.add(
                path,
                f"unknown mitigation id {_short(instance)} in alternatives; the catalogue has: "
                f"{', '.join(catalogue.IDS)}",
            )
        else:
            problems.add(path, f"{_short(instance)} is not one of: {', '.join(map(str, value))}")
    elif kind == "anyOf" and len(path) == 2 and path[0] == "rules":
        problems.add(path, "a rule needs findings, mitigations or both")
    elif kind == "pattern":
        described = schema.get("description", f"the pattern {value}")
        problems.add(path, f"{_short(instance)} is not valid: {described}")
    elif kind == "minItems":
        problems.add(path, "must not be empty" if value == 1 else f"needs at least {value} items")
    elif kind == "maxItems":
        problems.add(path, f"has more than {value} items")
    elif kind == "minProperties" and path and path[-1] == "kernel":
        problems.add(path, "needs a bound next to the scheme: ge, gt, le or lt")
    elif kind == "minProperties":
        problems.add(path, "must not be empty" if value == 1 else f"needs at least {value} keys")
    elif kind == "minLength":
        problems.add(path, "must not be empty")
    elif kind == "maxLength":
        problems.add(path, f"is longer than {value} characters")
    elif kind == "minimum":
        problems.add(path, f"{_short(instance)} is below the minimum {value}")
    elif kind == "uniqueItems":
        problems.add(path, "lists the same value twice")
    elif kind == "propertyNames":
        problems.add(path, f"{_short(instance)}: invalid parameter name")
    else:
        problems.add(
            path, error.message if len(error.message) < 200 else error.message[:197] + "..."
        )


def _check_range(
    problems: _Problems,
    path: JsonPath,
    spec: Mapping[str, Any],
    scheme: str | None,
) -> None:
    """Bounds parse (versions) and leave something between them."""
    if "ge" in spec and "gt" in spec:
        problems.add(path, "give ge or gt, not both")
    if "le" in spec and "lt" in spec:
        problems.add(path, "give le or lt, not both")
    if scheme is not None:
        bad = False
        for op in _BOUNDS:
            if op in spec:
                problem = versions.check(spec[op], scheme)
                if problem:
                    problems.add(
                        (*path, op), f"{spec[op]!r} is not a valid {scheme} version: {problem}"
                    )
                    bad = True
        if bad:
            return
    for op in _BOUNDS:
        if isinstance(spec.get(op), float) and not math.isfinite(spec[op]):
            problems.add((*path, op), f"{spec[op]!r} is not a finite number")
            return
    lower = [(op, spec[op]) for op in ("ge", "gt") if op in spec]
    upper = [(op, spec[op]) for op in ("le", "lt") if op in spec]
    for low_op, low in lower:
        for up_op, up in upper:
            order = versions.compare(low, up, scheme) if scheme else (low > up) - (low < up)
            if order > 0 or (order == 0 and (low_op == "gt" or up_op == "lt")):
                problems.add(
                    path,
                    f"empty range: {low_op} {low} and {up_op} {up} admit no "
                    f"{'version' if scheme else 'value'}",
                )


def _check_when(problems: _Problems, path: JsonPath, when: Mapping[str, Any]) -> str | None:
    """Semantic checks of one ``when:``; returns the kernel scheme, if any."""
    scheme = None
    if "kernel" in when:
        scheme = when["kernel"]["scheme"]
        _check_range(problems, (*path, "kernel"), when["kernel"], scheme)
    if "runc" in when:
        _check_range(problems, (*path, "runc"), when["runc"], "upstream")
    for key in ("dying", "dying_ratio"):
        if key in when:
            _check_range(problems, (*path, key), when[key], None)
    return scheme


def _check_template(problems: _Problems, path: JsonPath, text: str) -> None:
    rest = PLACEHOLDER.sub("", text)
    if "{" in rest or "}" in rest:
        problems.add(path, "unbalanced { or } (facts are quoted as {dotted.fact.path})")
    for match in PLACEHOLDER.finditer(text):
        if not FACT_PATH.match(match.group(1)):
            problems.add(path, f"{{{match.group(1)}}} is not a fact path such as {{memcg.dying}}")
        elif match.group(1) not in known_fact_paths():
            problems.add(
                path,
                f"{{{match.group(1)}}} is not a fact memcg-fix collects (docs/facts.md lists "
                "them; a summary would always say 'unknown')",
            )


def _resolve_params(
    problems: _Problems, path: JsonPath, spec: Mapping[str, Any], scheme: str | None
) -> dict[str, Any]:
    entry = catalogue.CATALOGUE[spec["id"]]
    given = spec.get("params") or {}
    params = entry.defaults()
    documented = ", ".join(p.name for p in entry.params) or "none"
    for name in sorted(given):
        param = entry.param(name)
        if param is None:
            problems.add(
                (*path, "params", name),
                f"unknown parameter {name!r} for {entry.id} (documented: {documented})",
            )
            continue
        problem = catalogue.param_problem(param, given[name], scheme)
        if problem:
            problems.add((*path, "params", name), f"{entry.id}.{name}: {problem}")
            continue
        params[name] = given[name]
    for param in entry.params:
        if param.required and param.name not in given:
            problems.add(
                path, f"{entry.id} needs the parameter {param.name!r} ({param.description})"
            )
    return params


def _compile(doc: Located) -> tuple[Policy | None, list[str]]:
    problems = _Problems(doc)
    data = doc.data
    for error in policy_validator().iter_errors(data):
        _schema_problem(problems, error)
    if problems.items:
        return None, problems.messages()

    rules: list[Rule] = []
    first_line: dict[str, int] = {}
    for index, raw in enumerate(data["rules"]):
        path: JsonPath = ("rules", index)
        rule_id = raw["id"]
        if rule_id in first_line:
            problems.add(
                (*path, "id"),
                f"duplicate rule id {rule_id!r} (first at line {first_line[rule_id]})",
            )
        else:
            first_line[rule_id] = doc.line_of((*path, "id"))
        scheme = _check_when(problems, (*path, "when"), raw["when"])

        findings = []
        seen_findings: set[str] = set()
        for f_index, finding in enumerate(raw.get("findings", ())):
            f_path = (*path, "findings", f_index)
            if finding["id"] in seen_findings:
                problems.add(
                    (*f_path, "id"), f"finding {finding['id']!r} is listed twice in this rule"
                )
            seen_findings.add(finding["id"])
            _check_template(problems, (*f_path, "summary"), finding["summary"])
            findings.append(
                FindingSpec(finding["id"], finding["severity"], Template.parse(finding["summary"]))
            )

        mitigations = []
        seen_mitigations: set[str] = set()
        for m_index, spec in enumerate(raw.get("mitigations", ())):
            m_path = (*path, "mitigations", m_index)
            if spec["id"] in seen_mitigations:
                problems.add(
                    (*m_path, "id"), f"mitigation {spec['id']!r} is listed twice in this rule"
                )
            seen_mitigations.add(spec["id"])
            params = _resolve_params(problems, m_path, spec, scheme)
            alternatives = tuple(
                spec.get("alternatives", catalogue.CATALOGUE[spec["id"]].alternatives)
            )
            if spec["id"] in alternatives:
                problems.add(
                    (*m_path, "alternatives"), f"{spec['id']} cannot be its own alternative"
                )
            mitigations.append(MitigationSpec(spec["id"], MappingProxyType(params), alternatives))

        rules.append(
            Rule(
                id=rule_id,
                description=" ".join(raw["description"].split()),
                conditions=tuple(conditions.build(raw["when"])),
                findings=tuple(findings),
                mitigations=tuple(mitigations),
                line=doc.line_of(path),
                on_unknown=raw.get("on_unknown", "block"),
            )
        )
    if problems.items:
        return None, problems.messages()
    policy = Policy(
        id=data["id"],
        version=data["version"],
        description=" ".join(data["description"].split()),
        rules=tuple(rules),
        sha256=hashlib.sha256(doc.raw).hexdigest(),
        source=doc.name,
    )
    return policy, []


def check(path: str | Path, display: str | None = None) -> tuple[Policy | None, list[str]]:
    """``(policy, [])`` for a valid policy file, ``(None, problems)`` otherwise.

    Problems that stop parsing (size, encoding, YAML syntax) come back as a
    single message.
    """
    try:
        doc = read(path, display)
    except PolicyError as exc:
        return None, [exc.message]
    return _compile(doc)


def load(path: str | Path, display: str | None = None) -> Policy:
    """Load a policy or raise :class:`PolicyError` with its first problem."""
    policy, problems = check(path, display)
    if policy is None:
        more = (
            f" (and {len(problems) - 1} more problem(s); run 'memcg-fix policy validate')"
            if len(problems) > 1
            else ""
        )
        raise PolicyError(problems[0] + more)
    return policy


def load_default() -> Policy:
    return load(default_policy_path())
