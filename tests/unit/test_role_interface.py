"""The role's interface stays in step: defaults, argument specs, README, catalogue.

linux-system-roles' bootloader README and variables drifted apart; these
tests are what would have caught it.
"""

from __future__ import annotations

import ast
import re
from pathlib import Path

import yaml

from remediate.resources import collection_dir, role_dir

ROLE = role_dir()
OUTPUT_VARS = {"memcg_remediate_reboot_required"}


def _load(relative: str):
    return yaml.safe_load((ROLE / relative).read_text())


def _specs() -> dict:
    return _load("meta/argument_specs.yml")["argument_specs"]["main"]["options"]


def test_every_default_is_in_the_argument_specs_with_the_same_default():
    defaults = _load("defaults/main.yml")
    specs = _specs()
    assert set(defaults) <= set(specs), set(defaults) - set(specs)
    for name, value in defaults.items():
        assert specs[name].get("default") == value, name
    # only documented inputs without a default may be missing from defaults
    assert set(specs) - set(defaults) == {"memcg_remediate_run_id"}


def test_the_readme_documents_every_public_variable_with_its_default():
    readme = (ROLE / "README.md").read_text()
    rows = dict(re.findall(r"^\| `(memcg_remediate_\w+)` \| ([^|]+) \|", readme, re.M))
    defaults = _load("defaults/main.yml")
    assert set(rows) == set(_specs()), set(rows) ^ set(_specs())
    for name, value in defaults.items():
        shown = rows[name].strip().strip("`")
        assert shown == (str(value).lower() if isinstance(value, bool) else str(value)), name


def _task_files_text() -> str:
    return "\n".join(p.read_text() for p in sorted((ROLE / "tasks").glob("*.yml")))


def test_tasks_use_only_documented_public_variables_and_defined_private_ones():
    text = _task_files_text() + (ROLE / "templates" / "reaper.conf.j2").read_text()
    public = set(re.findall(r"\b(memcg_remediate_\w+)", text)) - OUTPUT_VARS
    assert public <= set(_specs()), public - set(_specs())
    private_used = set(re.findall(r"\b(__memcg_remediate_\w+)", text))
    defined = set(_load("vars/main.yml"))
    defined |= set(re.findall(r"register: (__memcg_remediate_\w+)", text))
    defined |= set(re.findall(r"^\s+(__memcg_remediate_\w+):", text, re.M))  # set_fact / vars
    defined |= set(re.findall(r"loop_var: (__memcg_remediate_\w+)", text))
    assert private_used <= defined, private_used - defined


def _relative_imports(module: Path) -> set[str]:
    tree = ast.parse(module.read_text())
    found = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.level == 1:
            if node.module:
                found.add(node.module.split(".")[0] + ".py")
            else:
                found.update(alias.name + ".py" for alias in node.names)
    return found


def test_the_installed_host_package_holds_the_import_closure_of_the_helpers():
    hostside = collection_dir() / "plugins" / "module_utils" / "hostside"
    installed = set(_load("vars/main.yml")["__memcg_remediate_host_modules"])
    todo, closure = ["rmdir.py", "reaper.py"], {"__init__.py"}
    while todo:
        name = todo.pop()
        if name in closure:
            continue
        closure.add(name)
        todo.extend(_relative_imports(hostside / name))
    assert closure == installed, closure ^ installed
