"""memcg_kernel_args against the real grubby of EL7, EL8 and EL9.

Each test is one of the defects real grubby showed (issue 12, 1-5), on the
release where it appears: every file grubby writes is backed up, reported and
restored byte for byte (also the files it creates), the check-mode preview is
the real result, an owner's ``cgroup.memory=`` keeps its options, and
/etc/default/grub keeps every line but the one memcg-fix edits.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.hostside.boot import parse_grubby_info
from remediate.resources import COLLECTION
from tests.targets.ansible import run_playbook

pytestmark = pytest.mark.containers

NOKMEM = "cgroup.memory=nokmem"
WATCHED = ("/etc", "/boot")
MODULE = f"{COLLECTION}.memcg_kernel_args"


def kernel_args(tmp_path: Path, inventory: Path, *, check: bool = False,
                **params: Any) -> dict[str, dict[str, Any]]:
    """Run memcg_kernel_args once on every target; its result per host."""
    out = tmp_path / f"results-{len(list(tmp_path.glob('results-*')))}"
    out.mkdir()
    play = [{
        "name": "memcg_kernel_args",
        "hosts": "targets",
        "gather_facts": False,
        "tasks": [
            {"name": "Change the boot arguments", MODULE: {"arg": NOKMEM, **params},
             "become": True, "register": "result", "ignore_errors": True},
            {"name": "Keep the result", "delegate_to": "localhost", "check_mode": False,
             "ansible.builtin.copy": {"content": "{{ result | to_json }}",
                                      "dest": f"{out}/{{{{ inventory_hostname }}}}.json"}},
        ],
    }]
    path = tmp_path / "kernel-args.yml"
    path.write_text(yaml.safe_dump(play, sort_keys=False))
    ran = run_playbook(path, inventory, check=check, diff=True)
    assert ran.returncode == 0, ran.describe()
    return {p.stem: json.loads(p.read_text()) for p in out.glob("*.json")}


def entries(target) -> list[dict[str, Any]]:
    info = target.run(["grubby", "--info=ALL"], check=True).stdout.decode()
    return parse_grubby_info(info)


def entry_args(found: list[dict[str, Any]]) -> list[tuple[str, list[str]]]:
    return [(e["kernel"], e["args"]) for e in found]


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def apply_then_rollback(tmp_path: Path, target, inventory: Path) -> tuple[dict, dict]:
    applied = kernel_args(tmp_path, inventory)[target.name]
    assert not applied.get("failed"), applied
    rolled = kernel_args(tmp_path, inventory, state="absent")[target.name]
    assert not rolled.get("failed"), rolled
    return applied, rolled


def test_el8_rollback_is_byte_for_byte_also_for_what_grubby_created(
        el8_target, inventory_path, tmp_path):
    """Defect 1: grubenv's kernelopts loses its trailing space through
    grub2-editenv, and grubby creates /etc/kernel/cmdline."""
    t = el8_target
    grubenv = t.read_file("/boot/grub2/grubenv")
    assert b"rhgb quiet \n" in grubenv  # as grub2-mkconfig writes kernelopts
    assert not t.exists("/etc/kernel/cmdline")
    before = t.tree_checksums(WATCHED)
    inventory = inventory_path([t])

    preview = kernel_args(tmp_path, inventory, check=True)[t.name]
    applied, rolled = apply_then_rollback(tmp_path, t, inventory)

    for path in ("/boot/grub2/grubenv", "/etc/kernel/cmdline", "/etc/default/grub"):
        assert path in applied["files"], applied["files"]
        assert path in preview["files"], preview["files"]
    assert sorted(preview["files"]) == sorted(applied["files"])
    assert changed_paths(before, t.tree_checksums(WATCHED)) == []
    assert t.read_file("/boot/grub2/grubenv") == grubenv
    assert not t.exists("/etc/kernel/cmdline")
    assert rolled["changed"]


def test_el9_rollback_removes_the_kernel_cmdline_grubby_created(
        el9_target, inventory_path, tmp_path):
    """Defect 2: without /etc/kernel/cmdline, grubby makes one from an entry."""
    t = el9_target
    t.run(["rm", "/etc/kernel/cmdline"], check=True)
    before = t.tree_checksums(WATCHED)
    applied, _rolled = apply_then_rollback(tmp_path, t, inventory_path([t]))
    assert "/etc/kernel/cmdline" in applied["files"]
    assert changed_paths(before, t.tree_checksums(WATCHED)) == []
    assert not t.exists("/etc/kernel/cmdline")


def test_default_grub_keeps_its_other_lines_through_apply_and_rollback(
        el8_target, el9_target, inventory_path, tmp_path):
    """Defect 3: grubby's own sed on ^GRUB_CMDLINE_LINUX also rewrites
    GRUB_CMDLINE_LINUX_DEFAULT, and the module never backed the file up."""
    targets = [el8_target, el9_target]
    for t in targets:
        t.sh("echo 'GRUB_CMDLINE_LINUX_DEFAULT=\"quiet splash\"' >> /etc/default/grub")
    before = {t.name: t.tree_checksums(WATCHED) for t in targets}
    originals = {t.name: t.read_file("/etc/default/grub").decode() for t in targets}
    inventory = inventory_path(targets)

    preview = kernel_args(tmp_path, inventory, check=True)
    applied = kernel_args(tmp_path, inventory)
    for t in targets:
        assert "/etc/default/grub" in preview[t.name]["files"]
        assert "/etc/default/grub" in applied[t.name]["files"]
        text = t.read_file("/etc/default/grub").decode()
        lines = text.splitlines()
        assert 'GRUB_CMDLINE_LINUX_DEFAULT="quiet splash"' in lines
        linux = [ln for ln in lines if ln.startswith("GRUB_CMDLINE_LINUX=")]
        assert len(linux) == 1 and NOKMEM in linux[0]
        # every other line as it was
        others = [ln for ln in originals[t.name].splitlines()
                  if not ln.startswith("GRUB_CMDLINE_LINUX=")]
        assert [ln for ln in lines if not ln.startswith("GRUB_CMDLINE_LINUX=")] == others

    rolled = kernel_args(tmp_path, inventory, state="absent")
    for t in targets:
        assert not rolled[t.name].get("failed"), rolled[t.name]
        assert changed_paths(before[t.name], t.tree_checksums(WATCHED)) == []


@pytest.mark.parametrize("kind", ["el7", "el9"])
def test_an_owners_cgroup_memory_keeps_its_options(kind, target_factory, inventory_path,
                                                   tmp_path):
    """Defect 4: real grubby replaces an argument with the same key, so
    cgroup.memory=nosocket would become cgroup.memory=nokmem."""
    (t,) = target_factory(kind, 1)
    t.run(["grubby", "--update-kernel=ALL", "--args=cgroup.memory=nosocket"], check=True)
    if kind == "el7":  # EL7 grubby leaves the file alone; an owner edits it too
        t.sh("sed -i 's/^GRUB_CMDLINE_LINUX=\"\\(.*\\)\"/GRUB_CMDLINE_LINUX=\"\\1 "
             "cgroup.memory=nosocket\"/' /etc/default/grub")
    owned = entries(t)
    assert all("cgroup.memory=nosocket" in e["args"] for e in owned)
    before = t.tree_checksums(WATCHED)
    inventory = inventory_path([t])

    preview = kernel_args(tmp_path, inventory, check=True)[t.name]
    applied = kernel_args(tmp_path, inventory)[t.name]
    assert not applied.get("failed"), applied
    merged = entries(t)
    for entry in merged:
        assert "cgroup.memory=nosocket,nokmem" in entry["args"], entry
        assert [a for a in entry["args"] if a.startswith("cgroup.memory=")] == [
            "cgroup.memory=nosocket,nokmem"]
    assert entry_args(preview["entries"]) == entry_args(merged)
    default_grub = t.read_file("/etc/default/grub").decode()
    assert default_grub.count("cgroup.memory=") == 1
    assert "cgroup.memory=nosocket,nokmem" in default_grub

    rolled = kernel_args(tmp_path, inventory, state="absent")[t.name]
    assert not rolled.get("failed"), rolled
    assert entry_args(entries(t)) == entry_args(owned)
    assert changed_paths(before, t.tree_checksums(WATCHED)) == []


@pytest.mark.parametrize("kind", ["el8", "el9"])
def test_check_mode_preview_is_the_real_result_on_every_entry(kind, target_factory,
                                                              inventory_path, tmp_path):
    """Defect 5: with $tuned_params in the options (EL8, and EL9 entries that
    tuned's kernel-install rule wrote), the preview put nokmem after it."""
    (t,) = target_factory(kind, 1)
    if kind == "el9":
        t.sh("sed -i '/^options/s/$/ $tuned_params/' /boot/loader/entries/*.conf")
    assert all("$tuned_params" in e["args"] for e in entries(t))
    inventory = inventory_path([t])
    preview = kernel_args(tmp_path, inventory, check=True)[t.name]
    applied = kernel_args(tmp_path, inventory)[t.name]
    assert not applied.get("failed"), applied
    real = entries(t)
    assert all(NOKMEM in e["args"] for e in real)
    assert entry_args(preview["entries"]) == entry_args(real)
    assert entry_args(applied["entries"]) == entry_args(real)
