"""What memcg-fix-rmdir and memcg-fix-reaper share as command lines.

Bad usage is a one-line message and exit code 2, never argparse's usage dump
and its own exit. Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import NoReturn  # noqa: F401 # novermin

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130  # 128 + SIGINT, as a shell reports it


class UsageError(Exception):
    """Bad command line, or one naming something the tool will never act on."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse that raises :class:`UsageError` instead of exiting."""

    def error(self, message):
        # type: (str) -> NoReturn
        raise UsageError("%s (see --help)" % message)


def exit_code_of(exc):
    # type: (SystemExit) -> int
    """The exit code of argparse's own exit (``--help``): 0 unless it says."""
    return exc.code if isinstance(exc.code, int) else 0
