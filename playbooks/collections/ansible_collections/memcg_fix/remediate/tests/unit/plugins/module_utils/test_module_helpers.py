# -*- coding: utf-8 -*-
# The shared module helpers, with real commands and files.
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import sys

import pytest
from ansible_collections.memcg_fix.remediate.plugins.module_utils import module_helpers
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.safeedit import EditError
from ansible_collections.memcg_fix.remediate.plugins.module_utils.module_helpers import (
    ModuleFailure,
)


def test_command_output_or_a_one_line_failure_with_rc_and_stderr():
    assert module_helpers.command_output([sys.executable, "-c", "print('ok')"], 30) == "ok\n"
    with pytest.raises(ModuleFailure) as failure:
        module_helpers.command_output(
            [sys.executable, "-c", "import sys; sys.stderr.write('bad\\n  thing\\n'); sys.exit(3)"], 30)
    assert str(failure.value).endswith("failed (rc=3): bad thing")


def test_a_command_that_cannot_run_is_a_failure_not_a_traceback():
    with pytest.raises(ModuleFailure) as failure:
        module_helpers.run(["memcg-fix-no-such-command"], 30)
    assert "memcg-fix-no-such-command is not installed" in str(failure.value)
    with pytest.raises(ModuleFailure) as failure:
        module_helpers.run([sys.executable, "-c", "import time; time.sleep(30)"], 0.5)
    assert "\n" not in str(failure.value)


def test_read_optional_reads_or_says_none(tmp_path):
    present = tmp_path / "present"
    with open(str(present), "w") as handle:
        handle.write("text\n")
    assert module_helpers.read_optional(str(present)) == "text\n"
    assert module_helpers.read_optional(str(tmp_path / "missing")) is None
    assert module_helpers.read_optional(str(tmp_path)) is None  # a directory


class _Module(object):
    def __init__(self):
        self.ended = None

    def exit_json(self, **result):
        self.ended = ("exit", result)
        raise SystemExit(0)

    def fail_json(self, **result):
        self.ended = ("fail", result)
        raise SystemExit(1)


@pytest.mark.parametrize("error, extra", [
    (ModuleFailure("grubby failed\n(rc=1)", restored=["/etc/a"]), {"restored": ["/etc/a"]}),
    (EditError("/etc/pam.d/login changed since memcg-fix wrote it"), {}),
])
def test_finish_ends_with_the_result_or_a_one_line_failure(error, extra):
    module = _Module()
    with pytest.raises(SystemExit):
        module_helpers.finish(module, lambda: dict(changed=True))
    assert module.ended == ("exit", {"changed": True})

    def work():
        raise error

    with pytest.raises(SystemExit):
        module_helpers.finish(module, work)
    kind, result = module.ended
    assert kind == "fail" and "\n" not in result["msg"]
    assert result == dict(extra, msg=" ".join(str(error).split()))


def test_file_diff_is_what_diff_mode_shows():
    assert module_helpers.file_diff("/etc/x", "a\n", "b\n") == {
        "before_header": "/etc/x", "after_header": "/etc/x", "before": "a\n", "after": "b\n"}
