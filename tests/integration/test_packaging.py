"""An installed memcg-fix works outside the checkout, with one copy of the host code.

Builds the wheel with pip (hatchling), installs it into a fresh virtualenv,
and runs it from a directory that is not the checkout.
"""

from __future__ import annotations

import hashlib
import os
import subprocess
import sys
import venv
import zipfile
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]

pytestmark = pytest.mark.slow


def _digests(root: Path) -> dict[str, str]:
    return {
        str(p.relative_to(root)): hashlib.sha256(p.read_bytes()).hexdigest()
        for p in sorted(root.rglob("*.py"))
    }


COLLECTION = Path("playbooks/collections/ansible_collections/memcg_fix/remediate")
HOSTSIDE = COLLECTION / "plugins/module_utils/hostside"


def test_the_collections_module_utils_is_the_one_source_of_host_code():
    link = REPO / "remediate" / "hostside"
    assert link.is_symlink() and not (REPO / HOSTSIDE).is_symlink()
    assert link.resolve() == (REPO / HOSTSIDE).resolve()


@pytest.fixture(scope="module")
def installed(tmp_path_factory) -> Path:
    tmp = tmp_path_factory.mktemp("wheel")
    subprocess.run(
        [
            sys.executable,
            "-m",
            "pip",
            "wheel",
            "-q",
            "--no-deps",
            str(REPO),
            "-w",
            str(tmp / "dist"),
        ],
        check=True,
        capture_output=True,
    )
    (wheel,) = (tmp / "dist").glob("memcg_fix-*.whl")
    with zipfile.ZipFile(wheel) as archive:  # a checkout's bytecode never ships
        assert not [n for n in archive.namelist() if "__pycache__" in n or n.endswith(".pyc")]
    env_dir = tmp / "venv"
    venv.EnvBuilder(with_pip=True).create(env_dir)
    subprocess.run(
        [str(env_dir / "bin/pip"), "install", "-q", str(wheel)], check=True, capture_output=True
    )
    return env_dir


def test_the_wheel_ships_policies_playbooks_and_an_identical_copy_of_the_host_code(installed):
    site = next((installed / "lib").glob("python3*/site-packages"))
    bundled = site / "remediate" / "_bundled"
    assert (bundled / "policies" / "default.yaml").is_file()
    assert (bundled / "playbooks" / "gather.yml").is_file()
    assert (bundled / "playbooks" / "gather-raw.yml").is_file()
    collection = bundled / COLLECTION
    assert (collection / "galaxy.yml").is_file()
    assert (collection / "roles" / "memcg_remediate" / "tasks" / "main.yml").is_file()
    assert (collection / "plugins" / "modules" / "memcg_facts.py").is_file()
    assert (collection / "plugins" / "action" / "memcg_facts_raw.py").is_file()
    assert (collection / "plugins" / "module_utils" / "facts_bootstrap.py").is_file()
    copy = bundled / HOSTSIDE
    installed_hostside = site / "remediate" / "hostside"
    assert not installed_hostside.is_symlink()  # materialised in the wheel ...
    assert _digests(copy) == _digests(installed_hostside)  # ... byte for byte
    assert _digests(copy) == _digests(REPO / HOSTSIDE)


def test_the_installed_command_plans_from_a_facts_file_outside_the_checkout(installed, tmp_path):
    facts = REPO / "tests" / "data" / "facts"
    sample = next(iter(sorted(facts.glob("*.json"))))
    proc = subprocess.run(
        [str(installed / "bin" / "memcg-fix"), "plan", "--facts", str(sample)],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert proc.returncode in (0, 2), proc.stderr
    assert "policy default" in proc.stdout
    validate = subprocess.run(
        [
            str(installed / "bin" / "memcg-fix"),
            "policy",
            "validate",
            str(REPO / "policies" / "default.yaml"),
        ],
        capture_output=True,
        text=True,
        cwd=tmp_path,
        check=False,
    )
    assert validate.returncode == 0, validate.stderr


def test_the_installed_command_applies_a_plan_to_a_container_with_its_bundled_collection(
        installed, debian_target, inventory_path, tmp_path):
    """pip install alone: plan -i and apply find the role and modules in the wheel
    (no galaxy step, no checkout on any path, no collections path set)."""
    inventory = inventory_path([debian_target])
    env = {k: v for k, v in os.environ.items()
           if not k.startswith(("ANSIBLE_", "PYTHON", "VIRTUAL_ENV"))}
    env["PATH"] = f"{installed / 'bin'}{os.pathsep}{env.get('PATH', '')}"
    memcg_fix = str(installed / "bin" / "memcg-fix")
    policy = REPO / "tests" / "data" / "policies" / "el-site.yaml"  # pam-lastlog on Debian
    work = tmp_path / "change"
    work.mkdir()
    plan = subprocess.run([memcg_fix, "plan", "-i", str(inventory), "--policy", str(policy),
                           "--out", str(work / "plan")], capture_output=True, text=True,
                          cwd=work, env=env, stdin=subprocess.DEVNULL, timeout=600, check=False)
    assert plan.returncode in (0, 2), plan.stdout + plan.stderr
    playbook = work / "plan" / "memcg-fix.yml"
    apply = subprocess.run([memcg_fix, "apply", "-i", str(inventory), "--playbook", str(playbook),
                            "--policy", str(policy)], capture_output=True, text=True,
                           cwd=work, env=env, stdin=subprocess.DEVNULL, timeout=900, check=False)
    assert apply.returncode == 0, apply.stdout[-4000:] + apply.stderr[-2000:]
    assert f"{debian_target.name}" in apply.stdout and "verified" in apply.stdout
    login = debian_target.read_file("/etc/pam.d/login").decode()
    active = [line for line in login.splitlines()
              if "pam_lastlog.so" in line and not line.lstrip().startswith("#")]
    assert active and all("noupdate" in line.split() for line in active), active
