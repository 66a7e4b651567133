# -*- coding: utf-8 -*-
# memcg_restore on real files and a real backup store.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside import safeedit
from ansible_collections.memcg_fix.remediate.plugins.modules import memcg_restore

ORIGINAL = b"session optional pam_lastlog.so\n"
CHANGED = b"session optional pam_lastlog.so noupdate\n"


def _changed_by_memcg_fix(tmp_path):
    target = tmp_path / "etc" / "pam.d" / "login"
    target.parent.mkdir(parents=True)
    target.write_bytes(ORIGINAL)
    backups = str(tmp_path / "backups")
    safeedit.Backups(backups).write(str(target), CHANGED)
    return target, backups


def test_check_mode_shows_the_diff_and_changes_nothing(run_module, tmp_path):
    target, backups = _changed_by_memcg_fix(tmp_path)
    result, failed = run_module(memcg_restore, backup_dir=backups, _ansible_check_mode=True)
    assert not failed and result["changed"] is True
    assert result["restored"] == [str(target)]
    assert result["diff"] == [{"before_header": str(target), "after_header": str(target),
                               "before": CHANGED.decode(), "after": ORIGINAL.decode()}]
    assert target.read_bytes() == CHANGED


def test_the_original_comes_back_byte_for_byte_and_a_second_run_changes_nothing(
        run_module, tmp_path):
    target, backups = _changed_by_memcg_fix(tmp_path)
    result, failed = run_module(memcg_restore, backup_dir=backups)
    assert not failed and result["changed"] is True
    assert target.read_bytes() == ORIGINAL
    result, failed = run_module(memcg_restore, backup_dir=backups)
    assert not failed and result["changed"] is False and result["restored"] == []


def test_a_file_edited_since_is_refused_unless_forced(run_module, tmp_path):
    target, backups = _changed_by_memcg_fix(tmp_path)
    target.write_bytes(CHANGED + b"# a colleague's line\n")
    result, failed = run_module(memcg_restore, backup_dir=backups)
    assert failed and result["restored"] == []
    assert str(target) in result["msg"] and "\n" not in result["msg"]
    assert target.read_bytes().endswith(b"# a colleague's line\n")
    result, failed = run_module(memcg_restore, backup_dir=backups, force=True)
    assert not failed and target.read_bytes() == ORIGINAL
