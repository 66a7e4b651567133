"""`memcg-fix apply`: run a reviewed playbook, canary first, and prove the result."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from .. import policy as policy_api
from ..errors import ExitCode, InputError
from ..render import parse_batches
from ..run import collect_facts, list_hosts, run_playbook
from ..runreport import all_verified, summarize, summary_json, summary_markdown, summary_text
from . import tell
from ._fleet import (
    add_inventory_args,
    add_via_arg,
    load_policy,
    out_dir,
    progress_printer,
    read_playbook,
    via,
)

DESCRIPTION = """\
Run a playbook written by 'memcg-fix plan -i' (and reviewed) through
ansible-runner, the engine AWX uses: a canary host first, then growing
batches; a failed host stops the rollout before the next batch.

Before anything changes, apply
  1. checks the playbook's digests: an edited playbook is refused (--force
     overrides), and a detached signature FILE.asc next to it must verify;
  2. collects fresh facts and plans again with the same policy: when the
     result differs from the playbook's plan fingerprint by more than
     progress (a host now needs something the plan does not have, or cannot
     be read), it refuses (--force overrides). Hosts an earlier apply already
     fixed are fine: re-running a reviewed playbook resumes a rollout.

Hosts reboot only with --reboot-ok, and only when a change needs it; without
it they are reported as "reboot-required". After the reboot every mitigation
is verified from fresh facts. ansible-runner's artifacts (events, stdout) and
a summary are kept in --out.
"""

EPILOG = """\
examples:
  memcg-fix apply -i hosts.ini --playbook plan/memcg-fix.yml
  memcg-fix apply -i hosts.ini --playbook plan/memcg-fix.yml --reboot-ok --batches 1,5,25%
  memcg-fix apply -i hosts.ini --playbook plan/memcg-fix.yml --format markdown > cr-result.md

exit codes:
  0  every planned host changed and verified
  4  a host failed, was unreachable, was not reached, or awaits a reboot
  3  bad input: missing or edited playbook, inventory, stale plan, policy
  1  internal error"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "apply",
        help="run a reviewed playbook, canary first, then verify",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_inventory_args(parser)
    add_via_arg(parser)
    parser.add_argument(
        "--playbook", metavar="FILE", required=True, help="the playbook 'memcg-fix plan -i' wrote"
    )
    parser.add_argument(
        "--reboot-ok", action="store_true", help="consent to reboot hosts whose changes need it"
    )
    parser.add_argument(
        "--batches",
        metavar="SIZES",
        help="override the playbook's batches, e.g. 1,10%%,25%% (first = canary)",
    )
    parser.add_argument(
        "--policy",
        metavar="FILE",
        help="the policy the plan was made with (default: the shipped one)",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="run an edited playbook or a stale plan anyway (not recommended)",
    )
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="where to keep artifacts and the summary (default: ./memcg-fix-apply-TIME)",
    )
    parser.add_argument(
        "--format",
        choices=("text", "json", "markdown"),
        default="text",
        help="summary format on stdout (default: text)",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress on stderr")
    parser.set_defaults(func=run)


def run(args: argparse.Namespace) -> int:
    _text, recorded, warnings = read_playbook(args.playbook, force=args.force)
    for warning in warnings:
        tell(f"warning: {warning}")
    batches = parse_batches(args.batches) if args.batches else None
    inventory = list(args.inventory)
    # a clear error for a bad inventory before anything runs; the hosts in reach
    in_reach = set(list_hosts(inventory, args.limit))
    policy = load_policy(args.policy)
    if recorded.policy_sha256 and policy.sha256 != recorded.policy_sha256 and not args.force:
        raise InputError(
            f"the playbook was planned with policy {recorded.policy_id} {recorded.policy_version} "
            f"(sha256 {recorded.policy_sha256[:12]}...), "
            f"not {args.policy or 'the default policy'}; pass the same --policy (or --force)"
        )
    out = out_dir(args.out, "apply")
    show = progress_printer(args.quiet)
    facts, _report = collect_facts(
        inventory, data_dir=out, limit=args.limit, forks=args.forks, on_event=None, via=via(args)
    )
    fresh = policy_api.evaluate(policy, facts)
    changes = (
        fresh.changes_since(recorded.plan) if fresh.fingerprint() != recorded.fingerprint else []
    )
    if changes:
        message = (
            "the hosts' facts no longer match the playbook's plan "
            f"({recorded.fingerprint[:19]}...): "
            + "; ".join(changes[:5])
            + (f" and {len(changes) - 5} more" if len(changes) > 5 else "")
        )
        if not args.force:
            raise InputError(message + " (plan again, or use --force)")
        tell(f"warning: {message} (running anyway: --force)")
    extravars: dict[str, object] = {"memcg_fix_reboot_ok": bool(args.reboot_ok)}
    if batches:
        extravars["memcg_fix_batches"] = list(batches)
    report = run_playbook(
        Path(args.playbook),
        inventory,
        data_dir=out,
        limit=args.limit,
        forks=args.forks,
        extravars=extravars,
        on_event=show,
        ident="apply",
    )
    planned = [h for h, mitigations in recorded.plan.items() if mitigations and h in in_reach]
    rows = summarize(report, planned)
    title = "memcg-fix apply"
    (out / "summary.json").write_text(
        summary_json(rows, {"playbook": args.playbook, "fingerprint": recorded.fingerprint})
    )
    (out / "summary.md").write_text(summary_markdown(rows, title, report))
    if args.format == "json":
        sys.stdout.write(
            summary_json(rows, {"playbook": args.playbook, "fingerprint": recorded.fingerprint})
        )
    elif args.format == "markdown":
        sys.stdout.write(summary_markdown(rows, title, report))
    else:
        sys.stdout.write(summary_text(rows, title))
    tell(f"note: artifacts in {report.artifacts_dir}")
    return int(ExitCode.OK if all_verified(rows) else ExitCode.FAILED)
