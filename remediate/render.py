"""Plan -> one reviewable, self-checking Ansible playbook.

The playbook is what a reviewer reads in a change request and what AWX/Tower
runs as a job template, so it must stand alone (only the
``memcg_fix.remediate`` collection next to it) and say everything in its header.

Safety properties, each tested:

* Host data is YAML data tagged ``!unsafe``: Ansible never templates it,
  so a host name or parameter holding ``{{ ... }}`` stays a string.
* Header comments go through :func:`remediate.text.shown`, the one
  sanitizer of human-facing text: one line each (a newline in a rationale
  cannot end the comment and start a play), and no character YAML refuses
  (a C1 control or a lone surrogate from one host's kernel log would make
  the whole fleet's playbook unloadable) or a terminal acts on.
* The same plan renders to the same bytes (sorted, no timestamps).
* The header carries sha256 digests of every section and of the whole
  file; :func:`check` recomputes them and names what was edited.
"""

from __future__ import annotations

import hashlib
import json
import re
import textwrap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Final

import yaml

from . import __version__
from .catalogue import ORDER
from .errors import InputError
from .plan import Plan, canonical_json, decisions_of, fingerprint_of
from .resources import ROLE_FQCN
from .text import encodable, shown

DEFAULT_BATCHES: Final[tuple[int | str, ...]] = (1, "10%", "25%")
ROLE: Final = ROLE_FQCN
PLANNED_GROUP: Final = "memcg_fix_planned"
CANARY_GROUP: Final = "memcg_fix_canary"
# What a run does (extra var memcg_fix_stage): apply to every planned host,
# canary first (all); apply to the canary alone (canary: the AWX workflow's
# canary job, before its approval node); or, in check mode, fail every host
# whose plan is not fully in effect (verify: the workflow's last job).
STAGES: Final = ("all", "canary", "verify")
SELECT_PLAY: Final = "Select the hosts this memcg-fix plan covers"
APPLY_PLAY: Final = "Apply the reviewed memcg-fix plan, canary first, then in batches"
# The custom stat (set_stats) in which the role records each host's outcome:
# {host: {state, selected, changed, rebooted, reboot_required, verified, ...}}
RESULTS_STAT: Final = "memcg_fix_results"
_MAGIC: Final = "# memcg-fix playbook"
_CONTENT_LINE: Final = "# content-sha256: "


class Unsafe(str):
    """A string Ansible must never template (dumped with the ``!unsafe`` tag)."""


class _Dumper(yaml.SafeDumper):
    """SafeDumper that writes :class:`Unsafe` as ``!unsafe`` and never aliases."""

    def ignore_aliases(self, data: Any) -> bool:
        return True

    def increase_indent(self, flow: bool = False, indentless: bool = False) -> None:
        # indent lists under their key, as yamllint (ansible-lint) expects
        return super().increase_indent(flow, False)


def _represent_unsafe(dumper: yaml.SafeDumper, data: Unsafe) -> yaml.Node:
    return dumper.represent_scalar("!unsafe", str(data), style="'")


_Dumper.add_representer(Unsafe, _represent_unsafe)


class PlaybookLoader(yaml.SafeLoader):
    """SafeLoader that reads Ansible's ``!unsafe`` tag as a plain string."""


def _construct_unsafe(loader: yaml.SafeLoader, node: yaml.Node) -> str:
    return str(loader.construct_scalar(node))  # type: ignore[arg-type]


PlaybookLoader.add_constructor("!unsafe", _construct_unsafe)


def _unsafe(value: Any) -> Any:
    """Tag every string in ``value`` (keys too) as unsafe."""
    if isinstance(value, str):
        return Unsafe(value)
    if isinstance(value, Mapping):
        return {_unsafe(k): _unsafe(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_unsafe(v) for v in value]
    return value


def one_line(text: Any) -> str:
    """``text`` safe inside a YAML comment: one line, nothing YAML refuses or a terminal runs."""
    return shown(text)


def _digest(value: Any) -> str:
    return hashlib.sha256(canonical_json(value)).hexdigest()


@dataclass(frozen=True)
class RenderOptions:
    """How the rollout is batched: a canary host first, then growing batches."""

    batches: tuple[int | str, ...] = DEFAULT_BATCHES
    max_fail_percentage: int = 0

    def __post_init__(self) -> None:
        if not self.batches:
            raise InputError("batches must list at least one batch size, e.g. 1,10%,25%")
        for size in self.batches:
            if isinstance(size, int) and size >= 1:
                continue
            if isinstance(size, str) and re.fullmatch(r"(100|[1-9][0-9]?)%", size):
                continue
            raise InputError(
                f"bad batch size {size!r}: use a host count >= 1 or a percentage like 10%"
            )
        if not 0 <= self.max_fail_percentage <= 100:
            raise InputError("max_fail_percentage must be between 0 and 100")


def parse_batches(text: str) -> tuple[int | str, ...]:
    """``"1,10%,25%"`` -> ``(1, "10%", "25%")``."""
    out: list[int | str] = []
    for part in (p.strip() for p in text.split(",")):
        out.append(int(part) if part.isdigit() else part)
    RenderOptions(batches=tuple(out))
    return tuple(out)


# The role's input, from the plan data above and the run's extra vars (the
# AWX survey or `memcg-fix apply` sets them).
_ROLE_VARS: Final = {
    "memcg_remediate_mitigations": "{{ memcg_fix_plan[inventory_hostname] }}",
    "memcg_remediate_state": "{{ memcg_fix_state | default('present') }}",
    "memcg_remediate_reboot_ok": "{{ memcg_fix_reboot_ok | default(false) | bool }}",
    "memcg_remediate_rollback_force": "{{ memcg_fix_force | default(false) | bool }}",
    "memcg_remediate_expect_in_effect": "{{ (memcg_fix_stage | default('all')) == 'verify' }}",
}


def _refuse_unencodable(plan: Plan) -> None:
    """A plan naming a host with a lone surrogate can only be made by hand (facts
    files have them escaped); YAML cannot hold one, so say so instead of
    writing a playbook Ansible refuses."""
    for host in plan.hosts:
        if encodable(host.host) != host.host:
            raise InputError(
                f"the plan names the host {encodable(host.host)!r}, which holds a lone "
                "surrogate (an invalid code point) that no playbook can hold; plan again "
                "from facts"
            )


def _plays(plan: Plan, options: RenderOptions) -> list[dict[str, Any]]:
    # Every host of the plan is in the data (so the fingerprint can be
    # recomputed from the file alone); only those with mitigations run.
    planned = sorted((h for h in plan.hosts if h.mitigations), key=lambda h: h.host)
    # Ids and parameter names come from the closed catalogue; host names and
    # parameter values are data from outside and are tagged !unsafe.
    plan_data = {
        Unsafe(host): [
            {"id": m["id"], "params": {k: _unsafe(v) for k, v in sorted(m["params"].items())}}
            for m in mitigations
        ]
        for host, mitigations in plan.host_decisions().items()
    }
    select = {
        "name": SELECT_PLAY,
        "hosts": "all",
        "gather_facts": False,
        "vars": {"memcg_fix_planned_hosts": _unsafe([h.host for h in planned])},
        "tasks": [
            {
                "name": "Check the stage this run applies",
                "ansible.builtin.assert": {
                    "that": [
                        "memcg_fix_stage | default('all') in " + json.dumps(list(STAGES)),
                        "memcg_fix_stage | default('all') != 'verify' or ansible_check_mode",
                    ],
                    "fail_msg": "memcg_fix_stage must be one of " + ", ".join(STAGES)
                    + "; verify runs in check mode only",
                    "quiet": True,
                },
                "run_once": True,
            },
            {
                "name": "Put the planned hosts in a group of their own",
                "ansible.builtin.group_by": {"key": PLANNED_GROUP},
                "changed_when": False,
                "when": "inventory_hostname in memcg_fix_planned_hosts",
            },
            {
                # the first planned host (by name) this run's inventory and
                # limit keep: the same host the first batch holds
                "name": "Put the canary in a group of its own",
                "ansible.builtin.group_by": {"key": CANARY_GROUP},
                "changed_when": False,
                "when": "inventory_hostname == (memcg_fix_planned_hosts"
                " | select('in', ansible_play_hosts_all) | first | default(''))",
            },
        ],
    }
    batches = list(options.batches)
    apply = {
        "name": APPLY_PLAY,
        "hosts": "{{ '" + CANARY_GROUP + "' if (memcg_fix_stage | default('all')) == 'canary'"
        " else '" + PLANNED_GROUP + "' }}",
        # group_by fills the group in whatever order hosts answer; batches
        # (and so the canary) follow host names, as the header says
        "order": "sorted",
        "gather_facts": False,
        # verify changes nothing: every host in one batch, so each one is judged
        "serial": "{{ ['100%'] if (memcg_fix_stage | default('all')) == 'verify' else "
        "memcg_fix_batches | default(" + json.dumps(batches) + ") }}",
        "max_fail_percentage": "{{ memcg_fix_max_fail_percentage | default("
        + str(options.max_fail_percentage)
        + ") }}",
        "vars": {
            "memcg_fix_fingerprint": plan.fingerprint(),
            "memcg_fix_plan": plan_data,
        },
        "roles": [
            {
                "role": ROLE,
                "vars": _ROLE_VARS,
            }
        ],
    }
    return [select, apply]


def _sections(plays: Sequence[Mapping[str, Any]]) -> dict[str, str]:
    """Digest of each reviewable section of the body (parsed data, not text)."""
    select, apply = plays[0], plays[1]
    plan_data = dict(apply.get("vars", {}).get("memcg_fix_plan", {}))
    settings = {k: v for k, v in apply.items() if k != "vars"}
    settings["vars"] = {k: v for k, v in apply.get("vars", {}).items() if k != "memcg_fix_plan"}
    sections = {"host selection play": _digest(select), "apply play settings": _digest(settings)}
    for host in sorted(plan_data):
        sections[f"plan for host {_section_label(host)}"] = _digest(plan_data[host])
    return sections


_PLAIN_LABEL: Final = re.compile(r"[ -~]{1,58}")  # printable ASCII, short
_LABEL_PREFIX: Final = re.compile(r"[^A-Za-z0-9._-]")


def _section_label(host: str) -> str:
    """How a host's section is named in the header: the host name itself, or,
    when it is long or holds characters JSON escapes, a printable prefix and
    a digest of the name, so every section line fits ansible-lint's 160
    columns whatever the host is called."""
    if _PLAIN_LABEL.fullmatch(host) and '"' not in host and "\\" not in host:
        return host
    digest = hashlib.sha256(encodable(host).encode("utf-8")).hexdigest()[:24]
    return f"{_LABEL_PREFIX.sub('_', host[:20])}~{digest}"


def _wrapped(first: str, text: str) -> list[str]:
    """Comment lines of at most ~100 characters (ansible-lint allows 160)."""
    rest = "#" + " " * (len(first) - 1)
    return textwrap.wrap(
        text,
        width=100,
        initial_indent=first,
        subsequent_indent=rest,
        break_long_words=True,
        break_on_hyphens=False,
    ) or [first.rstrip()]


def _header(plan: Plan, options: RenderOptions, sections: Mapping[str, str]) -> list[str]:
    summary = plan.summary
    planned = [h for h in plan.hosts if h.mitigations]
    lines = [
        f"{_MAGIC}: review it in your change request; do not edit it",
        "# (memcg-fix apply refuses an edited playbook unless --force).",
        "#",
        f"# memcg-fix-version: {one_line(__version__)}",
        f"# policy: {one_line(plan.policy.id)} {one_line(plan.policy.version)} "
        f"sha256:{one_line(plan.policy.sha256)}",
        f"# plan-fingerprint: {plan.fingerprint()}",
        f"# hosts: {summary['hosts']} in plan, {len(planned)} to change, "
        f"{summary['reboots']} need a reboot, {summary['attention']} need attention, "
        f"{summary['undecided']} undecided",
        f"# batches: {', '.join(str(b) for b in options.batches)} "
        f"(first batch is the canary); max_fail_percentage: {options.max_fail_percentage}",
        "# hosts run in name order: the canary is the first planned host below"
        + (" (with --limit, the first one the limit keeps)" if len(planned) > 1 else ""),
        *textwrap.wrap(
            ", ".join(ORDER) + ", then reboot (only with consent), then verify",
            width=85,
            initial_indent="# order on each host: ",
            subsequent_indent="#   ",
            break_on_hyphens=False,
        ),
        "#",
        "# Run it:  memcg-fix apply -i INVENTORY --playbook THIS_FILE [--reboot-ok]",
        "#   or as an AWX/Tower job template with this repository as its project",
        "#   (extra vars: memcg_fix_reboot_ok, memcg_fix_batches;",
        "#   memcg_fix_stage=canary: the canary host only; memcg_fix_stage=verify with --check:",
        "#   fail hosts whose plan is not fully in effect; rollback: memcg_fix_state=absent).",
        "#",
    ]
    for host in sorted(planned, key=lambda h: h.host):
        reboot = "needs a reboot" if host.needs_reboot else "no reboot"
        lines += _wrapped(
            "# host ", f"{one_line(json.dumps(host.host))}: {len(host.mitigations)} "
            f"mitigation(s), {reboot}"
        )
        for m in host.mitigations:
            params = ", ".join(f"{k}={json.dumps(v)}" for k, v in sorted(m.params.items()))
            lines += _wrapped(
                "#   - ", f"{one_line(m.id)}: risk {one_line(m.risk)}, disruption "
                f"{one_line(m.disruption)}, reboot {'yes' if m.needs_reboot else 'no'}"
                + (f", params {one_line(params)}" if params else "")
            )
            lines += _wrapped("#       why: ", one_line(m.rationale))
            if m.alternatives:
                lines += _wrapped("#       alternatives: ", one_line(", ".join(m.alternatives)))
        for f in host.findings:
            lines += _wrapped(f"#   finding {one_line(f.severity)}: ", one_line(f.summary))
    for host in sorted(plan.hosts, key=lambda h: h.host):
        if host.status in ("undecided", "attention"):
            lines += _wrapped(
                "# host ", f"{one_line(json.dumps(host.host))}: {host.status}, because "
                f"{one_line(host.reason or 'its facts could not be read')} (not changed)",
            )
        elif host.blocked:  # planned, with other rules left undecided
            lines += _wrapped(
                "# host ", f"{one_line(json.dumps(host.host))}: also undecided: "
                + one_line(", ".join(f"{b.rule} ({', '.join(b.facts)})" for b in host.blocked)),
            )
    lines.append("#")
    for name, digest in sections.items():
        lines.append(f"# section-sha256: {one_line(json.dumps(name))} {digest}")
    return lines


def render(plan: Plan, options: RenderOptions | None = None) -> str:
    """The playbook text for ``plan``: byte-identical for the same plan and options."""
    options = options or RenderOptions()
    _refuse_unencodable(plan)
    plays = _plays(plan, options)
    body = yaml.dump(
        plays,
        Dumper=_Dumper,
        sort_keys=False,
        default_flow_style=False,
        allow_unicode=False,
        width=100,
        explicit_start=True,
    )
    parsed = yaml.load(body, Loader=PlaybookLoader)  # noqa: S506 - a SafeLoader subclass
    header = _header(plan, options, _sections(parsed))
    text = "\n".join(header) + "\n" + body
    return _CONTENT_LINE + _content_digest(text) + "\n" + text


def _content_digest(text_without_line: str) -> str:
    return hashlib.sha256(text_without_line.encode("utf-8")).hexdigest()


@dataclass(frozen=True)
class PlaybookCheck:
    """What :func:`check` found in a playbook file."""

    fingerprint: str
    policy_id: str
    policy_version: str
    policy_sha256: str
    plan: dict[str, list[dict[str, Any]]]  # host -> [{id, params}]
    problems: tuple[str, ...]  # empty when untouched

    @property
    def untouched(self) -> bool:
        return not self.problems


_HEADER_FIELD = re.compile(r"^# (?P<key>[a-z0-9-]+): (?P<value>.*)$")


def check(text: str) -> PlaybookCheck:
    """Recompute a playbook's digests and say which sections were edited.

    Raises :class:`InputError` when the text is not a memcg-fix playbook at all.
    """
    if not text.startswith(_CONTENT_LINE):
        raise InputError(
            "not a memcg-fix playbook: its first line must be the content-sha256 header"
        )
    first, _nl, rest = text.partition("\n")
    header_lines = []
    for line in rest.splitlines():
        if line.startswith("---"):
            break
        header_lines.append(line)
    fields: dict[str, list[str]] = {}
    for line in header_lines:
        match = _HEADER_FIELD.match(line)
        if match:
            fields.setdefault(match["key"], []).append(match["value"])
    try:
        plays = yaml.load(rest, Loader=PlaybookLoader)  # noqa: S506 - a SafeLoader subclass
    except yaml.YAMLError as exc:
        # the problem and its place, not the multi-line excerpt PyYAML adds
        mark = getattr(exc, "problem_mark", None)
        where = f" at line {mark.line + 2}, column {mark.column + 1}" if mark else ""
        problem = getattr(exc, "problem", None) or exc
        raise InputError(f"the playbook is not valid YAML: {one_line(problem)}{where}") from exc
    if (
        not isinstance(plays, list)
        or len(plays) != 2
        or not all(isinstance(p, dict) for p in plays)
        or plays[1].get("name") != APPLY_PLAY
    ):
        raise InputError("not a memcg-fix playbook: expected its two plays (select, apply)")
    recorded: dict[str, str] = {}
    for value in fields.get("section-sha256", []):
        name, _sp, digest = value.rpartition(" ")
        try:
            recorded[json.loads(name)] = digest
        except ValueError:
            continue
    actual = _sections(plays)
    problems = [
        f"section {name!r} was edited"
        for name in sorted(set(actual) | set(recorded))
        if actual.get(name) != recorded.get(name)
    ]
    if first[len(_CONTENT_LINE) :].strip() != _content_digest(rest) and not problems:
        problems.append("the header comments or the formatting were edited")
    policy = (fields.get("policy") or ["? ? sha256:"])[0].split()
    plan_data = plays[1].get("vars", {}).get("memcg_fix_plan", {})
    if not isinstance(plan_data, dict):
        raise InputError("not a memcg-fix playbook: memcg_fix_plan is not a mapping")
    fingerprint = (fields.get("plan-fingerprint") or [""])[0].strip()
    policy_version = policy[1] if len(policy) > 1 else ""
    if fingerprint_of(decisions_of(policy[0], policy_version, plan_data)) != fingerprint:
        problems.append("the plan data no longer matches the plan fingerprint in the header")
    return PlaybookCheck(
        fingerprint=fingerprint,
        policy_id=policy[0],
        policy_version=policy_version,
        policy_sha256=policy[2].removeprefix("sha256:") if len(policy) > 2 else "",
        plan=plan_data,
        problems=tuple(dict.fromkeys(problems)),
    )
