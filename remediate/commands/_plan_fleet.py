"""`memcg-fix plan -i`: plan a fleet through Ansible, and show the real dry run."""

from __future__ import annotations

import argparse
import json
import sys

from .. import __version__
from .. import policy as policy_api
from ..facts import document
from ..policy.model import Policy
from ..render import DEFAULT_BATCHES, RenderOptions, parse_batches, render
from ..report import render as render_plan
from ..report import terminal_safe
from ..run import collect_facts, list_hosts, run_playbook
from ..runreport import diffs_markdown_lines, diffs_text
from . import tell
from ._fleet import out_dir, via
from .plan import exit_code, report_unsettled

PLAYBOOK_NAME = "memcg-fix.yml"


def plan_fleet(args: argparse.Namespace, policy: Policy) -> int:
    """Facts -> plan -> playbook -> ``--check --diff``; everything kept in --out."""
    inventory = list(args.inventory)
    list_hosts(inventory, args.limit)
    options = RenderOptions(
        batches=parse_batches(args.batches) if args.batches else DEFAULT_BATCHES
    )
    out = out_dir(args.out, "plan")
    hosts, _facts_run = collect_facts(
        inventory, data_dir=out, limit=args.limit, forks=args.forks, via=via(args)
    )
    (out / "facts.json").write_text(
        json.dumps(document(hosts, __version__), indent=2, sort_keys=True) + "\n"
    )
    plan = policy_api.evaluate(policy, hosts, explain=args.explain)
    (out / "plan.json").write_text(render_plan(plan, "json", args.explain))
    (out / "plan.md").write_text(render_plan(plan, "markdown", args.explain))
    playbook = out / PLAYBOOK_NAME
    playbook.write_text(render(plan, options))

    sys.stdout.write(render_plan(plan, args.format, args.explain))
    if plan.has_mitigations:
        # The real dry run: the reviewed playbook itself, in check mode, all
        # hosts in one batch so that one host's failure hides no other's diff.
        dry = run_playbook(
            playbook,
            inventory,
            data_dir=out,
            limit=args.limit,
            forks=args.forks,
            check=True,
            diff=True,
            ident="check",
            extravars={"memcg_fix_batches": ["100%"], "memcg_fix_max_fail_percentage": 100},
        )
        if args.format == "markdown":
            sys.stdout.write("\n## Dry run (ansible-playbook --check --diff)\n\n")
            sys.stdout.write("\n".join(diffs_markdown_lines(dry)) + "\n")
        elif args.format == "table":
            sys.stdout.write(
                "\nDry run (ansible-playbook --check --diff): what apply would change\n"
            )
            sys.stdout.write(diffs_text(dry))
        for host in dry.failed_hosts:
            outcome = dry.hosts[host]
            tell(f"dry run failed on {terminal_safe(host)} at "
                 f"'{terminal_safe(outcome.failed_task)}': {terminal_safe(outcome.error)}")
    report_unsettled(plan)
    tell(f"note: wrote {out}/facts.json, plan.json, plan.md and {PLAYBOOK_NAME}")
    return exit_code(plan)
