"""memcg_package_status on a real host orders runc's spellings as the controller does.

The module runs on the Debian target through ansible-playbook, against a
runc on PATH that prints ``runc version 1.0.0_rc94`` (a script we put there:
the spelling is what matters, not the binary). Before memcg-fix had one
comparator the module read ``1.0.0_rc94`` as ``1.0.0`` and reported a
minimum of 1.0.0 as met, while the controller planned runc-upgrade.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from remediate.versions import compare
from tests.targets.ansible import run_playbook

pytestmark = pytest.mark.containers

FAKE_RUNC = "#!/bin/sh\necho 'runc version 1.0.0_rc94'\necho 'spec: 1.0.2-dev'\n"
MINIMUMS = ("1.0.0", "1.0.0-rc94", "1.0.0~rc94", "1.0.0-rc95", "1.0.0-rc10")


def test_runc_spellings_agree_with_the_controller(debian_target, inventory_path, tmp_path: Path):
    debian_target.write_file("/usr/local/bin/runc", FAKE_RUNC, mode=0o755)
    play = tmp_path / "status.yml"
    tasks: list[dict[str, object]] = [
        {
            "name": f"Status {i}",
            "memcg_fix.remediate.memcg_package_status": {
                "name": "runc",
                "min_version": minimum,
                "binary": "runc",
            },
            "register": f"status_{i}",
        }
        for i, minimum in enumerate(MINIMUMS)
    ]
    tasks.append(
        {
            "name": "Show",
            "ansible.builtin.debug": {
                "msg": "STATUS {{ ["
                + ", ".join(f"status_{i}" for i in range(len(MINIMUMS)))
                + "] | map(attribute='satisfied') | list | to_json }} {{ status_0.binary_version }}"
            },
        }
    )
    play.write_text(
        yaml.safe_dump(
            [{"name": "runc status", "hosts": "targets", "gather_facts": False, "become": True,
              "tasks": tasks}],
            sort_keys=False,
        )
    )
    result = run_playbook(play, inventory_path([debian_target]))
    assert result.returncode == 0, result.describe()
    line = next(x for x in result.output.splitlines() if "STATUS [" in x)
    shown = line.split("STATUS ", 1)[1].rstrip('"').strip()
    satisfied_json, version = shown.rsplit(" ", 1)
    host = json.loads(satisfied_json)
    controller = [compare("1.0.0_rc94", minimum, "upstream") >= 0 for minimum in MINIMUMS]
    assert version == "1.0.0_rc94"
    assert host == controller == [False, True, True, False, True]
