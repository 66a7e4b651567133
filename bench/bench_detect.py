"""P1: fleet detection with ``memcg_facts`` against Ansible's own ``setup`` (gather_facts).

Two sets of hosts, each measured with the same inventory, forks and connection
for every arm:

* ``local``: N inventory aliases of this machine (default 50) with
  ``ansible_connection=local`` and ``/usr/bin/python3``;
* ``containers``: K podman containers (default 10, the Debian test image of
  tests/targets), reached over ssh as an unprivileged user with sudo, like a
  production host.

Arms, interleaved and rotated every round (so load hits all of them alike):

* ``ping``: one ``ansible.builtin.ping`` per host: the cheapest module run
  Ansible can make, i.e. its per-host floor;
* ``memcg_facts``: the shipped playbooks/gather.yml (what ``memcg-fix detect
  -i`` and ``plan -i`` run);
* ``setup``: a play with ``gather_facts: true`` and no tasks;
* ``detect``: the whole ``memcg-fix detect -i INV --format json`` command
  (inventory check, ansible-runner, parsing), for the record;
* ``raw`` (only with ``--raw``): a prototype of another detection path, not
  what memcg-fix runs: one ``ansible.builtin.raw`` per host that runs the
  same stdlib-only collector (remediate/hostside, zipped and shipped inline
  to ``python3 -c``), without a module's AnsiballZ wrapper.

Then, to see where a host's time goes, each arm's module is also timed on its
own (``module``): the AnsiballZ payload Ansible sent to one local host (kept
with ANSIBLE_KEEP_REMOTE_FILES) is run directly with /usr/bin/python3,
interleaved, so the module's cost is measured without the controller.

All Ansible arms run with ``become: true`` (memcg_facts needs root). Module
runs per host are counted from a callback (bench/callback_plugins) and, for
``detect``, from ansible-runner's job events; the script fails if any host
has other than exactly one.

    python bench/bench_detect.py                        # 50 local + 10 containers, 5 rounds
    python bench/bench_detect.py --containers 0 --runs 3
    python bench/bench_detect.py --out p1.json

The containers are started (tests.targets.target.start_containers) and
removed at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import base64
import io
import json
import sys
import tempfile
import zipfile
from pathlib import Path
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    REPO,
    ansible_env,
    fmt,
    load_note,
    machine,
    module_runs,
    on_signals_exit,
    read_task_records,
    rotated,
    short_action,
    summary,
    task_seconds,
    timed_run,
    write_json,
)

GOAL_RATIO = 5.0
ANSIBLE_ARMS = ("ping", "memcg_facts", "setup")
# the action each arm's one module run shows up as
EXPECTED_ACTION = {"ping": "ping", "memcg_facts": "memcg_facts", "setup": "gather_facts",
                   "detect": "memcg_facts", "raw": "raw"}


def beyond_ping(setup: list[float], mine: list[float], ping: list[float],
                per: float = 1.0) -> dict[str, Any]:
    """What each arm costs above Ansible's ping floor, paired per round (divided by ``per``).

    The ratio is of the medians of the paired differences: a ratio per round
    would divide by a small, noisy difference.
    """
    extra_setup = summary((s - p) / per for s, p in zip(setup, ping, strict=True))
    extra_mine = summary((m - p) / per for m, p in zip(mine, ping, strict=True))
    ratio = (extra_setup["median"] / extra_mine["median"]
             if extra_mine["median"] > 0 else float("inf"))
    return {"setup_extra": extra_setup, "memcg_facts_extra": extra_mine, "ratio": ratio}


def beyond_text(data: dict[str, Any], unit: str, digits: int = 3) -> str:
    return (f"setup +{fmt(data['setup_extra'], unit, digits)}, memcg_facts "
            f"+{fmt(data['memcg_facts_extra'], unit, digits)}: {data['ratio']:.2f}x")


def inline_collector() -> str:
    """A shell command running the host-side collector from an inline zip (``--raw``)."""
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED, compresslevel=9) as archive:
        for source in sorted((REPO / "remediate" / "hostside").glob("*.py")):
            archive.write(source, f"memcg_fix_host/{source.name}")
    payload = base64.b64encode(buffer.getvalue()).decode()
    code = ("import base64,json,os,sys,tempfile;"
            "f=tempfile.NamedTemporaryFile(suffix='.zip',delete=False);"
            f"f.write(base64.b64decode('{payload}'));f.close();sys.path.insert(0,f.name);"
            "from memcg_fix_host.collect import collect;"
            "from memcg_fix_host.reader import LiveReader;"
            "r=collect(LiveReader());os.unlink(f.name);print(json.dumps(r))")
    command = f'/usr/bin/python3 -c "{code}"'
    # an argument longer than MAX_ARG_STRLEN (128 KiB) cannot be exec'd
    assert len(command) < 120_000 and "{" not in command, "the inline collector is too big"
    return command


def write_playbooks(tmp: Path, with_raw: bool = False) -> dict[str, Path]:
    ping = [{"name": "Ansible's per-host floor: one ping", "hosts": "all",
             "gather_facts": False, "become": True,
             "tasks": [{"name": "Ping", "ansible.builtin.ping": None}]}]
    setup = [{"name": "Ansible's own facts", "hosts": "all", "gather_facts": True,
              "become": True, "tasks": []}]
    paths = {"ping": tmp / "ping.yml", "setup": tmp / "setup.yml",
             "memcg_facts": REPO / "playbooks" / "gather.yml"}
    paths["ping"].write_text(yaml.safe_dump(ping, sort_keys=False))
    paths["setup"].write_text(yaml.safe_dump(setup, sort_keys=False))
    if with_raw:
        raw = [{"name": "Prototype: the collector through one raw command", "hosts": "all",
                "gather_facts": False, "become": True,
                "tasks": [{"name": "Collect memcg facts inline",
                           "ansible.builtin.raw": inline_collector(), "changed_when": False}]}]
        paths["raw"] = tmp / "raw.yml"
        paths["raw"].write_text(yaml.safe_dump(raw, sort_keys=False, width=10**6))
    return paths


def check_raw_output(playbooks: dict[str, Path]) -> None:
    """The raw prototype's command prints a facts document here, as memcg_facts would."""
    command = yaml.safe_load(playbooks["raw"].read_text())[0]["tasks"][0]["ansible.builtin.raw"]
    run = timed_run(["/bin/sh", "-c", command])
    document = json.loads(run.stdout)
    if not isinstance(document.get("facts"), dict) or "memcg" not in document["facts"]:
        raise SystemExit(f"the inline collector returned no facts: {run.stdout[:500]}")


def local_inventory(path: Path, count: int) -> list[str]:
    names = [f"bench-local-{i:03d}" for i in range(count)]
    hosts = {name: {"ansible_connection": "local",
                    "ansible_python_interpreter": "/usr/bin/python3"} for name in names}
    path.write_text(yaml.safe_dump({"all": {"children": {"bench": {"hosts": hosts}}}}))
    return names


def detect_module_runs(out_dir: Path) -> dict[str, list[str]]:
    """Module runs per host from ansible-runner's job events of ``memcg-fix detect``."""
    runs: dict[str, list[str]] = {}
    for event_file in sorted(out_dir.glob("artifacts/*/job_events/*.json")):
        event = json.loads(event_file.read_text())
        data = event.get("event_data") or {}
        if event.get("event") != "runner_on_start" or not data.get("host"):
            continue
        records = [{"event": "start", "host": data["host"], "action": data.get("task_action")}]
        for host, actions in module_runs(records).items():
            runs.setdefault(host, []).extend(actions)
    return runs


def check_runs(arm: str, runs: dict[str, list[str]], hosts: list[str]) -> list[str]:
    """Problems with the module runs of one arm: each host exactly one, of the right module."""
    problems = []
    for host in hosts:
        actions = [short_action(a) for a in runs.get(host, [])]
        if actions != [EXPECTED_ACTION[arm]]:
            problems.append(f"{arm}: {host} ran {actions or 'no module'}")
    extra = sorted(set(runs) - set(hosts))
    if extra:
        problems.append(f"{arm}: unexpected hosts {extra}")
    return problems


def measure_set(name: str, inventory: Path, hosts: list[str], playbooks: dict[str, Path],
                runs: int, forks: int, tmp: Path, with_detect: bool) -> dict[str, Any]:
    arms = [*ANSIBLE_ARMS, *(["detect"] if with_detect else []),
            *(["raw"] if "raw" in playbooks else [])]
    raw: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    for round_index in range(runs):
        for arm in rotated(arms, round_index):
            records_path = tmp / f"{name}-{arm}-{round_index}.jsonl"
            env = ansible_env({"MEMCG_FIX_BENCH_TASKS": str(records_path)})
            if arm == "detect":
                out_dir = tmp / f"{name}-detect-{round_index}"
                argv = [sys.executable, "-m", "remediate", "detect", "-i", str(inventory),
                        "--forks", str(forks), "--format", "json", "--out", str(out_dir)]
            else:
                argv = [str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                        str(inventory), "--forks", str(forks), str(playbooks[arm])]
            result = timed_run(argv, env=env)
            if result.returncode != 0:
                raise SystemExit(f"{name}/{arm} exited {result.returncode}:\n"
                                 f"{(result.stdout + result.stderr)[-3000:]}")
            if arm == "detect":
                counted = detect_module_runs(out_dir)
                document = json.loads(result.stdout)
                errors = [h["host"] for h in document["hosts"] if h.get("error")]
                if errors or len(document["hosts"]) != len(hosts):
                    raise SystemExit(f"{name}/detect: hosts without facts: {errors}")
                seconds: list[float] = []
            else:
                records = read_task_records(records_path)
                counted = module_runs(records)
                seconds = task_seconds(records, EXPECTED_ACTION[arm])
            problems = check_runs(arm, counted, hosts)
            if problems:
                raise SystemExit("module runs per host are wrong: " + "; ".join(problems[:5]))
            raw[arm].append({"wall": result.wall, "cpu": result.cpu, "task_seconds": seconds,
                             "module_runs_per_host": sorted({len(v) for v in counted.values()})})
            print(f"  {name:<10} round {round_index + 1}/{runs} {arm:<11} "
                  f"{result.wall:6.2f} s wall {result.cpu:6.2f} s CPU  ({load_note()})",
                  flush=True)
    return analyse(name, len(hosts), raw, runs)


def analyse(name: str, hosts: int, raw: dict[str, list[dict[str, Any]]],
            runs: int) -> dict[str, Any]:
    def per_round(arm: str, key: str) -> list[float]:
        return [r[key] for r in raw[arm]]

    out: dict[str, Any] = {"set": name, "hosts": hosts, "runs": runs, "arms": {},
                           "rounds": {arm: [{"wall": r["wall"], "cpu": r["cpu"]} for r in rows]
                                      for arm, rows in raw.items()}}
    for arm, rows in raw.items():
        task = [s for r in rows for s in r["task_seconds"]]
        out["arms"][arm] = {
            "wall_s": summary(per_round(arm, "wall")),
            "wall_per_host_s": summary(w / hosts for w in per_round(arm, "wall")),
            "cpu_s": summary(per_round(arm, "cpu")),
            "cpu_per_host_s": summary(c / hosts for c in per_round(arm, "cpu")),
            "task_seconds_per_host": summary(task) if task else None,
            "module_runs_per_host": sorted({n for r in rows for n in r["module_runs_per_host"]}),
        }
    ping, mine, setup = (per_round(a, "wall") for a in ("ping", "memcg_facts", "setup"))
    ping_cpu, mine_cpu, setup_cpu = (per_round(a, "cpu") for a in ("ping", "memcg_facts", "setup"))
    out["ratios"] = {
        # paired per round: both arms ran back to back
        "wall": summary(s / m for s, m in zip(setup, mine, strict=True)),
        "cpu": summary(s / m for s, m in zip(setup_cpu, mine_cpu, strict=True)),
        "wall_beyond_ping": beyond_ping(setup, mine, ping, hosts),
        "cpu_beyond_ping": beyond_ping(setup_cpu, mine_cpu, ping_cpu, hosts),
        "memcg_facts_over_ping_wall": summary(
            m / p for m, p in zip(mine, ping, strict=True)),
    }
    task_setup = out["arms"]["setup"]["task_seconds_per_host"]
    task_mine = out["arms"]["memcg_facts"]["task_seconds_per_host"]
    if task_setup and task_mine:
        out["ratios"]["task_seconds_median"] = task_setup["median"] / task_mine["median"]
    if "raw" in raw:
        out["ratios"]["setup_over_raw_wall"] = summary(
            s / r for s, r in zip(setup, per_round("raw", "wall"), strict=True))
        out["ratios"]["setup_over_raw_cpu"] = summary(
            s / r for s, r in zip(setup_cpu, per_round("raw", "cpu"), strict=True))
    if "detect" in raw:
        out["ratios"]["setup_over_detect_wall"] = summary(
            s / d for s, d in zip(setup, per_round("detect", "wall"), strict=True))
    return out


def module_payloads(playbooks: dict[str, Path], tmp: Path) -> dict[str, Path]:
    """The AnsiballZ file each Ansible arm runs on a host, kept from one real run."""
    inventory = tmp / "one-local.yml"
    local_inventory(inventory, 1)
    payloads = {}
    for arm in ANSIBLE_ARMS:
        remote_tmp = tmp / f"remote-{arm}"
        env = ansible_env({"ANSIBLE_KEEP_REMOTE_FILES": "1",
                           "ANSIBLE_REMOTE_TMP": str(remote_tmp)})
        run = timed_run([str(Path(sys.executable).parent / "ansible-playbook"), "-i",
                         str(inventory), str(playbooks[arm])], env=env)
        if run.returncode != 0:
            raise SystemExit(f"{arm} on one local host failed: {run.stdout[-2000:]}")
        module = "setup" if arm == "setup" else arm
        found = sorted(remote_tmp.glob(f"*/AnsiballZ_{module}.py"))
        if not found:
            raise SystemExit(f"no AnsiballZ_{module}.py kept under {remote_tmp}")
        payloads[arm] = found[-1]
    return payloads


def measure_modules(payloads: dict[str, Path], runs: int) -> dict[str, Any]:
    """Each module process on its own, interleaved: wall and CPU per run."""
    raw: dict[str, list[tuple[float, float]]] = {arm: [] for arm in payloads}
    for round_index in range(runs):
        for arm in rotated(list(payloads), round_index):
            result = timed_run(["/usr/bin/python3", str(payloads[arm])])
            if result.returncode != 0 or '"failed": true' in result.stdout:
                raise SystemExit(f"module {arm} failed: {result.stdout[-1000:]}")
            raw[arm].append((result.wall, result.cpu))
    out: dict[str, Any] = {"runs": runs, "arms": {
        arm: {"wall_s": summary(w for w, _ in rows), "cpu_s": summary(c for _, c in rows)}
        for arm, rows in raw.items()}}
    ping, mine, setup = (raw[a] for a in ("ping", "memcg_facts", "setup"))
    out["ratios"] = {
        "wall": summary(s[0] / m[0] for s, m in zip(setup, mine, strict=True)),
        "wall_beyond_ping": beyond_ping([x[0] for x in setup], [x[0] for x in mine],
                                        [x[0] for x in ping]),
        "cpu_beyond_ping": beyond_ping([x[1] for x in setup], [x[1] for x in mine],
                                       [x[1] for x in ping]),
    }
    return out


def module_report(result: dict[str, Any]) -> str:
    lines = [f"module processes on their own (/usr/bin/python3 AnsiballZ_*.py), "
             f"{result['runs']} rounds:"]
    for arm, data in result["arms"].items():
        lines.append(f"  {arm:<11} wall {fmt(data['wall_s'], ' s', 3)}  "
                     f"CPU {fmt(data['cpu_s'], ' s', 3)}")
    ratios = result["ratios"]
    lines.append(f"  setup / memcg_facts: wall {fmt(ratios['wall'], 'x')}")
    lines.append(f"  beyond ping, wall: {beyond_text(ratios['wall_beyond_ping'], ' s')}")
    lines.append(f"  beyond ping, CPU:  {beyond_text(ratios['cpu_beyond_ping'], ' s')}")
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    hosts = result["hosts"]
    lines = [f"{result['set']}: {hosts} hosts, {result['runs']} rounds "
             "(median (min-max) over rounds)"]
    for arm, data in result["arms"].items():
        task = data["task_seconds_per_host"]
        lines.append(
            f"  {arm:<11} wall {fmt(data['wall_s'], ' s')}  per host "
            f"{fmt(data['wall_per_host_s'], ' s', 3)}  "
            f"CPU/host {fmt(data['cpu_per_host_s'], ' s', 3)}"
            + (f"  task on one host {fmt(task, ' s', 3)}" if task else "")
            + f"  module runs/host {data['module_runs_per_host']}")
    ratios = result["ratios"]
    # CPU is what this machine spent: on containers it leaves out the targets' side
    cpu_note = "" if result["set"] == "local" else " (controller only)"
    lines.append(f"  setup / memcg_facts per host: wall {fmt(ratios['wall'], 'x')}, "
                 f"CPU{cpu_note} {fmt(ratios['cpu'], 'x')}")
    lines.append("  beyond Ansible's ping floor, per host, wall: "
                 + beyond_text(ratios["wall_beyond_ping"], " s"))
    if not cpu_note:
        lines.append("  beyond Ansible's ping floor, per host, CPU:  "
                     + beyond_text(ratios["cpu_beyond_ping"], " s"))
    if "task_seconds_median" in ratios:
        lines.append(f"  one task on one host (median): {ratios['task_seconds_median']:.2f}x")
    lines.append(f"  memcg_facts / ping wall: {fmt(ratios['memcg_facts_over_ping_wall'], 'x')}")
    if "setup_over_raw_wall" in ratios:
        lines.append("  setup / raw-collector prototype: wall "
                     f"{fmt(ratios['setup_over_raw_wall'], 'x')}"
                     + ("" if cpu_note else f", CPU {fmt(ratios['setup_over_raw_cpu'], 'x')}"))
    if "setup_over_detect_wall" in ratios:
        lines.append("  setup / whole `memcg-fix detect -i` wall: "
                     f"{fmt(ratios['setup_over_detect_wall'], 'x')}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local-hosts", type=int, default=50)
    parser.add_argument("--containers", type=int, default=10)
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="rounds (each runs every arm once)")
    parser.add_argument("--no-detect", action="store_true",
                        help="leave out the whole-command `memcg-fix detect -i` arm")
    parser.add_argument("--raw", action="store_true",
                        help="add the raw-collector prototype arm (not what memcg-fix runs)")
    parser.add_argument("--module-runs", type=int, default=15,
                        help="rounds of the module-only measurement (0: leave it out)")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    on_signals_exit()
    results = []
    modules = None
    info = machine()
    print(f"machine: {info}", flush=True)
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-detect-") as tmp_name:
        tmp = Path(tmp_name)
        playbooks = write_playbooks(tmp, with_raw=args.raw)
        if args.raw:
            check_raw_output(playbooks)
        if args.module_runs:
            modules = measure_modules(module_payloads(playbooks, tmp), args.module_runs)
            print(module_report(modules), flush=True)
        if args.local_hosts:
            inventory = tmp / "local.yml"
            names = local_inventory(inventory, args.local_hosts)
            results.append(measure_set("local", inventory, names, playbooks, args.runs,
                                       args.forks, tmp, not args.no_detect))
            print(report(results[-1]), flush=True)
        if args.containers:
            from tests.targets.target import destroy_all, start_containers, write_inventory

            started = []
            try:
                started = start_containers(["debian"] * args.containers)
                inventory = write_inventory(started, tmp / "containers.yml", group="bench")
                results.append(measure_set("containers", inventory, [t.name for t in started],
                                           playbooks, args.runs, args.forks, tmp,
                                           not args.no_detect))
            finally:
                destroy_all(started)
            print(report(results[-1]), flush=True)
    missed = [r["set"] for r in results if r["ratios"]["wall"]["median"] < GOAL_RATIO]
    if missed:
        print(f"GOAL (>= {GOAL_RATIO:.0f}x per host, whole run) missed for: {', '.join(missed)}")
    if args.out:
        write_json(args.out, {"machine": info, "forks": args.forks, "results": results,
                              "modules": modules})
    return 0


if __name__ == "__main__":
    sys.exit(main())
