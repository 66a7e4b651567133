"""The ``memcg-fix`` command line: the only place that prints errors or exits.

Each verb lives in its own module under :mod:`remediate.commands` and exposes
``register(subparsers)``; the module's ``run(args)`` returns an exit code.
Every :class:`~remediate.errors.RemediateError` becomes one line on stderr
and its exit code; anything else is a bug and exits 1 with a short report.
"""

from __future__ import annotations

import argparse
import importlib
import os
import sys
import traceback
from collections.abc import Sequence
from typing import NoReturn

from . import __version__
from .errors import ExitCode, RemediateError, UsageError
from .text import shown

VERBS = ("detect", "plan", "render", "apply", "rollback", "policy")

DESCRIPTION = """\
Find, plan, review, apply and verify fixes for leaking memory cgroups.

The flow is: detect -> plan -> review -> apply -> verify.

  memcg-fix detect --local                    what this host looks like
  memcg-fix plan --local --explain            what would be done here, and why
  memcg-fix plan -i hosts.ini --out plan/     facts, plan and a playbook for a fleet,
                                              with the real --check --diff
  memcg-fix apply -i hosts.ini --playbook plan/memcg-fix.yml
                                              canary first, in batches, reboots only
                                              with --reboot-ok, then verification
"""

EPILOG = """\
exit codes: 0 success (plan: nothing to do), 1 internal error, 2 bad usage
(plan: mitigations planned), 3 invalid policy or input, 4 a host failed or was
not verified. Run 'memcg-fix VERB --help' for examples."""


class Parser(argparse.ArgumentParser):
    """argparse that raises instead of printing usage and exiting.

    ``usage_exit_code`` lets ``plan`` report bad usage as 3, because its exit
    code 2 means "mitigations planned".
    """

    usage_exit_code: ExitCode = ExitCode.USAGE

    def error(self, message: str) -> NoReturn:
        verb = self.prog.removeprefix("memcg-fix").strip()
        where = f"{verb}: " if verb else ""
        raise UsageError(f"{where}{message} (see --help)", self.usage_exit_code)


def build_parser() -> Parser:
    parser = Parser(
        prog="memcg-fix",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--version", action="version", version=f"memcg-fix {__version__}")
    subparsers = parser.add_subparsers(dest="verb", metavar="VERB", parser_class=Parser)
    subparsers.required = True
    for verb in VERBS:
        importlib.import_module(f"remediate.commands.{verb}").register(subparsers)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``memcg-fix`` console script."""
    try:
        parser = build_parser()
        args = parser.parse_args(argv)
        code = int(args.func(args))
    except RemediateError as exc:
        print(f"memcg-fix: {shown(exc.message)}", file=sys.stderr)
        code = int(exc.exit_code)
    except KeyboardInterrupt:
        print("memcg-fix: interrupted", file=sys.stderr)
        code = 130
    except BrokenPipeError:
        # `memcg-fix detect | head`: not an error; keep Python from complaining at exit.
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        code = int(ExitCode.OK)
    except Exception as exc:  # the one place that catches everything: a bug
        where = traceback.extract_tb(exc.__traceback__)[-1]
        print(
            f"memcg-fix: internal error: {type(exc).__name__}: {shown(exc)} "
            f"(at {os.path.basename(where.filename)}:{where.lineno}; "
            "set MEMCG_FIX_DEBUG=1 for the traceback, and please report it)",
            file=sys.stderr,
        )
        if os.environ.get("MEMCG_FIX_DEBUG"):
            traceback.print_exc()
        code = int(ExitCode.INTERNAL)
    return code


def run() -> NoReturn:  # pragma: no cover - thin wrapper for python -m
    sys.exit(main())


if __name__ == "__main__":  # pragma: no cover
    run()
