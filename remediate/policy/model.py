"""A loaded, validated policy: rules with compiled conditions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..plan import PolicyRef
from .conditions import Condition, lookup, show

# "{kernel_log.signatures.kmem_cache_close.caches}" in a finding's summary
PLACEHOLDER: Final = re.compile(r"\{([^{}]*)\}")
FACT_PATH: Final = re.compile(r"^[a-z][a-z0-9_]*(\.[a-z0-9_]+)*$")


@dataclass(frozen=True)
class Template:
    """A finding summary that quotes facts: literal text and fact paths, alternating."""

    pieces: tuple[str | tuple[str, ...], ...]

    @classmethod
    def parse(cls, text: str) -> Template:
        pieces: list[str | tuple[str, ...]] = []
        last = 0
        for match in PLACEHOLDER.finditer(text):
            pieces.append(text[last : match.start()])
            pieces.append(tuple(match.group(1).split(".")))
            last = match.end()
        pieces.append(text[last:])
        return cls(tuple(p for p in pieces if p != ""))

    def render(self, facts: Mapping[str, Any]) -> str:
        out = []
        for piece in self.pieces:
            if isinstance(piece, str):
                out.append(piece)
            else:
                _present, value = lookup(facts, piece)
                out.append("unknown" if value is None else show(value))
        return "".join(out)


@dataclass(frozen=True)
class FindingSpec:
    id: str
    severity: str
    summary: Template


@dataclass(frozen=True)
class MitigationSpec:
    id: str
    params: Mapping[str, Any] = field(hash=False)  # defaults filled in, validated
    alternatives: tuple[str, ...]


@dataclass(frozen=True)
class Rule:
    id: str
    description: str
    conditions: tuple[Condition, ...]
    findings: tuple[FindingSpec, ...]
    mitigations: tuple[MitigationSpec, ...]
    line: int = 0
    on_unknown: str = "block"  # "ignore": this rule's unknown facts leave the host decided

    @property
    def blocks_when_unknown(self) -> bool:
        """Whether this rule, not evaluated, leaves the host undecided.

        It does when it could plan a mitigation or raise a finding of
        severity warning or above, unless the policy says ``on_unknown: ignore``.
        """
        if self.on_unknown == "ignore":
            return False
        return bool(self.mitigations) or any(f.severity != "info" for f in self.findings)


@dataclass(frozen=True)
class Policy:
    id: str
    version: str
    description: str
    rules: tuple[Rule, ...]
    sha256: str
    source: str = ""

    @property
    def ref(self) -> PolicyRef:
        return PolicyRef(self.id, self.version, self.sha256)
