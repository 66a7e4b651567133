"""memcg-fix-reaper on stand-in host trees.

The host is a stand-in: a temp dir with proc/self/mountinfo, proc/cgroups,
proc/sys/kernel/random/boot_id and a memory hierarchy of plain directories
holding stand-in control files, read through the reaper's ``host_root``.
proc/sys/vm/drop_caches is a stand-in too: a regular file, or a FIFO when a
test counts every write. The state dir, lock and textfile are real files,
and concurrency runs real processes. The real kernel is in
tests/live/test_efficacy.py.
"""

from __future__ import annotations

import fcntl
import json
import os
import re
import shutil
import socket
import stat
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

import pytest

from remediate.hostside import reaper, reaper_config, reaper_metrics, reaper_state
from remediate.resources import role_dir

REPO = Path(__file__).resolve().parents[3]
REAPER = [sys.executable, "-m", "remediate.hostside.reaper"]
NODE_EXPORTER = Path(os.environ.get("MEMCG_FIX_CACHE", "/var/cache/memcg-fix-dev")) / \
    "tools/node-exporter/usr/bin/prometheus-node-exporter"

V1_MOUNTINFO = (
    "25 20 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755\n"
    "35 25 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup "
    "rw,memory\n"
)
V2_MOUNTINFO = "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw\n"


class ReaperHost:
    """A stand-in host plus the reaper's own (real) state and textfile dirs."""

    def __init__(self, base: Path, version: str = "v1") -> None:
        self.base = base
        self.version = version
        self.root = base / "host"
        self.state_dir = base / "state"
        self.prom = base / "prom"
        self.prom.mkdir(parents=True)
        (self.root / "proc/self").mkdir(parents=True)
        (self.root / "proc/self/mountinfo").write_text(
            V1_MOUNTINFO if version == "v1" else V2_MOUNTINFO)
        (self.root / "proc/sys/vm").mkdir(parents=True)
        self.drop_caches = self.root / "proc/sys/vm/drop_caches"
        self.drop_caches.write_text("")
        (self.root / "proc/sys/kernel/random").mkdir(parents=True)
        self.set_boot_id("c0ffee00-0000-4000-8000-000000000001")
        self.hierarchy = self.root / ("sys/fs/cgroup/memory" if version == "v1"
                                      else "sys/fs/cgroup")
        self.hierarchy.mkdir(parents=True)
        if version == "v2":
            (self.hierarchy / "cgroup.controllers").write_text("cpu io memory pids\n")
        self.dying = 0
        self.sections: dict[str, dict[str, str]] = {
            "reaper": {"host_root": str(self.root), "state_dir": str(self.state_dir),
                       "textfile_dir": str(self.prom), "lock_timeout_seconds": "30"},
            "reclaim": {"enabled": "false"},
            "drop_caches": {"enabled": "false"},
        }

    def set_boot_id(self, value: str) -> None:
        (self.root / "proc/sys/kernel/random/boot_id").write_text(value + "\n")

    def cgroup(self, rel: str, usage: int = 2 << 20, tasks: tuple[int, ...] = ()) -> Path:
        path = self.hierarchy / rel
        path.mkdir(parents=True, exist_ok=True)
        (path / "cgroup.procs").write_text("".join(f"{t}\n" for t in tasks))
        if self.version == "v1":
            (path / "memory.usage_in_bytes").write_text(f"{usage}\n")
            (path / "memory.force_empty").write_text("")
        else:
            (path / "cgroup.events").write_text(f"populated {1 if tasks else 0}\n")
            (path / "memory.current").write_text(f"{usage}\n")
            (path / "memory.reclaim").write_text("")
        return path

    def write_counts(self) -> None:
        live = sum(1 for _ in os.walk(self.hierarchy))
        if self.version == "v1":
            (self.root / "proc/cgroups").write_text(
                "#subsys_name\thierarchy\tnum_cgroups\tenabled\n"
                f"cpu\t2\t1\t1\nmemory\t4\t{live + self.dying}\t1\n")
        else:
            (self.root / "proc/cgroups").write_text(
                f"#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t0\t{live}\t1\n")
            (self.hierarchy / "cgroup.stat").write_text(
                f"nr_descendants {live - 1}\nnr_dying_descendants {self.dying + 3}\n"
                f"nr_subsys_memory {live}\nnr_dying_subsys_memory {self.dying}\n")

    def configure(self, **sections: dict[str, object]) -> Path:
        for name, options in sections.items():
            self.sections.setdefault(name, {}).update(
                {k: str(v).lower() if isinstance(v, bool) else str(v)
                 for k, v in options.items()})
        path = self.base / "reaper.conf"
        path.write_text("".join(
            "[{}]\n{}\n".format(name, "".join("{} = {}\n".format(*kv) for kv in options.items()))
            for name, options in self.sections.items()))
        return path

    def run(self, capsys, *args: str) -> tuple[int, str]:
        """One pass through main(), in this process."""
        self.write_counts()
        config = self.configure()
        capsys.readouterr()
        code = reaper.main(["--config", str(config), *args])
        return code, capsys.readouterr().err

    def spawn(self) -> subprocess.Popen:
        """One pass as its own process (what systemd starts)."""
        self.write_counts()
        return subprocess.Popen([*REAPER, "--config", str(self.configure()), "--once"],
                                stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)

    def state(self) -> dict:
        return json.loads((self.state_dir / reaper_state.STATE_NAME).read_text())

    def metrics(self) -> dict[str, float]:
        samples = {}
        for line in (self.prom / reaper_metrics.TEXTFILE_NAME).read_text().splitlines():
            if line and not line.startswith("#"):
                name, value = line.rsplit(" ", 1)
                samples[name] = float(value)
        return samples


@pytest.fixture
def host(tmp_path: Path) -> ReaperHost:
    return ReaperHost(tmp_path)


@pytest.fixture
def host_v2(tmp_path: Path) -> ReaperHost:
    return ReaperHost(tmp_path, "v2")


class DropCounter:
    """A FIFO standing in for /proc/sys/vm/drop_caches that counts the writes.

    The test holds it open read-write, so writers never block and every "1"
    written stays in the pipe until counted."""

    def __init__(self, path: Path) -> None:
        path.unlink()
        os.mkfifo(path)
        self.fd = os.open(path, os.O_RDWR | os.O_NONBLOCK)
        self.seen = b""

    def count(self) -> int:
        while True:
            try:
                chunk = os.read(self.fd, 65536)
            except BlockingIOError:
                break
            if not chunk:
                break
            self.seen += chunk
        return self.seen.count(b"1")

    def close(self) -> None:
        os.close(self.fd)


@pytest.fixture
def drops(host):
    counter = DropCounter(host.drop_caches)
    yield counter
    counter.close()


# ------------------------------------------------------------------ config


@pytest.mark.parametrize("text, message", [
    ("[reclaim]\ngrace_second = 5\n", "unknown option 'grace_second' in [reclaim]"),
    ("[reclaiming]\n", "unknown section [reclaiming]"),
    ("grace_seconds = 5\n", "File contains no section headers"),
    ("[reclaim]\nenabled = maybe\n", "[reclaim] enabled: 'maybe' is not a boolean"),
    ("[reclaim]\ngrace_seconds = -1\n", "[reclaim] grace_seconds: -1 is negative"),
    ("[reclaim]\ngrace_seconds = 5m\n", "'5m' is not a whole number"),
    ("[reclaim]\ntimeout_seconds = 0\n", "must be more than 0 seconds"),
    ("[reclaim]\nsubtrees = a/../b\n", "'a/../b' contains '..'"),
    ("[reaper]\nstate_dir = var/lib\n", "'var/lib' is not an absolute path"),
    ("[reclaim]\nenabled = true\nenabled = false\n", "option 'enabled' in section 'reclaim'"),
])
def test_bad_config_is_one_line_and_exit_2(tmp_path, capsys, text, message):
    path = tmp_path / "reaper.conf"
    path.write_text(text)
    assert reaper.main(["--config", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err
    assert err.count("\n") == 1 and err.startswith("memcg-fix-reaper: ")
    assert "Traceback" not in err


def test_an_explicit_config_must_exist(tmp_path, capsys):
    assert reaper.main(["--config", str(tmp_path / "nope.conf")]) == 2
    assert "cannot read %s: No such file or directory" % (tmp_path / "nope.conf") in \
        capsys.readouterr().err


def test_the_default_path_falls_back_to_safe_defaults(tmp_path):
    config, note = reaper_config.load_config(str(tmp_path / "absent.conf"), explicit=False)
    assert "using the built-in defaults" in note
    assert config["reclaim"]["enabled"] is True
    assert config["reclaim"]["grace_seconds"] == 300
    assert config["drop_caches"]["enabled"] is False  # global page cache drop: opt-in only
    assert config["reaper"]["reboot_required_files"] == [
        "/var/lib/memcg-fix/reboot-required", "/var/run/reboot-required"]


def test_bad_usage_exits_2(capsys):
    assert reaper.main(["--frequently"]) == 2
    assert "unrecognized arguments: --frequently" in capsys.readouterr().err


# ----------------------------------------------------------------- reclaim


def test_idle_charged_cgroup_is_reclaimed_after_the_grace(host, capsys):
    app = host.cgroup("app")
    host.configure(reclaim={"enabled": True, "grace_seconds": 1, "min_charge_bytes": 4096})
    code, err = host.run(capsys)
    assert code == 0, err
    assert (app / "memory.force_empty").read_text() == ""
    since = host.state()["idle"]["app"]["since"]
    assert abs(since - time.time()) < 30
    time.sleep(1.1)
    code, err = host.run(capsys)
    assert code == 0, err
    assert (app / "memory.force_empty").read_text() == "0"
    assert "reclaim: app: reclaimed 0 B by force_empty" in err
    assert host.state()["idle"]["app"]["since"] == since
    assert host.state()["counters"]["reclaimed_cgroups"] == 1


def test_what_is_not_idle_or_not_charged_or_excluded_is_left_alone(host, capsys):
    parent = host.cgroup("busy-parent")
    host.cgroup("busy-parent/worker", tasks=(321,))
    small = host.cgroup("small", usage=1000)
    empty = host.cgroup("empty", usage=0)
    host.cgroup("keep.slice")
    kept = host.cgroup("keep.slice/x")
    due = host.cgroup("due")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 4096,
                            "exclude": "keep.slice keep.slice/*"})
    code, err = host.run(capsys)
    assert code == 0, err
    assert (due / "memory.force_empty").read_text() == "0"
    for untouched in (parent, parent / "worker", small, empty, kept,
                      host.hierarchy / "keep.slice"):
        assert (untouched / "memory.force_empty").read_text() == "", untouched
    assert sorted(host.state()["idle"]) == ["due"]


def test_only_the_configured_subtrees_are_walked(host, capsys):
    inside = host.cgroup("jobs/j1")
    outside = host.cgroup("other")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1,
                            "subtrees": "jobs /missing"})
    code, err = host.run(capsys)
    assert code == 0
    assert (inside / "memory.force_empty").read_text() == "0"
    assert (outside / "memory.force_empty").read_text() == ""
    assert "subtree missing does not exist; skipped" in err


def test_a_symlinked_subtree_is_not_followed(host, capsys):
    target = host.cgroup("real/j")
    os.symlink(host.hierarchy / "real", host.hierarchy / "alias")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1,
                            "subtrees": "alias"})
    code, err = host.run(capsys)
    assert code == 1
    assert "subtree alias is a symbolic link; skipped" in err
    assert (target / "memory.force_empty").read_text() == ""


def test_a_recreated_cgroup_starts_its_grace_over(host, capsys):
    host.cgroup("svc")
    host.configure(reclaim={"enabled": True, "grace_seconds": 1, "min_charge_bytes": 1})
    host.run(capsys)
    first = host.state()["idle"]["svc"]
    time.sleep(1.1)
    # same path, new cgroup: made while the old one exists, so it has another inode
    replacement = host.cgroup("svc.new")
    shutil.rmtree(host.hierarchy / "svc")
    replacement.rename(host.hierarchy / "svc")
    code, err = host.run(capsys)
    assert "reclaim: svc" not in err
    assert code == 0
    entry = host.state()["idle"]["svc"]
    assert entry["ino"] != first["ino"]
    assert entry["since"] > first["since"]
    assert (host.hierarchy / "svc/memory.force_empty").read_text() == ""


def test_a_reclaimed_cgroup_is_not_reclaimed_again_until_charged_again(host, capsys):
    cg = host.cgroup("app", usage=1 << 20)
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 4096})
    host.run(capsys)
    assert (cg / "memory.force_empty").read_text() == "0"
    (cg / "memory.force_empty").write_text("")
    host.run(capsys)  # the stand-in usage did not drop: the rest would not go
    assert (cg / "memory.force_empty").read_text() == ""
    (cg / "memory.usage_in_bytes").write_text(f"{3 << 20}\n")
    host.run(capsys)
    assert (cg / "memory.force_empty").read_text() == "0"


def test_max_per_pass_leaves_the_rest_for_the_next_pass(host, capsys):
    cgs = [host.cgroup(f"c{i}") for i in range(3)]
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1,
                            "max_per_pass": 2})
    code, err = host.run(capsys)
    assert code == 0
    assert [(c / "memory.force_empty").read_text() for c in cgs] == ["0", "0", ""]
    assert "1 more due cgroup(s) wait for the next pass (max_per_pass 2)" in err


def test_v2_reclaims_through_memory_reclaim_and_counts_from_cgroup_stat(host_v2, capsys):
    cg = host_v2.cgroup("user.slice/session-3.scope", usage=65536)
    host_v2.dying = 17
    host_v2.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 4096,
                               "subtrees": "user.slice/session-3.scope"})
    code, err = host_v2.run(capsys)
    assert code == 0, err
    assert (cg / "memory.reclaim").read_text() == "65536"
    assert host_v2.metrics()["memcg_fix_dying_memcgs"] == 17  # nr_dying_subsys_memory


def test_a_cgroup_without_a_reclaim_interface_is_noted_once(host_v2, capsys):
    cg = host_v2.cgroup("old-kernel")
    (cg / "memory.reclaim").unlink()  # v2 before 5.19
    host_v2.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1})
    code, err = host_v2.run(capsys)
    assert code == 0
    assert "reclaim: old-kernel: no memory.force_empty or memory.reclaim in this cgroup" in err
    assert host_v2.state()["counters"]["reclaimed_cgroups"] == 0
    _code, err = host_v2.run(capsys)
    assert "old-kernel" not in err


def test_a_reclaim_that_blocks_is_cut_at_its_timeout_and_is_an_error(host, capsys):
    cg = host.cgroup("stuck")
    (cg / "memory.force_empty").unlink()
    os.mkfifo(cg / "memory.force_empty")  # stand-in: the write blocks, as a long reclaim does
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1,
                            "timeout_seconds": 0.5})
    started = time.monotonic()
    code, err = host.run(capsys)
    assert time.monotonic() - started < 10
    assert code == 1
    assert "reclaim: stuck: timeout (memory.force_empty still running at the 0.5s deadline)" in err
    assert host.metrics()["memcg_fix_reaper_last_run_success"] == 0


# ----------------------------------------------------------------- dry runs


def test_command_line_dry_run_changes_nothing(host, drops, capsys):
    app = host.cgroup("app")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1},
                   drop_caches={"enabled": True, "dying_threshold": 10})
    host.dying = 5
    assert host.run(capsys)[0] == 0  # a real pass first: state and metrics exist
    assert (app / "memory.force_empty").read_text() == "0"
    (app / "memory.force_empty").write_text("")
    (app / "memory.usage_in_bytes").write_text(f"{8 << 20}\n")
    state_before = (host.state_dir / reaper_state.STATE_NAME).read_bytes()
    metrics_before = (host.prom / reaper_metrics.TEXTFILE_NAME).read_bytes()
    host.dying = 50
    code, err = host.run(capsys, "--dry-run")
    assert code == 0, err
    assert "reclaim: would reclaim app (8.0 MiB charged" in err
    assert (f"drop_caches: would run sync; echo 1 > {host.drop_caches}: dying memcgs 50 "
            ">= threshold 10 and growing (was 5 at the last pass)") in err
    assert "(dry run)" in err
    assert (app / "memory.force_empty").read_text() == ""
    assert drops.count() == 0
    assert (host.state_dir / reaper_state.STATE_NAME).read_bytes() == state_before
    assert (host.prom / reaper_metrics.TEXTFILE_NAME).read_bytes() == metrics_before


def test_dry_run_on_a_fresh_host_creates_nothing(host, capsys):
    host.configure(drop_caches={"enabled": True})
    code, _err = host.run(capsys, "--dry-run")
    assert code == 0
    assert not host.state_dir.exists()
    assert list(host.prom.iterdir()) == []


def test_configured_dry_run_observes_but_never_acts(host, drops, capsys):
    app = host.cgroup("app")
    host.configure(reclaim={"enabled": True, "dry_run": True, "grace_seconds": 0,
                            "min_charge_bytes": 1},
                   drop_caches={"enabled": True, "dry_run": True, "dying_threshold": 10,
                                "require_growth": False})
    host.dying = 20
    code, err = host.run(capsys)
    assert code == 0, err
    assert "would reclaim app" in err and "drop_caches: would run" in err
    assert (app / "memory.force_empty").read_text() == ""
    assert drops.count() == 0
    state = host.state()
    assert state["last_drop_caches"] is None and state["last_drop_caches_dry_run"] is not None
    assert "app" in state["idle"]
    metrics = host.metrics()
    assert metrics['memcg_fix_reaper_dry_run{action="reclaim"}'] == 1
    assert metrics['memcg_fix_reaper_dry_run{action="drop_caches"}'] == 1
    assert metrics["memcg_fix_drop_caches_runs_total"] == 0
    code, err = host.run(capsys)  # the would-run follows the interval too
    assert "ran 0s ago; at most once per 3600s" in err


# --------------------------------------------------------- drop_caches guard


def guard(host, **options):
    settings = {"enabled": True, "dying_threshold": 20, "min_interval_seconds": 3600,
                "require_growth": True}
    settings.update(options)
    host.configure(drop_caches=settings)


def test_guard_needs_threshold_and_growth(host, drops, capsys):
    guard(host)
    host.dying = 10
    assert "not run: dying memcgs 10 below threshold 20" in host.run(capsys)[1]
    host.dying = 25
    err = host.run(capsys)[1]
    assert "but there is no earlier count on this boot" not in err
    assert drops.count() == 1  # 25 >= 20 and grew from 10
    assert "because dying memcgs 25 >= threshold 20 and growing (was 10 at the last pass)" in err


def test_guard_without_an_earlier_count_or_growth_does_not_run(host, drops, capsys):
    guard(host, min_interval_seconds=0)
    host.dying = 30
    assert "no earlier count on this boot to show growth" in host.run(capsys)[1]
    assert "but not growing (was 30)" in host.run(capsys)[1]
    assert drops.count() == 0
    guard(host, require_growth=False)
    assert host.run(capsys)[0] == 0
    assert drops.count() == 1


def test_guard_holds_across_repeated_starts(host, drops, capsys):
    guard(host)
    host.dying = 10
    for _ in range(8):
        host.dying += 10  # always over the threshold and growing
        code, err = host.run(capsys)
        assert code == 0, err
    assert drops.count() == 1
    assert host.state()["counters"]["drop_caches_runs"] == 1
    assert host.metrics()["memcg_fix_drop_caches_runs_total"] == 1
    assert "ran 0s ago; at most once per 3600s" in err


def test_guard_holds_across_concurrent_starts(host, drops, capsys):
    guard(host)
    host.dying = 10
    assert host.run(capsys)[0] == 0  # the previous pass's count
    # 40 idle cgroups to reclaim make each pass long, so passes that did not
    # wait for the lock would overlap between reading and saving the state
    for i in range(40):
        host.cgroup(f"idle-{i}")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1})
    host.dying = 100
    holder = os.open(host.state_dir / reaper_state.LOCK_NAME, os.O_RDWR)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        procs = [host.spawn() for _ in range(8)]
        time.sleep(1.5)  # all eight start and queue on the lock
        assert [p.poll() for p in procs] == [None] * 8
    finally:
        os.close(holder)
    outputs = [p.communicate(timeout=120) for p in procs]
    assert [p.returncode for p in procs] == [0] * 8, outputs
    assert drops.count() == 1
    ran = [err for _out, err in outputs if "drop_caches: running sync" in err]
    assert len(ran) == 1
    assert sum("drop_caches: not run: " in err for _out, err in outputs) == 7
    assert host.state()["counters"]["drop_caches_runs"] == 1
    assert host.state()["counters"]["reclaimed_cgroups"] == 40


def test_guard_runs_again_after_its_interval(host, drops, capsys):
    guard(host, min_interval_seconds=1)
    host.dying = 10
    host.run(capsys)
    host.dying = 30
    host.run(capsys)
    host.dying = 40
    host.run(capsys)
    assert drops.count() == 1
    time.sleep(1.1)
    host.dying = 50
    host.run(capsys)
    assert drops.count() == 2
    assert host.metrics()["memcg_fix_drop_caches_runs_total"] == 2


def test_a_corrupt_state_makes_the_guard_wait_a_full_interval(host, drops, capsys):
    guard(host, require_growth=False)
    host.state_dir.mkdir()
    (host.state_dir / reaper_state.STATE_NAME).write_text("{not json")
    host.dying = 99
    code, err = host.run(capsys)
    assert code == 1
    assert "is corrupt" in err and "drop_caches waits a full interval" in err
    assert drops.count() == 0
    assert host.state()["last_drop_caches"] is not None  # rewritten, valid again


def test_a_clock_set_back_restarts_the_interval(host, drops, capsys):
    guard(host, require_growth=False)
    host.state_dir.mkdir()
    future = time.time() + 86400
    state = reaper_state.fresh_state()
    state["last_drop_caches"] = future
    (host.state_dir / reaper_state.STATE_NAME).write_text(json.dumps(state))
    host.dying = 99
    _code, err = host.run(capsys)
    assert "the clock went back" in err
    assert drops.count() == 0
    assert host.state()["last_drop_caches"] < future - 3600


def test_after_a_reboot_growth_must_be_seen_again(host, drops, capsys):
    guard(host)
    host.cgroup("x")
    host.dying = 10
    host.run(capsys)
    assert "x" not in host.state()["idle"]  # reclaim is off
    host.set_boot_id("c0ffee00-0000-4000-8000-000000000002")
    host.dying = 50
    err = host.run(capsys)[1]
    assert "first pass since a reboot" in err
    assert "no earlier count on this boot" in err
    assert drops.count() == 0


def test_when_the_run_cannot_be_recorded_first_nothing_is_dropped(host, drops, capsys):
    guard(host, require_growth=False)
    host.dying = 99
    host.state_dir.mkdir()
    # the lock opens; new files cannot be made
    (host.state_dir / reaper_state.LOCK_NAME).write_text("")
    if subprocess.run(["chattr", "+i", str(host.state_dir)], capture_output=True).returncode:
        pytest.skip(f"chattr +i is not supported on {host.state_dir}")
    try:
        code, err = host.run(capsys)
    finally:
        subprocess.run(["chattr", "-i", str(host.state_dir)], check=True)
    assert code == 1
    assert "not run, because its time could not be recorded first" in err
    assert drops.count() == 0


def test_a_held_lock_makes_a_pass_give_up(host, capsys):
    host.configure(reaper={"lock_timeout_seconds": 0.3})
    host.state_dir.mkdir()
    holder = os.open(host.state_dir / reaper_state.LOCK_NAME, os.O_RDWR | os.O_CREAT)
    fcntl.flock(holder, fcntl.LOCK_EX)
    try:
        code, err = host.run(capsys)
    finally:
        os.close(holder)
    assert code == 1
    assert "another pass holds" in err and "gave up after 0.3s" in err


def test_the_real_drop_caches_path_is_under_the_host_root(host, capsys):
    guard(host, require_growth=False)
    host.dying = 99
    code, err = host.run(capsys)
    assert code == 0, err
    assert host.drop_caches.read_text() == "1"
    assert f"echo 1 > {host.drop_caches}" in err


# ------------------------------------------------------------------ metrics


EXPECTED_FAMILIES = {
    "memcg_fix_dying_memcgs": "gauge", "memcg_fix_live_memcgs": "gauge",
    "memcg_fix_reclaimed_bytes_total": "counter", "memcg_fix_reclaimed_cgroups_total": "counter",
    "memcg_fix_drop_caches_runs_total": "counter",
    "memcg_fix_drop_caches_last_run_timestamp_seconds": "gauge",
    "memcg_fix_reaper_last_run_timestamp_seconds": "gauge",
    "memcg_fix_reaper_last_run_duration_seconds": "gauge",
    "memcg_fix_reaper_last_run_success": "gauge", "memcg_fix_reaper_enabled": "gauge",
    "memcg_fix_reaper_dry_run": "gauge", "memcg_fix_reboot_required": "gauge",
}


def test_textfile_has_every_family_once_and_mode_0644(host, capsys):
    guard(host, require_growth=False)
    host.cgroup("a/b")
    host.dying = 42
    started = time.time()
    assert host.run(capsys)[0] == 0
    path = host.prom / reaper_metrics.TEXTFILE_NAME
    assert stat.S_IMODE(path.stat().st_mode) == 0o644
    assert sorted(p.name for p in host.prom.iterdir()) == [reaper_metrics.TEXTFILE_NAME]
    text = path.read_text()
    types = dict(re.findall(r"^# TYPE (\S+) (\S+)$", text, re.M))
    assert types == EXPECTED_FAMILIES
    assert len(re.findall(r"^# HELP ", text, re.M)) == len(EXPECTED_FAMILIES)
    # the samples of a family follow its TYPE line, as the text format requires
    family = None
    for line in text.splitlines():
        if line.startswith("# TYPE "):
            family = line.split()[2]
        elif not line.startswith("#"):
            assert line.split("{")[0].split(" ")[0] == family
    metrics = host.metrics()
    assert metrics["memcg_fix_dying_memcgs"] == 42
    assert metrics["memcg_fix_live_memcgs"] == 3  # root, a, a/b
    assert metrics["memcg_fix_drop_caches_runs_total"] == 1
    assert started - 1 <= metrics["memcg_fix_reaper_last_run_timestamp_seconds"] <= time.time()
    assert 0 <= metrics["memcg_fix_reaper_last_run_duration_seconds"] < 60
    assert metrics["memcg_fix_reaper_last_run_success"] == 1
    assert metrics['memcg_fix_reaper_enabled{action="drop_caches"}'] == 1
    assert metrics['memcg_fix_reaper_enabled{action="reclaim"}'] == 0
    assert metrics["memcg_fix_reboot_required"] == 0


def test_reboot_required_markers(host, capsys):
    marker = host.root / "var/run/reboot-required"
    marker.parent.mkdir(parents=True)
    marker.write_text("")
    host.run(capsys)
    assert host.metrics()["memcg_fix_reboot_required"] == 1
    marker.unlink()
    ours = host.root / "var/lib/memcg-fix/reboot-required"
    ours.parent.mkdir(parents=True)
    ours.write_text("nokmem\n")
    host.run(capsys)
    assert host.metrics()["memcg_fix_reboot_required"] == 1
    ours.unlink()
    host.run(capsys)
    assert host.metrics()["memcg_fix_reboot_required"] == 0


def test_an_unknown_dying_count_is_left_out_not_zero(host, capsys):
    (host.root / "proc/self/mountinfo").write_text("")
    shutil.rmtree(host.root / "sys")
    code, err = host.run(capsys)
    assert code == 0
    assert "dying memcg count unknown: the memory cgroup hierarchy was not found" in err
    assert "reclaim: skipped" not in err  # reclaim is off in this config
    metrics = host.metrics()
    assert "memcg_fix_dying_memcgs" not in metrics and "memcg_fix_live_memcgs" not in metrics


def test_a_missing_textfile_dir_is_logged_not_fatal(host, capsys):
    host.configure(reaper={"textfile_dir": str(host.base / "no-exporter")})
    code, err = host.run(capsys)
    assert code == 0
    assert "metrics not written: %s does not exist" % (host.base / "no-exporter") in err


def test_counters_survive_across_passes(host, capsys):
    cg = host.cgroup("app")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1})
    host.run(capsys)
    (cg / "memory.usage_in_bytes").write_text(f"{9 << 20}\n")
    host.run(capsys)
    assert host.metrics()["memcg_fix_reclaimed_cgroups_total"] == 2


def test_a_reader_never_sees_a_partial_textfile(tmp_path):
    """Another process reads the textfile in a tight loop while it is replaced
    200 times with large contents; every read must be one whole version
    (its length line matches its body)."""
    out = tmp_path / "prom"
    out.mkdir()
    textfile = out / reaper_metrics.TEXTFILE_NAME
    reader = subprocess.Popen([sys.executable, "-c", READER, str(textfile)],
                              stdout=subprocess.PIPE, text=True)
    try:
        for i in range(200):
            body = "".join(f'memcg_fix_padding{{n="{j}"}} {i}\n' for j in range(4000))
            reaper_metrics.write_textfile(str(out), f"# len {len(body)}\n{body}")
    finally:
        time.sleep(0.2)
        reader.terminate()
    reads, torn = map(int, reader.communicate(timeout=30)[0].split())
    assert reads > 50  # the reader really raced the writer
    assert torn == 0
    assert sorted(p.name for p in out.iterdir()) == [reaper_metrics.TEXTFILE_NAME]


READER = r"""
import signal, sys
path = sys.argv[1]
reads = torn = 0
def stop(*_):
    print(reads, torn); sys.exit(0)
signal.signal(signal.SIGTERM, stop)
while True:
    try:
        with open(path) as handle:
            text = handle.read()
    except FileNotFoundError:
        continue
    reads += 1
    head, _, body = text.partition("\n")
    if not head.startswith("# len ") or int(head[6:]) != len(body):
        torn += 1
"""


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.mark.skipif(not NODE_EXPORTER.exists(),
                    reason="node_exporter not unpacked (scripts/setup-dev.sh does it)")
def test_node_exporter_textfile_collector_accepts_the_file(host, capsys):
    guard(host, require_growth=False)
    host.cgroup("app")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1})
    host.dying = 27
    assert host.run(capsys)[0] == 0
    port = _free_port()
    exporter = subprocess.Popen(
        [str(NODE_EXPORTER), "--collector.disable-defaults", "--collector.textfile",
         f"--collector.textfile.directory={host.prom}",
         f"--web.listen-address=127.0.0.1:{port}"],
        stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    try:
        page = None
        for _ in range(100):
            try:
                with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics",
                                            timeout=2) as resp:
                    page = resp.read().decode()
                break
            except OSError:
                time.sleep(0.05)
        assert page is not None, "node_exporter did not answer"
    finally:
        exporter.terminate()
        exporter.wait(timeout=10)
    assert "node_textfile_scrape_error 0" in page
    assert "memcg_fix_dying_memcgs 27" in page
    assert "memcg_fix_drop_caches_runs_total 1" in page
    assert 'memcg_fix_reaper_dry_run{action="reclaim"} 0' in page
    assert "# TYPE memcg_fix_reclaimed_bytes_total counter" in page


# ------------------------------------------------------- as installed on hosts

OLD_PYTHONS = [p for p in ("/root/.pyenv/versions/2.7.18/bin/python2.7",
                           "/root/.pyenv/versions/3.6.15/bin/python3.6",
                           shutil.which("python2.7"), shutil.which("python3.6"))
               if p and os.access(p, os.X_OK) and "shims" not in p]
WRAPPER = role_dir() / "files" / "memcg-fix-reaper"


@pytest.mark.parametrize("python", [sys.executable, *OLD_PYTHONS])
def test_installed_wrapper_runs_a_pass_on_each_python(tmp_path, host, python):
    """The layout the role installs: /usr/lib/memcg-fix/memcg_fix_host plus
    the wrapper script, run by the target's own interpreter."""
    lib = tmp_path / "lib"
    shutil.copytree(REPO / "remediate" / "hostside", lib / "memcg_fix_host",
                    ignore=shutil.ignore_patterns("__pycache__"))
    text = WRAPPER.read_text()
    assert text.count('"/usr/lib/memcg-fix"') == 1
    script = tmp_path / "memcg-fix-reaper"
    script.write_text(text.replace('"/usr/lib/memcg-fix"', repr(str(lib))))
    app = host.cgroup("app")
    host.configure(reclaim={"enabled": True, "grace_seconds": 0, "min_charge_bytes": 1},
                   drop_caches={"enabled": True, "dying_threshold": 5, "require_growth": False})
    host.dying = 9
    host.write_counts()
    proc = subprocess.run([python, str(script), "--config", str(host.configure()), "--once"],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, proc.stderr
    assert (app / "memory.force_empty").read_text() == "0"
    assert host.drop_caches.read_text() == "1"
    assert host.metrics()["memcg_fix_drop_caches_runs_total"] == 1
    assert host.state()["counters"]["reclaimed_cgroups"] == 1
    bad = tmp_path / "bad.conf"
    bad.write_text("[reclaim]\nenabled = perhaps\n")
    proc = subprocess.run([python, str(script), "--config", str(bad)], capture_output=True,
                          text=True, timeout=60)
    assert proc.returncode == 2
    assert proc.stderr.strip().endswith("[reclaim] enabled: 'perhaps' is not a boolean "
                                        "(true/false)")
