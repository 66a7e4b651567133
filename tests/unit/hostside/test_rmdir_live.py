"""memcg-fix-rmdir on this machine's real memory cgroups (root only).

Every cgroup is created under /sys/fs/cgroup/memory/memcg-fix-test-efficacy-<pid>
(or its cgroup v2 equivalent) and removed again, reclaimed first, by the
fixture; nothing else is written. The zombie counts themselves are measured
in tests/live/test_efficacy.py.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remediate.hostside import cgroupfs, reclaim

pytestmark = pytest.mark.live_kernel

RMDIR = [sys.executable, "-m", "remediate.hostside.rmdir"]


@pytest.fixture(scope="module")
def layout():
    if os.geteuid() != 0:
        pytest.skip("needs root to create memory cgroups")
    found = cgroupfs.memory_layout("/", live=True)
    if found["memory_controller"] not in ("v1", "v2") or not found["memory_mount"]:
        pytest.skip(f"no memory cgroup hierarchy here: {found}")
    return found


@pytest.fixture
def prefix(layout, request):
    """Our own parent cgroup; reclaimed and removed, children first, at the end."""
    path = Path(layout["memory_mount"]) / f"memcg-fix-test-efficacy-{os.getpid()}" / (
        request.node.name[:60].replace("[", "-").replace("]", ""))
    path.mkdir(parents=True)
    if layout["memory_controller"] == "v2":
        (path.parent / "cgroup.subtree_control").write_text("+memory")
        (path / "cgroup.subtree_control").write_text("+memory")
    try:
        yield path
    finally:
        # reclaim before rmdir, so the test leaves no zombie behind either
        for leftover in reclaim.subtree_post_order(str(path)):
            reclaim.reclaim_cgroup(leftover, 30)
            os.rmdir(leftover)
        if not any(p.is_dir() for p in path.parent.iterdir()):
            reclaim.reclaim_cgroup(str(path.parent), 30)
            os.rmdir(path.parent)


@pytest.fixture(scope="module")
def data_file(tmp_path_factory):
    """A file on a disk-backed filesystem, so its pages are page cache."""
    directory = Path("/var/tmp") if cgroupfs.statfs_magic("/tmp") == cgroupfs.TMPFS_MAGIC \
        else tmp_path_factory.mktemp("rmdir-live")
    path = directory / f"memcg-fix-rmdir-live-{os.getpid()}.bin"
    path.write_bytes(os.urandom(4 << 20))
    yield path
    path.unlink()


def charge(cgroup: Path, data: Path) -> None:
    """A child joins ``cgroup`` and reads ``data`` after it was evicted, so the
    page cache is charged there; the child then exits (cgroup unpopulated)."""
    fd = os.open(data, os.O_RDONLY)
    os.fsync(fd)
    os.posix_fadvise(fd, 0, 0, os.POSIX_FADV_DONTNEED)
    os.close(fd)
    pid = os.fork()
    if pid == 0:
        try:
            (cgroup / "cgroup.procs").write_text(str(os.getpid()))
            with open(data, "rb") as handle:
                while handle.read(1 << 20):
                    pass
        finally:
            os._exit(0)
    _, status = os.waitpid(pid, 0)
    assert os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0


def usage(cgroup: Path) -> int:
    return reclaim.usage_bytes(str(cgroup))


def test_tree_is_reclaimed_and_removed_children_first(prefix, data_file):
    (prefix / "job/step0").mkdir(parents=True)
    (prefix / "job/step1").mkdir()
    if (prefix / "cgroup.subtree_control").exists():
        (prefix / "job/cgroup.subtree_control").write_text("+memory")
    charge(prefix / "job/step0", data_file)
    charged = usage(prefix / "job/step0")
    assert charged >= 3 << 20  # the 4 MiB read is charged to the step
    proc = subprocess.run([*RMDIR, "--format", "json", str(prefix / "job")],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    report = json.loads(proc.stdout)
    names = [(e["path"][len(str(prefix)) + 1:], e["status"]) for e in report["cgroups"]]
    assert names == [("job/step0", "removed"), ("job/step1", "removed"), ("job", "removed")]
    step0 = report["cgroups"][0]["reclaim"]
    assert step0["status"] == "ok"
    assert step0["reclaimed_bytes"] >= 3 << 20
    assert step0["after_bytes"] < 1 << 20
    assert report["summary"]["reclaimed_bytes"] >= 3 << 20
    assert not (prefix / "job").exists()


def test_populated_cgroup_is_refused_then_removed_once_empty(prefix):
    busy = prefix / "busy"
    busy.mkdir()
    sleeper = subprocess.Popen(["sleep", "60"])
    try:
        (busy / "cgroup.procs").write_text(str(sleeper.pid))
        proc = subprocess.run([*RMDIR, str(busy)], capture_output=True, text=True, timeout=60)
        assert proc.returncode == 1
        assert f"refused, populated: 1 task(s) in cgroup.procs: {sleeper.pid}" in proc.stdout
        assert busy.is_dir()
        forced = subprocess.run([*RMDIR, "--populated-ok", "--format", "json", str(busy)],
                                capture_output=True, text=True, timeout=60)
        entry = json.loads(forced.stdout)["cgroups"][0]
        assert forced.returncode == 1
        assert entry["reclaim"]["status"] == "ok"
        assert entry["status"] == "failed" and "Device or resource busy" in entry["reason"]
    finally:
        sleeper.kill()
        sleeper.wait()
    done = subprocess.run([*RMDIR, str(busy)], capture_output=True, text=True, timeout=60)
    assert done.returncode == 0, done.stdout + done.stderr
    assert not busy.exists()


def test_relative_path_from_the_hierarchy(prefix):
    (prefix / "rel").mkdir()
    proc = subprocess.run([*RMDIR, "rel"], cwd=prefix, capture_output=True, text=True,
                          timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith(f"{prefix}/rel: reclaimed")
    assert not (prefix / "rel").exists()


def test_self_reclaims_the_cgroup_it_runs_in(prefix, data_file):
    unit = prefix / "app.service"
    unit.mkdir()
    charge(unit, data_file)
    before = usage(unit)
    read_end, write_end = os.pipe()
    pid = os.fork()
    if pid == 0:  # like an ExecStopPost= command: started inside the unit's cgroup
        os.close(read_end)
        (unit / "cgroup.procs").write_text(str(os.getpid()))
        os.dup2(write_end, 1)
        os.execv(sys.executable, [*RMDIR, "--self", "--format", "json"])
    os.close(write_end)
    with os.fdopen(read_end) as stream:
        report = json.loads(stream.read())
    _, status = os.waitpid(pid, 0)
    assert os.WEXITSTATUS(status) == 0
    [entry] = report["cgroups"]
    assert entry["path"] == str(unit)
    assert entry["status"] == "reclaimed"
    assert before >= 3 << 20
    assert entry["reclaim"]["reclaimed_bytes"] >= 3 << 20
    assert unit.is_dir()
    time.sleep(0.1)
    assert usage(unit) < 1 << 20
