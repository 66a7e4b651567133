"""A host that does not come back from its reboot in time (killed during it).

The rollout reboots the canary, a real QEMU guest booting through GRUB, and
the test kills the guest's QEMU process as soon as the reboot has begun (sshd
gone), so the host never comes back within the role's reboot timeout. The
fleet has a second host, a Debian container, planned for the same change.

What must hold, and is checked:

* the failed host is reported, with the reason, and apply exits 4;
* with the default canary batch, the second batch never starts: the
  container is reported ``not-run`` and not a byte of it changed;
* nothing is half-written: after a cold start the guest boots (through the
  GRUB configuration memcg-fix regenerated), every GRUB entry carries the
  argument, the drop-in is complete, and the backup store records the change;
* the dead run's host-side lock does not block the next run forever: it is
  taken over once the new boot is older than the dead run's reboot window;
* ``memcg-fix rollback`` then restores the files byte for byte (GRUB's
  configuration included) and reports the reboot that removes the argument.

The guest is this test's own (not the session VM), since the test kills it.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.targets.ansible import ansible_env
from tests.targets.common import ssh_works
from tests.targets.target import VmTarget, create_vm

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.containers,
              pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
VM_POLICY = REPO / "tests" / "data" / "policies" / "vm-site.yaml"
# The container runs this machine's kernel, which the site's nokmem rule (for
# Debian kernels) may not match; pam-lastlog plans a change for both hosts.
PAM_RULE = """
  - id: site-pam-lastlog
    description: Keep pam_lastlog from pinning login sessions' memcgs.
    when:
      pam_lastlog: {active: true, writes_any: true}
    findings:
      - id: site-pam-lastlog-writes
        severity: info
        summary: pam_lastlog writes from inside login sessions
    mitigations:
      - id: pam-lastlog
        params: {method: noupdate}
"""
NOKMEM = "cgroup.memory=nokmem"
DROPIN = "/etc/default/grub.d/99-memcg-fix.cfg"
LOCK = "/var/lib/memcg-fix/lock"
MANIFEST = "/var/lib/memcg-fix/backups/manifest.json"
REBOOT_TIMEOUT = 60  # the role's memcg_remediate_reboot_timeout, set in the inventory
WATCHED = ("/etc/default", "/boot/grub")


def memcg_fix(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, timeout=timeout, env=ansible_env(), check=False)


@pytest.fixture
def own_vm(tmp_path: Path) -> Iterator[VmTarget]:
    vm = create_vm(tmp_path / "vm")
    # batches follow host names: this name sorts before every container's,
    # so the VM is the canary
    vm.name = vm.name.replace("-vm-", "-0vm-")
    try:
        vm.start()
        yield vm
    finally:
        vm.destroy()


def linux_lines(vm: VmTarget) -> list[str]:
    text = vm.read_file("/boot/grub/grub.cfg").decode()
    return [line for line in text.splitlines() if line.strip().startswith("linux")]


def kill_once_the_reboot_began(vm: VmTarget, apply: subprocess.Popen[str]) -> None:
    """Wait until the run announced its reboot (the lock's reboot window) and
    the guest's sshd is gone, then kill the guest's QEMU: a host that died
    while rebooting."""
    deadline = time.monotonic() + 1800
    announced = False
    while time.monotonic() < deadline:
        assert apply.poll() is None, "apply ended before the reboot began"
        if not announced:
            raw = vm.run(["cat", LOCK], timeout=60)
            if raw.returncode == 0:
                announced = json.loads(raw.stdout).get("expect_reboot") == REBOOT_TIMEOUT
        elif not ssh_works("root", vm.address, vm.port, vm.key_path):
            vm.kill()
            return
        time.sleep(1)
    raise AssertionError("the rollout never began the reboot")


def test_a_host_killed_during_its_reboot_stops_the_rollout_and_rolls_back(
        own_vm, debian_target, inventory_path, tmp_path):
    vm, later = own_vm, debian_target
    assert vm.name < later.name
    # the VM is the canary (its name sorts first); the container is the next batch
    inventory = inventory_path([vm, later],
                               extra_vars={"memcg_remediate_reboot_timeout": REBOOT_TIMEOUT})
    policy = tmp_path / "policy.yaml"
    policy.write_text(VM_POLICY.read_text() + PAM_RULE)
    vm_before = vm.tree_checksums(WATCHED)
    later_before = later.tree_checksums(("/etc", "/boot", "/var/lib"), metadata=True)

    plan = memcg_fix("plan", "-i", str(inventory), "--policy", str(policy),
                     "--out", str(tmp_path / "plan"))
    assert plan.returncode == 2, plan.stdout + plan.stderr
    playbook = tmp_path / "plan" / "memcg-fix.yml"

    apply = subprocess.Popen(
        [sys.executable, "-m", "remediate", "apply", "-i", str(inventory), "--playbook",
         str(playbook), "--policy", str(policy), "--reboot-ok", "--format", "json",
         "--out", str(tmp_path / "apply")],
        stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, env=ansible_env())
    try:
        kill_once_the_reboot_began(vm, apply)
        out, err = apply.communicate(timeout=1800)
    finally:
        if apply.poll() is None:
            apply.kill()
            apply.communicate()

    # -- reported, with the reason; the next batch never started
    assert apply.returncode == 4, out + err
    rows = {row["host"]: row for row in json.loads(out)["hosts"]}
    assert rows[vm.name]["outcome"] in ("failed", "unreachable"), rows
    assert "reboot" in rows[vm.name]["detail"].lower(), rows[vm.name]
    assert rows[later.name]["outcome"] == "not-run", rows
    assert later.tree_checksums(("/etc", "/boot", "/var/lib"), metadata=True) == later_before

    # -- a cold start: the guest boots, with the change whole
    vm.start()
    assert NOKMEM in vm.cmdline().split()
    lines = linux_lines(vm)
    assert lines and all(NOKMEM in line.split() for line in lines), lines
    dropin = vm.read_file(DROPIN).decode()
    assert dropin.startswith("# Managed by memcg-fix")
    assert dropin.endswith('\nGRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} cgroup.memory=nokmem"\n')
    notes = json.loads(vm.read_file(MANIFEST))["notes"]
    assert notes.get("kernel_arg_added:" + NOKMEM) is True, notes
    held = json.loads(vm.read_file(LOCK))
    assert held["expect_reboot"] == REBOOT_TIMEOUT  # the dead run's lock is still there
    assert vm.run(["sh", "-c", f"ls {DROPIN}.* /etc/default/grub.d/.*tmp* 2>/dev/null"]
                  ).stdout == b""  # no temporary file left behind

    # -- rollback: waits out the dead run's reboot window, takes its lock
    # over and restores the files. No consent to reboot this time: that the
    # guest then boots without the argument is test_vm_flow's to prove.
    back = memcg_fix("rollback", "-i", str(inventory), "--limit", vm.name, "--playbook",
                     str(playbook), "--format", "json", "--out", str(tmp_path / "rollback"))
    assert back.returncode == 4, back.stdout + back.stderr  # the argument goes at the next boot
    rows = {row["host"]: row for row in json.loads(back.stdout)["hosts"]}
    assert rows[vm.name]["outcome"] == "reboot-required", rows
    assert not vm.exists(DROPIN)
    assert not vm.exists(LOCK)
    lines = linux_lines(vm)
    assert lines and not any(NOKMEM in line.split() for line in lines), lines
    assert without_grubenv(vm.tree_checksums(WATCHED)) == without_grubenv(vm_before)


def without_grubenv(checksums: dict[str, str]) -> dict[str, str]:
    """GRUB itself rewrites grubenv at boot (recordfail), not memcg-fix."""
    return {path: digest for path, digest in checksums.items()
            if not path.endswith("/grubenv")}
