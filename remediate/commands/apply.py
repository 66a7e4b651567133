"""`memcg-fix apply` (placeholder until its issue lands)."""

from __future__ import annotations

import argparse

from ..errors import UsageError


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("apply", help="(not available yet)")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    raise UsageError("memcg-fix apply is not available yet")
