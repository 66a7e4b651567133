"""`memcg-fix plan`: decide, per host, which mitigations apply and why (offline)."""

from __future__ import annotations

import argparse
import gc
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

from .. import facts as facts_api
from .. import policy as policy_api
from ..errors import ExitCode, InputError
from ..facts.model import HostFacts
from ..plan import Plan
from ..report import FORMATS, render
from . import tell
from ._fleet import add_via_arg

DESCRIPTION = """\
Decide, for each host, which mitigations from the closed catalogue apply and
why. Facts come from this host (--local), a host root such as a mounted image
or an extracted sosreport (--root), or JSON written by 'memcg-fix detect
--format json' (--facts, one host or many per file). Nothing is changed and
no Ansible runs: plan only reads facts and the policy.

The default policy is the shipped policies/default.yaml; --policy replaces it.
Output is sorted and carries no timestamps, so the same facts and policy give
the same bytes. --explain adds, for each host, every rule with "fired",
"not-matched" or "not-evaluated" and the facts behind it.
"""

EPILOG = """\
examples:
  memcg-fix plan --local --explain
  memcg-fix plan --facts fleet.json --format markdown > change-request.md
  memcg-fix plan --facts a.json b.json --policy site-policy.yaml --format json
  memcg-fix plan -i hosts.ini --limit 'web*' --out plan/   facts, plan, playbook, dry run

exit codes:
  0  every host was decided and needs nothing (info and warning findings
     without a mitigation do not count)
  2  mitigations planned for at least one host (whatever the other hosts are)
  4  nothing planned, but at least one host is undecided (it could not be
     read, no rule could be evaluated, or a rule that could plan or warn
     lacked facts) or needs attention (a critical finding no mitigation
     addresses)
  3  invalid policy or input (also bad usage of this command)
  1  internal error
Undecided hosts are listed with the reason and the rules and facts that
blocked them; stderr names them too."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "plan",
        help="decide which mitigations apply to each host, and why",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    # exit code 2 means "mitigations planned" here, so bad usage is 3
    parser.usage_exit_code = ExitCode.INVALID
    _refuse_extra_arguments(parser)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--local", action="store_true", help="read this host's facts live")
    source.add_argument("--root", metavar="DIR", help="read a host root (image, chroot, sosreport)")
    source.add_argument(
        "--facts",
        metavar="FILE",
        nargs="+",
        help="facts JSON from 'memcg-fix detect --format json'",
    )
    source.add_argument(
        "-i", "--inventory", metavar="INVENTORY", action="append",
        help="plan a fleet: facts through Ansible (one read-only command per host), "
        "then the playbook and its real --check --diff; repeatable",
    )
    fleet = parser.add_argument_group("with -i")
    fleet.add_argument("--limit", metavar="PATTERN", help="only hosts matching this pattern")
    fleet.add_argument("--forks", metavar="N", type=int, help="hosts Ansible works on in parallel")
    fleet.add_argument(
        "--out", metavar="DIR",
        help="where to write facts.json, plan.json, plan.md, the playbook memcg-fix.yml and "
        "ansible-runner's artifacts (default: ./memcg-fix-plan-TIME)",
    )
    fleet.add_argument("--batches", metavar="SIZES",
                       help="batch sizes of the playbook, e.g. 1,10%%,25%% (first = canary)")
    add_via_arg(fleet)
    parser.add_argument(
        "--policy", metavar="FILE", help="policy YAML to use instead of the default policy"
    )
    parser.add_argument(
        "--format", choices=FORMATS, default="table", help="output format (default: table)"
    )
    parser.add_argument(
        "--explain", action="store_true", help="show every rule's result and reason per host"
    )
    parser.set_defaults(func=run)


def _refuse_extra_arguments(parser: argparse.ArgumentParser) -> None:
    """Report unknown arguments from this parser, so they exit 3 like other bad usage.

    argparse hands a subcommand's leftovers to the top-level parser, whose
    usage errors exit 2, which for ``plan`` would read as "mitigations planned".
    """
    parse_known_args = parser.parse_known_args

    def strict(args: Any = None, namespace: Any = None) -> tuple[argparse.Namespace, list[str]]:
        parsed, extras = parse_known_args(args, namespace)
        if extras:
            parser.error(f"unrecognized arguments: {' '.join(extras)}")
        return parsed, extras

    parser.parse_known_args = strict  # type: ignore[method-assign,assignment]


def _hosts(args: argparse.Namespace) -> list[HostFacts]:
    if args.facts:
        return facts_api.load_facts_files(args.facts)
    if args.root:
        return [facts_api.collect_root(args.root)]
    return [facts_api.collect_local()]


@contextmanager
def _collector_paused() -> Iterator[None]:
    """Pause Python's cyclic garbage collector for one plan.

    A fleet's facts and its plan are millions of small acyclic objects (they
    are freed by reference counting) that live until the end; the collector
    would scan them again and again while they are read, planned and
    rendered, which costs more than the work itself and grows faster than
    the fleet (rendering 100,000 hosts as JSON: 5.0 s of CPU with it, 1.7 s
    without).
    """
    enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if enabled:
            gc.enable()


def run(args: argparse.Namespace) -> int:
    policy = policy_api.load(args.policy) if args.policy else policy_api.load_default()
    if args.inventory:
        from ._plan_fleet import plan_fleet

        return plan_fleet(args, policy)
    if args.limit or args.forks or args.out or args.batches or args.via:
        raise InputError(
            "plan: --limit, --forks, --out, --batches and --via go with -i (see --help)")
    with _collector_paused():
        plan = policy_api.evaluate(policy, _hosts(args), explain=args.explain)
        sys.stdout.write(render(plan, args.format, args.explain))
    report_unsettled(plan)
    return exit_code(plan)


def exit_code(plan: Plan) -> int:
    """2 planned; else 4 when a host is undecided or needs attention; else 0."""
    if plan.has_mitigations:
        return int(ExitCode.PLANNED)
    if plan.undecided_or_attention:
        return int(ExitCode.UNDECIDED)
    return int(ExitCode.OK)


def report_unsettled(plan: Plan, limit: int = 5) -> None:
    """One stderr line per status that keeps the plan from being settled, naming hosts."""
    for status, text in (("undecided", "undecided"), ("attention", "need attention")):
        hosts = [h for h in plan.hosts if h.status == status]
        if not hosts:
            continue
        named = "; ".join(f"{h.host}: {h.reason or ''}" for h in hosts[:limit])
        more = f"; and {len(hosts) - limit} more" if len(hosts) > limit else ""
        tell(f"{len(hosts)} host(s) {text}: {named}{more}")
