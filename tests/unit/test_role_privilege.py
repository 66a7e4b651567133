"""Least privilege in the memcg_remediate role, read from its task files.

* ``become: true`` is set per task, and only on tasks whose module needs
  root (each such module is listed below with the reason); tasks that only
  compute, check or report (set_fact, assert, debug, include_tasks, stat,
  the read-only package check...) never have it. Every module the role uses
  must be in one list or the other, so a new task forces the question.
* No play memcg-fix ships or renders escalates as a whole (no play-level
  ``become``), and nothing switches to another user (``become_user``).
* Every file, copy and template task that creates something sets an
  explicit owner, group and mode, and no mode is writable by group or others.

On a real Debian target, tests/integration/test_least_privilege.py checks
the installed files with stat and runs the read-only checks without root.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate import policy as policy_api
from remediate.facts import load_facts_files
from remediate.render import PlaybookLoader, render
from remediate.resources import playbooks_dir, role_dir

ROLE = role_dir()
REPO = Path(__file__).resolve().parents[2]

# Task keywords: everything in a task that is not its module.
KEYWORDS = {
    "name", "become", "become_user", "become_method", "register", "when", "loop",
    "loop_control", "vars", "changed_when", "failed_when", "check_mode", "diff", "tags",
    "notify", "ignore_errors", "no_log", "delegate_to", "run_once", "until", "retries",
    "delay", "block", "rescue", "always", "environment", "args", "timeout", "listen",
    "with_items", "throttle",
}

# Modules that need root on the target, and why.
OURS = "memcg_fix.remediate."
NEEDS_ROOT = {
    OURS + "memcg_facts": "reads root-only sources: /proc/slabinfo, the kernel log "
                          "(dmesg_restrict), grub.cfg and grubenv (0600 on EL)",
    OURS + "memcg_facts_raw": "the same collector as memcg_facts (playbooks/gather-raw.yml)",
    OURS + "memcg_lock": "the host-side lock lives in /var/lib/memcg-fix",
    OURS + "memcg_kernel_args": "edits boot entries, /etc/default/grub(.d) and grubenv",
    OURS + "memcg_pam_lastlog": "edits /etc/pam.d and selects authselect profiles",
    OURS + "memcg_restore": "restores files under /etc and /boot from /var/lib/memcg-fix/backups",
    "ansible.builtin.package": "installs packages",
    "ansible.builtin.file": "creates and removes files under /etc, /usr and /var/lib",
    "ansible.builtin.copy": "installs files under /etc, /usr and /var/lib",
    "ansible.builtin.template": "installs the reaper's configuration under /etc",
    "ansible.builtin.systemd_service": "enables system units",
    "ansible.builtin.reboot": "reboots the host",
    "ansible.builtin.command": "only the tasks in COMMANDS_AS_ROOT",
}
COMMANDS_AS_ROOT = {
    "Verify that the reaper's configuration is accepted (dry run of one pass)":
        "runs the reaper as its service does, as root, so the dry run reads what the timer will",
}
# Modules that never need root: they compute, check, report, or read what anyone may read.
NO_ROOT = {
    "ansible.builtin.set_fact", "ansible.builtin.assert", "ansible.builtin.debug",
    "ansible.builtin.include_tasks", "ansible.builtin.import_tasks",
    "ansible.builtin.include_role", "ansible.builtin.group_by", "ansible.builtin.meta",
    "ansible.builtin.fail", "ansible.builtin.stat", "ansible.builtin.set_stats",
    # rpm -q / dpkg-query, `runc --version` and uname: readable by any user
    OURS + "memcg_package_status",
}
FILE_MODULES = {"ansible.builtin.file", "ansible.builtin.copy", "ansible.builtin.template"}


def task_files() -> list[Path]:
    return sorted((ROLE / "tasks").glob("*.yml"))


def tasks_in(items: Any, where: str) -> Iterator[tuple[str, dict[str, Any]]]:
    """Every task, blocks opened (their own keywords are checked as tasks too)."""
    for task in items or []:
        assert isinstance(task, dict), where
        yield where, task
        for section in ("block", "rescue", "always"):
            if section in task:
                yield from tasks_in(task[section], f"{where} > {task.get('name')}")


def module_of(task: dict[str, Any]) -> str | None:
    modules = [key for key in task if key not in KEYWORDS]
    if "block" in task:
        assert not modules, task
        return None
    assert len(modules) == 1, f"cannot tell the module of {task.get('name')!r}: {modules}"
    return modules[0]


def all_tasks() -> list[tuple[str, dict[str, Any]]]:
    out = []
    for path in task_files():
        out.extend(tasks_in(yaml.safe_load(path.read_text()), path.name))
    return out


def test_the_role_has_tasks_to_check():
    tasks = all_tasks()
    assert len(tasks) > 40
    assert {module_of(t) for _w, t in tasks} >= {OURS + "memcg_facts", "ansible.builtin.copy",
                                                 "ansible.builtin.set_fact"}


@pytest.mark.parametrize("path", task_files(), ids=lambda p: p.name)
def test_become_only_where_root_is_needed(path):
    problems = []
    for where, task in tasks_in(yaml.safe_load(path.read_text()), path.name):
        module = module_of(task)
        name = task.get("name")
        become = task.get("become")
        if "become_user" in task or "become_method" in task:
            problems.append(f"{where}: {name}: switches user ({task.get('become_user')})")
        if module is None:  # a block: escalating a whole block hides which task needs it
            if become is not None:
                problems.append(f"{where}: {name}: become on a block")
            continue
        if become not in (None, True):
            problems.append(f"{where}: {name}: become must be true or absent, not {become!r}")
        if module in NEEDS_ROOT:
            if module == "ansible.builtin.command" and name not in COMMANDS_AS_ROOT:
                problems.append(f"{where}: {name}: a command run as root without a reason")
            elif become is not True:
                problems.append(f"{where}: {name}: {module} needs root ({NEEDS_ROOT[module]}) "
                                "but has no become")
        elif module in NO_ROOT:
            if become:
                problems.append(f"{where}: {name}: {module} needs no root but has become")
        else:
            problems.append(f"{where}: {name}: {module} is in neither NEEDS_ROOT nor NO_ROOT")
    assert not problems, "\n".join(problems)


def _modes(task: dict[str, Any], module_args: dict[str, Any]) -> list[str]:
    """The task's mode(s): literal, or taken from each loop item for '{{ item.mode }}'."""
    mode = module_args.get("mode")
    if isinstance(mode, str) and mode.replace(" ", "") == "{{item.mode}}":
        return [str(item["mode"]) for item in task["loop"]]
    return [mode]


@pytest.mark.parametrize("path", task_files(), ids=lambda p: p.name)
def test_every_installed_file_has_explicit_owner_group_and_a_safe_mode(path):
    problems = []
    for where, task in tasks_in(yaml.safe_load(path.read_text()), path.name):
        module = module_of(task)
        if module not in FILE_MODULES:
            continue
        args = task[module]
        name = task.get("name")
        if args.get("state") == "absent":
            continue
        if args.get("owner") != "root" or args.get("group") != "root":
            problems.append(f"{where}: {name}: owner/group {args.get('owner')}:"
                            f"{args.get('group')}, expected root:root")
        for mode in _modes(task, args):
            if not (isinstance(mode, str) and len(mode) == 4 and mode.startswith("0")
                    and set(mode) <= set("01234567")):
                problems.append(f"{where}: {name}: mode {mode!r} is not a quoted octal string")
            elif int(mode, 8) & 0o022:
                problems.append(f"{where}: {name}: mode {mode} is writable by group or others")
    assert not problems, "\n".join(problems)


def _plays_of(text: str) -> list[dict[str, Any]]:
    return yaml.load(text, Loader=PlaybookLoader)


def test_no_play_escalates_as_a_whole():
    facts = REPO / "tests" / "data" / "bad" / "facts" / "good-fleet.json"
    plan = policy_api.evaluate(policy_api.load_default(), load_facts_files([facts]))
    rendered = _plays_of(render(plan))
    gather = [play for name in ("gather.yml", "gather-raw.yml")
              for play in _plays_of((playbooks_dir() / name).read_text())]
    for play in [*rendered, *gather]:
        for key in ("become", "become_user", "become_method"):
            assert key not in play, (play["name"], key)
        for role in play.get("roles", []):
            assert not {"become", "become_user"} & set(role), role
            assert not {k for k in role.get("vars", {}) if k.startswith("ansible_become")}
    for tasks_of_play in (p.get("tasks", []) for p in [*rendered, *gather]):
        for task in tasks_of_play:
            assert "become" not in task or module_of(task) in NEEDS_ROOT, task
    # nor do the role's defaults, vars or metadata set become for every task
    for rel in ("defaults/main.yml", "vars/main.yml", "meta/main.yml"):
        text = (ROLE / rel).read_text()
        assert "become" not in text, rel
