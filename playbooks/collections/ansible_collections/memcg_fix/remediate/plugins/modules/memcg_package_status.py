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
  - Reports the installed versions of a package and whether one is at or above I(min_version),
    compared by the host's own package manager rules (rpm's C(labelCompare) on rpm hosts,
    C(dpkg --compare-versions) on dpkg hosts), so no comparator of ours can disagree with yum or apt.
  - With I(binary), also reports the version the binary on PATH prints and whether a package owns
    it; a binary from elsewhere (a tarball, a container runtime's bundle) cannot be upgraded by
    the package manager and needs a manual step.
  - For kernels it also reports the running kernel and whether it is at or above the minimum.
options:
  name:
    description: Package name (C(kernel), C(runc), C(linux-image-amd64)...).
    type: str
    required: true
  min_version:
    description: Minimum version, in the host's package version format (C(3.10.0-1127.el7), C(1.0.0~rc94)).
    type: str
    required: true
  binary:
    description:
      - Executable to inspect as well (C(runc)). When it is on PATH, I(satisfied) is judged from the
        version it prints (what actually runs), compared as an upstream version (C(1.0.0-rc94) <
        C(1.0.0) < C(1.1.5)), because distributions spell the same runc differently
        (C(1.0.0~rc94+dfsg1-1), C(1.0.0-145.rc94.el8)).
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
    min_version: 1.0.0~rc94
    binary: runc
"""

RETURN = r"""
manager:
  description: The host's package manager, C(rpm) or C(dpkg).
  returned: always
  type: str
installed:
  description: Installed versions of the package, newest first.
  returned: always
  type: list
  elements: str
satisfied:
  description: An installed version (or, with I(binary) on PATH, the binary's version) is at or above I(min_version).
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
import sys
from functools import partial

from ansible.module_utils.basic import AnsibleModule
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import which
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

    def __init__(self):
        try:
            import rpm  # the host's own bindings: what yum/dnf compare with
        except ImportError:
            raise ModuleFailure("the rpm Python bindings are not importable by %s; "
                                "set ansible_python_interpreter to the platform Python" % sys.executable)
        self._rpm = rpm

    @staticmethod
    def _evr(text):
        epoch, _sep, rest = text.rpartition(":")
        version, _sep, release = rest.partition("-")
        return (epoch or "0", version, release or "")

    def compare(self, a, b):
        return self._rpm.labelCompare(self._evr(a), self._evr(b))

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

    def compare(self, a, b):
        for op, value in (("lt", -1), ("eq", 0)):
            rc, _out, _err = _run(["dpkg", "--compare-versions", a, op, b])
            if rc == 0:
                return value
        return 1

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


_UPSTREAM = re.compile(r"^v?(\d+(?:\.\d+)*)(?:[-~.]?(alpha|beta|rc|a|b)\.?(\d*))?")


def upstream_key(text):
    """Sort key of an upstream release: ``1.0.0-rc94`` < ``1.0.0`` < ``1.1.5``.

    >>> upstream_key("1.0.0-rc94") < upstream_key("1.0.0") < upstream_key("1.1.5")
    True
    """
    match = _UPSTREAM.match(text or "")
    if not match:
        return None
    numbers = [int(n) for n in match.group(1).split(".")]
    numbers += [0] * (4 - len(numbers))
    stage = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "rc": 2}.get(match.group(2), 3)
    return (numbers, stage, int(match.group(3) or 0))


def binary_version(path):
    rc, out, _err = _run([path, "--version"])
    match = re.search(r"version\s+v?(\S+)", out) if rc == 0 else None
    return match.group(1) if match else None


def status(name, min_version, binary, kernel):
    """What the host has of package ``name`` (and ``binary``), against ``min_version``."""
    pm = manager()
    installed = pm.installed(name)
    ordered = sorted(installed, key=_cmp_key(pm), reverse=True)
    result = dict(
        changed=False,
        manager=pm.name,
        installed=ordered,
        satisfied=bool(ordered) and pm.compare(ordered[0], min_version) >= 0,
    )
    if kernel:
        running = pm.running()
        result["running"] = running
        result["running_satisfied"] = bool(running) and pm.compare(running, min_version) >= 0
    if binary:
        path = which(binary)
        result["binary_path"] = path
        result["binary_owned"] = bool(path and pm.owner(os.path.realpath(path)))
        result["binary_version"] = binary_version(path) if path else None
        if path:
            have, want = upstream_key(result["binary_version"]), upstream_key(min_version)
            if have is None or want is None:
                raise ModuleFailure("cannot compare %s's version %r with %r" % (
                    path, result["binary_version"], min_version))
            result["satisfied"] = have >= want
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


def _cmp_key(pm):
    class Key(object):
        def __init__(self, value):
            self.value = value

        def __lt__(self, other):
            return pm.compare(self.value, other.value) < 0

    return Key


if __name__ == "__main__":
    main()
