"""Ansible callback for the benchmarks: one JSON line per task start and result.

Enabled only by the bench scripts (``ANSIBLE_CALLBACKS_ENABLED=bench_tasks``
with ``ANSIBLE_CALLBACK_PLUGINS`` pointing here); it writes to the file named
by ``MEMCG_FIX_BENCH_TASKS``. The scripts count module runs per host from it
and read how long each task took on each host.
"""

from __future__ import annotations

import json
import os
import time

from ansible.plugins.callback import CallbackBase

DOCUMENTATION = """
name: bench_tasks
type: aggregate
short_description: JSON lines of task starts and results, for memcg-fix benchmarks
description:
  - Appends one JSON object per task start and per task result to the file named by the
    MEMCG_FIX_BENCH_TASKS environment variable.
"""


class CallbackModule(CallbackBase):
    CALLBACK_VERSION = 2.0
    CALLBACK_TYPE = "aggregate"
    CALLBACK_NAME = "bench_tasks"
    CALLBACK_NEEDS_ENABLED = True

    def __init__(self) -> None:
        super().__init__()
        path = os.environ.get("MEMCG_FIX_BENCH_TASKS")
        self._out = open(path, "a", encoding="utf-8") if path else None

    def _write(self, kind: str, host: object, task: object, **extra: object) -> None:
        if self._out is None:
            return
        record = {
            "event": kind,
            "time": time.time(),
            "host": getattr(host, "name", str(host)),
            "action": getattr(task, "action", None),
            "task": getattr(task, "name", None),
            **extra,
        }
        self._out.write(json.dumps(record) + "\n")
        self._out.flush()

    def v2_runner_on_start(self, host, task):  # type: ignore[no-untyped-def]
        self._write("start", host, task)

    def _result(self, kind: str, result) -> None:  # type: ignore[no-untyped-def]
        res = getattr(result, "_result", {}) or {}
        self._write(kind, result._host, result._task, changed=bool(res.get("changed")),
                    rebooted=bool(res.get("rebooted")))

    def v2_runner_on_ok(self, result):  # type: ignore[no-untyped-def]
        self._result("ok", result)

    def v2_runner_on_failed(self, result, ignore_errors=False):  # type: ignore[no-untyped-def]
        self._result("failed", result)

    def v2_runner_on_unreachable(self, result):  # type: ignore[no-untyped-def]
        self._result("unreachable", result)

    def v2_runner_on_skipped(self, result):  # type: ignore[no-untyped-def]
        self._result("skipped", result)

    def v2_playbook_on_include(self, included_file):  # type: ignore[no-untyped-def]
        for host in included_file._hosts:
            self._write("include", host, included_file._task)
