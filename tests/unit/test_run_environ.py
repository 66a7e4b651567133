"""run.py drives Ansible through ansible-runner without touching the caller's
environment, with the inventories as arguments and the inventory listing as JSON.

Real runs: ansible-runner starts the ansible-playbook and ansible-inventory
installed next to this Python, against local-connection hosts.
"""

from __future__ import annotations

import os
import shutil
from pathlib import Path

import pytest

from remediate.errors import InputError
from remediate.run import list_hosts, run_playbook

PLAY = """\
- name: Touch nothing
  hosts: all
  gather_facts: false
  tasks:
    - name: Say which host this is
      ansible.builtin.debug:
        msg: "{{ inventory_hostname }}"
"""


@pytest.fixture
def inventories(tmp_path: Path) -> list[str]:
    # a space in the directory name: an inventory is an argument, never quoted by hand
    folder = tmp_path / "two inventories"
    folder.mkdir()
    first, second = folder / "web.ini", folder / "db.yml"
    first.write_text("[web]\nweb-1 ansible_connection=local\nweb-2 ansible_connection=local\n")
    second.write_text("all:\n  children:\n    db:\n      hosts:\n        db-1:\n"
                      "          ansible_connection: local\n")
    return [str(first), str(second)]


def test_the_callers_environment_is_left_as_it_was(tmp_path, inventories, monkeypatch):
    # a caller whose PATH holds no Ansible at all: the one next to this Python runs
    empty = tmp_path / "empty-bin"
    empty.mkdir()
    monkeypatch.setenv("PATH", str(empty))
    assert shutil.which("ansible-playbook") is None
    playbook = tmp_path / "play.yml"
    playbook.write_text(PLAY)
    before = dict(os.environ)
    for attempt in range(2):
        assert sorted(list_hosts(inventories)) == ["db-1", "web-1", "web-2"]
        report = run_playbook(playbook, inventories, data_dir=tmp_path / f"run-{attempt}")
        assert report.rc == 0, report.status
        assert sorted(report.hosts) == ["db-1", "web-1", "web-2"]
        assert dict(os.environ) == before


def test_the_limit_is_ansibles_host_pattern(inventories):
    assert list_hosts(inventories, "web:!web-2") == ["web-1"]
    assert sorted(list_hosts(inventories, "db,web-2")) == ["db-1", "web-2"]
    with pytest.raises(InputError, match="matches no host"):
        list_hosts(inventories, "nothing-here")


def test_an_inventory_ansible_cannot_parse_is_one_line_naming_why(tmp_path):
    broken = tmp_path / "broken.yml"
    broken.write_text("all:\n  hosts: [not, a, mapping\n")
    with pytest.raises(InputError, match=r"^cannot use the inventory .*broken\.yml: ") as caught:
        list_hosts([str(broken)])
    assert "\n" not in str(caught.value)
