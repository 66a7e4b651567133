"""Every copy of the mitigation catalogue agrees with remediate/catalogue.py.

The one test a new mitigation must pass (docs/extending.md): the generated
parts of the schemas, the role's argument specs and vars, and the docs tables
are what tests/catalogue_files.py writes from the catalogue; the hand-written
places (a task file per id, the role README's row, the parameters the role
requires, the playbook header) name the same ids, order and parameters.
"""

from __future__ import annotations

import re

import pytest
import yaml

from remediate import catalogue
from remediate.plan import Plan, PolicyRef
from remediate.render import render
from remediate.resources import role_dir
from tests import catalogue_files

ROLE = role_dir()


@pytest.mark.parametrize("path", sorted(catalogue_files.GENERATED))
def test_the_generated_copies_are_what_the_catalogue_says(path):
    now, wanted = catalogue_files.expected()[path]
    assert now == wanted, (
        f"{path} drifted from remediate/catalogue.py: run {catalogue_files.WRITE_COMMAND}"
    )


def test_the_order_is_the_catalogue_entries_order_and_each_id_has_its_task_file():
    assert catalogue.ORDER == catalogue.IDS
    assert [catalogue.CATALOGUE[i].order for i in catalogue.ORDER] == list(
        range(len(catalogue.ORDER))
    )
    for mid in catalogue.ORDER:
        assert (ROLE / "tasks" / f"{mid}.yml").is_file(), f"tasks/{mid}.yml is missing"


def test_the_role_readme_has_one_row_per_mitigation_in_order():
    """The hand-written docs line: what the role does for each id, with its
    parameters and reboot as the catalogue has them."""
    readme = (ROLE / "README.md").read_text(encoding="utf-8")
    rows = re.findall(r"^\| `([a-z-]+)` \| (.*?) \| .*? \| (yes|no) \|$", readme, re.M)
    assert [mid for mid, _params, _reboot in rows] == list(catalogue.ORDER)
    for mid, params, reboot in rows:
        entry = catalogue.CATALOGUE[mid]
        assert (reboot == "yes") is entry.needs_reboot, mid
        # parameter names in backticks; their values are in parentheses
        names = re.findall(r"`([a-z_]+)`", re.sub(r"\([^)]*\)", "", params))
        assert names == [p.name for p in entry.params], mid


def test_what_the_role_requires_every_plan_carries():
    """A parameter the role's tasks take without a default of their own is
    required by the catalogue or defaulted by it (so no task keeps a copy)."""
    role_vars = yaml.safe_load((ROLE / "vars" / "main.yml").read_text(encoding="utf-8"))
    for mid, names in role_vars["__memcg_remediate_required_params"].items():
        entry = catalogue.CATALOGUE[mid]
        always = set(entry.defaults()) | {p.name for p in entry.params if p.required}
        assert set(names) <= always, (mid, names)


def test_the_playbook_header_states_the_catalogue_order():
    plan = Plan(PolicyRef("p", "1", ""), hosts=())
    header = " ".join(
        line.lstrip("#").strip() for line in render(plan).splitlines() if line.startswith("#")
    )
    assert "order on each host: " + ", ".join(catalogue.ORDER) + ", then reboot" in header


def test_entries_are_well_formed():
    for entry in catalogue.CATALOGUE.values():
        assert entry.risk in catalogue.RISKS
        assert entry.disruption in catalogue.DISRUPTIONS
        assert (entry.disruption == "reboot") is entry.needs_reboot
        assert set(entry.alternatives) <= set(catalogue.IDS) - {entry.id}
        for param in entry.params:
            if param.default is not None:
                assert catalogue.param_problem(param, param.default) is None, (entry.id, param)


def test_a_drifted_copy_is_caught():
    """The check can fail: an id missing from a copy is reported."""
    text = (catalogue_files.REPO / "remediate/schemas/policy.schema.json").read_text()
    edited = text.replace('"drop-caches"', '"drop-cache"', 1)
    assert edited != text
    assert catalogue_files.GENERATED["remediate/schemas/policy.schema.json"](edited) == text
