"""The VM is real: a GRUB edit plus a reboot changes the running kernel's
command line and, with it, the cgroup hierarchy systemd mounts.

Two reboots (about 100 s each under TCG): v1 memory cgroups with
systemd.unified_cgroup_hierarchy=0, then back to cgroup2 without it. The test
leaves the shared VM as it found it.
"""

from __future__ import annotations

import json
import secrets
import time
from pathlib import Path

import pytest

from tests.targets.ansible import run_playbook

pytestmark = [pytest.mark.vm, pytest.mark.slow]

GRUB_PLAY = """
- name: Set GRUB_CMDLINE_LINUX, regenerate grub.cfg and reboot when it changed
  hosts: targets
  gather_facts: false
  become: true
  tasks:
    - name: Write GRUB_CMDLINE_LINUX
      ansible.builtin.lineinfile:
        path: /etc/default/grub
        regexp: '^GRUB_CMDLINE_LINUX='
        line: 'GRUB_CMDLINE_LINUX="{{ grub_cmdline_linux }}"'
      register: grub_default

    - name: Regenerate grub.cfg
      ansible.builtin.command: update-grub
      changed_when: true
      when: grub_default is changed

    - name: Reboot into the new command line
      ansible.builtin.reboot:
        reboot_timeout: 600
      when: grub_default is changed
"""


def _cgroup_state(vm) -> tuple[str, str]:
    """(filesystem type of /sys/fs/cgroup, hierarchy id of the memory controller)."""
    fstype = vm.sh("stat -f -c %T /sys/fs/cgroup").strip()
    memory_row = [ln.split() for ln in vm.sh("cat /proc/cgroups").splitlines()
                  if ln.startswith("memory")]
    return fstype, memory_row[0][1] if memory_row else "absent"


def _apply(vm, inventory: Path, play: Path, cmdline: str) -> tuple[float, object]:
    started = time.monotonic()
    extra = json.dumps({"grub_cmdline_linux": cmdline})  # key=value would split on spaces
    result = run_playbook(play, inventory, extra_args=["-e", extra], timeout=1500)
    return time.monotonic() - started, result


def test_grub_edit_and_reboot_switch_cgroup_hierarchy(vm_target, inventory_path, tmp_path):
    vm = vm_target
    play = tmp_path / "grub.yml"
    play.write_text(GRUB_PLAY)
    inventory = inventory_path([vm])
    original_default = vm.read_file("/etc/default/grub")
    assert b'GRUB_CMDLINE_LINUX=""' in original_default
    token = f"memcg_fix_test={secrets.token_hex(4)}"
    boot0 = vm.boot_id()
    assert _cgroup_state(vm) == ("cgroup2fs", "0"), "the base image boots with cgroup v2"
    print(f"VM boot to ssh (session start): {vm.last_boot_seconds:.0f}s")
    try:
        elapsed, result = _apply(vm, inventory, play,
                                 f"systemd.unified_cgroup_hierarchy=0 {token}")
        assert result.returncode == 0, result.describe()
        assert result.changed() == 3, result.describe()
        print(f"edit + update-grub + reboot (v1): {elapsed:.0f}s")
        boot1 = vm.boot_id()
        assert boot1 != boot0
        cmdline = vm.cmdline().split()
        assert "systemd.unified_cgroup_hierarchy=0" in cmdline and token in cmdline
        fstype, memory_hierarchy = _cgroup_state(vm)
        assert fstype == "tmpfs" and memory_hierarchy != "0"
        assert vm.exists("/sys/fs/cgroup/memory/memory.force_empty")

        elapsed, result = _apply(vm, inventory, play, "")
        assert result.returncode == 0 and result.changed() == 3, result.describe()
        print(f"revert + update-grub + reboot (v2): {elapsed:.0f}s")
        assert vm.boot_id() not in (boot0, boot1)
        cmdline = vm.cmdline().split()
        assert token not in cmdline
        assert "systemd.unified_cgroup_hierarchy=0" not in cmdline
        assert _cgroup_state(vm) == ("cgroup2fs", "0")
        assert vm.read_file("/etc/default/grub") == original_default
    finally:
        # leave the shared VM as found, even after a failure half-way
        if vm.running() and vm.read_file("/etc/default/grub") != original_default:
            vm.write_file("/etc/default/grub", original_default)
            vm.sh("update-grub 2>&1")
            vm.reboot_and_wait()


def test_hard_kill_and_start_again(vm_target):
    """kill() is a power cut of our own qemu; start() boots the same overlay."""
    vm = vm_target
    before = vm.boot_id()
    vm.write_file("/var/tmp/memcg-fix-survives", "kept\n")
    vm.sh("sync")
    vm.kill()
    assert not vm.running()
    seconds = vm.start()
    print(f"VM boot to ssh after a hard kill: {seconds:.0f}s")
    assert vm.boot_id() != before
    assert vm.read_file("/var/tmp/memcg-fix-survives") == b"kept\n"
    assert vm.ssh("sudo -n true").returncode == 0  # tester is back too
    vm.run(["rm", "/var/tmp/memcg-fix-survives"], check=True)
