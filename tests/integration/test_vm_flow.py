"""The whole flow on a real VM: detect -> plan -> review -> apply -> reboot -> verify.

The VM is a Debian 12 guest that boots through GRUB under QEMU, so
update-grub, the reboot and /proc/cmdline are real. It runs cgroup v2 as
booted, which proves the reclaim tools on v2 (memory.reclaim); for the v1
arm, the test itself (not memcg-fix) adds systemd.unified_cgroup_hierarchy=0
to a GRUB drop-in before the consented reboot, so the guest comes back on v1
with cgroup.memory=nokmem, where "kmem accounting is off" is checkable.

The default policy selects nothing for a Debian 6.1 guest (no kmem leak
there), so the plan uses a site policy (tests/data/policies/vm-site.yaml)
that asks for nokmem, as an operator's own policy would.

Between the steps, the zombie-memcg efficacy check runs inside the guest on
cgroup v2 (memory.reclaim) and then on v1 (memory.force_empty), with the
host-side tools copied in directly: the role's installation of them is
proven on the container tier, and every Ansible module run costs seconds
under TCG.

Reboots under TCG cost about two minutes each; this file reboots twice and
puts the shared session VM back the way it found it.
"""

from __future__ import annotations

import io
import json
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from remediate.resources import role_dir
from tests.targets.ansible import ansible_env

pytestmark = [pytest.mark.vm, pytest.mark.slow, pytest.mark.timeout(3600)]

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "tests" / "data" / "policies" / "vm-site.yaml"
EFFICACY = REPO / "tests" / "live" / "test_efficacy.py"
NOKMEM = "cgroup.memory=nokmem"
V1_DROPIN = "/etc/default/grub.d/98-test-cgroup-v1.cfg"


def memcg_fix(*args: str, timeout: float = 1800) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "remediate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ansible_env(),
        check=False,
    )


HOSTSIDE = REPO / "remediate" / "hostside"
HELPERS = role_dir() / "files"


def install_tools(vm) -> None:
    """memcg-fix-rmdir and memcg-fix-reaper in the guest, laid out as the role lays them out."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w") as archive:
        for source in sorted(HOSTSIDE.glob("*.py")):
            archive.add(source, arcname=f"memcg_fix_host/{source.name}")
    vm.run(["mkdir", "-p", "/usr/lib/memcg-fix"], check=True)
    vm.run(["tar", "-x", "-C", "/usr/lib/memcg-fix"], input=buffer.getvalue(), check=True)
    for helper in ("memcg-fix-rmdir", "memcg-fix-reaper"):
        vm.write_file(f"/usr/local/sbin/{helper}", (HELPERS / helper).read_bytes(), mode=0o755)


def remove_tools(vm) -> None:
    vm.run(["rm", "-rf", "/usr/lib/memcg-fix", "/usr/local/sbin/memcg-fix-rmdir",
            "/usr/local/sbin/memcg-fix-reaper", "/root/test_efficacy.py",
            "/root/efficacy.json"], check=True)


def efficacy(vm, n: int, tmp: str) -> dict:
    """Run the live efficacy arms inside the guest, on the installed tools."""
    vm.write_file(f"{tmp}/test_efficacy.py", EFFICACY.read_bytes())
    proc = vm.run(
        [
            "python3",
            f"{tmp}/test_efficacy.py",
            "--n",
            str(n),
            "--arms",
            "abcd",
            "--rmdir-cmd",
            "/usr/local/sbin/memcg-fix-rmdir",
            "--reaper-cmd",
            "/usr/local/sbin/memcg-fix-reaper",
            "--json",
            f"{tmp}/efficacy.json",
        ],
        timeout=1800,
    )
    assert proc.returncode == 0, proc.stdout.decode()[-3000:] + proc.stderr.decode()[-3000:]
    return json.loads(vm.read_file(f"{tmp}/efficacy.json"))


def test_plan_apply_reboot_verify_then_nothing_to_do(vm_target, inventory_path, tmp_path):
    vm = vm_target
    inventory = inventory_path([vm])
    out = tmp_path / "plan"

    # -- detect and plan: the real --check --diff, and no byte changes
    before = vm.tree_checksums(("/etc", "/boot"))
    boot0 = vm.boot_id()
    plan = memcg_fix("plan", "-i", str(inventory), "--policy", str(POLICY), "--out", str(out))
    assert plan.returncode == 2, plan.stdout + plan.stderr
    assert "+++ after: /etc/default/grub.d/99-memcg-fix.cfg" in plan.stdout
    assert NOKMEM in plan.stdout  # every grub.cfg entry, before and after
    assert vm.tree_checksums(("/etc", "/boot")) == before
    playbook = out / "memcg-fix.yml"
    for name in ("memcg-fix.yml", "plan.json", "plan.md", "facts.json"):
        assert (out / name).is_file(), name

    # -- apply without consent to reboot: the change lands, nothing reboots
    first = memcg_fix(
        "apply",
        "-i",
        str(inventory),
        "--playbook",
        str(playbook),
        "--policy",
        str(POLICY),
        "--out",
        str(tmp_path / "apply1"),
    )
    assert first.returncode == 4, first.stdout + first.stderr  # not verified: reboot pending
    assert "reboot-required" in first.stdout
    assert vm.boot_id() == boot0
    assert NOKMEM not in vm.cmdline()
    grub_cfg = vm.read_file("/boot/grub/grub.cfg").decode()
    linux_lines = [line for line in grub_cfg.splitlines() if line.strip().startswith("linux")]
    assert linux_lines and all(NOKMEM in line for line in linux_lines)
    assert vm.exists("/var/lib/memcg-fix/reboot-required")

    # prove the reclaim tools on this kernel's cgroup v2 (memory.reclaim)
    install_tools(vm)
    v2 = efficacy(vm, 20, "/root")
    assert v2["environment"]["memory_controller"] == "v2", v2["environment"]
    assert all(v2[arm]["ok"] for arm in "abcd"), v2

    # -- apply with consent: one reboot, then verification from fresh facts.
    # The test (not memcg-fix) also boots the guest into cgroup v1 this time.
    vm.write_file(
        V1_DROPIN, 'GRUB_CMDLINE_LINUX="$GRUB_CMDLINE_LINUX systemd.unified_cgroup_hierarchy=0"\n'
    )
    vm.run(["update-grub"], check=True, timeout=600)
    second = memcg_fix(
        "apply",
        "-i",
        str(inventory),
        "--playbook",
        str(playbook),
        "--policy",
        str(POLICY),
        "--reboot-ok",
        "--out",
        str(tmp_path / "apply2"),
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert "verified" in second.stdout
    assert vm.boot_id() != boot0
    assert NOKMEM in vm.cmdline().split()
    facts = json.loads(memcg_fix("detect", "-i", str(inventory), "--format", "json").stdout)
    host = facts["hosts"][0]["facts"]
    assert host["cmdline"]["nokmem"] is True
    assert host["cgroup"]["memory_controller"] == "v1"
    assert host["kmem"]["accounting_active"] is not True
    assert not vm.exists("/var/lib/memcg-fix/reboot-required")
    v1 = efficacy(vm, 20, "/root")
    assert v1["environment"]["memory_controller"] == "v1", v1["environment"]
    assert all(v1[arm]["ok"] for arm in "abcd"), v1

    # -- plan again: nothing to do
    again = memcg_fix(
        "plan", "-i", str(inventory), "--policy", str(POLICY), "--out", str(tmp_path / "plan2")
    )
    assert again.returncode == 0, again.stdout + again.stderr

    # -- put the shared VM back: rollback (consented reboot) and our own drop-in
    remove_tools(vm)
    vm.run(["rm", "-f", V1_DROPIN], check=True)
    back = memcg_fix(
        "rollback",
        "-i",
        str(inventory),
        "--playbook",
        str(playbook),
        "--reboot-ok",
        "--out",
        str(tmp_path / "rollback"),
    )
    assert back.returncode == 0, back.stdout + back.stderr
    assert NOKMEM not in vm.cmdline()
    assert "systemd.unified_cgroup_hierarchy=0" not in vm.cmdline()
    assert not vm.exists("/etc/default/grub.d/99-memcg-fix.cfg")
