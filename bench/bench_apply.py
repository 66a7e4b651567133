"""P4: a no-op apply on already-compliant hosts, against a plain ``ansible -m ping``.

Starts K podman containers (default 8, the Debian test image of
tests/targets: a real Debian userland whose login runs a pam_lastlog line that
writes wtmp), then runs the real flow once to make them compliant:

    memcg-fix detect -i INV --format json > facts.json
    memcg-fix plan --facts facts.json --policy tests/data/policies/pam-site.yaml \
        --format json > plan.json                                  (pam-lastlog on every host)
    memcg-fix render --plan plan.json --out memcg-fix.yml
    memcg-fix apply -i INV --playbook memcg-fix.yml --policy ...  (changes PAM, verifies)

and then measures, side by side and rotating the order every round, with the
same inventory, forks and connection (ssh as an unprivileged user, sudo):

* ``apply``: the whole ``memcg-fix apply -i INV --playbook memcg-fix.yml``
  again (inventory check, fresh facts, re-plan and fingerprint check, the
  rollout in its default batches 1, 10%, 25%, verification, summary);
* ``playbook``: the same rendered playbook with plain ``ansible-playbook``
  (default batches), no re-plan;
* ``playbook-1-batch``: the same with every host in one batch
  (``-e memcg_fix_batches=['100%']``), the role's own cost per host;
* ``ping``: ``ansible all -m ping``.

For every no-op run it counts, per host, the tasks run (and skipped), the module
runs, the tasks that reported a change and the reboots (from a callback for the
plain runs, from ansible-runner's job events for ``apply``), and fails if
anything changed or rebooted. Containers are removed at the end, also on
error or Ctrl-C.

    python bench/bench_apply.py                      # 8 containers, 5 rounds
    python bench/bench_apply.py --containers 4 --runs 3 --out p4.json
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections import Counter
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    CONTROLLER_ACTIONS,
    ansible_env,
    fmt,
    load_note,
    machine,
    on_signals_exit,
    read_task_records,
    rotated,
    short_action,
    summary,
    timed_run,
    write_json,
)

ARMS = ("apply", "playbook", "playbook-1-batch", "ping")
MITIGATION = "pam-lastlog"
# pam-lastlog on every host whose pam_lastlog can write (the default policy plans it
# only where sshd's or login's stack writes inside the session, which Debian's does not)
POLICY = Path(__file__).resolve().parents[1] / "tests" / "data" / "policies" / "pam-site.yaml"


def memcg_fix(*args: str, env: dict[str, str]) -> Any:
    return timed_run([sys.executable, "-m", "remediate", *args], env=env)


def prepare(inventory: Path, hosts: list[str], tmp: Path, forks: int,
            env: dict[str, str]) -> tuple[Path, dict[str, Any]]:
    """Plan pam-lastlog for every host and apply it once; returns the playbook and timings."""
    facts = memcg_fix("detect", "-i", str(inventory), "--forks", str(forks), "--format", "json",
                      env=env)
    if facts.returncode != 0:
        raise SystemExit(f"detect failed: {facts.stderr[-2000:]}")
    (tmp / "facts.json").write_text(facts.stdout)
    plan = memcg_fix("plan", "--facts", str(tmp / "facts.json"), "--policy", str(POLICY),
                     "--format", "json", env=env)
    if plan.returncode != 2:
        raise SystemExit(f"plan exited {plan.returncode} (2 = planned expected): "
                         f"{plan.stderr[-2000:]}")
    (tmp / "plan.json").write_text(plan.stdout)
    planned = {h["host"]: [m["id"] for m in h["mitigations"]]
               for h in json.loads(plan.stdout)["hosts"]}
    missing = [h for h in hosts if MITIGATION not in planned.get(h, [])]
    if missing:
        raise SystemExit(f"the site policy did not plan {MITIGATION} for {missing}: {planned}")
    playbook = tmp / "memcg-fix.yml"
    render = memcg_fix("render", "--plan", str(tmp / "plan.json"), "--out", str(playbook),
                       env=env)
    if render.returncode != 0:
        raise SystemExit(f"render failed: {render.stderr[-2000:]}")
    first = memcg_fix("apply", "-i", str(inventory), "--playbook", str(playbook), "--forks",
                      str(forks), "--out", str(tmp / "apply-first"), "--format", "json",
                      "--policy", str(POLICY), "--quiet", env=env)
    if first.returncode != 0:
        raise SystemExit(f"the first apply failed ({first.returncode}): "
                         f"{(first.stdout + first.stderr)[-3000:]}")
    rows = json.loads(first.stdout)
    rows = rows.get("hosts", rows) if isinstance(rows, dict) else rows
    changed = sorted(r["host"] for r in rows if MITIGATION in (r.get("changed") or []))
    return playbook, {"mitigations": planned, "first_apply_s": first.wall,
                      "first_apply_changed_hosts": changed}


def counts_from_records(records: list[dict[str, Any]]) -> dict[str, dict[str, int]]:
    """Per host, from task results: tasks run and skipped, module runs, changes, reboots."""
    per_host: dict[str, Counter[str]] = {}
    for record in records:
        if record["event"] not in ("ok", "failed", "skipped"):
            continue
        host = per_host.setdefault(record["host"], Counter())
        action = short_action(record.get("action"))
        if record["event"] == "skipped":
            host["skipped"] += 1
            continue
        host["tasks"] += 1
        host["module_runs"] += int(action not in CONTROLLER_ACTIONS)
        host["reboot_tasks"] += int(action == "reboot")
        host["changed"] += int(bool(record.get("changed")))
        host["rebooted"] += int(bool(record.get("rebooted")))
        host["failed"] += int(record["event"] == "failed")
    return {h: dict(c) for h, c in per_host.items()}


def task_durations(records: list[dict[str, Any]]) -> dict[str, list[float]]:
    """Seconds from start to result of every task that ran, by task name (all hosts)."""
    started: dict[tuple[str, str], float] = {}
    out: dict[str, list[float]] = {}
    for record in records:
        key = (record["host"], str(record.get("task")))
        if record["event"] == "start":
            started[key] = record["time"]
        elif record["event"] in ("ok", "failed") and key in started:
            out.setdefault(key[1], []).append(record["time"] - started.pop(key))
        elif record["event"] == "skipped":
            started.pop(key, None)
    return out


def counts_from_runner(out_dir: Path) -> dict[str, dict[str, int]]:
    """The same counts from ansible-runner's job events of the rollout (ident ``apply``)."""
    records = []
    for event_file in sorted(out_dir.glob("artifacts/apply/job_events/*.json")):
        event = json.loads(event_file.read_text())
        data = event.get("event_data") or {}
        if not data.get("host"):
            continue
        kind = {"runner_on_ok": "ok", "runner_on_failed": "failed",
                "runner_on_skipped": "skipped"}.get(event.get("event", ""))
        if kind is None:
            continue
        res = data.get("res") or {}
        records.append({"event": kind, "host": data["host"], "action": data.get("task_action"),
                        "changed": bool(res.get("changed")), "rebooted": bool(res.get("rebooted"))})
    return counts_from_records(records)


def run_arm(arm: str, inventory: Path, playbook: Path, forks: int, tmp: Path,
            round_index: int) -> tuple[Any, dict[str, dict[str, int]], dict[str, list[float]]]:
    records_path = tmp / f"{arm}-{round_index}.jsonl"
    env = ansible_env({"MEMCG_FIX_BENCH_TASKS": str(records_path)})
    bin_dir = Path(sys.executable).parent
    if arm == "apply":
        out_dir = tmp / f"apply-{round_index}"
        result = memcg_fix("apply", "-i", str(inventory), "--playbook", str(playbook), "--forks",
                           str(forks), "--out", str(out_dir), "--format", "json", "--policy",
                           str(POLICY), "--quiet", env=env)
        return result, counts_from_runner(out_dir), {}
    if arm == "ping":
        argv = [str(bin_dir / "ansible"), "all", "-i", str(inventory), "--forks", str(forks),
                "-m", "ansible.builtin.ping"]
        env["ANSIBLE_LOAD_CALLBACK_PLUGINS"] = "1"  # ad hoc runs load callbacks only when asked
    else:
        argv = [str(bin_dir / "ansible-playbook"), "-i", str(inventory), "--forks", str(forks),
                str(playbook)]
        if arm == "playbook-1-batch":
            argv += ["-e", json.dumps({"memcg_fix_batches": ["100%"]})]
    result = timed_run(argv, env=env)
    records = read_task_records(records_path)
    return result, counts_from_records(records), task_durations(records)


def check(arm: str, counts: dict[str, dict[str, int]], hosts: list[str]) -> list[str]:
    problems = []
    for host in hosts:
        c = counts.get(host)
        if not c:
            problems.append(f"{arm}: {host} ran nothing")
            continue
        if c.get("changed") or c.get("rebooted") or c.get("reboot_tasks") or c.get("failed"):
            problems.append(f"{arm}: {host}: {c}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--containers", type=int, default=8)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="rounds (each runs every arm once)")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    on_signals_exit()
    info = machine()
    print(f"machine: {info}", flush=True)
    from tests.targets.target import destroy_all, start_containers, write_inventory

    raw: dict[str, list[dict[str, Any]]] = {arm: [] for arm in ARMS}
    started = []
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-apply-") as tmp_name:
        tmp = Path(tmp_name)
        try:
            started = start_containers(["debian"] * args.containers)
            hosts = sorted(t.name for t in started)
            inventory = write_inventory(started, tmp / "inventory.yml", group="bench")
            playbook, prep = prepare(inventory, hosts, tmp, args.forks, ansible_env())
            print(f"first apply (makes the change) {prep['first_apply_s']:.1f} s; changed "
                  f"{MITIGATION} on {len(prep['first_apply_changed_hosts'])}/{len(hosts)} hosts",
                  flush=True)
            for round_index in range(args.runs):
                for arm in rotated(ARMS, round_index):
                    result, counts, durations = run_arm(arm, inventory, playbook, args.forks,
                                                        tmp, round_index)
                    if result.returncode != 0:
                        raise SystemExit(f"{arm} exited {result.returncode}:\n"
                                         f"{(result.stdout + result.stderr)[-3000:]}")
                    problems = check(arm, counts, hosts)
                    if problems:
                        raise SystemExit("not a no-op: " + "; ".join(problems[:5]))
                    raw[arm].append({"wall": result.wall, "counts": counts,
                                     "durations": durations})
                    print(f"  round {round_index + 1}/{args.runs} {arm:<17} "
                          f"{result.wall:6.2f} s  ({load_note()})", flush=True)
        finally:
            destroy_all(started)
    n = len(hosts)
    out: dict[str, Any] = {"hosts": n, "forks": args.forks, "runs": args.runs, **prep,
                           "arms": {}}
    for arm, rows in raw.items():
        per_host = [c for r in rows for c in r["counts"].values()]
        out["arms"][arm] = {
            "wall_s": summary(r["wall"] for r in rows),
            "wall_per_host_s": summary(r["wall"] / n for r in rows),
            "tasks_per_host": sorted({c.get("tasks", 0) for c in per_host}),
            "skipped_per_host": sorted({c.get("skipped", 0) for c in per_host}),
            "module_runs_per_host": sorted({c.get("module_runs", 0) for c in per_host}),
            "changed": sum(c.get("changed", 0) for c in per_host),
            "reboots": sum(c.get("rebooted", 0) + c.get("reboot_tasks", 0) for c in per_host),
        }
    # where a no-op run spends its time: each task's seconds on one host (one batch)
    by_task: dict[str, list[float]] = {}
    for row in raw["playbook-1-batch"]:
        for task, seconds in row["durations"].items():
            by_task.setdefault(task, []).extend(seconds)
    out["task_seconds_one_batch"] = {
        task: summary(values) for task, values in
        sorted(by_task.items(), key=lambda item: -summary(item[1])["median"])}
    ping = [r["wall"] for r in raw["ping"]]
    out["over_ping"] = {
        arm: {"ratio": summary(r["wall"] / p for r, p in zip(raw[arm], ping, strict=True)),
              "extra_per_host_s": summary((r["wall"] - p) / n
                                          for r, p in zip(raw[arm], ping, strict=True))}
        for arm in ARMS if arm != "ping"
    }
    print(f"no-op apply on {n} compliant hosts, {args.runs} rounds, forks {args.forks} "
          "(median (min-max) over rounds):")
    for arm, data in out["arms"].items():
        line = (f"  {arm:<17} {fmt(data['wall_s'], ' s')}  per host "
                f"{fmt(data['wall_per_host_s'], ' s', 3)}  tasks/host {data['tasks_per_host']} "
                f"(+{data['skipped_per_host']} skipped)  "
                f"module runs/host {data['module_runs_per_host']}  changed {data['changed']}  "
                f"reboots {data['reboots']}")
        if arm in out["over_ping"]:
            over = out["over_ping"][arm]
            line += (f"  = {fmt(over['ratio'], 'x')} ping, "
                     f"+{fmt(over['extra_per_host_s'], ' s', 3)}/host")
        print(line)
    print("  slowest tasks of a no-op run on one host (one batch; median (min-max) s):")
    for task, stat in list(out["task_seconds_one_batch"].items())[:10]:
        print(f"    {fmt(stat, ' s')}  {task}")
    if args.out:
        write_json(args.out, {"machine": info, "result": out})
    return 0


if __name__ == "__main__":
    sys.exit(main())
