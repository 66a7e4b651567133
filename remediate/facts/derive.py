"""Facts derived on the controller from the raw facts a host reported.

The host-side collector reports what it reads (release, package version,
command line); judgements that need version ordering are made here, with the
one comparator of :mod:`remediate.versions`, so every host is judged alike.
"""

from __future__ import annotations

import copy
from collections.abc import Mapping
from typing import Any

from ..errors import InputError
from ..versions import compare

# cgroup.memory=nokmem: upstream since v4.6; on RHEL 7 reported honoured from
# the 7.7 z-stream kernel 3.10.0-1062.4.1.el7 (RHSA-2019:3055;
# docker/for-linux#841; kubernetes/kubernetes#61937).
NOKMEM_UPSTREAM_MIN = "4.6"
NOKMEM_EL7_MIN = "3.10.0-1062.4.1.el7"


def nokmem_supported(kernel: Mapping[str, Any] | None) -> tuple[bool | None, str]:
    """Whether the running kernel honours ``cgroup.memory=nokmem``, and why."""
    if not isinstance(kernel, Mapping) or not kernel.get("release"):
        return None, "the running kernel is unknown"
    if kernel.get("family") == "rhel" and kernel.get("el_tag") == "el7":
        version = kernel.get("package_version")
        if not isinstance(version, str) or not version:
            return None, "the el7 package version of the kernel is unknown"
        try:
            ok = compare(version, NOKMEM_EL7_MIN, "rpm") >= 0
        except InputError as exc:
            return None, f"cannot compare el7 kernel {version!r}: {exc.message}"
        return ok, f"el7 kernel {version} {'>=' if ok else '<'} {NOKMEM_EL7_MIN}"
    upstream = kernel.get("upstream_version")
    if not isinstance(upstream, str) or not upstream:
        return None, "the upstream version of the kernel is unknown"
    try:
        ok = compare(upstream, NOKMEM_UPSTREAM_MIN, "upstream") >= 0
    except InputError as exc:
        return None, f"cannot compare kernel {upstream!r}: {exc.message}"
    return ok, f"upstream {upstream} {'>=' if ok else '<'} {NOKMEM_UPSTREAM_MIN}"


def derive(
    facts: Mapping[str, Any], unknown: list[dict[str, str]]
) -> tuple[dict[str, Any], list[dict[str, str]]]:
    """``facts`` with the derived keys added, and ``unknown`` extended.

    Adds ``kernel.nokmem_supported`` (+ ``kernel.nokmem_reason``) and
    ``kmem.nokmem_honoured``. The input is not modified.
    """
    out: dict[str, Any] = copy.deepcopy(dict(facts))
    unknown = list(unknown)
    kernel = out.get("kernel")
    supported, why = nokmem_supported(kernel)
    if isinstance(kernel, dict):
        kernel["nokmem_supported"] = supported
        kernel["nokmem_reason"] = why
    if supported is None:
        unknown.append({"fact": "kernel.nokmem_supported", "reason": why})

    cmdline = out.get("cmdline")
    on_cmdline = cmdline.get("nokmem") if isinstance(cmdline, Mapping) else None
    if on_cmdline is False:
        honoured: bool | None = False
    elif on_cmdline is True and supported is not None:
        honoured = supported
    else:
        honoured = None
        unknown.append({
            "fact": "kmem.nokmem_honoured",
            "reason": "the kernel command line is unknown" if on_cmdline is None else why,
        })
    kmem = out.get("kmem")
    if isinstance(kmem, dict):
        kmem["nokmem_honoured"] = honoured
    elif kmem is None and "kmem" not in out:
        out["kmem"] = {"nokmem_honoured": honoured}
    return out, unknown
