"""The role's reaper.conf.j2, rendered by a real ansible-playbook run (local
connection), must be a configuration the reaper accepts, with the values of
the mitigation parameters it was given and the catalogue defaults otherwise."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest
import yaml

from remediate.hostside import reaper_config
from remediate.resources import role_dir

REPO = Path(__file__).resolve().parents[3]
TEMPLATE = role_dir() / "templates" / "reaper.conf.j2"
ANSIBLE_PLAYBOOK = Path(sys.executable).parent / "ansible-playbook"

CASES = {
    "none": {},
    "reclaim-defaults": {"__memcg_remediate_reclaim": {}},
    "both": {
        "__memcg_remediate_reclaim": {"grace_seconds": 60, "min_charge_bytes": 4096,
                                      "interval": "2min", "dry_run": True},
        "__memcg_remediate_drop_caches": {"dying_threshold": 100, "min_interval_seconds": 600,
                                          "require_growth": False, "dry_run": True},
        "memcg_remediate_textfile_dir": "/srv/prometheus/textfile",
        "__memcg_remediate_state_dir": "/var/lib/memcg-fix-test",
    },
    "drop-only": {"__memcg_remediate_reclaim": None,
                  "__memcg_remediate_drop_caches": {"dying_threshold": 5000}},
}


@pytest.fixture(scope="module")
def rendered(tmp_path_factory) -> dict[str, dict]:
    if not ANSIBLE_PLAYBOOK.exists():
        pytest.skip(f"ansible-playbook is not installed next to {sys.executable}")
    out = tmp_path_factory.mktemp("reaper-conf")
    plays = [{
        "name": f"render {name}", "hosts": "localhost", "connection": "local",
        "gather_facts": False, "vars": variables,
        "tasks": [{"name": "reaper.conf", "ansible.builtin.template": {
            "src": str(TEMPLATE), "dest": str(out / (f"{name}.conf")), "mode": "0644"}}],
    } for name, variables in CASES.items()]
    playbook = out / "render.yml"
    playbook.write_text(yaml.safe_dump(plays, sort_keys=False))
    env = dict(os.environ, ANSIBLE_NOCOLOR="1", ANSIBLE_RETRY_FILES_ENABLED="0")
    proc = subprocess.run(
        [str(ANSIBLE_PLAYBOOK), "-i", "localhost,", str(playbook),
         "-e", f"ansible_python_interpreter={sys.executable}"],
        capture_output=True, text=True, env=env, timeout=300)
    assert proc.returncode == 0, proc.stdout[-3000:] + proc.stderr[-3000:]
    return {name: reaper_config.parse_config((out / (f"{name}.conf")).read_text(), name)
            for name in CASES}


def test_nothing_selected_enables_nothing(rendered):
    config = rendered["none"]
    assert config["reclaim"]["enabled"] is False
    assert config["drop_caches"]["enabled"] is False
    assert config["reaper"]["state_dir"] == "/var/lib/memcg-fix"
    assert config["reaper"]["textfile_dir"] == "/var/lib/node_exporter/textfile_collector"
    assert config["reaper"]["host_root"] == "/"


def test_catalogue_defaults(rendered):
    config = rendered["reclaim-defaults"]
    assert config["reclaim"] == dict(reaper_config.defaults()["reclaim"], enabled=True)
    assert config["drop_caches"]["enabled"] is False
    drop = rendered["drop-only"]["drop_caches"]
    assert drop["enabled"] is True and drop["dry_run"] is False
    assert (drop["dying_threshold"], drop["min_interval_seconds"], drop["require_growth"]) == \
        (5000, 3600, True)
    assert rendered["drop-only"]["reclaim"]["enabled"] is False


def test_parameters_reach_the_config(rendered):
    config = rendered["both"]
    assert config["reclaim"]["enabled"] is True
    assert config["reclaim"]["dry_run"] is True
    assert config["reclaim"]["grace_seconds"] == 60
    assert config["reclaim"]["min_charge_bytes"] == 4096
    assert config["drop_caches"] == dict(
        reaper_config.defaults()["drop_caches"], enabled=True, dry_run=True, dying_threshold=100,
        min_interval_seconds=600, require_growth=False)
    assert config["reaper"]["textfile_dir"] == "/srv/prometheus/textfile"
    assert config["reaper"]["state_dir"] == "/var/lib/memcg-fix-test"
