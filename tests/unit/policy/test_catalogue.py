"""The closed catalogue agrees with its other copies: docs, schema, role."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

from remediate import catalogue
from remediate.policy.schema import plan_schema, policy_schema
from remediate.resources import role_dir

REPO = Path(__file__).resolve().parents[3]


def _design_table() -> dict[str, dict]:
    """Rows of the catalogue table in docs/design.md: id -> {reboot, params}."""
    text = (REPO / "docs" / "design.md").read_text(encoding="utf-8")
    section = text.split("## The mitigation catalogue (closed)", 1)[1]
    rows = {}
    for line in section.splitlines():
        match = re.match(
            r"^\| `([a-z-]+)` \| (.*?) \| (yes|no) \| `tasks/([a-z-]+)\.yml` \|$", line
        )
        if match:
            mid, params, reboot, task = match.groups()
            rows[mid] = {
                "reboot": reboot == "yes",
                "task": task,
                # a parameter is a backticked name followed by " (" or ":"
                "params": re.findall(r"(?:^|, )`([a-z_]+)`(?: \(|:)", params),
                "params_text": params,
            }
    return rows


def test_ids_and_order():
    # the fixed order inside a host plan: kernel first, the global cache drop last
    assert catalogue.ORDER == (
        "kernel-upgrade",
        "nokmem",
        "pam-lastlog",
        "runc-upgrade",
        "reclaim-before-rmdir",
        "drop-caches",
    )
    assert catalogue.IDS == catalogue.ORDER
    assert [catalogue.CATALOGUE[i].order for i in catalogue.ORDER] == list(range(6))


def test_catalogue_matches_the_design_document():
    rows = _design_table()
    assert sorted(rows) == sorted(catalogue.IDS)
    for mid, row in rows.items():
        entry = catalogue.CATALOGUE[mid]
        assert row["task"] == mid
        assert entry.needs_reboot is row["reboot"], mid
        assert [p.name for p in entry.params] == row["params"], mid
        for param in entry.params:
            if param.required:
                assert "required" in row["params_text"], (mid, param.name)
            elif isinstance(param.default, bool):
                assert f"`{param.name}` ({str(param.default).lower()})" in row["params_text"]
            elif isinstance(param.default, int):
                assert f"`{param.name}` ({param.default})" in row["params_text"]
            elif isinstance(param.default, str) and param.kind != "choice":
                assert f"`{param.name}` (`{param.default}`)" in row["params_text"]


def test_schemas_list_exactly_the_catalogue_ids():
    assert policy_schema()["$defs"]["mitigation_id"]["enum"] == list(catalogue.IDS)
    mitigation = plan_schema()["$defs"]["mitigation"]["properties"]
    assert mitigation["id"]["enum"] == list(catalogue.IDS)
    assert mitigation["risk"]["enum"] == list(catalogue.RISKS)
    assert mitigation["disruption"]["enum"] == list(catalogue.DISRUPTIONS)


def test_entries_are_well_formed():
    for entry in catalogue.CATALOGUE.values():
        assert entry.risk in catalogue.RISKS
        assert entry.disruption in catalogue.DISRUPTIONS
        assert (entry.disruption == "reboot") is entry.needs_reboot
        assert set(entry.alternatives) <= set(catalogue.IDS) - {entry.id}
        for param in entry.params:
            if param.default is not None:
                assert catalogue.param_problem(param, param.default) is None, (entry.id, param)


def test_the_role_takes_exactly_these_parameters():
    role_vars = role_dir() / "vars" / "main.yml"
    if not role_vars.exists():
        pytest.skip("the role's vars/main.yml is not in this checkout")
    declared = yaml.safe_load(role_vars.read_text(encoding="utf-8"))["__memcg_remediate_params"]
    assert {k: list(v) for k, v in declared.items()} == {
        m.id: [p.name for p in m.params] for m in catalogue.CATALOGUE.values()
    }
    # what the role requires from the plan is among them, and every plan has
    # it: a required parameter, or one the loader fills in from the
    # catalogue's defaults (so no task keeps a copy of a default)
    required = yaml.safe_load(role_vars.read_text(encoding="utf-8"))[
        "__memcg_remediate_required_params"]
    for mid, names in required.items():
        assert set(names) <= set(declared[mid])
        entry = catalogue.CATALOGUE[mid]
        always = set(entry.defaults()) | {p.name for p in entry.params if p.required}
        assert set(names) <= always, (mid, names)


@pytest.mark.parametrize(
    ("mid", "name", "value", "problem"),
    [
        ("reclaim-before-rmdir", "grace_seconds", -1, "at least 0"),
        ("reclaim-before-rmdir", "grace_seconds", True, "integer"),
        ("reclaim-before-rmdir", "interval", "soon", "time span"),
        ("reclaim-before-rmdir", "interval", "1h 30min", None),
        ("reclaim-before-rmdir", "dry_run", "yes", "true or false"),
        ("drop-caches", "min_interval_seconds", 10, "at least 60"),
        ("runc-upgrade", "min_version", "1.1.12", None),
        ("runc-upgrade", "min_version", "latest", "not a valid upstream version"),
        ("pam-lastlog", "method", "comment", None),
        ("pam-lastlog", "method", "rm", "one of"),
        ("kernel-upgrade", "package", "bash", "one of"),
    ],
)
def test_param_problem(mid, name, value, problem):
    param = catalogue.CATALOGUE[mid].param(name)
    assert param is not None
    found = catalogue.param_problem(param, value)
    if problem is None:
        assert found is None
    else:
        assert found and problem in found


def test_kernel_upgrade_min_version_follows_the_rule_scheme():
    param = catalogue.CATALOGUE["kernel-upgrade"].param("min_version")
    assert param is not None
    assert catalogue.param_problem(param, "6.1.76-1", "dpkg") is None
    assert "dpkg" in (catalogue.param_problem(param, "6.1.76-", "dpkg") or "")
    assert catalogue.param_problem(param, "3.10.0-1127.el7", "rpm") is None
    assert catalogue.param_problem(param, "3.10.0 1127", None)


def test_kernel_upgrade_package_is_left_to_the_role_unless_set():
    assert "package" not in catalogue.CATALOGUE["kernel-upgrade"].defaults()
    assert catalogue.CATALOGUE["runc-upgrade"].defaults() == {
        "min_version": "1.0.0-rc94",
        "package": "runc",
    }
