"""P3: counting memory cgroups (v1) with 20,000 live memcgs, against find(1).

Creates COUNT memory cgroups on this machine's real kernel, all under this
benchmark's own prefix ``/sys/fs/cgroup/memory/memcg-fix-bench-<pid>/``:

* ``--layout nested`` (default): 200 parent groups with 99 children each,
  the shape of a container host (pods holding containers): 20,000 in all;
* ``--layout flat``: COUNT siblings.

Then, side by side and rotating the order every round:

* ``walk``: ``remediate.hostside.cgroupfs.count_memcg_dirs`` over the whole
  memory hierarchy, in process (as the collector runs it);
* ``walk-full``: the same walk with the link-count shortcut off
  (``link_counts=False``): every directory is listed, as find does;
* ``find``: ``sh -c 'find /sys/fs/cgroup/memory -type d | wc -l'`` (a new
  process each time, as an operator would run it);

and, when hyperfine is installed, both again as whole processes
(``python3 -c ...count_memcg_dirs...`` against the same find pipeline), so
interpreter start-up is on the walk's side too.

Every cgroup it created is removed at the end (children first), also on
error, Ctrl-C or SIGTERM; nothing outside the prefix is written. Needs root
and the v1 memory controller at /sys/fs/cgroup/memory (v1 or hybrid mode).

    python bench/bench_count.py                      # 20,000 nested, 15 rounds
    python bench/bench_count.py --layout flat --runs 30 --out p3.json
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    REPO,
    fmt,
    load_note,
    machine,
    on_signals_exit,
    rotated,
    summary,
    write_json,
)
from remediate.hostside.cgroupfs import count_memcg_dirs

MEMORY = "/sys/fs/cgroup/memory"
FIND = f"find {MEMORY} -type d | wc -l"


def create(prefix: str, count: int, layout: str, made: list[str]) -> None:
    """mkdir ``count`` cgroups below ``prefix``; every path made is appended to ``made``."""
    os.mkdir(prefix)
    made.append(prefix)
    if layout == "flat":
        for i in range(count):
            path = f"{prefix}/g{i:05d}"
            os.mkdir(path)
            made.append(path)
        return
    per_parent = 100  # the parent and its 99 children
    for p in range(count // per_parent):
        parent = f"{prefix}/pod{p:03d}"
        os.mkdir(parent)
        made.append(parent)
        for c in range(per_parent - 1):
            child = f"{parent}/c{c:02d}"
            os.mkdir(child)
            made.append(child)


def remove(prefix: str, made: list[str]) -> list[str]:
    """rmdir what we made, deepest first; returns what could not be removed.

    Only paths below ``prefix`` that this process created are touched.
    """
    left = []
    for path in sorted(made, key=lambda p: p.count("/"), reverse=True):
        if not (path == prefix or path.startswith(prefix + "/")):
            continue
        for attempt in range(50):
            try:
                os.rmdir(path)
                break
            except FileNotFoundError:
                break
            except OSError:
                # EBUSY right after a task left: the kernel finishes asynchronously
                time.sleep(0.1 * (attempt + 1))
        else:
            left.append(path)
    made.clear()
    return left


def run_find() -> tuple[float, int]:
    started = time.perf_counter()
    out = subprocess.run(["sh", "-c", FIND], capture_output=True, text=True, check=True)
    return time.perf_counter() - started, int(out.stdout.strip())


def run_walk(link_counts: bool | None = None) -> tuple[float, int]:
    started = time.perf_counter()
    count = count_memcg_dirs(MEMORY, link_counts=link_counts)
    return time.perf_counter() - started, count


ARMS = {"walk": run_walk, "walk-full": lambda: run_walk(link_counts=False), "find": run_find}


def hyperfine(runs: int, tmp_json: Path) -> dict[str, Any] | None:
    """Both as whole processes under hyperfine; None when hyperfine is missing."""
    if not shutil.which("hyperfine"):
        return None
    walk_cmd = (f"{sys.executable} -S -c 'import sys; sys.path.insert(0, \"{REPO}\"); "
                "from remediate.hostside.cgroupfs import count_memcg_dirs; "
                f"print(count_memcg_dirs(\"{MEMORY}\"))'")
    subprocess.run(["hyperfine", "--warmup", "3", "--runs", str(runs), "--style", "none",
                    "--export-json", str(tmp_json), "-n", "walk (python3 process)", walk_cmd,
                    "-n", "find | wc -l", FIND],
                   check=True, stdout=subprocess.DEVNULL)
    data = json.loads(tmp_json.read_text())
    out = {}
    for result in data["results"]:
        times = result["times"]
        out[result["command"]] = {"wall_s": summary(times), "mean_s": result["mean"],
                                  "user_s": result.get("user"), "system_s": result.get("system")}
    return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--count", type=int, default=20_000,
                        help="memory cgroups to create (default 20000)")
    parser.add_argument("--layout", choices=("nested", "flat"), default="nested")
    parser.add_argument("--runs", type=int, default=15, help="rounds of walk and find")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    if os.geteuid() != 0:
        raise SystemExit("needs root: it creates memory cgroups")
    if not os.path.isfile(f"{MEMORY}/memory.force_empty"):
        raise SystemExit(f"no v1 memory controller at {MEMORY}")
    if args.layout == "nested" and args.count % 100:
        raise SystemExit("--layout nested needs a multiple of 100 (parents of 99 children)")
    on_signals_exit()
    info = machine()
    print(f"machine: {info}", flush=True)
    prefix = f"{MEMORY}/memcg-fix-bench-{os.getpid()}"
    made: list[str] = []
    rows: dict[str, list[float]] = {arm: [] for arm in ARMS}
    counts: dict[str, list[int]] = {arm: [] for arm in ARMS}
    baseline = count_memcg_dirs(MEMORY)
    try:
        started = time.perf_counter()
        create(prefix, args.count, args.layout, made)
        created = len(made) - 1  # the prefix itself is not one of the COUNT
        print(f"created {created} memory cgroups ({args.layout}) under {prefix} in "
              f"{time.perf_counter() - started:.1f} s; {baseline} directories existed before",
              flush=True)
        for round_index in range(args.runs):
            for arm in rotated(list(ARMS), round_index):
                seconds, count = ARMS[arm]()
                rows[arm].append(seconds)
                counts[arm].append(count)
        process_level = hyperfine(max(args.runs, 10), Path(f"/tmp/memcg-fix-bench-{os.getpid()}"
                                                          ".hyperfine.json"))
    finally:
        started = time.perf_counter()
        left = remove(prefix, made)
        Path(f"/tmp/memcg-fix-bench-{os.getpid()}.hyperfine.json").unlink(missing_ok=True)
        print(f"removed our cgroups in {time.perf_counter() - started:.1f} s"
              + (f"; could NOT remove {len(left)}: {left[:3]}" if left else ""), flush=True)
        if os.path.exists(prefix):
            print(f"WARNING: {prefix} still exists", flush=True)
    ratios = summary(f / w for f, w in zip(rows["find"], rows["walk"], strict=True))
    result = {
        "count": args.count, "layout": args.layout, "runs": args.runs, "prefix": prefix,
        "directories_before": baseline,
        "walk_s": summary(rows["walk"]), "find_s": summary(rows["find"]),
        "walk_full_s": summary(rows["walk-full"]),
        "find_over_walk": ratios,
        "find_over_walk_full": summary(
            f / w for f, w in zip(rows["find"], rows["walk-full"], strict=True)),
        "counts": {arm: summary(values) for arm, values in counts.items()},
        "process_level": process_level,
    }
    print(f"{args.count} memcgs ({args.layout}), {args.runs} rounds ({load_note()}):")
    print(f"  walk (count_memcg_dirs, in process) {fmt(result['walk_s'], ' s', 4)}"
          f"  counted {fmt(result['counts']['walk'], '', 0)}")
    print(f"  walk, every directory listed        {fmt(result['walk_full_s'], ' s', 4)}"
          f"  counted {fmt(result['counts']['walk-full'], '', 0)}")
    print(f"  find -type d | wc -l                {fmt(result['find_s'], ' s', 4)}"
          f"  counted {fmt(result['counts']['find'], '', 0)}")
    print(f"  find / walk (paired per round):     {fmt(ratios, 'x')}")
    print(f"  find / walk, every directory listed: {fmt(result['find_over_walk_full'], 'x')}")
    if process_level:
        for name, data in process_level.items():
            print(f"  hyperfine {name:<26} {fmt(data['wall_s'], ' s', 4)}")
        names = list(process_level)
        walk_p, find_p = process_level[names[0]], process_level[names[1]]
        result["process_level_find_over_walk"] = (find_p["wall_s"]["median"]
                                                  / walk_p["wall_s"]["median"])
        print(f"  as whole processes, find / walk:    "
              f"{result['process_level_find_over_walk']:.2f}x (medians)")
    verdict = "met" if ratios["median"] >= 1.0 else "MISSED"
    print(f"GOAL (walk no slower than find): {verdict}")
    if args.out:
        write_json(args.out, {"machine": info, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
