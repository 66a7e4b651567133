# -*- coding: utf-8 -*-
# Runs a module's main() in-process, as ansible-test's units do: the module
# reads its arguments the way AnsibleModule does, and exit_json/fail_json end
# the run with an exception that carries the result (instead of exiting).
from __future__ import absolute_import, division, print_function

__metaclass__ = type

import contextlib
import json

import pytest
from ansible.module_utils import basic
from ansible.module_utils.common.text.converters import to_bytes


class ModuleExit(Exception):
    def __init__(self, result, failed):
        super(ModuleExit, self).__init__(result.get("msg", ""))
        self.result = result
        self.failed = failed


@contextlib.contextmanager
def _module_args(args):
    try:  # ansible-core 2.19 and later
        from ansible.module_utils.testing import patch_module_args
    except ImportError:  # 2.16: AnsibleModule reads basic._ANSIBLE_ARGS
        basic._ANSIBLE_ARGS = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": args}))
        try:
            yield
        finally:
            basic._ANSIBLE_ARGS = None
    else:
        with patch_module_args(args):
            yield


@pytest.fixture
def run_module(monkeypatch):
    """run_module(module, **args) -> (result, failed)."""

    def exit_json(self, **result):
        raise ModuleExit(result, failed=False)

    def fail_json(self, msg, **result):
        result["msg"] = msg
        raise ModuleExit(result, failed=True)

    monkeypatch.setattr(basic.AnsibleModule, "exit_json", exit_json)
    monkeypatch.setattr(basic.AnsibleModule, "fail_json", fail_json)

    def run(module, **args):
        with _module_args(args):
            with pytest.raises(ModuleExit) as ended:
                module.main()
        return ended.value.result, ended.value.failed

    return run
