"""Errors and exit codes: the one table the CLI turns into ``sys.exit``.

Library code raises these; :func:`remediate.cli.main` is the only place that
prints them (as one line on stderr) and exits with their code.
"""

from __future__ import annotations

from enum import IntEnum


class ExitCode(IntEnum):
    """Exit codes of every ``memcg-fix`` command (documented in the README)."""

    OK = 0  # success; for ``plan``: nothing to do
    INTERNAL = 1  # a bug in memcg-fix: please report it
    USAGE = 2  # bad command line (``plan`` uses INVALID instead, see below)
    PLANNED = 2  # ``plan`` only: mitigations were planned (Terraform's -detailed-exitcode)
    INVALID = 3  # invalid policy, facts file, inventory, playbook or host root
    FAILED = 4  # ``apply``/``rollback``: a host failed or was not verified
    # ``plan`` only: nothing planned, but a host is undecided (unreadable, or rules
    # blocked by unknown facts) or needs attention (a critical finding, no mitigation)
    UNDECIDED = 4


class RemediateError(Exception):
    """An error with a one-line message and the exit code it maps to."""

    exit_code: ExitCode = ExitCode.INTERNAL

    def __init__(self, message: str, exit_code: ExitCode | None = None) -> None:
        # Keep messages to one line: they are printed as ``memcg-fix: <message>``.
        super().__init__(" ".join(str(message).split("\n")).strip())
        if exit_code is not None:
            self.exit_code = exit_code

    @property
    def message(self) -> str:
        return str(self.args[0]) if self.args else ""


class UsageError(RemediateError):
    """The command line is wrong (unknown option, missing argument...)."""

    exit_code = ExitCode.USAGE


class InputError(RemediateError):
    """A file or directory given as input cannot be used."""

    exit_code = ExitCode.INVALID


class PolicyError(InputError):
    """A policy file does not parse or does not validate."""


class RunError(RemediateError):
    """Ansible ran, and at least one host failed or was not verified."""

    exit_code = ExitCode.FAILED
