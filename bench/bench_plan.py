"""Benchmark `memcg-fix plan --facts` against a bare json.load of the same file.

For each fleet size a facts document is generated (deterministically, from
the hosts in policies/cases/_bases.yaml with kernels, runc versions, dying
counts, PAM and kernel-log signatures varied the way a real fleet varies),
then, several times each, in fresh processes under /usr/bin/time -v:

* ``python -m remediate plan --facts FILE --format json > /dev/null``
* ``python -c "import json; json.load(open(FILE))"``

and the medians of wall time and peak RSS are printed, with plan/json.load
ratios. The goal (P2) for 10,000 hosts: <= 2 s, <= 300 MB RSS and <= 3x a
bare json.load, growing linearly.

    python bench/bench_plan.py                      # 1000, 10000, 100000 hosts, 5 runs
    python bench/bench_plan.py --sizes 10000 --runs 3 --check
    python bench/bench_plan.py --out bench-plan.json

Measured (medians of 5, --format json, 2-core Debian 12 VM, Python 3.11):

    hosts    facts    plan wall (CPU)    peak RSS   json.load wall   RSS       ratio
    1000     2.8 MB   0.39 s (0.38 s)     41 MB     0.07 s            23 MB    5.6x
    10000    28.5 MB  1.31 s (1.30 s)    164 MB     0.52 s           141 MB    2.5x
    100000   284 MB   12.1 s (10.9 s)   1352 MB     8.33 s          1317 MB    1.4x

At 10,000 hosts the CPU splits into reading and checking the facts file
(0.56 s), evaluating the policy (0.30 s) and rendering (0.18 s), plus about
0.2 s of interpreter start. At 1000 hosts the start-up dominates the ratio.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import re
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parents[1]
BASES = REPO / "policies" / "cases" / "_bases.yaml"
TIME = "/usr/bin/time"

GOAL_HOSTS = 10_000
GOAL_SECONDS = 2.0
GOAL_RSS_MB = 300.0
GOAL_RATIO = 3.0

EL7_KERNELS = [
    "3.10.0-514.10.2.el7",
    "3.10.0-693.el7",
    "3.10.0-957.27.2.el7",
    "3.10.0-1062.1.2.el7",
    "3.10.0-1062.4.1.el7",
    "3.10.0-1127.el7",
    "3.10.0-1160.24.1.el7",
    "3.10.0-1160.119.1.el7",
]
EL8_KERNELS = ["4.18.0-477.10.1.el8_8", "4.18.0-513.5.1.el8_9", "4.18.0-553.el8_10"]
DEBIAN_KERNELS = [
    ("6.1.0-18-amd64", "6.1.76-1"),
    ("6.1.0-21-amd64", "6.1.90-1"),
    ("6.1.0-28-amd64", "6.1.119-1"),
]
RUNC = ["1.0.0-rc10", "1.0.0-rc93", "1.0.0-rc94", "1.1.12", None]


def generate(hosts: int, seed: int = 4) -> dict[str, Any]:
    """A facts document of ``hosts`` hosts, the same for the same arguments."""
    bases = yaml.safe_load(BASES.read_text(encoding="utf-8"))
    rng = random.Random(seed)
    entries = []
    for index in range(hosts):
        kind = rng.choice(["el7", "el7", "el8", "debian12", "ubuntu2204"])
        entry = copy.deepcopy(bases[kind])
        entry["host"] = f"{kind}-{index:06d}.example.net"
        facts = entry["facts"]
        if kind == "el7":
            package = rng.choice(EL7_KERNELS)
            facts["kernel"].update(release=f"{package}.x86_64", package_version=package)
        elif kind == "el8":
            package = rng.choice(EL8_KERNELS)
            facts["kernel"].update(release=f"{package}.x86_64", package_version=package)
        elif kind == "debian12":
            release, package = rng.choice(DEBIAN_KERNELS)
            facts["kernel"].update(release=release, package_version=package)
        if facts["cgroup"]["memory_controller"] == "v1":
            nokmem = rng.random() < 0.6
            facts["cmdline"]["nokmem"] = nokmem
            facts["boot"]["nokmem_all_entries"] = nokmem and rng.random() < 0.9
            facts["kmem"]["accounting_active"] = not nokmem
        facts["runc"]["version"] = rng.choice(RUNC)
        facts["memcg"]["dying"] = int(rng.paretovariate(1.2) * 20)
        facts["pam"]["lastlog_writes_lastlog"] = rng.random() < 0.3
        if rng.random() < 0.02:
            facts["kernel_log"]["signatures"]["memcg_oom"] = {
                "count": rng.randint(1, 20),
                "last": "oom",
                "memcgs": [f"/kubepods/burstable/pod{rng.randrange(10**6)}"],
            }
        if rng.random() < 0.01:
            entry = {
                "host": entry["host"],
                "facts": {},
                "unknown": [],
                "error": "ssh: connect to host port 22: Connection timed out",
            }
        entries.append(entry)
    return {"schema_version": 1, "memcg_fix_version": "bench", "hosts": entries}


def measure(command: list[str]) -> tuple[float, float, float, int]:
    """(wall s, CPU s, peak RSS MB, exit code) of one run under /usr/bin/time -v.

    CPU time (user + system) is reported next to wall time because a shared
    machine's load stretches wall time but not the work done.
    """
    run = subprocess.run(
        [TIME, "-v", *command],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
        check=False,
    )
    wall = re.search(
        r"Elapsed \(wall clock\) time \(h:mm:ss or m:ss\): (?:(\d+):)?(\d+):([\d.]+)", run.stderr
    )
    rss = re.search(r"Maximum resident set size \(kbytes\): (\d+)", run.stderr)
    if not wall or not rss:
        raise SystemExit(f"cannot read /usr/bin/time output:\n{run.stderr[-2000:]}")
    hours, minutes, seconds = wall.groups()
    seconds_total = int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds)
    user = re.search(r"User time \(seconds\): ([\d.]+)", run.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", run.stderr)
    cpu = float(user.group(1) if user else 0) + float(system.group(1) if system else 0)
    exit_line = re.search(r"Exit status: (\d+)", run.stderr)
    code = int(exit_line.group(1)) if exit_line else -1
    return seconds_total, cpu, int(rss.group(1)) / 1024, code


def bench(sizes: list[int], runs: int, fmt: str) -> list[dict[str, Any]]:
    rows = []
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-") as tmp:
        for size in sizes:
            path = Path(tmp) / f"facts-{size}.json"
            path.write_text(json.dumps(generate(size)), encoding="utf-8")
            plan_cmd = [
                sys.executable,
                "-m",
                "remediate",
                "plan",
                "--facts",
                str(path),
                "--format",
                fmt,
            ]
            load_cmd = [
                sys.executable,
                "-c",
                "import json,sys; json.load(open(sys.argv[1]))",
                str(path),
            ]
            plan_runs, load_runs = [], []
            for _ in range(runs):
                wall, cpu, rss, code = measure(plan_cmd)
                if code not in (0, 2):
                    raise SystemExit(f"plan exited {code} for {size} hosts")
                plan_runs.append((wall, cpu, rss))
                wall, cpu, rss, _ = measure(load_cmd)
                load_runs.append((wall, cpu, rss))
            row = {
                "hosts": size,
                "file_mb": round(path.stat().st_size / 2**20, 1),
                "plan_s": statistics.median(r[0] for r in plan_runs),
                "plan_cpu_s": statistics.median(r[1] for r in plan_runs),
                "plan_rss_mb": statistics.median(r[2] for r in plan_runs),
                "json_load_s": statistics.median(r[0] for r in load_runs),
                "json_load_cpu_s": statistics.median(r[1] for r in load_runs),
                "json_load_rss_mb": statistics.median(r[2] for r in load_runs),
                "runs": runs,
                "format": fmt,
            }
            row["time_ratio"] = row["plan_s"] / row["json_load_s"]
            row["cpu_ratio"] = row["plan_cpu_s"] / max(row["json_load_cpu_s"], 1e-3)
            row["rss_ratio"] = row["plan_rss_mb"] / row["json_load_rss_mb"]
            row["stages_cpu_s"] = stages(path, fmt)
            rows.append(row)
            print(_line(row), flush=True)
    return rows


def stages(path: Path, fmt: str) -> dict[str, float]:
    """CPU seconds of each stage of one plan, in a fresh process (as the command runs them)."""
    code = f"""
import gc, json, time
from remediate import facts, policy, report
T = time.process_time
t0 = T(); doc = json.load(open({str(path)!r})); t1 = T()
del doc
gc.disable()  # as the plan command does
hosts = facts.load_facts_files([{str(path)!r}]); t2 = T()
p = policy.load_default(); plan = policy.evaluate(p, hosts, explain=False); t3 = T()
text = report.render(plan, {fmt!r}); t4 = T()
print(json.dumps({{"json_load": t1 - t0, "load_facts_files": t2 - t1, "evaluate": t3 - t2,
                  "render": t4 - t3}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {k: round(v, 3) for k, v in json.loads(run.stdout).items()}


def _line(row: dict[str, Any]) -> str:
    stage = row["stages_cpu_s"]
    return (
        f"{row['hosts']:>7} hosts  {row['file_mb']:>6.1f} MB facts  "
        f"plan {row['plan_s']:6.2f} s ({row['plan_cpu_s']:5.2f} s CPU) "
        f"{row['plan_rss_mb']:7.1f} MB  "
        f"json.load {row['json_load_s']:5.2f} s ({row['json_load_cpu_s']:5.2f} s CPU) "
        f"{row['json_load_rss_mb']:6.1f} MB  "
        f"ratio wall {row['time_ratio']:4.1f}x cpu {row['cpu_ratio']:4.1f}x "
        f"rss {row['rss_ratio']:4.1f}x\n"
        f"{'':>15}CPU by stage: json.load {stage['json_load']:.2f} s, "
        f"load_facts_files (parse + schema check) {stage['load_facts_files']:.2f} s, "
        f"evaluate {stage['evaluate']:.2f} s, render {stage['render']:.2f} s"
    )


def check(rows: list[dict[str, Any]]) -> list[str]:
    """The P2 goal for 10,000 hosts, and linear growth between the sizes measured.

    Time goals are judged on CPU time as well as wall time: on a busy shared
    machine wall time measures the neighbours.
    """
    problems = []
    for row in rows:
        if row["hosts"] == GOAL_HOSTS:
            if min(row["plan_s"], row["plan_cpu_s"]) > GOAL_SECONDS:
                problems.append(
                    f"10,000 hosts took {row['plan_s']:.2f} s ({row['plan_cpu_s']:.2f} s CPU)"
                    f" > {GOAL_SECONDS} s"
                )
            if row["plan_rss_mb"] > GOAL_RSS_MB:
                problems.append(f"10,000 hosts peaked at {row['plan_rss_mb']:.0f} MB")
            if min(row["time_ratio"], row["cpu_ratio"]) > GOAL_RATIO:
                problems.append(
                    f"10,000 hosts: {row['cpu_ratio']:.1f}x the CPU of json.load > {GOAL_RATIO}x"
                )
    for small, large in itertools.pairwise(rows):
        # CPU per host beyond a bare json.load must not grow faster than the fleet
        grow = large["hosts"] / small["hosts"]
        extra_small = max(small["plan_cpu_s"] - small["json_load_cpu_s"], 1e-3)
        extra_large = large["plan_cpu_s"] - large["json_load_cpu_s"]
        if extra_large / extra_small > 1.5 * grow:
            problems.append(
                f"{small['hosts']} -> {large['hosts']} hosts: CPU beyond json.load grew "
                f"{extra_large / extra_small:.1f}x for {grow:.0f}x hosts (not linear)"
            )
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--format", choices=("json", "table", "markdown"), default="json")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args()
    if not Path(TIME).exists():
        raise SystemExit(f"{TIME} is needed (apt-get install time)")
    rows = bench(sorted(args.sizes), args.runs, args.format)
    problems = check(rows)
    for problem in problems:
        print(f"GOAL MISSED: {problem}")
    if args.out:
        Path(args.out).write_text(
            json.dumps({"rows": rows, "problems": problems}, indent=2) + "\n", encoding="utf-8"
        )
    return 1 if (problems and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
