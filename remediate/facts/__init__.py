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
import tempfile
from collections.abc import Iterable, Iterator, Mapping
from functools import cache
from pathlib import Path
from typing import Any

from ..errors import InputError
from ..hostside.collect import collect
from ..hostside.kernel_log import scan_kernel_log
from ..hostside.reader import LiveReader, RootReader
from ..inputs import open_input
from . import schema
from .derive import derive
from .model import SCHEMA_VERSION, HostFacts, Unknown, document

FACTS_SCHEMA = "facts.schema.json"

# What one plan reads, all facts files together. Planning holds about five
# times its facts JSON in memory and ~9 KB per host even when a host says
# nothing (docs/benchmarks.md, P5): within these limits a plan stays under
# 2 GB; above them it is refused before anything is parsed. Split a larger
# fleet into several plans (by inventory group or --limit).
MAX_FACTS_HOSTS = 100_000
MAX_FACTS_BYTES = 320 * 1024 * 1024

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


@cache
def known_fact_paths() -> frozenset[str]:
    """Every dotted fact path memcg-fix reports (``memcg.dying``...).

    Taken from the collector itself: an empty host root gives every section
    with all its keys (unknown), and an empty log every kernel-log signature;
    derived facts are added as for any host. So the list cannot drift from
    what is collected (docs/facts.md describes each).
    """
    with tempfile.TemporaryDirectory(prefix="memcg-fix-paths-") as empty:
        collected = collect(RootReader(empty))
    facts, _unknown = derive(collected["facts"], collected["unknown"])
    if isinstance(facts.get("kernel_log"), dict):
        facts["kernel_log"]["signatures"] = scan_kernel_log("")

    def walk(node: Any, prefix: str) -> Iterator[str]:
        if isinstance(node, Mapping):
            for key, value in node.items():
                path = f"{prefix}.{key}" if prefix else str(key)
                yield path
                yield from walk(value, path)

    return frozenset(walk(facts, ""))


def from_module_result(host: str, result: Mapping[str, Any],
                       action: str = "memcg_facts") -> HostFacts:
    """HostFacts from an Ansible result of ``memcg_facts`` (or ``memcg_facts_raw``:
    the same result), checked against the facts schema like a facts file."""
    if not isinstance(result, Mapping):
        return HostFacts(host=host, facts={}, error=f"{action} returned no result")
    if result.get("unreachable"):
        # run.py's message may already say so: "unreachable: unreachable: ..." helps nobody
        message = _one_line(result.get("msg")).removeprefix("unreachable: ")
        return HostFacts(host=host, facts={}, error=f"unreachable: {message}")
    if result.get("failed"):
        return HostFacts(host=host, facts={},
                         error=f"{action} failed: {_one_line(result.get('msg'))}")
    hf = _from_collected(host, {"facts": result.get("facts"),
                                "unknown": result.get("unknown")})
    if hf.error:
        return HostFacts(host=host, facts={}, error=f"{action}: {hf.error}")
    problem = schema.first_error(FACTS_SCHEMA, {"schema_version": SCHEMA_VERSION,
                                                "hosts": [hf.to_json()]})
    if problem is not None:
        where = problem[0].replace("$.hosts[0]", "$", 1)
        return HostFacts(host=host, facts={},
                         error=f"{action} returned facts that break the facts schema: "
                               f"{where}: {_one_line(problem[1])}")
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
    budget = _Budget()
    for path in paths:
        where = str(path)
        try:
            with open_input(path) as handle:
                doc = _read_json_object(handle, where, budget)
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
        except ValueError as exc:  # a number too long to convert (4300 digits and more)
            raise InputError(f"{where}: not a facts document: {_number_problem(exc)}") from None
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


class _Budget:
    """What the facts files of one plan may still hold (bytes, host entries)."""

    def __init__(self) -> None:
        self.bytes = MAX_FACTS_BYTES
        self.hosts = MAX_FACTS_HOSTS


def _read_json_object(handle: Any, where: str, budget: _Budget) -> Any:
    """The JSON in ``handle``, refusing at once a file that cannot hold an object.

    A facts file is a JSON object; anything else (binary data, a 1 GB file of
    zeros) is refused after its first bytes instead of after reading it all.
    The file is read once, so a pipe works, and at most up to the budget:
    more bytes, or more host entries, than one plan takes are refused before
    anything is parsed. A UTF-8 byte order mark is skipped.
    """
    raw = handle.read(4096)
    if raw.startswith(b"\xef\xbb\xbf"):
        raw = raw[3:]
    elif raw[:2] in (b"\xff\xfe", b"\xfe\xff"):
        raise InputError(f"{where}: cannot read: it is UTF-16; save it as UTF-8")
    first = raw.lstrip()[:1]
    if first and first not in b"{[":
        raise InputError(f"{where}: not a facts document: it does not start with a JSON object")
    raw += handle.read(max(budget.bytes - len(raw), 0) + 1)
    if len(raw) > budget.bytes:
        raise InputError(
            f"{where}: the facts files of one plan may hold {MAX_FACTS_BYTES >> 20} MiB in all, "
            "and this one goes past it; plan the fleet in parts (by inventory group or --limit)")
    budget.bytes -= len(raw)
    # every host entry has its own "facts" key; a JSON string cannot hold an
    # unescaped quote, so this counts host entries (or a few more), never fewer
    entries = raw.count(b'"facts"')
    if entries > budget.hosts:
        raise InputError(
            f"{where}: one plan takes at most {MAX_FACTS_HOSTS:,} hosts, and these facts "
            f"files hold more (about {MAX_FACTS_HOSTS - budget.hosts + entries:,}); plan the "
            "fleet in parts (by inventory group or --limit)")
    budget.hosts -= entries
    return json.loads(raw.decode("utf-8"))


def _number_problem(exc: ValueError) -> str:
    text = str(exc)
    if "digits" in text:
        return "it holds a number with more than 4300 digits"
    return " ".join(text.split())[:200]


def _has_derived(facts: Mapping[str, Any]) -> bool:
    kernel = facts.get("kernel")
    return isinstance(kernel, Mapping) and "nokmem_supported" in kernel
