"""The memcg_remediate role on real container targets, one behaviour per test.

The EL targets carry each release's real grubby and, on EL8/EL9, the real
authselect, over real EL file layouts (pam-lastlog through authselect:
test_authselect.py); the Debian target is a real Debian userland. Kernel
effects (reboots, /proc/cmdline) are proven on the VM tier instead: containers
share this machine's kernel.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.resources import ROLE_FQCN
from tests.targets.ansible import run_playbook

pytestmark = pytest.mark.containers

NOKMEM = "cgroup.memory=nokmem"
WATCHED = ("/etc", "/boot")


def role_play(
    tmp_path: Path, mitigations: list[dict[str, Any]], name: str = "play.yml", **role_vars: Any
) -> Path:
    play = [
        {
            "name": "Apply memcg_remediate",
            "hosts": "targets",
            "gather_facts": False,
            "roles": [
                {
                    "role": ROLE_FQCN,
                    "vars": {"memcg_remediate_mitigations": mitigations, **role_vars},
                }
            ],
        }
    ]
    path = tmp_path / name
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return path


def run_role(
    tmp_path: Path,
    inventory: Path,
    mitigations: list[dict[str, Any]],
    *,
    check: bool = False,
    diff: bool = False,
    **role_vars: Any,
):
    play = role_play(tmp_path, mitigations, **role_vars)
    return run_playbook(play, inventory, check=check, diff=diff)


def grubby_args(target) -> list[str]:
    out = target.run(["grubby", "--info=ALL"], check=True).stdout.decode()
    return [
        line.split("=", 1)[1].strip('"') for line in out.splitlines() if line.startswith("args=")
    ]


@pytest.mark.parametrize("kind", ["el7", "el8", "el9"])
def test_nokmem_reaches_every_boot_entry_and_a_second_run_changes_nothing(
    kind, target_factory, inventory_path, tmp_path
):
    (target,) = target_factory(kind, 1)
    inventory = inventory_path([target])
    first = run_role(tmp_path, inventory, [{"id": "nokmem", "params": {}}])
    assert first.returncode == 0, first.describe()
    assert first.changed() >= 1
    entries = grubby_args(target)
    assert entries and all(NOKMEM in args.split() for args in entries), entries
    default_grub = target.read_file("/etc/default/grub").decode()
    assert NOKMEM in default_grub  # a later grub2-mkconfig keeps it
    if kind == "el8":
        assert NOKMEM in target.read_file("/boot/grub2/grubenv").decode()
    if kind == "el9":
        assert NOKMEM in target.read_file("/etc/kernel/cmdline").decode()
    # no consent to reboot: nothing rebooted, and the host says a reboot is pending
    assert "needs a reboot to finish" in first.output
    assert target.exists("/var/lib/memcg-fix/reboot-required")
    second = run_role(tmp_path, inventory, [{"id": "nokmem", "params": {}}])
    assert second.returncode == 0, second.describe()
    assert second.changed() == 0, second.describe()


def test_check_mode_changes_no_byte_and_shows_each_entry_before_and_after(
    debian_target, el7_target, el8_target, el9_target, inventory_path, tmp_path
):
    targets = [debian_target, el7_target, el8_target, el9_target]
    before = {t.name: t.tree_checksums((*WATCHED, "/var/lib")) for t in targets}
    result = run_role(
        tmp_path,
        inventory_path(targets),
        [{"id": "nokmem", "params": {}}, {"id": "pam-lastlog", "params": {}}],
        check=True,
        diff=True,
    )
    assert result.returncode == 0, result.describe()
    for t in targets:
        assert t.tree_checksums((*WATCHED, "/var/lib")) == before[t.name], t.name
    # grubby entries (EL) and the GRUB drop-in (Debian), before and after
    assert (
        f'quiet {NOKMEM}"' in result.output or f"quiet LANG=en_US.UTF-8 {NOKMEM}" in result.output
    )
    assert "+++ after: /etc/default/grub.d/99-memcg-fix.cfg" in result.output
    assert "pam_lastlog.so nowtmp showfailed noupdate" in result.output


def test_pam_lastlog_refuses_when_authselect_check_fails(el9_target, inventory_path, tmp_path):
    # someone edited an authselect-owned file by hand
    generated = "/etc/authselect/postlogin"
    el9_target.write_file(generated, el9_target.read_file(generated) + b"# local edit\n")
    before = el9_target.tree_checksums(("/etc",))
    result = run_role(tmp_path, inventory_path([el9_target]), [{"id": "pam-lastlog", "params": {}}])
    assert result.returncode != 0
    assert "authselect check fails" in result.output
    assert el9_target.tree_checksums(("/etc",)) == before


def test_rollback_restores_every_file_byte_for_byte(
    el7_target, debian_target, inventory_path, tmp_path
):
    targets = [el7_target, debian_target]
    before = {t.name: t.tree_checksums(WATCHED) for t in targets}
    inventory = inventory_path(targets)
    applied = run_role(tmp_path, inventory, [{"id": "pam-lastlog", "params": {}}])
    assert applied.returncode == 0, applied.describe()
    grub_apply = run_role(tmp_path, inventory_path([el7_target]), [{"id": "nokmem", "params": {}}])
    assert grub_apply.returncode == 0, grub_apply.describe()
    assert all(t.tree_checksums(WATCHED) != before[t.name] for t in targets)
    inventory = inventory_path(targets)  # the el7-only run above rewrote the file
    rolled = run_role(tmp_path, inventory, [], memcg_remediate_state="absent")
    assert rolled.returncode == 0, rolled.describe()
    for t in targets:
        after = t.tree_checksums(WATCHED)
        changed = sorted(
            p for p in set(after) | set(before[t.name]) if after.get(p) != before[t.name].get(p)
        )
        assert not changed, f"{t.name}: {changed}"
    again = run_role(tmp_path, inventory, [], memcg_remediate_state="absent")
    assert again.changed() == 0, again.describe()


def test_an_id_outside_the_catalogue_is_refused_before_anything_runs(
    debian_target, inventory_path, tmp_path
):
    before = debian_target.tree_checksums(WATCHED)
    result = run_role(tmp_path, inventory_path([debian_target]), [{"id": "rm-rf", "params": {}}])
    assert result.returncode != 0
    assert "rm-rf" in result.output
    assert debian_target.tree_checksums(WATCHED) == before


def test_a_runc_no_package_owns_becomes_a_manual_step(debian_target, inventory_path, tmp_path):
    debian_target.write_file(
        "/usr/local/bin/runc", "#!/bin/sh\necho 'runc version 1.0.0-rc94'\n", mode=0o755
    )
    # the plan's minimum, not a copy of the default, is what the step names
    # (the role used to say "runc >= 1.0.0-rc94" whatever the plan asked)
    result = run_role(
        tmp_path,
        inventory_path([debian_target]),
        [{"id": "runc-upgrade", "params": {"min_version": "1.1.12", "package": "runc"}}],
    )
    assert result.returncode == 0, result.describe()
    assert ("/usr/local/bin/runc (version 1.0.0-rc94) comes from no package; replace it with "
            "runc >= 1.1.12 by hand") in " ".join(result.output.split())
    # a runc-upgrade without the plan's parameters is refused before anything runs
    before = debian_target.tree_checksums(WATCHED)
    refused = run_role(tmp_path, inventory_path([debian_target]),
                       [{"id": "runc-upgrade", "params": {}}])
    assert refused.returncode != 0
    assert "missing params: runc-upgrade.min_version, runc-upgrade.package" in " ".join(
        refused.output.split())
    assert debian_target.tree_checksums(WATCHED) == before


def test_a_second_run_waits_for_the_host_lock_then_fails_cleanly(
    debian_target, inventory_path, tmp_path
):
    import json
    import time

    debian_target.run(["mkdir", "-p", "/var/lib/memcg-fix"], check=True)
    lock = {"owner": "another-run", "since": time.time(), "pid": 1}
    debian_target.write_file("/var/lib/memcg-fix/lock", json.dumps(lock))
    before = debian_target.tree_checksums(WATCHED)
    result = run_role(
        tmp_path,
        inventory_path([debian_target]),
        [{"id": "pam-lastlog", "params": {}}],
        memcg_remediate_lock_timeout=3,
    )
    assert result.returncode != 0
    assert "another memcg-fix run (another-run" in result.output
    assert debian_target.tree_checksums(WATCHED) == before
    # the other run's lock is still there: we never release what we do not hold
    assert json.loads(debian_target.read_file("/var/lib/memcg-fix/lock"))["owner"] == "another-run"


def test_package_minimums_use_the_hosts_own_version_order(debian_target, inventory_path, tmp_path):
    # memcg_package_status orders versions as dpkg does (the one comparator, hostside.vercmp)
    installed = debian_target.run(
        ["dpkg-query", "-W", "-f", "${Version}", "bash"], check=True
    ).stdout.decode()
    cases = {  # minimum -> is the installed bash at or above it?
        "1.0": True,
        installed: True,
        installed + "~rc1": True,  # "~" sorts before the end of a version
        installed + "1": False,
        "1:" + installed: False,  # an epoch outweighs everything after it
    }
    play = tmp_path / "status.yml"
    play.write_text(
        yaml.safe_dump(
            [
                {
                    "name": "Ask the host whether bash is new enough",
                    "hosts": "targets",
                    "gather_facts": False,
                    "tasks": [
                        {
                            "name": f"Status {i}",
                            "memcg_fix.remediate.memcg_package_status": {
                                "name": "bash",
                                "min_version": minimum,
                            },
                            "become": True,
                            "register": f"status_{i}",
                        }
                        for i, minimum in enumerate(cases)
                    ]
                    + [
                        {
                            "name": "Show",
                            "ansible.builtin.debug": {
                                "msg": "SATISFIED {{ ["
                                + ", ".join(f"status_{i}" for i in range(len(cases)))
                                + "] | map(attribute='satisfied') | list }}"
                            },
                        }
                    ],
                }
            ],
            sort_keys=False,
        )
    )
    result = run_playbook(play, inventory_path([debian_target]))
    assert result.returncode == 0, result.describe()
    assert f"SATISFIED {list(cases.values())}" in result.output
