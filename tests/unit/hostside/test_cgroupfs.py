"""cgroupfs: mount tables, layouts, memcg counts, on real samples and real trees.

Host trees here are real directories in a temp dir laid out like a host
root (``<root>/proc/cgroups``, ``<root>/sys/fs/cgroup/memory/...``); the
live kernel is read only (tests/live/ creates cgroups).
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from remediate.hostside import cgroupfs

SAMPLES = Path(__file__).resolve().parents[2] / "data" / "samples"


def sample(name: str) -> str:
    return (SAMPLES / name).read_text()


def write(root: Path, rel: str, text: str) -> Path:
    path = root / rel.lstrip("/")
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text)
    return path


# -- parse_mountinfo -----------------------------------------------------------

def test_mountinfo_fedora_v1_finds_every_v1_hierarchy() -> None:
    mounts = cgroupfs.parse_mountinfo(sample("mountinfo/fedora20-v1.txt"))
    cgroup = {m["mount_point"]: m for m in mounts if m["fstype"] == "cgroup"}
    assert "/sys/fs/cgroup/memory" in cgroup
    assert "memory" in cgroup["/sys/fs/cgroup/memory"]["super_options"]
    assert cgroup["/sys/fs/cgroup/cpu,cpuacct"]["super_options"] == [
        "rw", "cpuacct", "cpu", "clone_children"]
    assert all(m["root"] == "/" for m in cgroup.values())


def test_mountinfo_octal_escapes_are_decoded() -> None:
    mounts = cgroupfs.parse_mountinfo(sample("mountinfo/fedora20-v1.txt"))
    cifs = [m for m in mounts if m["fstype"] == "cifs"]
    assert cifs[0]["source"] == "//foo/BLA BLA BLA/"


def test_mountinfo_optional_fields_do_not_shift_columns() -> None:
    # "shared:13 master:1" optional fields sit between options and "-"
    line = "36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 shared:3 - ext3 /dev/root rw,errors=continue"
    [m] = cgroupfs.parse_mountinfo(line)
    assert (m["fstype"], m["source"], m["super_options"]) == (
        "ext3", "/dev/root", ["rw", "errors=continue"])


def test_proc_mounts_lines_are_read_too() -> None:
    text = ("cgroup /sys/fs/cgroup/memory cgroup rw,nosuid,nodev,noexec,relatime,memory 0 0\n"
            "cgroup2 /sys/fs/cgroup/unified cgroup2 rw,nosuid,nodev,noexec,relatime 0 0\n")
    mounts = cgroupfs.parse_mountinfo(text)
    assert [m["fstype"] for m in mounts] == ["cgroup", "cgroup2"]
    assert "memory" in mounts[0]["super_options"]


def test_mountinfo_garbage_lines_are_skipped() -> None:
    assert cgroupfs.parse_mountinfo("x\n1 2 3\n\n - - -\n") == []


# -- layouts from samples --------------------------------------------------------

@pytest.mark.parametrize(
    ("name", "mode", "memory", "mount", "unified"),
    [
        ("mountinfo/fedora20-v1.txt", "v1", "v1", "/sys/fs/cgroup/memory", None),
        ("mountinfo/debian12-hybrid-6.18.txt", "hybrid", "v1", "/sys/fs/cgroup/memory",
         "/sys/fs/cgroup/unified"),
    ],
)
def test_layout_from_mountinfo(tmp_path: Path, name: str, mode: str, memory: str, mount: str,
                               unified: str | None) -> None:
    layout = cgroupfs.memory_layout(str(tmp_path), sample(name), live=False)
    assert layout["mode"] == mode
    assert layout["memory_controller"] == memory
    assert layout["memory_mount"] == mount
    assert layout["unified_mount"] == unified
    assert layout["evidence"] == "mountinfo"


def test_layout_v2_needs_the_controllers_file_to_name_memory(tmp_path: Path) -> None:
    text = sample("mountinfo/v2-unified.txt")
    layout = cgroupfs.memory_layout(str(tmp_path), text, live=False)
    assert (layout["mode"], layout["memory_controller"]) == ("v2", None)
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io memory pids\n")
    layout = cgroupfs.memory_layout(str(tmp_path), text, live=False)
    assert (layout["mode"], layout["memory_controller"], layout["memory_mount"]) == (
        "v2", "v2", "/sys/fs/cgroup")


def test_layout_v2_without_memory_is_absent(tmp_path: Path) -> None:
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpuset cpu io pids\n")
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/v2-unified.txt"), live=False)
    assert layout["memory_controller"] == "absent"


def test_layout_v2_from_proc_cgroups_when_controllers_file_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "proc/cgroups", sample("proc_cgroups/v2-only.txt"))
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/v2-unified.txt"), live=False)
    assert layout["memory_controller"] == "v2"


def test_layout_in_a_container_records_the_subtree_root(tmp_path: Path) -> None:
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/docker-container-v1.txt"),
                                    live=False)
    assert layout["memory_controller"] == "v1"
    assert layout["memory_mount_root"].startswith("/system.slice/docker-")


def test_layout_reads_the_mount_table_of_the_root(tmp_path: Path) -> None:
    write(tmp_path, "proc/mounts",
          "cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0\n")
    layout = cgroupfs.memory_layout(str(tmp_path), live=False)
    assert (layout["mode"], layout["memory_mount"], layout["evidence"]) == (
        "v1", "/sys/fs/cgroup/memory", "mountinfo")


def test_layout_from_directory_layout_alone(tmp_path: Path) -> None:
    (tmp_path / "sys/fs/cgroup/memory").mkdir(parents=True)
    write(tmp_path, "sys/fs/cgroup/unified/cgroup.controllers", "\n")
    layout = cgroupfs.memory_layout(str(tmp_path), live=False)
    assert (layout["mode"], layout["memory_controller"], layout["evidence"]) == (
        "hybrid", "v1", "layout")


def test_layout_of_an_empty_root_is_unknown(tmp_path: Path) -> None:
    layout = cgroupfs.memory_layout(str(tmp_path), live=False)
    assert layout["mode"] is None and layout["memory_controller"] is None


def test_live_layout_agrees_with_the_kernels_mount_table() -> None:
    layout = cgroupfs.memory_layout()
    with open("/proc/self/mountinfo") as handle:
        expected = cgroupfs.memory_layout("/tmp-nonexistent-root", handle.read(), live=False)
    assert layout["evidence"] == "statfs"
    assert layout["mode"] == expected["mode"]
    assert layout["memory_mount"] == expected["memory_mount"]


def test_statfs_magic_of_a_real_cgroup2_mount() -> None:
    mounts = cgroupfs.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    cgroup2 = [m["mount_point"] for m in mounts if m["fstype"] == "cgroup2"]
    if not cgroup2:
        pytest.skip("no cgroup2 mount on this host")
    assert cgroupfs.statfs_magic(cgroup2[0]) == cgroupfs.CGROUP2_SUPER_MAGIC
    assert cgroupfs.statfs_magic("/nonexistent/path") is None


# -- /proc/cgroups and cgroup.stat --------------------------------------------------

def test_proc_cgroups_el7_at_the_id_limit() -> None:
    rows = cgroupfs.parse_proc_cgroups(sample("proc_cgroups/el7-3.10.0-693-at-65535.txt"))
    assert rows["memory"] == {"hierarchy": 7, "num_cgroups": 65535, "enabled": True}
    assert rows["memory"]["num_cgroups"] == cgroupfs.MEMCG_ID_LIMIT
    assert len(rows) == 12


def test_proc_cgroups_v2_only_puts_memory_on_hierarchy_zero() -> None:
    rows = cgroupfs.parse_proc_cgroups(sample("proc_cgroups/v2-only.txt"))
    assert rows["memory"]["hierarchy"] == 0
    assert {r["num_cgroups"] for r in rows.values()} == {809}


def test_cgroup_stat_sample() -> None:
    stats = cgroupfs.parse_cgroup_stat(sample("cgroup_stat/debian12-unified-6.18.txt"))
    assert "nr_descendants" in stats and "nr_dying_descendants" in stats
    assert all(isinstance(v, int) for v in stats.values())


# -- count_memcg_dirs ----------------------------------------------------------------

def test_count_counts_every_directory_and_follows_no_link(tmp_path: Path) -> None:
    root = tmp_path / "memory"
    for rel in ("a", "a/b", "a/b/c", "d"):
        (root / rel).mkdir(parents=True)
        (root / rel / "memory.usage_in_bytes").write_text("0\n")
    outside = tmp_path / "outside"
    for i in range(5):
        (outside / str(i)).mkdir(parents=True)
    os.symlink(outside, root / "a" / "link-to-outside")
    os.symlink(root, root / "d" / "loop")
    assert cgroupfs.count_memcg_dirs(str(root)) == 5  # root, a, a/b, a/b/c, d


def test_count_of_a_missing_path_raises_oserror(tmp_path: Path) -> None:
    with pytest.raises(OSError):
        cgroupfs.count_memcg_dirs(str(tmp_path / "missing"))


def test_count_matches_find_on_the_live_memory_hierarchy() -> None:
    import subprocess

    layout = cgroupfs.memory_layout()
    if not layout["memory_mount"]:
        pytest.skip("no memory hierarchy on this host")
    # background cgroups come and go: retry until two finds agree around our walk
    for _ in range(5):
        before = subprocess.run(["find", layout["memory_mount"], "-type", "d"],
                                capture_output=True, text=True, check=True).stdout.count("\n")
        ours = cgroupfs.count_memcg_dirs(layout["memory_mount"])
        after = subprocess.run(["find", layout["memory_mount"], "-type", "d"],
                               capture_output=True, text=True, check=True).stdout.count("\n")
        if before == after:
            assert ours == before
            return
    pytest.fail("the memory hierarchy never held still for a comparison")


# -- dying_memcgs on host trees -------------------------------------------------------

def test_dying_v1_is_num_cgroups_minus_directories(tmp_path: Path) -> None:
    write(tmp_path, "proc/cgroups", sample("proc_cgroups/el7-3.10.0-693-at-65535.txt"))
    for rel in ("docker", "docker/a", "system.slice"):
        (tmp_path / "sys/fs/cgroup/memory" / rel).mkdir(parents=True)
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/fedora20-v1.txt"),
                                    live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert result["reason"] is None
    assert (result["total"], result["live"], result["dying"]) == (65535, 4, 65531)
    assert result["method"] == "v1:num_cgroups-minus-dirs"


def test_dying_v2_prefers_nr_dying_subsys_memory(tmp_path: Path) -> None:
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "cpu io memory pids\n")
    write(tmp_path, "sys/fs/cgroup/cgroup.stat",
          "nr_descendants 2\nnr_subsys_memory 3\nnr_dying_descendants 40\n"
          "nr_dying_subsys_memory 25\n")
    (tmp_path / "sys/fs/cgroup/user.slice/session-1.scope").mkdir(parents=True)
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/v2-unified.txt"), live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert (result["live"], result["dying"], result["total"]) == (3, 25, 28)
    assert result["method"] == "v2:nr_dying_subsys_memory"
    assert result["nr_dying_descendants"] == 40


def test_dying_v2_falls_back_to_nr_dying_descendants(tmp_path: Path) -> None:
    write(tmp_path, "sys/fs/cgroup/cgroup.controllers", "memory\n")
    write(tmp_path, "sys/fs/cgroup/cgroup.stat", "nr_descendants 0\nnr_dying_descendants 7\n")
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/v2-unified.txt"), live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert (result["dying"], result["method"]) == (7, "v2:nr_dying_descendants")


def test_dying_in_a_container_is_unknown_with_a_reason(tmp_path: Path) -> None:
    write(tmp_path, "proc/cgroups", sample("proc_cgroups/rhel7-insights.txt"))
    (tmp_path / "sys/fs/cgroup/memory").mkdir(parents=True)
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/docker-container-v1.txt"),
                                    live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert result["dying"] is None and "subtree" in result["reason"]


@pytest.mark.parametrize("cgroups", ["", "garbage\n", "#subsys_name\ncpu 1 1 1\n"])
def test_dying_without_a_memory_row_is_unknown(tmp_path: Path, cgroups: str) -> None:
    write(tmp_path, "proc/cgroups", cgroups)
    (tmp_path / "sys/fs/cgroup/memory").mkdir(parents=True)
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/fedora20-v1.txt"),
                                    live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert result["dying"] is None and result["reason"]


def test_dying_when_the_hierarchy_directory_is_missing(tmp_path: Path) -> None:
    write(tmp_path, "proc/cgroups", sample("proc_cgroups/rhel7-insights.txt"))
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/fedora20-v1.txt"),
                                    live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert result["dying"] is None and "cannot walk" in result["reason"]


def test_dying_reads_never_leave_the_root(tmp_path: Path) -> None:
    # an absolute symlink in the tree must resolve inside the root, not on this host
    write(tmp_path, "real/cgroups", "memory 4 10 1\n")
    (tmp_path / "proc").mkdir()
    os.symlink("/real/cgroups", tmp_path / "proc/cgroups")
    (tmp_path / "sys/fs/cgroup/memory/x").mkdir(parents=True)
    layout = cgroupfs.memory_layout(str(tmp_path), sample("mountinfo/fedora20-v1.txt"),
                                    live=False)
    result = cgroupfs.dying_memcgs(str(tmp_path), layout)
    assert (result["total"], result["live"], result["dying"]) == (10, 2, 8)


def test_is_inside_memory_hierarchy() -> None:
    layout = {"memory_mount": "/sys/fs/cgroup/memory"}
    assert cgroupfs.is_inside_memory_hierarchy("/sys/fs/cgroup/memory/a/b", layout)
    assert cgroupfs.is_inside_memory_hierarchy("/sys/fs/cgroup/memory", layout)
    assert not cgroupfs.is_inside_memory_hierarchy("/sys/fs/cgroup/memory", layout, strict=True)
    assert not cgroupfs.is_inside_memory_hierarchy("/sys/fs/cgroup/memory/../cpu/x", layout)
    assert not cgroupfs.is_inside_memory_hierarchy("sys/fs/cgroup/memory/a", layout)
    assert not cgroupfs.is_inside_memory_hierarchy("/sys/fs/cgroup/memory-x", layout)
    assert not cgroupfs.is_inside_memory_hierarchy("/sys/fs/cgroup/memory/a", {})


def test_statfs_needs_no_ldconfig_process() -> None:
    """libc comes from the running Python's own symbols (dlopen(NULL)):
    ``ctypes.util.find_library`` would start ``ldconfig -p`` in every
    collector run. The same magic as before, and no process started."""
    import subprocess
    import sys

    code = ("import sys; sys.path.insert(0, sys.argv[1]); import hostside.cgroupfs as c; "
            "import subprocess; started = []; real = subprocess.Popen.__init__\n"
            "def spy(self, *a, **k):\n    started.append(a[0]); real(self, *a, **k)\n"
            "subprocess.Popen.__init__ = spy\n"
            "print(c.statfs_magic('/proc') == 0x9fa0, started)")
    hostside = Path(cgroupfs.__file__).resolve().parent.parent
    out = subprocess.run([sys.executable, "-S", "-c", code, str(hostside)], capture_output=True,
                         text=True, check=True).stdout
    assert out.strip() == "True []", out
