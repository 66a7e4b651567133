# -*- coding: utf-8 -*-
# memcg_lock on real lock files: one run at a time per host.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import json
import os
import time

from ansible_collections.memcg_fix.remediate.plugins.modules import memcg_lock


def _lock(tmp_path):
    return str(tmp_path / "state" / "lock")


def test_acquire_writes_the_owner_and_release_removes_it(run_module, tmp_path):
    path = _lock(tmp_path)
    result, failed = run_module(memcg_lock, state="acquired", owner="run-1", path=path)
    assert not failed and result["changed"] is False
    with open(path) as handle:
        held = json.load(handle)
    assert held["owner"] == "run-1" and held["expect_reboot"] == 0
    assert oct(os.stat(path).st_mode & 0o777) == oct(0o600)
    _result, failed = run_module(memcg_lock, state="released", owner="run-1", path=path)
    assert not failed and not os.path.exists(path)


def test_another_runs_lock_is_waited_for_then_named(run_module, tmp_path):
    path = _lock(tmp_path)
    run_module(memcg_lock, state="acquired", owner="run-1", path=path)
    result, failed = run_module(memcg_lock, state="acquired", owner="run-2", path=path, timeout=0)
    assert failed
    assert result["holder"] == "run-1"
    assert result["msg"].startswith("another memcg-fix run (run-1, for ")
    # releasing someone else's lock leaves it alone
    run_module(memcg_lock, state="released", owner="run-2", path=path)
    with open(path) as handle:
        assert json.load(handle)["owner"] == "run-1"


def test_a_lock_older_than_its_ttl_is_taken_over(run_module, tmp_path):
    path = _lock(tmp_path)
    run_module(memcg_lock, state="acquired", owner="dead-run", path=path)
    with open(path) as handle:
        held = json.load(handle)
    held["since"] = time.time() - 7200
    with open(path, "w") as handle:
        json.dump(held, handle)
    _result, failed = run_module(memcg_lock, state="acquired", owner="run-2", path=path,
                                 ttl=3600, timeout=0)
    assert not failed
    with open(path) as handle:
        assert json.load(handle)["owner"] == "run-2"


def test_a_lock_from_an_earlier_boot_is_taken_over_after_its_reboot_window():
    held = {"owner": "rebooter", "boot": "old-boot:1", "expect_reboot": 600}
    assert not memcg_lock.ended_with_its_boot(held, "new-boot:1", 599.0)
    assert memcg_lock.ended_with_its_boot(held, "new-boot:1", 600.0)
    assert not memcg_lock.ended_with_its_boot(held, "old-boot:1", 10000.0)  # same boot
    assert not memcg_lock.ended_with_its_boot(held, None, 10000.0)  # boot unknown: keep it


def test_check_mode_writes_nothing(run_module, tmp_path):
    path = _lock(tmp_path)
    _result, failed = run_module(memcg_lock, state="acquired", owner="run-1", path=path,
                                 _ansible_check_mode=True)
    assert not failed and not os.path.exists(os.path.dirname(path))


def test_an_unwritable_lock_directory_is_a_one_line_failure(run_module, tmp_path):
    blocker = tmp_path / "file"
    with open(str(blocker), "w") as handle:
        handle.write("not a directory")
    result, failed = run_module(memcg_lock, state="acquired", owner="run-1",
                                path=str(blocker / "lock"), timeout=0)
    assert failed
    assert "\n" not in result["msg"] and str(blocker) in result["msg"]
