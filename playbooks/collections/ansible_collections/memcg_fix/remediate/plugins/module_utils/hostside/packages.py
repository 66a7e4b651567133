"""Installed kernels and container runtimes, from the package managers.

Sources: ``rpm -q kernel`` (live), sosreport's ``installed-rpms``,
``dpkg-query -W`` (live), /var/lib/dpkg/status (a host root) and sosreport's
``sos_commands/dpkg/dpkg_-l``.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Dict, List, Optional  # noqa: F401 # novermin

# The format memcg-fix asks dpkg-query for: the same columns as `dpkg -l`.
DPKG_QUERY_FORMAT = "${db:Status-Abbrev} ${Package} ${Version} ${Architecture}\\n"

_RPM_KERNEL = re.compile(r"^kernel(?:-uek|-rt|-core)?-(\d[^\s]*)$")
_ARCH_SUFFIX = re.compile(r"\.(x86_64|aarch64|ppc64le|ppc64|s390x|i686|noarch)$")


def parse_rpm_kernels(text):
    # type: (str) -> List[str]
    """Kernel releases from ``rpm -q kernel`` or sosreport's ``installed-rpms``.

    Sample, ``rpm -q kernel`` on a CentOS 7 host (a public course write-up;
    ``uname -r`` there was 3.10.0-1160.2.2.el7.x86_64)::

        kernel-3.10.0-1127.el7.x86_64
        kernel-3.10.0-1160.2.2.el7.x86_64

    sosreport's installed-rpms adds an install date after the NVRA
    (sos/report/plugins/rpm.py: ``%-59{NVRA} %{INSTALLTIME:date}``).

    >>> parse_rpm_kernels("kernel-3.10.0-1127.el7.x86_64\\nkernel-tools-3.10.0-1127.el7.x86_64  Mon 01 Jun\\npackage kernel is not installed\\n")
    ['3.10.0-1127.el7.x86_64']
    >>> parse_rpm_kernels("kernel-uek-5.4.17-2136.el8uek.x86_64 Tue 02 Apr 2024\\n")
    ['5.4.17-2136.el8uek.x86_64']
    """  # noqa: E501 (real sample lines)
    releases = []
    seen = set()
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        match = _RPM_KERNEL.match(fields[0])
        if match and match.group(1) not in seen:
            seen.add(match.group(1))
            releases.append(match.group(1))
    return releases


def rpm_package_version(text, name):
    # type: (str, str) -> Optional[str]
    """``version-release`` of package ``name`` in rpm -qa style output.

    >>> rpm_package_version("runc-1.0.0-15.1.el7.x86_64  Tue 01 Jan\\n", "runc")
    '1.0.0-15.1.el7'
    """
    pattern = re.compile(r"^%s-(\d[^\s]*)$" % re.escape(name))
    for line in text.splitlines():
        fields = line.split()
        match = pattern.match(fields[0]) if fields else None
        if match:
            return _ARCH_SUFFIX.sub("", match.group(1))
    return None


def parse_dpkg_list(text):
    # type: (str) -> Dict[str, str]
    """Installed packages from ``dpkg -l`` or our ``dpkg-query -W`` format.

    Sample, ``dpkg --list | grep linux-image`` on a Debian 12 host (a public
    write-up; ``uname -v`` there: ``#1 SMP PREEMPT_DYNAMIC Debian 6.1.128-1``)::

        ii  linux-image-6.1.0-31-amd64      6.1.128-1                       amd64        Linux 6.1 for 64-bit PCs (signed)
        ii  linux-image-amd64               6.1.128-1                       amd64        Linux for 64-bit PCs (meta-package)

    Returns ``{package: version}`` for packages in state ``ii`` (installed);
    ``rc`` (removed, config left) and others are skipped.

    >>> sorted(parse_dpkg_list("ii  linux-image-6.1.0-31-amd64 6.1.128-1 amd64 Linux\\nrc  linux-image-5.10.0-14-amd64 5.10.113-1 amd64 x\\n").items())
    [('linux-image-6.1.0-31-amd64', '6.1.128-1')]
    """  # noqa: E501 (real sample lines)
    packages = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) < 3 or fields[0] not in ("ii", "hi"):
            continue
        packages[fields[1].split(":")[0]] = fields[2]
    return packages


def parse_dpkg_status(text):
    # type: (str) -> Dict[str, str]
    """Installed packages from /var/lib/dpkg/status: ``{package: version}``.

    Sample stanza, /var/lib/dpkg/status of this project's Debian 12 host::

        Package: runc
        Status: install ok installed
        Priority: optional
        Version: 1.1.5+ds1-1+deb12u1

    >>> parse_dpkg_status("Package: runc\\nStatus: install ok installed\\nVersion: 1.1.5+ds1-1\\n\\nPackage: x\\nStatus: deinstall ok config-files\\nVersion: 1\\n")
    {'runc': '1.1.5+ds1-1'}
    """  # noqa: E501 (real sample lines)
    # One stanza per package, fields at the start of a line (continuation
    # lines start with a space): three substring searches per stanza instead
    # of splitting every line of a status file that can hold thousands.
    packages = {}
    for stanza in text.replace("\r\n", "\n").split("\n\n"):
        name = _dpkg_field(stanza, "Package")
        version = _dpkg_field(stanza, "Version")
        status = _dpkg_field(stanza, "Status") or ""
        if name and version and status.endswith(" installed"):
            packages[name] = version
    return packages


def _dpkg_field(stanza, name):
    # type: (str, str) -> Optional[str]
    """The value of field ``name`` in one deb822 stanza, or None."""
    stanza = stanza.lstrip("\n")
    if stanza.startswith(name + ":"):
        start = len(name) + 1
    else:
        found = stanza.find("\n" + name + ":")
        if found < 0:
            return None
        start = found + len(name) + 2
    end = stanza.find("\n", start)
    return stanza[start:end if end >= 0 else len(stanza)].strip()


def debian_kernel_releases(packages):
    # type: (Dict[str, str]) -> List[str]
    """Kernel releases from installed ``linux-image-<release>`` packages.

    >>> debian_kernel_releases({"linux-image-6.1.0-31-amd64": "6.1.128-1", "linux-image-amd64": "6.1.128-1"})
    ['6.1.0-31-amd64']
    """  # noqa: E501 (real sample lines)
    releases = []
    seen = set()
    for name in sorted(packages):
        if not name.startswith("linux-image-"):
            continue
        release = name[len("linux-image-"):]
        if release.endswith("-dbg") or release.endswith("-unsigned"):
            release = release.rsplit("-", 1)[0]
        if release and release[0].isdigit() and release not in seen:
            seen.add(release)
            releases.append(release)
    return releases


def parse_runc_version(text):
    # type: (str) -> Dict[str, Optional[str]]
    """Parse ``runc --version``: ``{version, commit, spec}``.

    Samples: runc 1.0.0-rc10 on Ubuntu 20.04 (ssst0n3/docker_archive,
    containerd/v1.3.8/README.md), and this project's Debian 12 host::

        runc version 1.0.0-rc10
        spec: 1.0.1-dev

        runc version 1.1.5+ds1
        commit: 1.1.5+ds1-1+deb12u1
        spec: 1.0.2-dev
        go: go1.19.8
        libseccomp: 2.5.4

    >>> parse_runc_version("runc version 1.0.0-rc10\\nspec: 1.0.1-dev\\n")["version"]
    '1.0.0-rc10'
    >>> parse_runc_version("garbage")["version"] is None
    True
    """
    facts = {"version": None, "commit": None, "spec": None}  # type: Dict[str, Optional[str]]
    for line in text.splitlines():
        line = line.strip()
        match = re.match(r"^runc version:?\s+(\S+)", line)
        if match and facts["version"] is None:
            facts["version"] = match.group(1)
            continue
        key, sep, value = line.partition(":")
        if sep and key.strip() in ("commit", "spec"):
            facts[key.strip()] = value.strip() or None
    return facts


def parse_docker_version(text):
    # type: (str) -> Optional[str]
    """Parse ``docker --version`` / ``dockerd --version``.

    Sample, Docker on CentOS 7 (docker/for-linux#841)::

        Docker version 19.03.5, build 633a0ea

    >>> parse_docker_version("Docker version 19.03.5, build 633a0ea\\n")
    '19.03.5'
    >>> parse_docker_version("nope") is None
    True
    """
    match = re.search(r"Docker version v?(\d+\.\d+[\w.+~-]*?)(?:,|\s|$)", text)
    return match.group(1) if match else None


def parse_kubelet_version(text):
    # type: (str) -> Optional[str]
    """Parse ``kubelet --version`` (``Kubernetes v1.28.2``) into ``1.28.2``.

    Sample, kubelet 1.9.3 (cookeem/kubeadm-ha README)::

        Kubernetes v1.9.3

    >>> parse_kubelet_version("Kubernetes v1.18.2\\n")
    '1.18.2'
    >>> parse_kubelet_version("nope") is None
    True
    """
    match = re.search(r"Kubernetes v(\d+\.\d+[\w.+-]*)", text)
    return match.group(1) if match else None


def upstream_of_package_version(version):
    # type: (Optional[str]) -> Optional[str]
    """The upstream part of a package version: ``1.1.5+ds1-1+deb12u1`` -> ``1.1.5``.

    >>> upstream_of_package_version("1:1.0.0~rc10-1")
    '1.0.0-rc10'
    >>> upstream_of_package_version("1.0.0-67.rc10.el7_8")
    '1.0.0-rc10'
    >>> upstream_of_package_version("1.1.5+ds1-1+deb12u1")
    '1.1.5'
    """
    if not version:
        return None
    version = version.split(":", 1)[-1]
    match = re.match(r"^(\d+(?:\.\d+)*)", version)
    if not match:
        return None
    # EL packages put the pre-release in the release: runc-1.0.0-67.rc10.el7_8
    pre = re.search(r"(?:^|[~.+-])rc\.?(\d+)", version[len(match.group(1)):])
    return match.group(1) + ("-rc" + pre.group(1) if pre else "")
