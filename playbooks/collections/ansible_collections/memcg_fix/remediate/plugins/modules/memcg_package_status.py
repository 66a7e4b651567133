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
  - Versions are ordered by memcg-fix's one comparator (the collection's C(hostside.vercmp), the
    code the controller plans with): rpm's C(rpmvercmp) rules on rpm hosts, dpkg's C(verrevcmp)
    rules on dpkg hosts, each checked against the real C(rpm) and C(dpkg) in memcg-fix's tests.
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
author: memcg-fix
"""

EXAMPLES = r"""
- name: Is runc new enough?
  memcg_fix.remediate.memcg_package_status:
    name: runc
    min_version: 1.0.0-rc94
    binary: runc
"""

RETURN = r"""
manager: {description: rpm or dpkg, returned: always, type: str}
scheme: {description: How satisfied was judged (rpm, dpkg or upstream), returned: always, type: str}
installed: {description: Installed versions, newest first, returned: always, type: list}
satisfied: {description: An installed version is at or above min_version, returned: always, type: bool}
binary_path: {description: Where the binary is, returned: when binary is set, type: str}
binary_owned: {description: A package owns the binary, returned: when binary is set, type: bool}
binary_version: {description: What the binary says its version is, returned: when binary is set, type: str}
running_satisfied: {description: The running kernel is at or above min_version, returned: when kernel, type: bool}
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import vercmp
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import SourceError, run_command, which
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.packages import upstream_of_package_version


class Failure(Exception):
    pass


def _run(argv):
    try:
        return run_command(argv, timeout=120)
    except SourceError as exc:
        raise Failure(str(exc))


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
        return out.split(":")[0].strip() if rc == 0 and out.strip() else None

    def running(self):
        # "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)" -> 6.1.76-1
        match = re.search(r"Debian (\S+)", os.uname()[3])
        return match.group(1) if match else None


def manager():
    if which("rpm") and (which("yum") or which("dnf")):
        return Rpm()
    if which("dpkg-query"):
        return Dpkg()
    raise Failure("neither rpm (with yum/dnf) nor dpkg is available on this host")


def at_least(version, minimum, scheme):
    """``version`` >= ``minimum`` in ``scheme``, by the one comparator."""
    try:
        return vercmp.compare(version, minimum, scheme) >= 0
    except vercmp.VersionError as exc:
        raise Failure("cannot compare %r with %r: %s" % (version, minimum, exc))


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
    params = module.params
    try:
        pm = manager()
        upstream = bool(params["binary"])
        ordered, satisfied = judge(pm.installed(params["name"]), params["min_version"], pm.name,
                                   upstream=upstream)
        result = dict(
            changed=False,
            manager=pm.name,
            scheme="upstream" if upstream else pm.name,
            installed=ordered,
            satisfied=satisfied,
        )
        if params["kernel"]:
            running = pm.running()
            result["running"] = running
            result["running_satisfied"] = bool(running) and at_least(running, params["min_version"], pm.name)
        if params["binary"]:
            path = which(params["binary"])
            result["binary_path"] = path
            result["binary_owned"] = bool(path and pm.owner(os.path.realpath(path)))
            result["binary_version"] = binary_version(path) if path else None
            if path:
                if not result["binary_version"]:
                    raise Failure("%s --version printed no version" % path)
                result["satisfied"] = at_least(result["binary_version"], params["min_version"], "upstream")
    except Failure as exc:
        module.fail_json(msg=str(exc))
    module.exit_json(**result)


if __name__ == "__main__":
    main()
