"""Proof on the running kernel that memcg-fix-rmdir and memcg-fix-reaper stop
zombie memcgs.

Each arm runs N cycles of: create a memory cgroup, charge page cache in it
from a child process (the child joins it, reads a file of its own that was
evicted first, exits), remove it. The dying (zombie) count comes from
/proc/cgroups minus the directories of the memory hierarchy (v1) or the
root cgroup.stat (v2), through memcg-fix's own cgroupfs.dying_memcgs, and is
always a delta: read after a settle wait (freeing is asynchronous), the same
way for every arm.

| arm | how the cgroup is removed                              | required                 |
|-----|--------------------------------------------------------|--------------------------|
| a   | plain rmdir                                            | dying rises by >= 90% N  |
| b   | memcg-fix-rmdir                                        | dying rises by <= 2% N   |
| c   | left unpopulated; one reaper pass; then plain rmdir    | dying rises by <= 2% N   |
| d   | after its own arm a, one reaper pass whose drop_caches | >= 90% of that arm a's   |
|     | guard is over its threshold                            | zombies released         |

Other work on the host creates and frees cgroups at the same time, so arms
a, b and c get up to three attempts: noise can move one attempt's count by a
few, while a helper that does not work (or a kernel that does not pin) misses
by about N in every attempt. Arm d's own arm a only has to pass the guard's
threshold (the count before it plus N/2).

Every cgroup lives under <memory mount>/memcg-fix-test-efficacy-<pid>/ and
is reclaimed, then removed, at the end. Arm d runs drop_caches once, so it
is also marked ``drop_caches``.

Run here (as root): ``python -m pytest tests/live/test_efficacy.py -m live_kernel``;
``MEMCG_FIX_EFFICACY_RECORD=1`` also rewrites the results in docs/efficacy.md.
Run standalone on a test host (no pytest needed; the tools as installed by
the role): ``python3 test_efficacy.py --n 50 --rmdir-cmd
/usr/local/sbin/memcg-fix-rmdir --reaper-cmd /usr/local/sbin/memcg-fix-reaper``.
"""

from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import shlex
import subprocess
import sys
import tempfile
import time
from pathlib import Path

try:
    import pytest
except ImportError:  # standalone on a test host
    pytest = None

try:
    from remediate.hostside import cgroupfs, reclaim
except ImportError:  # standalone, next to the package the role installs
    sys.path.insert(0, "/usr/lib/memcg-fix")
    from memcg_fix_host import cgroupfs, reclaim  # type: ignore[no-redef]

# Standalone on a test host the file may sit anywhere; only the repo's copy records results.
_HERE = Path(__file__).resolve()
REPO = _HERE.parents[2] if len(_HERE.parents) > 2 else _HERE.parent
DOC = REPO / "docs/efficacy.md"
DOC_BEGIN = "<!-- efficacy:begin -->"
DOC_END = "<!-- efficacy:end -->"

N = int(os.environ.get("MEMCG_FIX_EFFICACY_N", "300"))
FILE_BYTES = 256 * 1024  # 64 pages of page cache pin a cgroup as well as 50 MB do
SETTLE_MIN = 3.0  # reclaimed memcgs are freed asynchronously, within ~1-3 s here
SETTLE_MAX = 15.0
SETTLE_STEP = 0.5
CONTROL_FRACTION = 0.9
# arm d only needs its control to pass the guard's threshold (count + N/2)
D_CONTROL_FRACTION = 0.5
LIMIT_FRACTION = 0.02
RELEASE_FRACTION = 0.9
ATTEMPTS = 3

DEFAULT_RMDIR = [sys.executable, "-m", "remediate.hostside.rmdir"]
DEFAULT_REAPER = [sys.executable, "-m", "remediate.hostside.reaper"]

RESULTS: dict[str, dict] = {}


class Bench:
    """The arms, on the running kernel, under our own cgroup prefix."""

    def __init__(self, n: int, workdir: Path, rmdir_cmd: list[str],
                 reaper_cmd: list[str]) -> None:
        self.n = n
        self.workdir = workdir
        self.rmdir_cmd = rmdir_cmd
        self.reaper_cmd = reaper_cmd
        self.layout = cgroupfs.memory_layout("/", live=True)
        if self.layout["memory_controller"] not in ("v1", "v2"):
            raise RuntimeError(f"no memory cgroup hierarchy: {self.layout}")
        self.v2 = self.layout["memory_controller"] == "v2"
        self.mount = Path(self.layout["memory_mount"])
        self.prefix = self.mount / f"memcg-fix-test-efficacy-{os.getpid()}"
        self.prefix.mkdir()
        self._enable_memory(self.prefix)
        self.sequence = 0

    # -------------------------------------------------------------- basics

    def _enable_memory(self, cgroup: Path) -> None:
        if self.v2:  # children of our own cgroup get a memory controller
            (cgroup / "cgroup.subtree_control").write_text("+memory")

    def dying(self) -> int:
        counts = cgroupfs.dying_memcgs("/", self.layout)
        if counts["dying"] is None:
            raise RuntimeError("dying count unknown: {}".format(counts["reason"]))
        return int(counts["dying"])

    def settled(self) -> int:
        """The dying count once it stops moving (same reading twice in a row,
        after at least SETTLE_MIN seconds, at most SETTLE_MAX)."""
        time.sleep(SETTLE_MIN)
        last = self.dying()
        waited = SETTLE_MIN
        while waited < SETTLE_MAX:
            time.sleep(SETTLE_STEP)
            waited += SETTLE_STEP
            now = self.dying()
            if now == last:
                return now
            last = now
        return last

    def arm_dir(self, name: str) -> Path:
        self.sequence += 1
        path = self.prefix / f"{name}-{self.sequence}"
        path.mkdir()
        self._enable_memory(path)
        return path

    def evicted_files(self, name: str) -> list[Path]:
        """N files of our own on a disk-backed filesystem, none in page cache."""
        directory = self.workdir / f"{name}-{self.sequence}"
        directory.mkdir()
        files = []
        for i in range(self.n):
            path = directory / f"f{i:04d}"
            with open(path, "wb") as handle:
                handle.write(os.urandom(FILE_BYTES))
                handle.flush()
                os.fsync(handle.fileno())
                os.posix_fadvise(handle.fileno(), 0, 0, os.POSIX_FADV_DONTNEED)
            files.append(path)
        return files

    @staticmethod
    def charge(cgroup: Path, data: Path) -> int:
        """A child joins ``cgroup``, reads ``data`` into page cache, exits.
        Returns the bytes charged to the cgroup afterwards."""
        pid = os.fork()
        if pid == 0:
            code = 1
            try:
                (cgroup / "cgroup.procs").write_text(str(os.getpid()))
                with open(data, "rb") as handle:
                    while handle.read(1 << 20):
                        pass
                code = 0
            finally:
                os._exit(code)
        _, status = os.waitpid(pid, 0)
        if not (os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0):
            raise RuntimeError(f"the charging child failed in {cgroup}")
        return reclaim.usage_bytes(str(cgroup)) or 0

    def reaper_pass(self, config: str, name: str) -> dict:
        path = self.workdir / f"{name}-{self.sequence}.conf"
        path.write_text(config)
        proc = subprocess.run([*self.reaper_cmd, "--config", str(path), "--once"],
                              capture_output=True, text=True, timeout=600)
        state_file = self.workdir / f"state-{name}" / "reaper-state.json"
        state = json.loads(state_file.read_text()) if state_file.exists() else {}
        return {"returncode": proc.returncode, "log": proc.stderr, "state": state}

    @staticmethod
    def drop_pagecache_events() -> int | None:
        for line in Path("/proc/vmstat").read_text().splitlines():
            name, _, value = line.partition(" ")
            if name == "drop_pagecache":
                return int(value)
        return None

    # ---------------------------------------------------------------- arms

    def _arm(self, name: str, remove_all, before_removal=None) -> dict:
        """Create and charge N cgroups (their children exit: unpopulated),
        read the settled count, remove them all with ``remove_all``, read the
        settled count again. Removing in one short burst keeps the window in
        which other work on the host can move the count small."""
        parent = self.arm_dir(name)
        files = self.evicted_files(name)
        cgroups, charged = [], []
        for i, data in enumerate(files):
            cgroup = parent / f"c{i:04d}"
            cgroup.mkdir()
            charged.append(self.charge(cgroup, data))
            cgroups.append(cgroup)
        before = self.settled()
        extra = before_removal() if before_removal else {}
        started = time.monotonic()
        extra.update(remove_all(parent, cgroups) or {})
        seconds = time.monotonic() - started
        after = self.settled()
        result = {"before": before, "after": after, "delta": after - before,
                  "seconds": round(seconds, 2),
                  "charged_mean_bytes": sum(charged) // max(len(charged), 1),
                  # what is still charged below the arm's parent: the page cache
                  # that pins its removed children (only our cgroups are there)
                  "pinned_bytes": reclaim.usage_bytes(str(parent)) or 0}
        result.update(extra)
        return result

    @staticmethod
    def _plain_rmdir(parent: Path, cgroups: list[Path]) -> None:
        for cgroup in cgroups:
            os.rmdir(cgroup)

    def arm_a(self) -> dict:
        return self._arm("a", self._plain_rmdir)

    def arm_b(self) -> dict:
        def remove_all(parent: Path, cgroups: list[Path]) -> dict:
            proc = subprocess.run([*self.rmdir_cmd, *map(str, cgroups)], capture_output=True,
                                  text=True, timeout=600)
            left = [c for c in cgroups if c.exists()]
            if proc.returncode != 0 or left:
                raise RuntimeError(f"memcg-fix-rmdir failed (exit {proc.returncode}, "
                                   f"{len(left)} left): {proc.stdout[-2000:]}"
                                   f"{proc.stderr[-2000:]}")
            return {"rmdir_summary": proc.stdout.strip().splitlines()[-1]}
        return self._arm("b", remove_all)

    def arm_c(self) -> dict:
        def remove_all(parent: Path, cgroups: list[Path]) -> dict:
            name = f"c-{self.sequence}"
            passed = self.reaper_pass(
                f"[reaper]\nstate_dir = {self.workdir / ('state-' + name)}\n"
                f"textfile_dir = {self.workdir}\n"
                "[reclaim]\nenabled = true\ngrace_seconds = 0\nmin_charge_bytes = 4096\n"
                f"max_per_pass = {self.n + 10}\nsubtrees = {parent.relative_to(self.mount)}\n"
                "[drop_caches]\nenabled = false\n", name)
            counters = passed["state"].get("counters", {})
            if passed["returncode"] != 0 or counters.get("reclaimed_cgroups", 0) < self.n:
                raise RuntimeError(f"the reaper pass did not reclaim the {self.n} cgroups "
                                   f"(exit {passed['returncode']}): {passed['log'][-2000:]}")
            self._plain_rmdir(parent, cgroups)
            return {"reaper_reclaimed_cgroups": counters["reclaimed_cgroups"],
                    "reaper_reclaimed_bytes": counters["reclaimed_bytes"]}
        return self._arm("c", remove_all)

    def arm_d(self) -> dict:
        """Arm a with a baseline reaper pass before the removal (its threshold
        is not reached yet: it only records the count), then the pass that
        must run drop_caches, then one more that must not."""
        name = f"d-{self.sequence + 1}"
        threshold = {}

        def config(require_growth: bool = True) -> str:
            return (f"[reaper]\nstate_dir = {self.workdir / ('state-' + name)}\n"
                    f"textfile_dir = {self.workdir}\n[reclaim]\nenabled = false\n"
                    f"[drop_caches]\nenabled = true\ndying_threshold = {threshold['value']}\n"
                    f"min_interval_seconds = 3600\nrequire_growth = {require_growth}\n")

        def baseline() -> dict:
            threshold["value"] = self.dying() + self.n // 2
            passed = self.reaper_pass(config(), name)
            if passed["returncode"] != 0 or passed["state"]["counters"]["drop_caches_runs"]:
                raise RuntimeError("the baseline pass misbehaved: {}".format(passed["log"]))
            return {"threshold": threshold["value"]}

        control = self._arm("a", self._plain_rmdir, before_removal=baseline)
        events_before = self.drop_pagecache_events()
        started = time.monotonic()
        guarded = self.reaper_pass(config(), name)
        seconds = time.monotonic() - started
        events_after = self.drop_pagecache_events()
        after = self.settled()
        # the same state, a threshold of 0 and no growth needed: only the
        # interval can keep this pass from running drop_caches again
        threshold["value"] = 0
        again = self.reaper_pass(config(require_growth=False), name)
        return {
            "threshold": control.pop("threshold"), "control": control,
            "second_pass_returncode": again["returncode"],
            "before": control["after"], "after": after,
            "released": control["after"] - after,
            "pass_seconds": round(seconds, 2),
            "pass_returncode": guarded["returncode"],
            "drop_caches_runs": guarded["state"]["counters"]["drop_caches_runs"],
            "kernel_drop_pagecache_events": (None if events_before is None
                                             else events_after - events_before),
            "pass_log": [line for line in guarded["log"].splitlines()
                         if "drop_caches: " in line and "pass done" not in line],
            "second_pass_runs": again["state"]["counters"]["drop_caches_runs"],
            "second_pass_log": [line for line in again["log"].splitlines()
                                if "drop_caches: " in line and "pass done" not in line],
        }

    def cleanup(self) -> None:
        """Reclaim, then remove, everything under our prefix (children first):
        this also releases what arm a left pinned."""
        for path in reclaim.subtree_post_order(str(self.prefix)):
            reclaim.reclaim_cgroup(path, 30)
            try:
                os.rmdir(path)
            except OSError as exc:
                sys.stderr.write(f"cleanup: cannot remove {path}: {exc.strerror}\n")


# ------------------------------------------------------------- evaluation


def limit(n: int) -> int:
    return int(n * LIMIT_FRACTION)


def pinned_limit(n: int) -> int:
    """Charge that may stay below an arm's parent once its children are
    removed after reclaim: a tenth of what arm a leaves pinning them."""
    return n * FILE_BYTES // 10


def control_ok(result: dict, n: int) -> bool:
    return result["delta"] >= CONTROL_FRACTION * n


def fix_ok(result: dict, n: int) -> bool:
    return result["delta"] <= limit(n) and result["pinned_bytes"] <= pinned_limit(n)


def d_ok(result: dict, n: int) -> bool:
    return (result["pass_returncode"] == 0
            and result["control"]["delta"] >= D_CONTROL_FRACTION * n
            and result["drop_caches_runs"] == 1
            and result["released"] >= RELEASE_FRACTION * result["control"]["delta"]
            and result["second_pass_runs"] == 1)


def run_with_attempts(arm, n: int, good) -> dict:
    """Up to ATTEMPTS runs of an arm until one meets ``good``. Background
    churn moves the count either way by a few; an arm that is really wrong
    misses by about N in every attempt."""
    attempts = []
    for _ in range(ATTEMPTS):
        result = arm()
        result["ok"] = good(result, n)
        attempts.append(result)
        if result["ok"]:
            break
    return {"attempts": attempts, "delta": attempts[-1]["delta"],
            "ok": attempts[-1]["ok"]}


def environment(n: int, bench: Bench) -> dict:
    return {
        "kernel": platform.release(), "machine": platform.machine(),
        "mode": bench.layout["mode"], "memory_controller": bench.layout["memory_controller"],
        "n": n, "file_bytes": FILE_BYTES,
        "date": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        "settle": f"at least {SETTLE_MIN:g}s, until two readings {SETTLE_STEP:g}s apart "
                  f"agree (at most {SETTLE_MAX:g}s)",
    }


def results_markdown(results: dict) -> str:
    env = results.get("environment", {})
    n = env.get("n", 0)
    mib = 1048576.0
    lines = [
        f"Measured {env.get('date')} on kernel `{env.get('kernel')}` ({env.get('machine')}, "
        f"{env.get('mode')}, memory controller {env.get('memory_controller')}), N = {n} "
        f"cgroups per arm, {env.get('file_bytes', 0) // 1024} KiB of page cache read into "
        f"each. Settle: {env.get('settle')}.",
        "",
        "| arm | how the cgroups are removed | dying before | after | delta "
        "| still charged below the arm | required | result |",
        "|---|---|---|---|---|---|---|---|",
    ]

    def row(arm, how, entry, required, ok):
        change = f"{entry['delta']:+d}" if "delta" in entry else f"-{entry['released']}"
        pinned = f"{entry['pinned_bytes'] / mib:.1f} MiB" if "pinned_bytes" in entry else ""
        verdict = "pass" if ok else "**FAIL**"
        lines.append(f"| {arm} | {how} | {entry['before']} | {entry['after']} | {change} "
                     f"| {pinned} | {required} | {verdict} |")

    for arm, how, required in (
            ("a", "plain rmdir", f"rises by >= {int(CONTROL_FRACTION * n)} (90% of N)"),
            ("b", "`memcg-fix-rmdir`", f"rises by <= {limit(n)} (2% of N)"),
            ("c", "left unpopulated, one reaper pass, plain rmdir",
             f"rises by <= {limit(n)} (2% of N)")):
        if arm in results:
            attempts = results[arm]["attempts"]
            for i, attempt in enumerate(attempts, 1):
                label = arm if len(attempts) == 1 else f"{arm} (attempt {i})"
                row(label, how, attempt, required, attempt["ok"])
    if "d" in results:
        d = results["d"]
        row("d, its arm a", "plain rmdir", d["control"],
            f"rises by >= {int(D_CONTROL_FRACTION * n)} (past the guard's threshold)",
            d["control"]["delta"] >= D_CONTROL_FRACTION * n)
        row("d", f"none: one reaper pass, drop_caches guard over its threshold "
            f"({d['threshold']})", d,
            f"releases >= {int(RELEASE_FRACTION * d['control']['delta'])} (90% of its arm a)",
            d["ok"])
    lines.append("")
    if "b" in results:
        b = results["b"]["attempts"][-1]
        lines.append(f"- b: one `memcg-fix-rmdir` run for the {n} cgroups took "
                     f"{b['seconds']}s: \"{b['rmdir_summary']}\".")
    if "c" in results:
        c = results["c"]["attempts"][-1]
        lines.append(f"- c: the reaper pass reclaimed {c['reaper_reclaimed_cgroups']} cgroups "
                     f"(the {n} and their parent), {c['reaper_reclaimed_bytes'] / mib:.1f} MiB; "
                     f"pass and rmdirs took {c['seconds']}s.")
    if "d" in results:
        d = results["d"]
        first = " / ".join(x.split(": ", 1)[-1] for x in d["pass_log"])
        second = " / ".join(x.split(": ", 1)[-1] for x in d["second_pass_log"])
        lines.append(f"- d: the pass ran drop_caches {d['drop_caches_runs']} time (kernel "
                     f"`drop_pagecache` events meanwhile: {d['kernel_drop_pagecache_events']}) "
                     f"in {d['pass_seconds']}s and logged `{first}`; an immediate second pass "
                     f"(threshold 0, no growth needed, same state) ran it "
                     f"{d['second_pass_runs'] - d['drop_caches_runs']} more times and "
                     f"logged `{second}`.")
    if "a" in results:
        lines.append(f"- mean charge per cgroup before removal (a): "
                     f"{results['a']['attempts'][-1]['charged_mean_bytes'] // 1024} KiB.")
    return "\n".join(lines) + "\n"


def record(results: dict, command: str) -> None:
    """Rewrite the measured block of docs/efficacy.md."""
    text = DOC.read_text() if DOC.exists() else ""
    block = f"{DOC_BEGIN}\n\nReproduce: `{command}`\n\n{results_markdown(results)}\n{DOC_END}"
    if DOC_BEGIN in text and DOC_END in text:
        head, rest = text.split(DOC_BEGIN, 1)
        text = head + block + rest.split(DOC_END, 1)[1]
    else:
        text = text + "\n" + block + "\n"
    DOC.write_text(text)


def disk_workdir() -> Path:
    """A temp dir on a disk-backed filesystem: tmpfs pages are not page cache
    that reclaim can drop (without swap they stay charged)."""
    for base in (tempfile.gettempdir(), "/var/tmp"):
        if cgroupfs.statfs_magic(base) != cgroupfs.TMPFS_MAGIC:
            return Path(tempfile.mkdtemp(prefix="memcg-fix-efficacy-", dir=base))
    raise RuntimeError("no disk-backed temp directory (/tmp and /var/tmp are tmpfs)")


# ------------------------------------------------------------------ pytest


if pytest is not None:
    pytestmark = [pytest.mark.live_kernel, pytest.mark.slow]

    @pytest.fixture(scope="module")
    def bench():
        if os.geteuid() != 0:
            pytest.skip("needs root to create memory cgroups")
        layout = cgroupfs.memory_layout("/", live=True)
        if layout["memory_controller"] not in ("v1", "v2"):
            pytest.skip(f"no memory cgroup hierarchy here: {layout}")
        workdir = disk_workdir()
        created = Bench(N, workdir, DEFAULT_RMDIR, DEFAULT_REAPER)
        RESULTS.clear()
        RESULTS["environment"] = environment(N, created)
        try:
            yield created
        finally:
            created.cleanup()
            subprocess.run(["rm", "-rf", "--one-file-system", str(workdir)], check=False)
            sys.stderr.write("\n" + results_markdown(RESULTS))
            if os.environ.get("MEMCG_FIX_EFFICACY_RECORD") == "1":
                record(RESULTS, "MEMCG_FIX_EFFICACY_RECORD=1 python -m pytest "
                                "tests/live/test_efficacy.py -m live_kernel -p no:cacheprovider"
                                " (as root, in the dev venv)")

    def test_arm_a_plain_rmdir_leaves_a_zombie_per_cgroup(bench):
        result = run_with_attempts(bench.arm_a, bench.n, control_ok)
        RESULTS["a"] = result
        last = result["attempts"][-1]
        assert last["charged_mean_bytes"] >= FILE_BYTES // 2, last
        assert result["ok"], (
            f"control failed: plain rmdir of {bench.n} charged cgroups left "
            f"{last['delta']:+d} zombies ({last['pinned_bytes']} bytes still charged below "
            f"them); this kernel may release page-cache-pinned memcgs by itself: {result}")

    def test_arm_b_memcg_fix_rmdir_leaves_none(bench):
        result = run_with_attempts(bench.arm_b, bench.n, fix_ok)
        RESULTS["b"] = result
        assert result["ok"], f"memcg-fix-rmdir left zombies in every attempt: {result}"

    def test_arm_c_reaper_reclaim_pass_leaves_none(bench):
        result = run_with_attempts(bench.arm_c, bench.n, fix_ok)
        RESULTS["c"] = result
        assert result["ok"], f"reclaim pass then rmdir left zombies in every attempt: {result}"

    @pytest.mark.drop_caches
    def test_arm_d_drop_caches_guard_releases_the_zombies(bench):
        result = bench.arm_d()
        result["ok"] = d_ok(result, bench.n)
        RESULTS["d"] = result
        assert result["pass_returncode"] == 0, result["pass_log"]
        assert result["control"]["delta"] >= D_CONTROL_FRACTION * bench.n, result
        assert result["drop_caches_runs"] == 1, result["pass_log"]
        assert result["kernel_drop_pagecache_events"] in (None, 1, 2), result
        assert result["released"] >= RELEASE_FRACTION * result["control"]["delta"], result
        assert result["second_pass_runs"] == 1, result["second_pass_log"]
        assert any("at most once per 3600s" in line for line in result["second_pass_log"]), \
            result["second_pass_log"]


# -------------------------------------------------------------- standalone


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--n", type=int, default=N)
    parser.add_argument("--arms", default="abcd", help="which arms, e.g. abc (d drops caches)")
    parser.add_argument("--rmdir-cmd", default=" ".join(DEFAULT_RMDIR))
    parser.add_argument("--reaper-cmd", default=" ".join(DEFAULT_REAPER))
    parser.add_argument("--json", metavar="FILE", help="also write the results as JSON")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        sys.stderr.write("needs root\n")
        return 2
    workdir = disk_workdir()
    bench = Bench(args.n, workdir, shlex.split(args.rmdir_cmd), shlex.split(args.reaper_cmd))
    results: dict = {"environment": environment(args.n, bench)}
    try:
        if "a" in args.arms:
            results["a"] = run_with_attempts(bench.arm_a, args.n, control_ok)
        if "b" in args.arms:
            results["b"] = run_with_attempts(bench.arm_b, args.n, fix_ok)
        if "c" in args.arms:
            results["c"] = run_with_attempts(bench.arm_c, args.n, fix_ok)
        if "d" in args.arms:
            d = bench.arm_d()
            d["ok"] = d_ok(d, args.n)
            results["d"] = d
    finally:
        bench.cleanup()
        subprocess.run(["rm", "-rf", "--one-file-system", str(workdir)], check=False)
    ok = all(results[arm]["ok"] for arm in "abcd" if arm in results)
    results["ok"] = ok
    sys.stdout.write(results_markdown(results))
    if args.json:
        Path(args.json).write_text(json.dumps(results, indent=2, default=str))
    return 0 if ok else 1


if __name__ == "__main__":
    sys.exit(main())
