"""Fixtures that hand tests real targets (see docs/testing.md).

* ``debian_target``, ``el7_target``, ``el8_target``, ``el9_target``: a fresh
  podman container per test. When a test asks for several, they start in
  parallel.
* ``target_factory(kind, count)``: many containers at once (benchmarks).
* ``vm_target`` (session): one QEMU guest on a qcow2 overlay of the cached
  base disk; it boots once per session and is shared, so a test that changes
  it must put it back.
* ``inventory_path``: a function writing an Ansible inventory for targets.

Tests that use these fixtures are marked ``containers`` or ``vm``
automatically. Everything is torn down even when a test fails; at the end of
the session anything this process started that still exists is removed and
the run fails loudly.
"""

from __future__ import annotations

import os
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, settings

from tests.targets import target as targets_mod
from tests.targets.target import (
    ContainerTarget,
    Target,
    VmTarget,
    create_vm,
    destroy_all,
    start_containers,
    write_inventory,
)

# Property tests: no per-example deadline (the machine is shared and loaded);
# in CI a derandomized run, so a new random example never fails a merge by
# surprise (explore locally with HYPOTHESIS_PROFILE=explore).
settings.register_profile("ci", derandomize=True, deadline=None,
                          suppress_health_check=[HealthCheck.too_slow])
settings.register_profile("explore", deadline=None, max_examples=2000)
settings.register_profile("dev", deadline=None)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "dev"))

CONTAINER_FIXTURES = {
    "debian_target": "debian",
    "el7_target": "el7",
    "el8_target": "el8",
    "el9_target": "el9",
}
VM_FIXTURES = ("vm_target",)


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    for item in items:
        names = set(getattr(item, "fixturenames", ()))
        if names & {*CONTAINER_FIXTURES, "target_factory"}:
            item.add_marker(pytest.mark.containers)
        if names & set(VM_FIXTURES):
            item.add_marker(pytest.mark.vm)
            item.add_marker(pytest.mark.slow)


@pytest.fixture(autouse=True)
def _blocking_stdin() -> None:
    """Every test starts with a blocking stdin. A child that sets its stdin
    non-blocking and is killed before it restores it (ssh under a timeout)
    would otherwise make every later ansible-playbook that inherits it refuse
    to start. memcg-fix itself does not depend on this (tests/unit/test_cli.py
    runs it with a non-blocking stdin)."""
    try:
        os.set_blocking(0, True)
    except OSError:
        pass  # no stdin at all


@pytest.fixture
def _container_batch(request: pytest.FixtureRequest) -> Iterator[dict[str, ContainerTarget]]:
    """Starts, in parallel, every container fixture the test asks for."""
    wanted = [kind for fixture, kind in CONTAINER_FIXTURES.items()
              if fixture in request.node.fixturenames]
    started = start_containers(wanted)
    try:
        yield {t.kind: t for t in started}
    finally:
        destroy_all(started)


@pytest.fixture
def debian_target(_container_batch: dict[str, ContainerTarget]) -> ContainerTarget:
    return _container_batch["debian"]


@pytest.fixture
def el7_target(_container_batch: dict[str, ContainerTarget]) -> ContainerTarget:
    return _container_batch["el7"]


@pytest.fixture
def el8_target(_container_batch: dict[str, ContainerTarget]) -> ContainerTarget:
    return _container_batch["el8"]


@pytest.fixture
def el9_target(_container_batch: dict[str, ContainerTarget]) -> ContainerTarget:
    return _container_batch["el9"]


@pytest.fixture
def target_factory() -> Iterator[Callable[[str, int], list[ContainerTarget]]]:
    """target_factory(kind, count) -> that many fresh containers (parallel start)."""
    created: list[ContainerTarget] = []

    def make(kind: str, count: int = 1) -> list[ContainerTarget]:
        batch = start_containers([kind] * count)
        created.extend(batch)
        return batch

    try:
        yield make
    finally:
        destroy_all(created)


@pytest.fixture(scope="session")
def vm_target(tmp_path_factory: pytest.TempPathFactory) -> Iterator[VmTarget]:
    """The session's VM, booted through GRUB from an overlay of the base image."""
    vm = create_vm(tmp_path_factory.mktemp("vm"))
    try:
        vm.start()
        yield vm
    finally:
        vm.destroy()


@pytest.fixture
def inventory_path(tmp_path: Path) -> Callable[..., Path]:
    """inventory_path(targets, group="targets", extra_vars=None) -> written file."""

    def write(targets: list[Target] | tuple[Target, ...], group: str = "targets",
              extra_vars: dict[str, Any] | None = None) -> Path:
        return write_inventory(targets, tmp_path / f"inventory-{group}.yml", group, extra_vars)

    return write


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    left = targets_mod.leftovers()
    if left:
        targets_mod.clean_leftovers()
    targets_mod.remove_cgroup_parent()
    if left:
        reporter = session.config.pluginmanager.get_plugin("terminalreporter")
        message = ("test targets left behind (removed now, but a fixture did not clean "
                   "up): " + ", ".join(left))
        if reporter is not None:
            reporter.write_line(message, red=True, bold=True)
        session.exitstatus = pytest.ExitCode.TESTS_FAILED
