"""rpm, dnf and a local package repository in the EL images.

Every EL image has Debian's rpm and dnf (tests/targets/el_base.py), an rpm
database at /var/lib/rpm as on EL, and an enabled repository of TEST PACKAGES
at /var/lib/memcg-fix-test-repo, built by rpmbuild and createrepo_c in the
builder and cached under ``$MEMCG_FIX_CACHE/targets/el-tools/repo-<hash>``:

* ``kernel``: builds of each release, old and new. Their files are
  placeholders; their scriptlets are the release's own: EL7's call
  new-kernel-pkg, which adds the entry with ``grubby --add-kernel
  --copy-default`` and makes it the default; EL8's and EL9's call
  ``kernel-install add``, whose rules write the BLS entry (see
  tests/targets/standins/kernel-install/) and make it the default. The
  image's installed kernels are in the rpm database (installed without
  scriptlets: their boot entries are the layout's).
* ``runc``: a build below and one above 1.0.0-rc94, numbered the way each
  release numbers runc; the binary only answers ``--version``.
* ``memcg-fix-test-base``: what the Debian userland provides that the test
  packages need (/bin/sh for scriptlets) and the release version dnf reads
  (``system-release(releasever)``).

Every spec says it is a test package in its Summary and description.
"""

from __future__ import annotations

import shutil
import time
from dataclasses import dataclass
from pathlib import Path

from tests.targets.common import STANDINS, cache_dir, short_hash, tree_digest

REPO_IN_IMAGE = "/var/lib/memcg-fix-test-repo"
RULES = STANDINS / "kernel-install"


@dataclass(frozen=True)
class Build:
    name: str
    version: str
    release: str
    epoch: str = ""

    @property
    def evr(self) -> str:
        return f"{self.epoch + ':' if self.epoch else ''}{self.version}-{self.release}"

    @property
    def kernel_release(self) -> str:
        return f"{self.version}-{self.release}.x86_64"


@dataclass(frozen=True)
class ElPackages:
    kind: str
    releasever: str
    os_name: str  # NAME and VERSION of the entries' titles
    os_version_title: str
    installed_kernels: tuple[Build, ...]  # in the image's rpm database
    newer_kernels: tuple[Build, ...]  # only in the repository
    runc_old: Build
    runc_new: Build

    @property
    def kernels(self) -> tuple[Build, ...]:
        return self.installed_kernels + self.newer_kernels


def _kernel(version: str, release: str) -> Build:
    return Build("kernel", version, release)


# Release numbers are those of real builds of each release; the runc
# numbering follows each release's scheme: EL7 and early EL8 put the
# pre-release in the Release field (runc-1.0.0-67.rc10.el7_8), later EL8 and
# EL9 builds carry an epoch.
EL_PACKAGES = {
    "el7": ElPackages(
        "el7", "7", "CentOS Linux", "7 (Core)",
        (_kernel("3.10.0", "957.27.2.el7"), _kernel("3.10.0", "1062.1.2.el7")),
        (_kernel("3.10.0", "1160.119.1.el7"),),
        Build("runc", "1.0.0", "67.rc10.el7_8"), Build("runc", "1.0.0", "70.rc94.el7_9"),
    ),
    "el8": ElPackages(
        "el8", "8", "Rocky Linux", "8.10 (Green Obsidian)",
        (_kernel("4.18.0", "513.24.1.el8_9"), _kernel("4.18.0", "553.16.1.el8_10")),
        (_kernel("4.18.0", "553.22.1.el8_10"),),
        Build("runc", "1.0.0", "65.rc10.el8"), Build("runc", "1.1.12", "1.el8", epoch="1"),
    ),
    "el9": ElPackages(
        "el9", "9", "Rocky Linux", "9.5 (Blue Onyx)",
        (_kernel("5.14.0", "362.24.1.el9_3"), _kernel("5.14.0", "427.13.1.el9_4")),
        (_kernel("5.14.0", "503.11.1.el9_5"),),
        Build("runc", "1.0.0", "0.1.rc93.el9", epoch="4"),
        Build("runc", "1.1.12", "1.el9", epoch="4"),
    ),
}

_TEST_NOTE = ("TEST PACKAGE built by memcg-fix's test-target builder "
              "(tests/targets/el_packages.py) for its EL test images; not the real package.")

_HEADER = """\
%define debug_package %{nil}
%define __os_install_post %{nil}
%define _build_id_links none
Name: @NAME@
@EPOCH@Version: @VERSION@
Release: @RELEASE@
License: GPLv2
BuildArch: @ARCH@
AutoReqProv: no
"""

EL7_KERNEL = _HEADER + """\
Summary: TEST PACKAGE (memcg-fix): an EL7 kernel's scriptlets over placeholder files
Provides: kernel-x86_64 = %{version}-%{release}, installonlypkg(kernel)
Requires: memcg-fix-test-base

%description
@NOTE@
The files are placeholders, not a kernel. The scriptlets are those of
CentOS 7's kernel.spec: post-install runs new-kernel-pkg --install (grubby
--add-kernel --copy-default, and --make-default per /etc/sysconfig/kernel),
post-transaction new-kernel-pkg --update and --rpmposttrans, pre-uninstall
new-kernel-pkg --remove. The test image has no dracut, so the package ships
its initramfs instead of the post-transaction step making it (--mkinitrd
--depmod).

%global kver %{version}-%{release}.x86_64

%install
mkdir -p %{buildroot}/boot %{buildroot}/lib/modules/%{kver}
cd %{buildroot}
echo "memcg-fix test placeholder for kernel %{kver}: not bootable" > boot/vmlinuz-%{kver}
echo "memcg-fix test placeholder for initramfs %{kver}" > boot/initramfs-%{kver}.img

%post
/usr/sbin/new-kernel-pkg --package kernel --install %{kver} || exit $?

%posttrans
/usr/sbin/new-kernel-pkg --package kernel --dracut --update %{kver} || exit $?
/usr/sbin/new-kernel-pkg --package kernel --rpmposttrans %{kver} || exit $?

%preun
/usr/sbin/new-kernel-pkg --rminitrd --rmmoddep --remove %{kver} || exit $?

%files
/boot/vmlinuz-%{kver}
/boot/initramfs-%{kver}.img
%dir /lib/modules/%{kver}
"""

BLS_KERNEL = _HEADER + """\
Summary: TEST PACKAGE (memcg-fix): an EL8/EL9 kernel's scriptlets over placeholder files
Provides: kernel-core = %{version}-%{release}, installonlypkg(kernel)
Requires: memcg-fix-test-base

%description
@NOTE@
The files are placeholders, not a kernel. As kernel-core of RHEL 8 and 9,
it ships /lib/modules/VERSION/vmlinuz and the bls.conf its spec generates,
and its post-transaction step runs kernel-install add (pre-uninstall:
remove), whose rules
copy the image to /boot and write the boot entry. The test image has no
dracut, so the package ships its initramfs.

%global kver %{version}-%{release}.x86_64

%install
mkdir -p %{buildroot}/boot %{buildroot}/lib/modules/%{kver}
cd %{buildroot}
echo "memcg-fix test placeholder for kernel %{kver}: not bootable" > lib/modules/%{kver}/vmlinuz
echo "memcg-fix test placeholder for initramfs %{kver}" > boot/initramfs-%{kver}.img
cat > lib/modules/%{kver}/bls.conf <<EOF
title @OS_NAME@ (%{kver}) @OS_VERSION@
version %{kver}
linux /vmlinuz-%{kver}
initrd /initramfs-%{kver}.img
options \\$kernelopts
id @OS_ID@-20241101000000-%{kver}
grub_users \\$grub_users
grub_arg --unrestricted
grub_class @GRUB_CLASS@
EOF
touch boot/vmlinuz-%{kver}

%posttrans
/bin/kernel-install add %{kver} /lib/modules/%{kver}/vmlinuz || exit $?

%preun
/bin/kernel-install remove %{kver} /lib/modules/%{kver}/vmlinuz || exit $?

%files
%dir /lib/modules/%{kver}
/lib/modules/%{kver}/vmlinuz
/lib/modules/%{kver}/bls.conf
/boot/initramfs-%{kver}.img
%ghost /boot/vmlinuz-%{kver}
"""

RUNC = _HEADER + """\
Summary: TEST PACKAGE (memcg-fix): a runc that only prints its version

%description
@NOTE@
/usr/bin/runc answers --version like runc @UPSTREAM@ and refuses anything else.

%install
mkdir -p %{buildroot}/usr/bin
cat > %{buildroot}/usr/bin/runc <<'EOF'
#!/bin/sh
# memcg-fix TEST PACKAGE: not runc; it only prints the version of the build it stands for.
case "$1" in
  --version|-v) printf 'runc version @UPSTREAM@\\nspec: @SPEC@\\n' ;;
  *) echo "memcg-fix test runc: only --version works" >&2; exit 1 ;;
esac
EOF
chmod 0755 %{buildroot}/usr/bin/runc

%files
/usr/bin/runc
"""

BASE = _HEADER + """\
Summary: TEST PACKAGE (memcg-fix): the Debian userland of an EL test image, for rpm
Provides: /bin/sh, /bin/bash, bash, system-release(releasever) = @RELEASEVER@
Provides: system-release = @RELEASEVER@, redhat-release = @RELEASEVER@

%description
@NOTE@
The test image's shell, coreutils and systemd come from Debian packages, so
the rpm database has no package that provides them; this one says they are
there (so scriptlets' /bin/sh requirement resolves) and tells dnf the
release version. It owns no files.

%files
"""


def _fill(template: str, build: Build, arch: str = "x86_64", **values: str) -> str:
    text = (template.replace("@NAME@", build.name)
            .replace("@EPOCH@", f"Epoch: {build.epoch}\n" if build.epoch else "")
            .replace("@VERSION@", build.version)
            .replace("@RELEASE@", build.release)
            .replace("@ARCH@", arch)
            .replace("@NOTE@", _TEST_NOTE))
    for key, value in values.items():
        text = text.replace(f"@{key}@", value)
    assert "@" not in text.replace("%{", ""), text
    return text


def _runc_upstream(build: Build) -> str:
    # 1.0.0-67.rc10.el7_8 -> 1.0.0-rc10; 1.1.12-1.el9 -> 1.1.12
    pre = [part for part in build.release.split(".") if part.startswith("rc")]
    return build.version + (f"-{pre[0]}" if pre else "")


def specs(pkgs: ElPackages) -> dict[str, str]:
    """File name -> spec text of every test package of one release."""
    out: dict[str, str] = {}
    base = Build("memcg-fix-test-base", pkgs.releasever, "1." + pkgs.kind)
    out["memcg-fix-test-base.spec"] = _fill(BASE, base, arch="noarch",
                                            RELEASEVER=pkgs.releasever)
    for kernel in pkgs.kernels:
        if pkgs.kind == "el7":
            text = _fill(EL7_KERNEL, kernel)
        else:
            text = _fill(BLS_KERNEL, kernel, OS_NAME=pkgs.os_name,
                         OS_VERSION=pkgs.os_version_title, OS_ID="rocky",
                         GRUB_CLASS="kernel" if pkgs.kind == "el8" else "rocky")
        out[f"kernel-{kernel.release}.spec"] = text
    for runc in (pkgs.runc_old, pkgs.runc_new):
        upstream = _runc_upstream(runc)
        spec_version = "1.0.1-dev" if upstream.startswith("1.0.0-rc") else "1.0.2-dev"
        out[f"runc-{runc.release}.spec"] = _fill(RUNC, runc, UPSTREAM=upstream,
                                                 SPEC=spec_version)
    return out


REPO_SCRIPT = r"""
export LC_ALL=C
for kind in @KINDS@; do
  mkdir -p "rpmbuild-$kind"
  for spec in "specs/$kind"/*.spec; do
    rpmbuild -bb --quiet --define "_topdir /build/rpmbuild-$kind" "$spec" >/dev/null
  done
  mkdir -p "out/$kind"
  find "rpmbuild-$kind/RPMS" -name '*.rpm' -exec cp {} "out/$kind/" \;
  createrepo_c --quiet "out/$kind"
done
"""


def _all_specs() -> dict[str, dict[str, str]]:
    return {kind: specs(pkgs) for kind, pkgs in EL_PACKAGES.items()}


def repo_hash() -> str:
    from tests.targets.el_base import builder_hash

    flat = [f"{kind}/{name}\0{text}" for kind, named in sorted(_all_specs().items())
            for name, text in sorted(named.items())]
    return short_hash("el-repo-v1", builder_hash(), REPO_SCRIPT, *flat)


def ensure_repo() -> Path:
    """The built repositories (``<dir>/el7``, ``el8``, ``el9``: RPMs and
    repodata), built if missing. Call with the build lock held."""
    from tests.targets.build import _prune, log
    from tests.targets.el_base import build_in_builder

    target = cache_dir() / "el-tools" / f"repo-{repo_hash()}"
    if (target / ".complete").exists():
        return target
    started = time.monotonic()
    log(f"building the EL test packages and their repositories ({target.name})")
    stage = cache_dir() / "el-tools" / f"specs-{repo_hash()}.tmp"
    shutil.rmtree(stage, ignore_errors=True)
    for kind, named in _all_specs().items():
        (stage / kind).mkdir(parents=True)
        for name, text in named.items():
            (stage / kind / name).write_text(text)
    try:
        build_in_builder(REPO_SCRIPT.replace("@KINDS@", " ".join(EL_PACKAGES)),
                         {"specs": stage}, target)
    finally:
        shutil.rmtree(stage, ignore_errors=True)
    (target / ".complete").write_text(f"{time.time():.0f}\n")
    _prune(target.parent, "repo-", keep=target.name)
    log(f"test packages ready in {time.monotonic() - started:.0f}s")
    return target


REPO_FILE = f"""\
# memcg-fix TEST repository: test packages built for the EL test images
# (tests/targets/el_packages.py), not a distribution's repository.
[memcg-fix-test]
name=memcg-fix test packages
baseurl=file://{REPO_IN_IMAGE}
enabled=1
gpgcheck=0
"""

# Debian's rpm keeps its database in ~/.rpmdb; EL's is /var/lib/rpm.
RPM_MACROS = "%_dbpath /var/lib/rpm\n"

# kernel-install plugins of Debian's systemd that RHEL's kernel-install does
# not run (RHEL's grub2, dracut and tuned rules take their place); masked the
# way kernel-install documents, by a /dev/null link in /etc/kernel/install.d.
DEBIAN_PLUGINS = ("50-depmod.install", "85-initrd.install", "90-loaderentry.install")


def recipe_hash(kind: str) -> str:
    return short_hash("el-packages-v1", repo_hash(), REPO_FILE, RPM_MACROS,
                      " ".join(DEBIAN_PLUGINS), tree_digest(RULES), repr(EL_PACKAGES[kind]))


def install_el_packages(root: Path, kind: str) -> None:
    """rpm database, repository and kernel-install rules in an EL image root."""
    from tests.targets.build import Chroot

    pkgs = EL_PACKAGES[kind]
    repo = ensure_repo() / kind
    dest = root / REPO_IN_IMAGE.lstrip("/")
    shutil.rmtree(dest, ignore_errors=True)
    shutil.copytree(repo, dest)
    (root / "etc/yum.repos.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/yum.repos.d/memcg-fix-test.repo").write_text(REPO_FILE)
    (root / "etc/rpm").mkdir(parents=True, exist_ok=True)
    (root / "etc/rpm/macros.dbpath").write_text(RPM_MACROS)
    if kind != "el7":
        rules = root / "usr/lib/kernel/install.d"
        rules.mkdir(parents=True, exist_ok=True)
        for rule in sorted(RULES.iterdir()):
            shutil.copy2(rule, rules / rule.name)
        masks = root / "etc/kernel/install.d"
        masks.mkdir(parents=True, exist_ok=True)
        for plugin in DEBIAN_PLUGINS:
            link = masks / plugin
            if link.is_symlink() or link.exists():
                link.unlink()
            link.symlink_to("/dev/null")
    installed = " ".join(f"{REPO_IN_IMAGE}/kernel-{k.evr.split(':')[-1]}.x86_64.rpm"
                         for k in pkgs.installed_kernels)
    base = f"{REPO_IN_IMAGE}/memcg-fix-test-base-{pkgs.releasever}-1.{kind}.noarch.rpm"
    with Chroot(root) as chroot:
        # The layout already has these kernels' boot entries: record the
        # packages without running their scriptlets, as an installed host has them.
        chroot.sh(f"set -e; rpm --initdb; rpm -i --quiet {base};"
                  f" rpm -i --quiet --noscripts {installed}")
