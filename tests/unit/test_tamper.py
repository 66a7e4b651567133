"""Tampered playbooks: apply refuses an edited playbook, naming what was edited.

A playbook rendered from a real plan is edited in each way a reviewer (or
anyone between review and run) could edit it: the hosts' plan data, the
apply play's settings (serial, max_fail_percentage, the role and its vars),
the host selection play, the header's fingerprint and digests, a comment,
the formatting. ``apply``'s check (``_fleet.read_playbook``, what apply and
rollback run first) must refuse each one with the section named, and
``--force`` must let it through with a warning that says the same.

Digests catch edits, not forgers: whoever recomputes every digest gets
past them (shown below). That is what a detached OpenPGP signature next to
the playbook is for: a throwaway key in a temporary GNUPGHOME signs a
rendered playbook with ``gpg --detach-sign --armor``; apply's check accepts
it and refuses a signature that does not verify.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from remediate import policy as policy_api
from remediate.commands._fleet import read_playbook
from remediate.errors import InputError
from remediate.facts import load_facts_files
from remediate.plan import canonical_json
from remediate.render import RenderOptions, check, render
from tests.targets.ansible import ansible_env

REPO = Path(__file__).resolve().parents[2]
FACTS = REPO / "tests" / "data" / "bad" / "facts" / "good-fleet.json"
UNREACHABLE = REPO / "tests" / "data" / "bad" / "inventories" / "unreachable.ini"


@pytest.fixture(scope="module")
def rendered() -> str:
    plan = policy_api.evaluate(policy_api.load_default(), load_facts_files([FACTS]))
    assert plan.has_mitigations
    return render(plan, RenderOptions())


def _sub(pattern: str, replacement: str, count: int = 1) -> Callable[[str], str]:
    def edit(text: str) -> str:
        edited, done = re.subn(pattern, replacement, text, count=count, flags=re.M)
        assert done, f"the edit {pattern!r} found nothing to change"
        return edited

    return edit


def _digest_of(name: str) -> Callable[[str], str]:
    return _sub(rf'^(# section-sha256: "{re.escape(name)}" )[0-9a-f]{{64}}$', r"\g<1>" + "0" * 64)


# (what is edited, the edit, what the refusal must say)
EDITS = [
    ("a host's mitigation parameters",
     _sub(r"(?<=      !unsafe 'web1.example.com':\n        - id: pam-lastlog\n          params:\n"
          r"            method: !unsafe ')noupdate'", "comment'"),
     "section 'plan for host web1.example.com' was edited"),
    ("a mitigation added to a host",
     _sub(r"^(      !unsafe 'db1.example.com':\n)", r"\g<1>        - id: nokmem\n"
          r"          params: {}\n"),
     "section 'plan for host db1.example.com' was edited"),
    ("a host's plan removed",
     _sub(r"^      !unsafe 'db1.example.com':\n        - id: pam-lastlog\n          params:\n"
          r"            method: !unsafe 'noupdate'\n", ""),
     "section 'plan for host db1.example.com' was edited"),
    ("a host added to the plan data",
     _sub(r"^(    memcg_fix_plan:\n)", r"\g<1>      extra.example.com:\n        - id: nokmem\n"
          r"          params: {}\n"),
     "section 'plan for host extra.example.com' was edited"),
    ("the batches (serial)",
     _sub(r"default\(\[1, \"10%\", \"25%\"\]\)", 'default(["100%"])'),
     "section 'apply play settings' was edited"),
    ("max_fail_percentage",
     _sub(r"default\(0\) }}'$", "default(100) }}'"),
     "section 'apply play settings' was edited"),
    ("the reboot consent in the role vars",
     _sub(r"memcg_remediate_reboot_ok: .*$", "memcg_remediate_reboot_ok: true"),
     "section 'apply play settings' was edited"),
    ("the role",
     _sub(r"^    - role: memcg_fix.remediate.memcg_remediate$", "    - role: someone_elses_role"),
     "section 'apply play settings' was edited"),
    ("a task added before the role",
     _sub(r"^(  roles:\n)", "  pre_tasks:\n    - name: Extra\n      ansible.builtin.command: id\n"
          r"\g<1>"),
     "section 'apply play settings' was edited"),
    ("become added to the apply play",
     _sub(r"^(  gather_facts: false\n  serial)", "  become: true\n\\g<1>"),
     "section 'apply play settings' was edited"),
    ("the fingerprint in the apply play's vars",
     _sub(r"(?<=    memcg_fix_fingerprint: sha256:)[0-9a-f]{64}", "1" * 64),
     "section 'apply play settings' was edited"),
    ("the hosts of the selection play",
     _sub(r"^(      - !unsafe 'web1.example.com'\n)",
          r"\g<1>      - !unsafe 'extra.example.com'\n"),
     "section 'host selection play' was edited"),
    ("the selection condition",
     _sub(r"when: inventory_hostname in memcg_fix_planned_hosts", "when: true"),
     "section 'host selection play' was edited"),
    ("the plan fingerprint in the header",
     _sub(r"(?<=^# plan-fingerprint: sha256:)[0-9a-f]{64}", "2" * 64),
     "the plan data no longer matches the plan fingerprint in the header"),
    ("the policy version in the header",
     _sub(r"^(# policy: default )1\.0\.0", r"\g<1>9.9.9"),
     "the plan data no longer matches the plan fingerprint in the header"),
    ("a section digest in the header",
     _digest_of("plan for host db1.example.com"),
     "section 'plan for host db1.example.com' was edited"),
    ("a section digest removed from the header",
     _sub(r'^# section-sha256: "apply play settings" [0-9a-f]{64}\n', ""),
     "section 'apply play settings' was edited"),
    ("a comment (a mitigation's rationale)",
     _sub(r"(?<=#       why: )For sshd or login", "Nothing to see here"),
     "the header comments or the formatting were edited"),
    ("a comment added at the end",
     lambda text: text + "# reviewed by nobody\n",
     "the header comments or the formatting were edited"),
    ("the content digest line",
     _sub(r"(?<=^# content-sha256: )[0-9a-f]{64}", "3" * 64),
     "the header comments or the formatting were edited"),
    ("the formatting only (a flow list, same data)",
     _sub(r"^    memcg_fix_planned_hosts:\n      - !unsafe 'db1.example.com'\n"
          r"      - !unsafe 'web1.example.com'\n",
          "    memcg_fix_planned_hosts: [!unsafe 'db1.example.com', !unsafe 'web1.example.com']\n"),
     "the header comments or the formatting were edited"),
]


def test_the_untouched_playbook_passes(rendered, tmp_path):
    path = tmp_path / "memcg-fix.yml"
    path.write_text(rendered)
    text, result, warnings = read_playbook(str(path), force=False)
    assert text == rendered and result.untouched and warnings == []


@pytest.mark.parametrize(("what", "edit", "says"), EDITS, ids=[e[0] for e in EDITS])
def test_an_edit_is_refused_with_the_section_named_and_force_overrides_it(
        rendered, tmp_path, what, edit, says):
    path = tmp_path / "memcg-fix.yml"
    edited = edit(rendered)
    assert edited != rendered
    path.write_text(edited)
    with pytest.raises(InputError) as refused:
        read_playbook(str(path), force=False)
    message = refused.value.message
    assert "\n" not in message
    assert message.startswith(f"{path} was edited after memcg-fix rendered it: ")
    assert says in message, message
    assert message.endswith("(render it again, or use --force to run it anyway)")
    _text, result, warnings = read_playbook(str(path), force=True)
    assert not result.untouched
    assert len(warnings) == 1 and says in warnings[0]
    assert warnings[0].endswith("(running anyway: --force)")


def test_a_playbook_that_is_no_longer_two_plays_is_refused_even_with_force(rendered, tmp_path):
    path = tmp_path / "memcg-fix.yml"
    path.write_text(rendered + "- name: A third play\n  hosts: all\n  tasks: []\n")
    for force in (False, True):
        with pytest.raises(InputError, match="not a memcg-fix playbook: expected its two plays"):
            read_playbook(str(path), force=force)


def _forge(text: str, edit: Callable[[str], str]) -> str:
    """Edit the plan data and recompute every digest and the fingerprint, as a
    forger who read memcg-fix's source would."""
    import yaml

    from remediate import render as render_mod

    body_start = text.index("\n---\n") + 1
    header, body = text[:body_start], text[body_start:]
    body = edit(body)
    plays = yaml.load(body, Loader=render_mod.PlaybookLoader)
    for name, digest in render_mod._sections(plays).items():
        header = re.sub(rf'^(# section-sha256: {re.escape(json.dumps(name))} )[0-9a-f]{{64}}$',
                        r"\g<1>" + digest, header, flags=re.M)
    plan_data = plays[1]["vars"]["memcg_fix_plan"]
    decisions = {"policy": {"id": "default", "version": "1.0.0"},
                 "hosts": [{"host": h, "mitigations": plan_data[h]} for h in sorted(plan_data)]}
    fingerprint = "sha256:" + hashlib.sha256(canonical_json(decisions)).hexdigest()
    header = re.sub(r"^# plan-fingerprint: .*$", "# plan-fingerprint: " + fingerprint, header,
                    flags=re.M)
    rest = header.split("\n", 1)[1] + body
    return "# content-sha256: " + hashlib.sha256(rest.encode()).hexdigest() + "\n" + rest


def test_digests_do_not_stop_a_forger_which_is_what_signatures_are_for(rendered):
    forged = _forge(rendered, _sub(r"method: !unsafe 'noupdate'", "method: !unsafe 'comment'"))
    assert "'comment'" in forged
    assert check(forged).untouched  # consistent digests: only a signature tells


# --- detached OpenPGP signatures --------------------------------------------------

def _gpg(home: Path, *args: str, check_rc: bool = True) -> subprocess.CompletedProcess[str]:
    env = dict(os.environ, GNUPGHOME=str(home))
    proc = subprocess.run(["gpg", "--batch", "--no-tty", *args], capture_output=True,
                          text=True, env=env, timeout=120, check=False)
    if check_rc:
        assert proc.returncode == 0, proc.stderr
    return proc


def _new_home(uid: str) -> Path:
    # a short path: gpg-agent's socket path must fit in 108 bytes
    home = Path(tempfile.mkdtemp(prefix="mfx-gpg-"))
    home.chmod(0o700)
    _gpg(home, "--passphrase", "", "--quick-gen-key", uid, "ed25519", "sign", "never")
    return home


def _stop_agent(home: Path) -> None:
    subprocess.run(["gpgconf", "--kill", "gpg-agent"], env=dict(os.environ, GNUPGHOME=str(home)),
                   capture_output=True, timeout=60, check=False)
    shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="module")
def keyring() -> Iterator[tuple[Path, Path]]:
    """(the reviewer's GNUPGHOME, a stranger's GNUPGHOME), throwaway keys in both."""
    if shutil.which("gpg") is None:
        pytest.fail("gpg is not installed (scripts/setup-dev.sh installs gnupg)")
    reviewer = _new_home("memcg-fix reviewer <reviewer@example.invalid>")
    stranger = _new_home("someone else <stranger@example.invalid>")
    try:
        yield reviewer, stranger
    finally:
        _stop_agent(reviewer)
        _stop_agent(stranger)


@pytest.fixture
def signed(rendered, keyring, tmp_path, monkeypatch) -> Path:
    reviewer, _stranger = keyring
    path = tmp_path / "memcg-fix.yml"
    path.write_text(rendered)
    _gpg(reviewer, "--armor", "--detach-sign", "--output", f"{path}.asc", str(path))
    monkeypatch.setenv("GNUPGHOME", str(reviewer))  # apply's gpg sees the reviewer's key
    return path


def test_a_good_signature_is_accepted(signed):
    assert Path(f"{signed}.asc").read_text().startswith("-----BEGIN PGP SIGNATURE-----")
    _text, result, warnings = read_playbook(str(signed), force=False)
    assert result.untouched and warnings == []


def _refused(path: Path, says: str) -> None:
    with pytest.raises(InputError) as refused:
        read_playbook(str(path), force=False)
    message = refused.value.message
    assert message.startswith(f"the signature {path}.asc does not verify: "), message
    assert says in message and "\n" not in message
    _text, _result, warnings = read_playbook(str(path), force=True)
    assert warnings == [f"the signature {path}.asc does not verify (running anyway: --force)"]


def test_a_signature_of_other_content_is_refused(signed, keyring, tmp_path):
    reviewer, _ = keyring
    other = tmp_path / "other.yml"
    other.write_text("something else\n")
    _gpg(reviewer, "--yes", "--armor", "--detach-sign", "--output", f"{signed}.asc", str(other))
    _refused(signed, "BAD signature")


def test_a_corrupted_signature_is_refused(signed):
    asc = Path(f"{signed}.asc")
    lines = asc.read_text().splitlines()
    body = next(i for i, line in enumerate(lines) if line and not line.startswith("-----")
                and ":" not in line)
    lines[body] = ("A" if lines[body][0] != "A" else "B") + lines[body][1:]
    asc.write_text("\n".join(lines) + "\n")
    with pytest.raises(InputError, match="does not verify"):
        read_playbook(str(signed), force=False)


def test_a_signature_by_an_unknown_key_is_refused(signed, keyring):
    _reviewer, stranger = keyring
    _gpg(stranger, "--yes", "--armor", "--detach-sign", "--output", f"{signed}.asc", str(signed))
    _refused(signed, "No public key")


def test_a_forged_playbook_fails_the_reviewers_signature(signed):
    forged = _forge(signed.read_text(),
                    _sub(r"method: !unsafe 'noupdate'", "method: !unsafe 'comment'"))
    signed.write_text(forged)
    _refused(signed, "BAD signature")


def _memcg_fix(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "remediate", *args], capture_output=True,
                          text=True, env=env, timeout=600, check=False)


def test_apply_refuses_an_edited_or_badly_signed_playbook_and_force_warns(
        signed, keyring, rendered, tmp_path):
    """Through the real command line: exit 3 and one line; --force goes on (and
    the unreachable hosts then fail the run, exit 4), with the warning shown."""
    reviewer, stranger = keyring
    env = ansible_env({"GNUPGHOME": str(reviewer)})
    edited = tmp_path / "edited.yml"
    edited.write_text(EDITS[4][1](rendered))  # the batches
    # (--out: a run that wrongly goes on must not litter the working directory)
    refused = _memcg_fix("apply", "-i", str(UNREACHABLE), "--playbook", str(edited),
                         "--out", str(tmp_path / "refused-1"), env=env)
    assert refused.returncode == 3
    [line] = refused.stderr.splitlines()
    assert line.startswith("memcg-fix: ") and "section 'apply play settings' was edited" in line
    _gpg(stranger, "--yes", "--armor", "--detach-sign", "--output", f"{signed}.asc", str(signed))
    refused = _memcg_fix("apply", "-i", str(UNREACHABLE), "--playbook", str(signed),
                         "--out", str(tmp_path / "refused-2"), env=env)
    assert refused.returncode == 3
    [line] = refused.stderr.splitlines()
    assert "does not verify" in line and "No public key" in line
    forced = _memcg_fix("apply", "-i", str(UNREACHABLE), "--playbook", str(edited), "--force",
                        "--out", str(tmp_path / "out"), "--quiet", env=env)
    assert "Traceback" not in forced.stderr
    assert forced.returncode == 4, forced.stderr
    assert ("memcg-fix: warning: " in forced.stderr
            and "section 'apply play settings' was edited" in forced.stderr
            and "(running anyway: --force)" in forced.stderr)
