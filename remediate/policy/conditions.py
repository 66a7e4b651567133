"""The closed set of conditions a rule can put under ``when:``.

Each condition reads one or a few facts (docs/facts.md) and answers
``match``, ``miss`` or ``unknown``, with a short text that quotes the facts
and their values. That text is what ``--explain`` shows and what a
mitigation's rationale quotes. A condition that needs a fact the host could
not report answers ``unknown`` with the collector's reason; it never guesses.

Results that depend only on a fact's value (a kernel string compared with a
bound, a family looked up in a list) are cached per distinct value, because a
fleet repeats the same few kernels thousands of times.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Any, Final

from .. import versions
from ..errors import InputError
from ..facts.model import HostFacts, Unknown

MATCH: Final = "match"
MISS: Final = "miss"
UNKNOWN: Final = "unknown"

_MAX_SHOWN = 120  # characters of a fact value quoted in an explanation


@dataclass(frozen=True)
class Outcome:
    state: str  # MATCH, MISS or UNKNOWN
    text: str
    unknown: tuple[Unknown, ...] = ()


def show(value: Any) -> str:
    """A fact value as an explanation quotes it: short, and one line."""
    if value is None:
        text = "null"
    elif isinstance(value, bool):
        text = "true" if value else "false"
    elif isinstance(value, (list, tuple)):
        shown = [show(v) for v in value[:10]]
        more = f", and {len(value) - 10} more" if len(value) > 10 else ""
        text = "[" + ", ".join(shown) + more + "]"
    else:
        text = str(value)
    text = " ".join(text.split())
    if len(text) > _MAX_SHOWN:
        text = text[: _MAX_SHOWN - 3] + "..."
    return text


def lookup(facts: Mapping[str, Any], parts: tuple[str, ...]) -> tuple[bool, Any]:
    """``(present, value)`` of the fact at ``parts`` (``("memcg", "dying")``)."""
    node: Any = facts
    try:
        for part in parts:
            node = node[part]
    except (KeyError, TypeError, IndexError):
        # absent, or a parent that is not a mapping ("kernel": "oops")
        return False, None
    return True, node


def unknown_outcome(host: HostFacts, path: str, present: bool) -> Outcome:
    reason = host.unknown_reason(path)
    if reason is None:
        reason = "it is null in the facts" if present else "it is not in the facts"
    return Outcome(UNKNOWN, f"{path} unknown because {reason}", (Unknown(path, reason),))


class Condition:
    """One entry of a rule's ``when:``; ``key`` is its name there."""

    key: str = ""

    def evaluate(self, host: HostFacts) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError


class _SingleFact(Condition):
    """A condition on one fact whose outcome depends only on the fact's value."""

    def __init__(self, key: str, path: str) -> None:
        self.key = key
        self.path = path
        self.parts = tuple(path.split("."))
        self._cache: dict[tuple[type, Any], Outcome] = {}

    def judge(self, value: Any) -> Outcome:  # pragma: no cover - abstract
        raise NotImplementedError

    def evaluate(self, host: HostFacts) -> Outcome:
        present, value = lookup(host.facts, self.parts)
        if value is None:
            return unknown_outcome(host, self.path, present)
        key = (type(value), value)  # True and 1 are equal keys, but not the same fact
        try:
            cached = self._cache.get(key)
        except TypeError:  # an unhashable value (a list where a string belongs)
            return self.judge(value)
        if cached is not None:
            return cached
        outcome = self.judge(value)
        if len(self._cache) < 4096:
            self._cache[key] = outcome
        return outcome


class OneOf(_SingleFact):
    """``family: [rhel]``: the fact is one of the listed strings."""

    def __init__(self, key: str, path: str, allowed: list[str]) -> None:
        super().__init__(key, path)
        self.allowed = frozenset(allowed)
        self.listing = "[" + ", ".join(allowed) + "]"

    def judge(self, value: Any) -> Outcome:
        if isinstance(value, str) and value in self.allowed:
            return Outcome(MATCH, f"{self.path}={show(value)} is in {self.listing}")
        return Outcome(MISS, f"{self.path}={show(value)} is not in {self.listing}")


class Flag(_SingleFact):
    """``kmem_active: true``: a true/false fact has the given value."""

    def __init__(self, key: str, path: str, expected: bool) -> None:
        super().__init__(key, path)
        self.expected = expected

    def judge(self, value: Any) -> Outcome:
        if not isinstance(value, bool):
            return Outcome(
                UNKNOWN,
                f"{self.path} unknown because its value {show(value)} is not true/false",
                (Unknown(self.path, f"unexpected value {show(value)}"),),
            )
        state = MATCH if value is self.expected else MISS
        return Outcome(state, f"{self.path}={show(value)}")


class Combined(Condition):
    """A true/false derived from several flags: ``any`` (or) or ``all`` (and).

    ``nokmem_everywhere`` is ``all`` of cmdline.nokmem and
    boot.nokmem_all_entries; ``pam_lastlog.writes_any`` is ``any`` of the
    wtmp and lastlog writes. One known decisive flag is enough: nokmem
    missing from the cmdline makes "nokmem everywhere" false even when the
    boot entries could not be read.
    """

    def __init__(self, key: str, label: str, paths: list[str], mode: str, expected: bool) -> None:
        self.key = key
        self.label = label
        self.paths = [(p, tuple(p.split("."))) for p in paths]
        self.mode = mode
        self.expected = expected

    def evaluate(self, host: HostFacts) -> Outcome:
        decisive = self.mode == "any"  # the value that settles an "or" is true, an "and" false
        seen: list[str] = []
        missing: list[Outcome] = []
        for path, parts in self.paths:
            present, value = lookup(host.facts, parts)
            if not isinstance(value, bool):
                missing.append(unknown_outcome(host, path, present))
                continue
            seen.append(f"{path}={show(value)}")
            if value is decisive:
                state = MATCH if decisive is self.expected else MISS
                return Outcome(state, f"{self.label}={show(decisive)} ({path}={show(value)})")
        if missing:
            unknown = tuple(u for o in missing for u in o.unknown)
            return Outcome(UNKNOWN, "; ".join(o.text for o in missing), unknown)
        value = not decisive
        state = MATCH if value is self.expected else MISS
        return Outcome(state, f"{self.label}={show(value)} ({', '.join(seen)})")


_OPS: Final[dict[str, tuple[str, Callable[[int], bool]]]] = {
    "ge": (">=", lambda c: c >= 0),
    "gt": (">", lambda c: c > 0),
    "le": ("<=", lambda c: c <= 0),
    "lt": ("<", lambda c: c < 0),
}
_NEGATED: Final = {"ge": "<", "gt": "<=", "le": ">", "lt": ">="}


def _sign(a: float, b: float) -> int:
    return (a > b) - (a < b)


class VersionRange(_SingleFact):
    """``kernel: {scheme: rpm, ge: ..., lt: ...}`` and ``runc: {lt: ...}``.

    For rpm and dpkg the fact is ``kernel.package_version`` and the host's
    ``kernel.version_scheme`` must be the same scheme (an rpm bound says
    nothing about a Debian kernel); upstream compares ``upstream_version``.
    """

    def __init__(
        self,
        key: str,
        path: str,
        scheme: str,
        bounds: list[tuple[str, str]],
        scheme_path: str | None = None,
    ) -> None:
        super().__init__(key, path)
        self.scheme = scheme
        self.bounds = bounds
        self.scheme_path = scheme_path
        self.scheme_parts = tuple(scheme_path.split(".")) if scheme_path else ()

    def evaluate(self, host: HostFacts) -> Outcome:
        if self.scheme_path:
            present, scheme = lookup(host.facts, self.scheme_parts)
            if scheme is None:
                return unknown_outcome(host, self.scheme_path, present)
            if scheme != self.scheme:
                return Outcome(
                    MISS,
                    f"{self.scheme_path}={show(scheme)}, the rule compares {self.scheme} versions",
                )
        return super().evaluate(host)

    def judge(self, value: Any) -> Outcome:
        if not isinstance(value, str):
            value = str(value)
        # rpm and dpkg order nearly any string; a package version with spaces or
        # stray characters is not one, and ordering it would be a guess
        problem = versions.check(value, self.scheme) if self.scheme != "upstream" else None
        if problem:
            reason = f"{show(value)} is not a valid {self.scheme} version: {problem}"
            return Outcome(
                UNKNOWN, f"{self.path} unknown because {reason}", (Unknown(self.path, reason),)
            )
        try:
            for op, bound in self.bounds:
                if not _OPS[op][1](versions.compare(value, bound, self.scheme)):
                    return Outcome(
                        MISS, f"{self.path}={show(value)} {_NEGATED[op]} {bound} ({self.scheme})"
                    )
        except InputError as exc:
            reason = f"{show(value)} cannot be ordered as {self.scheme}: {exc.message}"
            return Outcome(
                UNKNOWN, f"{self.path} unknown because {reason}", (Unknown(self.path, reason),)
            )
        ranges = " and ".join(f"{_OPS[op][0]} {bound}" for op, bound in self.bounds)
        return Outcome(MATCH, f"{self.path}={show(value)} {ranges} ({self.scheme})")


class ToolVersion(VersionRange):
    """``runc: {lt: ...}``: a tool that is not installed is out of range, not unknown.

    The collector reports ``runc.installed: false`` when no runc binary and no
    runc package exist (docs/facts.md): there is then nothing to upgrade, and
    the rule does not match. Only an installed runc whose version cannot be
    read leaves the rule not evaluated.
    """

    def __init__(self, key: str, path: str, bounds: list[tuple[str, str]]) -> None:
        super().__init__(key, path, "upstream", bounds)
        self.installed_path = path.rsplit(".", 1)[0] + ".installed"
        self.installed_parts = tuple(self.installed_path.split("."))

    def evaluate(self, host: HostFacts) -> Outcome:
        _present, installed = lookup(host.facts, self.installed_parts)
        if installed is False:
            return Outcome(MISS, f"{self.installed_path}=false")
        return super().evaluate(host)


class NumberRange(_SingleFact):
    """``dying: {ge: 1000}``: an integer fact within bounds."""

    def __init__(self, key: str, path: str, bounds: list[tuple[str, float]]) -> None:
        super().__init__(key, path)
        self.bounds = bounds

    def judge(self, value: Any) -> Outcome:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            reason = f"its value {show(value)} is not a number"
            return Outcome(
                UNKNOWN, f"{self.path} unknown because {reason}", (Unknown(self.path, reason),)
            )
        for op, bound in self.bounds:
            if not _OPS[op][1](_sign(value, bound)):
                return Outcome(MISS, f"{self.path}={value} {_NEGATED[op]} {bound}")
        ranges = " and ".join(f"{_OPS[op][0]} {bound}" for op, bound in self.bounds)
        return Outcome(MATCH, f"{self.path}={value} {ranges}")


class Ratio(Condition):
    """``dying_ratio: {ge: 0.5}``: memcg.dying / memcg.live within bounds."""

    def __init__(self, key: str, bounds: list[tuple[str, float]]) -> None:
        self.key = key
        self.bounds = bounds

    def evaluate(self, host: HostFacts) -> Outcome:
        values = []
        for path in ("memcg.dying", "memcg.live"):
            present, value = lookup(host.facts, tuple(path.split(".")))
            if value is None:
                return unknown_outcome(host, path, present)
            if isinstance(value, bool) or not isinstance(value, int):
                reason = f"its value {show(value)} is not a count"
                return Outcome(
                    UNKNOWN, f"{path} unknown because {reason}", (Unknown(path, reason),)
                )
            values.append(value)
        dying, live = values
        if live <= 0:
            reason = f"memcg.live={live}, so dying/live has no value"
            return Outcome(
                UNKNOWN, f"memcg.live unknown because {reason}", (Unknown("memcg.live", reason),)
            )
        ratio = dying / live
        quoted = f"memcg.dying/memcg.live={dying}/{live}={ratio:.2f}"
        for op, bound in self.bounds:
            if not _OPS[op][1](_sign(ratio, bound)):
                return Outcome(MISS, f"{quoted} {_NEGATED[op]} {bound}")
        ranges = " and ".join(f"{_OPS[op][0]} {bound}" for op, bound in self.bounds)
        return Outcome(MATCH, f"{quoted} {ranges}")


class Signature(Condition):
    """``kernel_log: {signature: kmem_cache_close}``: the signature was seen in the log.

    A collector that read the log but did not see the signature may leave
    it out: that counts as zero, not as unknown.
    """

    def __init__(self, key: str, signature: str, min_count: int) -> None:
        self.key = key
        self.signature = signature
        self.min_count = min_count
        self.path = f"kernel_log.signatures.{signature}.count"

    def evaluate(self, host: HostFacts) -> Outcome:
        present, signatures = lookup(host.facts, ("kernel_log", "signatures"))
        if not isinstance(signatures, Mapping):
            return unknown_outcome(host, "kernel_log.signatures", present)
        entry = signatures.get(self.signature)
        if entry is None:
            count: Any = 0
        elif isinstance(entry, Mapping):
            count = entry.get("count")
        else:
            count = None
        if count is None:
            return unknown_outcome(host, self.path, entry is not None)
        if isinstance(count, bool) or not isinstance(count, int):
            reason = f"its value {show(count)} is not a count"
            return Outcome(
                UNKNOWN, f"{self.path} unknown because {reason}", (Unknown(self.path, reason),)
            )
        if count >= self.min_count:
            return Outcome(MATCH, f"{self.path}={count} >= {self.min_count}")
        return Outcome(MISS, f"{self.path}={count} < {self.min_count}")


# The pam_lastlog sub-keys and the facts they read.
PAM_FLAGS: Final = {
    "active": "pam.lastlog_active",
    "writes_wtmp": "pam.lastlog_writes_wtmp",
    "writes_lastlog": "pam.lastlog_writes_lastlog",
    "authselect_managed": "pam.authselect_managed",
    # per service (sshd, login), through the stack's control flow, after pam_systemd
    "writes_in_session": "pam.lastlog_writes_in_session",
}


# The reaper sub-keys (memcg-fix's own reaper on the host) and their facts.
REAPER_FLAGS: Final = {
    "reclaim": "memcg_fix.reaper_reclaim",
    "drop_caches": "memcg_fix.reaper_drop_caches",
}


def build(when: Mapping[str, Any]) -> list[Condition]:
    """Compile a rule's (already validated) ``when:`` mapping, in a fixed order."""
    conditions: list[Condition] = []
    for key in when:
        spec = when[key]
        if key == "family":
            conditions.append(OneOf(key, "kernel.family", spec))
        elif key == "el_tag":
            conditions.append(OneOf(key, "kernel.el_tag", spec))
        elif key == "distro":
            conditions.append(OneOf(key, "distro.id", spec))
        elif key == "cgroup_mode":
            conditions.append(OneOf(key, "cgroup.mode", spec))
        elif key == "memory_controller":
            conditions.append(OneOf(key, "cgroup.memory_controller", spec))
        elif key == "kernel":
            scheme = spec["scheme"]
            bounds = [(op, spec[op]) for op in ("ge", "gt", "le", "lt") if op in spec]
            if scheme == "upstream":
                conditions.append(VersionRange(key, "kernel.upstream_version", scheme, bounds))
            else:
                conditions.append(
                    VersionRange(
                        key, "kernel.package_version", scheme, bounds, "kernel.version_scheme"
                    )
                )
        elif key == "runc":
            bounds = [(op, spec[op]) for op in ("ge", "gt", "le", "lt") if op in spec]
            conditions.append(ToolVersion(key, "runc.version", bounds))
        elif key == "dying":
            bounds_n = [(op, spec[op]) for op in ("ge", "gt", "le", "lt") if op in spec]
            conditions.append(NumberRange(key, "memcg.dying", bounds_n))
        elif key == "dying_ratio":
            bounds_n = [(op, spec[op]) for op in ("ge", "gt", "le", "lt") if op in spec]
            conditions.append(Ratio(key, bounds_n))
        elif key == "reclaim_interface":
            conditions.append(OneOf(key, "reclaim.interface", spec))
        elif key == "cmdline_nokmem":
            conditions.append(Flag(key, "cmdline.nokmem", spec))
        elif key == "boot_nokmem_all_entries":
            conditions.append(Flag(key, "boot.nokmem_all_entries", spec))
        elif key == "nokmem_everywhere":
            conditions.append(
                # honoured everywhere: on the running cmdline, on every boot entry,
                # and by this kernel (el7 before 1062.4.1 ignores it)
                Combined(
                    key,
                    "nokmem_everywhere",
                    ["cmdline.nokmem", "boot.nokmem_all_entries", "kernel.nokmem_supported"],
                    "all",
                    spec,
                )
            )
        elif key == "kmem_active":
            conditions.append(Flag(key, "kmem.accounting_active", spec))
        elif key == "reaper":
            for sub in spec:
                conditions.append(Flag(f"reaper.{sub}", REAPER_FLAGS[sub], spec[sub]))
        elif key == "pam_lastlog":
            for sub in spec:
                if sub == "writes_any":
                    conditions.append(
                        Combined(
                            "pam_lastlog.writes_any",
                            "pam_lastlog.writes_any",
                            ["pam.lastlog_writes_wtmp", "pam.lastlog_writes_lastlog"],
                            "any",
                            spec[sub],
                        )
                    )
                else:
                    conditions.append(Flag(f"pam_lastlog.{sub}", PAM_FLAGS[sub], spec[sub]))
        elif key == "kernel_log":
            conditions.append(Signature(key, spec["signature"], spec.get("min_count", 1)))
        else:  # pragma: no cover - the schema admits only the keys above
            raise AssertionError(f"unknown condition {key}")
    return conditions
