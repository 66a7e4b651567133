"""The container targets are real hosts that Ansible drives over ssh."""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from tests.targets import target as targets_mod
from tests.targets.ansible import run_playbook
from tests.targets.common import CGROUP_PARENT, podman

pytestmark = pytest.mark.containers

FACTS_PLAY = """
- name: Report what the target looks like
  hosts: targets
  gather_facts: true
  become: true
  tasks:
    - name: Show distribution facts
      ansible.builtin.debug:
        msg: "FACTS {{ inventory_hostname }} {{ ansible_distribution }}
          {{ ansible_distribution_major_version }} {{ ansible_os_family }}
          {{ ansible_user_id }} {{ ansible_service_mgr }}"
"""

EDIT_PLAY = """
- name: A file edit with backup under /etc
  hosts: targets
  gather_facts: false
  become: true
  tasks:
    - name: Add a marker line
      ansible.builtin.lineinfile:
        path: /etc/memcg-fix-test.conf
        line: "marker=1"
        create: true
        mode: "0644"
        backup: true
"""


def _write(tmp_path: Path, name: str, text: str) -> Path:
    path = tmp_path / name
    path.write_text(text)
    return path


def test_all_kinds_start_in_parallel_and_answer_ansible_over_ssh(
        debian_target, el7_target, el8_target, el9_target, inventory_path, tmp_path):
    targets = [debian_target, el7_target, el8_target, el9_target]
    assert len({t.port for t in targets}) == 4
    assert all(t.user == "tester" and t.address == "127.0.0.1" for t in targets)
    result = run_playbook(_write(tmp_path, "facts.yml", FACTS_PLAY), inventory_path(targets))
    assert result.returncode == 0, result.describe()
    assert result.failed() == 0
    seen = {}
    for target in targets:
        line = next(ln for ln in result.output.splitlines() if f"FACTS {target.name} " in ln)
        seen[target.kind] = line.split(f"FACTS {target.name} ", 1)[1].strip(' "').split()
    # become worked (root), systemd is PID 1, and each looks like its release
    assert all(words[-2:] == ["root", "systemd"] for words in seen.values()), seen
    assert seen["debian"][:3] == ["Debian", "12", "Debian"]
    assert seen["el7"][:3] == ["CentOS", "7", "RedHat"]
    assert seen["el8"][:2] == ["Rocky", "8"] and seen["el8"][2] == "RedHat"
    assert seen["el9"][:2] == ["Rocky", "9"] and seen["el9"][2] == "RedHat"


def test_file_edit_is_idempotent_and_check_mode_changes_no_byte(
        debian_target, inventory_path, tmp_path):
    inventory = inventory_path([debian_target])
    play = _write(tmp_path, "edit.yml", EDIT_PLAY)
    before = debian_target.tree_checksums(("/etc", "/boot"), metadata=True)

    checked = run_playbook(play, inventory, check=True)
    assert checked.returncode == 0, checked.describe()
    assert checked.changed() == 1  # it would change...
    assert debian_target.tree_checksums(("/etc", "/boot"), metadata=True) == before  # ...did not

    first = run_playbook(play, inventory)
    assert first.returncode == 0 and first.changed() == 1, first.describe()
    second = run_playbook(play, inventory)
    assert second.returncode == 0 and second.changed() == 0, second.describe()
    after = debian_target.tree_checksums(("/etc",))
    assert b"marker=1" in debian_target.read_file("/etc/memcg-fix-test.conf")
    assert set(after) - set(before) == {"/etc/memcg-fix-test.conf"}


def test_debian_target_layout(debian_target):
    assert debian_target.exists("/etc/default/grub")
    assert debian_target.exists("/usr/sbin/update-grub")
    assert b"GRUB_CMDLINE_LINUX=" in debian_target.read_file("/etc/default/grub")
    # update-grub cannot work on the container's overlay root: the boot effect
    # is what the VM tier proves
    assert debian_target.run(["update-grub"]).returncode != 0
    # a login over ssh gets a logind session scope, as on a production host
    out = debian_target.ssh("cat /proc/self/cgroup").stdout.decode()
    assert "session-" in out and ".scope" in out
    # root is reachable too
    assert debian_target.ssh("id -u", user="root").stdout.strip() == b"0"


def test_el_layouts(el7_target, el8_target, el9_target):
    assert el7_target.read_file("/etc/redhat-release").startswith(b"CentOS Linux release 7.9")
    assert not el7_target.exists("/etc/debian_version")
    postlogin = el7_target.run(["readlink", "/etc/pam.d/postlogin"]).stdout.strip()
    assert postlogin == b"postlogin-ac"
    assert b"authconfig" in el7_target.read_file("/etc/pam.d/postlogin")
    assert b"linux16 /boot/vmlinuz-3.10.0-1062.1.2.el7.x86_64" in el7_target.read_file(
        "/boot/grub2/grub.cfg")

    assert b"kernelopts=root=" in el8_target.read_file("/boot/grub2/grubenv")
    entries = el8_target.sh("cat /boot/loader/entries/*.conf")
    assert entries.count("options $kernelopts") == 3

    assert el9_target.read_file("/etc/kernel/cmdline").startswith(b"root=/dev/mapper/rl-root")
    assert "options root=" in el9_target.sh("cat /boot/loader/entries/*.conf")
    # the real authselect, selected as the installer selects it
    for el, current in ((el8_target, "sssd with-fingerprint with-silent-lastlog"),
                        (el9_target, "sssd with-fingerprint")):
        for name in ("postlogin", "system-auth", "password-auth"):
            link = el.run(["readlink", f"/etc/pam.d/{name}"]).stdout.strip()
            assert link == f"/etc/authselect/{name}".encode()
        assert el.run(["readlink", "/etc/nsswitch.conf"]).stdout.strip() == (
            b"/etc/authselect/nsswitch.conf")
        assert el.run(["authselect", "check"]).returncode == 0
        assert el.sh("authselect current --raw").strip() == current
        assert el.sh("authselect backup-list --raw").split() != []  # select --force took one
    # EL9's package drops the nis profile
    assert "nis" in el8_target.sh("authselect list")
    assert "nis" not in el9_target.sh("authselect list")


def test_target_factory_starts_many_hosts(target_factory, inventory_path, tmp_path):
    started = time.monotonic()
    hosts = target_factory("debian", 12)
    elapsed = time.monotonic() - started
    assert len({h.name for h in hosts}) == 12
    result = run_playbook(_write(tmp_path, "ping.yml", """
- name: Ping
  hosts: targets
  gather_facts: false
  tasks:
    - name: Ping
      ansible.builtin.ping:
"""), inventory_path(hosts), extra_args=["--forks", "12"])
    assert result.returncode == 0, result.describe()
    assert len(result.stats) == 12 and result.failed() == 0
    print(f"12 containers up and reachable in {elapsed:.1f}s")


def test_teardown_leaves_no_container_or_cgroup():
    [target] = targets_mod.start_containers(["debian"])
    cgroups = list(Path("/sys/fs/cgroup/memory").glob(
        f"{CGROUP_PARENT.lstrip('/')}/libpod-{target.container_id}*"))
    assert cgroups, "the container should sit under the dedicated cgroup parent"
    target.destroy()
    names = podman("ps", "-a", "--format", "{{.Names}}").stdout.decode().split()
    assert target.name not in names
    assert not any(c.exists() for c in cgroups)
    assert not [x for x in targets_mod.leftovers() if target.name in x]


def test_end_of_session_check_sees_a_forgotten_container():
    [target] = targets_mod.start_containers(["el9"])
    try:
        found = [x for x in targets_mod.leftovers() if target.name in x]
        assert f"container {target.name}" in found
    finally:
        target.destroy()
    assert not [x for x in targets_mod.leftovers() if target.name in x]
