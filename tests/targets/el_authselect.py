"""The real authselect in the el8/el9 test images.

authselect 1.2.6 with EL8's and EL9's patches is compiled from the sources
committed under tests/targets/vendor/authselect/ (origins in the README
there), once per recipe, and cached under ``$MEMCG_FIX_CACHE/targets/
authselect/<hash>/``: a build changes when a tarball, the build script or the
Debian rootfs it is compiled against changes.

The build runs in a chroot copy of the targets' own Debian rootfs, so the
binary links against exactly the libraries the images carry and the machine
that runs the tests needs no compiler. The images then get the installed tree
plus libpopt0 (the one runtime library the Debian rootfs lacks, installed
from the .deb the build chroot fetched), and are configured as an EL install
leaves them:

* authselect-libs' ``%posttrans`` (from the spec): ``user-nsswitch.conf`` is
  a copy of the shipped nsswitch.conf, then ``authselect apply-changes``
  (a no-op without a configuration);
* the installer's ``authselect select sssd <features> --force`` (anaconda,
  pyanaconda/modules/security/installation.py: ``AUTHSELECT_ARGS =
  ["select", "sssd", "with-fingerprint", "with-silent-lastlog", "--force"]``),
  with the features of each release in build.py's ``EL_RELEASES``.

So /etc/pam.d/{system,password,fingerprint,smartcard}-auth and postlogin,
/etc/nsswitch.conf, /etc/authselect and /var/lib/authselect (including the
automatic backup ``--force`` takes) are the real tool's output.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from tests.targets.common import (
    HERE,
    TargetError,
    build_lock,
    cache_dir,
    run,
    safe_rmtree,
    short_hash,
    tree_digest,
)

VENDOR = HERE / "vendor" / "authselect"
UPSTREAM = "authselect-1.2.6"
# the package tree (spec + patches) of each release's build
PACKAGE_TREES = {"el8": "authselect-1.2.6-2.el8", "el9": "authselect-1.2.6-2.el9"}

BUILD_PACKAGES = (
    "autoconf", "automake", "autopoint", "libtool", "pkg-config", "gettext", "m4", "gcc",
    "make", "patch", "xz-utils", "libpopt-dev", "libselinux1-dev",
)
# What the images need at run time that the Debian rootfs lacks (libselinux1
# is part of every Debian system).
RUNTIME_PACKAGES = ("libpopt0",)

# Runs in the build chroot as `sh build.sh <package tree> <destdir>`:
# what the spec's %prep, %build and %install do, without the man pages
# (a2x/po4a), the unit tests (cmocka) and the authconfig compat tool.
BUILD_SCRIPT = r"""
set -eu
tree=$1 dest=$2
work=$(mktemp -d /src/build.XXXXXX)
cd "$work"
tar -xf /src/authselect-1.2.6.src.tar.xz
tar -xf "/src/$tree.rpm-tree.tar.xz"
cd authselect-1.2.6
for patch in $(sed -n 's/^Patch[0-9]*:[[:space:]]*//p' "../$tree/SPECS/authselect.spec"); do
  patch -p1 -s --fuzz=0 --no-backup-if-mismatch < "../$tree/SOURCES/$patch"
done
autoreconf -if >/dev/null 2>&1
./configure -q --prefix=/usr --sysconfdir=/etc --localstatedir=/var --libdir=/usr/lib \
  --with-pythonbin=/usr/bin/python3 >/dev/null
make -s -j2 >/dev/null 2>&1 || make
make -s install DESTDIR="$dest" >/dev/null
# development files and translations: not part of the authselect/-libs RPMs
# a host runs, or not needed by the tests (messages stay English)
rm -rf "$dest/usr/include" "$dest/usr/lib/pkgconfig" "$dest/usr/share/locale"
rm -f "$dest"/usr/lib/*.a "$dest"/usr/lib/*.la "$dest/usr/lib/libauthselect.so"
cd / && rm -rf "$work"
test -x "$dest/usr/bin/authselect"
"""

# Runs in the image's chroot as `sh install.sh <profile> <feature>...` after
# the build's tree was copied in: the RPMs' directories and scriptlets, then
# the installer's selection.
INSTALL_SCRIPT = r"""
set -eu
dpkg -i /tmp/memcg-fix-authselect/*.deb >/dev/null
rm -rf /tmp/memcg-fix-authselect
ldconfig
# %files of authselect-libs: the directories the package owns
mkdir -p /etc/authselect/custom /var/lib/authselect /usr/share/authselect/vendor
# %posttrans libs
if [ ! -f /var/lib/authselect/user-nsswitch-created ]; then
  cp -n /etc/nsswitch.conf /etc/authselect/user-nsswitch.conf
  touch /var/lib/authselect/user-nsswitch-created
fi
authselect apply-changes >/dev/null 2>&1 || true
# the installer
authselect select "$@" --force >/dev/null
authselect check >/dev/null
"""


def recipe_hash(base: str) -> str:
    """Key of the compiled trees: sources, build script, packages, the rootfs."""
    return short_hash("authselect-v1", base, " ".join(BUILD_PACKAGES),
                      " ".join(RUNTIME_PACKAGES), BUILD_SCRIPT, tree_digest(VENDOR))


def image_recipe(base: str) -> str:
    """What an el8/el9 image depends on here (part of its recipe hash)."""
    return short_hash(recipe_hash(base), INSTALL_SCRIPT)


def build_dir(base: str) -> Path:
    return cache_dir() / "authselect" / recipe_hash(base)


def log(msg: str) -> None:
    from tests.targets.build import log as build_log

    build_log(msg)


def ensure_build(rootfs: Path, base: str, force: bool = False) -> Path:
    """The compiled trees (``<dir>/el8``, ``<dir>/el9``) and runtime .debs
    (``<dir>/debs``), built if missing."""
    from tests.targets.build import Chroot, _block_daemons, _prune

    with build_lock():
        target = build_dir(base)
        if (target / ".complete").exists() and not force:
            return target
        started = time.monotonic()
        log(f"building authselect 1.2.6 for {', '.join(PACKAGE_TREES)} ({target.name})")
        work = target.with_name(target.name + ".tmp")
        safe_rmtree(work)
        work.mkdir(parents=True)
        chroot_dir = work / "chroot"
        run(["cp", "-a", "--reflink=auto", rootfs, chroot_dir])
        (chroot_dir / ".complete").unlink(missing_ok=True)
        src = chroot_dir / "src"
        src.mkdir()
        for tarball in VENDOR.glob("*.tar.xz"):
            shutil.copy2(tarball, src / tarball.name)
        policy = _block_daemons(chroot_dir)
        try:
            with Chroot(chroot_dir) as chroot:
                chroot.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install"
                          " -y -qq --no-install-recommends " + " ".join(BUILD_PACKAGES)
                          + " >/dev/null", timeout=900)
                (src / "build.sh").write_text(BUILD_SCRIPT)
                for kind, tree in PACKAGE_TREES.items():
                    chroot.sh(f"sh /src/build.sh {tree} /out/{kind}", timeout=900)
                chroot.sh("mkdir -p /out/debs && cd /out/debs && apt-get download -qq "
                          + " ".join(RUNTIME_PACKAGES), timeout=300)
        finally:
            policy.unlink(missing_ok=True)
        out = work / "out"
        (chroot_dir / "out").rename(out)
        safe_rmtree(chroot_dir)
        (work / ".complete").write_text(f"{time.time():.0f}\n")
        safe_rmtree(target)
        work.rename(target)
        _prune(target.parent, "", keep=target.name)
        log(f"authselect built in {time.monotonic() - started:.0f}s")
        return target


def install(root: Path, kind: str, selection: tuple[str, ...], build: Path) -> None:
    """Install the release's authselect into an image rootfs and select
    ``selection`` (profile and features) the way the installer does."""
    from tests.targets.build import Chroot

    if kind not in PACKAGE_TREES:
        raise TargetError(f"no authselect build for {kind!r}")
    run(["cp", "-a", f"{build / 'out' / kind}/.", root])
    staging = root / "tmp/memcg-fix-authselect"
    staging.mkdir(parents=True, exist_ok=True)
    for deb in (build / "out" / "debs").glob("*.deb"):
        shutil.copy2(deb, staging / deb.name)
    (staging / "install.sh").write_text(INSTALL_SCRIPT)
    with Chroot(root) as chroot:
        chroot.sh("sh /tmp/memcg-fix-authselect/install.sh " + " ".join(selection))
