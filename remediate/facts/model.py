"""Typed facts of one host, as the rest of memcg-fix consumes them.

The host-side collector (``remediate/hostside``) returns plain JSON-able
dicts, because it also runs inside an Ansible module on Python 2.7. This is
the controller-side type the policy engine takes (see docs/facts.md).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Final

from ..hostside.collect import SCHEMA_VERSION as _COLLECTOR_SCHEMA_VERSION
from ..text import encodable

# the facts contract's version: the collector's, which the memcg_facts module returns too
SCHEMA_VERSION: Final[int] = _COLLECTOR_SCHEMA_VERSION


@dataclass(frozen=True)
class Unknown:
    """A fact that could not be read, and why."""

    fact: str
    reason: str

    def to_json(self) -> dict[str, str]:
        return {"fact": self.fact, "reason": self.reason}


@dataclass(frozen=True)
class HostFacts:
    """Everything memcg-fix knows about one host.

    ``error`` is set when the host could not be read at all (unreachable,
    module failure, unreadable root): its facts are then empty and every
    later stage reports it as "unknown, because <error>".
    """

    host: str
    facts: Mapping[str, Any]
    unknown: tuple[Unknown, ...] = ()
    error: str | None = None
    extra: Mapping[str, Any] = field(default_factory=dict)

    def get(self, path: str, default: Any = None) -> Any:
        """The value at a dotted path (``"memcg.dying"``), or ``default``."""
        node: Any = self.facts
        for part in path.split("."):
            if not isinstance(node, Mapping) or part not in node:
                return default
            node = node[part]
        return node

    def unknown_reason(self, path: str) -> str | None:
        """Why ``path`` (or a parent of it) is unknown, if it is."""
        for entry in self.unknown:
            if path == entry.fact or path.startswith(entry.fact + "."):
                return entry.reason
        return None

    def to_json(self) -> dict[str, Any]:
        out: dict[str, Any] = {
            "host": self.host,
            "facts": dict(self.facts),
            "unknown": [u.to_json() for u in self.unknown],
        }
        if self.error is not None:
            out["error"] = self.error
        return out

    @classmethod
    def from_json(cls, obj: Mapping[str, Any]) -> HostFacts:
        """Build from one entry of a facts document (already schema-validated)."""
        return cls(
            host=encodable(str(obj["host"])),
            facts=obj.get("facts") or {},
            unknown=tuple(
                Unknown(str(u.get("fact", "?")), str(u.get("reason", "?")))
                for u in obj.get("unknown") or ()
            ),
            error=obj.get("error"),
        )


def document(hosts: list[HostFacts], version: str) -> dict[str, Any]:
    """The JSON document of ``memcg-fix detect --format json``."""
    return {
        "schema_version": SCHEMA_VERSION,
        "memcg_fix_version": version,
        "hosts": [h.to_json() for h in hosts],
    }
