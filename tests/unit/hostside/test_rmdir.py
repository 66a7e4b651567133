"""memcg-fix-rmdir on stand-in host trees.

The cgroup trees here are stand-ins: real directories and files in a temp
dir laid out like /sys/fs/cgroup/memory, found through a stand-in
/proc/self/mountinfo (``--root``). They exercise the refusals, the order of
work, the reclaim writes (the bytes land in the stand-in control files), the
timeout (a FIFO stands in for a control file whose write blocks), the report
and the exit codes. What only a kernel can show (removal, bytes reclaimed,
no zombie left) is in test_rmdir_live.py and tests/live/test_efficacy.py.
"""

from __future__ import annotations

import errno
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

import pytest

from remediate.hostside import reclaim, rmdir
from remediate.resources import role_dir

REPO = Path(__file__).resolve().parents[3]
WRAPPER = role_dir() / "files" / "memcg-fix-rmdir"

V1_MOUNTINFO = (
    "25 20 0:22 / /sys/fs/cgroup ro,nosuid,nodev,noexec - tmpfs tmpfs ro,mode=755\n"
    "35 25 0:32 / /sys/fs/cgroup/memory rw,nosuid,nodev,noexec,relatime - cgroup cgroup "
    "rw,memory\n"
    "36 25 0:33 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
)
V2_MOUNTINFO = "30 24 0:26 / /sys/fs/cgroup rw,nosuid,nodev,noexec - cgroup2 cgroup2 rw\n"

# Older interpreters the host-side code must run on, where this machine has them.
OLD_PYTHONS = [p for p in ("/root/.pyenv/versions/2.7.18/bin/python2.7",
                           "/root/.pyenv/versions/3.6.15/bin/python3.6",
                           shutil.which("python2.7"), shutil.which("python3.6"))
               if p and os.access(p, os.X_OK) and "shims" not in p]


class StandInHost:
    """A stand-in host root: mountinfo plus a memory hierarchy of plain dirs."""

    def __init__(self, root: Path, version: str = "v1") -> None:
        self.root = root
        self.version = version
        (root / "proc/self").mkdir(parents=True)
        (root / "proc/self/mountinfo").write_text(V1_MOUNTINFO if version == "v1"
                                                  else V2_MOUNTINFO)
        self.mount = "/sys/fs/cgroup/memory" if version == "v1" else "/sys/fs/cgroup"
        self.hierarchy = root / self.mount.lstrip("/")
        self.hierarchy.mkdir(parents=True)
        if version == "v2":
            (self.hierarchy / "cgroup.controllers").write_text("cpu io memory pids\n")
        self.cgroup("", usage=0, files=True)
        (root / "sys/fs/cgroup/cpu").mkdir(exist_ok=True)

    def cgroup(self, rel: str, usage: int = 4096, tasks: tuple[int, ...] = (),
               files: bool = True) -> Path:
        path = self.hierarchy / rel if rel else self.hierarchy
        path.mkdir(parents=True, exist_ok=True)
        if not files:
            return path
        if self.version == "v1":
            (path / "cgroup.procs").write_text("".join(f"{t}\n" for t in tasks))
            (path / "memory.usage_in_bytes").write_text(f"{usage}\n")
            (path / "memory.force_empty").write_text("")
        else:
            (path / "cgroup.procs").write_text("".join(f"{t}\n" for t in tasks))
            (path / "cgroup.events").write_text(f"populated {1 if tasks else 0}\nfrozen 0\n")
            (path / "memory.current").write_text(f"{usage}\n")
            (path / "memory.reclaim").write_text("")
        return path

    def host_path(self, rel: str) -> str:
        return self.mount + ("/" + rel if rel else "")

    def run(self, *args: str) -> int:
        """main() in-process; the caller's capsys captures the report."""
        return rmdir.main(["--root", str(self.root), *args])


@pytest.fixture
def host(tmp_path: Path) -> StandInHost:
    return StandInHost(tmp_path / "host")


@pytest.fixture
def host_v2(tmp_path: Path) -> StandInHost:
    return StandInHost(tmp_path / "host", "v2")


def written(path: Path) -> str:
    return path.read_text()


# ------------------------------------------------------------------ refusals


@pytest.mark.parametrize("argv, message", [
    ([], "no PATH given"),
    (["--timeout", "0", "/sys/fs/cgroup/memory/a"], "--timeout must be a positive"),
    (["--timeout", "soon", "/sys/fs/cgroup/memory/a"], "invalid float value"),
    (["--format", "yaml", "/sys/fs/cgroup/memory/a"], "invalid choice"),
    (["--bogus"], "unrecognized arguments: --bogus"),
    (["/sys/fs/cgroup/memory"], "is the root of the memory cgroup hierarchy"),
    (["/sys/fs/cgroup/memory/"], "is the root of the memory cgroup hierarchy"),
    (["/sys/fs/cgroup/cpu/a"], "is not inside the memory cgroup hierarchy"),
    (["/sys/fs/cgroup/memoryx/a"], "is not inside the memory cgroup hierarchy"),
    (["/sys/fs/cgroup/memory/a/../../cpu"], "paths with '..' are refused"),
    (["/etc"], "is not inside the memory cgroup hierarchy"),
])
def test_bad_usage_is_one_line_and_exit_2_and_touches_nothing(host, capsys, argv, message):
    victim = host.cgroup("a")
    code = host.run(*argv)
    out, err = capsys.readouterr()
    assert code == 2
    assert message in err
    assert err.count("\n") == 1 and err.startswith("memcg-fix-rmdir: ")
    assert out == ""
    assert written(victim / "memory.force_empty") == ""


def test_one_bad_path_refuses_the_whole_command_line(host, capsys):
    good = host.cgroup("good")
    code = host.run(host.host_path("good"), "/sys/fs/cgroup/cpu/x")
    assert code == 2
    assert "not inside the memory cgroup hierarchy" in capsys.readouterr().err
    assert written(good / "memory.force_empty") == ""


def test_symlink_anywhere_on_the_path_is_refused(host, capsys):
    real = host.cgroup("real/child")
    os.symlink(host.hierarchy / "real", host.hierarchy / "alias")
    code = host.run(host.host_path("alias/child"))
    err = capsys.readouterr().err
    assert code == 2
    assert "/sys/fs/cgroup/memory/alias is a symbolic link" in err
    assert written(real / "memory.force_empty") == ""


def test_symlinked_cgroup_itself_is_refused(host, capsys):
    host.cgroup("real")
    os.symlink(host.hierarchy / "real", host.hierarchy / "link")
    assert host.run(host.host_path("link")) == 2
    assert "is a symbolic link" in capsys.readouterr().err


def test_a_file_is_not_a_cgroup(host, capsys):
    (host.hierarchy / "plain").write_text("x")
    assert host.run(host.host_path("plain")) == 2
    assert "is not a directory" in capsys.readouterr().err


def test_missing_cgroup_is_reported_not_a_usage_error(host, capsys):
    code = host.run("--format", "json", host.host_path("gone/already"))
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert report["cgroups"] == [{"path": "/sys/fs/cgroup/memory/gone/already",
                                  "status": "missing", "reason": "no such cgroup",
                                  "reclaim": None}]


def test_populated_descendant_refuses_the_whole_subtree(host, capsys):
    top = host.cgroup("job")
    idle = host.cgroup("job/idle")
    host.cgroup("job/busy", tasks=(4242, 4243))
    code = host.run("--format", "json", host.host_path("job"))
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    [entry] = report["cgroups"]
    assert entry["status"] == "refused"
    assert "2 task(s) in cgroup.procs: 4242 4243" in entry["reason"]
    assert "/sys/fs/cgroup/memory/job/busy" in entry["reason"]
    assert written(idle / "memory.force_empty") == ""
    assert written(top / "memory.force_empty") == ""


def test_v2_populated_flag_refuses(host_v2, capsys):
    cg = host_v2.cgroup("svc", tasks=(7,))
    assert host_v2.run(host_v2.host_path("svc")) == 1
    assert "cgroup.events says populated 1" in capsys.readouterr().out
    assert written(cg / "memory.reclaim") == ""


def test_unreadable_population_counts_as_populated(host, capsys):
    bare = host.cgroup("bare", files=False)
    assert host.run(host.host_path("bare")) == 1
    assert "cannot tell whether it is populated" in capsys.readouterr().out
    assert bare.is_dir()


# --------------------------------------------------------------- the work


def test_children_are_handled_before_parents(host, capsys):
    for rel in ("a", "a/b", "a/c", "a/c/d"):
        (host.hierarchy / rel).mkdir(parents=True)  # bare dirs: rmdir works on them
    code = host.run("--populated-ok", "--format", "json", host.host_path("a"))
    report = json.loads(capsys.readouterr().out)
    assert code == 0
    assert [(e["path"].rsplit("/memory/", 1)[1], e["status"]) for e in report["cgroups"]] == [
        ("a/b", "removed"), ("a/c/d", "removed"), ("a/c", "removed"), ("a", "removed")]
    assert all(e["reclaim"]["status"] == "unavailable" for e in report["cgroups"])
    assert not (host.hierarchy / "a").exists()


def test_reclaim_is_written_then_a_failed_rmdir_keeps_the_parents(host, capsys):
    top = host.cgroup("a", usage=8192)
    left = host.cgroup("a/b", usage=4096)
    right = host.cgroup("a/c", usage=4096)
    code = host.run("--format", "json", host.host_path("a"))
    report = json.loads(capsys.readouterr().out)
    # a stand-in cgroup holds regular files, so the kernel-only rmdir fails
    assert code == 1
    statuses = [(e["path"].rsplit("/", 1)[1], e["status"]) for e in report["cgroups"]]
    assert statuses == [("b", "failed"), ("c", "failed"), ("a", "skipped")]
    assert "rmdir: Directory not empty" in report["cgroups"][0]["reason"]
    assert report["cgroups"][2]["reason"] == "a child cgroup remains"
    assert written(left / "memory.force_empty") == "0"
    assert written(right / "memory.force_empty") == "0"
    assert written(top / "memory.force_empty") == ""  # a parent that stays is not reclaimed
    assert report["summary"]["failed"] == 2 and report["summary"]["skipped"] == 1
    assert report["cgroups"][0]["reclaim"]["method"] == "force_empty"
    assert report["cgroups"][0]["reclaim"]["before_bytes"] == 4096


def test_reclaim_only_keeps_cgroups_and_exits_0(host, capsys):
    top = host.cgroup("svc", usage=1 << 20)
    child = host.cgroup("svc/worker", usage=1 << 19)
    code = host.run("--reclaim-only", host.host_path("svc"))
    out = capsys.readouterr().out
    assert code == 0
    assert written(child / "memory.force_empty") == "0"
    assert written(top / "memory.force_empty") == "0"
    assert top.is_dir() and child.is_dir()
    assert out.splitlines()[-1] == ("0 removed, 2 reclaimed only, 0 refused, 0 failed, "
                                    "0 skipped, 0 missing; 0 B reclaimed")


def test_populated_ok_reclaims_a_busy_cgroup(host, capsys):
    busy = host.cgroup("busy", tasks=(99,))
    assert host.run("--populated-ok", "--reclaim-only", host.host_path("busy")) == 0
    assert written(busy / "memory.force_empty") == "0"


def test_v2_writes_at_most_the_current_usage_to_memory_reclaim(host_v2, capsys):
    cg = host_v2.cgroup("app", usage=12288)
    code = host_v2.run("--reclaim-only", "--format", "json", host_v2.host_path("app"))
    report = json.loads(capsys.readouterr().out)
    # the stand-in memory.current never drops: two writes that free nothing end it
    assert code == 0
    assert written(cg / "memory.reclaim") == "12288"
    rec = report["cgroups"][0]["reclaim"]
    assert rec["method"] == "memory.reclaim"
    assert rec["status"] == "partial"
    assert "12288 bytes would not go after 2 step(s)" in rec["detail"]


def test_self_reclaims_the_own_memory_cgroup(host, capsys):
    own = host.cgroup("system.slice/app.service", tasks=(os.getpid(),))
    (host.root / "proc/self/cgroup").write_text(
        "9:name=systemd:/system.slice/app.service\n"
        "4:memory:/system.slice/app.service\n"
        "0::/system.slice/app.service\n")
    code = host.run("--self")
    out = capsys.readouterr().out
    assert code == 0
    assert out.startswith("/sys/fs/cgroup/memory/system.slice/app.service: reclaimed 0 B "
                          "by force_empty")
    assert written(own / "memory.force_empty") == "0"
    assert own.is_dir()


def test_self_in_the_root_cgroup_is_refused(host, capsys):
    (host.root / "proc/self/cgroup").write_text("4:memory:/\n0::/\n")
    assert host.run("--self") == 2
    assert "is the root of the memory cgroup hierarchy" in capsys.readouterr().err


# ------------------------------------------------------------------- timeout


def test_a_blocking_write_is_killed_at_the_timeout(host, capsys):
    cg = host.cgroup("stuck", usage=4096)
    (cg / "memory.force_empty").unlink()
    os.mkfifo(cg / "memory.force_empty")  # stand-in: opening it blocks, as a long reclaim does
    started = time.monotonic()
    code = host.run("--timeout", "0.5", "--format", "json", host.host_path("stuck"))
    elapsed = time.monotonic() - started
    report = json.loads(capsys.readouterr().out)
    assert code == 1
    assert 0.5 <= elapsed < 5
    rec = report["cgroups"][0]["reclaim"]
    assert rec["status"] == "timeout"
    assert "still running at the 0.5s deadline" in rec["detail"]
    assert report["summary"]["reclaim_incomplete"] == 1


def test_write_control_reports_the_child_errno(tmp_path):
    target = tmp_path / "ro"
    target.mkdir()
    outcome = reclaim.write_control(str(target), b"0", 5)  # a directory cannot be written
    assert outcome == {"errno": errno.EISDIR, "timed_out": False,
                       "seconds": outcome["seconds"]}
    link = tmp_path / "link"
    os.symlink(tmp_path / "file", link)
    (tmp_path / "file").write_text("")
    assert reclaim.write_control(str(link), b"0", 5)["errno"] == errno.ELOOP  # O_NOFOLLOW
    assert (tmp_path / "file").read_text() == ""


# --------------------------------------------- the v2 loop, with a stand-in kernel


class StandInReclaimKernel:
    """Stand-in for the kernel side of cgroup v2 memory.reclaim (no v2 memory
    controller on this machine): a write of n frees up to ``per_write`` bytes
    of the reclaimable part and returns EAGAIN when it freed less than n."""

    def __init__(self, usage, reclaimable, per_write, fail_with=0, seconds=0.0):
        self.usage = usage
        self.floor = usage - reclaimable
        self.per_write = per_write
        self.fail_with = fail_with
        self.seconds = seconds
        self.asked = []
        self.now = 0.0

    def clock(self):
        return self.now

    def read_usage(self):
        return self.usage

    def write(self, amount, seconds_left):
        self.asked.append(amount)
        self.now += self.seconds
        if self.fail_with:
            return {"errno": self.fail_with, "timed_out": False, "seconds": 0}
        freed = min(amount, self.per_write, self.usage - self.floor)
        self.usage -= freed
        return {"errno": 0 if freed >= amount else errno.EAGAIN, "timed_out": False,
                "seconds": 0}


def test_v2_loop_goes_on_through_eagain_while_it_progresses():
    kernel = StandInReclaimKernel(usage=10000, reclaimable=10000, per_write=3000)
    result = reclaim.stepped_reclaim(kernel.read_usage, kernel.write, 30, clock=kernel.clock)
    assert result["status"] == "ok"
    assert kernel.usage == 0
    assert kernel.asked == [10000, 7000, 4000, 1000]  # never more than the usage


def test_v2_loop_stops_when_the_rest_will_not_go():
    kernel = StandInReclaimKernel(usage=10000, reclaimable=6000, per_write=4000)
    result = reclaim.stepped_reclaim(kernel.read_usage, kernel.write, 30, clock=kernel.clock)
    assert result["status"] == "partial"
    assert kernel.usage == 4000
    assert kernel.asked == [10000, 6000, 4000, 4000]


def test_v2_loop_respects_the_step_bound_and_the_deadline():
    kernel = StandInReclaimKernel(usage=10 << 30, reclaimable=10 << 30, per_write=1 << 30,
                                  seconds=4.0)
    result = reclaim.stepped_reclaim(kernel.read_usage, kernel.write, 10, clock=kernel.clock,
                                   step_max=1 << 28)
    assert result["status"] == "timeout"
    assert len(kernel.asked) == 3  # 0s, 4s, 8s; at 12s the 10s deadline has passed
    assert max(kernel.asked) == 1 << 28


def test_v2_loop_reports_an_error_other_than_eagain():
    kernel = StandInReclaimKernel(usage=4096, reclaimable=4096, per_write=4096,
                                  fail_with=errno.EINVAL)
    result = reclaim.stepped_reclaim(kernel.read_usage, kernel.write, 30, clock=kernel.clock)
    assert result["status"] == "error"
    assert "Invalid argument" in result["detail"]


def test_v2_loop_with_nothing_charged_writes_nothing():
    kernel = StandInReclaimKernel(usage=0, reclaimable=0, per_write=1)
    assert reclaim.stepped_reclaim(kernel.read_usage, kernel.write, 30,
                                 clock=kernel.clock)["status"] == "ok"
    assert kernel.asked == []


# ------------------------------------------------------- as installed on hosts


def _installed_copy(tmp_path: Path) -> Path:
    """The layout the role installs: /usr/lib/memcg-fix/memcg_fix_host + wrapper."""
    lib = tmp_path / "lib"
    shutil.copytree(REPO / "remediate" / "hostside", lib / "memcg_fix_host",
                    ignore=shutil.ignore_patterns("__pycache__"))
    text = WRAPPER.read_text()
    assert text.count('"/usr/lib/memcg-fix"') == 1
    script = tmp_path / "memcg-fix-rmdir"
    script.write_text(text.replace('"/usr/lib/memcg-fix"', repr(str(lib))))
    return script


@pytest.mark.parametrize("python", [sys.executable, *OLD_PYTHONS])
def test_installed_wrapper_runs_on_each_python(tmp_path, host, python):
    script = _installed_copy(tmp_path)
    cg = host.cgroup("w", usage=4096)
    proc = subprocess.run([python, str(script), "--root", str(host.root), "--reclaim-only",
                           host.host_path("w")], capture_output=True, text=True, timeout=60)
    assert proc.returncode == 0, proc.stderr
    assert proc.stdout.startswith("/sys/fs/cgroup/memory/w: reclaimed 0 B by force_empty")
    assert written(cg / "memory.force_empty") == "0"
    bad = subprocess.run([python, str(script), "--root", str(host.root), "/sys/fs/cgroup/memory"],
                         capture_output=True, text=True, timeout=60)
    assert bad.returncode == 2
    assert bad.stderr.strip().endswith("is the root of the memory cgroup hierarchy; "
                                       "it is never touched")
    assert "Traceback" not in bad.stderr


def test_help_exits_0(capsys):
    assert rmdir.main(["--help"]) == 0
    assert "--populated-ok" in capsys.readouterr().out
