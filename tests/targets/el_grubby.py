"""The real grubby of each EL release, built from tests/targets/vendor/grubby/
(origins in its README) and installed where the release installs it.

* el7: grubby 8.28-26.el7, the C grubby: pristine 8.28 plus RHEL's patches,
  applied with ``git am`` in the spec's order, built as its spec builds it
  (gcc 12 needs ``-std=gnu99`` and a few warnings off instead of ``-Werror``).
  /usr/sbin/grubby, /usr/sbin/new-kernel-pkg (what EL7 kernel packages call)
  and /usr/sbin/installkernel.
* el8: grubby 8.40-48.el8, el9: grubby 8.40-63.el9: the ``grubby-bls``
  shell script in /usr/libexec/grubby with the /usr/sbin/grubby wrapper made
  from the spec's ``grubby.in``, and /usr/libexec/grubby/rpm-sort (rhboot's
  ``rpm-sort.c``, against Debian's librpm) that grubby-bls sorts entries
  with. el9 also gets the spec's two kernel-install plugins.
* every release: /usr/bin/grub2-editenv, Debian's grub-editenv (grub-common
  2.06; same environment block format). EL7's grubby calls it to set the
  default, grubby-bls for kernelopts and saved_entry.

EL7's grubby takes a boot entry as the template for a new kernel only when
the entry's root= device has the UUID of the device mounted at / (its
``suitableImage``). A container's / is an overlay, not a device, so the el7
image carries a TEST STAND-IN for the root logical volume: a 1 MiB ext4 image
(fixed UUID) that /dev/mapper/centos-root links to (tmpfiles.d), and an
/etc/mtab that names it as the / mount, as on a CentOS 7 host.

The trees are built once in the builder rootfs (tests/targets/el_base.py) and
cached under ``$MEMCG_FIX_CACHE/targets/el-tools/grubby-<hash>``; a changed
recipe or vendor tarball rebuilds them.
"""

from __future__ import annotations

import inspect
import shutil
import time
from pathlib import Path

from tests.targets.common import HERE, TargetError, cache_dir, run, short_hash, tree_digest

VENDOR = HERE / "vendor" / "grubby"
EL7_TARBALL = "grubby-8.28-26.el7.src.tar.xz"
BLS_TARBALLS = {"el8": "grubby-8.40-48.el8.src.tar.xz", "el9": "grubby-8.40-63.el9.src.tar.xz"}
RHBOOT_TARBALL = "grubby-rhboot-c01b0d5.src.tar.xz"

# gcc 12 rejects 2014's code under the Makefile's -Werror; these are the
# warnings it raises (measured), everything else stays as the spec builds it.
EL7_CFLAGS = ("-O2 -g -pipe -Wp,-D_FORTIFY_SOURCE=2 -fstack-protector -std=gnu99 -Wall "
              "-Wno-unused-function -Wno-stringop-overflow -Wno-stringop-truncation "
              "-Wno-format-overflow -Wno-use-after-free")

BUILD_SCRIPT = r"""
export LC_ALL=C
out=/build/out
git config --global user.email test@memcg-fix.invalid
git config --global user.name "memcg-fix test build"

# ---- EL7: pristine 8.28 + the spec's patches, in the spec's order (git am)
mkdir el7 && tar -C el7 -xf vendor/@EL7_TARBALL@
cd el7/*/
spec=grubby.spec
(cd src && git init -q && git add -A && git commit -qm "8.28 baseline")
for patch in $(sed -n 's/^Patch[0-9]*:[[:space:]]*//p' "$spec"); do
  (cd src && git am -q --whitespace=nowarn "../$patch" </dev/null)
done
make -C src grubby CFLAGS="@EL7_CFLAGS@" >/dev/null
make -C src install DESTDIR="$out/el7" PREFIX=/usr mandir=/usr/share/man >/dev/null
rm -rf "$out/el7/usr/share/man"
cd /build

# ---- rpm-sort (grubby-bls sorts entries with it), rhboot's source
mkdir rhboot && tar -C rhboot -xf vendor/@RHBOOT_TARBALL@
# rpm 4.18's headers no longer pull in string.h, which rpm-sort.c relies on
gcc -O2 -g -Wall -D_GNU_SOURCE -include string.h -o rpm-sort rhboot/*/rpm-sort.c \
  $(pkg-config --cflags --libs rpm)

# ---- EL8 / EL9: grubby-bls + the wrapper made from grubby.in, as the specs install them
for kind in el8 el9; do
  mkdir "$kind"
  case $kind in el8) tarball=@EL8_TARBALL@;; el9) tarball=@EL9_TARBALL@;; esac
  tar -C "$kind" -xf "vendor/$tarball"
  sources=$(echo "$kind"/*/SOURCES)
  dest="$out/$kind"
  install -d -m 0755 "$dest/usr/libexec/grubby" "$dest/usr/sbin"
  install -m 0755 "$sources/grubby-bls" "$dest/usr/libexec/grubby/grubby-bls"
  install -m 0755 rpm-sort "$dest/usr/libexec/grubby/rpm-sort"
  sed -e "s,@@LIBEXECDIR@@,/usr/libexec/grubby,g" "$sources/grubby.in" > "$dest/usr/sbin/grubby"
  chmod 0755 "$dest/usr/sbin/grubby"
  for plugin in 10-devicetree.install 95-kernel-hooks.install; do
    if [ -f "$sources/$plugin" ]; then
      install -D -m 0755 "$sources/$plugin" "$dest/usr/lib/kernel/install.d/$plugin"
    fi
  done
done

# ---- grub2-editenv for every release: Debian's grub-editenv
for kind in el7 el8 el9; do
  install -D -m 0755 /usr/bin/grub-editenv "$out/$kind/usr/bin/grub2-editenv"
done

# the binaries must run on the runtime image: only libraries it has
for bin in "$out/el7/usr/sbin/grubby" "$out/el8/usr/libexec/grubby/rpm-sort" \
           "$out/el7/usr/bin/grub2-editenv"; do
  ldd "$bin" | sed -n 's/.*=> \([^ ]*\) .*/\1/p' > "/build/libs-$(basename "$bin")"
done
cat /build/libs-* | sort -u > "$out/needed-libraries"
"""


def _script() -> str:
    return (BUILD_SCRIPT.replace("@EL7_TARBALL@", EL7_TARBALL)
            .replace("@EL8_TARBALL@", BLS_TARBALLS["el8"])
            .replace("@EL9_TARBALL@", BLS_TARBALLS["el9"])
            .replace("@RHBOOT_TARBALL@", RHBOOT_TARBALL)
            .replace("@EL7_CFLAGS@", EL7_CFLAGS))


def recipe_hash() -> str:
    from tests.targets.el_base import builder_hash

    return short_hash("el-grubby-v1", builder_hash(), _script(), tree_digest(VENDOR),
                      inspect.getsource(_install_el7_root_device), EL7_TMPFILES, EL7_MTAB)


def tools_dir() -> Path:
    return cache_dir() / "el-tools" / f"grubby-{recipe_hash()}"


def ensure_grubby_builds() -> Path:
    """The built trees (``<dir>/el7``, ``el8``, ``el9``), built if missing.

    Call with the build lock held.
    """
    from tests.targets.build import _prune, log
    from tests.targets.el_base import build_in_builder

    target = tools_dir()
    if (target / ".complete").exists():
        return target
    started = time.monotonic()
    log(f"building the real grubby of EL7, EL8 and EL9 ({target.name})")
    build_in_builder(_script(), {"vendor": VENDOR}, target)
    (target / ".complete").write_text(f"{time.time():.0f}\n")
    _prune(target.parent, "grubby-", keep=target.name)
    log(f"grubby builds ready in {time.monotonic() - started:.0f}s")
    return target


EL7_ROOT_DEVICE = "/dev/mapper/centos-root"  # root= of the layout's entries
EL7_ROOT_IMAGE = "/usr/share/memcg-fix-test/root-device.ext4"
EL7_ROOT_UUID = "5a3b8c7e-8f0d-4b43-9d31-2a6c1f0e9b47"
EL7_TMPFILES = f"""\
# TEST STAND-IN for the root logical volume of a CentOS 7 host (memcg-fix
# test image): EL7's grubby copies a boot entry only when its root= device
# has the UUID of the device /etc/mtab mounts at /.
d /dev/mapper 0755 root root -
L {EL7_ROOT_DEVICE} - - - - {EL7_ROOT_IMAGE}
# the image's /etc/mtab is a file naming that device; this line, read before
# debian.conf's, keeps it from becoming a link to /proc/self/mounts
f /etc/mtab 0644 root root -
"""
EL7_MTAB = f"{EL7_ROOT_DEVICE} / xfs rw,relatime,attr2,inode64,noquota 0 0\n"


def _install_el7_root_device(root: Path) -> None:
    image = root / EL7_ROOT_IMAGE.lstrip("/")
    image.parent.mkdir(parents=True, exist_ok=True)
    with open(image, "wb") as fh:
        fh.truncate(1024 * 1024)
    run(["mkfs.ext4", "-q", "-F", "-O", "^has_journal", "-U", EL7_ROOT_UUID, "-L", "root",
         "-E", "root_owner=0:0", image])
    (root / "etc/tmpfiles.d").mkdir(parents=True, exist_ok=True)
    (root / "etc/tmpfiles.d/00-memcg-fix-test-root-device.conf").write_text(EL7_TMPFILES)
    mtab = root / "etc/mtab"
    if mtab.is_symlink() or mtab.exists():
        mtab.unlink()
    mtab.write_text(EL7_MTAB)


def install_grubby(root: Path, kind: str) -> None:
    """Copy the release's grubby tree over an image root (replacing the
    stand-in or anything else at those paths)."""
    tree = ensure_grubby_builds() / kind
    for src in sorted(tree.rglob("*")):
        dest = root / src.relative_to(tree)
        if src.is_dir():
            dest.mkdir(parents=True, exist_ok=True)
            continue
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        shutil.copy2(src, dest)
    missing = [lib for lib in (ensure_grubby_builds() / "needed-libraries").read_text().split()
               if not (root / lib.lstrip("/")).exists()]
    if missing:
        raise TargetError(f"the {kind} image lacks libraries grubby needs: {', '.join(missing)}")
    if kind == "el7":
        _install_el7_root_device(root)
