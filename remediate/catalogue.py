"""The closed catalogue of mitigations: the only things a plan can ask for.

A policy selects mitigations by id and may set their documented parameters;
it can never name a command. The role implements exactly these ids
(``tasks/<id>.yml``) and takes exactly these parameters.

This module is the one source of the ids, their order, parameters, reboot
and risk. The JSON Schemas' enums, the role's argument specs and private
vars and the table in docs/design.md are written from it by
``python -m tests.catalogue_files --write``, and a test fails when any of
them drifts (docs/extending.md: what adding a mitigation takes).

``ORDER`` is the fixed order of mitigations inside one host's plan, the
order of the entries below: a kernel upgrade first (nokmem must land on the
new kernel's boot entry too), then the boot argument, then the cheap
user-space fixes, and the global page-cache drop last because it is the
most disruptive.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import Any, Final

from . import versions

RISKS: Final = ("low", "medium", "high")
DISRUPTIONS: Final = ("none", "low", "high", "reboot")


@dataclass(frozen=True)
class Param:
    """One documented parameter of a mitigation.

    ``kind`` is one of ``string``, ``integer``, ``boolean``, ``choice``
    (one of ``choices``), ``version`` (a version in ``scheme``, or in any
    scheme when ``scheme`` is None) or ``timespan`` (systemd syntax, ``5min``).
    """

    name: str
    kind: str
    description: str
    default: Any = None
    required: bool = False
    choices: tuple[str, ...] = ()
    minimum: int | None = None
    scheme: str | None = None


@dataclass(frozen=True)
class Mitigation:
    id: str
    summary: str
    needs_reboot: bool
    risk: str
    disruption: str
    disruption_detail: str
    alternatives: tuple[str, ...]
    params: tuple[Param, ...] = ()

    @property
    def order(self) -> int:
        return ORDER.index(self.id)

    def param(self, name: str) -> Param | None:
        for param in self.params:
            if param.name == name:
                return param
        return None

    def defaults(self) -> dict[str, Any]:
        """Parameters a plan carries when the policy does not set them.

        A parameter without a default is left out, and the role decides
        (``kernel-upgrade``'s package depends on the host's family).
        """
        return {p.name: p.default for p in self.params if p.default is not None}


_CATALOGUE: Final = (
    Mitigation(
        id="kernel-upgrade",
        summary="install a kernel at or above a minimum build and make it the default entry",
        needs_reboot=True,
        risk="high",
        disruption="reboot",
        disruption_detail="the host reboots into the new kernel",
        alternatives=("runc-upgrade",),
        params=(
            Param(
                "min_version",
                "version",
                "lowest acceptable kernel package version, in the family's package "
                "scheme (rpm: 3.10.0-1127.el7; dpkg: 6.1.76-1)",
                required=True,
            ),
            Param(
                "package",
                "choice",
                "kernel package name; when left out the role picks the family's "
                "(kernel on EL, linux-image-<arch> on Debian)",
                choices=(
                    "kernel",
                    "kernel-core",
                    "linux-image-amd64",
                    "linux-image-arm64",
                    "linux-image-generic",
                ),
            ),
        ),
    ),
    Mitigation(
        id="nokmem",
        summary="add cgroup.memory=nokmem to every boot entry (and the defaults new "
        "kernels take their arguments from)",
        needs_reboot=True,
        risk="medium",
        disruption="reboot",
        disruption_detail="takes effect at the next boot; kernel memory is no longer "
        "charged to v1 memory cgroups",
        alternatives=("runc-upgrade", "kernel-upgrade"),
    ),
    Mitigation(
        id="pam-lastlog",
        summary="stop pam_lastlog writing wtmp/lastlog from inside session scopes "
        "(through authselect on EL8/9)",
        needs_reboot=False,
        risk="low",
        disruption="low",
        disruption_detail="logins are no longer recorded in lastlog (noupdate) or "
        "wtmp (nowtmp); sessions are not interrupted",
        alternatives=("reclaim-before-rmdir",),
        params=(
            Param(
                "method",
                "choice",
                "noupdate: keep the module, stop both writes; nowtmp: stop wtmp "
                "writes only; comment: disable the pam_lastlog line",
                default="noupdate",
                choices=("noupdate", "nowtmp", "comment"),
            ),
        ),
    ),
    Mitigation(
        id="runc-upgrade",
        summary="upgrade runc to a release that no longer turns kmem accounting on",
        needs_reboot=False,
        risk="low",
        disruption="none",
        disruption_detail="running containers keep going; new containers use the upgraded runc",
        alternatives=("nokmem",),
        params=(
            Param(
                "min_version",
                "version",
                "lowest acceptable runc version",
                default="1.0.0-rc94",
                scheme="upstream",
            ),
            Param(
                "package",
                "choice",
                "runc package name",
                default="runc",
                choices=("runc", "containerd.io"),
            ),
        ),
    ),
    Mitigation(
        id="reclaim-before-rmdir",
        summary="install the helper and reaper that reclaim a memory cgroup before it "
        "is removed (v1 memory.force_empty, v2 memory.reclaim)",
        needs_reboot=False,
        risk="low",
        disruption="low",
        disruption_detail="a short reclaim of the removed group's own page cache",
        alternatives=("drop-caches",),
        params=(
            Param(
                "grace_seconds",
                "integer",
                "leave groups emptied less than this long ago alone",
                default=300,
                minimum=0,
            ),
            Param(
                "min_charge_bytes",
                "integer",
                "skip groups charged less than this",
                default=1048576,
                minimum=0,
            ),
            Param("interval", "timespan", "how often the reaper runs", default="5min"),
            Param(
                "dry_run",
                "boolean",
                "report what would be reclaimed, change nothing",
                default=False,
            ),
        ),
    ),
    Mitigation(
        id="drop-caches",
        summary="guarded, rate-limited drop of clean page cache when dying memory cgroups pile up",
        needs_reboot=False,
        risk="medium",
        disruption="high",
        disruption_detail="every process on the host re-reads its files from disk after the drop",
        alternatives=("reclaim-before-rmdir",),
        params=(
            Param(
                "dying_threshold",
                "integer",
                "drop only at or above this many dying memory cgroups",
                default=5000,
                minimum=1,
            ),
            Param(
                "min_interval_seconds",
                "integer",
                "at most one drop per this many seconds",
                default=3600,
                minimum=60,
            ),
            Param(
                "require_growth",
                "boolean",
                "drop only if the dying count grew since the last drop",
                default=True,
            ),
            Param("dry_run", "boolean", "report, do not drop", default=False),
        ),
    ),
)

CATALOGUE: Final[Mapping[str, Mitigation]] = MappingProxyType({m.id: m for m in _CATALOGUE})
IDS: Final = tuple(CATALOGUE)
ORDER: Final = IDS  # the entries' order is the order inside a host's plan

_TIMESPAN_UNITS: Final = ("us", "ms", "s", "sec", "m", "min", "h", "hr", "d", "w")


def _is_timespan(text: str) -> bool:
    """A systemd time span such as ``5min``, ``30s`` or ``1h 30min``."""
    parts = text.split()
    if not parts:
        return False
    for part in parts:
        digits = part.rstrip("abcdefghijklmnopqrstuvwxyz")
        unit = part[len(digits) :]
        if not digits.isdigit() or not digits.isascii() or unit not in (*_TIMESPAN_UNITS, ""):
            return False
    return True


def param_problem(param: Param, value: Any, scheme: str | None = None) -> str | None:
    """Why ``value`` is not acceptable for ``param``, or None.

    ``scheme`` is the version scheme the surrounding rule works in (from its
    kernel condition), used for version parameters that have none of their own.
    """
    if param.kind == "string":
        return None if isinstance(value, str) and value else "must be a non-empty string"
    if param.kind == "integer":
        if isinstance(value, bool) or not isinstance(value, int):
            return "must be an integer"
        if param.minimum is not None and value < param.minimum:
            return f"must be at least {param.minimum}"
        return None
    if param.kind == "boolean":
        return None if isinstance(value, bool) else "must be true or false"
    if param.kind == "choice":
        if value in param.choices:
            return None
        return f"must be one of {', '.join(param.choices)}"
    if param.kind == "timespan":
        if isinstance(value, str) and _is_timespan(value):
            return None
        return "must be a systemd time span such as 5min or 1h"
    if param.kind == "version":
        wanted = param.scheme or scheme
        if wanted is None:
            # no scheme to judge by: accept what any scheme accepts
            if any(versions.is_valid(value, s) for s in versions.SCHEMES):
                return None
            return "must be a version"
        problem = versions.check(value, wanted)
        return None if problem is None else f"not a valid {wanted} version: {problem}"
    raise AssertionError(f"unknown parameter kind {param.kind}")  # pragma: no cover


def get(mitigation_id: str) -> Mitigation | None:
    return CATALOGUE.get(mitigation_id)


def describe() -> list[dict[str, Any]]:
    """The catalogue as JSON-able rows (for ``memcg-fix policy catalogue``)."""
    rows = []
    for m in _CATALOGUE:
        rows.append(
            {
                "id": m.id,
                "summary": m.summary,
                "needs_reboot": m.needs_reboot,
                "risk": m.risk,
                "disruption": m.disruption,
                "alternatives": list(m.alternatives),
                "params": [
                    {
                        "name": p.name,
                        "kind": p.kind,
                        "required": p.required,
                        **({} if p.default is None else {"default": p.default}),
                        **({"choices": list(p.choices)} if p.choices else {}),
                        "description": p.description,
                    }
                    for p in m.params
                ],
            }
        )
    return rows
