"""pam-lastlog on EL8/EL9 through the real authselect (1.2.6 with each
release's patches, built into the el8/el9 images by tests/targets/
el_authselect.py), one story per test, each step a real ansible-playbook
run of the memcg_pam_lastlog module in a play of its own (a quarter of the
role's time per run; the role itself runs pam-lastlog through the real
authselect in the el8/el9/check_mode molecule scenarios and test_fleet.py).

What each test proves, by the defect of issue 12 it covers:

* 6: apply takes authselect's backup through ``select --backup=NAME`` (there
  is no ``authselect backup``); check mode fails where the run would fail;
  a failed run leaves no rollback note;
* 7: an admin's current custom profile is the base of memcg-fix's, edits
  and all (``create-profile -b custom/Y``);
* 8: rollback refuses to discard what the admin changed after the apply
  (features, edits of the custom profile) and names it; ``force`` restores;
* 9: an admin's reselect is reported, and apply and rollback carry on;
* 10: rollback leaves no authselect backup or custom profile behind;
  ``method=comment`` keeps every PAM jump where it was.

The full cycle runs on every profile each release ships, with and without
features: check mode changes no byte and previews the result, ``authselect
check`` passes, ``current`` keeps the features, a second run changes nothing,
rollback is byte for byte (mode and owner included).
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import yaml

from remediate.hostside.pam import parse_pam_lines
from remediate.resources import COLLECTION
from tests.integration.test_role import run_role
from tests.targets.ansible import PlaybookResult, run_playbook

pytestmark = pytest.mark.containers

MODULE = f"{COLLECTION}.memcg_pam_lastlog"

# what authselect owns, and memcg-fix's record of it
AUTHSELECT_TREES = ("/etc", "/var/lib/authselect")
MANIFEST = "/var/lib/memcg-fix/backups/manifest.json"
CUSTOM = "/etc/authselect/custom/memcg-fix"
BACKUP = "/var/lib/authselect/backups/memcg-fix-before"
RESELECTED = "was selected after memcg-fix selected custom/memcg-fix"


def pam_lastlog(tmp_path: Path, inventory: Path, *, check: bool = False, diff: bool = False,
                **params: Any) -> PlaybookResult:
    """One run of the memcg_pam_lastlog module on every target, as root."""
    play = tmp_path / "pam-lastlog.yml"
    play.write_text(yaml.safe_dump([{
        "name": "memcg_pam_lastlog", "hosts": "targets", "gather_facts": False,
        "tasks": [{"name": "memcg_pam_lastlog", MODULE: params, "become": True}],
    }]))
    return run_playbook(play, inventory, check=check, diff=diff)


def snapshot(target) -> dict[str, str]:
    return target.tree_checksums(AUTHSELECT_TREES, metadata=True)


def changed_paths(before: dict[str, str], after: dict[str, str]) -> list[str]:
    return sorted(p for p in set(before) | set(after) if before.get(p) != after.get(p))


def current(target) -> list[str]:
    return target.sh("authselect current --raw").split()


def authselect_notes(target) -> list[str]:
    if not target.exists(MANIFEST):
        return []
    notes = json.loads(target.read_file(MANIFEST))["notes"]
    return sorted(key for key in notes if key.startswith("authselect"))


def lastlog_lines(text: str) -> list[str]:
    return [line for line in text.splitlines()
            if "pam_lastlog.so" in line and not line.lstrip().startswith("#")]


def assert_fixed(target) -> None:
    """authselect accepts its files, and every pam_lastlog rule writes nothing."""
    assert target.run(["authselect", "check"]).returncode == 0, target.name
    lines = lastlog_lines(target.read_file("/etc/pam.d/postlogin").decode())
    assert lines and all("noupdate" in line.split() for line in lines), (target.name, lines)


# every profile each release ships (EL9's package drops nis), with and without features
# (the images' own selection, sssd with features, is every other test's start)
CYCLE = (
    ("el8", "sssd"),
    ("el8", "minimal with-silent-lastlog without-nullok"),
    ("el8", "nis with-pwhistory"),
    ("el8", "winbind with-mkhomedir with-faillock"),
    ("el9", "minimal"),
)


def test_full_cycle_on_every_profile_with_and_without_features(
    target_factory, inventory_path, tmp_path
):
    hosts = []
    for kind in ("el8", "el9"):
        selections = [s for k, s in CYCLE if k == kind]
        hosts += zip(target_factory(kind, len(selections)), selections, strict=True)
    for index, (target, selection) in enumerate(hosts):
        target.sh(f"authselect select {selection} >/dev/null")
        if index == 0:
            # authselect creates its backup directory on first use: rollback
            # must remove it again when memcg-fix's backup was the first
            target.sh("rm -r /var/lib/authselect/backups")
    inventory = inventory_path([t for t, _ in hosts])
    before = {t.name: snapshot(t) for t, _ in hosts}

    preview = pam_lastlog(tmp_path, inventory, check=True, diff=True)
    assert preview.returncode == 0, preview.describe()
    assert preview.changed() == len(hosts), preview.describe()
    for t, _ in hosts:
        assert snapshot(t) == before[t.name], t.name

    applied = pam_lastlog(tmp_path, inventory)
    assert applied.returncode == 0, applied.describe()
    for t, selection in hosts:
        assert_fixed(t)
        # the same features on memcg-fix's profile, and authselect's own backup
        assert current(t) == ["custom/memcg-fix", *selection.split()[1:]], t.name
        backups = t.sh("authselect backup-list --raw").split()
        assert [b for b in backups if b.startswith("memcg-fix")], (t.name, backups)
        # check mode showed the lines the apply wrote
        for line in lastlog_lines(t.read_file("/etc/pam.d/postlogin").decode()):
            assert f"+{line}" in preview.output or f" {line}" in preview.output, (t.name, line)

    again = pam_lastlog(tmp_path, inventory)
    assert again.returncode == 0, again.describe()
    assert again.changed() == 0, again.describe()

    rolled = pam_lastlog(tmp_path, inventory, state="absent")
    assert rolled.returncode == 0, rolled.describe()
    for t, selection in hosts:
        assert changed_paths(before[t.name], snapshot(t)) == [], t.name
        assert current(t) == selection.split(), t.name
        assert t.run(["authselect", "check"]).returncode == 0, t.name
        assert authselect_notes(t) == [], t.name


def test_check_mode_fails_where_the_run_fails_and_a_failed_run_leaves_no_note(
    el8_target, inventory_path, tmp_path
):
    t = el8_target
    # a profile of the admin's that happens to carry memcg-fix's profile name
    t.sh("authselect create-profile memcg-fix -b sssd >/dev/null")
    before = snapshot(t)
    inventory = inventory_path([t])
    preview = pam_lastlog(tmp_path, inventory, check=True)
    assert preview.returncode != 0, preview.describe()
    assert "custom/memcg-fix already exists but is not selected" in preview.output
    failed = pam_lastlog(tmp_path, inventory)
    assert failed.returncode != 0, failed.describe()
    assert "custom/memcg-fix already exists but is not selected" in failed.output
    assert changed_paths(before, snapshot(t)) == []
    # nothing for a rollback to act on: no note, no backup
    assert authselect_notes(t) == []
    assert not t.exists(BACKUP)


def test_a_custom_profile_of_the_admins_is_the_base_edits_and_all(
    el8_target, el9_target, inventory_path, tmp_path
):
    # custom/mysssd, and custom/sssd (a common idiom: same name as the stock one)
    bases = [(el8_target, "mysssd"), (el9_target, "sssd")]
    edit = "session     optional                   pam_echo.so memcg-fix-test-site-edit"
    for t, name in bases:
        t.sh(f"authselect create-profile {name} -b sssd >/dev/null && "
             f"echo '{edit}' >> /etc/authselect/custom/{name}/system-auth && "
             f"authselect select custom/{name} with-fingerprint >/dev/null")
        assert edit in t.read_file("/etc/pam.d/system-auth").decode()
    inventory = inventory_path([t for t, _ in bases])
    before = {t.name: snapshot(t) for t, _ in bases}

    applied = pam_lastlog(tmp_path, inventory)
    assert applied.returncode == 0, applied.describe()
    for t, _ in bases:
        assert_fixed(t)
        assert current(t) == ["custom/memcg-fix", "with-fingerprint"]
        # the admin's edit is in memcg-fix's profile and in the live PAM file
        assert edit in t.read_file(f"{CUSTOM}/system-auth").decode(), t.name
        assert edit in t.read_file("/etc/pam.d/system-auth").decode(), t.name

    rolled = pam_lastlog(tmp_path, inventory, state="absent")
    assert rolled.returncode == 0, rolled.describe()
    for t, name in bases:
        assert changed_paths(before[t.name], snapshot(t)) == [], t.name
        assert current(t) == [f"custom/{name}", "with-fingerprint"]


def test_rollback_refuses_to_discard_what_the_admin_changed_after_the_apply(
    el8_target, inventory_path, tmp_path
):
    t = el8_target
    inventory = inventory_path([t])
    before = snapshot(t)
    applied = pam_lastlog(tmp_path, inventory)
    assert applied.returncode == 0, applied.describe()

    # the admin enables a feature: the fix lives in the profile, so it stays
    t.sh("authselect enable-feature with-mkhomedir >/dev/null")
    assert_fixed(t)
    changed = snapshot(t)
    refused = pam_lastlog(tmp_path, inventory, state="absent")
    assert refused.returncode != 0, refused.describe()
    assert "changed after memcg-fix applied it (features +with-mkhomedir)" in refused.output
    assert changed_paths(changed, snapshot(t)) == []

    # ... and edits memcg-fix's profile, then regenerates: the fix stays too
    t.sh(f"echo '# site policy' >> {CUSTOM}/system-auth && authselect apply-changes >/dev/null")
    assert_fixed(t)
    refused = pam_lastlog(tmp_path, inventory, state="absent")
    assert refused.returncode != 0, refused.describe()
    assert "features +with-mkhomedir; custom/memcg-fix/system-auth edited" in refused.output

    # with force, rollback restores the state before the apply, byte for byte
    forced = pam_lastlog(tmp_path, inventory, state="absent", force=True)
    assert forced.returncode == 0, forced.describe()
    assert changed_paths(before, snapshot(t)) == []


def test_a_reselect_by_the_admin_is_reported_and_is_no_dead_end(
    el9_target, inventory_path, tmp_path
):
    t = el9_target
    inventory = inventory_path([t])
    applied = pam_lastlog(tmp_path, inventory)
    assert applied.returncode == 0, applied.describe()

    # the admin selects a stock profile again (and a new feature)
    t.sh("authselect select sssd with-fingerprint with-mkhomedir --force >/dev/null")
    reapplied = pam_lastlog(tmp_path, inventory)
    assert reapplied.returncode == 0, reapplied.describe()
    assert RESELECTED in reapplied.output
    assert_fixed(t)
    assert current(t) == ["custom/memcg-fix", "with-fingerprint", "with-mkhomedir"]
    # the new rollback point is the admin's choice
    assert "sssd with-fingerprint with-mkhomedir" in t.read_file(MANIFEST).decode()

    # a reselect, then the role's rollback: the admin's choice stays,
    # memcg-fix's leftovers go, and the host's report says so
    t.sh("authselect select sssd with-fingerprint --force >/dev/null")
    rolled = run_role(tmp_path, inventory, [], memcg_remediate_state="absent")
    assert rolled.returncode == 0, rolled.describe()
    assert f"pam-lastlog: authselect profile sssd with-fingerprint {RESELECTED}" in rolled.output
    assert current(t) == ["sssd", "with-fingerprint"]
    assert not t.exists(CUSTOM) and not t.exists(BACKUP)
    assert authselect_notes(t) == []
    again = pam_lastlog(tmp_path, inventory, state="absent")
    assert again.returncode == 0, again.describe()
    assert again.changed() == 0, again.describe()


def _session_rules(text: str) -> list[tuple[str, str, str]]:
    return [(r["type"], r["control"], r["module"]) for r in parse_pam_lines(text)
            if r["type"] == "session"]


def test_method_comment_keeps_every_pam_jump_where_it_was(
    el7_target, el9_target, inventory_path, tmp_path
):
    # EL7's authconfig postlogin and EL9's authselect one share the stack:
    #   [success=1 default=ignore] pam_succeed_if  (sshd, login: skip the next rule)
    #   [default=1] pam_lastlog nowtmp showfailed  (gdm, su: skip the next rule)
    #   optional pam_lastlog silent noupdate showfailed
    targets = [el7_target, el9_target]
    inventory = inventory_path(targets)
    before = {t.name: snapshot(t) for t in targets}
    rules_before = {t.name: _session_rules(t.read_file("/etc/pam.d/postlogin").decode())
                    for t in targets}
    applied = pam_lastlog(tmp_path, inventory, method="comment")
    assert applied.returncode == 0, applied.describe()
    for t in targets:
        rules = _session_rules(t.read_file("/etc/pam.d/postlogin").decode())
        old = rules_before[t.name]
        # as many rules, each where it was; the writing pam_lastlog rule is
        # pam_permit under the same control, so every jump lands where it did
        assert len(rules) == len(old), (t.name, old, rules)
        replaced = [i for i, (a, b) in enumerate(zip(old, rules, strict=True)) if a != b]
        assert [(old[i], rules[i]) for i in replaced] == [
            (("session", "[default=1]", "pam_lastlog.so"),
             ("session", "[default=1]", "pam_permit.so"))], t.name
        if t is el9_target:
            assert t.run(["authselect", "check"]).returncode == 0
    rolled = pam_lastlog(tmp_path, inventory, state="absent")
    assert rolled.returncode == 0, rolled.describe()
    for t in targets:
        assert changed_paths(before[t.name], snapshot(t)) == [], t.name
