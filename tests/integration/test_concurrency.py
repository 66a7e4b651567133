"""Concurrent runs: two applies against one host never change it at once.

The role takes a host-side lock (``memcg_lock``, /var/lib/memcg-fix/lock)
around everything it does. These tests run real ``memcg-fix apply``
processes at the same time against one EL7 container and prove:

* a second apply waits for the lock and then finds nothing left to do, and a
  third one with a short lock timeout fails cleanly, naming the holder, and
  changes nothing;
* the host ends consistent: every file is the complete new version, every
  boot entry carries the argument exactly once, the backup manifest is valid
  JSON holding the true originals, and no lock or temporary file is left;
* a lock left by a run whose host restarted under it (every process of that
  run is gone) is taken over at once by the next run, instead of blocking the
  host until the lock's ttl.

To hold the first run inside the lock for as long as the test needs, grubby
on the target is wrapped (below) so that a boot-entry update waits for a gate
file the test removes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from pathlib import Path
from typing import Any

import pytest

from remediate.hostside import bootargs, pamedit
from tests.targets.ansible import ansible_env
from tests.targets.target import ContainerTarget, write_inventory

pytestmark = pytest.mark.containers

NOKMEM = "cgroup.memory=nokmem"
STATE_DIR = "/var/lib/memcg-fix"
LOCK = STATE_DIR + "/lock"
MANIFEST = STATE_DIR + "/backups/manifest.json"
LOCK_TASK = "Take the host-side memcg-fix lock"
GATE = "/run/memcg-fix-test-gate"
BUSY = "/run/memcg-fix-test-grubby-busy"

SITE_POLICY = Path(__file__).resolve().parents[1] / "data" / "policies" / "el-site.yaml"

GATED_GRUBBY = f"""#!/bin/sh
# Test wrapper around the real grubby: a boot-entry update waits while the
# gate file exists, so that a test can hold a run inside the host-side lock.
case " $* " in
  *" --update-kernel"*)
    touch {BUSY}
    n=0
    while [ -e {GATE} ] && [ $n -lt 600 ]; do sleep 0.5; n=$((n + 1)); done ;;
esac
exec /usr/sbin/grubby.real "$@"
"""


class Background:
    """`memcg-fix ARGS` running in the background, its output kept in files."""

    def __init__(self, *args: str, log: Path) -> None:
        self.out_path, self.err_path = log.with_suffix(".out"), log.with_suffix(".err")
        with open(self.out_path, "w") as out, open(self.err_path, "w") as err:
            self.proc = subprocess.Popen([sys.executable, "-m", "remediate", *args],
                                         stdout=out, stderr=err, text=True, env=ansible_env())

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()  # our own child, by its pid
            self.proc.wait()

    def finish(self, timeout: float = 900) -> tuple[int, str, str]:
        try:
            self.proc.wait(timeout=timeout)
        except subprocess.TimeoutExpired:
            self.stop()
            raise
        return self.proc.returncode, self.out_path.read_text(), self.err_path.read_text()


def events_of(out: Path, ident: str = "apply") -> list[dict[str, Any]]:
    found = []
    for path in sorted((out / "artifacts" / ident / "job_events").glob("*.json")):
        try:
            found.append(json.loads(path.read_text()))
        except (OSError, ValueError):
            continue
    return found


def lock_result(out: Path) -> dict[str, Any] | None:
    """What the lock task returned (or failed with) in the run kept in ``out``."""
    for event in events_of(out):
        data = event.get("event_data") or {}
        if data.get("task") == LOCK_TASK and event.get("event") in ("runner_on_ok",
                                                                    "runner_on_failed"):
            return {"event": event["event"], **(data.get("res") or {})}
    return None


def wait_until(predicate, timeout: float, what: str) -> None:  # type: ignore[no-untyped-def]
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if predicate():
            return
        time.sleep(0.3)
    raise AssertionError(f"timed out after {timeout:.0f}s waiting for {what}")


def started_lock_task(out: Path) -> bool:
    return any(e.get("event") == "runner_on_start"
               and (e.get("event_data") or {}).get("task") == LOCK_TASK for e in events_of(out))


def gate_grubby(target: ContainerTarget) -> None:
    target.run(["mv", "/usr/sbin/grubby", "/usr/sbin/grubby.real"], check=True)
    target.write_file("/usr/sbin/grubby", GATED_GRUBBY, mode=0o755)
    target.run(["touch", GATE], check=True)


def boot_entry_args(target: ContainerTarget) -> list[list[str]]:
    out = target.run(["grubby", "--info=ALL"], check=True).stdout.decode()
    return [line.split("=", 1)[1].strip('"').split() for line in out.splitlines()
            if line.startswith("args=")]


@pytest.fixture
def planned_el7(el7_target, tmp_path):
    """An EL7 host, its reviewed plan (nokmem + pam-lastlog) and its originals."""
    target = el7_target
    policy = tmp_path / "site-policy.yaml"
    policy.write_bytes(SITE_POLICY.read_bytes())
    inventory = write_inventory([target], tmp_path / "inventory.yml")
    rc, out, err = Background("plan", "-i", str(inventory), "--policy", str(policy),
                              "--out", str(tmp_path / "plan"), log=tmp_path / "plan").finish()
    assert rc == 2, out + err
    originals = {p: target.read_file(p) for p in ("/etc/default/grub", "/etc/pam.d/postlogin-ac")}
    gate_grubby(target)
    return target, inventory, policy, tmp_path / "plan" / "memcg-fix.yml", originals


def apply_args(inventory: Path, policy: Path, playbook: Path, out: Path) -> list[str]:
    return ["apply", "-i", str(inventory), "--playbook", str(playbook), "--policy", str(policy),
            "--out", str(out), "--format", "json"]


def test_a_second_apply_waits_a_third_gives_up_cleanly_and_the_host_ends_consistent(
        planned_el7, tmp_path):
    target, inventory, policy, playbook, originals = planned_el7
    impatient = write_inventory([target], tmp_path / "inventory-impatient.yml",
                                extra_vars={"memcg_remediate_lock_timeout": 2})
    outs = {name: tmp_path / name for name in ("first", "second", "third")}
    first = Background(*apply_args(inventory, policy, playbook, outs["first"]),
                       log=tmp_path / "first")
    second = None
    try:
        # the first run is inside the lock, held at its boot-entry update
        wait_until(lambda: target.exists(BUSY), 600, "the first run to reach grubby")
        second = Background(*apply_args(inventory, policy, playbook, outs["second"]),
                            log=tmp_path / "second")
        third = Background(*apply_args(impatient, policy, playbook, outs["third"]),
                           log=tmp_path / "third")
        rc3, out3, err3 = third.finish()
        wait_until(lambda: started_lock_task(outs["second"]), 600,
                   "the second run to ask for the lock")
        time.sleep(3)  # the second run is now waiting for the lock
        assert target.exists(LOCK)
    except BaseException:
        for run in (first, second):
            if run is not None:
                run.stop()
        raise
    finally:
        target.run(["rm", "-f", GATE])
    rc1, out1, err1 = first.finish()
    rc2, out2, err2 = second.finish()

    # the first run changed the host; the second waited, then had nothing to
    # do (both end at "reboot-required", exit 4: nokmem waits for a reboot
    # nobody consented to, and a container cannot reboot anyway)
    assert rc1 == 4, out1 + err1
    row1 = json.loads(out1)["hosts"][0]
    assert row1["outcome"] == "reboot-required", row1
    assert sorted(row1["changed"]) == ["nokmem", "pam-lastlog"], row1
    assert rc2 == 4, out2 + err2
    row2 = json.loads(out2)["hosts"][0]
    assert row2["outcome"] == "reboot-required" and row2["changed"] == [], row2
    waited = lock_result(outs["second"])
    assert waited and waited["event"] == "runner_on_ok" and waited["waited"] >= 3, waited
    # the third gave up on the lock, saying who holds it, and changed nothing
    assert rc3 == 4, out3 + err3
    row3 = json.loads(out3)["hosts"][0]
    assert row3["outcome"] == "failed" and row3["changed"] == [], row3
    assert "another memcg-fix run (" in row3["detail"] and LOCK in row3["detail"], row3
    assert "Traceback" not in err3

    # one consistent host
    for path, original in originals.items():
        text = original.decode()
        new = (bootargs.edit_shell_assignment(text, "GRUB_CMDLINE_LINUX",
                                              lambda v: bootargs.add_arg(v, NOKMEM))
               if path == "/etc/default/grub" else pamedit.rewrite(text, "noupdate"))
        assert target.read_file(path) == new.encode(), path
    entries = boot_entry_args(target)
    assert entries and all(args.count(NOKMEM) == 1 for args in entries), entries
    state = json.loads(target.read_file(MANIFEST))
    assert state["notes"].get("kernel_arg_added:" + NOKMEM) is True
    for path, original in originals.items():
        entry = state["files"][path]
        assert target.read_file(f"{STATE_DIR}/backups/{entry['backup']}") == original, path
    assert not target.exists(LOCK)
    leftovers = target.sh("find /etc /boot /var/lib/memcg-fix \\( -name '.memcg-fix-*' "
                          "-o -name '.grubby-*' -o -name '*.tmp' \\) -print")
    assert not leftovers.strip(), leftovers


def test_a_lock_left_by_a_run_whose_host_restarted_is_taken_over(planned_el7, tmp_path):
    target, inventory, policy, playbook, _originals = planned_el7
    lost = Background(*apply_args(inventory, policy, playbook, tmp_path / "lost"),
                      log=tmp_path / "lost")
    try:
        wait_until(lambda: target.exists(BUSY), 600, "the run to reach grubby")
        held = json.loads(target.read_file(LOCK))
        target.restart()  # every process of that run on the host ends at once
    except BaseException:
        lost.stop()
        raise
    finally:
        target.run(["rm", "-f", GATE])
    rc, out, err = lost.finish()
    assert rc == 4, out + err
    assert json.loads(out)["hosts"][0]["outcome"] in ("unreachable", "failed")
    assert json.loads(target.read_file(LOCK))["owner"] == held["owner"]  # left behind

    # the next run must not wait for that lock (a short timeout proves it)
    impatient = write_inventory([target], tmp_path / "inventory-impatient.yml",
                                extra_vars={"memcg_remediate_lock_timeout": 20})
    rc, out, err = Background(*apply_args(impatient, policy, playbook, tmp_path / "again"),
                              log=tmp_path / "again").finish()
    assert rc == 4, out + err  # 4: the reboot nokmem needs is pending
    row = json.loads(out)["hosts"][0]
    assert row["outcome"] == "reboot-required" and "nokmem" in row["changed"], row
    took = lock_result(tmp_path / "again")
    assert took and took["waited"] < 20, took
    assert not target.exists(LOCK)
    entries = boot_entry_args(target)
    assert entries and all(args.count(NOKMEM) == 1 for args in entries), entries
