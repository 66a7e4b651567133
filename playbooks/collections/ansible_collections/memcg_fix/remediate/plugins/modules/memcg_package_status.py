#!/usr/bin/python
# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).

from __future__ import absolute_import, division, print_function

__metaclass__ = type

DOCUMENTATION = r"""
---
module: memcg_package_status
short_description: Is a package installed at or above a minimum version (read-only)?
description:
  - Reports the installed versions of a package and whether one is at or above I(min_version).
  - Versions are ordered by memcg-fix's one comparator, the collection's C(hostside.vercmp), which
    is the code the controller plans with. It follows rpm's C(rpmvercmp) rules on rpm hosts and
    dpkg's C(verrevcmp) rules on dpkg hosts, each checked against the real C(rpm) and C(dpkg) in
    memcg-fix's tests.
    It needs no Python bindings of the package manager, so it runs on any interpreter of the host.
  - With I(binary), I(min_version) is an upstream version (C(1.0.0-rc94), as a plan gives it) and
    the module also reports the version the binary on PATH prints and whether a package owns it;
    I(satisfied) is judged from what actually runs, compared as an upstream version (C(1.0.0-rc94)
    = C(1.0.0_rc94) = C(1.0.0~rc94) < C(1.0.0) < C(1.1.5)), because distributions spell the same
    runc differently (C(1.0.0~rc94+dfsg1-1), C(1.0.0-0.rc94.el7)). Without the binary on PATH it
    judges the upstream part of the newest installed package. A binary from elsewhere (a tarball,
    a runtime's bundle) cannot be upgraded by the package manager and needs a manual step.
  - For kernels it also reports the running kernel and whether it is at or above the minimum.
options:
  name:
    description: Package name (C(kernel), C(runc), C(linux-image-amd64)...).
    type: str
    required: true
  min_version:
    description:
      - Minimum version. In the host's package version format (C(3.10.0-1127.el7), C(6.1.76-1)),
        or an upstream version when I(binary) is set (C(1.0.0-rc94)).
    type: str
    required: true
  binary:
    description: Executable to inspect as well (C(runc)); makes I(min_version) an upstream version.
    type: str
  kernel:
    description: The package is a kernel; compare the running kernel too.
    type: bool
    default: false
attributes:
  check_mode:
    support: full
    details: It only reads.
  diff_mode:
    support: none
  platform:
    platforms: posix
extends_documentation_fragment:
  - ansible.builtin.action_common_attributes
author:
  - memcg-fix maintainers (@memcg-fix)
"""

EXAMPLES = r"""
- name: Is runc new enough?
  memcg_fix.remediate.memcg_package_status:
    name: runc
    min_version: 1.0.0-rc94
    binary: runc
"""

RETURN = r"""
manager:
  description: The host's package manager, C(rpm) or C(dpkg).
  returned: always
  type: str
scheme:
  description: How I(satisfied) was judged, C(rpm), C(dpkg) or C(upstream) (with I(binary)).
  returned: always
  type: str
installed:
  description: Installed versions of the package, newest first.
  returned: always
  type: list
  elements: str
satisfied:
  description:
    - The newest installed version is at or above I(min_version); with I(binary), the version the
      binary prints, or the upstream part of the newest package when the binary is not on PATH.
  returned: always
  type: bool
running:
  description: The running kernel's version, in the package's version format.
  returned: when I(kernel=true)
  type: str
running_satisfied:
  description: The running kernel is at or above I(min_version).
  returned: when I(kernel=true)
  type: bool
binary_path:
  description: Where the binary is on PATH (null when it is not there).
  returned: when I(binary) is set
  type: str
binary_owned:
  description: A package owns the binary.
  returned: when I(binary) is set
  type: bool
binary_version:
  description: The version the binary prints.
  returned: when I(binary) is set
  type: str
"""

import os
import re
from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import vercmp
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import which
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.packages import upstream_of_package_version
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import (
    ModuleFailure,
    finish,
    run,
)

# seconds a package query may take (rpm on a slow disk, dpkg with a big database)
QUERY_TIMEOUT = 120


def _run(argv):
    return run(argv, QUERY_TIMEOUT)


class Rpm(object):
    name = "rpm"

    def installed(self, name):
        rc, out, _err = _run(["rpm", "-q", "--qf", "%{EPOCHNUM}:%{VERSION}-%{RELEASE}\\n", name])
        if rc != 0:
            return []
        return [line.strip() for line in out.splitlines() if line.strip()]

    def owner(self, path):
        rc, out, _err = _run(["rpm", "-qf", path])
        return out.strip() if rc == 0 else None

    def running(self):
        release = os.uname()[2]
        # 3.10.0-1160.el7.x86_64 -> 3.10.0-1160.el7 (drop the arch)
        return re.sub(r"\.(x86_64|aarch64|ppc64le|s390x|i686|noarch)$", "", release)


class Dpkg(object):
    name = "dpkg"

    def installed(self, name):
        rc, out, _err = _run(["dpkg-query", "-W", "-f", "${db:Status-Abbrev} ${Version}\\n", name])
        if rc != 0:
            return []
        return [line.split()[-1] for line in out.splitlines() if line.startswith("ii ")]

    def owner(self, path):
        rc, out, _err = _run(["dpkg-query", "-S", path])
        return out.split(":", 1)[0].strip() if rc == 0 and out.strip() else None

    def running(self):
        # "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)" -> 6.1.76-1
        match = re.search(r"Debian (\S+)", os.uname()[3])
        return match.group(1) if match else None


def manager():
    if which("rpm") and (which("yum") or which("dnf")):
        return Rpm()
    if which("dpkg-query"):
        return Dpkg()
    raise ModuleFailure("neither rpm (with yum/dnf) nor dpkg is available on this host")


def at_least(version, minimum, scheme):
    """``version`` >= ``minimum`` in ``scheme``, by the one comparator."""
    try:
        return vercmp.compare(version, minimum, scheme) >= 0
    except vercmp.VersionError as exc:
        raise ModuleFailure("cannot compare %r with %r: %s" % (version, minimum, exc))


def newest_first(versions, scheme):
    """``versions`` sorted newest first (insertion sort: a handful of entries)."""
    ordered = []
    for version in versions:
        position = 0
        while position < len(ordered) and at_least(ordered[position], version, scheme):
            position += 1
        ordered.insert(position, version)
    return ordered


def judge(installed, min_version, scheme, upstream=False):
    """``(installed newest first, satisfied)`` for package versions in ``scheme``.

    With ``upstream`` the minimum is an upstream version (runc's
    ``1.0.0-rc94``) and the newest package is judged by its upstream part
    (``1.0.0-0.rc94.el7`` -> ``1.0.0-rc94``).
    """
    ordered = newest_first(installed, scheme)
    if not ordered:
        return ordered, False
    if not upstream:
        return ordered, at_least(ordered[0], min_version, scheme)
    head = upstream_of_package_version(ordered[0])
    return ordered, bool(head) and at_least(head, min_version, "upstream")


def binary_version(path):
    rc, out, _err = _run([path, "--version"])
    match = re.search(r"version\s+v?(\S+)", out) if rc == 0 else None
    return match.group(1) if match else None


def status(name, min_version, binary, kernel):
    """What the host has of package ``name`` (and ``binary``), against ``min_version``."""
    pm = manager()
    upstream = bool(binary)
    ordered, satisfied = judge(pm.installed(name), min_version, pm.name, upstream=upstream)
    result = dict(
        changed=False,
        manager=pm.name,
        scheme="upstream" if upstream else pm.name,
        installed=ordered,
        satisfied=satisfied,
    )
    if kernel:
        running = pm.running()
        result["running"] = running
        result["running_satisfied"] = bool(running) and at_least(running, min_version, pm.name)
    if binary:
        path = which(binary)
        result["binary_path"] = path
        result["binary_owned"] = bool(path and pm.owner(os.path.realpath(path)))
        result["binary_version"] = binary_version(path) if path else None
        if path:
            if not result["binary_version"]:
                raise ModuleFailure("%s --version printed no version" % path)
            result["satisfied"] = at_least(result["binary_version"], min_version, "upstream")
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            name=dict(type="str", required=True),
            min_version=dict(type="str", required=True),
            binary=dict(type="str"),
            kernel=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    p = module.params
    finish(module, partial(status, p["name"], p["min_version"], p["binary"], p["kernel"]))


if __name__ == "__main__":
    main()
