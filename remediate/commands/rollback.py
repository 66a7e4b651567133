"""`memcg-fix rollback`: undo what a playbook's apply did, host by host."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from ..errors import ExitCode
from ..run import list_hosts, run_playbook
from ..runreport import summarize, summary_json, summary_markdown, summary_text
from . import tell
from ._fleet import add_inventory_args, out_dir, progress_printer, read_playbook

DESCRIPTION = """\
Undo what 'memcg-fix apply' did with this playbook, on the hosts it planned,
in the same canary-first batches:
  - files memcg-fix changed are restored byte for byte from the backups it
    kept on each host (/var/lib/memcg-fix/backups); a file someone edited
    since is left alone and reported, unless --force;
  - cgroup.memory=nokmem is removed from every boot entry, only where
    memcg-fix added it;
  - the authselect profile that was selected before is selected again;
  - the reaper and the rmdir helper are removed.
A host reboots only with --reboot-ok, when its running kernel still has an
argument that was removed.
"""

EPILOG = """\
examples:
  memcg-fix rollback -i hosts.ini --playbook plan/memcg-fix.yml
  memcg-fix rollback -i hosts.ini --playbook plan/memcg-fix.yml --limit web07 --reboot-ok

exit codes:
  0  every host rolled back (or had nothing to roll back)
  4  a host failed, was unreachable or was not reached
  3  bad input (missing or edited playbook, inventory)
  1  internal error"""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "rollback",
        help="undo what apply did, byte for byte",
        description=DESCRIPTION,
        epilog=EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    add_inventory_args(parser)
    parser.add_argument(
        "--playbook", metavar="FILE", required=True, help="the playbook that was applied"
    )
    parser.add_argument(
        "--reboot-ok",
        action="store_true",
        help="consent to reboot hosts whose boot arguments changed",
    )
    parser.add_argument(
        "--force",
        action="store_true",
        help="restore files edited since memcg-fix changed them; run an edited playbook",
    )
    parser.add_argument(
        "--out", metavar="DIR", help="where to keep artifacts (default: ./memcg-fix-rollback-TIME)"
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
    inventory = list(args.inventory)
    in_reach = set(list_hosts(inventory, args.limit))
    out = out_dir(args.out, "rollback")
    extravars = {
        "memcg_fix_state": "absent",
        "memcg_fix_reboot_ok": bool(args.reboot_ok),
        "memcg_fix_force": bool(args.force),
    }
    report = run_playbook(
        Path(args.playbook),
        inventory,
        data_dir=out,
        limit=args.limit,
        forks=args.forks,
        extravars=extravars,
        on_event=progress_printer(args.quiet),
        ident="rollback",
    )
    planned = [h for h, mitigations in recorded.plan.items() if mitigations and h in in_reach]
    rows = summarize(report, planned, rollback=True)
    title = "memcg-fix rollback"
    extra = {"playbook": args.playbook, "fingerprint": recorded.fingerprint}
    (out / "summary.json").write_text(summary_json(rows, extra))
    if args.format == "json":
        sys.stdout.write(summary_json(rows, extra))
    elif args.format == "markdown":
        sys.stdout.write(summary_markdown(rows, title, report))
    else:
        sys.stdout.write(summary_text(rows, title))
    failed = [
        r for r in rows if r.outcome in ("failed", "unreachable", "not-run", "reboot-required")
    ]
    return int(ExitCode.FAILED if failed else ExitCode.OK)
