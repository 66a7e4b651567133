"""`memcg-fix render`: turn a saved plan into one reviewable playbook."""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from ..errors import InputError
from ..inputs import open_input
from ..plan import Plan
from ..render import DEFAULT_BATCHES, RenderOptions, parse_batches, render
from ..text import shown

DESCRIPTION = """\
Turn a plan saved with 'memcg-fix plan --format json' into one playbook file
that a reviewer can read without running anything: its header names the plan
fingerprint, the policy, and for each host the mitigations with rationale,
risk, disruption and whether it reboots; the hosts' plans are YAML data.

The playbook needs only the memcg_fix.remediate collection: written into this
repository's playbooks/ folder, Ansible finds it there (playbooks/collections/),
so AWX or Tower can run it as a job template with this repository as the
project; elsewhere, install the collection or point ANSIBLE_COLLECTIONS_PATH
at it.
Rendering the same plan twice gives the same bytes.
"""

EPILOG = f"""\
examples:
  memcg-fix plan --facts fleet.json --format json > plan.json
  memcg-fix render --plan plan.json --out playbooks/memcg-fix-CHG1234.yml
  memcg-fix render --plan plan.json --batches 1,5,20% --out -

default batches: {",".join(str(b) for b in DEFAULT_BATCHES)} (the first is the canary)
exit codes: 0 written, 3 invalid plan or options, 1 internal error"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "render",
        help="write the playbook for a saved plan",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument(
        "--plan",
        metavar="FILE",
        required=True,
        help="plan JSON from 'memcg-fix plan --format json'",
    )
    parser.add_argument(
        "--out", metavar="FILE", default="-", help="where to write the playbook (default: stdout)"
    )
    parser.add_argument(
        "--batches",
        metavar="SIZES",
        default=None,
        help="batch sizes, e.g. 1,10%%,25%% (the first batch is the canary)",
    )
    parser.add_argument(
        "--max-fail-percentage",
        metavar="N",
        type=int,
        default=0,
        help="failed hosts tolerated per batch before the rollout stops (default 0)",
    )
    parser.set_defaults(func=run)


def load_plan(path: str) -> Plan:
    try:
        with open_input(path) as handle:
            data = json.loads(handle.read().decode("utf-8-sig"))
    except FileNotFoundError:
        raise InputError(f"plan not found: {path}") from None
    except (OSError, ValueError) as exc:  # also a number of 4300 digits and more
        raise InputError(f"{path}: not a plan JSON file: {exc}") from None
    except RecursionError:
        raise InputError(f"{path}: not a plan JSON file: nested too deeply") from None
    return Plan.from_json(data)


def run(args: argparse.Namespace) -> int:
    options = RenderOptions(
        batches=parse_batches(args.batches) if args.batches else DEFAULT_BATCHES,
        max_fail_percentage=args.max_fail_percentage,
    )
    text = render(load_plan(args.plan), options)
    if args.out == "-":
        sys.stdout.write(text)
    else:
        try:
            Path(args.out).write_text(text, encoding="utf-8")
        except OSError as exc:
            raise InputError(f"--out {args.out}: cannot write: {exc.strerror or exc}") from None
        # on stdout, which the playbook did not take: stderr is for errors
        print(f"wrote {shown(args.out)}")
    return 0
