"""The PAM control-flow evaluator on real stock stacks (tests/data/samples/pam/stacks/).

Each test asks what libpam would run for a service and checks it against
the stack by hand: on stock EL7/EL8/EL9 the pam_succeed_if line in
postlogin jumps over the writing pam_lastlog line for sshd and login, while
su runs it; Debian 12's login runs pam_lastlog before pam_systemd (outside
the session scope) and its sshd has none.
"""

from __future__ import annotations

import time
from pathlib import Path

import pytest

from remediate.hostside import pamflow

STACKS = Path(__file__).resolve().parents[2] / "data" / "samples" / "pam" / "stacks"


def reader(directory: Path, **overrides: str):
    def read(name: str) -> str | None:
        if name in overrides:
            return overrides[name]
        path = directory / name
        return path.read_text() if path.is_file() else None

    return read


def lines_by_args(result: dict) -> dict[str, dict]:
    return {" ".join(line["args"]): line for line in result["lines"]}


@pytest.mark.parametrize("stack", ["el7", "el8-authselect-sssd", "el9-authselect-sssd"])
@pytest.mark.parametrize("service", ["sshd", "login"])
def test_stock_el_postlogin_writes_nothing_for_ssh_and_console_logins(stack, service):
    result = pamflow.lastlog_for(reader(STACKS / stack), service)
    assert result["error"] is None
    by_args = lines_by_args(result)
    writing = next(line for args, line in by_args.items() if "nowtmp" in args)
    quiet = next(line for args, line in by_args.items() if "noupdate" in args)
    assert writing["runs"] == "never" and quiet["runs"] == "always"
    assert quiet["after_pam_systemd"] is True  # password-auth/system-auth come first
    assert (result["writes_wtmp"], result["writes_lastlog"], result["writes_in_session"]) == (
        False, False, False)


def test_stock_el7_su_runs_the_writing_line_inside_the_session():
    result = pamflow.lastlog_for(reader(STACKS / "el7"), "su")
    by_args = lines_by_args(result)
    assert by_args["nowtmp showfailed"]["runs"] == "always"
    assert by_args["silent noupdate showfailed"]["runs"] == "never"  # [default=1] skips it
    assert by_args["nowtmp showfailed"]["after_pam_systemd"] is True
    assert (result["writes_wtmp"], result["writes_lastlog"], result["writes_in_session"]) == (
        False, True, True)


def test_debian12_login_writes_before_pam_systemd_and_sshd_not_at_all():
    login = pamflow.lastlog_for(reader(STACKS / "debian12"), "login")
    [line] = login["lines"]
    assert line["file"] == "login" and line["runs"] == "always"
    assert line["after_pam_systemd"] is False  # @include common-session comes after it
    assert (login["writes_wtmp"], login["writes_lastlog"], login["writes_in_session"]) == (
        True, True, False)
    sshd = pamflow.lastlog_for(reader(STACKS / "debian12"), "sshd")
    assert sshd["lines"] == [] and sshd["writes_in_session"] is False


def test_a_postlogin_that_always_writes_does_so_inside_the_ssh_session():
    # the postlogin of Oracle's zombie-memcg report: "session required pam_lastlog.so showfailed"
    oracle = (STACKS.parent / "oracle-postlogin-lastlog-required.txt").read_text()
    result = pamflow.lastlog_for(reader(STACKS / "el8-authselect-sssd", postlogin=oracle), "sshd")
    [line] = result["lines"]
    assert line["runs"] == "always" and line["after_pam_systemd"] is True
    assert (result["writes_wtmp"], result["writes_lastlog"], result["writes_in_session"]) == (
        True, True, True)


def test_the_mitigation_leaves_nothing_writing():
    # pam-lastlog's default method adds noupdate to every pam_lastlog line
    oracle = "session required pam_lastlog.so showfailed noupdate\n"
    result = pamflow.lastlog_for(reader(STACKS / "el7", postlogin=oracle), "sshd")
    assert result["writes_in_session"] is False


def test_a_condition_on_the_user_is_followed_both_ways():
    postlogin = (
        "session [success=1 default=ignore] pam_succeed_if.so uid >= 1000 quiet\n"
        "session optional pam_lastlog.so\n"
    )
    result = pamflow.lastlog_for(reader(STACKS / "el7", postlogin=postlogin), "sshd")
    [line] = result["lines"]
    assert line["runs"] == "sometimes"
    assert result["writes_wtmp"] is None and result["writes_in_session"] is None


def test_substack_jumps_and_done_end_inside_the_substack():
    files = {
        "svc": "session substack inner\nsession optional pam_lastlog.so\n",
        "inner": "session sufficient pam_permit.so\nsession optional pam_x.so\n",
    }
    result = pamflow.lastlog_for(lambda name: files.get(name), "svc")
    # "sufficient" succeeding ends the substack only: the outer line still runs
    assert result["lines"][0]["runs"] == "always"
    files["svc"] = "session include inner\nsession optional pam_lastlog.so\n"
    result = pamflow.lastlog_for(lambda name: files.get(name), "svc")
    # included, "done" ends the whole stack: pam_lastlog never runs
    assert result["lines"][0]["runs"] == "never"


@pytest.mark.parametrize(
    ("files", "message"),
    [
        ({"svc": "session include svc\n"}, "include each other"),
        ({"svc": "session include a\n", "a": "session include b\n", "b": "session include a\n"},
         "include each other"),
        ({}, "/etc/pam.d/svc does not exist"),
        ({"svc": "session optional pam_x.so\n" * (pamflow.MAX_RULES + 1)}, "more than"),
    ],
)
def test_bad_stacks_are_one_line_errors(files, message):
    result = pamflow.lastlog_for(lambda name: files.get(name), "svc")
    assert message in result["error"] and "\n" not in result["error"]
    assert result["writes_in_session"] is None


def test_many_unknown_branches_stay_bounded():
    line = ("session [success=1 default=ignore] pam_succeed_if.so user = x\n"
            "session optional pam_y.so\n")
    text = line * 40 + "session optional pam_lastlog.so\n"
    result = pamflow.lastlog_for(lambda name: text if name == "svc" else None, "svc")
    assert result["lines"][0]["runs"] == "sometimes"  # 2**40 paths: capped, not enumerated



@pytest.mark.parametrize(
    "text",
    [
        # 2000 unknown branches in a row: one open branch per line (it used to
        # recurse past Python's limit), then the lines a walk never reached
        "session [success=1 default=ok] pam_succeed_if.so user = x\n" * 1999
        + "session optional pam_lastlog.so\n",
        # many pam_lastlog lines behind unknown branches (every path is long)
        "session [success=ok default=ok] pam_succeed_if.so user = x\n" * 8
        + "session optional pam_systemd.so\n" + "session optional pam_lastlog.so\n" * 1990,
    ],
)
def test_a_walk_stopped_by_its_bounds_says_unknown_never_never(text):
    started = time.process_time()
    result = pamflow.lastlog_for(lambda name: text if name == "svc" else None, "svc")
    assert time.process_time() - started < 5  # about 0.2 s; was minutes or a RecursionError
    assert result["error"] is None
    assert {line["runs"] for line in result["lines"]} <= {"sometimes", "unknown"}
    assert result["writes_in_session"] is None

@pytest.mark.parametrize(
    ("args", "service", "verdict"),
    [
        (["service", "in", "crond", "quiet", "use_uid"], "crond", True),
        (["service", "in", "crond", "quiet", "use_uid"], "sshd", False),
        (["service", "notin", "login:gdm:xdm", "quiet"], "sshd", True),
        (["service", "=~", "gdm*"], "gdm-password", True),
        (["service", "!~", "su*"], "su-l", False),
        (["user", "=", "root", "service", "=", "sshd"], "sshd", None),
        (["user", "=", "root", "service", "=", "login"], "sshd", False),
    ],
)
def test_pam_succeed_if_on_the_service(args, service, verdict):
    assert pamflow.succeed_if(args, service) is verdict
