"""The role's memcg_facts module, run for real by ansible-playbook (-c local).

One source of parsing: the module imports the collection's
``plugins/module_utils/hostside``, which the controller imports as
``remediate.hostside`` (a symlink), so its facts must equal what ``memcg-fix
detect`` reports, on ansible-core 2.19 and 2.16 and on the target Pythons
this machine has (3.11, 3.6, 2.7).
"""

from __future__ import annotations

import json
import os
import shutil
import subprocess
from pathlib import Path
from typing import Any

import pytest

from remediate.facts import collect_local
from remediate.hostside.collect import collect
from remediate.hostside.reader import RootReader
from remediate.resources import collection_dir

REPO = Path(__file__).resolve().parents[2]
CACHE = Path(os.environ.get("MEMCG_FIX_CACHE", "/var/cache/memcg-fix-dev"))
COLLECTIONS = collection_dir().parents[2]
CORES = {
    "current": CACHE / "venv-current" / "bin" / "ansible-playbook",
    "2.16": CACHE / "venv-2.16" / "bin" / "ansible-playbook",
}
SAMPLES = REPO / "tests" / "data" / "samples"
STABLE = ("kernel.release", "kernel.family", "kernel.upstream_version", "cgroup.mode",
          "cgroup.memory_controller", "cmdline.nokmem", "boot.nokmem_all_entries",
          "pam.lastlog_active", "pam.lastlog_writes_wtmp", "pam.authselect_managed",
          "runc.version")

pytestmark = pytest.mark.slow


def get(facts: dict[str, Any], path: str) -> Any:
    node: Any = facts
    for part in path.split("."):
        node = node.get(part) if isinstance(node, dict) else None
    return node


def run_module(tmp_path: Path, core: str, python: str = "/usr/bin/python3",
               root: str | None = None) -> dict[str, Any]:
    playbook = CORES[core]
    if not playbook.exists():
        pytest.skip(f"ansible-core {core} is not installed at {playbook}")
    out = tmp_path / f"result-{core}.json"
    args = f"\n        root: {root}" if root else ""
    (tmp_path / "play.yml").write_text(f"""\
- name: Run memcg_facts
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Collect
      memcg_fix.remediate.memcg_facts:{args}
      register: result
    - name: Save
      ansible.builtin.copy:
        content: "{{{{ result | to_json }}}}"
        dest: {out}
        mode: "0600"
""")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCALHOST_WARNING="0", ANSIBLE_INVENTORY_UNPARSED_WARNING="0",
               ANSIBLE_CHECK_MODE_MARKERS="0")
    proc = subprocess.run(
        [str(playbook), "-c", "local", "-i", "localhost,", "-e",
         f"ansible_python_interpreter={python}", str(tmp_path / "play.yml")],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    result: dict[str, Any] = json.loads(out.read_text())
    return result


def test_the_controller_imports_the_collections_hostside_package() -> None:
    link = REPO / "remediate" / "hostside"
    source = collection_dir() / "plugins" / "module_utils" / "hostside"
    assert link.is_symlink() and not source.is_symlink()
    assert link.resolve() == source.resolve()
    assert Path(collect.__code__.co_filename).samefile(source / "collect.py")


@pytest.mark.parametrize("core", ["current", "2.16"])
def test_module_matches_detect_on_this_host(tmp_path: Path, core: str) -> None:
    result = run_module(tmp_path, core)
    assert result["changed"] is False and result["schema_version"] == 1
    module = result["facts"]
    cli = dict(collect_local("me").facts)
    for key in STABLE:
        assert get(module, key) == get(cli, key), key
    # live counts move between two reads: same method, same order of magnitude
    assert module["memcg"]["dying_method"] == cli["memcg"]["dying_method"]
    assert abs(module["memcg"]["live"] - cli["memcg"]["live"]) < 200
    assert module["collector"]["mode"] == "local"


def _sos_tree(root: Path) -> None:
    def put(rel: str, text: str) -> None:
        path = root / rel
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(text)

    put("sos_commands/kernel/uname_-a", (SAMPLES / "uname/centos7-uname-a.txt").read_text())
    put("sos_commands/kernel/dmesg", (SAMPLES / "dmesg/centos7-slub-messages.txt").read_text())
    put("proc/cmdline", (SAMPLES / "cmdline/centos7.txt").read_text())
    put("proc/cgroups", (SAMPLES / "proc_cgroups/el7-3.10.0-693-at-65535.txt").read_text())
    put("proc/1/mountinfo", (SAMPLES / "mountinfo/fedora20-v1.txt").read_text())
    put("etc/default/grub", (SAMPLES / "default_grub/el-default-grub.txt").read_text())
    put("etc/pam.d/postlogin", (SAMPLES / "pam/rhel7-postlogin-ac.txt").read_text())
    put("installed-rpms", (SAMPLES / "rpm/centos7-rpm-q-kernel.txt").read_text())
    (root / "sys/fs/cgroup/memory/kubepods").mkdir(parents=True)


def _without_collector(facts: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in facts.items() if k != "collector"}


@pytest.mark.parametrize(
    ("core", "python"),
    [("current", "/usr/bin/python3"),
     ("2.16", "/root/.pyenv/versions/3.6.15/bin/python3.6"),
     ("2.16", "/root/.pyenv/versions/2.7.18/bin/python2.7")],
)
def test_module_on_a_host_root_equals_the_collector_exactly(tmp_path: Path, core: str,
                                                            python: str) -> None:
    if not os.access(python, os.X_OK):
        pytest.skip(f"{python} is not on this machine")
    root = tmp_path / "sosreport"
    _sos_tree(root)
    result = run_module(tmp_path, core, python, root=str(root))
    expected = collect(RootReader(str(root)))
    assert _without_collector(result["facts"]) == json.loads(
        json.dumps(_without_collector(expected["facts"])))
    assert result["unknown"] == expected["unknown"]
    assert result["facts"]["collector"]["python"].startswith(str(Path(python).parent))
    assert result["facts"]["kernel"]["release"] == "3.10.0-1160.2.2.el7.x86_64"
    assert result["facts"]["memcg"]["dying"] == 65535 - 2


def test_module_supports_check_mode(tmp_path: Path) -> None:
    playbook = CORES["current"]
    if not shutil.which(str(playbook)):
        pytest.skip("ansible-core is not installed")
    (tmp_path / "p.yml").write_text("""\
- name: Check mode
  hosts: localhost
  gather_facts: false
  tasks:
    - name: Collect in check mode
      memcg_fix.remediate.memcg_facts:
      register: result
    - name: Facts were still collected
      ansible.builtin.assert:
        that:
          - result.facts.kernel.release | length > 0
          - not result.changed
""")
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(COLLECTIONS))
    proc = subprocess.run([str(playbook), "--check", "-c", "local", "-i", "localhost,", "-e",
                           "ansible_python_interpreter=/usr/bin/python3", str(tmp_path / "p.yml")],
                          capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:]
