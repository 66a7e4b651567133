"""Facts: collect (local, host root, Ansible) and load (facts files).

Public API:

* ``collect_local(host=None) -> HostFacts``: this machine, read live.
* ``collect_root(path, host=None) -> HostFacts``: a host root (mounted image,
  chroot or extracted sosreport); nothing outside ``path`` is read.
* ``load_facts_files(paths) -> list[HostFacts]``: JSON from
  ``memcg-fix detect --format json``, validated against the shipped schema.
* ``from_module_result(host, result) -> HostFacts``: the result of the
  role's ``memcg_facts`` module for one host (failed or unreachable hosts
  become a ``HostFacts`` with ``error`` set).

All four apply :func:`~remediate.facts.derive.derive`, so derived facts
(``kernel.nokmem_supported``...) are computed in one place.
"""

from __future__ import annotations

import json
import os
import socket
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..hostside.collect import collect
from ..hostside.reader import LiveReader, RootReader
from . import schema
from .derive import derive
from .model import SCHEMA_VERSION, HostFacts, Unknown, document

FACTS_SCHEMA = "facts.schema.json"

__all__ = [
    "SCHEMA_VERSION",
    "HostFacts",
    "Unknown",
    "collect_local",
    "collect_root",
    "document",
    "from_module_result",
    "load_facts_files",
    "validate_document",
]


def _unknowns(raw: Iterable[Any]) -> tuple[Unknown, ...]:
    out = []
    for item in raw or ():
        if isinstance(item, Mapping):
            out.append(Unknown(str(item.get("fact", "?")), str(item.get("reason", "?"))))
    return tuple(out)


def _from_collected(host: str | None, collected: Mapping[str, Any]) -> HostFacts:
    raw_facts = collected.get("facts")
    if not isinstance(raw_facts, Mapping):
        return HostFacts(host=host or "unknown", facts={}, error="the collector returned no facts")
    facts, unknown = derive(raw_facts, list(collected.get("unknown") or []))
    if not host:
        section = facts.get("host")
        host = section.get("hostname") if isinstance(section, Mapping) else None
    return HostFacts(host=str(host or "unknown"), facts=facts, unknown=_unknowns(unknown))


def collect_local(host: str | None = None) -> HostFacts:
    """Facts of this machine, read live (may run read-only commands)."""
    return _from_collected(host or socket.gethostname(), collect(LiveReader()))


def collect_root(path: str | os.PathLike[str], host: str | None = None) -> HostFacts:
    """Facts of the host root at ``path``; raises InputError if it is no directory."""
    root = Path(path)
    if not root.is_dir():
        raise InputError(f"--root {str(path)!r} is not a directory")
    return _from_collected(host, collect(RootReader(str(root))))


def from_module_result(host: str, result: Mapping[str, Any]) -> HostFacts:
    """HostFacts from an Ansible result of the ``memcg_facts`` module."""
    if not isinstance(result, Mapping):
        return HostFacts(host=host, facts={}, error="the module returned no result")
    if result.get("unreachable"):
        return HostFacts(host=host, facts={},
                         error=f"unreachable: {_one_line(result.get('msg'))}")
    if result.get("failed"):
        return HostFacts(host=host, facts={},
                         error=f"memcg_facts failed: {_one_line(result.get('msg'))}")
    hf = _from_collected(host, {"facts": result.get("facts"),
                                "unknown": result.get("unknown")})
    if hf.error:
        return HostFacts(host=host, facts={}, error=f"memcg_facts: {hf.error}")
    return hf


def _one_line(value: Any) -> str:
    return " ".join(str(value or "no message").split())


def validate_document(doc: Any, where: str) -> None:
    """Raise InputError naming ``where`` and the JSON path of the first problem."""
    if not isinstance(doc, dict):
        raise InputError(f"{where}: a facts document must be a JSON object")
    version = doc.get("schema_version")
    if version != SCHEMA_VERSION:
        if isinstance(version, int) and not isinstance(version, bool):
            raise InputError(
                f"{where}: facts schema_version {version} is not supported; this memcg-fix "
                f"reads schema_version {SCHEMA_VERSION} (use a matching memcg-fix release)")
        raise InputError(f"{where}: $.schema_version: expected {SCHEMA_VERSION}, got {version!r}")
    problem = schema.first_error(FACTS_SCHEMA, doc)
    if problem is not None:
        raise InputError(f"{where}: {problem[0]}: {problem[1]}")


def load_facts_files(paths: Iterable[str | os.PathLike[str]]) -> list[HostFacts]:
    """Hosts from facts files (a document, or a single host entry each).

    Host names must be unique across all files.
    """
    hosts: list[HostFacts] = []
    seen: dict[str, str] = {}
    for path in paths:
        where = str(path)
        try:
            with open(path, encoding="utf-8") as handle:
                doc = _read_json_object(handle, where)
        except FileNotFoundError:
            raise InputError(f"{where}: no such facts file") from None
        except IsADirectoryError:
            raise InputError(f"{where}: is a directory, not a facts file") from None
        except json.JSONDecodeError as exc:
            raise InputError(f"{where}: not JSON ({exc.msg} at line {exc.lineno} column "
                             f"{exc.colno})") from None
        except RecursionError:
            raise InputError(f"{where}: not a facts document: JSON nested too deeply") from None
        except (OSError, UnicodeDecodeError) as exc:
            raise InputError(f"{where}: cannot read: {exc}") from None
        if isinstance(doc, dict) and "hosts" not in doc and "host" in doc:
            doc = {"schema_version": SCHEMA_VERSION, "hosts": [doc]}
        try:
            hosts.extend(_hosts_of(doc, where, seen))
        except RecursionError:
            # JSON that parses can still be nested deeper than copying it allows
            raise InputError(f"{where}: not a facts document: JSON nested too deeply") from None
    return hosts


def _hosts_of(doc: Any, where: str, seen: dict[str, str]) -> list[HostFacts]:
    validate_document(doc, where)
    hosts = []
    for entry in doc["hosts"]:
        hf = HostFacts.from_json(entry)
        name = hf.host
        if name in seen:
            raise InputError(f"{where}: host {name!r} is also in {seen[name]}")
        seen[name] = where
        if hf.error is None and not _has_derived(hf.facts):
            facts, unknown = derive(hf.facts, [u.to_json() for u in hf.unknown])
            hf = HostFacts(host=hf.host, facts=facts, unknown=_unknowns(unknown))
        hosts.append(hf)
    return hosts


def _read_json_object(handle: Any, where: str) -> Any:
    """The JSON in ``handle``, refusing at once a file that cannot hold an object.

    A facts file is a JSON object; anything else (binary data, a 1 GB file of
    zeros) is refused after its first bytes instead of after reading it all.
    The file is still read once, so a pipe works.
    """
    head = handle.read(4096)
    first = head.lstrip()[:1]
    if first and first not in "{[":
        raise InputError(f"{where}: not a facts document: it does not start with a JSON object")
    return json.loads(head + handle.read())


def _has_derived(facts: Mapping[str, Any]) -> bool:
    kernel = facts.get("kernel")
    return isinstance(kernel, Mapping) and "nokmem_supported" in kernel
