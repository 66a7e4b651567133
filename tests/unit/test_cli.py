"""The command line: every verb teaches by example, and errors are one line."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from remediate import cli
from remediate.errors import ExitCode

VERBS = [*cli.VERBS, "policy validate"]


@pytest.mark.parametrize("verb", VERBS)
def test_every_command_help_shows_an_example_and_its_exit_codes(verb, capsys):
    with pytest.raises(SystemExit) as stop:
        cli.main([*verb.split(), "--help"])
    assert stop.value.code == 0
    text = capsys.readouterr().out
    assert "example" in text.lower(), verb
    assert "memcg-fix " + verb.split()[0] in text
    assert "exit code" in text.lower(), verb


def test_the_top_level_help_walks_through_the_flow(capsys):
    with pytest.raises(SystemExit):
        cli.main(["--help"])
    text = capsys.readouterr().out
    for step in ("detect", "plan", "apply", "exit codes"):
        assert step in text


def test_an_unexpected_exception_is_one_line_and_exit_1(monkeypatch, capsys):
    def explode(_args):
        raise ZeroDivisionError("boom")

    parser = cli.build_parser()
    monkeypatch.setattr(cli, "build_parser", lambda: parser)
    parser.set_defaults(func=explode)
    for action in parser._subparsers._group_actions:  # the test reaches in on purpose
        for sub in action.choices.values():
            sub.set_defaults(func=explode)
    code = cli.main(["detect", "--local"])
    err = capsys.readouterr().err
    assert code == ExitCode.INTERNAL
    assert len(err.strip().splitlines()) == 1
    assert err.startswith("memcg-fix: internal error: ZeroDivisionError: boom")
    assert "Traceback" not in err


def test_the_console_script_runs_as_a_module():
    proc = subprocess.run(
        [sys.executable, "-m", "remediate", "--version"],
        capture_output=True,
        text=True,
        check=False,
    )
    assert proc.returncode == 0 and proc.stdout.startswith("memcg-fix ")


def test_a_non_blocking_stdin_does_not_stop_reading_the_inventory(tmp_path):
    """CI runners and parents that leave stdin in O_NONBLOCK (qemu does) made
    ansible-inventory refuse to run; memcg-fix gives it /dev/null instead."""
    inventory = tmp_path / "empty.yml"
    inventory.write_text("all:\n  hosts: {}\n")
    read_end, write_end = os.pipe()
    try:
        os.set_blocking(read_end, False)
        proc = subprocess.run(
            [sys.executable, "-m", "remediate", "detect", "-i", str(inventory)],
            stdin=read_end, capture_output=True, text=True, timeout=120, check=False)
    finally:
        os.close(read_end)
        os.close(write_end)
    assert proc.returncode == 3
    assert proc.stderr == f"memcg-fix: the inventory {inventory} matches no host\n"
