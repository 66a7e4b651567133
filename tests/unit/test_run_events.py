"""How ansible-runner events become a host's outcome (remediate/run.py).

The events are in ansible-runner's documented shape (``event``,
``event_data.host/task/res``); the real sequence this guards against was met
on the VM (tests/integration/test_vm_faults.py): the reboot times out, then
the role's clean-up task finds the host unreachable.
"""

from __future__ import annotations

from pathlib import Path

from remediate.render import RESULTS_STAT
from remediate.run import Progress, RunReport, _Collector, recorded_stats, run_playbook
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


def test_each_hosts_result_comes_from_the_stats_ansible_runner_recorded(tmp_path):
    """A real run (local connection): the role records results with set_stats;
    run_playbook reads them from the playbook_on_stats event ansible-runner
    keeps in the artifacts (AWX's job artifacts), not from a task's output."""
    inventory = tmp_path / "hosts.ini"
    inventory.write_text("h1 ansible_connection=local\nh2 ansible_connection=local\n"
                         "h3 ansible_connection=local\n")
    playbook = tmp_path / "play.yml"
    playbook.write_text(f"""\
- name: Record results as the role does
  hosts: all
  gather_facts: false
  tasks:
    - name: Fail on h3 before it records anything
      ansible.builtin.fail:
        msg: broken
      when: inventory_hostname == 'h3'
    - name: Add the result to the run's stats
      ansible.builtin.set_stats:
        data:
          {RESULTS_STAT}: "{{{{ {{inventory_hostname: {{'changed': ['nokmem'], 'verified': true,
                                                          'rebooted': false}}}} }}}}"
        per_host: false
        aggregate: true
""")
    progress: list[Progress] = []
    report = run_playbook(playbook, [str(inventory)], data_dir=tmp_path / "run",
                          on_event=progress.append)
    expected = {"changed": ["nokmem"], "verified": True, "rebooted": False}
    assert report.hosts["h1"].result == expected
    assert report.hosts["h2"].result == expected
    assert report.hosts["h3"].status == "failed" and report.hosts["h3"].result == {}
    assert recorded_stats(report.artifacts_dir) == {RESULTS_STAT: {"h1": expected,
                                                                   "h2": expected}}
    # progress is told as each host records its result
    lines = {(p.host, p.text) for p in progress if p.kind == "host"}
    assert ("h1", "changed nokmem; verified") in lines


def test_a_run_without_recorded_stats_has_no_results(tmp_path):
    assert recorded_stats(tmp_path / "missing") == {}
    events = tmp_path / "job_events"
    events.mkdir()
    (events / "1-a.json").write_text('{"event": "playbook_on_start"}')
    (events / "2-b.json").write_text("{not json")
    assert recorded_stats(tmp_path) == {}


def test_a_run_that_ends_before_its_stats_keeps_what_each_host_recorded():
    """The set_stats task's own event (its shape as ansible-core reports it)
    gives the host's result before the run's final stats, which a killed
    run never writes."""
    collect = _Collector(None)
    result = {"changed": ["nokmem"], "verified": False, "reboot_required": True}
    collect({"event": "runner_on_ok", "event_data": {
        "host": HOST, "task": "Add the result to the run's stats (memcg_fix_results)",
        "task_action": "ansible.builtin.set_stats",
        "res": {"changed": False, "ansible_stats": {
            "data": {RESULTS_STAT: {HOST: result}}, "per_host": False, "aggregate": True}}}})
    assert collect.hosts[HOST].result == result
    assert collect.hosts[HOST].reboot_required
