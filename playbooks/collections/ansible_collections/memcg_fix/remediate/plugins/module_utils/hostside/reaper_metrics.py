"""The reaper's metrics: a Prometheus node_exporter textfile, replaced atomically.

Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from .safeedit import atomic_write

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 # novermin

    Sample = Tuple[Optional[Dict[str, str]], Any]

TEXTFILE_NAME = "memcg_fix.prom"


def metrics_text(snapshot):
    # type: (Dict[str, Any]) -> str
    """The node_exporter textfile for one pass: one HELP and TYPE line per
    family, its samples together, no timestamps (the textfile collector
    rejects them). A value that is unknown is left out, not written as 0."""
    families = []  # type: List[Tuple[str, str, str, List[Sample]]]

    def family(name, kind, help_text, samples):
        # type: (str, str, str, List[Sample]) -> None
        samples = [(labels, value) for labels, value in samples if value is not None]
        if samples:
            families.append((name, kind, help_text, samples))

    def flag(value):
        # type: (Any) -> int
        return 1 if value else 0

    family("memcg_fix_dying_memcgs", "gauge",
           "Memory cgroups removed but still held by the kernel (zombies), at the last pass.",
           [(None, snapshot.get("dying"))])
    family("memcg_fix_live_memcgs", "gauge",
           "Memory cgroups in the hierarchy (directories), at the last pass.",
           [(None, snapshot.get("live"))])
    family("memcg_fix_reclaimed_bytes_total", "counter",
           "Bytes reclaimed from idle memory cgroups by the reaper.",
           [(None, snapshot["counters"]["reclaimed_bytes"])])
    family("memcg_fix_reclaimed_cgroups_total", "counter",
           "Idle memory cgroups the reaper reclaimed.",
           [(None, snapshot["counters"]["reclaimed_cgroups"])])
    family("memcg_fix_drop_caches_runs_total", "counter",
           "Times the reaper ran sync and drop_caches.",
           [(None, snapshot["counters"]["drop_caches_runs"])])
    family("memcg_fix_drop_caches_last_run_timestamp_seconds", "gauge",
           "When the reaper last ran drop_caches (Unix time).",
           [(None, snapshot.get("last_drop_caches"))])
    family("memcg_fix_reaper_last_run_timestamp_seconds", "gauge",
           "When the last reaper pass started (Unix time).", [(None, snapshot["started"])])
    family("memcg_fix_reaper_last_run_duration_seconds", "gauge",
           "How long the last reaper pass took.", [(None, snapshot["duration"])])
    family("memcg_fix_reaper_last_run_success", "gauge",
           "1 when the last reaper pass had no errors.", [(None, flag(not snapshot["errors"]))])
    family("memcg_fix_reaper_enabled", "gauge", "1 when the action is enabled.",
           [({"action": a}, flag(snapshot["enabled"][a])) for a in ("reclaim", "drop_caches")])
    family("memcg_fix_reaper_dry_run", "gauge", "1 when the action only logs what it would do.",
           [({"action": a}, flag(snapshot["dry_run"][a])) for a in ("reclaim", "drop_caches")])
    family("memcg_fix_reboot_required", "gauge",
           "1 when a reboot is pending for a memcg-fix change or for the distribution.",
           [(None, flag(snapshot["reboot_required"]))])
    lines = []
    for name, kind, help_text, samples in families:
        lines.append("# HELP %s %s" % (name, help_text))
        lines.append("# TYPE %s %s" % (name, kind))
        for labels, value in samples:
            label_text = ""
            if labels:
                label_text = "{%s}" % ",".join('%s="%s"' % (k, labels[k]) for k in sorted(labels))
            shown = repr(round(value, 6)) if isinstance(value, float) else "%d" % int(value)
            lines.append("%s%s %s" % (name, label_text, shown))
    return "\n".join(lines) + "\n"


def write_textfile(directory, text, name=TEXTFILE_NAME):
    # type: (str, str, str) -> None
    """Replace ``directory/name`` atomically (temp file in the same directory,
    fsync, rename), mode 0644. The temp file's name does not end in .prom,
    so node_exporter never reads it."""
    atomic_write(os.path.join(directory, name), text.encode("utf-8"), mode=0o644)
