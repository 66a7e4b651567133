"""kernel-upgrade and runc-upgrade for real on the EL targets: Ansible's
package module (dnf) installs test packages from the image's repository, and
the kernels' own scriptlets add their boot entries (EL7: new-kernel-pkg and
grubby --copy-default; EL8/EL9: kernel-install). tests/targets/el_packages.py
builds the packages."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.hostside.boot import parse_grubby_info
from remediate.resources import COLLECTION, ROLE_FQCN
from tests.targets.ansible import PlaybookResult, run_playbook
from tests.targets.el_packages import EL_PACKAGES, Build
from tests.targets.target import write_inventory

pytestmark = pytest.mark.containers

NOKMEM = "cgroup.memory=nokmem"
KINDS = ("el7", "el8", "el9")


def newest_kernel(kind: str) -> Build:
    return EL_PACKAGES[kind].newer_kernels[-1]


def inventory(tmp_path: Path, targets, mitigations: dict[str, list[dict[str, Any]]],
              name: str = "inventory.yml") -> Path:
    """One inventory; each host gets its own mitigations (host vars)."""
    path = write_inventory(targets, tmp_path / name)
    data = yaml.safe_load(path.read_text())
    hosts = data["all"]["children"]["targets"]["hosts"]
    for host, host_vars in hosts.items():
        host_vars["memcg_remediate_mitigations"] = mitigations.get(host, [])
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def run_role(tmp_path: Path, inv: Path, *, check: bool = False,
             **role_vars: Any) -> PlaybookResult:
    play = [{"name": "memcg_remediate", "hosts": "targets", "gather_facts": False,
             "roles": [{"role": ROLE_FQCN, "vars": role_vars}]}]
    path = tmp_path / "role.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    return run_playbook(path, inv, check=check, diff=check)


def facts(tmp_path: Path, inv: Path) -> dict[str, dict[str, Any]]:
    out = tmp_path / f"facts-{len(list(tmp_path.glob('facts-*')))}"
    out.mkdir()
    play = [{"name": "facts", "hosts": "targets", "gather_facts": False, "tasks": [
        {"name": "Facts", f"{COLLECTION}.memcg_facts": {}, "become": True, "register": "f"},
        {"name": "Keep", "delegate_to": "localhost",
         "ansible.builtin.copy": {"content": "{{ f.facts | to_json }}",
                                  "dest": f"{out}/{{{{ inventory_hostname }}}}.json"}}]}]
    path = tmp_path / "facts.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    ran = run_playbook(path, inv)
    assert ran.returncode == 0, ran.describe()
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def entries(target) -> list[dict[str, Any]]:
    return parse_grubby_info(target.run(["grubby", "--info=ALL"], check=True).stdout.decode())


def default_entry(target) -> dict[str, Any]:
    index = int(target.sh("grubby --default-index").strip())
    return next(e for e in entries(target) if e["index"] == index)


def el_targets(target_factory) -> list:
    return [target_factory(kind, 1)[0] for kind in KINDS]


def upgrade(kind: str) -> dict[str, Any]:
    new = newest_kernel(kind)
    return {"id": "kernel-upgrade", "params": {"min_version": f"{new.version}-{new.release}"}}


def test_kernel_upgrade_with_nokmem_in_one_run(target_factory, tmp_path):
    targets = el_targets(target_factory)
    inv = inventory(tmp_path, targets, {
        t.name: [upgrade(t.kind), {"id": "nokmem", "params": {}}] for t in targets})
    first = run_role(tmp_path, inv)
    assert first.returncode == 0, first.describe()
    found = facts(tmp_path, inv)
    for t in targets:
        new = newest_kernel(t.kind)
        default = default_entry(t)
        assert default["release"] == new.kernel_release, (t.kind, default)
        assert all(NOKMEM in e["args"] for e in entries(t)), t.kind
        assert found[t.name]["kernels"]["default"] == new.kernel_release
        assert new.kernel_release in found[t.name]["kernels"]["installed"]
        assert found[t.name]["boot"]["nokmem_all_entries"] is True
    again = run_role(tmp_path, inv)
    assert again.returncode == 0 and again.changed() == 0, again.describe()


def test_a_kernel_installed_after_nokmem_gets_it_and_rollback_takes_it_away(
        target_factory, tmp_path):
    targets = el_targets(target_factory)
    originals = {t.name: {p: t.read_file(p) for p in ("/etc/default/grub", "/boot/grub2/grubenv")}
                 for t in targets}
    nokmem = run_role(tmp_path, inventory(tmp_path, targets, {
        t.name: [{"id": "nokmem", "params": {}}] for t in targets}))
    assert nokmem.returncode == 0, nokmem.describe()
    inv = inventory(tmp_path, targets, {t.name: [upgrade(t.kind)] for t in targets})
    upgraded = run_role(tmp_path, inv)
    assert upgraded.returncode == 0, upgraded.describe()
    found = facts(tmp_path, inv)
    for t in targets:
        new = newest_kernel(t.kind)
        default = default_entry(t)
        # EL7: --copy-default of an entry with nokmem; EL8: $kernelopts;
        # EL9: /etc/kernel/cmdline, which grubby updated
        assert default["release"] == new.kernel_release and NOKMEM in default["args"], (
            t.kind, default)
        assert found[t.name]["kernels"]["default"] == new.kernel_release

    rolled = run_role(tmp_path, inv, memcg_remediate_state="absent",
                      memcg_remediate_mitigations=[])
    assert rolled.returncode == 0, rolled.describe()
    for t in targets:
        assert not any("nokmem" in " ".join(e["args"]) for e in entries(t)), t.kind
        assert default_entry(t)["release"] == newest_kernel(t.kind).kernel_release
        assert t.read_file("/etc/default/grub") == originals[t.name]["/etc/default/grub"]
        if t.kind == "el8":
            # the new default is kept; kernelopts is back as it was, trailing space and all
            kernelopts = [line for line in t.read_file("/boot/grub2/grubenv").split(b"\n")
                          if line.startswith(b"kernelopts=")]
            was = [line for line in originals[t.name]["/boot/grub2/grubenv"].split(b"\n")
                   if line.startswith(b"kernelopts=")]
            assert kernelopts == was


def test_runc_upgrade_through_dnf(target_factory, tmp_path):
    targets = el_targets(target_factory)
    for t in targets:
        t.sh(f"dnf -y -q install runc-{EL_PACKAGES[t.kind].runc_old.evr.split(':')[-1]}")
    inv = inventory(tmp_path, targets, {t.name: [
        {"id": "runc-upgrade", "params": {"min_version": "1.0.0-rc94", "package": "runc"}}]
        for t in targets})
    before = {name: f["runc"]["version"] for name, f in facts(tmp_path, inv).items()}
    for t in targets:
        assert before[t.name].startswith("1.0.0-rc") and before[t.name] != "1.0.0-rc94"
    checked = run_role(tmp_path, inv, check=True)
    assert checked.returncode == 0, checked.describe()
    for t in targets:
        assert t.sh("runc --version").split()[2] == before[t.name]
    applied = run_role(tmp_path, inv)
    assert applied.returncode == 0, applied.describe()
    after = facts(tmp_path, inv)
    for t in targets:
        new = EL_PACKAGES[t.kind].runc_new
        assert after[t.name]["runc"]["version"] == ("1.0.0-rc94" if t.kind == "el7" else "1.1.12")
        assert t.sh("rpm -q --qf '%{VERSION}-%{RELEASE}' runc") == f"{new.version}-{new.release}"


def test_runc_upgrade_uses_the_plans_minimum(target_factory, tmp_path):
    el9, el8 = target_factory("el9", 1)[0], target_factory("el8", 1)[0]
    el9.sh("dnf -y -q install runc-" + EL_PACKAGES["el9"].runc_old.evr.split(":")[-1])
    el8.write_file("/usr/local/bin/runc", "#!/bin/sh\necho 'runc version 1.0.0-rc10'\n",
                   mode=0o755)
    wanted = {"id": "runc-upgrade", "params": {"min_version": "1.2.0", "package": "runc"}}
    inv = inventory(tmp_path, [el9, el8], {el9.name: [wanted], el8.name: [wanted]})
    result = run_role(tmp_path, inv)
    # the repository's newest (1.1.12) is below the plan's minimum: el9 fails, naming it
    assert result.stats[el9.name]["failed"] == 1, result.describe()
    assert "nothing at or above 1.2.0" in result.output
    # a runc no package owns: the manual step names the plan's minimum
    assert result.stats[el8.name]["failed"] == 0, result.describe()
    assert "replace it with runc >= 1.2.0 by hand" in result.output

    missing = inventory(tmp_path, [el8], {el8.name: [
        {"id": "runc-upgrade", "params": {"package": "runc"}}]}, name="missing.yml")
    refused = run_role(tmp_path, missing)
    assert refused.returncode != 0
    assert "missing params: runc-upgrade.min_version" in refused.output
