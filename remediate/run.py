"""Run playbooks through ansible-runner, the engine AWX uses, and read the outcome.

Like an AWX job, every run gets a private data dir (``env/``, ``inventory``,
``artifacts/<id>/``) under the output directory, so its events and stdout
stay for the change record. Nothing here prints: progress goes to an
``on_event`` callback the CLI supplies, and the outcome is a
:class:`RunReport`.
"""

from __future__ import annotations

import json
import os
import re
import shutil
import sys
import tempfile
import uuid
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from .errors import InputError, RemediateError
from .render import RESULTS_STAT
from .resources import collections_path, playbooks_dir

GATHER_TASK = "Collect memcg facts"
# Jinja's delimiters and control characters: never part of a real host name
_UNSAFE_HOST_NAME = re.compile(r"\{\{|\{%|\{#|[\x00-\x1f\x7f]")


@dataclass(frozen=True)
class Diff:
    """One file or boot-entry change that a task made (or would make, in check mode)."""

    host: str
    task: str
    header: str
    before: str
    after: str


@dataclass
class HostOutcome:
    """What happened on one host during a run."""

    host: str
    status: str = "skipped"  # ok, changed, failed, unreachable, skipped
    error: str | None = None
    failed_task: str | None = None
    then: str | None = None  # what failed next (the clean-up after the first failure)
    result: dict[str, Any] = field(default_factory=dict)  # the role's recorded result
    diffs: list[Diff] = field(default_factory=list)
    module_results: dict[str, dict[str, Any]] = field(default_factory=dict)

    @property
    def rebooted(self) -> bool:
        return bool(self.result.get("rebooted"))

    @property
    def verified(self) -> bool:
        return bool(self.result.get("verified"))

    @property
    def reboot_required(self) -> bool:
        return bool(self.result.get("reboot_required"))


@dataclass
class RunReport:
    """The outcome of one ansible-runner run."""

    rc: int
    status: str  # ansible-runner's: successful, failed, timeout, canceled
    artifacts_dir: Path
    hosts: dict[str, HostOutcome]
    batches: int = 0

    @property
    def failed_hosts(self) -> list[str]:
        return sorted(h for h, o in self.hosts.items() if o.status in ("failed", "unreachable"))


@dataclass(frozen=True)
class Progress:
    """A progress event for the CLI: ``kind`` is play, batch, task, host or reboot."""

    kind: str
    host: str | None
    text: str


def _binary(name: str) -> str:
    """The ansible executable next to this Python (the venv memcg-fix runs in)."""
    candidate = Path(sys.executable).parent / name
    if candidate.exists():
        return str(candidate)
    found = shutil.which(name)
    if not found:
        raise RemediateError(f"{name} is not installed next to memcg-fix or on PATH")
    return found


def _diffs(host: str, task: str, res: Mapping[str, Any]) -> list[Diff]:
    raw = res.get("diff")
    items = raw if isinstance(raw, list) else [raw] if isinstance(raw, dict) else []
    out = []
    for item in items:
        if not isinstance(item, dict):
            continue
        before, after = item.get("before", ""), item.get("after", "")
        if before == after:
            continue
        header = str(item.get("after_header") or item.get("before_header") or task)
        out.append(Diff(host, task, header, _text(before), _text(after)))
    return out


def _text(value: Any) -> str:
    if isinstance(value, str):
        return value
    return json.dumps(value, indent=2, sort_keys=True)


class _Collector:
    """Turns ansible-runner events into per-host outcomes and progress."""

    def __init__(self, on_event: Callable[[Progress], None] | None) -> None:
        self.hosts: dict[str, HostOutcome] = {}
        self.on_event = on_event
        self.batches = 0

    def _host(self, name: str) -> HostOutcome:
        return self.hosts.setdefault(name, HostOutcome(name))

    def _emit(self, kind: str, host: str | None, text: str) -> None:
        if self.on_event is not None:
            self.on_event(Progress(kind, host, text))

    def __call__(self, event: Mapping[str, Any]) -> bool:
        kind = event.get("event", "")
        data = event.get("event_data") or {}
        host = data.get("host")
        task = str(data.get("task") or "")
        res = data.get("res") or {}
        if kind == "playbook_on_play_start":
            self.batches += 1
            self._emit("play", None, str(data.get("play") or data.get("name") or ""))
        elif kind == "runner_on_start" and host:
            self._host(host)
        elif kind == "runner_on_ok" and host:
            outcome = self._host(host)
            if outcome.status not in ("failed", "unreachable"):
                outcome.status = (
                    "changed" if res.get("changed") or outcome.status == "changed" else "ok"
                )
            outcome.diffs.extend(_diffs(host, task, res))
            outcome.module_results[task] = res
            if str(data.get("task_action", "")).endswith("reboot") and res.get("rebooted"):
                self._emit("reboot", host, f"rebooted and back in {res.get('elapsed', '?')} s")
            recorded = _recorded_result(data, res, host)
            if recorded is not None:
                # the role's set_stats task: progress now; the run's recorded
                # stats replace this at the end (kept if the run never ends)
                outcome.result = recorded
                self._emit("host", host, _summary_line(recorded))
        elif kind == "runner_on_failed" and host and not data.get("ignore_errors"):
            outcome = self._host(host)
            error = _one_line(
                res.get("msg") or res.get("stderr") or res.get("module_stderr") or "failed"
            )
            _record_failure(outcome, "failed", task, error)
            self._emit("host", host, f"FAILED at '{task}': {error}")
        elif kind == "runner_on_unreachable" and host:
            outcome = self._host(host)
            error = "unreachable: " + _one_line(res.get("msg") or "")
            _record_failure(outcome, "unreachable", task, error)
            self._emit("host", host, error)
        elif kind == "runner_on_skipped" and host:
            self._host(host)
        return True  # keep the event in the artifacts


def _record_failure(outcome: HostOutcome, status: str, task: str, error: str) -> None:
    """Keep the first failure as the host's reason: a later one is usually
    the clean-up (releasing the lock of a host that never came back from its
    reboot) and would hide the cause."""
    if outcome.status in ("failed", "unreachable") and outcome.error:
        if outcome.then is None:
            outcome.then = f"{status} at '{task}'"
        return
    outcome.status = status
    outcome.failed_task = task
    outcome.error = error


def _one_line(text: Any) -> str:
    return " ".join(str(text).split())[:500]


def _recorded_result(data: Mapping[str, Any], res: Mapping[str, Any],
                     host: str) -> dict[str, Any] | None:
    """The result the role's set_stats task records for ``host``, if this event is that task."""
    if not str(data.get("task_action", "")).endswith("set_stats"):
        return None
    stats = (res.get("ansible_stats") or {}).get("data") or {}
    result = (stats.get(RESULTS_STAT) or {}).get(host)
    return dict(result) if isinstance(result, Mapping) else None


def recorded_stats(artifacts_dir: Path) -> dict[str, Any]:
    """The run's custom stats (set_stats) as ansible-runner recorded them.

    They are the ``artifact_data`` of the run's last event, playbook_on_stats,
    in ``job_events/`` (what AWX saves as a job's artifacts). Empty when the
    run ended before it (Ansible could not start, or was killed).
    """
    events = artifacts_dir / "job_events"
    try:
        names = [p for p in events.iterdir() if p.suffix == ".json"]
    except OSError:
        return {}

    def counter(path: Path) -> int:
        head = path.name.partition("-")[0]
        return int(head) if head.isdigit() else -1

    for path in sorted(names, key=counter, reverse=True)[:20]:
        try:
            event = json.loads(path.read_text())
        except (OSError, ValueError):
            continue
        if event.get("event") == "playbook_on_stats":
            data = (event.get("event_data") or {}).get("artifact_data")
            return dict(data) if isinstance(data, Mapping) else {}
    return {}


def _summary_line(result: Mapping[str, Any]) -> str:
    r = result
    parts = [("changed " + ", ".join(r.get("changed") or [])) if r.get("changed") else "no change"]
    if r.get("rebooted"):
        parts.append("rebooted")
    if r.get("reboot_required"):
        parts.append("REBOOT REQUIRED")
    if r.get("verified"):
        parts.append("verified")
    return "; ".join(parts)


def run_playbook(
    playbook: Path,
    inventory: Sequence[str],
    *,
    data_dir: Path,
    limit: str | None = None,
    forks: int | None = None,
    check: bool = False,
    diff: bool = False,
    extravars: Mapping[str, Any] | None = None,
    on_event: Callable[[Progress], None] | None = None,
    ident: str | None = None,
) -> RunReport:
    """Run ``playbook`` the way AWX would, with artifacts kept under ``data_dir``."""
    import ansible_runner  # imported late: it is slow to import and not needed offline

    playbook = Path(playbook).resolve()
    if not playbook.is_file():
        raise InputError(f"playbook not found: {playbook}")
    inventories = []
    for item in inventory:
        path = Path(item)
        if not path.exists():
            raise InputError(f"inventory not found: {item}")
        inventories.append(str(path.resolve()))
    data_dir.mkdir(parents=True, exist_ok=True)
    flags = (["--check"] if check else []) + (["--diff"] if diff else [])
    env = _ansible_env(
        # the bundled collection first; the caller's collections stay reachable
        ANSIBLE_COLLECTIONS_PATH=os.pathsep.join(
            p for p in (str(collections_path()), os.environ.get("ANSIBLE_COLLECTIONS_PATH")) if p
        ),
        ANSIBLE_RETRY_FILES_ENABLED="False",
        ANSIBLE_FORCE_COLOR="False",
    )
    collector = _Collector(on_event)
    _binary("ansible-playbook")  # a clear error when Ansible is not installed
    runner = ansible_runner.run(
        private_data_dir=str(data_dir),
        ident=ident or uuid.uuid4().hex[:12],
        playbook=str(playbook),
        inventory=inventories,
        cmdline=" ".join(flags) or None,  # fixed option names, nothing to quote
        limit=limit,
        forks=forks,
        extravars=dict(extravars or {}),
        envvars=env,
        quiet=True,
        event_handler=collector,
        suppress_env_files=True,
    )
    artifacts = Path(runner.config.artifact_dir)
    results = recorded_stats(artifacts).get(RESULTS_STAT) or {}
    for host, result in results.items() if isinstance(results, Mapping) else ():
        if isinstance(result, Mapping):
            collector.hosts.setdefault(host, HostOutcome(host)).result = dict(result)
    return RunReport(
        rc=int(runner.rc if runner.rc is not None else 1),
        status=str(runner.status),
        artifacts_dir=artifacts,
        hosts=collector.hosts,
        batches=collector.batches,
    )


def _ansible_env(**extra: str) -> dict[str, str]:
    """The environment Ansible runs with, on top of the caller's (left unchanged).

    The Ansible installed next to memcg-fix (a venv that need not be on the
    caller's PATH) comes first on PATH: ansible-runner starts
    ``ansible-playbook`` by name, looked up on the PATH it is given.
    """
    return {
        "PATH": str(Path(sys.executable).parent) + os.pathsep + os.environ.get("PATH", ""),
        "ANSIBLE_NOCOLOR": "True",
        **extra,
    }


# How facts are collected from an inventory (``--via``): the action that
# runs once per host, in the shipped playbook that runs it. Both return the
# same result, from the same collector code (docs/design.md).
GATHER_VIA = {
    # one shell command per host, below Ansible's per-module cost (the default)
    "raw": ("memcg_facts_raw", "gather-raw.yml"),
    # the memcg_facts module, with Ansible's module semantics
    "module": ("memcg_facts", "gather.yml"),
}
DEFAULT_VIA = "raw"


def gather_playbook(via: str = "module") -> Path:
    """The shipped playbook that collects facts ``via`` one action per host."""
    return playbooks_dir() / GATHER_VIA[via][1]


def collect_facts(
    inventory: Sequence[str],
    *,
    data_dir: Path,
    limit: str | None = None,
    forks: int | None = None,
    on_event: Callable[[Progress], None] | None = None,
    via: str = DEFAULT_VIA,
) -> tuple[list[Any], RunReport]:
    """Facts of every inventory host, one ``memcg_facts_raw`` (or, ``via="module"``,
    one ``memcg_facts`` module run) per host.

    A host that fails or is unreachable becomes ``HostFacts(error=...)``: it is
    reported as unknown and the others go on.
    """
    from .facts import from_module_result

    report = run_playbook(
        gather_playbook(via),
        inventory,
        data_dir=data_dir,
        limit=limit,
        forks=forks,
        on_event=on_event,
        ident="facts",
    )
    hosts = []
    for name in sorted(report.hosts):
        outcome = report.hosts[name]
        if outcome.status in ("failed", "unreachable"):
            result: dict[str, Any] = {"failed": True, "msg": outcome.error or "failed"}
            if outcome.status == "unreachable":
                result["unreachable"] = True
        else:
            result = outcome.module_results.get(
                GATHER_TASK, {"failed": True, "msg": "no facts returned"}
            )
        hosts.append(from_module_result(name, result, action=GATHER_VIA[via][0]))
    if not hosts and report.rc != 0:
        raise InputError(
            f"Ansible could not run against the inventory (rc={report.rc}): "
            f"{_last_line(report.artifacts_dir / 'stdout')}"
        )
    return hosts, report


def _parse_failure(output: str) -> str | None:
    """Why Ansible could not parse an inventory, from its first "Failed to parse" warning.

    Its final error ("No inventory was parsed") does not say what is wrong; the
    plugins' warnings before it do (2.16 wraps them over several lines, 2.19
    adds the offending lines after "<<< caused by >>>" or "Origin:").
    """
    failures = [re.split(r"<<<|Origin:|The offending line", chunk)[0]
                for chunk in re.split(r"\[WARNING\]:|\[ERROR\]:|ERROR!", output)
                if "Failed to parse" in chunk]
    # the auto plugin only says the file is no plugin configuration; prefer
    # the plugin that tried to read it as an inventory
    failures.sort(key=lambda text: "no root 'plugin' key" in text)
    return " ".join(failures[0].split()).lstrip("* ")[:300] if failures else None


def _last_line(path: Path) -> str:
    """The last line Ansible wrote (its error), or where to look when there is none."""
    try:
        lines = [line for line in path.read_text(errors="replace").splitlines() if line.strip()]
    except OSError:
        lines = []
    return _one_line(lines[-1])[:300] if lines else f"see {path}"


def _inventory_listing(inventory: Sequence[str], limit: str | None) -> tuple[str, str, int]:
    """``ansible-inventory --list`` (JSON) of ``inventory``, through ansible-runner:
    (stdout, stderr, rc).

    ansible_runner.get_inventory() would be the natural call, but it takes no
    ``--limit`` and looks ``ansible-inventory`` up on the caller's PATH, which
    need not hold the venv memcg-fix runs in; run_command() takes the
    executable by path and the arguments as a list.
    """
    import ansible_runner  # imported late: it is slow to import and not needed offline

    args = ["--list"]
    for item in inventory:
        args += ["-i", item]
    if limit:
        args += ["--limit", limit]
    env = _ansible_env(ANSIBLE_INVENTORY_UNPARSED_FAILED="True", ANSIBLE_LOCALHOST_WARNING="False")
    with tempfile.TemporaryDirectory(prefix="memcg-fix-inventory-") as private, open(
        os.devnull, encoding="utf-8"
    ) as devnull:
        # stdin from /dev/null: ansible refuses a non-blocking stdin (one a
        # parent process left in O_NONBLOCK), and it never needs ours here
        out, err, rc = ansible_runner.run_command(
            executable_cmd=_binary("ansible-inventory"),
            cmdline_args=args,
            envvars=env,
            private_data_dir=private,
            runner_mode="subprocess",
            input_fd=devnull,
            timeout=_INVENTORY_TIMEOUT,
            quiet=True,
        )
    return str(out or ""), str(err or ""), int(rc if rc is not None else 1)


_INVENTORY_TIMEOUT = 300
_TIMED_OUT = 254  # ansible-runner's return code for a command it stopped at its timeout


def _listed_hosts(listing: Mapping[str, Any]) -> list[str]:
    """Every host of an ``ansible-inventory --list`` document, in first-seen order."""
    hosts: dict[str, None] = {}
    for group in listing.values():
        if isinstance(group, Mapping):
            hosts.update(dict.fromkeys(str(h) for h in group.get("hosts") or ()))
    meta = listing.get("_meta")
    if isinstance(meta, Mapping):
        hosts.update(dict.fromkeys(str(h) for h in meta.get("hostvars") or {}))
    return list(hosts)


def list_hosts(inventory: Sequence[str], limit: str | None = None) -> list[str]:
    """The hosts ``inventory`` (with ``limit``) names, or a clear InputError."""
    for item in inventory:
        if not Path(item).exists():
            raise InputError(f"inventory not found: {item}")
    out, err, rc = _inventory_listing(inventory, limit)
    if rc == _TIMED_OUT:
        raise InputError(f"reading the inventory took more than {_INVENTORY_TIMEOUT} s")
    listing: Any = None
    if rc == 0:
        try:
            listing = json.loads(out)
        except ValueError:
            listing = None
    if not isinstance(listing, Mapping):
        detail = _parse_failure(err + out) or next(
            (line.strip() for line in (err + out).splitlines() if "rror" in line),
            err.strip()[:300] or f"ansible-inventory exited with {rc}",
        )
        raise InputError(f"cannot use the inventory {', '.join(inventory)}: {_one_line(detail)}")
    hosts = _listed_hosts(listing)
    if not hosts and limit:
        raise InputError(
            f"cannot use the inventory {', '.join(inventory)}: --limit {limit!r} matches no host"
        )
    if not hosts:
        raise InputError(f"the inventory {', '.join(inventory)} matches no host")
    unsafe = [h for h in hosts if _UNSAFE_HOST_NAME.search(h)]
    if unsafe:
        # ansible-core 2.16 evaluates a host name holding "{{ ... }}" wherever
        # inventory_hostname is used (a lookup in it runs on this machine);
        # no real host is named so, so such an inventory is refused.
        shown = ", ".join(repr(h) for h in unsafe[:3])
        more = f" and {len(unsafe) - 3} more" if len(unsafe) > 3 else ""
        raise InputError(
            f"the inventory {', '.join(inventory)} names host(s) that Ansible would evaluate "
            f"as templates or that hold control characters: {shown}{more}; rename them"
        )
    return hosts
