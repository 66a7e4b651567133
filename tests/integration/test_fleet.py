"""memcg-fix against a fleet of real container targets: plan -i, apply, rollback.

Debian, el7 and el9 containers (the EL ones with their release's real grubby;
el9 with the real authselect) are driven over ssh by the real memcg-fix CLI,
which runs Ansible through ansible-runner exactly as it does in production.
"""

from __future__ import annotations

import json
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from tests.targets.ansible import ansible_bin, ansible_env
from tests.targets.common import podman

pytestmark = pytest.mark.containers

WATCHED = ("/etc", "/boot", "/var/lib", "/usr/local/sbin")
PAM_SITE_POLICY = Path(__file__).resolve().parents[1] / "data" / "policies" / "pam-site.yaml"


def memcg_fix(*args: str, timeout: float = 900) -> subprocess.CompletedProcess[str]:
    # the fleet tests plan with a site policy (tests/data/policies/pam-site.yaml)
    if args and args[0] in ("plan", "apply") and "--policy" not in args:
        args = (*args, "--policy", str(PAM_SITE_POLICY))
    return subprocess.run(
        [sys.executable, "-m", "remediate", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        env=ansible_env(),
        check=False,
    )


def checksums(targets):
    return {t.name: t.tree_checksums(WATCHED) for t in targets}


def changed_paths(before, after):
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


@pytest.fixture
def fleet(debian_target, el7_target, el9_target, inventory_path):
    targets = [debian_target, el7_target, el9_target]
    return targets, inventory_path(targets)


def test_plan_shows_the_real_dry_run_changes_no_byte_and_writes_a_clean_playbook(fleet, tmp_path):
    targets, inventory = fleet
    before = checksums(targets)
    out = tmp_path / "plan"
    result = memcg_fix("plan", "-i", str(inventory), "--out", str(out))
    assert result.returncode == 2, result.stdout + result.stderr
    # per host, the diff of every file apply would change
    assert "Dry run (ansible-playbook --check --diff)" in result.stdout
    for t in targets:
        assert f"== {t.name}:" in result.stdout
    assert "+session    optional   pam_lastlog.so noupdate" in result.stdout
    assert "(via authselect profile custom/memcg-fix)" in result.stdout
    # check mode changed no byte on any host
    after = checksums(targets)
    for t in targets:
        assert not changed_paths(before[t.name], after[t.name]), t.name
    playbook = out / "memcg-fix.yml"
    facts = json.loads((out / "facts.json").read_text())
    assert sorted(h["host"] for h in facts["hosts"]) == sorted(t.name for t in targets)
    # the playbook passes a syntax check and the production lint profile
    env = ansible_env()  # the collection (role and modules) on ANSIBLE_COLLECTIONS_PATH
    syntax = subprocess.run(
        [ansible_bin("ansible-playbook"), "--syntax-check", "-i", str(inventory), str(playbook)],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )
    assert syntax.returncode == 0, syntax.stdout + syntax.stderr
    # ansible-lint lives in the current-release venv only (a static check, the
    # same on every ansible-core line)
    if Path(ansible_bin("ansible-lint")).is_absolute():
        lint = subprocess.run(
            [ansible_bin("ansible-lint"), "--offline", "--profile", "production", str(playbook)],
            capture_output=True,
            text=True,
            env=env,
            check=False,
            cwd=tmp_path,
        )
        assert lint.returncode == 0, lint.stdout + lint.stderr
    # rendering the saved plan again gives the same bytes
    again = memcg_fix("render", "--plan", str(out / "plan.json"))
    assert again.returncode == 0, again.stderr
    assert again.stdout == playbook.read_text()


def test_apply_changes_the_hosts_a_second_apply_changes_nothing_and_rollback_restores_them(
    fleet, tmp_path
):
    targets, inventory = fleet
    before = checksums(targets)
    out = tmp_path / "plan"
    assert memcg_fix("plan", "-i", str(inventory), "--out", str(out)).returncode == 2
    playbook = str(out / "memcg-fix.yml")

    first = memcg_fix(
        "apply",
        "-i",
        str(inventory),
        "--playbook",
        playbook,
        "--out",
        str(tmp_path / "a1"),
        "--format",
        "json",
    )
    assert first.returncode == 0, first.stdout + first.stderr
    summary = json.loads(first.stdout)
    assert {h["host"]: h["outcome"] for h in summary["hosts"]} == {
        t.name: "verified" for t in targets
    }
    assert all("pam-lastlog" in h["changed"] for h in summary["hosts"])
    assert (tmp_path / "a1" / "artifacts" / "apply" / "job_events").is_dir()
    applied = checksums(targets)
    for t in targets:
        assert changed_paths(before[t.name], applied[t.name]), t.name

    second = memcg_fix(
        "apply",
        "-i",
        str(inventory),
        "--playbook",
        playbook,
        "--out",
        str(tmp_path / "a2"),
        "--format",
        "json",
    )
    assert second.returncode == 0, second.stdout + second.stderr
    assert all(h["changed"] == [] for h in json.loads(second.stdout)["hosts"])
    assert checksums(targets) == applied

    back = memcg_fix(
        "rollback", "-i", str(inventory), "--playbook", playbook, "--out", str(tmp_path / "rb")
    )
    assert back.returncode == 0, back.stdout + back.stderr
    restored = checksums(targets)
    for t in targets:
        # byte for byte in /etc and /boot; /var/lib keeps memcg-fix's emptied backup store
        diff = [
            p
            for p in changed_paths(before[t.name], restored[t.name])
            if p.startswith(("/etc", "/boot", "/usr/local/sbin"))
        ]
        assert not diff, (t.name, diff)


def test_an_edited_playbook_is_refused_with_the_section_named(fleet, tmp_path):
    targets, inventory = fleet
    out = tmp_path / "plan"
    assert memcg_fix("plan", "-i", str(inventory), "--out", str(out)).returncode == 2
    playbook = out / "memcg-fix.yml"
    text = playbook.read_text()
    playbook.write_text(text.replace("'noupdate'", "'comment'", 1))
    before = checksums(targets)
    refused = memcg_fix("apply", "-i", str(inventory), "--playbook", str(playbook))
    assert refused.returncode == 3
    assert "was edited" in refused.stderr and "plan for host" in refused.stderr
    assert "Traceback" not in refused.stderr
    assert checksums(targets) == before


def _wait_for_event(events_dir: Path, host: str, task_prefix: str, timeout: float) -> bool:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        for path in sorted(events_dir.glob("*.json")) if events_dir.is_dir() else []:
            try:
                event = json.loads(path.read_text())
            except (OSError, ValueError):
                continue
            data = event.get("event_data") or {}
            if data.get("host") == host and str(data.get("task", "")).startswith(task_prefix):
                return True
        time.sleep(0.2)
    return False


def test_a_canary_lost_mid_run_is_reported_and_no_later_batch_starts(fleet, tmp_path):
    targets, inventory = fleet
    out = tmp_path / "plan"
    assert memcg_fix("plan", "-i", str(inventory), "--out", str(out)).returncode == 2
    playbook = out / "memcg-fix.yml"
    canary = sorted(targets, key=lambda t: t.name)[0]  # the group's first host goes first
    others = [t for t in targets if t is not canary]
    before = checksums(others)
    apply_out = tmp_path / "apply"
    events = apply_out / "artifacts" / "apply" / "job_events"

    def drop_canary() -> None:
        # once the canary is inside the role, its "network" goes away
        if _wait_for_event(events, canary.name, "Collect memcg facts before", 300):
            podman("kill", canary.name, check=False)

    killer = threading.Thread(target=drop_canary)
    killer.start()
    result = memcg_fix(
        "apply",
        "-i",
        str(inventory),
        "--playbook",
        str(playbook),
        "--out",
        str(apply_out),
        "--format",
        "json",
    )
    killer.join()
    assert result.returncode == 4, result.stdout + result.stderr
    rows = {h["host"]: h for h in json.loads(result.stdout)["hosts"]}
    assert rows[canary.name]["outcome"] in ("unreachable", "failed")
    assert all(rows[t.name]["outcome"] == "not-run" for t in others), rows
    # the later batches never started: their hosts are untouched
    assert checksums(others) == before
