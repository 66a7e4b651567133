"""The running kernel's build (``uname -r``, ``uname -v``) and the distro.

Families, as the rest of memcg-fix compares them:

=========  =====================================  =================
family     recognised by                          package scheme
=========  =====================================  =================
rhel       ``.el7`` ``.el8`` ``.el9_4``...         rpm
ol-uek     ``uek`` in the release                  rpm
amzn       ``.amzn2`` ``.amzn2023``                rpm
fedora     ``.fc39``                               rpm
suse       ``-default`` flavour, or SUSE in -v     rpm
debian     ``-amd64``... with Debian in -v         dpkg
ubuntu     ``-generic``... with Ubuntu in -v       dpkg
upstream   anything else                           upstream
=========  =====================================  =================

Host-side code reports raw facts only; whether the kernel honours
``cgroup.memory=nokmem`` is derived on the controller.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, Optional, Tuple  # noqa: F401 # novermin

_UPSTREAM = re.compile(r"^(\d+)\.(\d+)(?:\.(\d+))?")
_EL_TAG = re.compile(r"\.(el\d+)(?:_\d+)*(uek)?(?=\.|$|\+|PAE)")
_FEDORA = re.compile(r"\.(fc\d+)(?=\.|$|\+)")
_AMZN = re.compile(r"\.(amzn\d+)(?=\.|$|\+)")
_ARCHES = ("x86_64", "aarch64", "ppc64le", "ppc64", "s390x", "i686", "i586", "i386",
           "armv7hl", "noarch")
_DEB_ARCHES = ("amd64", "arm64", "armmp", "armmp-lpae", "686", "686-pae", "ppc64el",
               "s390x", "mips64r2el", "riscv64", "loong64")
_UBUNTU_FLAVOURS = ("generic", "lowlatency", "aws", "azure", "gcp", "gke", "kvm", "oracle",
                    "ibm", "raspi", "oem", "virtual", "nvidia", "realtime", "intel-iotg",
                    "generic-64k", "generic-lpae")
# "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)"
_DEBIAN_VERSION = re.compile(r"Debian (\d[\w.:~+-]*)")
# "#236-Ubuntu SMP ..."  (the upload number of the linux-image package)
_UBUNTU_UPLOAD = re.compile(r"#(\d+)(?:~[\w.]+)?-Ubuntu")


def _upstream_version(release):
    # type: (str) -> Optional[str]
    match = _UPSTREAM.match(release)
    if not match:
        return None
    return "%s.%s.%s" % (match.group(1), match.group(2), match.group(3) or "0")


def _split_rpm_arch(release):
    # type: (str) -> Tuple[str, Optional[str], Optional[str]]
    """('3.10.0-1160.el7', 'x86_64', variant) from an rpm-style release."""
    variant = None
    rest = release
    # EL9 debug kernels: "5.14.0-70.13.1.el9_0.x86_64+debug"
    if "+" in rest:
        rest, variant = rest.split("+", 1)
    # EL7 debug kernels: "3.10.0-1160.el7.x86_64.debug"
    for suffix in (".debug", ".PAE", ".xen"):
        if rest.endswith(suffix):
            variant = suffix[1:]
            rest = rest[:-len(suffix)]
    arch = None
    for candidate in _ARCHES:
        if rest.endswith("." + candidate):
            arch = candidate
            rest = rest[:-len(candidate) - 1]
            break
    # EL5/6 "2.6.18-419.el5PAE", "2.6.32-754.el6.i686.PAE" handled above
    if rest.endswith("PAE") and variant is None:
        variant, rest = "PAE", rest[:-3]
    # realtime builds carry ".rt56.1131" in the release: "3.10.0-1160.rt56.1131.el7"
    if variant is None and re.search(r"\.rt\d", rest):
        variant = "rt"
    return rest, arch, variant


def parse_uname(release, version=None):
    # type: (str, Optional[str]) -> Dict[str, Any]
    """Typed facts of a kernel from ``uname -r`` (and ``uname -v`` when known).

    Samples (``uname -r`` / ``uname -v``), from kubernetes/kubernetes#61937,
    RedHatInsights/insights-core tests, and the hosts named in docs/facts.md::

        3.10.0-1160.24.1.el7.x86_64
        5.15.0-308.179.6.3.el9uek.x86_64
        6.1.0-18-amd64          #1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)
        5.4.0-216-generic       #236-Ubuntu SMP Fri Apr 11 19:53:21 UTC 2025

    >>> k = parse_uname("3.10.0-1160.24.1.el7.x86_64")
    >>> k["family"], k["upstream_version"], k["package_version"], k["el_tag"], k["arch"]
    ('rhel', '3.10.0', '3.10.0-1160.24.1.el7', 'el7', 'x86_64')
    >>> parse_uname("5.15.0-308.179.6.3.el9uek.x86_64")["family"]
    'ol-uek'
    >>> d = parse_uname("6.1.0-18-amd64", "#1 SMP PREEMPT_DYNAMIC Debian 6.1.76-1 (2024-02-01)")
    >>> d["family"], d["package_version"], d["version_scheme"], d["distro_release"]
    ('debian', '6.1.76-1', 'dpkg', '18-amd64')
    >>> u = parse_uname("5.4.0-216-generic", "#236-Ubuntu SMP Fri Apr 11 19:53:21 UTC 2025")
    >>> u["family"], u["package_version"], u["variant"]
    ('ubuntu', '5.4.0-216.236', 'generic')
    >>> parse_uname("6.18.44-fc-v657", "#1 SMP PREEMPT_DYNAMIC @0")["family"]
    'upstream'
    """
    release = (release or "").strip()
    version = (version or "").strip() or None
    facts = {
        "release": release or None,
        "version": version,
        "family": "upstream",
        "upstream_version": _upstream_version(release),
        "distro_release": None,
        "package_version": None,
        "version_scheme": "upstream",
        "arch": None,
        "variant": None,
        "el_tag": None,
    }
    if not release:
        return facts
    head, _sep, tail = release.partition("-")
    el = _EL_TAG.search(release)
    fedora = _FEDORA.search(release)
    amzn = _AMZN.search(release)
    if el or fedora or amzn:
        rest, arch, variant = _split_rpm_arch(release)
        facts.update({"arch": arch, "variant": variant, "version_scheme": "rpm",
                      "package_version": rest,
                      "distro_release": rest.partition("-")[2] or None})
        if el:
            tag = el.group(1) + (el.group(2) or "")
            facts["el_tag"] = tag
            facts["family"] = "ol-uek" if "uek" in release else "rhel"
            if ".centos.plus" in release and variant is None:
                facts["variant"] = "centos.plus"
        elif fedora:
            facts["el_tag"] = None
            facts["family"] = "fedora"
        else:
            facts["family"] = "amzn"
        return facts
    if "uek" in release:
        rest, arch, variant = _split_rpm_arch(release)
        facts.update({"family": "ol-uek", "arch": arch, "variant": variant,
                      "version_scheme": "rpm", "package_version": rest,
                      "distro_release": rest.partition("-")[2] or None})
        return facts
    parts = tail.split("-") if tail else []
    is_ubuntu = (version and "Ubuntu" in version) or (
        len(parts) >= 2 and parts[0].isdigit() and "-".join(parts[1:]) in _UBUNTU_FLAVOURS
        and not (version and "Debian" in version))
    is_debian = (version and "Debian" in version) or "+deb" in release or (
        len(parts) >= 2 and parts[0].isdigit() and parts[-1] in _DEB_ARCHES
        and not is_ubuntu)
    if is_ubuntu and len(parts) >= 2 and parts[0].isdigit():
        flavour = "-".join(parts[1:])
        facts.update({"family": "ubuntu", "version_scheme": "dpkg",
                      "distro_release": tail, "variant": flavour})
        upload = _UBUNTU_UPLOAD.search(version or "")
        if upload:
            facts["package_version"] = "%s-%s.%s" % (head, parts[0], upload.group(1))
        return facts
    if is_debian:
        facts.update({"family": "debian", "version_scheme": "dpkg", "distro_release": tail})
        if parts and parts[-1] in _DEB_ARCHES:
            facts["arch"] = parts[-1]
            middle = [p for p in parts[1:-1] if p]
            facts["variant"] = "-".join(middle) or None
        debian = _DEBIAN_VERSION.search(version or "")
        if debian:
            facts["package_version"] = debian.group(1)
        return facts
    # SUSE: "5.14.21-150500.55.65-default"
    if parts and parts[-1] in ("default", "azure", "rt", "kvmsmall", "64kb") and (
            len(parts) >= 2 and re.match(r"^\d+(\.\d+)+$", parts[0])):
        facts.update({"family": "suse", "version_scheme": "rpm", "variant": parts[-1],
                      "distro_release": "-".join(parts[:-1]),
                      "package_version": "%s-%s" % (head, "-".join(parts[:-1]))})
        return facts
    if version and "SUSE" in version:
        facts.update({"family": "suse", "version_scheme": "rpm", "distro_release": tail or None,
                      "package_version": release})
    return facts


def release_from_kernel_path(path):
    # type: (str) -> Optional[str]
    """``/boot/vmlinuz-3.10.0-957.el7.x86_64`` -> ``3.10.0-957.el7.x86_64``.

    >>> release_from_kernel_path('"/boot/vmlinuz-5.14.0-70.13.1.el9_0.x86_64"')
    '5.14.0-70.13.1.el9_0.x86_64'
    >>> release_from_kernel_path("/vmlinuz-0-rescue-40924d06236c45fba188c471ccc6f9ee") is None
    True
    """
    name = (path or "").strip().strip('"').rsplit("/", 1)[-1]
    for prefix in ("vmlinuz-", "vmlinux-", "bzImage-", "kernel-"):
        if name.startswith(prefix):
            name = name[len(prefix):]
            break
    else:
        return None
    if not name or not name[0].isdigit() or name.startswith("0-rescue"):
        return None
    return name


def parse_os_release(text):
    # type: (str) -> Dict[str, Any]
    """Parse ``/etc/os-release`` (os-release(5): shell-style ``KEY=value`` lines).

    Sample, /etc/os-release of this project's Debian 12 host::

        PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"
        NAME="Debian GNU/Linux"
        VERSION_ID="12"
        ID=debian

    >>> d = parse_os_release('NAME="CentOS Linux"\\nVERSION_ID="7"\\nID="centos"\\nID_LIKE="rhel fedora"\\n')
    >>> d["id"], d["version_id"], d["id_like"], d["major"]
    ('centos', '7', ['rhel', 'fedora'], 7)
    """  # noqa: E501 (real sample lines)
    values = {}
    for line in text.splitlines():
        line = line.strip()
        if not line or line.startswith("#") or "=" not in line:
            continue
        key, _eq, value = line.partition("=")
        key = key.strip()
        if not re.match(r"^[A-Z_][A-Z0-9_]*$", key):
            continue
        value = value.strip()
        if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
            value = value[1:-1]
            value = value.replace('\\"', '"').replace("\\$", "$").replace("\\`", "`")
            value = value.replace("\\\\", "\\")
        values[key] = value
    version_id = values.get("VERSION_ID") or None
    major = None
    if version_id:
        match = re.match(r"^(\d+)", version_id)
        major = int(match.group(1)) if match else None
    return {
        "id": values.get("ID") or None,
        "version_id": version_id,
        "id_like": values.get("ID_LIKE", "").split() if values.get("ID_LIKE") else [],
        "name": values.get("NAME") or None,
        "pretty_name": values.get("PRETTY_NAME") or None,
        "major": major,
    }
