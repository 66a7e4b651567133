"""Common pieces of the benchmark scripts: the machine, timing, statistics, Ansible's env.

Benchmarks print figures; they are not tests. Each measurement runs its arms
side by side (interleaved, rotating the order every round), so the load of a
busy machine falls on both arms of a ratio alike.
"""

from __future__ import annotations

import json
import os
import platform
import resource
import signal
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parents[1]
CALLBACKS = Path(__file__).resolve().parent / "callback_plugins"
BIN = Path(sys.executable).parent

# Tasks that Ansible runs on the controller only: they start no module on the host.
CONTROLLER_ACTIONS = frozenset({
    "include_role", "include_tasks", "import_role", "import_tasks", "set_fact", "debug",
    "assert", "meta", "group_by", "add_host", "fail", "include_vars", "set_stats",
    "validate_argument_spec", "pause",
})


def short_action(action: str | None) -> str:
    """``ansible.legacy.ping`` or ``memcg_fix.remediate.memcg_facts`` -> the plugin's name."""
    return str(action or "").rsplit(".", 1)[-1]


def machine() -> dict[str, Any]:
    """Cores, memory, kernel, load and tool versions, for the record."""
    mem_kb = 0
    with open("/proc/meminfo", encoding="utf-8") as handle:
        for line in handle:
            if line.startswith("MemTotal:"):
                mem_kb = int(line.split()[1])
    model = ""
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as handle:
            model = next((line.split(":", 1)[1].strip() for line in handle
                          if line.startswith("model name")), "")
    except OSError:
        pass
    info: dict[str, Any] = {
        "cores": os.cpu_count(),
        "cpu": model,
        "memory_gib": round(mem_kb / 2**20, 1),
        "kernel": platform.release(),
        "python": platform.python_version(),
        "load_average_at_start": [round(x, 2) for x in os.getloadavg()],
    }
    try:
        import ansible.release

        info["ansible_core"] = ansible.release.__version__
    except ImportError:
        pass
    return info


def load_note() -> str:
    return "load average " + " ".join(f"{x:.2f}" for x in os.getloadavg())


@dataclass
class Timed:
    wall: float
    cpu: float  # user + system of the command and every descendant it waited for
    returncode: int
    stdout: str
    stderr: str


def timed_run(argv: Sequence[str], *, env: dict[str, str] | None = None,
              timeout: float = 3600, cwd: Path | None = None, stdin: str = "") -> Timed:
    """Run ``argv``; its wall time and the CPU time of it and its descendants."""
    before = resource.getrusage(resource.RUSAGE_CHILDREN)
    started = time.perf_counter()
    proc = subprocess.run(list(argv), env=env, capture_output=True, text=True, input=stdin,
                          timeout=timeout, cwd=cwd, check=False)
    wall = time.perf_counter() - started
    after = resource.getrusage(resource.RUSAGE_CHILDREN)
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Timed(wall, cpu, proc.returncode, proc.stdout, proc.stderr)


@dataclass
class Measured:
    wall: float
    cpu: float  # user + system of the command and every descendant it waited for
    returncode: int
    stdout_path: Path
    stderr: str
    max_rss_kb: int  # the peak RSS of the largest process of the command's tree, sampled
    peak_tree_pss_kb: int  # the command's whole process tree, sampled (PSS: shared pages split)
    largest_process: str  # the command line of that largest process


def _children_of() -> dict[int, list[int]]:
    children: dict[int, list[int]] = {}
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/stat", encoding="utf-8") as handle:
                # the command name may hold spaces and parentheses: split after the last ")"
                fields = handle.read().rsplit(")", 1)[1].split()
        except (OSError, IndexError):
            continue
        children.setdefault(int(fields[1]), []).append(int(entry.name))
    return children


def tree_memory_kb(root: int) -> tuple[int, int, str]:
    """(PSS of ``root`` and all its descendants, the largest VmHWM among them,
    in KiB, and that process's command line).

    PSS splits the pages forked workers share among them; VmHWM is a process's
    own peak RSS since its exec.
    """
    children = _children_of()
    pending, total, largest, name = [root], 0, 0, ""
    while pending:
        pid = pending.pop()
        pending.extend(children.get(pid, ()))
        try:
            with open(f"/proc/{pid}/smaps_rollup", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("Pss:"):
                        total += int(line.split()[1])
                        break
            with open(f"/proc/{pid}/status", encoding="utf-8") as handle:
                for line in handle:
                    if line.startswith("VmHWM:") and int(line.split()[1]) > largest:
                        largest = int(line.split()[1])
                        with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                            name = " ".join(os.path.basename(word) for word in
                                            cmdline.read().decode(errors="replace")
                                            .split("\0")[:3])[:80]
                        break
        except OSError:
            continue
    return total, largest, name


def measured_run(argv: Sequence[str], *, env: dict[str, str] | None, stdout_path: Path,
                 timeout: float = 7200, sample_seconds: float = 1.0,
                 cwd: Path | None = None) -> Measured:
    """Run ``argv`` with stdout to a file; its wall and CPU time and its memory.

    Memory, sampled every ``sample_seconds`` from /proc: the peak RSS
    (VmHWM) of the largest process of the command's tree, and the peak PSS
    of the whole tree (shared pages of forked workers counted once). Not
    wait4's ru_maxrss: a forked child inherits its parent's (this script's)
    high-water mark across exec.
    """
    import tempfile
    import threading

    peak: list[Any] = [0, 0, ""]
    done = threading.Event()
    with open(stdout_path, "w", encoding="utf-8") as out, \
            tempfile.TemporaryFile("w+", encoding="utf-8") as err:
        before = resource.getrusage(resource.RUSAGE_CHILDREN)
        started = time.perf_counter()
        proc = subprocess.Popen(list(argv), env=env, stdin=subprocess.DEVNULL, stdout=out, cwd=cwd,
                                stderr=err)

        def sample() -> None:
            while not done.wait(sample_seconds):
                pss, largest, name = tree_memory_kb(proc.pid)
                peak[0] = max(peak[0], pss)
                if largest > peak[1]:
                    peak[1], peak[2] = largest, name

        sampler = threading.Thread(target=sample, daemon=True)
        sampler.start()
        timer = threading.Timer(timeout, proc.kill)
        timer.start()
        try:
            _pid, status, _usage = os.wait4(proc.pid, 0)
        finally:
            timer.cancel()
            done.set()
            sampler.join()
        wall = time.perf_counter() - started
        proc.returncode = os.waitstatus_to_exitcode(status)
        after = resource.getrusage(resource.RUSAGE_CHILDREN)
        err.seek(0)
        stderr = err.read()
    cpu = (after.ru_utime - before.ru_utime) + (after.ru_stime - before.ru_stime)
    return Measured(wall, cpu, proc.returncode, stdout_path, stderr, peak[1], peak[0],
                    peak[2])


CGROUP_ROOT = Path("/sys/fs/cgroup")


def cgroup_cpu_seconds(cgroup: str, root: Path = CGROUP_ROOT) -> tuple[float, str] | None:
    """The CPU time (user + system, seconds) the tasks of ``cgroup`` and its
    descendants have used so far, and the file it was read from; None where
    neither is readable. Read only: nothing is ever written to a cgroup.

    ``cgroup`` is its path below a hierarchy's root (``parent/libpod-ID``).
    cgroup v1: the cpuacct controller's ``cpuacct.usage``, in nanoseconds
    (Documentation/admin-guide/cgroup-v1/cpuacct.rst); cgroup v2 (the root,
    or a hybrid machine's ``unified``): ``usage_usec`` of ``cpu.stat``, in
    microseconds (Documentation/admin-guide/cgroup-v2.rst, "CPU").
    """
    relative = cgroup.strip("/")
    usage = root / "cpuacct" / relative / "cpuacct.usage"
    try:
        return int(usage.read_text(encoding="ascii")) / 1e9, "cgroup v1 cpuacct.usage"
    except (OSError, ValueError):
        pass
    for base in (root, root / "unified"):
        try:
            lines = (base / relative / "cpu.stat").read_text(encoding="ascii").splitlines()
        except OSError:
            continue
        for line in lines:
            key, _, value = line.partition(" ")
            if key == "usage_usec" and value.strip().isdigit():
                return int(value) / 1e6, "cgroup v2 cpu.stat usage_usec"
    return None


def summary(values: Iterable[float]) -> dict[str, float]:
    """Median, min and max (and the count) of a series."""
    data = sorted(values)
    if not data:
        return {"median": float("nan"), "min": float("nan"), "max": float("nan"), "n": 0}
    return {"median": statistics.median(data), "min": data[0], "max": data[-1], "n": len(data)}


def fmt(stat: dict[str, float], unit: str = "", digits: int = 2) -> str:
    """``1.23 (1.10-1.40)`` from a summary."""
    return (f"{stat['median']:.{digits}f}{unit} ({stat['min']:.{digits}f}-"
            f"{stat['max']:.{digits}f}{unit})")


def rotated(items: Sequence[Any], round_index: int) -> list[Any]:
    """``items`` rotated by the round, so no arm always runs first."""
    shift = round_index % len(items)
    return list(items[shift:]) + list(items[:shift])


def ansible_env(extra: dict[str, str] | None = None) -> dict[str, str]:
    """The environment every Ansible arm runs in (identical across arms)."""
    env = dict(os.environ)
    env["PATH"] = f"{BIN}{os.pathsep}{env.get('PATH', '')}"
    env.update({
        "ANSIBLE_COLLECTIONS_PATH": str(REPO / "playbooks" / "collections"),
        "ANSIBLE_HOST_KEY_CHECKING": "False",
        "ANSIBLE_RETRY_FILES_ENABLED": "False",
        "ANSIBLE_NOCOLOR": "1",
        "ANSIBLE_FORCE_COLOR": "0",
        "ANSIBLE_LOCALHOST_WARNING": "False",
        "ANSIBLE_DEPRECATION_WARNINGS": "False",
        "ANSIBLE_STDOUT_CALLBACK": "default",
        "ANSIBLE_CALLBACK_PLUGINS": str(CALLBACKS),
        "ANSIBLE_CALLBACKS_ENABLED": "bench_tasks",
        # under a load average of 30 sudo's prompt can take longer than the
        # default 10 s connection timeout; every arm gets the same
        "ANSIBLE_TIMEOUT": "60",
    })
    env.setdefault("ANSIBLE_COLLECTIONS_PATH", os.environ.get(
        "ANSIBLE_COLLECTIONS_PATH",
        str(Path(os.environ.get("MEMCG_FIX_CACHE", "/var/cache/memcg-fix-dev")) / "collections")))
    env.update(extra or {})
    return env


def read_task_records(path: Path) -> list[dict[str, Any]]:
    """The lines written by the ``bench_tasks`` callback."""
    if not path.exists():
        return []
    with open(path, encoding="utf-8") as handle:
        return [json.loads(line) for line in handle if line.strip()]


def module_runs(records: Iterable[dict[str, Any]]) -> dict[str, list[str]]:
    """Per host, the actions of every task that started a module on it."""
    runs: dict[str, list[str]] = {}
    for record in records:
        if record.get("event") != "start":
            continue
        action = short_action(record.get("action"))
        if action in CONTROLLER_ACTIONS:
            continue
        runs.setdefault(record["host"], []).append(action)
    return runs


def task_seconds(records: Iterable[dict[str, Any]], action: str) -> list[float]:
    """Seconds from start to result of ``action`` on each host (Ansible's view of one task)."""
    starts: dict[str, float] = {}
    out = []
    for record in records:
        if short_action(record.get("action")) != action:
            continue
        if record["event"] == "start":
            starts[record["host"]] = record["time"]
        elif record["event"] in ("ok", "failed", "unreachable") and record["host"] in starts:
            out.append(record["time"] - starts.pop(record["host"]))
    return out


def on_signals_exit(cleanup: Callable[[], None] | None = None) -> None:
    """Turn SIGTERM/SIGHUP into SystemExit so ``finally`` blocks clean up."""

    def handler(signum: int, _frame: object) -> None:
        if cleanup is not None:
            cleanup()
        raise SystemExit(128 + signum)

    for sig in (signal.SIGTERM, signal.SIGHUP):
        signal.signal(sig, handler)


def write_json(path: str | Path, data: Any) -> None:
    Path(path).write_text(json.dumps(data, indent=2, sort_keys=True) + "\n", encoding="utf-8")
