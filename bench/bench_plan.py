"""P2: `memcg-fix plan --facts` against a bare json.load of the same file.

For each fleet size (default 1,000, 10,000 and 100,000 hosts) a facts
document is generated, deterministically, from the hosts in
policies/cases/_bases.yaml with kernels, runc versions, dying counts, PAM and
kernel-log signatures varied the way a real fleet varies (1% of hosts
unreachable). Then, side by side and alternating which goes first, each in a
fresh process under ``/usr/bin/time -v``:

* ``plan``: ``python -m remediate plan --facts FILE --format json > /dev/null``
* ``json.load``: ``python -c "import json; json.load(open(FILE))"``, the floor
  any tool that reads the file pays;

and, once per size, ``plan`` of a one-host file (interpreter and import
start-up, which is in every plan). It prints, per size, wall and CPU time and
peak RSS as median (min-max) over the runs, the plan/json.load ratios paired
per round, and the CPU of each stage of one plan. The goal (P2) at 10,000
hosts: <= 2 s, <= 300 MB RSS and <= 3x the json.load floor, growing linearly.

    python bench/bench_plan.py                      # 1000, 10000, 100000 hosts, 5 runs
    python bench/bench_plan.py --sizes 10000 --runs 3 --check
    python bench/bench_plan.py --out p2.json --profile plan-10000.txt

``--profile FILE`` also writes a pyinstrument profile of one 10,000-host plan.
"""

from __future__ import annotations

import argparse
import copy
import itertools
import json
import random
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import REPO, fmt, load_note, machine, summary, write_json

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
        writes = rng.random() < 0.3
        facts["pam"]["lastlog_writes_lastlog"] = writes
        facts["pam"]["lastlog_writes_in_session"] = writes
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


def measure(command: list[str]) -> dict[str, float]:
    """Wall s, CPU s (user + system), peak RSS MB and exit code of one run under time -v."""
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
    user = re.search(r"User time \(seconds\): ([\d.]+)", run.stderr)
    system = re.search(r"System time \(seconds\): ([\d.]+)", run.stderr)
    code = re.search(r"Exit status: (\d+)", run.stderr)
    if not (wall and rss and user and system and code):
        raise SystemExit(f"cannot read /usr/bin/time output:\n{run.stderr[-2000:]}")
    hours, minutes, seconds = wall.groups()
    return {
        "wall": int(hours or 0) * 3600 + int(minutes) * 60 + float(seconds),
        "cpu": float(user.group(1)) + float(system.group(1)),
        "rss": int(rss.group(1)) / 1024,
        "code": int(code.group(1)),
    }


def plan_command(path: Path, fmt_name: str) -> list[str]:
    return [sys.executable, "-m", "remediate", "plan", "--facts", str(path), "--format", fmt_name]


def load_command(path: Path) -> list[str]:
    return [sys.executable, "-c", "import json,sys; json.load(open(sys.argv[1]))", str(path)]


def bench_size(path: Path, size: int, runs: int, fmt_name: str,
               startup: dict[str, Any]) -> dict[str, Any]:
    plans, loads = [], []
    for round_index in range(runs):
        arms = ("plan", "load") if round_index % 2 == 0 else ("load", "plan")
        for arm in arms:
            if arm == "plan":
                result = measure(plan_command(path, fmt_name))
                if result["code"] not in (0, 2):
                    raise SystemExit(f"plan exited {result['code']} for {size} hosts")
                plans.append(result)
            else:
                loads.append(measure(load_command(path)))
    row: dict[str, Any] = {"hosts": size, "runs": runs, "format": fmt_name,
                           "file_mb": round(path.stat().st_size / 2**20, 1)}
    for key in ("wall", "cpu", "rss"):
        row[f"plan_{key}"] = summary(r[key] for r in plans)
        row[f"load_{key}"] = summary(r[key] for r in loads)
        row[f"{key}_ratio"] = summary(p[key] / max(q[key], 1e-3)
                                      for p, q in zip(plans, loads, strict=True))
    # CPU of the plan beyond its start-up and beyond the file's json.load, per host
    row["cpu_per_host_ms"] = 1000 * (row["plan_cpu"]["median"] - startup["cpu"]["median"]) / size
    row["stages_cpu_s"] = stages(path, fmt_name)
    return row


def bench_startup(tmp: Path, runs: int, fmt_name: str) -> dict[str, Any]:
    path = tmp / "facts-1.json"
    path.write_text(json.dumps(generate(1)), encoding="utf-8")
    results = [measure(plan_command(path, fmt_name)) for _ in range(runs)]
    return {key: summary(r[key] for r in results) for key in ("wall", "cpu", "rss")}


def stages(path: Path, fmt_name: str) -> dict[str, float]:
    """CPU seconds of each stage of one plan, in a fresh process (as the command runs them)."""
    code = f"""
import gc, json, time
T = time.process_time
t0 = T()
from remediate import facts, policy, report
t1 = T(); doc = json.load(open({str(path)!r})); t2 = T()
del doc
gc.disable()  # as the plan command does
hosts = facts.load_facts_files([{str(path)!r}]); t3 = T()
p = policy.load_default(); plan = policy.evaluate(p, hosts, explain=False); t4 = T()
text = report.render(plan, {fmt_name!r}); t5 = T()
print(json.dumps({{"imports": t1 - t0, "json_load": t2 - t1, "load_facts_files": t3 - t2,
                  "evaluate": t4 - t3, "render": t5 - t4}}))
"""
    run = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    return {k: round(v, 3) for k, v in json.loads(run.stdout).items()}


def profile(path: Path, fmt_name: str, out: Path) -> None:
    """A pyinstrument profile of one plan (pyinstrument must be installed)."""
    pyinstrument = Path(sys.executable).parent / "pyinstrument"
    if not pyinstrument.exists():
        raise SystemExit("--profile needs pyinstrument (scripts/setup-dev.sh installs it)")
    subprocess.run([str(pyinstrument), "-r", "text", "-o", str(out), "-m", "remediate", "plan",
                    "--facts", str(path), "--format", fmt_name],
                   stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, check=False)


def _line(row: dict[str, Any]) -> str:
    stage = row["stages_cpu_s"]
    return (
        f"{row['hosts']:>7} hosts  {row['file_mb']:>6.1f} MB facts, {row['runs']} runs "
        f"({load_note()})\n"
        f"    plan      wall {fmt(row['plan_wall'], ' s')}  CPU {fmt(row['plan_cpu'], ' s')}  "
        f"RSS {fmt(row['plan_rss'], ' MB', 0)}\n"
        f"    json.load wall {fmt(row['load_wall'], ' s')}  CPU {fmt(row['load_cpu'], ' s')}  "
        f"RSS {fmt(row['load_rss'], ' MB', 0)}\n"
        f"    plan / json.load (paired): wall {fmt(row['wall_ratio'], 'x')}  "
        f"CPU {fmt(row['cpu_ratio'], 'x')}  RSS {fmt(row['rss_ratio'], 'x')}\n"
        f"    CPU per host beyond start-up: {row['cpu_per_host_ms']:.3f} ms\n"
        f"    CPU by stage: imports {stage['imports']:.2f} s, "
        f"json.load {stage['json_load']:.2f} s, "
        f"load_facts_files (read + schema + derive) {stage['load_facts_files']:.2f} s, "
        f"evaluate {stage['evaluate']:.2f} s, render {stage['render']:.2f} s"
    )


def check(rows: list[dict[str, Any]]) -> list[str]:
    """The P2 goal at 10,000 hosts, and linear growth between the sizes measured.

    Time goals are judged on CPU time as well as wall time: on a busy
    machine wall time also measures the neighbours.
    """
    problems = []
    for row in rows:
        if row["hosts"] != GOAL_HOSTS:
            continue
        wall, cpu = row["plan_wall"]["median"], row["plan_cpu"]["median"]
        if min(wall, cpu) > GOAL_SECONDS:
            problems.append(f"10,000 hosts took {wall:.2f} s ({cpu:.2f} s CPU) > {GOAL_SECONDS} s")
        if row["plan_rss"]["median"] > GOAL_RSS_MB:
            problems.append(f"10,000 hosts peaked at {row['plan_rss']['median']:.0f} MB")
        ratio = min(row["wall_ratio"]["median"], row["cpu_ratio"]["median"])
        if ratio > GOAL_RATIO:
            problems.append(f"10,000 hosts: {ratio:.1f}x json.load > {GOAL_RATIO}x")
    for small, large in itertools.pairwise(rows):
        # CPU per host must not grow with the fleet (50% slack: time -v reports
        # CPU in 10 ms steps, and json.load's own cost per host grows too)
        if large["cpu_per_host_ms"] > 1.5 * small["cpu_per_host_ms"]:
            problems.append(
                f"{small['hosts']} -> {large['hosts']} hosts: CPU per host grew from "
                f"{small['cpu_per_host_ms']:.3f} to {large['cpu_per_host_ms']:.3f} ms (not linear)")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--sizes", type=int, nargs="+", default=[1000, 10_000, 100_000])
    parser.add_argument("--runs", type=int, default=5, help="runs per measurement (median)")
    parser.add_argument("--format", choices=("json", "table", "markdown"), default="json")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    parser.add_argument("--profile", metavar="FILE",
                        help="write a pyinstrument profile of one 10,000-host plan")
    parser.add_argument("--check", action="store_true", help="exit 1 when the goal is missed")
    args = parser.parse_args()
    if not Path(TIME).exists():
        raise SystemExit(f"{TIME} is needed (apt-get install time)")
    info = machine()
    print(f"machine: {info}", flush=True)
    rows = []
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-plan-") as tmp_name:
        tmp = Path(tmp_name)
        startup = bench_startup(tmp, args.runs, args.format)
        print(f"start-up (plan of one host): wall {fmt(startup['wall'], ' s')}  "
              f"CPU {fmt(startup['cpu'], ' s')}  RSS {fmt(startup['rss'], ' MB', 0)}", flush=True)
        for size in sorted(args.sizes):
            path = tmp / f"facts-{size}.json"
            path.write_text(json.dumps(generate(size)), encoding="utf-8")
            rows.append(bench_size(path, size, args.runs, args.format, startup))
            print(_line(rows[-1]), flush=True)
            if args.profile and size == GOAL_HOSTS:
                profile(path, args.format, Path(args.profile))
            path.unlink()
    problems = check(rows)
    for problem in problems:
        print(f"GOAL MISSED: {problem}")
    if not problems:
        print("GOAL met: <= 2 s, <= 300 MB and <= 3x json.load at 10,000 hosts; linear")
    if args.out:
        write_json(args.out, {"machine": info, "startup": startup, "rows": rows,
                              "problems": problems})
    return 1 if (problems and args.check) else 0


if __name__ == "__main__":
    sys.exit(main())
