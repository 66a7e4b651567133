"""How ansible-runner events become a host's outcome (remediate/run.py).

The events are in ansible-runner's documented shape (``event``,
``event_data.host/task/res``); the real sequence this guards against was met
on the VM (tests/integration/test_vm_faults.py): the reboot times out, then
the role's clean-up task finds the host unreachable.
"""

from __future__ import annotations

from pathlib import Path

from remediate.run import RunReport, _Collector
from remediate.runreport import summarize

HOST = "db-1"


def _event(kind: str, task: str, res: dict[str, object]) -> dict[str, object]:
    return {"event": kind, "event_data": {"host": HOST, "task": task, "res": res}}


def test_the_first_failure_stays_the_reason_and_later_ones_are_added():
    collect = _Collector(None)
    collect(_event("runner_on_ok", "Hold the host-side lock", {"changed": False}))
    collect(_event("runner_on_failed", "Reboot to activate the changes",
                   {"msg": "Timed out waiting for last boot time check (timeout=60)"}))
    collect(_event("runner_on_unreachable", "Release the host-side memcg-fix lock",
                   {"msg": "ssh: connect to host 127.0.0.1 port 2222: Connection refused"}))
    outcome = collect.hosts[HOST]
    assert outcome.status == "failed"
    assert outcome.failed_task == "Reboot to activate the changes"
    assert outcome.error == "Timed out waiting for last boot time check (timeout=60)"
    assert outcome.then == "unreachable at 'Release the host-side memcg-fix lock'"
    report = RunReport(rc=2, status="failed", artifacts_dir=Path("."), hosts={HOST: outcome})
    (row,) = summarize(report, [HOST])
    assert row.outcome == "failed"
    assert row.detail == ("Timed out waiting for last boot time check (timeout=60) at 'Reboot to"
                          " activate the changes'; then unreachable at 'Release the host-side"
                          " memcg-fix lock'")


def test_an_unreachable_host_is_reported_as_such():
    collect = _Collector(None)
    collect(_event("runner_on_unreachable", "Collect memcg facts",
                   {"msg": "ssh: Could not resolve hostname db-1"}))
    outcome = collect.hosts[HOST]
    assert (outcome.status, outcome.failed_task) == ("unreachable", "Collect memcg facts")
    assert outcome.error == "unreachable: ssh: Could not resolve hostname db-1"


def test_an_ignored_failure_is_not_a_failure():
    collect = _Collector(None)
    event = _event("runner_on_failed", "Probe", {"msg": "no such file"})
    event["event_data"]["ignore_errors"] = True  # type: ignore[index]
    collect(event)
    assert collect.hosts.get(HOST) is None or collect.hosts[HOST].status != "failed"
