"""Build and cache the test targets.

    python -m tests.targets.build {debian,el7,el8,el9,vm,all} [--force]

* ``debian``: a debootstrap bookworm minbase rootfs (systemd, sshd, python3,
  grub2-common, PAM, sudo, a ``tester`` user), imported with ``podman import``
  as ``localhost/memcg-fix-target-debian:<hash>``.
* ``el7``/``el8``/``el9``: the rootfs plus Debian's rpm and dnf
  (tests/targets/el_base.py), the files that make a host look like that
  release (tests/targets/layouts/<kind>/, origins in
  tests/targets/layouts/SOURCES.md), the release's real grubby
  (tests/targets/el_grubby.py), an rpm database and a repository of test
  packages (tests/targets/el_packages.py) and, on el8/el9, the real
  authselect (tests/targets/el_authselect.py).
* ``vm``: the rootfs plus linux-image-amd64 and grub-pc on an MBR disk image
  that boots through GRUB under QEMU (base image; tests use overlays).

Every artefact is keyed by a hash of its recipe, so a changed recipe rebuilds
it, and anything missing is rebuilt. A file lock keeps two processes from
building at once.
"""

from __future__ import annotations

import argparse
import inspect
import os
import shutil
import struct
import sys
import time
from dataclasses import dataclass
from pathlib import Path

from tests.targets import el_authselect
from tests.targets.common import (
    IMAGE_PREFIX,
    KINDS,
    LAYOUTS,
    STANDINS,
    TargetError,
    build_lock,
    cache_dir,
    mounts_under,
    podman,
    podman_env,
    run,
    safe_rmtree,
    short_hash,
    ssh_key,
    tree_digest,
)
from tests.targets.el_base import ensure_runtime_rootfs
from tests.targets.el_hooks import el_tools_hash, install_el_tools

SUITE = "bookworm"
MIRROR = os.environ.get("MEMCG_FIX_DEBIAN_MIRROR", "http://deb.debian.org/debian")

BASE_PACKAGES = (
    "python3", "python3-apt", "openssh-server", "systemd", "systemd-sysv", "dbus",
    "libpam-systemd", "grub2-common", "iproute2", "sudo", "procps", "ca-certificates",
    "kmod", "less",
)

# Runs inside the debootstrapped rootfs (chroot). Keep it idempotent.
BASE_CONFIGURE = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
echo memcg-fix-target > /etc/hostname
# grub-pc's postinst would create /etc/default/grub from this template (ucf);
# containers carry grub2-common only, so do what it does.
[ -e /etc/default/grub ] || cp /usr/share/grub/default/grub /etc/default/grub
id -u tester >/dev/null 2>&1 || useradd -m -s /bin/bash -G sudo tester
echo 'tester ALL=(ALL) NOPASSWD:ALL' > /etc/sudoers.d/tester
chmod 0440 /etc/sudoers.d/tester
for home in /root /home/tester; do
  install -d -m 0700 "$home/.ssh"
  cp /tmp/authorized_keys "$home/.ssh/authorized_keys"
  chmod 0600 "$home/.ssh/authorized_keys"
done
chown -R tester:tester /home/tester/.ssh
cat > /etc/ssh/sshd_config.d/memcg-fix-test.conf <<'EOF'
PermitRootLogin prohibit-password
PasswordAuthentication no
UseDNS no
MaxStartups 100:30:200
MaxSessions 50
EOF
systemctl enable ssh.service >/dev/null 2>&1 || true
# Every boot gets its own machine id.
: > /etc/machine-id
rm -f /var/lib/dbus/machine-id
apt-get clean
rm -rf /var/lib/apt/lists/* /tmp/authorized_keys
"""

# Installed into the VM image only.
VM_PACKAGES = (
    "linux-image-amd64", "initramfs-tools", "grub-pc", "zstd", "udev",
    "systemd-resolved",
)
VM_DISK_SIZE = 4 * 1024 ** 3
VM_PART_START = 2048  # sectors: the usual 1 MiB alignment

VM_CONFIGURE = r"""
set -eu
export DEBIAN_FRONTEND=noninteractive LC_ALL=C
echo memcg-fix-vm > /etc/hostname
echo '/dev/vda1 / ext4 errors=remount-ro 0 1' > /etc/fstab
mkdir -p /etc/systemd/network
cat > /etc/systemd/network/10-dhcp.network <<'EOF'
[Match]
Name=en*

[Network]
DHCP=yes
EOF
systemctl enable systemd-networkd.service >/dev/null 2>&1
# Serial console and a short menu; GRUB_CMDLINE_LINUX stays as shipped (empty),
# which is what the role edits.
sed -i \
  -e 's/^GRUB_TIMEOUT=.*/GRUB_TIMEOUT=1/' \
  -e 's/^GRUB_CMDLINE_LINUX_DEFAULT=.*/GRUB_CMDLINE_LINUX_DEFAULT="console=ttyS0,115200"/' \
  /etc/default/grub
grep -q '^GRUB_TERMINAL=' /etc/default/grub || cat >> /etc/default/grub <<'EOF'
GRUB_TERMINAL=serial
GRUB_SERIAL_COMMAND="serial --unit=0 --speed=115200"
EOF
apt-get clean
rm -rf /var/lib/apt/lists/*
"""

# Inside the guest at its first (direct-kernel) boot: put GRUB on the MBR.
VM_FIRSTBOOT = "grub-install /dev/vda && update-grub && sync"


@dataclass(frozen=True)
class ElRelease:
    kind: str
    machine_id: str  # fixed, so BLS entry names match the layout files
    # (kernel release, initramfs exists) for the dummy /boot files
    kernels: tuple[str, ...]
    # what the installer selects (profile and features); empty = authconfig
    authselect: tuple[str, ...] = ()


EL_RELEASES = {
    "el7": ElRelease(
        "el7", "66213c250ded4576a9120b120ad72e6c",
        ("3.10.0-1062.1.2.el7.x86_64", "3.10.0-957.27.2.el7.x86_64",
         "0-rescue-66213c250ded4576a9120b120ad72e6c"),
    ),
    "el8": ElRelease(
        "el8", "7a1c9e3c5d2b4f0e8a6b3c1d2e4f5a6b",
        ("4.18.0-553.16.1.el8_10.x86_64", "4.18.0-513.24.1.el8_9.x86_64",
         "0-rescue-7a1c9e3c5d2b4f0e8a6b3c1d2e4f5a6b"),
        ("sssd", "with-fingerprint", "with-silent-lastlog"),
    ),
    "el9": ElRelease(
        "el9", "a98618aa1631441dbb52c75a50834a0a",
        ("5.14.0-427.13.1.el9_4.x86_64", "5.14.0-362.24.1.el9_3.x86_64",
         "0-rescue-a98618aa1631441dbb52c75a50834a0a"),
        ("sssd", "with-fingerprint"),
    ),
}


def log(msg: str) -> None:
    print(f"[targets] {msg}", file=sys.stderr, flush=True)


# ---------------------------------------------------------------- recipes


def base_hash() -> str:
    pubkey = ssh_key().with_suffix(".pub").read_text()
    return short_hash("base-v1", SUITE, " ".join(BASE_PACKAGES), BASE_CONFIGURE, pubkey)


def kind_hash(kind: str) -> str:
    if kind == "debian":
        return base_hash()
    if kind in EL_RELEASES:
        rel = EL_RELEASES[kind]
        recipe = inspect.getsource(apply_el_layout) + inspect.getsource(_el_symlinks)
        authselect = el_authselect.image_recipe(base_hash()) if rel.authselect else ""
        return short_hash("el-v1", base_hash(), repr(rel), recipe,
                          tree_digest(LAYOUTS / kind), tree_digest(STANDINS),
                          el_tools_hash(kind), authselect)
    if kind == "vm":
        return short_hash("vm-v1", base_hash(), " ".join(VM_PACKAGES), VM_CONFIGURE,
                          VM_FIRSTBOOT, str(VM_DISK_SIZE))
    raise TargetError(f"unknown target kind {kind!r} (one of {', '.join((*KINDS, 'vm'))})")


def image_ref(kind: str) -> str:
    return f"{IMAGE_PREFIX}{kind}:{kind_hash(kind)}"


def rootfs_dir() -> Path:
    return cache_dir() / "rootfs" / f"debian-{base_hash()}"


def vm_dir() -> Path:
    return cache_dir() / "vm" / kind_hash("vm")


def vm_disk() -> Path:
    return vm_dir() / "disk.raw"


# ---------------------------------------------------------------- chroot


class Chroot:
    """proc/sys and a private /dev (tmpfs with a few nodes) mounted in a rootfs.

    /dev is a fresh tmpfs, never a bind mount of the host's, so that nothing
    done inside the chroot (or a careless cleanup) can touch the host's nodes.
    """

    DEVICES = (("null", 1, 3), ("zero", 1, 5), ("full", 1, 7), ("random", 1, 8),
               ("urandom", 1, 9), ("tty", 5, 0))

    def __init__(self, root: Path):
        self.root = root

    def __enter__(self) -> Chroot:
        try:
            run(["mount", "-t", "proc", "proc", self.root / "proc"])
            run(["mount", "-t", "sysfs", "sysfs", self.root / "sys"])
            run(["mount", "-t", "tmpfs", "-o", "mode=0755,size=64m", "devtmp", self.root / "dev"])
            for name, major, minor in self.DEVICES:
                node = self.root / "dev" / name
                os.mknod(node, 0o666 | 0o020000, os.makedev(major, minor))
                node.chmod(0o666)  # mknod honours the umask
            (self.root / "dev" / "pts").mkdir()
            (self.root / "dev" / "shm").mkdir()
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc: object) -> None:
        for sub in ("dev", "sys", "proc"):
            target = self.root / sub
            if str(target.resolve()) in mounts_under(self.root):
                run(["umount", "-l", target], check=False)

    def sh(self, script: str, timeout: float = 1800) -> None:
        env = {"PATH": "/usr/sbin:/usr/bin:/sbin:/bin", "HOME": "/root", "LC_ALL": "C"}
        run(["chroot", self.root, "/bin/sh", "-c", script], timeout=timeout, env=env)


def _block_daemons(root: Path) -> Path:
    # policy-rc.d keeps maintainer scripts from starting services in the chroot
    path = root / "usr/sbin/policy-rc.d"
    path.write_text("#!/bin/sh\nexit 101\n")
    path.chmod(0o755)
    return path


# ---------------------------------------------------------------- builders


def ensure_rootfs(force: bool = False) -> Path:
    target = rootfs_dir()
    if (target / ".complete").exists() and not force:
        return target
    started = time.monotonic()
    log(f"building Debian {SUITE} rootfs {target.name} (debootstrap from {MIRROR})")
    work = target.with_name(target.name + ".tmp")
    safe_rmtree(work)
    safe_rmtree(target)
    work.parent.mkdir(parents=True, exist_ok=True)
    run(["debootstrap", "--variant=minbase", f"--include={','.join(BASE_PACKAGES)}",
         SUITE, work, MIRROR], timeout=1800)
    pubkey = ssh_key().with_suffix(".pub").read_bytes()
    (work / "tmp/authorized_keys").write_bytes(pubkey)
    policy = _block_daemons(work)
    try:
        with Chroot(work) as chroot:
            chroot.sh(BASE_CONFIGURE)
    finally:
        policy.unlink(missing_ok=True)
    (work / ".complete").write_text(f"{time.time():.0f}\n")
    work.rename(target)
    _prune(target.parent, "debian-", keep=target.name)
    log(f"rootfs ready in {time.monotonic() - started:.0f}s")
    return target


def _prune(parent: Path, prefix: str, keep: str) -> None:
    """Drop older builds of the same artefact (best effort)."""
    for old in parent.glob(prefix + "*"):
        if old.name != keep and not old.name.endswith(".tmp"):
            try:
                safe_rmtree(old) if old.is_dir() else old.unlink()
            except (OSError, TargetError) as exc:
                log(f"could not prune {old}: {exc}")


def _import_tree(root: Path, ref: str) -> None:
    started = time.monotonic()
    tar = run(["tar", "--numeric-owner", "--xattrs", "--exclude=./.complete", "-C", root,
               "-cf", "-", "."], capture=True, timeout=600).stdout
    podman("import", "--change", 'CMD ["/sbin/init"]', "--change", "STOPSIGNAL SIGRTMIN+3",
           "-", ref, input=tar, timeout=900)
    log(f"imported {ref} in {time.monotonic() - started:.0f}s")


def _prune_images(kind: str, keep: str) -> None:
    listed = podman("images", "--format", "{{.Repository}}:{{.Tag}}",
                    f"{IMAGE_PREFIX}{kind}", check=False).stdout.decode().split()
    for ref in listed:
        if ref not in (keep, f"{IMAGE_PREFIX}{kind}:latest"):
            podman("rmi", ref, check=False)


def image_exists(ref: str) -> bool:
    return podman("image", "exists", ref, check=False).returncode == 0


def ensure_image(kind: str, force: bool = False) -> str:
    """The podman image for a container kind, built if missing."""
    if kind not in KINDS:
        raise TargetError(f"unknown container kind {kind!r} (one of {', '.join(KINDS)})")
    with build_lock():
        ref = image_ref(kind)
        if image_exists(ref) and not force:
            # keep :latest (molecule's default) on the current recipe
            podman("tag", ref, f"{IMAGE_PREFIX}{kind}:latest")
            return ref
        started = time.monotonic()
        rootfs = ensure_rootfs()
        if kind == "debian":
            _import_tree(rootfs, ref)
        else:
            work = cache_dir() / "rootfs" / f"{kind}-{kind_hash(kind)}.tmp"
            safe_rmtree(work)
            run(["cp", "-a", "--reflink=auto", ensure_runtime_rootfs(), work])
            (work / ".complete").unlink(missing_ok=True)
            try:
                apply_el_layout(work, EL_RELEASES[kind])
                _import_tree(work, ref)
            finally:
                safe_rmtree(work)
        _prune_images(kind, keep=ref)
        podman("tag", ref, f"{IMAGE_PREFIX}{kind}:latest")
        log(f"{kind} image {ref} ready in {time.monotonic() - started:.0f}s")
        return ref


def apply_el_layout(root: Path, rel: ElRelease) -> None:
    """Turn a copy of the Debian rootfs into an EL-layout host (for our code)."""
    layout = LAYOUTS / rel.kind / "root"
    # Replace, never write through: Debian's /etc/os-release is a symlink.
    for src in sorted(layout.rglob("*")):
        dest = root / src.relative_to(layout)
        if src.is_dir() and not src.is_symlink():
            if dest.is_symlink() or (dest.exists() and not dest.is_dir()):
                dest.unlink()
            dest.mkdir(parents=True, exist_ok=True)
            continue
        dest.parent.mkdir(parents=True, exist_ok=True)
        if dest.is_symlink() or dest.exists():
            dest.unlink()
        if src.is_symlink():
            dest.symlink_to(os.readlink(src))
        else:
            shutil.copy2(src, dest)
            os.chown(dest, 0, 0)
    for link, target in _el_symlinks(rel).items():
        path = root / link.lstrip("/")
        path.parent.mkdir(parents=True, exist_ok=True)
        if path.is_symlink() or path.exists():
            path.unlink()
        path.symlink_to(target)
    (root / "etc/debian_version").unlink(missing_ok=True)
    (root / "etc/machine-id").write_text(rel.machine_id + "\n")
    # Dummy kernels and initramfs images: grubby and our facts look at names only.
    for release in rel.kernels:
        for name in (f"vmlinuz-{release}", f"initramfs-{release}.img"):
            (root / "boot" / name).write_text(
                f"placeholder for {name}: test target, not bootable\n")
        if not release.startswith("0-rescue"):
            (root / "usr/lib/modules" / release).mkdir(parents=True, exist_ok=True)
    install_el_tools(root, rel.kind)
    if rel.authselect:
        built = el_authselect.ensure_build(ensure_rootfs(), base_hash())
        el_authselect.install(root, rel.kind, rel.authselect, built)


def _el_symlinks(rel: ElRelease) -> dict[str, str]:
    # As the release packages ship them: centos-release / rocky-release is the
    # file, redhat-release and system-release point at it.
    release_file = "centos-release" if rel.kind == "el7" else "rocky-release"
    links = {"/etc/grub2.cfg": "../boot/grub2/grub.cfg",
             "/etc/redhat-release": release_file, "/etc/system-release": release_file}
    if rel.kind == "el7":
        # authconfig writes *-ac files and points the PAM names at them
        for name in ("postlogin", "system-auth", "password-auth"):
            links[f"/etc/pam.d/{name}"] = f"{name}-ac"
    else:
        links["/etc/os-release"] = "../usr/lib/os-release"
    return links


# ---------------------------------------------------------------- VM


def _write_mbr(disk: Path, size: int) -> None:
    """One primary Linux partition from sector 2048 to the end (no sfdisk here)."""
    sectors = size // 512 - VM_PART_START
    entry = struct.pack("<B3sB3sII", 0x80, b"\xfe\xff\xff", 0x83, b"\xfe\xff\xff",
                        VM_PART_START, sectors)
    with open(disk, "r+b") as fh:
        fh.seek(446)
        fh.write(entry + b"\0" * 48 + b"\x55\xaa")


def ensure_vm_image(force: bool = False) -> Path:
    """The VM base disk (raw, MBR, GRUB installed), built if missing."""
    from tests.targets.vm import Qemu  # the VM runner needs the builder, not vice versa

    with build_lock():
        disk = vm_disk()
        if (disk.parent / ".complete").exists() and disk.exists() and not force:
            return disk
        started = time.monotonic()
        rootfs = ensure_rootfs()
        work = disk.parent.with_name(disk.parent.name + ".tmp")
        safe_rmtree(work)
        work.mkdir(parents=True)
        root = work / "root"
        log("building VM image: kernel and GRUB into a copy of the rootfs")
        run(["cp", "-a", "--reflink=auto", rootfs, root])
        (root / ".complete").unlink(missing_ok=True)
        policy = _block_daemons(root)
        try:
            with Chroot(root) as chroot:
                chroot.sh("apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install"
                          " -y -qq --no-install-recommends " + " ".join(VM_PACKAGES)
                          + " >/dev/null")
                chroot.sh(VM_CONFIGURE)
        finally:
            policy.unlink(missing_ok=True)
        kernel = work / "vmlinuz"
        initrd = work / "initrd.img"
        shutil.copy2(root / "vmlinuz", kernel)
        shutil.copy2(root / "initrd.img", initrd)
        raw = work / "disk.raw"
        with open(raw, "wb") as fh:
            fh.truncate(VM_DISK_SIZE)
        _write_mbr(raw, VM_DISK_SIZE)
        fs_kib = (VM_DISK_SIZE - VM_PART_START * 512) // 1024
        run(["mkfs.ext4", "-q", "-F", "-L", "memcg-fix-vm", "-E",
             f"offset={VM_PART_START * 512}", "-d", root, raw, f"{fs_kib}k"], timeout=900)
        safe_rmtree(root)
        log(f"first boot (direct kernel) to install GRUB on the MBR, "
            f"{time.monotonic() - started:.0f}s so far")
        qemu = Qemu(raw, fmt="raw", log_path=work / "firstboot-serial.log",
                    kernel=(kernel, initrd, "root=/dev/vda1 rw console=ttyS0,115200"))
        qemu.start()
        try:
            qemu.wait_ssh(timeout=600)
            qemu.ssh(VM_FIRSTBOOT, timeout=600)
            qemu.poweroff()
        finally:
            qemu.kill()
        with open(raw, "rb") as fh:
            mbr = fh.read(512)
        if b"GRUB" not in mbr or mbr[510:] != b"\x55\xaa":
            raise TargetError(f"GRUB boot code missing from the MBR of {raw}")
        kernel.unlink()
        initrd.unlink()
        (work / ".complete").write_text(f"{time.time():.0f}\n")
        safe_rmtree(disk.parent)
        work.rename(disk.parent)
        _prune(disk.parent.parent, "", keep=disk.parent.name)
        log(f"VM base image {disk} ready in {time.monotonic() - started:.0f}s")
        return disk


def build(kind: str, force: bool = False) -> str:
    if kind == "vm":
        return str(ensure_vm_image(force=force))
    return ensure_image(kind, force=force)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.targets.build",
                                     description="Build and cache memcg-fix test targets.")
    parser.add_argument("kinds", nargs="+", choices=[*KINDS, "vm", "all"])
    parser.add_argument("--force", action="store_true", help="rebuild even if cached")
    parser.add_argument("--env", action="store_true",
                        help="print shell exports (MEMCG_FIX_IMAGE_<KIND>, CONTAINERS_CONF) "
                             "for molecule instead of a summary")
    args = parser.parse_args(argv)
    kinds = [*KINDS, "vm"] if "all" in args.kinds else args.kinds
    if os.geteuid() != 0:
        print("error: building test targets needs root (debootstrap, podman, mount)",
              file=sys.stderr)
        return 2
    try:
        if args.force:
            with build_lock():
                ensure_rootfs(force=True)
        for kind in kinds:
            started = time.monotonic()
            result = build(kind, force=args.force)
            if args.env:
                name = "MEMCG_FIX_VM_DISK" if kind == "vm" else f"MEMCG_FIX_IMAGE_{kind.upper()}"
                print(f"export {name}={result}")
            else:
                print(f"{kind}: {result} ({time.monotonic() - started:.1f}s)")
        if args.env:
            print(f"export CONTAINERS_CONF={podman_env()['CONTAINERS_CONF']}")
    except TargetError as exc:
        print(f"error: {exc}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
