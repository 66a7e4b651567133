"""Faults during a rollout leave every host bootable and in a known state.

Each test runs the real ``memcg-fix plan -i``, ``apply`` and ``rollback``
over ssh against a fleet of three containers that has one fault a production
host can have:

* /etc mounted read-only;
* a full filesystem under the files being edited;
* grubby dying half-way (a fault knob around the real grubby: FAULTY_GRUBBY);
* the ssh connection dropped while a task runs.

Every host of the fleet carries the fault, so whichever host Ansible takes as
the canary meets it. Then, for each fault:

* no file is half-written: every file memcg-fix writes is, byte for byte,
  either the original or the complete new version; every boot entry has
  either its old arguments or the old ones plus the new argument; no
  temporary file is left behind; the original of every file memcg-fix began
  to change is in the backup store, and a boot-entry change that began is
  recorded for rollback;
* the failed host is reported in the summary, with the reason;
* the rollout stops: with the default canary batch the other hosts are
  reported ``not-run`` and not a byte of theirs changed;
* once the fault is repaired, ``memcg-fix rollback`` restores the host byte
  for byte.

The faults are made from outside the container (``ContainerTarget.
in_namespaces``): a read-only bind mount or a small, full tmpfs in the
container's own mount namespace, so the role meets the kernel's real EROFS
and ENOSPC, not a simulation of them.
"""

from __future__ import annotations

import json
import shlex
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import pytest

from remediate.hostside import bootargs, pamedit
from tests.targets.ansible import ansible_env
from tests.targets.target import ContainerTarget, write_inventory

pytestmark = pytest.mark.containers

NOKMEM = "cgroup.memory=nokmem"
NOTE = "kernel_arg_added:" + NOKMEM
WATCHED = ("/etc", "/boot", "/usr/local/sbin")
STATE_DIR = "/var/lib/memcg-fix"
MANIFEST = STATE_DIR + "/backups/manifest.json"
LOCK = STATE_DIR + "/lock"
NOKMEM_TASK = "Put cgroup.memory=nokmem on every boot entry"
FILLER = "/etc/pam.d/.test-filler"  # (not .memcg-fix-*: those are leftovers)
# what the tests themselves put on a host to make a fault (not memcg-fix's doing)
FAULT_DIR = "/run/memcg-fix-test-fault"
HARNESS_PATHS = (FILLER,)

SITE_POLICY = Path(__file__).resolve().parents[1] / "data" / "policies" / "el-site.yaml"

# The files memcg-fix itself writes for these mitigations, per kind; the
# complete new version of each is computed from the original below.
OWN_FILES = {
    "el7": ("/etc/default/grub", "/etc/pam.d/postlogin-ac"),
    "el9": ("/etc/default/grub", "/etc/kernel/cmdline"),
    "debian": ("/etc/pam.d/login",),  # Debian's sshd stack has no pam_lastlog line
}


def memcg_fix(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, timeout=timeout, env=ansible_env(), check=False)


def complete_new_version(path: str, original: bytes) -> bytes:
    """What ``path`` holds once the planned change is complete."""
    text = original.decode()
    if path == "/etc/default/grub":
        return bootargs.edit_shell_assignment(
            text, "GRUB_CMDLINE_LINUX", lambda value: bootargs.add_arg(value, NOKMEM)).encode()
    if path == "/etc/kernel/cmdline":
        return (bootargs.add_arg(text.strip(), NOKMEM) + "\n").encode()
    if path.startswith("/etc/pam.d/"):
        return pamedit.rewrite(text, "noupdate").encode()
    raise AssertionError(f"no new version known for {path}")


def boot_entries(target: ContainerTarget) -> dict[str, list[str]]:
    """{index: arguments} of every linux boot entry, as grubby lists them."""
    if not target.exists("/usr/sbin/grubby"):
        return {}
    out = target.run(["grubby", "--info=ALL"], check=True).stdout.decode()
    entries: dict[str, list[str]] = {}
    index = ""
    for line in out.splitlines():
        if line.startswith("index="):
            index = line.split("=", 1)[1]
        elif line.startswith("args="):
            entries[index] = line.split("=", 1)[1].strip('"').split()
    return entries


def snapshot(target: ContainerTarget) -> dict[str, str]:
    """{path: sha256} below WATCHED, without the test's own fault knobs."""
    return {path: digest for path, digest in target.tree_checksums(WATCHED).items()
            if not path.startswith(HARNESS_PATHS)}


def manifest(target: ContainerTarget) -> dict[str, Any]:
    if not target.exists(MANIFEST):
        return {"files": {}, "notes": {}}
    data: dict[str, Any] = json.loads(target.read_file(MANIFEST))
    return data


@dataclass
class Fleet:
    kind: str
    hosts: list[ContainerTarget]
    work: Path
    inventory: Path
    policy: Path
    playbook: Path
    before: dict[str, dict[str, str]] = field(default_factory=dict)
    originals: dict[str, dict[str, bytes]] = field(default_factory=dict)
    entries: dict[str, dict[str, list[str]]] = field(default_factory=dict)

    def by_name(self, name: str) -> ContainerTarget:
        return next(t for t in self.hosts if t.name == name)

    def apply(self, label: str = "apply") -> subprocess.CompletedProcess[str]:
        return memcg_fix("apply", "-i", str(self.inventory), "--playbook", str(self.playbook),
                         "--policy", str(self.policy), "--out", str(self.work / label),
                         "--format", "json")

    def rollback(self, label: str = "rollback",
                 inventory: Path | None = None) -> subprocess.CompletedProcess[str]:
        return memcg_fix("rollback", "-i", str(inventory or self.inventory), "--playbook",
                         str(self.playbook), "--out", str(self.work / label), "--format", "json")


@pytest.fixture
def make_fleet(target_factory, tmp_path):
    """make_fleet(kind) -> three planned hosts of that kind, their state recorded."""

    def make(kind: str) -> Fleet:
        hosts = target_factory(kind, 3)
        policy = tmp_path / "site-policy.yaml"
        policy.write_bytes(SITE_POLICY.read_bytes())
        inventory = write_inventory(hosts, tmp_path / "inventory.yml")
        plan = memcg_fix("plan", "-i", str(inventory), "--policy", str(policy),
                         "--out", str(tmp_path / "plan"))
        assert plan.returncode == 2, plan.stdout + plan.stderr  # 2: changes planned
        fleet = Fleet(kind, hosts, tmp_path, inventory, policy, tmp_path / "plan" / "memcg-fix.yml")
        for t in hosts:
            fleet.before[t.name] = snapshot(t)
            fleet.originals[t.name] = {p: t.read_file(p) for p in OWN_FILES[kind]}
            fleet.entries[t.name] = boot_entries(t)
        return fleet

    return make


def assert_rollout_stopped_at_the_canary(
        fleet: Fleet, result: subprocess.CompletedProcess[str], outcome: str,
        reason: str) -> tuple[ContainerTarget, dict[str, Any]]:
    """The canary failed with ``reason``; no later batch started. Returns the
    canary and its summary row."""
    assert result.returncode == 4, result.stdout + result.stderr
    rows = {h["host"]: h for h in json.loads(result.stdout)["hosts"]}
    failed = [h for h, row in rows.items() if row["outcome"] != "not-run"]
    assert len(failed) == 1, rows
    canary = fleet.by_name(failed[0])
    row = rows[canary.name]
    assert row["outcome"] == outcome, row
    assert reason in row["detail"], row
    assert not row["verified"]
    for other in fleet.hosts:
        if other is not canary:
            assert rows[other.name]["outcome"] == "not-run", rows
            assert snapshot(other) == fleet.before[other.name], other.name
            assert not other.exists(STATE_DIR + "/backups"), other.name
    return canary, row


def assert_no_half_written_file(fleet: Fleet, target: ContainerTarget) -> dict[str, str]:
    """Every file is the original or the complete new version. Returns
    {path: "original" | "new"}."""
    states = {}
    for path, original in fleet.originals[target.name].items():
        now = target.read_file(path)
        new = complete_new_version(path, original)
        assert new != original, f"{path}: the plan would not change it; test set-up is wrong"
        assert now in (original, new), \
            f"{target.name}:{path} is neither the original nor the new version"
        states[path] = "original" if now == original else "new"
    for index, args in boot_entries(target).items():
        old = fleet.entries[target.name][index]
        assert args in (old, [*old, NOKMEM]), f"boot entry {index}: {args}"
    leftovers = target.sh(
        "find /etc /boot \\( -name '.memcg-fix-*' -o -name '.grubby-*' \\) -print")
    assert not leftovers.strip(), leftovers
    return states


def assert_originals_backed_up(fleet: Fleet, target: ContainerTarget,
                               began: tuple[str, ...]) -> dict[str, Any]:
    """The original of every file in ``began`` is in the backup store."""
    state = manifest(target)
    for path in began:
        entry = state["files"].get(path)
        assert entry, f"{path}: no backup recorded although a change began; {state}"
        original = fleet.originals[target.name][path]
        stored = target.read_file(f"{STATE_DIR}/backups/{entry['backup']}")
        assert stored == original, path
    return state


def assert_rolled_back(fleet: Fleet, target: ContainerTarget,
                       result: subprocess.CompletedProcess[str]) -> None:
    assert result.returncode == 0, result.stdout + result.stderr
    after = snapshot(target)
    before = fleet.before[target.name]
    changed = sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))
    assert not changed, f"{target.name}: not restored: {changed}"
    assert boot_entries(target) == fleet.entries[target.name]
    state = manifest(target)
    assert state["files"] == {} and NOTE not in state["notes"], state
    assert not target.exists(LOCK)


# ----------------------------------------------------------------- the faults


def test_etc_read_only_fails_the_canary_and_rollback_restores_it(make_fleet):
    fleet = make_fleet("el7")
    for t in fleet.hosts:
        # /etc read-only in the container's namespace (podman's own bind
        # mounts of /etc/hosts and friends stay as they are); /boot stays
        # writable, so grubby changes the boot entries before memcg-fix meets /etc
        t.in_namespaces("mount --rbind /etc /etc && mount -o remount,bind,ro /etc")
        assert t.run(["touch", "/etc/memcg-fix-test-probe"]).returncode != 0

    result = fleet.apply()

    canary, row = assert_rollout_stopped_at_the_canary(fleet, result, "failed",
                                                       "Read-only file system")
    assert "/etc/default" in row["detail"] and NOKMEM_TASK in row["detail"], row
    states = assert_no_half_written_file(fleet, canary)
    assert states == {"/etc/default/grub": "original", "/etc/pam.d/postlogin-ac": "original"}
    # grubby did change every entry: a half-applied host, and memcg-fix knows it
    assert all(NOKMEM in args for args in boot_entries(canary).values())
    state = assert_originals_backed_up(fleet, canary, ("/etc/default/grub",))
    assert state["notes"].get(NOTE) is True, state

    # repaired: /etc writable again, then roll back
    canary.in_namespaces("umount -R /etc")
    assert_rolled_back(fleet, canary, fleet.rollback())


def _fill_tmpfs_over(target: ContainerTarget, directory: str) -> None:
    """A tmpfs just big enough for ``directory``'s files, mounted over it and
    filled to the last byte."""
    script = f"""
set -e
d={shlex.quote(directory)}
kib=$(du -sk "$d" | cut -f1)
stage=$(mktemp -d /run/memcg-fix-test-full.XXXXXX)
mount -t tmpfs -o size=$((kib + 64))k,mode=0755 memcg-fix-test-full "$stage"
cp -a "$d"/. "$stage"/
mount --move "$stage" "$d"
rmdir "$stage"
dd if=/dev/zero of={shlex.quote(FILLER)} bs=4096 2>/dev/null || true
test "$(df --output=avail -k "$d" | tail -1 | tr -d ' ')" = 0
"""
    target.in_namespaces(script)


def test_a_full_filesystem_fails_the_canary_and_leaves_every_file_whole(make_fleet):
    fleet = make_fleet("debian")
    for t in fleet.hosts:
        _fill_tmpfs_over(t, "/etc/pam.d")

    result = fleet.apply()

    canary, row = assert_rollout_stopped_at_the_canary(fleet, result, "failed",
                                                       "No space left on device")
    assert "/etc/pam.d/login" in row["detail"], row
    states = assert_no_half_written_file(fleet, canary)
    assert states == {"/etc/pam.d/login": "original"}
    assert_originals_backed_up(fleet, canary, ("/etc/pam.d/login",))

    # repaired: space freed, then roll back
    canary.run(["rm", FILLER], check=True)
    assert_rolled_back(fleet, canary, fleet.rollback())


# The fault knob around the real grubby (EL8/EL9's grubby-bls writes each
# entry with `sed -i`): the wrapper puts a sed first on grubby's PATH that lets
# the first in-place edit through and kills grubby at the second, as a grubby
# killed (or crashed) half-way would be left.
FAULTY_GRUBBY = f"""#!/bin/sh
# TEST FAULT KNOB around the real grubby (/usr/sbin/grubby.real).
PATH={FAULT_DIR}:$PATH exec /usr/sbin/grubby.real "$@"
"""
FAULTY_SED = f"""#!/bin/sh
# TEST FAULT KNOB: the second in-place edit kills grubby before it writes.
case " $* " in
  *" -i "*)
    if [ -e {FAULT_DIR}/one-write ]; then
      echo "memcg-fix test fault: grubby stopped after 1 file write" >&2
      kill -9 $PPID
      exit 1
    fi
    : > {FAULT_DIR}/one-write ;;
esac
exec /bin/sed "$@"
"""


def test_grubby_failing_half_way_is_reported_and_rollback_removes_what_it_added(make_fleet):
    fleet = make_fleet("el9")
    for t in fleet.hosts:
        t.run(["mkdir", "-p", FAULT_DIR], check=True)
        t.write_file(f"{FAULT_DIR}/sed", FAULTY_SED, mode=0o755)
        t.run(["mv", "/usr/sbin/grubby", "/usr/sbin/grubby.real"], check=True)
        t.write_file("/usr/sbin/grubby", FAULTY_GRUBBY, mode=0o755)

    result = fleet.apply()

    canary, row = assert_rollout_stopped_at_the_canary(fleet, result, "failed",
                                                       "stopped after 1 file write")
    assert "grubby --update-kernel=ALL" in row["detail"], row
    assert_no_half_written_file(fleet, canary)
    entries = boot_entries(canary)
    with_arg = sorted(i for i, args in entries.items() if NOKMEM in args)
    assert len(with_arg) == 1 and len(entries) == 3, entries  # one entry written, then the failure
    state = manifest(canary)
    assert state["notes"].get(NOTE) is True, (
        f"grubby changed entry {with_arg} but memcg-fix recorded nothing for rollback: {state}")

    # repaired: grubby works again, then roll back
    canary.run(["mv", "/usr/sbin/grubby.real", "/usr/sbin/grubby"], check=True)
    assert_rolled_back(fleet, canary, fleet.rollback())


SLOW_GRUBBY = """#!/bin/sh
# Test wrapper around the real grubby: a boot-entry update that takes a
# while, so that a test can act while memcg-fix's task is running.
case " $* " in
  *" --update-kernel"*) touch /run/memcg-fix-test-grubby-busy; sleep 8 ;;
esac
exec /usr/sbin/grubby.real "$@"
"""


def _first_host_at(events: Path, task: str, timeout: float) -> str | None:
    """The first host for which the running playbook started ``task``."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(events.glob("*.json")) if events.is_dir() else []:
            try:
                event = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            data = event.get("event_data") or {}
            if event.get("event") == "runner_on_start" and data.get("task") == task:
                return str(data.get("host"))
        time.sleep(0.2)
    return None


def _drop_ssh_connections(target: ContainerTarget) -> list[str]:
    """Kill, by pid, the container's sshd processes serving the login user:
    the connection drops as if the network went away; the host stays up."""
    listing = target.run(["ps", "-eo", "pid=,args="], check=True).stdout.decode()
    rows = [line.split(None, 1) for line in listing.splitlines()]
    pids = [row[0] for row in rows if len(row) == 2 and row[1].startswith(f"sshd: {target.user}")]
    if pids:
        target.run(["kill", "-9", *pids])
    return pids


def _wait_until_no_task_runs(target: ContainerTarget, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        listing = target.run(["ps", "-eo", "args="], check=True).stdout.decode()
        if "BECOME-SUCCESS" not in listing and "grubby" not in listing:
            return
        time.sleep(0.5)
    raise AssertionError(f"{target.name}: a task is still running after {timeout}s")


def test_ssh_dropped_during_a_task_stops_the_rollout_and_the_host_can_be_rolled_back(
        make_fleet, tmp_path):
    fleet = make_fleet("el7")
    for t in fleet.hosts:
        t.run(["mv", "/usr/sbin/grubby", "/usr/sbin/grubby.real"], check=True)
        t.write_file("/usr/sbin/grubby", SLOW_GRUBBY, mode=0o755)
    events = fleet.work / "apply" / "artifacts" / "apply" / "job_events"
    dropped: dict[str, Any] = {}

    def drop_the_canary() -> None:
        host = _first_host_at(events, NOKMEM_TASK, 600)
        if host is None:
            return
        target = fleet.by_name(host)
        deadline = time.monotonic() + 120
        while time.monotonic() < deadline and not target.exists("/run/memcg-fix-test-grubby-busy"):
            time.sleep(0.2)
        dropped["host"] = host
        dropped["pids"] = _drop_ssh_connections(target)

    dropper = threading.Thread(target=drop_the_canary)
    dropper.start()
    result = fleet.apply()
    dropper.join()

    assert dropped.get("pids"), f"no connection was dropped: {dropped}"
    canary, _row = assert_rollout_stopped_at_the_canary(fleet, result, "unreachable",
                                                        "unreachable")
    assert canary.name == dropped["host"]
    _wait_until_no_task_runs(canary)  # the task that lost its connection ends on its own
    assert_no_half_written_file(fleet, canary)
    state = manifest(canary)
    assert state["notes"].get(NOTE) is True, state

    # The run that lost its connection never released the host-side lock, and
    # nothing on the host can tell that its controller is gone: a rollback
    # refuses cleanly, naming the lock, instead of racing that run.
    held = json.loads(canary.read_file(LOCK))
    impatient = write_inventory(fleet.hosts, tmp_path / "inventory-impatient.yml",
                                extra_vars={"memcg_remediate_lock_timeout": 2})
    refused = fleet.rollback("rollback-refused", inventory=impatient)
    assert refused.returncode == 4, refused.stdout + refused.stderr
    row = {h["host"]: h for h in json.loads(refused.stdout)["hosts"]}[canary.name]
    assert row["outcome"] == "failed", row
    assert f"another memcg-fix run ({held['owner']}" in row["detail"] and LOCK in row["detail"], row
    # the operator removes the lock once that run is known to be dead, as the
    # message says, and rolls back
    canary.run(["rm", LOCK], check=True)
    assert_rolled_back(fleet, canary, fleet.rollback())
