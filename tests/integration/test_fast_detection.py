"""Detection through one raw command per host (``--via raw``, the default)
against the ``memcg_facts`` module (``--via module``), on real targets.

* Both paths give byte-identical ``memcg-fix detect -i --format json``
  documents on every target kind: the Debian, el7, el8 and el9 containers
  (two of them with Ansible's interpreter discovery instead of a set
  interpreter) and the VM.
* A host where the raw path cannot work (no Python, a broken login shell,
  unreachable) is reported with its reason and the others go on; a
  read-only root and /tmp, a chatty login shell and a sudo that requires a
  terminal do not matter.
* The command sudo logs on the host stays short (the collector comes on
  stdin).
* The compiled collector the raw path keeps on a host (its code cache) gives
  the same document as the first, compiling run; a run in check mode writes
  no cache.

Identical documents need a host that holds still between the runs. Three
sources are host-wide and move all the time on this shared machine
(/proc/slabinfo, /proc/meminfo, /proc/cgroups: other processes make and
remove cgroups), so before the runs each target gets a snapshot of them
bind-mounted over the originals, in the target's own mount namespace: both
paths still read the live host through the collector, from the same
input. The module runs before and after the raw run; only when those two
agree (the host held still) is the raw document compared, and a host that
never holds still fails the test.
"""

from __future__ import annotations

import difflib
import json
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
import yaml

from tests.targets.ansible import ansible_env, run_playbook
from tests.targets.target import ContainerTarget, Target, VmTarget

pytestmark = pytest.mark.slow

# host-wide sources that change under other processes' feet (see above)
PINNED = ("/proc/slabinfo", "/proc/meminfo", "/proc/cgroups")
PIN_DIR = "/run/memcg-fix-test-pins"


def memcg_fix(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, timeout=timeout, env=ansible_env(), check=False)


def detect(inventory: Path, via: str) -> str:
    proc = memcg_fix("detect", "-i", str(inventory), "--via", via, "--format", "json")
    assert proc.returncode == 0, proc.stderr[-3000:]
    return proc.stdout


def pin_script(extra: tuple[str, ...] = ()) -> str:
    lines = [f"mkdir -p {PIN_DIR}"]
    for index, source in enumerate((*PINNED, *extra)):
        lines.append(f"if [ -e {source} ]; then cat {source} > {PIN_DIR}/{index} && "
                     f"mount --bind {PIN_DIR}/{index} {source}; fi")
    return " && ".join(lines)


def unpin_script(extra: tuple[str, ...] = ()) -> str:
    return "; ".join(f"umount {source} 2>/dev/null" for source in (*PINNED, *extra)) + \
        f"; rm -rf {PIN_DIR}; true"


def write_inventory(path: Path, targets: list[Target],
                    overrides: dict[str, dict[str, Any]] | None = None) -> Path:
    hosts = {t.name: {**t.inventory_vars, **(overrides or {}).get(t.name, {})} for t in targets}
    path.write_text(yaml.safe_dump({"all": {"hosts": hosts}}))
    return path


CODE_CACHE = "/var/cache/memcg-fix"


def held_still_documents(inventory: Path, attempts: int = 3) -> tuple[str, str, str]:
    """(module document, raw document, raw document again) from a run where
    the hosts held still; the first raw run compiles the collector and keeps
    it in the hosts' code cache, the second runs what was kept."""
    moved = ""
    for _attempt in range(attempts):
        before = detect(inventory, "module")
        raw = detect(inventory, "raw")
        raw_cached = detect(inventory, "raw")
        after = detect(inventory, "module")
        if before == after:
            return before, raw, raw_cached
        moved = "\n".join(list(difflib.unified_diff(
            before.splitlines(), after.splitlines(), "module", "module again", lineterm=""))[:40])
    pytest.fail(f"the hosts did not hold still between two module runs:\n{moved}")


def assert_identical(module: str, raw: str) -> None:
    diff = list(difflib.unified_diff(module.splitlines(), raw.splitlines(), "via module",
                                     "via raw", lineterm=""))
    assert raw == module, "\n".join(diff[:80])


@pytest.mark.containers
def test_both_paths_give_byte_identical_documents_on_every_container_kind(
        debian_target: ContainerTarget, el7_target: ContainerTarget,
        el8_target: ContainerTarget, el9_target: ContainerTarget, tmp_path: Path) -> None:
    targets: list[Target] = [debian_target, el7_target, el8_target, el9_target]
    for target in targets:
        assert isinstance(target, ContainerTarget)
        target.in_namespaces(pin_script())
        target.sh(f"rm -rf {CODE_CACHE}")  # the first raw run compiles
    # two hosts let Ansible find their Python, as an inventory without
    # ansible_python_interpreter does
    discover = {"ansible_python_interpreter": "auto"}
    inventory = write_inventory(tmp_path / "inventory.yml", targets,
                                {el8_target.name: discover, el9_target.name: discover})

    module, raw, raw_cached = held_still_documents(inventory)

    assert_identical(module, raw)
    assert_identical(module, raw_cached)
    for target in targets:  # what the second run used: root's alone
        listing = target.sh(f"stat -c '%a %U %n' {CODE_CACHE} {CODE_CACHE}/*").splitlines()
        assert listing[0] == f"700 root {CODE_CACHE}" and len(listing) == 2, listing
        assert listing[1].startswith(f"600 root {CODE_CACHE}/"), listing
    # sudo logs each command in full: the module's is a line, and so is ours
    # (the collector came on stdin, not in the command)
    journal = "journalctl -q --no-pager -o cat | wc -c"
    before = int(debian_target.sh(journal))
    detect(inventory, "raw")
    grown = int(debian_target.sh(journal)) - before
    assert grown < 4096, debian_target.sh("journalctl -q --no-pager -o cat | tail -20")
    document = json.loads(raw)
    by_host = {entry["host"]: entry for entry in document["hosts"]}
    assert sorted(by_host) == sorted(t.name for t in targets)
    for target in targets:
        entry = by_host[target.name]
        assert "error" not in entry, entry.get("error")
        assert entry["facts"]["host"]["hostname"] == target.name  # its own facts
        assert entry["facts"]["collector"]["python"].startswith("/usr/bin/python3")
    assert by_host[el7_target.name]["facts"]["distro"]["id"] == "centos"


@pytest.mark.vm
def test_both_paths_give_byte_identical_documents_on_the_vm(vm_target: VmTarget,
                                                            tmp_path: Path) -> None:
    # the VM runs its own kernel (cgroup v2 as booted: the counts are in cgroup.stat)
    extra = ("/sys/fs/cgroup/cgroup.stat",)
    vm_target.sh(pin_script(extra))
    try:
        inventory = write_inventory(tmp_path / "inventory.yml", [vm_target])
        module, raw, raw_cached = held_still_documents(inventory)
    finally:
        vm_target.sh(unpin_script(extra))
    assert_identical(module, raw)
    assert_identical(module, raw_cached)
    (entry,) = json.loads(raw)["hosts"]
    assert "error" not in entry and entry["facts"]["kernel"]["family"] == "debian"


@pytest.mark.containers
def test_hosts_the_raw_path_cannot_read_are_unknown_with_the_reason_and_the_run_goes_on(
        debian_target: ContainerTarget, el7_target: ContainerTarget,
        el8_target: ContainerTarget, tmp_path: Path) -> None:
    chatty = debian_target
    # a login shell that talks: its output is not taken for facts
    chatty.write_file("/home/tester/.bashrc", "echo 'Welcome to a very chatty host'\n"
                      "echo '{\"facts\": {\"kernel\": \"fake\"}}'\n")
    assert b"Welcome" in chatty.ssh("true").stdout  # bash reads it for ssh commands
    # sudo itself leaves ~/.sudo_as_admin_successful on a user's first use
    assert chatty.ssh("sudo -n true").returncode == 0
    # a sudo that refuses commands without a terminal: the collector cannot
    # come on stdin, so it comes inside the command
    chatty.write_file("/etc/sudoers.d/requiretty", "Defaults requiretty\n", mode=0o440)
    assert b"must have a tty" in chatty.ssh("sudo -n true").stderr
    # nothing needs writing on the host: its root filesystem is read-only
    # (so no code cache can be kept), and /tmp a read-only, noexec tmpfs (a
    # host whose disk went read-only after an error is one to read, not to
    # give up on)
    chatty.in_namespaces("mount -o remount,bind,ro / && "
                         "mount -t tmpfs -o ro,noexec,nosuid,nodev tmpfs /tmp")
    assert chatty.ssh("touch /tmp/x || touch ~/x || echo read-only").stdout.strip().endswith(
        b"read-only")
    no_python = el7_target
    no_python.sh("rm -f /usr/bin/python3* /usr/local/bin/python3*")
    broken_shell = el8_target
    broken_shell.sh("usermod -s /bin/false tester")
    inventory = write_inventory(
        tmp_path / "inventory.yml", [chatty, no_python, broken_shell],
        {no_python.name: {"ansible_python_interpreter": "auto_silent"}})
    unreachable = {"ansible_host": "127.0.0.1", "ansible_port": 1, "ansible_user": "tester",
                   "ansible_ssh_common_args": "-o ConnectTimeout=5"}
    data = yaml.safe_load(inventory.read_text())
    data["all"]["hosts"]["memcg-fix-test-gone"] = unreachable
    inventory.write_text(yaml.safe_dump(data))

    proc = memcg_fix("detect", "-i", str(inventory), "--format", "json")

    assert proc.returncode == 0, proc.stderr[-3000:]
    by_host = {entry["host"]: entry for entry in json.loads(proc.stdout)["hosts"]}
    assert "error" not in by_host[chatty.name], by_host[chatty.name]["error"]
    assert by_host[chatty.name]["facts"]["host"]["hostname"] == chatty.name
    assert by_host[no_python.name]["error"].startswith(
        "memcg_facts_raw failed: no Python interpreter on the host (tried ")
    assert by_host[no_python.name]["facts"] == {}
    assert by_host[broken_shell.name]["error"] == (
        "memcg_facts_raw failed: the collector printed no facts (exit 1): no output")
    assert by_host["memcg-fix-test-gone"]["error"].startswith("unreachable: ")
    table = memcg_fix("detect", "-i", str(inventory))
    assert table.returncode == 0
    row = next(line for line in table.stdout.splitlines() if line.startswith(no_python.name))
    assert row.split(None, 1)[1].startswith("error: memcg_facts_raw failed: no Python")


@pytest.mark.containers
def test_check_mode_writes_no_code_cache(debian_target: ContainerTarget,
                                         tmp_path: Path) -> None:
    inventory = write_inventory(tmp_path / "inventory.yml", [debian_target])
    playbook = Path(__file__).resolve().parents[2] / "playbooks" / "gather-raw.yml"
    debian_target.sh(f"rm -rf {CODE_CACHE}")
    checked = run_playbook(playbook, inventory, check=True)
    assert checked.returncode == 0, checked.output[-3000:]
    assert debian_target.sh(f"ls -d {CODE_CACHE} 2>/dev/null || echo none").strip() == "none"
    ran = run_playbook(playbook, inventory)
    assert ran.returncode == 0, ran.output[-3000:]
    assert debian_target.sh(f"ls {CODE_CACHE} | wc -l").strip() == "1"
