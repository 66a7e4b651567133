"""`memcg-fix detect --root` on host trees built from the real samples.

Each tree is a real directory laid out like the host it stands for: an EL7
sosreport (sos_commands/, installed-rpms, copied /proc and /sys/fs/cgroup),
an EL8/9 BLS host with cgroup v2, and a Debian cloud image with no /proc.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import Any

import pytest

from remediate.cli import main
from remediate.hostside.collect import collect
from remediate.hostside.reader import RootReader

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def put(root: Path, rel: str, text: str) -> None:
    path = root / rel
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)


def detect(capsys: pytest.CaptureFixture[str], root: Path, *extra: str) -> dict[str, Any]:
    code = main(["detect", "--root", str(root), "--format", "json", *extra])
    out = capsys.readouterr().out
    assert code == 0
    doc = json.loads(out)
    assert doc["schema_version"] == 1
    [host] = doc["hosts"]
    return host


def unknown_facts(host: dict[str, Any]) -> set[str]:
    return {u["fact"] for u in host["unknown"]}


@pytest.fixture
def el7_sosreport(tmp_path: Path) -> Path:
    root = tmp_path / "sosreport-web1-2024-01-01-abcdef"
    put(root, "sos_commands/kernel/uname_-a", sample("uname/centos7-uname-a.txt"))
    os.symlink("sos_commands/kernel/uname_-a", root / "uname")
    put(root, "sos_commands/kernel/dmesg", sample("dmesg/centos7-slub-messages.txt")
        + sample("dmesg/el7-kmem-cache-close.txt"))
    # sosreport's installed-rpms: "%-59{NVRA} %{INSTALLTIME:date}"
    rpms = "".join(f"{line:<59} Tue 03 Nov 2020 10:00:00 AM UTC\n"
                   for line in sample("rpm/centos7-rpm-q-kernel.txt").split())
    rpms += f"{'runc-1.0.0-67.rc10.el7_8.x86_64':<59} Tue 03 Nov 2020 10:00:00 AM UTC\n"
    put(root, "installed-rpms", rpms)
    put(root, "proc/cmdline", sample("cmdline/centos7.txt"))
    put(root, "proc/cgroups", sample("proc_cgroups/el7-3.10.0-693-at-65535.txt"))
    put(root, "proc/1/mountinfo", sample("mountinfo/fedora20-v1.txt"))
    put(root, "proc/meminfo", sample("meminfo/debian12-6.18.txt"))
    put(root, "proc/slabinfo", sample("slabinfo/el7-duplicate-slab-test.txt"))
    for rel in ("kubepods", "kubepods/burstable", "system.slice"):
        put(root, f"sys/fs/cgroup/memory/{rel}/memory.kmem.usage_in_bytes", "12288\n")
    put(root, "etc/default/grub", sample("default_grub/el-default-grub.txt"))
    put(root, "etc/pam.d/postlogin-ac", sample("pam/rhel7-postlogin-ac.txt"))
    os.symlink("postlogin-ac", root / "etc/pam.d/postlogin")
    put(root, "etc/hostname", "web1.example.com\n")
    return root


def test_el7_sosreport(capsys: pytest.CaptureFixture[str], el7_sosreport: Path) -> None:
    host = detect(capsys, el7_sosreport)
    facts = host["facts"]
    assert host["host"] == "web1.example.com"
    assert facts["collector"]["sosreport"] is True
    kernel = facts["kernel"]
    assert (kernel["release"], kernel["family"], kernel["upstream_version"]) == (
        "3.10.0-1160.2.2.el7.x86_64", "rhel", "3.10.0")
    assert kernel["nokmem_supported"] is True  # 1160.2.2 >= 1062.4.1
    assert (facts["cgroup"]["mode"], facts["cgroup"]["memory_controller"]) == ("v1", "v1")
    assert (facts["memcg"]["total"], facts["memcg"]["live"], facts["memcg"]["dying"]) == (
        65535, 4, 65531)
    assert facts["cmdline"]["nokmem"] is False
    assert facts["kmem"]["accounting_active"] is True
    assert facts["kmem"]["nokmem_honoured"] is False
    assert facts["kernels"]["installed"] == ["3.10.0-1127.el7.x86_64",
                                             "3.10.0-1160.2.2.el7.x86_64"]
    assert facts["kernels"]["package_manager"] == "rpm"
    assert facts["runc"]["version"] == "1.0.0-rc10"
    assert facts["boot"]["default_grub"]["nokmem"] is False
    pam = facts["pam"]
    assert (pam["lastlog_active"], pam["lastlog_writes_wtmp"], pam["lastlog_writes_lastlog"],
            pam["authconfig_managed"], pam["authselect_managed"]) == (True, False, True, True,
                                                                       False)
    assert pam["files"][0]["link"] == "postlogin-ac"
    sigs = facts["kernel_log"]["signatures"]
    assert facts["kernel_log"]["source"] == "sos"
    assert sigs["slub_alloc_failure"]["count"] == 5
    assert sigs["kmem_cache_close"]["caches"] == ["slab_test"]
    assert facts["memory_cost"]["duplicate_slab_caches"] == ["slab_test"]
    # no grub.cfg in this report: the boot entries are unknown, with the reason
    assert "boot.nokmem_all_entries" in unknown_facts(host)


def test_el7_sosreport_with_nokmem_on_every_entry(capsys: pytest.CaptureFixture[str],
                                                  el7_sosreport: Path) -> None:
    cfg = "".join(
        f"menuentry 'CentOS Linux ({r}) 7 (Core)' --class centos {{\n"
        f"\tlinux16 /vmlinuz-{r} root=/dev/mapper/centos-root ro crashkernel=auto "
        f"cgroup.memory=nokmem\n}}\n"
        for r in ("3.10.0-1160.2.2.el7.x86_64", "3.10.0-1127.el7.x86_64"))
    put(el7_sosreport, "boot/grub2/grub.cfg", cfg)
    put(el7_sosreport, "proc/cmdline", sample("cmdline/centos7.txt").strip()
        + " cgroup.memory=nokmem\n")
    facts = detect(capsys, el7_sosreport)["facts"]
    assert facts["boot"]["backend"] == "grub2-legacy"
    assert facts["boot"]["nokmem_all_entries"] is True
    assert facts["cmdline"]["nokmem"] is True
    assert facts["kmem"]["nokmem_honoured"] is True
    assert facts["kernels"]["default"] == "3.10.0-1160.2.2.el7.x86_64"
    assert facts["kernels"]["reboot_pending"] is False


def test_el8_bls_host_on_cgroup_v2(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "el8"
    put(root, "proc/sys/kernel/osrelease", "4.18.0-74.el8.x86_64\n")
    put(root, "proc/sys/kernel/version", "#1 SMP Fri Feb 22 13:53:27 UTC 2019\n")
    put(root, "proc/self/mountinfo", sample("mountinfo/v2-unified.txt"))
    put(root, "proc/cgroups", sample("proc_cgroups/v2-only.txt"))
    put(root, "proc/cmdline", "BOOT_IMAGE=(hd0,msdos1)/vmlinuz-4.18.0-74.el8.x86_64 "
        + sample("grubenv/rhel8-grubenv.txt").split("kernelopts=")[1].split("\n")[0])
    put(root, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    put(root, "sys/fs/cgroup/cgroup.stat", "nr_descendants 3\nnr_dying_descendants 12\n")
    for rel in ("system.slice", "user.slice", "user.slice/user-1000.slice"):
        (root / "sys/fs/cgroup" / rel).mkdir(parents=True)
    put(root, "boot/grub2/grubenv", sample("grubenv/rhel8-grubenv.txt"))
    put(root, "boot/loader/entries/rhel-20190227183418-4.18.0-74.el8.x86_64.conf",
        sample("bls/rhel8-4.18.0-74.el8.x86_64.conf"))
    put(root, "etc/pam.d/postlogin", sample("pam/rhel8-postlogin-authselect.txt"))
    facts = detect(capsys, root, "--host", "el8-db")["facts"]
    assert (facts["kernel"]["family"], facts["kernel"]["el_tag"]) == ("rhel", "el8")
    assert facts["kernel"]["nokmem_supported"] is True  # 4.18 >= 4.6
    assert (facts["cgroup"]["mode"], facts["cgroup"]["memory_controller"]) == ("v2", "v2")
    assert (facts["memcg"]["live"], facts["memcg"]["dying"]) == (4, 12)
    assert facts["memcg"]["dying_method"] == "v2:nr_dying_descendants"
    assert facts["boot"]["backend"] == "bls"
    assert facts["boot"]["grubenv_kernelopts"].startswith("root=/dev/mapper/root_vg-lv_root")
    assert facts["boot"]["nokmem_all_entries"] is False
    assert facts["kmem"]["accounting_active"] is True  # v2 without nokmem
    assert facts["pam"]["authselect_managed"] is True
    assert facts["pam"]["lastlog_writes_wtmp"] is False


def test_debian_cloud_image(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    root = tmp_path / "debian-image"
    put(root, "etc/os-release", sample("os_release/debian12.txt"))
    put(root, "etc/default/grub", sample("default_grub/debian12-default-grub.txt"))
    put(root, "etc/default/grub.d/50-cloudimg-settings.cfg",
        sample("default_grub/50-cloudimg-settings.cfg"))
    put(root, "etc/default/grub.d/90-memcg-fix.cfg",
        'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX cgroup.memory=nokmem"\n')
    put(root, "boot/grub/grub.cfg", sample("grub_cfg/debian12-grub-cfg-excerpt.txt"))
    status = sample("dpkg/debian12-status-excerpt.txt") + (
        "\nPackage: linux-image-6.1.0-37-amd64\nStatus: install ok installed\n"
        "Version: 6.1.140-1\n")
    put(root, "var/lib/dpkg/status", status)
    put(root, "etc/pam.d/login", sample("pam/debian12-login.txt"))
    put(root, "etc/pam.d/sshd", sample("pam/debian12-sshd.txt"))
    host = detect(capsys, root, "--host", "img")
    facts = host["facts"]
    assert host["host"] == "img"
    assert facts["distro"]["id"] == "debian" and facts["distro"]["major"] == 12
    grub = facts["boot"]["default_grub"]
    assert grub["GRUB_CMDLINE_LINUX"].strip() == "cgroup.memory=nokmem"
    assert grub["GRUB_CMDLINE_LINUX_DEFAULT"] == "console=tty1 console=ttyS0"
    assert grub["nokmem"] is True
    assert grub["files"][-1] == "/etc/default/grub.d/90-memcg-fix.cfg"
    assert facts["boot"]["backend"] == "debian-grub"
    assert facts["boot"]["nokmem_all_entries"] is False  # update-grub has not run yet
    assert facts["kernels"]["installed"] == ["6.1.0-37-amd64"]
    assert facts["kernels"]["default"] == "6.1.0-37-amd64"
    assert facts["runc"]["version"] == "1.1.5"
    assert facts["pam"]["lastlog_active"] is True
    assert facts["pam"]["lastlog_writes_wtmp"] is True
    # an image has no running kernel and no cgroups: unknown, with reasons
    assert facts["kernel"]["release"] is None
    assert {"kernel", "cgroup.mode", "memcg"} <= unknown_facts(host)
    reasons = {u["fact"]: u["reason"] for u in host["unknown"]}
    assert "osrelease" in reasons["kernel"] or "uname" in reasons["kernel"]


def test_a_nearly_empty_root_is_all_unknown_but_still_a_document(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    put(tmp_path, "etc/hostname", "web9\n")
    host = detect(capsys, tmp_path)
    assert host["host"] == "web9"
    assert {"kernel", "distro", "cgroup.mode", "memcg", "cmdline", "pam",
            "kernel_log"} <= unknown_facts(host)
    assert all(u["reason"] for u in host["unknown"])


def test_a_root_with_nothing_to_read_is_unusable_input(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # an image directory that is not mounted: the README promises exit 3
    (tmp_path / "mnt").mkdir()
    assert main(["detect", "--root", str(tmp_path / "mnt"), "--format", "json"]) == 3
    captured = capsys.readouterr()
    assert captured.out == ""
    assert captured.err.count("\n") == 1 and "nothing memcg-fix reads is there" in captured.err


def test_root_reads_nothing_outside_it(capsys: pytest.CaptureFixture[str],
                                       tmp_path: Path) -> None:
    root = tmp_path / "root"
    (root / "etc").mkdir(parents=True)
    (root / "proc").mkdir()
    # absolute links that would read this host's files if followed outside the root
    os.symlink("/etc/os-release", root / "etc/os-release")
    os.symlink("/proc/cmdline", root / "proc/cmdline")
    os.symlink("/proc/cgroups", root / "proc/cgroups")
    put(root, "etc/hostname", "inside\n")
    host = detect(capsys, root)
    assert host["facts"]["distro"]["id"] is None
    assert host["facts"]["cmdline"]["raw"] is None
    assert {"distro", "cmdline"} <= unknown_facts(host)


def test_table_format(capsys: pytest.CaptureFixture[str], el7_sosreport: Path) -> None:
    assert main(["detect", "--root", str(el7_sosreport)]) == 0
    out = capsys.readouterr().out
    header, row = out.splitlines()[:2]
    assert header.split()[:4] == ["HOST", "KERNEL", "FAMILY", "CGROUP"]
    assert row.split()[:8] == ["web1.example.com", "3.10.0-1160.2.2.el7.x86_64", "rhel", "v1",
                               "v1", "4", "65531", "yes"]
    assert "boot.nokmem_all_entries" in out


def test_root_that_is_not_a_directory(capsys: pytest.CaptureFixture[str],
                                      tmp_path: Path) -> None:
    (tmp_path / "file").write_text("x")
    assert main(["detect", "--root", str(tmp_path / "file")]) == 3
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "is not a directory" in err


@pytest.mark.parametrize("argv", [["detect"], ["detect", "--local", "--root", "/"],
                                  ["detect", "--local", "--format", "yaml"]])
def test_bad_usage_is_one_line_and_exit_2(capsys: pytest.CaptureFixture[str],
                                          argv: list[str]) -> None:
    assert main(argv) == 2
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and err.startswith("memcg-fix: detect:")


def test_a_tool_that_is_not_installed_is_not_unknown(capsys: pytest.CaptureFixture[str],
                                                     tmp_path: Path) -> None:
    # a package database without runc and kubelet: both are known to be absent
    root = tmp_path / "no-runc"
    put(root, "etc/os-release", sample("os_release/debian12.txt"))
    put(root, "var/lib/dpkg/status",
        "Package: bash\nStatus: install ok installed\nVersion: 5.2.15-2+b2\n")
    host = detect(capsys, root)
    facts = host["facts"]
    assert facts["runc"]["installed"] is False and facts["kubelet"]["installed"] is False
    assert not {"runc.version", "runc.installed", "kubelet.version"} & unknown_facts(host)
    assert main(["detect", "--root", str(root)]) == 0
    header, row = capsys.readouterr().out.splitlines()[:2]
    assert row.split()[header.split().index("RUNC")] == "none"
    # no package data at all: whether runc is installed is unknown, and says why
    bare = tmp_path / "bare"
    put(bare, "etc/os-release", sample("os_release/debian12.txt"))
    host = detect(capsys, bare)
    assert host["facts"]["runc"]["installed"] is None
    reasons = {u["fact"]: u["reason"] for u in host["unknown"]}
    assert "no rpm or dpkg package data" in reasons["runc.installed"]


def _v1_root(root: Path, release: str) -> None:
    put(root, "sos_commands/kernel/uname_-a",
        f"Linux h {release} #1 SMP Mon Jan 1 00:00:00 UTC 2024 x86_64 x86_64 x86_64 GNU/Linux\n")
    put(root, "proc/1/mountinfo", sample("mountinfo/fedora20-v1.txt"))
    (root / "sys/fs/cgroup/memory/system.slice").mkdir(parents=True)


def test_kmem_accounting_from_per_memcg_slab_caches(capsys: pytest.CaptureFixture[str],
                                                    tmp_path: Path) -> None:
    # an el7 sosreport without memory.kmem.* files, but with the per-memcg
    # caches that only kmem accounting creates
    root = tmp_path / "caches"
    _v1_root(root, "3.10.0-957.27.2.el7.x86_64")
    put(root, "proc/cmdline", sample("cmdline/centos7.txt"))
    for line in sample("slab/ubuntu-docker-memcg-caches.txt").split():
        (root / line.lstrip("/")).mkdir(parents=True)
    kmem = detect(capsys, root)["facts"]["kmem"]
    assert kmem["accounting_active"] is True
    assert kmem["evidence"].startswith("per-memcg slab caches exist")
    assert "(602:docker.socket)" in kmem["evidence"]


class _ListingsCounted(RootReader):
    """The real reader of a host root, counting the cgroup/ directories it lists."""

    def __init__(self, root: str) -> None:
        super().__init__(root)
        self.cgroup_listings: list[str] = []

    def listdir(self, path: str) -> list[str]:
        if path.startswith("/sys/kernel/slab/") and path.endswith("/cgroup"):
            self.cgroup_listings.append(path)
        return super().listdir(path)


def _slab_root(root: Path, caches: dict[str, list[str] | None]) -> None:
    """An el7 v1 host root whose /sys/kernel/slab holds ``caches``: each name
    maps to the entries of its cgroup/ directory, or to None for a cache
    without one."""
    _v1_root(root, "3.10.0-957.27.2.el7.x86_64")
    put(root, "proc/cmdline", sample("cmdline/centos7.txt"))
    for name, entries in caches.items():
        (root / "sys/kernel/slab" / name).mkdir(parents=True)
        if entries is not None:
            (root / "sys/kernel/slab" / name / "cgroup").mkdir()
        for entry in entries or []:
            (root / "sys/kernel/slab" / name / "cgroup" / entry).mkdir()


def test_slab_caches_without_cgroup_dirs_are_not_all_probed(tmp_path: Path) -> None:
    # 5.9+ (or memcg sysfs off): no root cache has a cgroup/ directory, so
    # after the first three the other 397 are not listed, and nothing is found
    root = tmp_path / "no-cgroup-dirs"
    _slab_root(root, {f"cache-{i:03d}": None for i in range(400)})
    reader = _ListingsCounted(str(root))
    kmem = collect(reader)["facts"]["kmem"]
    assert reader.cgroup_listings == [f"/sys/kernel/slab/cache-{i:03d}/cgroup" for i in range(3)]
    assert not (kmem["evidence"] or "").startswith("per-memcg slab caches exist")


def test_slab_caches_with_cgroup_dirs_are_probed_past_empty_ones(tmp_path: Path) -> None:
    # once one root cache has a cgroup/ directory the kernel makes them, so
    # caches without one (or with an empty one) do not stop the probe
    root = tmp_path / "cgroup-dirs"
    caches: dict[str, list[str] | None] = {"a-first": [], "b": None, "c": None, "d": None,
                                           "e": None, "f-dentry": ["dentry(602:docker.socket)"]}
    _slab_root(root, caches)
    reader = _ListingsCounted(str(root))
    kmem = collect(reader)["facts"]["kmem"]
    assert len(reader.cgroup_listings) == len(caches)
    assert kmem["accounting_active"] is True
    assert "/sys/kernel/slab/f-dentry/cgroup/dentry(602:docker.socket)" in kmem["evidence"]


@pytest.mark.parametrize(("cmdline", "active"), [("ro quiet\n", True),
                                                 ("ro quiet cgroup.memory=nokmem\n", False)])
def test_kmem_accounting_on_v1_from_4_6_follows_nokmem(capsys, tmp_path, cmdline, active):
    # RHEL 8's 4.18 on v1: every memcg accounts kmem unless nokmem (b313aeee2509)
    root = tmp_path / "el8"
    _v1_root(root, "4.18.0-513.5.1.el8_9.x86_64")
    put(root, "proc/cmdline", cmdline)
    host = detect(capsys, root)
    assert host["facts"]["kmem"]["accounting_active"] is active
    assert "from 4.6 every v1 memcg accounts kernel memory" in host["facts"]["kmem"]["evidence"]
    assert "kmem.accounting_active" not in unknown_facts(host)


def test_kmem_circumstantial_signs(capsys: pytest.CaptureFixture[str],
                                  el7_sosreport: Path) -> None:
    kmem = detect(capsys, el7_sosreport)["facts"]["kmem"]
    assert kmem["circumstantial"] == [
        "runc installed 1.0.0-rc10 (package runc 1.0.0-67.rc10.el7_8)"]


@pytest.mark.parametrize("sos_file", ["ls_-lt_.sys.kernel.slab", "ls_-alZ_.sys.kernel.slab"])
def test_kmem_accounting_from_a_sosreports_listing_of_sys_kernel_slab(capsys, tmp_path, sos_file):
    # a sosreport keeps /sys/kernel/slab only as a listing: `ls -lt` (sos up to
    # 4.7), `ls -alZ` with SELinux contexts and . and .. (later sos)
    root = tmp_path / "sos"
    _v1_root(root, "3.10.0-693.17.1.el7.x86_64")
    put(root, "proc/cmdline", sample("cmdline/centos7.txt"))
    listing = sample("slab/el7-sos-ls-lt-sys-kernel-slab.txt")
    if "alZ" in sos_file:
        listing = "".join(
            line.replace(" root root ", " root root system_u:object_r:sysfs_t:s0 ", 1) + "\n"
            for line in listing.splitlines())
        listing += ("drwxr-xr-x. 180 root root system_u:object_r:sysfs_t:s0 0 Feb 20 09:01 .\n"
                    "dr-xr-xr-x.  13 root root system_u:object_r:sysfs_t:s0 0 Feb 20 09:01 ..\n")
    put(root, "sos_commands/kernel/" + sos_file, listing)
    host = detect(capsys, root)
    kmem = host["facts"]["kmem"]
    assert kmem["accounting_active"] is True
    assert kmem["evidence"].startswith("per-memcg slab caches exist")
    assert (f"sos_commands/kernel/{sos_file}: ip6_dst_cache(0:18479a49f76b66461d8fedd17a6eba"
            in kmem["evidence"])
    assert "kmem.accounting_active" not in unknown_facts(host)
    # the seed's `ls /sys/kernel/slab | wc -l`, from the same listing
    assert host["facts"]["memory_cost"]["sys_kernel_slab_entries"] == 12


def test_circumstantial_signs_are_shown_beside_an_unknown_and_decide_nothing(
        capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    # an el7 sosreport with runc rc10 in installed-rpms but no kmem evidence
    root = tmp_path / "sos"
    _v1_root(root, "3.10.0-957.27.2.el7.x86_64")
    put(root, "proc/cmdline", sample("cmdline/centos7.txt"))
    put(root, "installed-rpms", f"{'runc-1.0.0-67.rc10.el7_8.x86_64':<59} Tue 03 Nov 2020\n")
    host = detect(capsys, root)
    assert host["facts"]["kmem"]["accounting_active"] is None
    reasons = {u["fact"]: u["reason"] for u in host["unknown"]}
    assert reasons["kmem.accounting_active"].endswith(
        "; circumstantial only, deciding nothing: runc installed 1.0.0-rc10 "
        "(package runc 1.0.0-67.rc10.el7_8)")
