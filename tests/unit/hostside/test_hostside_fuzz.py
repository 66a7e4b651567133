"""Property-based fuzzing: no host-side parser, and not the collector, lets an
exception escape on any input, and the collector always returns the contract's
shape.

Inputs mix arbitrary text with lines and tokens of the real samples (so the
fuzzer reaches the interesting branches), and arbitrary bytes for files.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path

from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st

from remediate.hostside import (
    boot,
    cgroupfs,
    cmdline,
    kernel,
    kernel_log,
    memory_cost,
    packages,
    pam,
)
from remediate.hostside.collect import collect
from remediate.hostside.reader import RootReader

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"
SAMPLE_LINES = sorted({
    line
    for path in SAMPLES.rglob("*") if path.is_file() and path.suffix != ".origin"
    for line in path.read_text(errors="replace").splitlines()[:60]
})
TOKENS = [
    *sorted({tok for line in SAMPLE_LINES for tok in line.split()})[:3000],
    '"', "=", "-", "--", "#", "\\", "[", "]", "{", "}", "$kernelopts", "${X}", "`", "'",
    "index=", "kernel=", 'args="', "menuentry", "linux", "session", "pam_lastlog.so",
    "nowtmp", "noupdate", "memory", "cgroup", "cgroup2", "0", "-1", "65535", "\x00", "\t"]

lines = st.one_of(
    st.sampled_from(SAMPLE_LINES),
    st.lists(st.sampled_from(TOKENS), max_size=12).map(" ".join),
    st.text(max_size=80),
)
texts = st.lists(lines, max_size=40).map("\n".join)

FUZZ = settings(max_examples=300, deadline=None,
                suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])

TEXT_PARSERS = [
    cgroupfs.parse_mountinfo, cgroupfs.parse_proc_cgroups, cgroupfs.parse_cgroup_stat,
    cgroupfs.parse_controllers, kernel.parse_os_release, kernel.release_from_kernel_path,
    cmdline.split_args, cmdline.parse_cmdline, boot.parse_grubby_info, boot.parse_default_grub,
    boot.parse_bls_entry, boot.parse_grubenv, boot.parse_grub_cfg, packages.parse_rpm_kernels,
    packages.parse_dpkg_list, packages.parse_dpkg_status, packages.parse_runc_version,
    packages.parse_kubelet_version, packages.upstream_of_package_version, pam.parse_pam_lines,
    pam.file_owner, pam.lastlog_lines, kernel_log.scan_kernel_log, memory_cost.parse_meminfo,
    memory_cost.parse_slabinfo, memory_cost.parse_ls_names,
]


@FUZZ
@given(text=texts)
def test_text_parsers_never_raise(text: str) -> None:
    for parser in TEXT_PARSERS:
        parser(text)


@FUZZ
@given(release=lines, version=st.one_of(st.none(), lines))
def test_parse_uname_never_raises(release: str, version: str | None) -> None:
    facts = kernel.parse_uname(release, version)
    assert facts["family"] in ("rhel", "ol-uek", "amzn", "fedora", "debian", "ubuntu", "suse",
                               "upstream")


@FUZZ
@given(text=texts, env=st.dictionaries(st.sampled_from(["kernelopts", "tuned_params", "X"]),
                                       lines, max_size=3))
def test_boot_helpers_never_raise(text: str, env: dict[str, str]) -> None:
    boot.expand_bls_options(text, env)
    boot.parse_default_grub(text, env)
    entries = boot.bls_entries([("a.conf", text), ("b.conf", text[::-1])], env)
    assert all(isinstance(e["args"], list) for e in entries)


@FUZZ
@given(text=texts, name=st.sampled_from(["runc", "kernel", "", "a.b"]))
def test_package_helpers_never_raise(text: str, name: str) -> None:
    packages.rpm_package_version(text, name)
    packages.debian_kernel_releases(packages.parse_dpkg_list(text))
    caches = memory_cost.parse_slabinfo(text)
    memory_cost.duplicate_caches(caches)
    memory_cost.memcg_cache(caches)


@FUZZ
@given(mountinfo=texts, path=lines)
def test_layout_helpers_never_raise(mountinfo: str, path: str) -> None:
    layout = cgroupfs.memory_layout("/nonexistent-memcg-fix-root", mountinfo, live=False)
    cgroupfs.is_inside_memory_hierarchy(path, layout)
    cgroupfs.is_inside_memory_hierarchy(path, {"memory_mount": path})


HOST_FILES = [
    "proc/sys/kernel/osrelease", "proc/sys/kernel/version", "proc/cmdline", "proc/cgroups",
    "proc/self/mountinfo", "proc/meminfo", "proc/slabinfo", "etc/os-release",
    "etc/default/grub", "etc/default/grub.d/50-x.cfg", "etc/kernel/cmdline",
    "boot/grub2/grubenv", "boot/grub2/grub.cfg", "boot/loader/entries/x.conf",
    "etc/pam.d/postlogin", "etc/pam.d/login", "var/lib/dpkg/status", "var/log/messages",
    "sys/fs/cgroup/memory/a/memory.kmem.usage_in_bytes", "sys/fs/cgroup/cgroup.stat",
    "sys/fs/cgroup/cgroup.controllers", "installed-rpms", "sos_commands/kernel/dmesg",
    "uname", "etc/hostname",
]
contents = st.one_of(texts, st.binary(max_size=200).map(lambda b: b.decode("latin-1")))


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(files=st.dictionaries(st.sampled_from(HOST_FILES), contents, max_size=len(HOST_FILES)),
       links=st.lists(st.tuples(st.sampled_from(HOST_FILES),
                                st.sampled_from(["/", "..", "../../..", "/etc/passwd", "x",
                                                 "/proc/cgroups"])), max_size=4))
# found by this test: a self-referencing /proc/cgroups link escaped as an exception
@example(files={"sys/fs/cgroup/memory/a/memory.kmem.usage_in_bytes": ""},
         links=[("proc/cgroups", "/proc/cgroups")])
def test_collect_on_garbage_host_roots_never_raises(files: dict[str, str],
                                                    links: list[tuple[str, str]]) -> None:
    root = Path(tempfile.mkdtemp(prefix="memcg-fix-fuzz-"))
    try:
        for rel, text in files.items():
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            path.write_bytes(text.encode("utf-8", "surrogatepass"))
        for rel, target in links:
            path = root / rel
            path.parent.mkdir(parents=True, exist_ok=True)
            if not path.exists() and not path.is_symlink():
                os.symlink(target, path)
        result = collect(RootReader(str(root)))
    finally:
        shutil.rmtree(root)
    assert set(result) == {"facts", "unknown"}
    assert all(set(u) == {"fact", "reason"} and u["reason"] for u in result["unknown"])
    internal = [u for u in result["unknown"] if "internal error" in u["reason"]]
    assert internal == []
