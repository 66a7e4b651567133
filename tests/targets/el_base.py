"""The two Debian layers under the EL images: the runtime (rpm, dnf) and the
builder that compiles the EL tools and the test packages.

* ``el-runtime``: the Debian base rootfs plus Debian's ``rpm`` and ``dnf``
  (with python3-rpm and python3-dnf, which Ansible's dnf module and
  memcg_package_status import). Every EL image starts from a copy of it.
* ``el-builder``: the runtime plus a compiler, the -dev packages grubby and
  rpm-sort link against, git (the specs apply their patches with ``git am``),
  grub-common (grub-editenv) and createrepo-c. Nothing from it ends up in an
  image except what the build steps copy out.

Both are cached under ``$MEMCG_FIX_CACHE/targets/rootfs`` and keyed by their
recipe, like the base rootfs; the Debian base recipe itself is untouched.
"""

from __future__ import annotations

import time
from pathlib import Path

from tests.targets.common import cache_dir, run, safe_rmtree, short_hash

RUNTIME_PACKAGES = ("rpm", "dnf")
BUILDER_PACKAGES = (
    "gcc", "make", "libc6-dev", "pkg-config", "libpopt-dev", "libblkid-dev", "librpm-dev",
    "git", "grub-common", "createrepo-c", "xz-utils", "cpio",
)


def log(msg: str) -> None:
    from tests.targets.build import log as build_log

    build_log(msg)


def _apt_install(root: Path, packages: tuple[str, ...]) -> None:
    from tests.targets.build import Chroot, _block_daemons

    policy = _block_daemons(root)
    try:
        with Chroot(root) as chroot:
            chroot.sh("export DEBIAN_FRONTEND=noninteractive; apt-get update -qq"
                      " && apt-get install -y -qq --no-install-recommends "
                      + " ".join(packages) + " >/dev/null"
                      " && apt-get clean && rm -rf /var/lib/apt/lists/*")
    finally:
        policy.unlink(missing_ok=True)


def runtime_hash() -> str:
    from tests.targets.build import base_hash

    return short_hash("el-runtime-v1", base_hash(), " ".join(RUNTIME_PACKAGES))


def builder_hash() -> str:
    return short_hash("el-builder-v1", runtime_hash(), " ".join(BUILDER_PACKAGES))


def _ensure_layer(name: str, digest: str, parent: Path, packages: tuple[str, ...]) -> Path:
    """``parent`` copied and ``packages`` added with apt, cached as rootfs/<name>-<digest>."""
    from tests.targets.build import _prune

    target = cache_dir() / "rootfs" / f"{name}-{digest}"
    if (target / ".complete").exists():
        return target
    started = time.monotonic()
    log(f"building the {name} layer {target.name}: {' '.join(packages)}")
    work = target.with_name(target.name + ".tmp")
    safe_rmtree(work)
    safe_rmtree(target)
    run(["cp", "-a", "--reflink=auto", parent, work])
    (work / ".complete").unlink(missing_ok=True)
    _apt_install(work, packages)
    (work / ".complete").write_text(f"{time.time():.0f}\n")
    work.rename(target)
    _prune(target.parent, f"{name}-", keep=target.name)
    log(f"{name} layer ready in {time.monotonic() - started:.0f}s")
    return target


def ensure_runtime_rootfs() -> Path:
    """The Debian rootfs plus rpm and dnf (call with the build lock held)."""
    from tests.targets.build import ensure_rootfs

    return _ensure_layer("el-runtime", runtime_hash(), ensure_rootfs(), RUNTIME_PACKAGES)


def ensure_builder_rootfs() -> Path:
    """The runtime plus compilers and packaging tools (call with the build lock held)."""
    return _ensure_layer("el-builder", builder_hash(), ensure_runtime_rootfs(), BUILDER_PACKAGES)


def build_in_builder(script: str, inputs: dict[str, Path], outputs: Path,
                     timeout: float = 1800) -> None:
    """Run ``script`` (sh) in a throw-away copy of the builder rootfs.

    ``inputs`` are copied to /build/<name> first; whatever the script leaves in
    /build/out is copied to ``outputs`` (replaced). The cached builder itself
    never changes.
    """
    from tests.targets.build import Chroot

    builder = ensure_builder_rootfs()
    work = cache_dir() / "rootfs" / f"el-build-{short_hash(script)}.tmp"
    safe_rmtree(work)
    run(["cp", "-a", "--reflink=auto", builder, work])
    try:
        build = work / "build"
        build.mkdir()
        for name, path in inputs.items():
            run(["cp", "-a", path, build / name])
        (build / "out").mkdir()
        with Chroot(work) as chroot:
            chroot.sh("set -eu\ncd /build\n" + script, timeout=timeout)
        safe_rmtree(outputs)
        outputs.parent.mkdir(parents=True, exist_ok=True)
        run(["cp", "-a", build / "out", outputs])
    finally:
        safe_rmtree(work)
