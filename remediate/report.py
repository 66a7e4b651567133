"""A Plan as text: ``table`` (terminals), ``json`` (machines) or ``markdown`` (change requests).

Output is deterministic: hosts are sorted, keys are sorted, nothing carries a
timestamp. Every string that can come from a host (its name, fact values
quoted in summaries and rationales, the reasons a fact is unknown) is made
inert for the target:

* table: every character that is not plainly printable (controls,
  ANSI escapes, bidi overrides, invalid code points) is shown escaped by
  :func:`remediate.text.shown`, the one sanitizer of human-facing text, so a
  host cannot repaint the terminal;
* markdown: the same, then Markdown punctuation is backslash-escaped and
  ``& < >`` become HTML entities, so a host cannot add HTML, links, code
  spans, table cells or lines to a change request.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from typing import Final

from .plan import HostPlan, Plan, PlannedMitigation
from .text import shown

FORMATS: Final = ("table", "json", "markdown")

_MAX_CELL: Final = 100  # characters of the last table column


def render(plan: Plan, fmt: str, explain: bool = False) -> str:
    if fmt == "json":
        return to_json(plan, explain)
    if fmt == "markdown":
        return to_markdown(plan, explain)
    if fmt == "table":
        return to_table(plan, explain)
    raise ValueError(f"unknown format {fmt!r}")


# --- json -------------------------------------------------------------------


def _compact(value: object) -> str:
    # ASCII only: a host name with a lone surrogate must not break the output
    return json.dumps(value, sort_keys=True, ensure_ascii=True, separators=(", ", ": "))


def to_json(plan: Plan, explain: bool = False) -> str:
    """Sorted keys, one host per line: a diff of two plans shows the hosts that changed.

    (Per-host lines also let the C encoder do the work; ``indent`` would not.)
    """
    doc = plan.to_json(explain)
    lines = ["{"]
    keys = sorted(doc)
    for index, key in enumerate(keys):
        comma = "," if index < len(keys) - 1 else ""
        if key == "hosts":
            lines.append('  "hosts": [')
            hosts = doc["hosts"]
            lines.extend(
                "    " + _compact(h) + ("," if i < len(hosts) - 1 else "")
                for i, h in enumerate(hosts)
            )
            lines.append("  ]" + comma)
        else:
            lines.append(f"  {_compact(key)}: {_compact(doc[key])}{comma}")
    lines.append("}")
    return "\n".join(lines) + "\n"


# --- table ------------------------------------------------------------------


# the name the rest of memcg-fix knows it by
terminal_safe = shown


def _clip(text: str, width: int) -> str:
    return text if len(text) <= width else text[: width - 3] + "..."


def _mitigation_ids(host: HostPlan) -> str:
    return ", ".join(m.id for m in host.mitigations) or "-"


def _finding_ids(host: HostPlan) -> str:
    parts = [f"{f.severity}:{f.id}" for f in host.findings]
    if host.blocked:
        parts.append("undecided:" + ",".join(b.rule for b in host.blocked))
    elif host.unknown:
        parts.append("unknown:" + ",".join(u.fact for u in host.unknown))
    return ", ".join(parts) or "-"


def _last_column(host: HostPlan) -> str:
    """What the table's last column says: why, for a host the plan could not settle."""
    if host.status in ("undecided", "attention") and host.reason:
        return host.reason
    return _finding_ids(host)


def _reboot(host: HostPlan) -> str:
    if host.error is not None:
        return "?"
    return "yes" if host.needs_reboot else "no"


def summary_text(plan: Plan) -> str:
    """``4 host(s): 1 planned (1 with a reboot), 1 need attention, 1 undecided, ...``."""
    s = plan.summary
    return (
        f"{s['hosts']} host(s): {s['planned']} planned ({s['reboots']} with a reboot), "
        f"{s['attention']} need attention, {s['undecided']} undecided, "
        f"{s['nothing-to-do']} nothing to do"
    )


def _summary_line(plan: Plan) -> str:
    return summary_text(plan)


def _params_text(m: PlannedMitigation) -> str:
    return " ".join(f"{k}={json.dumps(v)}" for k, v in sorted(m.params.items())) or "(none)"


def to_table(plan: Plan, explain: bool = False) -> str:
    header = ("HOST", "STATUS", "REBOOT", "MITIGATIONS", "FINDINGS / REASON")
    rows = []
    for host in plan.hosts:
        last = _last_column(host)
        rows.append(
            (
                _clip(terminal_safe(host.host), 40),
                host.status,
                _reboot(host),
                _mitigation_ids(host),
                _clip(terminal_safe(last or "-"), _MAX_CELL),
            )
        )
    widths = [max(len(r[i]) for r in [header, *rows]) for i in range(len(header) - 1)]
    lines = []
    for row in [header, *rows]:
        cells = [cell.ljust(widths[i]) for i, cell in enumerate(row[:-1])]
        lines.append("  ".join([*cells, row[-1]]).rstrip())
    lines.append("")
    lines.append(_summary_line(plan))
    lines.append(
        f"policy {terminal_safe(plan.policy.id)} {terminal_safe(plan.policy.version)}, "
        f"plan {plan.fingerprint()}"
    )
    if explain:
        for host in plan.hosts:
            lines.extend(_explain_block(host))
    return "\n".join(lines) + "\n"


def _explain_block(host: HostPlan) -> Iterable[str]:
    yield ""
    yield f"== {terminal_safe(host.host)}: {host.status}"
    if host.reason:
        yield f"   reason: {terminal_safe(host.reason)}"
    for finding in host.findings:
        yield f"   finding {finding.severity} {finding.id}: {terminal_safe(finding.summary)}"
    for m in host.mitigations:
        yield (
            f"   mitigation {m.id}: reboot {'yes' if m.needs_reboot else 'no'}, risk {m.risk}, "
            f"disruption {m.disruption}, params {terminal_safe(_params_text(m))}"
        )
        yield f"      why: {terminal_safe(m.rationale)}"
        yield f"      alternatives: {', '.join(m.alternatives) or '-'}"
    for blocked in host.blocked:
        yield (
            f"   undecided {terminal_safe(blocked.rule)}: lacks "
            f"{terminal_safe(', '.join(blocked.facts) or 'facts')}"
        )
    for entry in host.unknown:
        yield f"   unknown {terminal_safe(entry.fact)}: {terminal_safe(entry.reason)}"
    width = max((len(r.rule) for r in host.rules), default=0)
    for result in host.rules:
        yield (
            f"   {result.result:<13} {terminal_safe(result.rule).ljust(width)}  "
            f"{terminal_safe(result.detail)}"
        )


# --- markdown ---------------------------------------------------------------

# Values never start a line (they follow "| ", "- " or "## "), and newlines
# and other control characters are shown escaped, so only inline syntax needs
# neutralising: the characters that open code spans, emphasis, links and
# images, table cells, strikethrough, math and trailing heading marks get a
# backslash; & < > become entities, so no HTML or autolink can form.
_MD_ESCAPES: Final = {ch: "\\" + ch for ch in "\\`*_[]|~$#"}
_MD_ESCAPES.update({"&": "&amp;", "<": "&lt;", ">": "&gt;"})


def md(text: object) -> str:
    """``text`` as inert Markdown: renders as :func:`shown` gives it, on one line."""
    return "".join(_MD_ESCAPES.get(ch, ch) for ch in shown(text))


def _md_row(cells: Iterable[str]) -> str:
    return "| " + " | ".join(cells) + " |"


def _md_table(header: list[str], rows: list[list[str]]) -> list[str]:
    return [
        _md_row(md(h) for h in header),
        _md_row("---" for _ in header),
        *(_md_row(row) for row in rows),
    ]


def to_markdown(plan: Plan, explain: bool = False) -> str:
    lines = [
        "# memcg-fix plan",
        "",
        f"Policy **{md(plan.policy.id)}** version {md(plan.policy.version)}; "
        f"plan fingerprint {md(plan.fingerprint())}.",
        "",
        md(summary_text(plan)) + ".",
        "",
        "## Summary",
        "",
    ]
    lines += _md_table(
        ["Host", "Status", "Reboot", "Mitigations", "Findings"],
        [
            [
                md(h.host),
                md(h.status),
                md(_reboot(h)),
                md(_mitigation_ids(h)),
                md(_last_column(h)),
            ]
            for h in plan.hosts
        ],
    )
    for host in plan.hosts:
        if not (
            host.findings or host.mitigations or host.unknown or host.reason or host.blocked
            or explain
        ):
            continue
        lines += ["", f"## {md(host.host)}", "", f"Status: **{md(host.status)}**"]
        if host.reason:
            lines += ["", f"Reason: {md(host.reason)}"]
        if host.findings:
            lines += ["", "### Findings", ""]
            lines += [
                f"- **{md(f.severity)}** {md(f.id)}: {md(f.summary)} (rule {md(f.rule)})"
                for f in host.findings
            ]
        if host.mitigations:
            lines += ["", "### Mitigations", "", "In this order:", ""]
            lines += _md_table(
                [
                    "#",
                    "Mitigation",
                    "Reboot",
                    "Risk",
                    "Disruption",
                    "Parameters",
                    "Rationale",
                    "Alternatives",
                    "Rule",
                ],
                [
                    [
                        str(position),
                        md(m.id),
                        "yes" if m.needs_reboot else "no",
                        md(m.risk),
                        md(m.disruption),
                        md(_params_text(m)),
                        md(m.rationale),
                        md(", ".join(m.alternatives) or "-"),
                        md(m.rule),
                    ]
                    for position, m in enumerate(host.mitigations, 1)
                ],
            )
        if host.blocked:
            lines += ["", "### Not decided", "", "Rules that could plan or warn, and the facts "
                      "they lacked:", ""]
            lines += [
                f"- {md(b.rule)}: {md(', '.join(b.facts) or 'facts')}" for b in host.blocked
            ]
        if host.unknown:
            lines += ["", "### Unknown facts", ""]
            lines += [f"- {md(u.fact)}: {md(u.reason)}" for u in host.unknown]
        if explain and host.rules:
            lines += ["", "### Rules", ""]
            lines += _md_table(
                ["Rule", "Result", "Why"],
                [[md(r.rule), md(r.result), md(r.detail)] for r in host.rules],
            )
    return "\n".join(lines) + "\n"
