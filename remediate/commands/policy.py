"""`memcg-fix policy`: check policy files, list the mitigation catalogue."""

from __future__ import annotations

import argparse
import json

from .. import catalogue
from .. import policy as policy_api
from ..errors import ExitCode, InputError
from ..resources import default_policy_path
from ..text import shown
from . import tell

DESCRIPTION = """\
Work with policies: 'validate' checks policy files against the shipped schema
and the mitigation catalogue and reports every problem as FILE:LINE: JSON-PATH:
message; 'catalogue' lists the mitigations a policy may select, with their
parameters and defaults; 'path' prints where the shipped default policy is.
"""

EPILOG = """\
examples:
  memcg-fix policy validate "$(memcg-fix policy path)" site-policy.yaml
  memcg-fix policy catalogue --format json

exit codes: 0 every file is valid, 3 at least one is not, 2 bad usage, 1 internal error."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "policy",
        help="validate policy files; list the mitigation catalogue",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    actions = parser.add_subparsers(dest="action", metavar="ACTION")
    actions.required = True

    validate = actions.add_parser(
        "validate",
        help="check policy files",
        description="Check policy files; print every problem as FILE:LINE: JSON-PATH: message.",
        epilog='example:\n  memcg-fix policy validate "$(memcg-fix policy path)"\n\n'
        "exit codes: 0 all valid, 3 at least one invalid, 2 bad usage, 1 internal error.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    validate.add_argument("files", metavar="FILE", nargs="+", help="policy YAML files")
    validate.set_defaults(func=run_validate)

    listing = actions.add_parser(
        "catalogue",
        help="list the mitigations a policy may select",
        description="List the closed catalogue of mitigations, their parameters and defaults.",
        epilog="example:\n  memcg-fix policy catalogue --format json",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    listing.add_argument("--format", choices=("table", "json"), default="table")
    listing.set_defaults(func=run_catalogue)

    where = actions.add_parser(
        "path",
        help="print where the shipped default policy is",
        description="Print the path of the default policy this memcg-fix ships (and uses "
        "without --policy), to validate it, read it or start a site policy from a copy.",
        epilog='examples:\n  memcg-fix policy validate "$(memcg-fix policy path)"\n'
        '  cp "$(memcg-fix policy path)" site-policy.yaml\n\n'
        "exit codes: 0 printed, 3 the installation has no default policy, 2 bad usage.",
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    where.set_defaults(func=run_path)


def run_validate(args: argparse.Namespace) -> int:
    failed = 0
    for name in args.files:
        policy, problems = policy_api.check(name)
        if policy is None:
            failed += 1
            for problem in problems:
                tell(problem)
            continue
        print(shown(f"{name}: ok (policy {policy.id} {policy.version}, "
                    f"{len(policy.rules)} rules)"))
    return int(ExitCode.INVALID if failed else ExitCode.OK)


def run_path(args: argparse.Namespace) -> int:
    path = default_policy_path()
    if not path.is_file():
        raise InputError(f"this installation has no default policy at {path}")
    print(shown(path))
    return int(ExitCode.OK)


def run_catalogue(args: argparse.Namespace) -> int:
    rows = catalogue.describe()
    if args.format == "json":
        print(json.dumps(rows, indent=2, sort_keys=True))
        return int(ExitCode.OK)
    for row in rows:
        reboot = "reboot" if row["needs_reboot"] else "no reboot"
        print(f"{row['id']}: {row['summary']}")
        print(
            f"    {reboot}, risk {row['risk']}, disruption {row['disruption']}; "
            f"alternatives: {', '.join(row['alternatives']) or '-'}"
        )
        for param in row["params"]:
            if param["required"]:
                default = "required"
            elif "default" in param:
                default = f"default {json.dumps(param['default'])}"
            else:
                default = "optional"
            choices = f", one of {', '.join(param['choices'])}" if "choices" in param else ""
            print(
                f"    {param['name']} ({param['kind']}, {default}{choices}): {param['description']}"
            )
    return int(ExitCode.OK)
