"""`memcg-fix detect --local` against the running kernel.

(a) The cgroup mode and where memory lives are checked against an
independent reading (``stat -f`` of /sys/fs/cgroup and /sys/fs/cgroup/unified),
and the dying count against /proc/cgroups minus the directories ``find``
sees, both read in this test.

(b) The dying count responds: N memory cgroups are created under this
test's own parent ``<memory mount>/memcg-fix-test-detect-<pid>/``, page
cache is charged to each from a child process, they are removed, and
``detect`` must report about N more dying memcgs. Other work on this host
creates and frees cgroups at the same time, so the count is a delta with a
tolerance and the measurement is retried.

Only our own cgroups are written; every one of them, the page-cache files and
the parent are removed at the end (removing the files frees the page cache,
which releases the zombies this test made).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from remediate.hostside import cgroupfs

pytestmark = [pytest.mark.live_kernel, pytest.mark.slow]

N = 25
SETTLE_SECONDS = 3.0
FILE_BYTES = 1 << 20


def detect() -> dict[str, Any]:
    out = subprocess.run([sys.executable, "-m", "remediate", "detect", "--local", "--format",
                          "json"], capture_output=True, text=True, check=True, timeout=120)
    [host] = json.loads(out.stdout)["hosts"]
    return host["facts"]


def fs_type(path: str) -> str | None:
    result = subprocess.run(["stat", "-f", "-c", "%T", path], capture_output=True, text=True)
    return result.stdout.strip() if result.returncode == 0 else None


def memory_num_cgroups() -> int:
    for line in Path("/proc/cgroups").read_text().splitlines():
        fields = line.split()
        if fields and fields[0] == "memory":
            return int(fields[2])
    raise AssertionError("/proc/cgroups has no memory row")


def find_dirs(path: str) -> int:
    out = subprocess.run(["find", path, "-type", "d"], capture_output=True, text=True)
    return out.stdout.count("\n")


def test_detect_reports_the_mode_and_a_consistent_dying_count() -> None:
    root_fs = fs_type("/sys/fs/cgroup")
    if root_fs == "cgroup2fs":
        expected_mode = "v2"
    elif root_fs == "tmpfs":
        expected_mode = "hybrid" if fs_type("/sys/fs/cgroup/unified") == "cgroup2fs" else "v1"
    else:
        pytest.skip(f"/sys/fs/cgroup is {root_fs!r}: no cgroup filesystem to check against")
    facts = detect()
    assert facts["cgroup"]["mode"] == expected_mode
    assert facts["cgroup"]["evidence"] == "statfs"
    if expected_mode == "v2":
        pytest.skip("the /proc/cgroups minus directories check is the v1 method")
    mounts = cgroupfs.parse_mountinfo(Path("/proc/self/mountinfo").read_text())
    memory = [m["mount_point"] for m in mounts
              if m["fstype"] == "cgroup" and "memory" in m["super_options"]]
    if not memory:
        pytest.skip("the memory controller is not on a v1 hierarchy here")
    assert facts["cgroup"]["memory_controller"] == "v1"
    assert facts["cgroup"]["memory_mount"] == memory[0]
    # other work creates and removes cgroups meanwhile: compare readings taken
    # around detect, and retry when the host was too busy
    misses = []
    for _attempt in range(5):
        total_before, dirs_before = memory_num_cgroups(), find_dirs(memory[0])
        memcg = detect()["memcg"]
        total_after, dirs_after = memory_num_cgroups(), find_dirs(memory[0])
        assert memcg["dying_method"] == "v1:num_cgroups-minus-dirs"
        assert memcg["live"] + memcg["dying"] == memcg["total"] or memcg["dying"] == 0
        low = min(total_before - dirs_before, total_after - dirs_after) - 3
        high = max(total_before - dirs_before, total_after - dirs_after) + 3
        if low <= memcg["dying"] <= high:
            return
        misses.append((memcg, total_before, dirs_before, total_after, dirs_after))
        time.sleep(1)
    pytest.fail(f"detect's dying count never matched /proc/cgroups minus directories: {misses}")


class OwnCgroups:
    """Our parent memory cgroup and its children; removes everything it made."""

    def __init__(self, layout: dict[str, Any], workdir: Path) -> None:
        self.mount = Path(layout["memory_mount"])
        self.v2 = layout["memory_controller"] == "v2"
        self.parent = self.mount / f"memcg-fix-test-detect-{os.getpid()}"
        self.workdir = workdir
        self.children: list[Path] = []

    def create_parent(self) -> None:
        try:
            self.parent.mkdir()
        except OSError as exc:
            pytest.skip(f"memory cgroups are not writable here: mkdir {self.parent}: "
                        f"{exc.strerror}")
        if self.v2:
            if "memory" not in (self.parent / "cgroup.controllers").read_text().split():
                pytest.skip("memory is not enabled for children of the cgroup2 root")
            (self.parent / "cgroup.subtree_control").write_text("+memory")

    def charged_child(self, index: int) -> Path:
        """A new child memcg with page cache charged to it by a process that left."""
        data = self.workdir / f"cache-{index}"
        with open(data, "wb") as handle:
            handle.write(os.urandom(FILE_BYTES))
            handle.flush()
            os.fsync(handle.fileno())
            os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
        child = self.parent / f"c{index}"
        child.mkdir()
        self.children.append(child)
        subprocess.run(["sh", "-c", 'echo $$ > "$1/cgroup.procs" && cat "$2" > /dev/null',
                        "charge", str(child), str(data)], check=True, timeout=60)
        return child

    def remove_children(self) -> None:
        for child in self.children:
            if child.exists():
                child.rmdir()
        self.children = []

    def cleanup(self) -> None:
        self.remove_children()
        for data in self.workdir.glob("cache-*"):
            data.unlink()  # frees the page cache, which releases our zombies
        if self.parent.exists():
            self.parent.rmdir()


@pytest.fixture
def own_cgroups(tmp_path: Path) -> Iterator[OwnCgroups]:
    if os.geteuid() != 0:
        pytest.skip("needs root to create memory cgroups")
    layout = cgroupfs.memory_layout()
    if layout["memory_controller"] not in ("v1", "v2") or not layout["memory_mount"]:
        pytest.skip(f"no memory cgroup hierarchy here: {layout}")
    if fs_type(str(tmp_path)) in ("tmpfs", None):
        pytest.skip("the page-cache files need a disk-backed temp dir")
    cgroups = OwnCgroups(layout, tmp_path)
    try:
        yield cgroups
    finally:
        cgroups.cleanup()


def test_dying_count_rises_by_about_n_after_removing_charged_memcgs(
        own_cgroups: OwnCgroups) -> None:
    own_cgroups.create_parent()
    results = []
    for attempt in range(3):
        for i in range(N):
            own_cgroups.charged_child(attempt * N + i)
        time.sleep(SETTLE_SECONDS)
        before = detect()["memcg"]["dying"]
        own_cgroups.remove_children()
        time.sleep(SETTLE_SECONDS)
        after = detect()["memcg"]["dying"]
        results.append(after - before)
        # about N: others' cgroups come and go, in both directions
        if N - max(3, N // 5) <= after - before <= N + max(5, N // 2):
            return
    pytest.fail(f"dying count rose by {results} over 3 attempts, expected about {N}")
