"""P1: fleet detection against Ansible's own ``setup`` and ``ping``, per host and at 1,000 hosts.

Two sets of hosts, each measured with the same inventory, forks and connection
for every arm:

* ``local``: N inventory aliases of this machine (default 50) with
  ``ansible_connection=local`` and ``/usr/bin/python3``;
* ``containers``: K podman containers (default 10, the Debian test image of
  tests/targets), reached over ssh as an unprivileged user with sudo, like a
  production host.

Arms, interleaved and rotated every round (so load hits all of them alike):

* ``ping``: one ``ansible.builtin.ping`` per host: the cheapest module run
  Ansible can make, i.e. its per-module floor;
* ``memcg_facts``: the shipped playbooks/gather.yml (``--via module``);
* ``memcg_facts_raw``: the shipped playbooks/gather-raw.yml (``--via raw``, the
  default): one shell command per host that runs the collector on the host's
  own Python;
* ``setup``: a play with ``gather_facts: true`` and no tasks;
* ``detect`` and ``detect_module``: the whole ``memcg-fix detect -i INV
  --format json`` command (inventory check, ansible-runner, schema check,
  the document), ``--via raw`` and ``--via module``.

Then, to see where a host's time goes, each arm's process on the host is
timed on its own (``processes``): the AnsiballZ payload Ansible sent to one
local host for ping, memcg_facts and setup (kept with
ANSIBLE_KEEP_REMOTE_FILES) run with /usr/bin/python3, and the one shell
command of memcg_facts_raw run with /bin/sh, interleaved.

The scale arm (``--scale-hosts``, default 1,000 local aliases at ``--scale-forks``
50) runs whole commands: ``memcg-fix detect -i`` via raw and via module
against ``ansible all -b -m setup``, with the wall and CPU time and the
memory of the controller: the peak RSS of its largest process and the peak
PSS of its whole process tree (sampled every second).

All Ansible arms run with become (memcg_facts needs root). Actions per host
are counted from a callback (bench/callback_plugins) and, for ``detect``,
from ansible-runner's job events; the script fails if any host has other
than exactly one.

CPU is this machine's: the command's and every process's it waited for
(the controller; on local hosts that includes the hosts' side). On the
containers, the targets' side is added: the CPU time of the run's hosts'
container cgroups (``<--cgroup-parent>/libpod-<container id>``: cgroup v1
``cpuacct.usage``, else v2 ``cpu.stat`` usage_usec; read only), the
difference around each timed run, summed over the hosts. Per arm: the
targets' CPU per host and the CPU per host of both sides (controller +
targets), for whole runs and for one more host, and setup / raw and ping /
raw on both sides' CPU. Where a container's cgroup cannot be read, those
figures are None and the report says so.

    python bench/bench_detect.py                        # 50 local + 10 containers, 5 rounds, scale
    python bench/bench_detect.py --containers 0 --runs 3 --scale-hosts 0
    python bench/bench_detect.py --out p1.json

``--baseline REF`` adds the same measurements of an earlier version, in
the same run: the repository at git ``REF`` (``git archive``) runs as
``memcg_facts_raw_before`` (its gather-raw.yml and collection) and
``detect_before`` (its ``memcg-fix detect -i``), interleaved with the
others, so that before and after are compared under the same load.

The raw path keeps the compiled collector on each host (its code cache, by
default /var/cache/memcg-fix): every arm runs once untimed first, so the
rounds measure a host that has run detection before; the process arm also
runs the raw command without the cache (``memcg_facts_raw_nocache``: what a
host's first run costs, less the cache write).

The containers are started (tests.targets.target.start_containers) and
removed at the end, also on error or Ctrl-C.
"""

from __future__ import annotations

import argparse
import importlib.util
import json
import os
import sys
import tempfile
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from types import ModuleType
from typing import Any

import yaml

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    BIN,
    REPO,
    ansible_env,
    cgroup_cpu_seconds,
    fmt,
    load_note,
    machine,
    measured_run,
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

GOAL_OVER_SETUP = 5.0
GOAL_OVER_PING = 1.5
PLAYBOOK_ARMS = ("ping", "memcg_facts", "memcg_facts_raw", "setup")
DETECT_ARMS = {"detect": "raw", "detect_module": "module"}
# the action each arm's one run per host shows up as
EXPECTED_ACTION = {"ping": "ping", "memcg_facts": "memcg_facts",
                   "memcg_facts_raw": "memcg_facts_raw", "setup": "gather_facts",
                   "detect": "memcg_facts_raw", "detect_module": "memcg_facts"}
# Each arm's whole run includes Ansible's start-up, which a run of 10 hosts
# does not amortise; these arms also run against one host, and the cost of
# one more host is (T(all) - T(one)) / (hosts - 1), paired per round.
SLOPE_ARMS = ("ping", "memcg_facts_raw", "setup")
# --baseline: the same arms of an earlier version
BEFORE = "_before"
EXPECTED_ACTION["memcg_facts_raw_before"] = "memcg_facts_raw"
EXPECTED_ACTION["detect_before"] = "memcg_facts_raw"
ONE_HOST = "@1"
COLLECTION = REPO / "playbooks" / "collections" / "ansible_collections" / "memcg_fix" / "remediate"


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


def raw_action(collection: Path = COLLECTION) -> ModuleType:
    """The memcg_facts_raw action plugin's module (it builds the one shell command)."""
    path = collection / "plugins" / "action" / "memcg_facts_raw.py"
    spec = importlib.util.spec_from_file_location(f"memcg_facts_raw_action_{id(path)}", path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


# Where an earlier version (--baseline) keeps its compiled code on the hosts:
# each version removes the other entries of its Python from its cache
# directory, so sharing the default one would make both compile on every run.
BASELINE_CODE_CACHE = "/var/cache/memcg-fix-bench-before"


def raw_command(collection: Path = COLLECTION, cache: bool | str = True) -> tuple[str, str]:
    """The shell command memcg_facts_raw sends to a host whose Python is
    /usr/bin/python3, and its stdin (with the default code cache, or the
    directory ``cache`` names, where the version has one; none if False)."""
    action = raw_action(collection)
    if action._SHIPPED is None:
        raise SystemExit(action._LOAD_ERROR)
    payload, bootstrap = action._SHIPPED
    default_cache = getattr(action, "DEFAULT_CODE_CACHE", None)
    directory = cache if isinstance(cache, str) else default_cache
    options = {"cache": directory} if cache and default_cache else {}
    command, in_data = action.remote_command(["/usr/bin/python3"], [], payload, bootstrap, "/",
                                             **options)
    return command, in_data.decode("ascii")


def extract_baseline(ref: str, tmp: Path) -> Path:
    """The repository at git ``ref``, as files under ``tmp`` (git archive)."""
    import subprocess

    target = tmp / "baseline"
    target.mkdir()
    archive = subprocess.run(["git", "-C", str(REPO), "archive", ref], capture_output=True,
                             check=False)
    if archive.returncode != 0:
        raise SystemExit(f"git archive {ref}: {archive.stderr.decode(errors='replace')}")
    subprocess.run(["tar", "-x", "-C", str(target)], input=archive.stdout, check=True)
    # its raw path keeps its compiled code apart from this version's
    action = target / COLLECTION.relative_to(REPO) / "plugins" / "action" / "memcg_facts_raw.py"
    playbook = target / "playbooks" / "gather-raw.yml"
    if action.exists() and "code_cache" in action.read_text(encoding="utf-8"):
        plays = yaml.safe_load(playbook.read_text(encoding="utf-8"))
        for task in plays[0]["tasks"]:
            if "memcg_fix.remediate.memcg_facts_raw" in task:
                task["memcg_fix.remediate.memcg_facts_raw"] = {"code_cache": BASELINE_CODE_CACHE}
        playbook.write_text(yaml.safe_dump(plays, sort_keys=False), encoding="utf-8")
    return target


def write_playbooks(tmp: Path, baseline: Path | None = None) -> dict[str, Path]:
    ping = [{"name": "Ansible's per-module floor: one ping", "hosts": "all",
             "gather_facts": False, "become": True,
             "tasks": [{"name": "Ping", "ansible.builtin.ping": None}]}]
    setup = [{"name": "Ansible's own facts", "hosts": "all", "gather_facts": True,
              "become": True, "tasks": []}]
    paths = {"ping": tmp / "ping.yml", "setup": tmp / "setup.yml",
             "memcg_facts": REPO / "playbooks" / "gather.yml",
             "memcg_facts_raw": REPO / "playbooks" / "gather-raw.yml"}
    paths["ping"].write_text(yaml.safe_dump(ping, sort_keys=False))
    paths["setup"].write_text(yaml.safe_dump(setup, sort_keys=False))
    if baseline is not None:
        paths["memcg_facts_raw_before"] = baseline / "playbooks" / "gather-raw.yml"
    return paths


def local_inventory(path: Path, count: int, prefix: str = "bench-local") -> list[str]:
    names = [f"{prefix}-{i:04d}" for i in range(count)]
    hosts = {name: {"ansible_connection": "local",
                    "ansible_python_interpreter": "/usr/bin/python3"} for name in names}
    path.write_text(yaml.safe_dump({"all": {"children": {"bench": {"hosts": hosts}}}}))
    return names


def detect_module_runs(out_dir: Path) -> dict[str, list[str]]:
    """Actions per host from ansible-runner's job events of ``memcg-fix detect``."""
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
    """Problems with the actions of one arm: each host exactly one, the right one."""
    problems = []
    for host in hosts:
        actions = [short_action(a) for a in runs.get(host, [])]
        if actions != [EXPECTED_ACTION[arm]]:
            problems.append(f"{arm}: {host} ran {actions or 'nothing'}")
    extra = sorted(set(runs) - set(hosts))
    if extra:
        problems.append(f"{arm}: unexpected hosts {extra}")
    return problems


def detect_argv(inventory: Path, forks: int, via: str, out_dir: Path) -> list[str]:
    return [sys.executable, "-m", "remediate", "detect", "-i", str(inventory), "--forks",
            str(forks), "--via", via, "--format", "json", "--out", str(out_dir)]


def check_document(name: str, text: str, hosts: list[str]) -> None:
    document = json.loads(text)
    errors = [h["host"] for h in document["hosts"] if h.get("error")]
    if errors or len(document["hosts"]) != len(hosts):
        raise SystemExit(f"{name}: {len(document['hosts'])} hosts, without facts: "
                         f"{errors[:5]}")


@dataclass
class TargetCpu:
    """The targets' side of a containers run: the CPU time of the podman
    containers' cgroups (``PARENT/libpod-ID``), read before and after each
    timed run. Read only."""

    parent: str  # the containers' --cgroup-parent
    container_ids: dict[str, str]  # inventory host -> full container id
    sources: set[str] = field(default_factory=set)
    unreadable: set[str] = field(default_factory=set)

    def seconds(self, hosts: Sequence[str]) -> float | None:
        """The CPU time the containers of ``hosts`` have used so far, summed;
        None if any one of them cannot be read."""
        total = 0.0
        for host in hosts:
            read = cgroup_cpu_seconds(f"{self.parent}/libpod-{self.container_ids[host]}")
            if read is None:
                self.unreadable.add(host)
                return None
            total += read[0]
            self.sources.add(read[1])
        return total

    def record(self) -> dict[str, Any]:
        return {"sources": sorted(self.sources), "unreadable_hosts": sorted(self.unreadable)}


def measure_set(name: str, inventory: Path, hosts: list[str], playbooks: dict[str, Path],
                runs: int, forks: int, tmp: Path, with_detect: bool,
                baseline: Path | None = None,
                target_cpu: TargetCpu | None = None) -> dict[str, Any]:
    """Every arm on the set's hosts, ``runs`` rounds; with ``target_cpu``
    (containers) also the CPU time the arm's hosts spent on each run."""
    before = ("memcg_facts_raw_before", *(("detect_before",) if with_detect else ()),
              f"memcg_facts_raw_before{ONE_HOST}") if baseline is not None else ()
    arms = [*PLAYBOOK_ARMS, *(DETECT_ARMS if with_detect else ()),
            *(f"{arm}{ONE_HOST}" for arm in SLOPE_ARMS), *before]
    raw: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    warm_up(inventory, playbooks["ping"], forks)
    # untimed: every raw arm's hosts keep their compiled collector from here on
    for raw_arm in ("memcg_facts_raw", *(("memcg_facts_raw_before",) if before else ())):
        timed_run([str(BIN / "ansible-playbook"), "-i", str(inventory), "--forks", str(forks),
                   str(playbooks[raw_arm])], env=arm_env(raw_arm, {}, baseline))
    for round_index in range(runs):
        for arm in rotated(arms, round_index):
            records_path = tmp / f"{name}-{arm}-{round_index}.jsonl"
            env = arm_env(arm, {"MEMCG_FIX_BENCH_TASKS": str(records_path)}, baseline)
            arm_hosts = hosts[:1] if arm.endswith(ONE_HOST) else hosts
            cwd = None
            if arm in DETECT_ARMS or arm == "detect_before":
                out_dir = tmp / f"{name}-{arm}-{round_index}"
                argv = detect_argv(inventory, forks, DETECT_ARMS.get(arm, "raw"), out_dir)
                cwd = baseline if arm == "detect_before" else REPO
            else:
                argv = [str(BIN / "ansible-playbook"), "-i", str(inventory), "--forks",
                        str(forks), "--limit", ",".join(arm_hosts),
                        str(playbooks[arm.removesuffix(ONE_HOST)])]
            target_before = target_cpu.seconds(arm_hosts) if target_cpu else None
            result = timed_run(argv, env=env, cwd=cwd)
            target_after = target_cpu.seconds(arm_hosts) if target_cpu else None
            if result.returncode != 0:
                raise SystemExit(f"{name}/{arm} exited {result.returncode}:\n"
                                 f"{(result.stdout + result.stderr)[-3000:]}")
            if arm in DETECT_ARMS or arm == "detect_before":
                counted = detect_module_runs(out_dir)
                check_document(f"{name}/{arm}", result.stdout, hosts)
                seconds: list[float] = []
            else:
                records = read_task_records(records_path)
                counted = module_runs(records)
                seconds = task_seconds(records, EXPECTED_ACTION[arm.removesuffix(ONE_HOST)])
            problems = check_runs(arm.removesuffix(ONE_HOST), counted, arm_hosts)
            if problems:
                raise SystemExit("actions per host are wrong: " + "; ".join(problems[:5]))
            row: dict[str, Any] = {
                "wall": result.wall, "cpu": result.cpu, "task_seconds": seconds,
                "module_runs_per_host": sorted({len(v) for v in counted.values()})}
            targets_note = ""
            if target_cpu is not None:
                row["target_cpu"] = (target_after - target_before
                                     if target_before is not None and target_after is not None
                                     else None)
                targets_note = (" targets unreadable" if row["target_cpu"] is None
                                else f" {row['target_cpu']:6.2f} s targets' CPU")
            raw[arm].append(row)
            print(f"  {name:<10} round {round_index + 1}/{runs} {arm:<15} "
                  f"{result.wall:6.2f} s wall {result.cpu:6.2f} s CPU{targets_note}  "
                  f"({load_note()})", flush=True)
    out = analyse(name, len(hosts), raw, runs)
    if target_cpu is not None:
        out["target_cpu"] = target_cpu.record()
    return out


def arm_env(arm: str, extra: dict[str, str], baseline: Path | None) -> dict[str, str]:
    """The arm's environment: an earlier version's arms find its collection."""
    if baseline is not None and BEFORE in arm:
        extra = {**extra, "ANSIBLE_COLLECTIONS_PATH": str(baseline / "playbooks" / "collections")}
    return ansible_env(extra)


def warm_up(inventory: Path, ping: Path, forks: int, attempts: int = 5) -> None:
    """One untimed ping with become of every host, until all answer: the first
    sudo in a freshly booted container waits for its systemd-logind, which
    under a heavy load took longer than Ansible's 60 s become timeout."""
    for _attempt in range(attempts):
        run = timed_run([str(BIN / "ansible-playbook"), "-i", str(inventory), "--forks",
                         str(forks), str(ping)], env=ansible_env())
        if run.returncode == 0:
            return
        time.sleep(10)
    raise SystemExit(f"the hosts did not all answer a ping:\n{run.stdout[-2000:]}")


def _paired(a: list[float], b: list[float]) -> dict[str, float]:
    """a / b per round (both ran back to back), summarised."""
    return summary(x / y for x, y in zip(a, b, strict=True))


def analyse(name: str, hosts: int, raw: dict[str, list[dict[str, Any]]],
            runs: int) -> dict[str, Any]:
    def per_round(arm: str, key: str) -> list[float]:
        return [r[key] for r in raw[arm]]

    out: dict[str, Any] = {"set": name, "hosts": hosts, "runs": runs, "arms": {},
                           "rounds": {arm: [{"wall": r["wall"], "cpu": r["cpu"]} for r in rows]
                                      for arm, rows in raw.items()}}
    for arm, rows in raw.items():
        task = [s for r in rows for s in r["task_seconds"]]
        count = 1 if arm.endswith(ONE_HOST) else hosts
        out["arms"][arm] = {
            "wall_s": summary(per_round(arm, "wall")),
            "wall_per_host_s": summary(w / count for w in per_round(arm, "wall")),
            "cpu_s": summary(per_round(arm, "cpu")),
            "cpu_per_host_s": summary(c / count for c in per_round(arm, "cpu")),
            "task_seconds_per_host": summary(task) if task else None,
            "module_runs_per_host": sorted({n for r in rows for n in r["module_runs_per_host"]}),
        }
    wall = {arm: per_round(arm, "wall") for arm in raw}
    cpu = {arm: per_round(arm, "cpu") for arm in raw}
    ratios: dict[str, Any] = {
        # the goal: setup / the raw path, and ping / the raw path, whole runs
        "setup_over_raw_wall": _paired(wall["setup"], wall["memcg_facts_raw"]),
        "setup_over_raw_cpu": _paired(cpu["setup"], cpu["memcg_facts_raw"]),
        "ping_over_raw_wall": _paired(wall["ping"], wall["memcg_facts_raw"]),
        "ping_over_raw_cpu": _paired(cpu["ping"], cpu["memcg_facts_raw"]),
        "module_over_raw_wall": _paired(wall["memcg_facts"], wall["memcg_facts_raw"]),
        # the module path, as measured before
        "setup_over_module_wall": _paired(wall["setup"], wall["memcg_facts"]),
        "setup_over_module_cpu": _paired(cpu["setup"], cpu["memcg_facts"]),
        "module_over_ping_wall": _paired(wall["memcg_facts"], wall["ping"]),
        "module_wall_beyond_ping": beyond_ping(wall["setup"], wall["memcg_facts"], wall["ping"],
                                               hosts),
    }
    def marginal(arm: str, key: str) -> list[float]:
        full, one = per_round(arm, key), per_round(f"{arm}{ONE_HOST}", key)
        return [(f - o) / (hosts - 1) for f, o in zip(full, one, strict=True)]

    if hosts > 1:
        for key in ("wall", "cpu"):
            for arm in SLOPE_ARMS:
                out["arms"][arm][f"one_more_host_{key}_s"] = summary(marginal(arm, key))
            ratios[f"one_more_host_setup_over_raw_{key}"] = _paired(
                marginal("setup", key), marginal("memcg_facts_raw", key))
            ratios[f"one_more_host_ping_over_raw_{key}"] = _paired(
                marginal("ping", key), marginal("memcg_facts_raw", key))
    if "memcg_facts_raw_before" in raw:
        ratios["setup_over_raw_before_wall"] = _paired(wall["setup"],
                                                       wall["memcg_facts_raw_before"])
        ratios["setup_over_raw_before_cpu"] = _paired(cpu["setup"],
                                                      cpu["memcg_facts_raw_before"])
        ratios["raw_before_over_raw_wall"] = _paired(wall["memcg_facts_raw_before"],
                                                     wall["memcg_facts_raw"])
        ratios["raw_before_over_raw_cpu"] = _paired(cpu["memcg_facts_raw_before"],
                                                    cpu["memcg_facts_raw"])
        if hosts > 1:
            for key in ("wall", "cpu"):
                before = marginal("memcg_facts_raw_before", key)
                out["arms"]["memcg_facts_raw_before"][f"one_more_host_{key}_s"] = summary(before)
                ratios[f"one_more_host_setup_over_raw_before_{key}"] = _paired(
                    marginal("setup", key), before)
    if "detect_before" in raw:
        ratios["setup_over_detect_before_wall"] = _paired(wall["setup"], wall["detect_before"])
        ratios["detect_before_over_detect_wall"] = _paired(wall["detect_before"],
                                                           wall["detect"])
    for arm in DETECT_ARMS:
        if arm in raw:
            ratios[f"setup_over_{arm}_wall"] = _paired(wall["setup"], wall[arm])
            ratios[f"setup_over_{arm}_cpu"] = _paired(cpu["setup"], cpu[arm])
            ratios[f"ping_over_{arm}_wall"] = _paired(wall["ping"], wall[arm])
    out["ratios"] = ratios
    if all("target_cpu" in r for rows in raw.values() for r in rows):
        analyse_targets(out, raw, hosts)
    return out


def _readable(values: list[float | None]) -> list[float] | None:
    """The series, or None if a round's cgroups could not be read."""
    known = [v for v in values if v is not None]
    return known if len(known) == len(values) else None


def analyse_targets(out: dict[str, Any], raw: dict[str, list[dict[str, Any]]],
                    hosts: int) -> None:
    """The targets' side (containers) added to ``out``: per arm the targets'
    CPU per host and both sides' (controller + targets), for whole runs and
    for one more host (the same pairing as wall and CPU), and setup / raw and
    ping / raw on both sides' CPU. None where a container's cgroup could not
    be read."""
    target = {arm: _readable([r["target_cpu"] for r in rows]) for arm, rows in raw.items()}
    both: dict[str, list[float] | None] = {}
    for arm, rows in raw.items():
        spent = target[arm]
        both[arm] = (None if spent is None else
                     [r["cpu"] + t for r, t in zip(rows, spent, strict=True)])

    def per_host(series: list[float] | None, count: int) -> dict[str, float] | None:
        return None if series is None else summary(x / count for x in series)

    def ratio(series: dict[str, list[float] | None], a: str, b: str) -> dict[str, float] | None:
        first, second = series[a], series[b]
        return None if first is None or second is None else _paired(first, second)

    for arm, rows in raw.items():
        count = 1 if arm.endswith(ONE_HOST) else hosts
        out["arms"][arm]["target_cpu_s"] = per_host(target[arm], 1)
        out["arms"][arm]["target_cpu_per_host_s"] = per_host(target[arm], count)
        out["arms"][arm]["both_cpu_per_host_s"] = per_host(both[arm], count)
        for record, row in zip(out["rounds"][arm], rows, strict=True):
            record["target_cpu"] = row["target_cpu"]
    ratios = out["ratios"]
    ratios["setup_over_raw_both_cpu"] = ratio(both, "setup", "memcg_facts_raw")
    ratios["ping_over_raw_both_cpu"] = ratio(both, "ping", "memcg_facts_raw")
    if hosts < 2:
        return
    slope_arms = [arm for arm in (*SLOPE_ARMS, "memcg_facts_raw_before")
                  if f"{arm}{ONE_HOST}" in raw]
    one_more: dict[str, dict[str, list[float] | None]] = {}
    for name, series in (("target", target), ("both", both)):
        one_more[name] = {}
        for arm in slope_arms:
            full, one = series[arm], series[f"{arm}{ONE_HOST}"]
            one_more[name][arm] = (None if full is None or one is None else
                                   [(f - o) / (hosts - 1) for f, o in zip(full, one, strict=True)])
            out["arms"][arm][f"one_more_host_{name}_cpu_s"] = per_host(one_more[name][arm], 1)
    ratios["one_more_host_setup_over_raw_both_cpu"] = ratio(one_more["both"], "setup",
                                                            "memcg_facts_raw")
    ratios["one_more_host_ping_over_raw_both_cpu"] = ratio(one_more["both"], "ping",
                                                           "memcg_facts_raw")


def module_payloads(playbooks: dict[str, Path], tmp: Path, baseline: Path | None = None
                    ) -> dict[str, tuple[list[str], str]]:
    """The command each arm runs on a host: AnsiballZ files kept from one real
    run (ping, memcg_facts, setup) and memcg_facts_raw's shell command."""
    inventory = tmp / "one-local.yml"
    local_inventory(inventory, 1)
    commands = {}
    for arm in ("ping", "memcg_facts", "setup"):
        remote_tmp = tmp / f"remote-{arm}"
        env = ansible_env({"ANSIBLE_KEEP_REMOTE_FILES": "1", "ANSIBLE_PIPELINING": "0",
                           "ANSIBLE_REMOTE_TMP": str(remote_tmp)})
        run = timed_run([str(BIN / "ansible-playbook"), "-i", str(inventory),
                         str(playbooks[arm])], env=env)
        if run.returncode != 0:
            raise SystemExit(f"{arm} on one local host failed: {run.stdout[-2000:]}")
        found = sorted(remote_tmp.glob(f"*/AnsiballZ_{arm}.py"))
        if not found:
            raise SystemExit(f"no AnsiballZ_{arm}.py kept under {remote_tmp}")
        commands[arm] = (["/usr/bin/python3", str(found[-1])], "")
    command, stdin = raw_command()
    commands["memcg_facts_raw"] = (["/bin/sh", "-c", command], stdin)
    timed_run(["/bin/sh", "-c", command], stdin=stdin)  # untimed: the code cache is kept
    command, stdin = raw_command(cache=False)
    commands["memcg_facts_raw_nocache"] = (["/bin/sh", "-c", command], stdin)
    if baseline is not None:
        command, stdin = raw_command(baseline / COLLECTION.relative_to(REPO),
                                     cache=BASELINE_CODE_CACHE)
        commands["memcg_facts_raw_before"] = (["/bin/sh", "-c", command], stdin)
        timed_run(["/bin/sh", "-c", command], stdin=stdin)  # untimed: its code cache is kept
    return commands


def measure_processes(commands: dict[str, tuple[list[str], str]], runs: int
                      ) -> dict[str, Any]:
    """Each arm's process on the host on its own, interleaved: wall and CPU per run."""
    raw: dict[str, list[tuple[float, float]]] = {arm: [] for arm in commands}
    for round_index in range(runs):
        for arm in rotated(list(commands), round_index):
            argv, stdin = commands[arm]
            result = timed_run(argv, stdin=stdin)
            if result.returncode != 0 or '"failed": true' in result.stdout:
                raise SystemExit(f"{arm} failed: {(result.stdout + result.stderr)[-1000:]}")
            raw[arm].append((result.wall, result.cpu))
    out: dict[str, Any] = {"runs": runs, "arms": {
        arm: {"wall_s": summary(w for w, _ in rows), "cpu_s": summary(c for _, c in rows)}
        for arm, rows in raw.items()}}
    cpu = {arm: [c for _, c in rows] for arm, rows in raw.items()}
    out["ratios"] = {
        "setup_over_raw_cpu": _paired(cpu["setup"], cpu["memcg_facts_raw"]),
        "ping_over_raw_cpu": _paired(cpu["ping"], cpu["memcg_facts_raw"]),
        "module_over_raw_cpu": _paired(cpu["memcg_facts"], cpu["memcg_facts_raw"]),
        "setup_over_raw_nocache_cpu": _paired(cpu["setup"], cpu["memcg_facts_raw_nocache"]),
    }
    if "memcg_facts_raw_before" in cpu:
        out["ratios"]["setup_over_raw_before_cpu"] = _paired(cpu["setup"],
                                                             cpu["memcg_facts_raw_before"])
        out["ratios"]["raw_before_over_raw_cpu"] = _paired(cpu["memcg_facts_raw_before"],
                                                           cpu["memcg_facts_raw"])
    return out


def processes_report(result: dict[str, Any]) -> str:
    lines = [f"each arm's process on the host on its own, {result['runs']} rounds:"]
    for arm, data in result["arms"].items():
        lines.append(f"  {arm:<15} wall {fmt(data['wall_s'], ' s', 3)}  "
                     f"CPU {fmt(data['cpu_s'], ' s', 3)}")
    ratios = result["ratios"]
    lines.append(f"  CPU: setup / raw {fmt(ratios['setup_over_raw_cpu'], 'x')}, ping / raw "
                 f"{fmt(ratios['ping_over_raw_cpu'], 'x')}, memcg_facts / raw "
                 f"{fmt(ratios['module_over_raw_cpu'], 'x')}")
    for key, value in ratios.items():
        if "nocache" in key or "before" in key:
            lines.append(f"  {key}: {fmt(value, 'x')}")
    return "\n".join(lines)


def report(result: dict[str, Any]) -> str:
    hosts = result["hosts"]
    lines = [f"{result['set']}: {hosts} hosts, {result['runs']} rounds "
             "(median (min-max) over rounds)"]
    for arm, data in result["arms"].items():
        task = data["task_seconds_per_host"]
        lines.append(
            f"  {arm:<15} wall {fmt(data['wall_s'], ' s')}  per host "
            f"{fmt(data['wall_per_host_s'], ' s', 3)}  "
            f"CPU/host {fmt(data['cpu_per_host_s'], ' s', 3)}"
            + (f"  task on one host {fmt(task, ' s', 3)}" if task else "")
            + f"  actions/host {data['module_runs_per_host']}")
    ratios = result["ratios"]
    # CPU is what this machine spent: on containers it leaves out the targets' side
    cpu_note = "" if result["set"] == "local" else " (controller only)"
    lines.append(f"  setup / memcg_facts_raw: wall {fmt(ratios['setup_over_raw_wall'], 'x')}, "
                 f"CPU{cpu_note} {fmt(ratios['setup_over_raw_cpu'], 'x')}")
    lines.append(f"  ping / memcg_facts_raw:  wall {fmt(ratios['ping_over_raw_wall'], 'x')}, "
                 f"CPU{cpu_note} {fmt(ratios['ping_over_raw_cpu'], 'x')}")
    if "one_more_host_setup_over_raw_wall" in ratios:
        for arm in SLOPE_ARMS:
            data = result["arms"][arm]
            lines.append(f"  one more host, {arm:<15} wall "
                         f"{fmt(data['one_more_host_wall_s'], ' s', 3)}  CPU "
                         f"{fmt(data['one_more_host_cpu_s'], ' s', 3)}")
        lines.append("  one more host: setup / raw wall "
                     f"{fmt(ratios['one_more_host_setup_over_raw_wall'], 'x')}, CPU{cpu_note} "
                     f"{fmt(ratios['one_more_host_setup_over_raw_cpu'], 'x')}; ping / raw wall "
                     f"{fmt(ratios['one_more_host_ping_over_raw_wall'], 'x')}, CPU{cpu_note} "
                     f"{fmt(ratios['one_more_host_ping_over_raw_cpu'], 'x')}")
    lines.append(f"  memcg_facts / memcg_facts_raw: wall "
                 f"{fmt(ratios['module_over_raw_wall'], 'x')}")
    lines.append(f"  setup / memcg_facts: wall {fmt(ratios['setup_over_module_wall'], 'x')}, "
                 f"CPU{cpu_note} {fmt(ratios['setup_over_module_cpu'], 'x')}; memcg_facts / "
                 f"ping wall {fmt(ratios['module_over_ping_wall'], 'x')}")
    for key, value in ratios.items():
        if "before" in key:
            lines.append(f"  {key}: {fmt(value, 'x')}")
    if "memcg_facts_raw_before" in result["arms"] and "one_more_host_wall_s" in \
            result["arms"]["memcg_facts_raw_before"]:
        data = result["arms"]["memcg_facts_raw_before"]
        lines.append(f"  one more host, memcg_facts_raw_before wall "
                     f"{fmt(data['one_more_host_wall_s'], ' s', 3)}  CPU "
                     f"{fmt(data['one_more_host_cpu_s'], ' s', 3)}")
    for arm in DETECT_ARMS:
        if f"setup_over_{arm}_wall" in ratios:
            lines.append(f"  setup / whole `memcg-fix detect -i --via {DETECT_ARMS[arm]}`: wall "
                         f"{fmt(ratios[f'setup_over_{arm}_wall'], 'x')}, CPU{cpu_note} "
                         f"{fmt(ratios[f'setup_over_{arm}_cpu'], 'x')}; ping / it: wall "
                         f"{fmt(ratios[f'ping_over_{arm}_wall'], 'x')}")
    if "target_cpu" in result:
        lines.extend(targets_report(result))
    return "\n".join(lines)


def _fmt_or_unreadable(stat: dict[str, float] | None, unit: str, digits: int = 3) -> str:
    return "unreadable" if stat is None else fmt(stat, unit, digits)


def targets_report(result: dict[str, Any]) -> list[str]:
    """The lines of the targets' side (containers): their CPU and both sides'."""
    record = result["target_cpu"]
    lines = [f"  the targets' CPU (their cgroups: {', '.join(record['sources']) or 'none'}):"]
    if record["unreadable_hosts"]:
        lines.append("    unreadable (no cpuacct.usage nor cpu.stat usage_usec) for "
                     f"{', '.join(record['unreadable_hosts'][:5])}: those figures are None")
    for arm, data in result["arms"].items():
        lines.append(f"    {arm:<15} target CPU/host "
                     f"{_fmt_or_unreadable(data['target_cpu_per_host_s'], ' s')}  "
                     f"CPU/host, both sides "
                     f"{_fmt_or_unreadable(data['both_cpu_per_host_s'], ' s')}")
    for arm, data in result["arms"].items():
        if "one_more_host_both_cpu_s" in data:
            lines.append(f"    one more host, {arm:<15} target CPU "
                         f"{_fmt_or_unreadable(data['one_more_host_target_cpu_s'], ' s')}  "
                         f"both sides {_fmt_or_unreadable(data['one_more_host_both_cpu_s'], ' s')}")
    ratios = result["ratios"]
    line = (f"    CPU, both sides: setup / raw "
            f"{_fmt_or_unreadable(ratios['setup_over_raw_both_cpu'], 'x', 2)}, ping / raw "
            f"{_fmt_or_unreadable(ratios['ping_over_raw_both_cpu'], 'x', 2)}")
    if "one_more_host_setup_over_raw_both_cpu" in ratios:
        line += (f"; one more host: setup / raw "
                 f"{_fmt_or_unreadable(ratios['one_more_host_setup_over_raw_both_cpu'], 'x', 2)}"
                 ", ping / raw "
                 f"{_fmt_or_unreadable(ratios['one_more_host_ping_over_raw_both_cpu'], 'x', 2)}")
    lines.append(line)
    return lines


def measure_scale(count: int, forks: int, runs: int, tmp: Path,
                  with_ping: bool, baseline: Path | None = None) -> dict[str, Any]:
    """Whole commands on ``count`` local aliases: time, CPU and controller memory."""
    inventory = tmp / f"scale-{count}.yml"
    hosts = local_inventory(inventory, count, prefix="bench-scale")
    adhoc = [str(BIN / "ansible"), "all", "-i", str(inventory), "--forks", str(forks), "-b"]
    arms: dict[str, list[str]] = {
        "detect": detect_argv(inventory, forks, "raw", tmp / "scale-detect"),
        "detect_module": detect_argv(inventory, forks, "module", tmp / "scale-detect-module"),
        "setup": [*adhoc, "-m", "ansible.builtin.setup"],
    }
    if with_ping:
        arms["ping"] = [*adhoc, "-m", "ansible.builtin.ping"]
    if baseline is not None:
        arms["detect_before"] = detect_argv(inventory, forks, "raw", tmp / "scale-detect")
    rows: dict[str, list[dict[str, Any]]] = {arm: [] for arm in arms}
    for round_index in range(runs):
        for arm in rotated(list(arms), round_index):
            for leftover in (tmp / "scale-detect", tmp / "scale-detect-module"):
                _remove_tree(leftover)
            out = tmp / f"scale-{arm}.out"
            result = measured_run(arms[arm], env=arm_env(arm, {}, baseline), stdout_path=out,
                                  cwd=baseline if arm == "detect_before" else REPO)
            text = out.read_text(encoding="utf-8", errors="replace")
            if result.returncode != 0:
                raise SystemExit(f"scale/{arm} exited {result.returncode}:\n"
                                 f"{(text + result.stderr)[-3000:]}")
            if arm in DETECT_ARMS or arm == "detect_before":
                check_document(f"scale/{arm}", text, hosts)
            else:
                ok = sum(1 for line in text.splitlines() if " | SUCCESS" in line)
                if ok != count:
                    raise SystemExit(f"scale/{arm}: {ok} of {count} hosts succeeded")
            del text
            out.unlink()
            rows[arm].append({"wall": result.wall, "cpu": result.cpu,
                              "largest_process": result.largest_process,
                              "max_rss_mb": result.max_rss_kb / 1024,
                              "peak_tree_pss_mb": result.peak_tree_pss_kb / 1024})
            print(f"  scale {count} round {round_index + 1}/{runs} {arm:<14} "
                  f"{result.wall:7.1f} s wall {result.cpu:7.1f} s CPU  largest process "
                  f"{result.max_rss_kb / 1024:6.0f} MB  tree PSS "
                  f"{result.peak_tree_pss_kb / 1024:6.0f} MB  ({load_note()}; largest: "
                  f"{result.largest_process})", flush=True)
    for leftover in (tmp / "scale-detect", tmp / "scale-detect-module"):
        _remove_tree(leftover)
    out: dict[str, Any] = {"hosts": count, "forks": forks, "runs": runs, "arms": {},
                           "rounds": rows}
    for arm, data in rows.items():
        out["arms"][arm] = {
            "wall_s": summary(r["wall"] for r in data),
            "wall_per_host_s": summary(r["wall"] / count for r in data),
            "cpu_per_host_s": summary(r["cpu"] / count for r in data),
            "max_rss_mb": summary(r["max_rss_mb"] for r in data),
            "peak_tree_pss_mb": summary(r["peak_tree_pss_mb"] for r in data),
        }
    wall = {arm: [r["wall"] for r in data] for arm, data in rows.items()}
    cpu = {arm: [r["cpu"] for r in data] for arm, data in rows.items()}
    out["ratios"] = {
        "setup_over_detect_wall": _paired(wall["setup"], wall["detect"]),
        "setup_over_detect_cpu": _paired(cpu["setup"], cpu["detect"]),
        "setup_over_detect_module_wall": _paired(wall["setup"], wall["detect_module"]),
        "detect_module_over_detect_wall": _paired(wall["detect_module"], wall["detect"]),
    }
    if with_ping:
        out["ratios"]["ping_over_detect_wall"] = _paired(wall["ping"], wall["detect"])
    if baseline is not None:
        out["ratios"]["setup_over_detect_before_wall"] = _paired(wall["setup"],
                                                                 wall["detect_before"])
        out["ratios"]["detect_before_over_detect_wall"] = _paired(wall["detect_before"],
                                                                  wall["detect"])
    return out


def _remove_tree(path: Path) -> None:
    import shutil

    shutil.rmtree(path, ignore_errors=True)


def scale_report(result: dict[str, Any]) -> str:
    lines = [f"scale: {result['hosts']} local hosts, forks {result['forks']}, "
             f"{result['runs']} rounds (whole commands)"]
    for arm, data in result["arms"].items():
        lines.append(f"  {arm:<14} wall {fmt(data['wall_s'], ' s', 1)}  per host "
                     f"{fmt(data['wall_per_host_s'], ' s', 3)}  CPU/host "
                     f"{fmt(data['cpu_per_host_s'], ' s', 3)}  largest process "
                     f"{fmt(data['max_rss_mb'], ' MB', 0)}  tree PSS "
                     f"{fmt(data['peak_tree_pss_mb'], ' MB', 0)}")
    for key, value in result["ratios"].items():
        lines.append(f"  {key}: {fmt(value, 'x')}")
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--local-hosts", type=int, default=50)
    parser.add_argument("--containers", type=int, default=10,
                        help="podman containers (0: leave them out); their CPU per run is "
                             "read from their cgroups")
    parser.add_argument("--forks", type=int, default=10)
    parser.add_argument("--runs", type=int, default=5, help="rounds (each runs every arm once)")
    parser.add_argument("--no-detect", action="store_true",
                        help="leave out the whole-command `memcg-fix detect -i` arms")
    parser.add_argument("--process-runs", type=int, default=15,
                        help="rounds of the process-on-the-host measurement (0: leave it out)")
    parser.add_argument("--scale-hosts", type=int, default=1000,
                        help="local aliases of the scale arm (0: leave it out)")
    parser.add_argument("--scale-forks", type=int, default=50)
    parser.add_argument("--scale-runs", type=int, default=3)
    parser.add_argument("--scale-ping", action="store_true",
                        help="add `ansible all -b -m ping` to the scale arm")
    parser.add_argument("--baseline", metavar="REF",
                        help="also measure the raw path of git REF (an earlier version) in "
                             "the same rounds; its hosts keep its compiled code in "
                             f"{BASELINE_CODE_CACHE}, removed at the end")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args()
    on_signals_exit()
    if args.baseline:  # this machine's hosts: the earlier version's own code cache
        import atexit
        import shutil

        atexit.register(shutil.rmtree, BASELINE_CODE_CACHE, True)
    results = []
    processes = scale = None
    info = machine()
    print(f"machine: {info}", flush=True)
    with tempfile.TemporaryDirectory(prefix="memcg-fix-bench-detect-") as tmp_name:
        tmp = Path(tmp_name)
        baseline = extract_baseline(args.baseline, tmp) if args.baseline else None
        playbooks = write_playbooks(tmp, baseline)
        if args.process_runs:
            processes = measure_processes(module_payloads(playbooks, tmp, baseline),
                                          args.process_runs)
            print(processes_report(processes), flush=True)
        if args.local_hosts:
            inventory = tmp / "local.yml"
            names = local_inventory(inventory, args.local_hosts)
            results.append(measure_set("local", inventory, names, playbooks, args.runs,
                                       args.forks, tmp, not args.no_detect, baseline))
            print(report(results[-1]), flush=True)
        if args.containers:
            from tests.targets.common import CGROUP_PARENT
            from tests.targets.target import destroy_all, start_containers, write_inventory

            started = []
            try:
                started = start_containers(["debian"] * args.containers)
                inventory = write_inventory(started, tmp / "containers.yml", group="bench")
                target_cpu = TargetCpu(CGROUP_PARENT.strip("/"),
                                       {t.name: t.container_id for t in started})
                results.append(measure_set("containers", inventory, [t.name for t in started],
                                           playbooks, args.runs, args.forks, tmp,
                                           not args.no_detect, baseline, target_cpu))
            finally:
                destroy_all(started)
            print(report(results[-1]), flush=True)
        if args.scale_hosts:
            scale = measure_scale(args.scale_hosts, args.scale_forks, args.scale_runs, tmp,
                                  args.scale_ping, baseline)
            print(scale_report(scale), flush=True)
    for result in results:
        ratios = result["ratios"]
        if ratios["setup_over_raw_wall"]["median"] < GOAL_OVER_SETUP:
            print(f"GOAL (>= {GOAL_OVER_SETUP:.0f}x setup per host) missed for {result['set']}")
        if ratios["ping_over_raw_wall"]["median"] < GOAL_OVER_PING:
            print(f"GOAL (>= {GOAL_OVER_PING}x ping per host) missed for {result['set']}")
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.out:
        write_json(args.out, {"machine": info, "forks": args.forks, "baseline": args.baseline,
                              "results": results,
                              "processes": processes, "scale": scale})
    return 0


if __name__ == "__main__":
    sys.exit(main())
