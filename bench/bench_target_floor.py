"""P1 profile: where one raw detection's cost goes on a target reached over ssh with sudo.

One podman container (the Debian test image of tests/targets), reached as its
unprivileged user over ssh with sudo, like a production host. Each arm is one
plain ``ssh`` command with the options Ansible uses for the target (its
inventory's ``ansible_ssh_args`` and ``ansible_ssh_common_args``: compression,
one ControlMaster connection kept open, no host key check; ``-i`` key, ``-p``
port, user@host). The master connection is opened once, untimed, so every
timed run is one session over it, as each of Ansible's tasks is:

* ``ssh_true``: ``/bin/sh -c true``: the ssh session alone;
* ``sudo_true``: ``sudo -H -S -n -u root /bin/sh -c 'echo BECOME-SUCCESS-...;
  true'``: Ansible's become wrapping around a command that does nothing;
* ``sudo_python``: the same running ``/usr/bin/python3 -E -S -c pass``:
  the host's Python starting and exiting;
* ``sudo_raw``: the same running memcg_facts_raw's real command, with the
  collector on its stdin (built by the action plugin, as bench_detect.py's
  ``raw_command()`` does; the default code cache on); each run must print a
  facts line.

One untimed run of ``sudo_raw`` comes first, so the host's code cache and
tool-version cache are warm: the rounds measure a host that has run
detection before. The arms are interleaved and their order rotated every
round; each round runs every arm ``--per-round`` times in a row.

Per arm and round, the mean per run of:

* wall time;
* the controller's CPU: the ssh client (getrusage RUSAGE_CHILDREN) and,
  apart, the ssh master process that carries every session (its time on a
  CPU from /proc/PID/schedstat, else utime + stime in clock ticks);
* the target's CPU: the container's cgroup
  (``<cgroup parent>/libpod-<container id>``: cgroup v1 ``cpuacct.usage``,
  else v2 ``cpu.stat`` usage_usec; read only), read around the round's runs.

Reported: medians (min-max) over rounds, and the increments, paired per
round: the ssh session (``ssh_true``), sudo (``sudo_true - ssh_true``),
Python's start (``sudo_python - sudo_true``) and the collector
(``sudo_raw - sudo_python``), in the target's CPU, wall and the controller's
CPU. Ansible itself adds one more ``/bin/sh -c`` layer inside the become
command (and its own work on the controller): not measured here.

    python bench/bench_target_floor.py                  # 4 rounds x 15 runs per arm
    python bench/bench_target_floor.py --runs 1 -n 3    # a quick look
    python bench/bench_target_floor.py --out floor.json

The container is removed at the end, also on error, Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import os
import re
import secrets
import shlex
import subprocess
import sys
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from bench._common import (
    Timed,
    fmt,
    load_note,
    machine,
    on_signals_exit,
    rotated,
    summary,
    timed_run,
    write_json,
)
from bench.bench_detect import TargetCpu, _readable, raw_action, raw_command

ARMS = ("ssh_true", "sudo_true", "sudo_python", "sudo_raw")
# each increment: (name, the arm, the arm it is measured above; None: zero)
INCREMENTS = (("ssh session", "ssh_true", None), ("sudo", "sudo_true", "ssh_true"),
              ("Python's start", "sudo_python", "sudo_true"),
              ("the collector", "sudo_raw", "sudo_python"))
FIGURES = {"target_cpu": "target CPU", "wall": "wall", "controller_cpu": "controller CPU"}
CLOCK_TICKS = os.sysconf("SC_CLK_TCK")


@dataclass
class Arm:
    command: str  # what ssh asks the target's login shell to run
    stdin: str
    expect: str  # a line of the output must start with this


def become(command: str, marker: str) -> str:
    """``command`` wrapped as Ansible's sudo become plugin wraps it."""
    return f"sudo -H -S -n -u root /bin/sh -c {shlex.quote(f'echo {marker}; {command}')}"


def arms() -> dict[str, Arm]:
    marker = f"BECOME-SUCCESS-{secrets.token_hex(16)}"
    raw, raw_stdin = raw_command()
    facts_mark: str = raw_action().FACTS_MARK
    return {
        "ssh_true": Arm("/bin/sh -c true", "", ""),
        "sudo_true": Arm(become("true", marker), "", marker),
        "sudo_python": Arm(become("/usr/bin/python3 -E -S -c pass", marker), "", marker),
        "sudo_raw": Arm(become(raw, marker), raw_stdin, facts_mark),
    }


def ssh_argv(inventory_vars: dict[str, Any]) -> list[str]:
    """``ssh`` with the options Ansible uses for the target, up to user@host."""
    return ["ssh", *shlex.split(inventory_vars["ansible_ssh_args"]),
            *shlex.split(inventory_vars.get("ansible_ssh_common_args", "")),
            "-i", str(inventory_vars["ansible_ssh_private_key_file"]),
            "-p", str(inventory_vars["ansible_port"]),
            f"{inventory_vars['ansible_user']}@{inventory_vars['ansible_host']}"]


def run_arm(ssh: list[str], name: str, arm: Arm, timeout: float = 120) -> Timed:
    """One run of ``arm`` over ssh: its wall time and the ssh client's CPU
    (fails unless it did its work)."""
    result = timed_run([*ssh, arm.command], stdin=arm.stdin, timeout=timeout)
    if result.returncode != 0 or (arm.expect and not any(
            line.startswith(arm.expect) for line in result.stdout.splitlines())):
        raise SystemExit(f"{name} failed (exit {result.returncode}): "
                         f"{(result.stdout + result.stderr)[-1000:]}")
    return result


def master_pid(ssh: list[str]) -> int:
    """The ssh master process of the control socket (``ssh -O check``)."""
    check = subprocess.run([*ssh[:1], "-O", "check", *ssh[1:]], capture_output=True,
                           text=True, timeout=30, check=False)
    found = re.search(r"pid=(\d+)", check.stdout + check.stderr)
    if check.returncode != 0 or found is None:
        raise SystemExit(f"no ssh master connection: {(check.stdout + check.stderr).strip()}")
    return int(found.group(1))


def process_cpu_seconds(pid: int) -> float:
    """The CPU time a process has used so far: its time on a CPU in
    /proc/PID/schedstat (nanoseconds), else utime + stime of /proc/PID/stat
    (clock ticks)."""
    try:
        with open(f"/proc/{pid}/schedstat", encoding="ascii") as handle:
            return int(handle.read().split()[0]) / 1e9
    except (OSError, ValueError, IndexError):
        if not os.path.exists(f"/proc/{pid}"):
            raise
    with open(f"/proc/{pid}/stat", encoding="utf-8") as handle:
        fields = handle.read().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / CLOCK_TICKS


def warm_up(ssh: list[str], table: dict[str, Arm], attempts: int = 5) -> None:
    """Untimed: the master connection, one sudo (the first in a fresh
    container waits for its systemd-logind), one raw detection (the caches)."""
    for attempt in range(attempts):
        try:
            run_arm(ssh, "ssh_true (warm-up)", table["ssh_true"])
            run_arm(ssh, "sudo_true (warm-up)", table["sudo_true"])
            break
        except (SystemExit, subprocess.TimeoutExpired):
            if attempt == attempts - 1:
                raise
            time.sleep(5)
    run_arm(ssh, "sudo_raw (warm-up)", table["sudo_raw"])


def measure(ssh: list[str], table: dict[str, Arm], target_cpu: Callable[[], float | None],
            rounds: int, per_round: int) -> dict[str, Any]:
    """Every arm ``per_round`` times in a row, rotated every round; the means per run."""
    rows: dict[str, list[dict[str, Any]]] = {arm: [] for arm in table}
    for round_index in range(rounds):
        for name in rotated(list(table), round_index):
            master = master_pid(ssh)
            master_before = process_cpu_seconds(master)
            target_before = target_cpu()
            runs = [run_arm(ssh, name, table[name]) for _ in range(per_round)]
            target_after = target_cpu()
            walls = [run.wall for run in runs]
            client = sum(run.cpu for run in runs) / per_round
            try:
                master_cpu = (process_cpu_seconds(master) - master_before) / per_round
            except OSError as exc:
                raise SystemExit(f"the ssh master (pid {master}) went away during {name}: "
                                 f"{exc}") from exc
            target = (None if target_before is None or target_after is None
                      else (target_after - target_before) / per_round)
            rows[name].append({"wall": sum(walls) / per_round, "walls": walls,
                               "client_cpu": client, "master_cpu": master_cpu,
                               "controller_cpu": client + master_cpu, "target_cpu": target})
            target_note = "unreadable" if target is None else f"{target * 1e3:6.1f} ms"
            print(f"  round {round_index + 1}/{rounds} {name:<12} wall "
                  f"{sum(walls) / per_round * 1e3:6.1f} ms  ssh client CPU {client * 1e3:5.1f} ms"
                  f"  master CPU {master_cpu * 1e3:5.1f} ms  target CPU {target_note}  "
                  f"({load_note()})", flush=True)
    return analyse(rows, rounds, per_round)


def _series(rows: list[dict[str, Any]], key: str) -> list[float] | None:
    return _readable([row[key] for row in rows])


def analyse(rows: dict[str, list[dict[str, Any]]], rounds: int,
            per_round: int) -> dict[str, Any]:
    out: dict[str, Any] = {"rounds": rounds, "per_round": per_round, "arms": {},
                           "increments": {}, "raw": rows}
    for arm, data in rows.items():
        out["arms"][arm] = {}
        for key in ("wall", "client_cpu", "master_cpu", "controller_cpu", "target_cpu"):
            series = _series(data, key)
            out["arms"][arm][f"{key}_s"] = None if series is None else summary(series)
    for label, arm, base in INCREMENTS:
        out["increments"][label] = {}
        for key in FIGURES:
            top = _series(rows[arm], key)
            below = [0.0] * len(rows[arm]) if base is None else _series(rows[base], key)
            out["increments"][label][f"{key}_s"] = (
                None if top is None or below is None
                else summary(t - b for t, b in zip(top, below, strict=True)))
    return out


def _ms(stat: dict[str, float] | None) -> str:
    if stat is None:
        return "unreadable"
    return fmt({k: v * 1e3 if k != "n" else v for k, v in stat.items()}, " ms", 1)


def report(result: dict[str, Any], source: str) -> str:
    lines = [f"one Debian container over ssh + sudo: {result['rounds']} rounds x "
             f"{result['per_round']} runs per arm; medians (min-max) over rounds of the mean "
             f"per run; target CPU from its cgroup ({source})"]
    for arm, data in result["arms"].items():
        lines.append(f"  {arm:<12} target CPU {_ms(data['target_cpu_s'])}  wall "
                     f"{_ms(data['wall_s'])}  controller CPU {_ms(data['controller_cpu_s'])} "
                     f"(ssh client {_ms(data['client_cpu_s'])}, master "
                     f"{_ms(data['master_cpu_s'])})")
    lines.append("  increments (paired per round):")
    for label, arm, base in INCREMENTS:
        data = result["increments"][label]
        what = arm if base is None else f"{arm} - {base}"
        lines.append(f"    {label:<15} ({what}): target CPU {_ms(data['target_cpu_s'])}  wall "
                     f"{_ms(data['wall_s'])}  controller CPU {_ms(data['controller_cpu_s'])}")
    return "\n".join(lines)


def main(argv: Sequence[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--runs", type=int, default=4, help="rounds (each runs every arm)")
    parser.add_argument("-n", "--per-round", type=int, default=15,
                        help="runs of each arm in a row per round")
    parser.add_argument("--out", metavar="FILE", help="also write the figures as JSON")
    args = parser.parse_args(argv)
    if args.runs < 1 or args.per_round < 1:
        parser.error("--runs and --per-round must be at least 1")
    from tests.targets.common import CGROUP_PARENT
    from tests.targets.target import destroy_all, start_containers

    on_signals_exit()
    info = machine()
    print(f"machine: {info}", flush=True)
    table = arms()
    started = []
    try:
        started = start_containers(["debian"])
        target = started[0]
        cgroups = TargetCpu(CGROUP_PARENT.strip("/"), {target.name: target.container_id})
        ssh = ssh_argv(target.inventory_vars)
        warm_up(ssh, table)
        result = measure(ssh, table, lambda: cgroups.seconds([target.name]), args.runs,
                         args.per_round)
    finally:
        destroy_all(started)
    source = ", ".join(sorted(cgroups.sources)) or "unreadable"
    result["target_cpu_source"] = source
    print(report(result, source), flush=True)
    info["load_average_at_end"] = [round(x, 2) for x in os.getloadavg()]
    if args.out:
        write_json(args.out, {"machine": info, "result": result})
    return 0


if __name__ == "__main__":
    sys.exit(main())
