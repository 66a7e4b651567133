"""Text of a run's outcome: dry-run diffs, apply/rollback summaries (text or Markdown).

Everything that came from a host (names, file contents, error messages) is
escaped: control characters for the terminal (:func:`report.terminal_safe`),
Markdown syntax for change requests (:func:`report.md`), and diffs sit in
code fences longer than any backtick run inside them.
"""

from __future__ import annotations

import difflib
import json
import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from typing import Any

from .report import md, terminal_safe
from .run import Diff, HostOutcome, RunReport
from .text import shown_lines


@dataclass(frozen=True)
class HostSummary:
    """One row of an apply/rollback summary."""

    host: str
    outcome: str  # verified, changed, reboot-required, failed, unreachable, not-run, unchanged
    changed: tuple[str, ...]
    rebooted: bool
    verified: bool
    detail: str

    def to_json(self) -> dict[str, Any]:
        return {
            "host": self.host,
            "outcome": self.outcome,
            "changed": list(self.changed),
            "rebooted": self.rebooted,
            "verified": self.verified,
            "detail": self.detail,
        }


def summarize(
    report: RunReport, planned: Sequence[str], *, rollback: bool = False
) -> list[HostSummary]:
    """A row per planned host; a host the run never reached is ``not-run``."""
    rows = []
    for host in sorted(planned):
        outcome = report.hosts.get(host)
        rows.append(_summary(host, outcome, rollback))
    return rows


def _summary(host: str, o: HostOutcome | None, rollback: bool) -> HostSummary:
    if o is None or (o.status not in ("failed", "unreachable") and not o.result):
        # seen by the host-selection play at most: the role never ran on it
        return HostSummary(
            host,
            "not-run",
            (),
            False,
            False,
            "not reached: an earlier batch failed or the run stopped",
        )
    r = o.result
    changed = tuple(r.get("changed") or ())
    steps = "; ".join(r.get("manual_steps") or ())
    if o.status in ("failed", "unreachable"):
        where = f" at '{o.failed_task}'" if o.failed_task else ""
        then = f"; then {o.then}" if o.then else ""
        return HostSummary(host, o.status, changed, o.rebooted, False, f"{o.error}{where}{then}")
    if r.get("reboot_required"):
        return HostSummary(
            host,
            "reboot-required",
            changed,
            False,
            False,
            "a reboot is needed to finish; run again with --reboot-ok"
            + (f"; manual: {steps}" if steps else ""),
        )
    if rollback:
        return HostSummary(
            host, "rolled-back" if changed else "unchanged", changed, o.rebooted, True, steps
        )
    if r.get("verified"):
        return HostSummary(host, "verified", changed, o.rebooted, True, steps)
    return HostSummary(
        host,
        "changed" if changed else "unchanged",
        changed,
        o.rebooted,
        False,
        steps or "not verified",
    )


def all_verified(rows: Iterable[HostSummary]) -> bool:
    return all(row.verified for row in rows)


def _counts(rows: Sequence[HostSummary]) -> str:
    tally: dict[str, int] = {}
    for row in rows:
        tally[row.outcome] = tally.get(row.outcome, 0) + 1
    rebooted = sum(row.rebooted for row in rows)
    parts = [f"{n} {name}" for name, n in sorted(tally.items())]
    return f"{len(rows)} host(s): " + ", ".join(parts) + f"; {rebooted} rebooted"


def summary_text(rows: Sequence[HostSummary], title: str) -> str:
    width = max([len(terminal_safe(r.host)) for r in rows] + [4])
    lines = [f"{title}: {_counts(rows)}", ""]
    lines.append(f"{'HOST':<{width}}  {'OUTCOME':<15}  {'REBOOTED':<8}  CHANGED / DETAIL")
    for r in rows:
        what = ", ".join(r.changed) or "-"
        if r.detail:
            what += f"  ({terminal_safe(r.detail)})"
        lines.append(
            f"{terminal_safe(r.host):<{width}}  {r.outcome:<15}  "
            f"{'yes' if r.rebooted else 'no':<8}  {what}"
        )
    return "\n".join(lines) + "\n"


def summary_json(rows: Sequence[HostSummary], extra: dict[str, Any]) -> str:
    return (
        json.dumps({**extra, "hosts": [r.to_json() for r in rows]}, indent=2, sort_keys=True) + "\n"
    )


def _fence(text: str) -> str:
    longest = max((len(m) for m in re.findall(r"`+", text)), default=0)
    return "`" * max(3, longest + 1)


def unified(d: Diff) -> str:
    return "".join(
        difflib.unified_diff(
            d.before.splitlines(True),
            d.after.splitlines(True),
            fromfile=f"before: {d.header}",
            tofile=f"after: {d.header}",
        )
    )


def diffs_text(report: RunReport) -> str:
    """Per host, the diff of every file and boot entry the run would change."""
    out = []
    for host in sorted(report.hosts):
        outcome = report.hosts[host]
        if outcome.status in ("failed", "unreachable"):
            out.append(
                f"== {terminal_safe(host)}: {outcome.status}: {terminal_safe(outcome.error)}"
            )
            continue
        if not outcome.diffs:
            out.append(f"== {terminal_safe(host)}: no change")
            continue
        out.append(f"== {terminal_safe(host)}: {len(outcome.diffs)} change(s)")
        for d in outcome.diffs:
            body = unified(d)
            out.append("\n".join(terminal_safe(line) for line in body.splitlines()))
    return "\n".join(out) + "\n"


def summary_markdown(
    rows: Sequence[HostSummary], title: str, report: RunReport | None = None
) -> str:
    lines = [
        f"# {md(title)}",
        "",
        md(_counts(rows)),
        "",
        "| Host | Outcome | Rebooted | Changed | Detail |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        lines.append(
            f"| {md(r.host)} | {md(r.outcome)} | {'yes' if r.rebooted else 'no'} | "
            f"{md(', '.join(r.changed) or '-')} | {md(r.detail or '-')} |"
        )
    if report is not None:
        lines += ["", "## Changes", ""]
        lines += diffs_markdown_lines(report)
    return "\n".join(lines) + "\n"


def diffs_markdown_lines(report: RunReport) -> list[str]:
    lines: list[str] = []
    for host in sorted(report.hosts):
        outcome = report.hosts[host]
        lines.append(f"### {md(host)}")
        lines.append("")
        if not outcome.diffs:
            lines += ["No change.", ""]
            continue
        for d in outcome.diffs:
            body = unified(d)
            fence = _fence(body)
            lines += [f"{md(d.header)}:", "", f"{fence}diff", shown_lines(body.rstrip("\n")),
                      fence, ""]
    return lines
