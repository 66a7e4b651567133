"""What the benchmarks (bench/, docs/benchmarks.md) rely on, checked functionally.

These are not timed: timings belong to the benchmarks. They prove the
behaviour the figures depend on:

* detection runs exactly one action per host (``memcg_facts_raw``, the
  default, or the ``memcg_facts`` module), counted from ansible-runner's job
  events of the real ``collect_facts`` run, on podman containers over ssh and
  on local-connection aliases of this machine in one inventory;
* counting memory cgroups on a cgroup filesystem skips listing leaves (their
  link count says they have no subdirectory) and still counts exactly what a
  full listing counts, on this machine's real kernel, under our own prefix;
* on cgroup v2 the live count comes from the root ``cgroup.stat`` in the same
  read as the dying count, without walking the hierarchy.
"""

from __future__ import annotations

import json
import os
import sys
from collections import Counter
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.hostside import cgroupfs
from remediate.run import collect_facts

# Tasks Ansible runs on the controller only (they start no module on a host).
CONTROLLER_ACTIONS = {"include_role", "include_tasks", "import_role", "import_tasks",
                      "set_fact", "debug", "assert", "meta", "group_by"}

_SCANNED: list[str] = []
_RECORDING: list[bool] = []


def _record_scandir(event: str, args: tuple[Any, ...]) -> None:
    if event == "os.scandir" and _RECORDING:
        _SCANNED.append(os.fsdecode(args[0]) if args and args[0] is not None else ".")


sys.addaudithook(_record_scandir)


@pytest.fixture
def scandir_calls() -> Iterator[list[str]]:
    """Every ``os.scandir`` path while the test runs (Python audit events, PEP 578)."""
    _SCANNED.clear()
    _RECORDING.append(True)
    try:
        yield _SCANNED
    finally:
        _RECORDING.clear()
        _SCANNED.clear()


def _action(name: str | None) -> str:
    text = str(name or "")
    for prefix in ("ansible.builtin.", "ansible.legacy."):
        if text.startswith(prefix):
            return text[len(prefix):]
    return text


@pytest.mark.containers
@pytest.mark.parametrize(("via", "action"), [("raw", "memcg_facts_raw"),
                                             ("module", "memcg_facts")])
def test_detection_runs_one_action_per_host(target_factory, tmp_path: Path, via: str,
                                            action: str) -> None:
    containers = target_factory("debian", 2)
    local = {f"bench-local-{i}": {"ansible_connection": "local",
                                  "ansible_python_interpreter": "/usr/bin/python3"}
             for i in range(3)}
    hosts = {t.name: dict(t.inventory_vars) for t in containers} | local
    inventory = tmp_path / "inventory.yml"
    inventory.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))

    facts, report = collect_facts([str(inventory)], data_dir=tmp_path / "run", forks=5, via=via)

    assert sorted(f.host for f in facts) == sorted(hosts)
    assert [f.host for f in facts if f.error] == []
    started: dict[str, Counter[str]] = {name: Counter() for name in hosts}
    finished: dict[str, Counter[str]] = {name: Counter() for name in hosts}
    for path in sorted((report.artifacts_dir / "job_events").glob("*.json")):
        event = json.loads(path.read_text())
        data = event.get("event_data") or {}
        action = _action(data.get("task_action"))
        if not data.get("host") or action in CONTROLLER_ACTIONS:
            continue
        if event["event"] == "runner_on_start":
            started[data["host"]][action] += 1
        elif event["event"] in ("runner_on_ok", "runner_on_failed", "runner_on_unreachable"):
            finished[data["host"]][action] += 1
    for name in hosts:
        assert started[name] == Counter({action: 1}), (name, started[name])
        assert finished[name] == Counter({action: 1}), (name, finished[name])
    # the facts are the hosts' own: the containers report their own hostname
    by_host = {f.host: f for f in facts}
    for target in containers:
        assert by_host[target.name].get("host.hostname") == target.name


@pytest.fixture
def own_memory_cgroups() -> Iterator[tuple[str, list[str]]]:
    """A small tree of memory cgroups under this test's own prefix; removed afterwards."""
    memory = "/sys/fs/cgroup/memory"
    if os.geteuid() != 0 or not os.path.isfile(f"{memory}/memory.force_empty"):
        pytest.skip("needs root and the v1 memory controller at /sys/fs/cgroup/memory")
    prefix = f"{memory}/memcg-fix-bench-{os.getpid()}"
    made: list[str] = []
    try:
        os.mkdir(prefix)
        made.append(prefix)
        for pod in range(4):
            parent = f"{prefix}/pod{pod}"
            os.mkdir(parent)
            made.append(parent)
            for child in range(15):
                os.mkdir(f"{parent}/c{child}")
                made.append(f"{parent}/c{child}")
        chain = prefix
        for depth in range(6):  # a deep, narrow branch too
            chain = f"{chain}/d{depth}"
            os.mkdir(chain)
            made.append(chain)
        yield prefix, made
    finally:
        for path in sorted(made, key=lambda p: p.count("/"), reverse=True):
            if path == prefix or path.startswith(prefix + "/"):
                try:
                    os.rmdir(path)
                except FileNotFoundError:
                    pass
        assert not os.path.exists(prefix)


@pytest.mark.live_kernel
def test_counting_skips_leaves_and_counts_what_a_full_listing_counts(
        own_memory_cgroups, scandir_calls) -> None:
    prefix, made = own_memory_cgroups
    assert cgroupfs.statfs_magic(prefix) == cgroupfs.CGROUP_SUPER_MAGIC

    counted = cgroupfs.count_memcg_dirs(prefix)
    listed_with_link_counts = list(scandir_calls)
    scandir_calls.clear()
    full = cgroupfs.count_memcg_dirs(prefix, link_counts=False)

    assert counted == full == len(made)  # 1 + 4 pods x 16 + a chain of 6 = 71
    # only directories with subdirectories were listed: the prefix, 4 pods, 5 of the chain
    assert sorted(listed_with_link_counts) == sorted(
        [prefix, *(f"{prefix}/pod{p}" for p in range(4)),
         *("/".join([prefix, *(f"d{i}" for i in range(depth + 1))]) for depth in range(5))])
    assert len(scandir_calls) == len(made)  # the full listing opens every directory


def test_v2_live_count_reads_cgroup_stat_without_walking(tmp_path: Path, scandir_calls) -> None:
    root = tmp_path / "host"
    (root / "sys/fs/cgroup").mkdir(parents=True)
    (root / "sys/fs/cgroup/cgroup.controllers").write_text("cpu io memory pids\n")
    (root / "sys/fs/cgroup/cgroup.stat").write_text(
        "nr_descendants 41\nnr_dying_descendants 9\n")
    for rel in ("system.slice", "user.slice"):  # what a walk would see: 3, not 42
        (root / "sys/fs/cgroup" / rel).mkdir()
    layout = {"memory_controller": "v2", "memory_mount": "/sys/fs/cgroup"}

    result = cgroupfs.dying_memcgs(str(root), layout)

    assert (result["live"], result["dying"], result["total"]) == (42, 9, 51)
    assert scandir_calls == []


def test_v2_live_count_on_the_real_cgroup2_mount(scandir_calls) -> None:
    unified = next((p for p in ("/sys/fs/cgroup/unified", "/sys/fs/cgroup")
                    if cgroupfs.statfs_magic(p) == cgroupfs.CGROUP2_SUPER_MAGIC), None)
    if unified is None:
        pytest.skip("no cgroup2 mount on this host")
    layout = {"memory_controller": "v2", "memory_mount": unified}
    for _ in range(10):  # other work creates and removes cgroups meanwhile
        result = cgroupfs.dying_memcgs("/", layout)
        assert scandir_calls == []
        walked = cgroupfs.count_memcg_dirs(unified, link_counts=False)
        scandir_calls.clear()
        if result["live"] == walked:
            return
    pytest.fail(f"cgroup.stat said {result['live']} live cgroups, a walk found {walked}")
