"""The reaper's reclaim pass: idle, charged memory cgroups past their grace.

Memory cgroups with no tasks in their subtree, still charged above
``min_charge_bytes`` and idle for at least ``grace_seconds`` (the first time
each was seen idle is kept in the state, keyed by path and inode so a
re-created cgroup starts over) get their pages reclaimed by the reclaim
engine (:mod:`.reclaim`), as ``memcg-fix-rmdir`` does it. They are not
removed: their owner removes them later, and then no zombie is left behind.
Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch
import os
import stat

from .fileio import path_under_root
from .reclaim import human_bytes, populated, reclaim_cgroup, subtree_post_order, usage_bytes

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Callable, Dict, List, Set, Tuple  # noqa: F401 # novermin


def _has_symlink_below(base, rel):
    # type: (str, str) -> bool
    walked = base
    for part in [p for p in rel.split("/") if p]:
        walked = os.path.join(walked, part)
        try:
            if stat.S_ISLNK(os.lstat(walked).st_mode):
                return True
        except OSError:
            return False
    return False


def reclaim_pass(settings, layout, host_root, state, now, act, log):
    # type: (Dict[str, Any], Dict[str, Any], str, Dict[str, Any], float, bool, Callable[[str], None]) -> Dict[str, int]
    """Track idle charged cgroups and reclaim those past the grace period.

    ``act`` False logs instead of writing. Returns ``{"candidates",
    "reclaimed_cgroups", "reclaimed_bytes", "errors"}``.
    """
    stats = {"candidates": 0, "reclaimed_cgroups": 0, "reclaimed_bytes": 0, "errors": 0}
    mount = layout.get("memory_mount")
    if layout.get("memory_controller") not in ("v1", "v2") or not mount:
        log("reclaim: skipped, no memory cgroup hierarchy found (%s)"
            % (layout.get("memory_controller") or "unknown"))
        return stats
    local_mount = path_under_root(host_root, mount)
    idle = state["idle"]
    seen = set()  # type: Set[str]
    due = []  # type: List[Tuple[str, str, Dict[str, Any]]]
    for subtree in settings["subtrees"] or [""]:
        top = os.path.join(local_mount, subtree) if subtree else local_mount
        if subtree and _has_symlink_below(local_mount, subtree):
            log("reclaim: subtree %s is a symbolic link; skipped" % subtree)
            stats["errors"] += 1
            continue
        if not os.path.isdir(top):
            log("reclaim: subtree %s does not exist; skipped" % (subtree or "/"))
            continue
        busy_below = {}  # type: Dict[str, bool]
        for local_path in subtree_post_order(top):
            own, _detail = populated(local_path)
            busy = own is not False or busy_below.get(local_path, False)
            parent = os.path.dirname(local_path)
            busy_below[parent] = busy_below.get(parent, False) or busy
            rel = local_path[len(local_mount):].strip("/")
            if not rel or any(fnmatch.fnmatch(rel, pat) for pat in settings["exclude"]):
                continue
            if busy:
                continue
            usage = usage_bytes(local_path)
            if usage is None or usage < settings["min_charge_bytes"] or usage == 0:
                continue
            try:
                inode = os.lstat(local_path).st_ino
            except OSError:
                continue
            entry = idle.get(rel)
            if not isinstance(entry, dict) or entry.get("ino") != inode:
                entry = {"ino": inode, "since": now, "reclaimed_at": None, "left_bytes": None}
                idle[rel] = entry
            seen.add(rel)
            if now - float(entry["since"]) < settings["grace_seconds"]:
                continue
            left = entry.get("left_bytes")
            if left is not None and usage <= left + settings["min_charge_bytes"]:
                continue  # reclaimed before; what is left would not go
            due.append((local_path, rel, entry))
    for rel in list(idle):
        if rel not in seen:
            del idle[rel]
    stats["candidates"] = len(due)
    for local_path, rel, entry in due[:settings["max_per_pass"]]:
        usage = usage_bytes(local_path)
        if usage is None or usage < settings["min_charge_bytes"] or usage == 0:
            continue  # its children's reclaim already emptied it
        now_busy, _detail = populated(local_path)
        if now_busy is not False:
            continue  # a task arrived since the walk
        idle_for = now - float(entry["since"])
        if not act:
            log("reclaim: would reclaim %s (%s charged, idle for %ds)"
                % (rel, human_bytes(usage), idle_for))
            continue
        result = reclaim_cgroup(local_path, settings["timeout_seconds"])
        entry["reclaimed_at"] = now
        entry["left_bytes"] = result["after_bytes"]
        if result["method"] is None:  # nothing to write to: not retried until charged again
            log("reclaim: %s: %s" % (rel, result["detail"]))
            continue
        stats["reclaimed_cgroups"] += 1
        stats["reclaimed_bytes"] += result["reclaimed_bytes"] or 0
        if result["status"] in ("error", "timeout"):
            stats["errors"] += 1
            log("reclaim: %s: %s (%s), reclaimed %s" % (
                rel, result["status"], result["detail"],
                human_bytes(result["reclaimed_bytes"])))
        else:
            log("reclaim: %s: reclaimed %s by %s in %.2fs (idle for %ds, %s left)" % (
                rel, human_bytes(result["reclaimed_bytes"]), result["method"],
                result["seconds"], idle_for, human_bytes(result["after_bytes"])))
    if len(due) > settings["max_per_pass"]:
        log("reclaim: %d more due cgroup(s) wait for the next pass (max_per_pass %d)"
            % (len(due) - settings["max_per_pass"], settings["max_per_pass"]))
    return stats
