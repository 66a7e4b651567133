"""The catalogue's parameter checks (its copies: tests/unit/test_catalogue_drift.py)."""

from __future__ import annotations

import pytest

from remediate import catalogue


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
