"""Least privilege on a real Debian target (the task files are checked in
tests/unit/test_role_privilege.py).

* Every file the role creates or changes, found by comparing the target's
  trees before and after an apply (and after one real pass of the reaper
  through systemd), is owned by root and writable by root only: the reaper's
  configuration and its node_exporter textfile included.
* The checks the role runs without ``become`` (the read-only package check)
  give the same answers as the ssh user as they do as root.
"""

from __future__ import annotations

import stat
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.resources import ROLE_FQCN, role_dir
from tests.targets.ansible import run_playbook

pytestmark = pytest.mark.containers

ROLE = role_dir()
WATCHED = ("/etc", "/usr/local", "/usr/lib/memcg-fix", "/var/lib")
TEXTFILE = "/var/lib/node_exporter/textfile_collector/memcg_fix.prom"
CONFIG = "/etc/memcg-fix/reaper.conf"


def _write_play(path: Path, plays: list[dict[str, Any]]) -> Path:
    path.write_text(yaml.safe_dump(plays, sort_keys=False))
    return path


def _stat(target, paths: list[str]) -> dict[str, tuple[str, str, int, str]]:
    """{path: (owner, group, mode, type)} as the target's stat(1) reports them."""
    out = target.run(["stat", "-c", "%U\t%G\t%f\t%F\t%n", "--", *paths], check=True).stdout
    found = {}
    for line in out.decode().splitlines():
        owner, group, raw_mode, kind, name = line.split("\t", 4)
        found[name] = (owner, group, int(raw_mode, 16), kind)
    return found


def test_files_the_role_installs_are_root_owned_and_not_world_writable(
        debian_target, inventory_path, tmp_path):
    target = debian_target
    before = target.tree_checksums(WATCHED, metadata=True)
    play = _write_play(tmp_path / "apply.yml", [{
        "name": "Apply memcg_remediate with the reaper (observe only) and pam-lastlog",
        "hosts": "targets",
        "gather_facts": False,
        "roles": [{"role": ROLE_FQCN, "vars": {"memcg_remediate_mitigations": [
            {"id": "pam-lastlog", "params": {"method": "noupdate"}},
            {"id": "reclaim-before-rmdir", "params": {"dry_run": True}},
        ]}}],
    }])
    result = run_playbook(play, inventory_path([target]))
    assert result.returncode == 0, result.describe()
    # one real pass of the reaper, the way its timer starts it (observe mode:
    # it reclaims nothing), so its textfile exists
    target.run(["systemctl", "start", "memcg-fix-reaper.service"], check=True, timeout=300)
    after = target.tree_checksums(WATCHED, metadata=True)
    touched = sorted(p for p in after if before.get(p) != after[p])
    assert CONFIG in touched and TEXTFILE in touched, touched
    assert "/etc/pam.d/login" in touched  # pam-lastlog edited it
    info = _stat(target, touched)
    problems = []
    for path, (owner, group, mode, _kind) in info.items():
        if stat.S_ISLNK(mode):
            continue
        if (owner, group) != ("root", "root"):
            problems.append(f"{path}: owned by {owner}:{group}")
        if mode & 0o022:
            problems.append(f"{path}: mode {stat.filemode(mode)} is writable by group or others")
    assert not problems, "\n".join(problems)
    # the two the issue names, exactly
    assert stat.S_IMODE(info[TEXTFILE][2]) == 0o644, stat.filemode(info[TEXTFILE][2])
    assert stat.S_IMODE(info[CONFIG][2]) == 0o644, stat.filemode(info[CONFIG][2])
    assert target.read_file(TEXTFILE).startswith(b"# HELP ")
    # an edited file keeps the mode and owner it had
    assert _stat(target, ["/etc/pam.d/login"])["/etc/pam.d/login"][:3] == (
        "root", "root", stat.S_IFREG | 0o644)


def test_the_read_only_package_check_gives_the_same_answers_without_root(
        debian_target, inventory_path, tmp_path):
    checks = [
        {"name": "bash", "min_version": "1.0", "binary": "bash"},
        {"name": "bash", "min_version": "99:1.0"},
        {"name": "runc", "min_version": "1.0.0-rc94", "binary": "runc"},
        {"name": "linux-image-amd64", "min_version": "6.1.0", "kernel": True},
    ]
    tasks = []
    for become in (False, True):
        for index, args in enumerate(checks):
            tasks.append({"name": f"Check {index} (become {become})",
                          "memcg_fix.remediate.memcg_package_status": args, "become": become,
                          "register": f"check_{index}_{'root' if become else 'user'}"})
    tasks.append({"name": "Show", "ansible.builtin.debug": {"msg": {
        f"{i}_{who}": f"{{{{ check_{i}_{who} | dict2items | rejectattr('key', 'in', "
                      f"['invocation', 'changed']) | items2dict }}}}"
        for i in range(len(checks)) for who in ("user", "root")}}})
    tasks.append({"name": "Who ran the checks", "ansible.builtin.command": "id -un",
                  "register": "whoami", "changed_when": False})
    tasks.append({"name": "The same answers as root and as the ssh user",
                  "ansible.builtin.assert": {"that": [
                      f"check_{i}_user | dict2items | rejectattr('key', 'in', ['invocation']) "
                      f"| list == check_{i}_root | dict2items "
                      f"| rejectattr('key', 'in', ['invocation']) | list"
                      for i in range(len(checks))] + [
                      "check_0_user.satisfied", "not check_1_user.satisfied",
                      "whoami.stdout == 'tester'"]}})
    play = _write_play(tmp_path / "checks.yml", [{
        "name": "The package checks with and without root", "hosts": "targets",
        "gather_facts": False, "tasks": tasks}])
    result = run_playbook(play, inventory_path([debian_target]))
    assert result.returncode == 0, result.describe()
