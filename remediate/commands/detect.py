"""`memcg-fix detect`: what a host looks like, as facts (docs/facts.md)."""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
from collections.abc import Sequence
from pathlib import Path
from typing import Any, Final

from .. import __version__
from ..errors import InputError, UsageError
from ..facts import HostFacts, collect_local, collect_root, document
from ..text import shown
from ._fleet import add_via_arg, out_dir, via

EXAMPLES = """\
examples:
  memcg-fix detect --local                       this host, as a table
  memcg-fix detect --local --format json         the facts document (docs/facts.md)
  memcg-fix detect --root /mnt/image --host web1 a mounted image or chroot
  memcg-fix detect --root ./sosreport-web1-2024  an extracted sosreport
  memcg-fix detect -i hosts.ini --limit web      every host of an Ansible inventory
                                                 (one read-only command per host)
  memcg-fix detect -i hosts.ini --via module     the same through the memcg_facts module

exit codes: 0 facts collected (unknown facts, and hosts that could not be
reached, are listed, not errors), 2 bad usage, 3 the --root is not a
directory or holds nothing memcg-fix reads (an image that is not mounted),
or the inventory is unusable or matches no host."""


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser(
        "detect",
        help="collect the facts of a host (cgroup mode, dying memcgs, kmem, boot args...)",
        description="Collect the facts memcg-fix decides on. Read-only: nothing on the "
        "host is changed.",
        epilog=EXAMPLES,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--local", action="store_true", help="this host, read live")
    source.add_argument(
        "--root",
        metavar="DIR",
        help="a host root: mounted image, chroot or extracted sosreport; nothing outside "
        "DIR is read and no command is run",
    )
    source.add_argument(
        "-i",
        "--inventory",
        metavar="INVENTORY",
        action="append",
        help="collect from every host of this Ansible inventory (repeatable)",
    )
    parser.add_argument("--limit", metavar="PATTERN", help="with -i: an Ansible host pattern")
    parser.add_argument("--forks", metavar="N", type=int, help="with -i: hosts in parallel")
    parser.add_argument(
        "--out",
        metavar="DIR",
        help="with -i: keep ansible-runner's artifacts here (default: a temp dir)",
    )
    add_via_arg(parser)
    parser.add_argument("--host", metavar="NAME", help="name to report the host as")
    parser.add_argument("--format", choices=("table", "json"), default="table")
    parser.set_defaults(func=run)


def _from_inventory(args: argparse.Namespace) -> list[HostFacts]:
    from ..run import collect_facts, list_hosts

    list_hosts(args.inventory, args.limit)
    if args.out:
        hosts, _report = collect_facts(
            args.inventory, data_dir=out_dir(args.out, "detect"), limit=args.limit,
            forks=args.forks, via=via(args),
        )
        return hosts
    with tempfile.TemporaryDirectory(prefix="memcg-fix-detect-") as tmp:
        hosts, _report = collect_facts(
            args.inventory, data_dir=Path(tmp), limit=args.limit, forks=args.forks, via=via(args)
        )
    return hosts


def run(args: argparse.Namespace) -> int:
    if args.inventory:
        hosts = _from_inventory(args)
    else:
        if args.limit or args.forks or args.out or args.via:
            raise UsageError("detect: --limit, --forks, --out and --via go with -i (see --help)")
        hosts = [collect_local(args.host) if args.local else collect_root(args.root, args.host)]
        if args.root and not _found_anything(hosts[0]):
            raise InputError(
                f"--root {args.root!r}: nothing memcg-fix reads is there (no kernel, os-release, "
                "cgroup, boot, package, PAM or log data): is the image mounted, or the "
                "sosreport extracted?"
            )
    if args.format == "json":
        json.dump(document(hosts, __version__), sys.stdout, indent=2, sort_keys=True)
        sys.stdout.write("\n")
    else:
        sys.stdout.write(render_table(hosts))
    return 0


# Facts of which a host root that holds anything memcg-fix reads shows one.
_EVIDENCE: Final = (
    "kernel.release", "distro.id", "cgroup.mode", "cmdline.raw", "boot.entries",
    "kernels.installed", "runc.installed", "kubelet.installed", "pam.files",
    "kernel_log.source", "memory_cost.percpu_kb", "memory_cost.sys_kernel_slab_entries",
    "memcg_fix.reaper_installed", "host.hostname",
)


def _found_anything(host: HostFacts) -> bool:
    return host.error is None and any(host.get(path) for path in _EVIDENCE)


COLUMNS: Sequence[tuple[str, str]] = (
    ("HOST", ""),
    ("KERNEL", "kernel.release"),
    ("FAMILY", "kernel.family"),
    ("CGROUP", "cgroup.mode"),
    ("MEMORY", "cgroup.memory_controller"),
    ("LIVE", "memcg.live"),
    ("DYING", "memcg.dying"),
    ("KMEM", "kmem.accounting_active"),
    ("NOKMEM", "cmdline.nokmem"),
    ("ALL-ENTRIES", "boot.nokmem_all_entries"),
    ("RUNC", "runc.version"),
    ("LASTLOG-WTMP", "pam.lastlog_writes_wtmp"),
    ("UNKNOWN", ""),
)


def _cell(value: Any) -> str:
    if value is None:
        return "?"
    if isinstance(value, bool):
        return "yes" if value else "no"
    return shown(value)


def render_table(hosts: Sequence[HostFacts]) -> str:
    """One row per host with the key facts; ``?`` marks an unknown fact.

    Every value comes from the host: each is shown through the one sanitizer.
    """
    rows = [[title for title, _ in COLUMNS]]
    for host in hosts:
        if host.error:
            rows.append([shown(host.host), shown(f"error: {host.error}")])
            continue
        row = [shown(host.host)]
        for _title, path in COLUMNS[1:-1]:
            tool = path.split(".")[0]
            if path.endswith(".version") and host.get(f"{tool}.installed") is False:
                row.append("none")  # not installed: known, not unknown
                continue
            row.append(_cell(host.get(path)))
        row.append(str(len(host.unknown)))
        rows.append(row)
    widths = [max(len(r[i]) for r in rows if i < len(r)) for i in range(len(COLUMNS))]
    lines = []
    for row in rows:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row)]
        lines.append("  ".join(cells).rstrip())
    notes = [shown(f"{h.host}: {u.fact}: {u.reason}") for h in hosts for u in h.unknown]
    text = "\n".join(lines) + "\n"
    if notes:
        text += "\nunknown:\n" + "\n".join(f"  {n}" for n in notes) + "\n"
    return text
