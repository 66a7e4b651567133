"""The collection as Galaxy users get it: built, installed offline, and run from that install alone.

``ansible-galaxy collection build`` makes the tarball; ``ansible-galaxy
collection install --offline`` puts it into a fresh directory; a playbook
that ``memcg-fix render`` wrote from a container's real facts then runs
against that container with only the installed copy on
ANSIBLE_COLLECTIONS_PATH (the playbook sits outside the repository, so no
playbook-adjacent collection can be found either).
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tarfile
from pathlib import Path

import pytest

from remediate.policy import evaluate, load
from remediate.render import RESULTS_STAT, render
from remediate.resources import COLLECTION_NAME, COLLECTION_NAMESPACE, collection_dir
from remediate.run import collect_facts, recorded_stats, run_playbook

REPO = Path(__file__).resolve().parents[2]
POLICY = REPO / "tests" / "data" / "policies" / "el-site.yaml"  # pam-lastlog on Debian

pytestmark = pytest.mark.slow


def _galaxy(*args: str, cwd: Path) -> subprocess.CompletedProcess[str]:
    binary = Path(sys.executable).parent / "ansible-galaxy"
    return subprocess.run([str(binary), *args], capture_output=True, text=True, cwd=cwd,
                          stdin=subprocess.DEVNULL, timeout=300, check=False)


@pytest.fixture(scope="module")
def built(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("galaxy")
    proc = _galaxy("collection", "build", str(collection_dir()), "--output-path", str(out),
                   cwd=out)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    (tarball,) = out.glob(f"{COLLECTION_NAMESPACE}-{COLLECTION_NAME}-*.tar.gz")
    return tarball


def test_the_tarball_holds_the_collection_and_nothing_of_the_checkout(built):
    with tarfile.open(built) as archive:
        members = {m.name: m for m in archive.getmembers()}
        manifest = json.load(archive.extractfile("MANIFEST.json"))  # type: ignore[arg-type]
    assert manifest["collection_info"]["namespace"] == COLLECTION_NAMESPACE
    assert manifest["collection_info"]["name"] == COLLECTION_NAME
    for needed in ("meta/runtime.yml", "plugins/modules/memcg_facts.py",
                   "plugins/module_utils/module_helpers.py",
                   "plugins/module_utils/hostside/collect.py",
                   "roles/memcg_remediate/tasks/main.yml", "changelogs/changelog.yaml"):
        assert needed in members, needed
    assert not [n for n, m in members.items() if m.issym() or m.islnk()]
    unwanted = [n for n in members if "__pycache__" in n or n.endswith((".pyc", ".ruff.toml"))
                or n.startswith("tests/output")]
    assert not unwanted, unwanted


def test_a_rendered_playbook_runs_from_the_offline_install_alone(built, debian_target,
                                                                 inventory_path, tmp_path):
    installed = tmp_path / "installed"
    proc = _galaxy("collection", "install", "--offline", "-p", str(installed), str(built),
                   cwd=tmp_path)
    assert proc.returncode == 0, proc.stdout + proc.stderr
    assert (installed / "ansible_collections" / COLLECTION_NAMESPACE / COLLECTION_NAME
            / "plugins" / "modules" / "memcg_lock.py").is_file()

    inventory = inventory_path([debian_target])
    facts, _report = collect_facts([str(inventory)], data_dir=tmp_path / "facts")
    plan = evaluate(load(POLICY), facts)
    assert [m.id for m in plan.hosts[0].mitigations] == ["pam-lastlog"]
    playbook = tmp_path / "change" / "memcg-fix.yml"  # outside the repository
    playbook.parent.mkdir()
    playbook.write_text(render(plan))

    env = {k: v for k, v in os.environ.items() if not k.startswith("ANSIBLE_")}
    env.update(ANSIBLE_COLLECTIONS_PATH=str(installed), ANSIBLE_COLLECTIONS_SCAN_SYS_PATH="False",
               ANSIBLE_HOST_KEY_CHECKING="False", ANSIBLE_NOCOLOR="1",
               ANSIBLE_RETRY_FILES_ENABLED="False")
    binary = Path(sys.executable).parent / "ansible-playbook"
    run = subprocess.run([str(binary), "-i", str(inventory), str(playbook)], capture_output=True,
                         text=True, env=env, cwd=playbook.parent, stdin=subprocess.DEVNULL,
                         timeout=900, check=False)
    assert run.returncode == 0, run.stdout[-4000:] + run.stderr[-2000:]
    login = debian_target.read_file("/etc/pam.d/login").decode()
    active = [line for line in login.splitlines()
              if "pam_lastlog.so" in line and not line.lstrip().startswith("#")]
    assert active and all("noupdate" in line.split() for line in active), active
    # without the installed copy the same playbook cannot find its role
    env["ANSIBLE_COLLECTIONS_PATH"] = str(tmp_path / "empty")
    missing = subprocess.run([str(binary), "--syntax-check", "-i", str(inventory), str(playbook)],
                             capture_output=True, text=True, env=env, cwd=playbook.parent,
                             stdin=subprocess.DEVNULL, timeout=300, check=False)
    assert missing.returncode != 0
    assert "memcg_fix.remediate.memcg_remediate" in missing.stdout + missing.stderr
    # run_playbook (memcg-fix apply) reads the role's recorded results from this playbook too
    again = run_playbook(playbook, [str(inventory)], data_dir=tmp_path / "again")
    result = recorded_stats(again.artifacts_dir)[RESULTS_STAT][debian_target.name]
    assert result["changed"] == [] and result["verified"] is True
