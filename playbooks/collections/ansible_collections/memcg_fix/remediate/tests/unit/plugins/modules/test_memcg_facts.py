# -*- coding: utf-8 -*-
# memcg_facts on a host root laid out in a temporary directory.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.collect import (
    SCHEMA_VERSION,
)
from ansible_collections.memcg_fix.remediate.plugins.modules import memcg_facts


def test_facts_of_a_host_root_with_what_could_not_be_read(run_module, tmp_path):
    (tmp_path / "etc").mkdir()
    with open(str(tmp_path / "etc" / "os-release"), "w") as handle:
        handle.write('ID=centos\nVERSION_ID="7"\nID_LIKE="rhel fedora"\n')
    (tmp_path / "proc").mkdir()
    with open(str(tmp_path / "proc" / "cmdline"), "w") as handle:
        handle.write("ro quiet cgroup.memory=nokmem\n")
    result, failed = run_module(memcg_facts, root=str(tmp_path), _ansible_check_mode=True)
    assert not failed and result["changed"] is False
    assert result["schema_version"] == SCHEMA_VERSION
    facts = result["facts"]
    assert facts["cmdline"]["nokmem"] is True
    assert facts["collector"]["root"] == str(tmp_path)
    unknown = dict((u["fact"], u["reason"]) for u in result["unknown"])
    assert unknown  # no /sys, no kernel: said why, not guessed
    assert all(reason and "\n" not in reason for reason in unknown.values())
