"""The reaper's drop_caches guard.

When the dying (zombie) memcg count is at least ``dying_threshold`` and, with
``require_growth``, higher than at the last pass of this boot, it runs
``sync`` and writes ``1`` to /proc/sys/vm/drop_caches, at most once per
``min_interval_seconds``, and logs why. The time of the run is persisted
*before* the write, so neither repeated nor concurrent starts, nor a crash
mid-pass, can run it twice in an interval. Both sync and the write may block,
so each runs in a child killed at its deadline (the reclaim engine's
:func:`.reclaim.run_in_child`). Runs on the target's own Python (2.7, 3.6+),
stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import time

from . import cgroupfs
from .fileio import SourceError, path_under_root, run_command
from .reclaim import run_in_child, write_control

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Callable, Dict, Optional, Tuple  # noqa: F401 # novermin

# A recorded drop_caches time this far in the future means the wall clock
# was set back; the guard then restarts its interval from now.
CLOCK_SLACK = 60.0

_clock = getattr(time, "monotonic", time.time)


def _sync(timeout):
    # type: (float) -> bool
    """sync(2) in a child with a deadline (it can block on slow storage)."""
    if hasattr(os, "sync"):
        outcome = run_in_child(os.sync, timeout)  # novermin - guarded by hasattr
        return not outcome["timed_out"] and outcome["errno"] == 0
    try:  # Python 2.7 has no os.sync: run sync(1)
        return run_command(["sync"], timeout=timeout)[0] == 0
    except SourceError:
        return False


def drop_caches_decision(settings, dying, previous, last_run, now):
    # type: (Dict[str, Any], Optional[int], Optional[int], Optional[float], float) -> Tuple[bool, str]
    """``(run, reason)``: the guard, free of I/O.

    >>> s = {"dying_threshold": 100, "require_growth": True, "min_interval_seconds": 3600}
    >>> drop_caches_decision(s, 50, 10, None, 1000.0)[0]
    False
    >>> drop_caches_decision(s, 150, 120, None, 1000.0)
    (True, 'dying memcgs 150 >= threshold 100 and growing (was 120 at the last pass)')
    >>> drop_caches_decision(s, 150, 120, 900.0, 1000.0)[1]
    'ran 100s ago; at most once per 3600s'
    """
    if dying is None:
        return False, "the dying count is unknown"
    threshold = settings["dying_threshold"]
    if dying < threshold:
        return False, "dying memcgs %d below threshold %d" % (dying, threshold)
    if settings["require_growth"]:
        if previous is None:
            return False, ("dying memcgs %d >= threshold %d, but there is no earlier count "
                           "on this boot to show growth" % (dying, threshold))
        if dying <= previous:
            return False, ("dying memcgs %d >= threshold %d, but not growing (was %d)"
                           % (dying, threshold, previous))
        why = "dying memcgs %d >= threshold %d and growing (was %d at the last pass)" % (
            dying, threshold, previous)
    else:
        why = "dying memcgs %d >= threshold %d" % (dying, threshold)
    if last_run is not None and now - last_run < settings["min_interval_seconds"]:
        return False, "ran %ds ago; at most once per %ds" % (
            now - last_run, settings["min_interval_seconds"])
    return True, why


def drop_caches_pass(settings, counts, state, now, mode, host_root, persist, log):
    # type: (Dict[str, Any], Dict[str, Any], Dict[str, Any], float, str, str, Callable[[], Optional[str]], Callable[[str], None]) -> Dict[str, Any]
    """Apply the guard. ``mode`` is ``act``, ``observe`` or ``preview``.

    In ``act`` mode the run is recorded and persisted (``persist()``) before
    the write; when persisting fails, nothing is dropped. Returns
    ``{"ran", "reason", "errors", "dying_after"}``.
    """
    out = {"ran": False, "reason": "", "errors": 0,
           "dying_after": None}  # type: Dict[str, Any]
    key = "last_drop_caches" if mode == "act" else "last_drop_caches_dry_run"
    last_run = state.get(key)
    if last_run is not None and last_run > now + CLOCK_SLACK:
        log("drop_caches: the last run is recorded in the future (the clock went back); "
            "the interval restarts now")
        last_run = now
        if mode != "preview":
            state[key] = now
    run, reason = drop_caches_decision(settings, counts.get("dying"), state.get("last_dying"),
                                       last_run, now)
    out["reason"] = reason
    if not run:
        log("drop_caches: not run: %s" % reason)
        return out
    path = path_under_root(host_root, "/proc/sys/vm/drop_caches")
    if mode != "act":
        log("drop_caches: would run sync; echo 1 > %s: %s" % (path, reason))
        if mode == "observe":
            state[key] = now
        return out
    state[key] = now
    state["counters"]["drop_caches_runs"] = int(state["counters"].get("drop_caches_runs", 0)) + 1
    problem = persist()
    if problem:
        state["counters"]["drop_caches_runs"] -= 1
        log("drop_caches: not run, because its time could not be recorded first: %s" % problem)
        out["errors"] += 1
        return out
    log("drop_caches: running sync; echo 1 > %s, because %s" % (path, reason))
    started = _clock()
    if not _sync(settings["timeout_seconds"]):
        log("drop_caches: sync failed or did not finish in %gs; dropping anyway"
            % settings["timeout_seconds"])
    outcome = write_control(path, b"1", settings["timeout_seconds"])
    if outcome["errno"]:
        out["errors"] += 1
        log("drop_caches: writing %s failed: %s" % (path, os.strerror(outcome["errno"])))
        return out
    out["ran"] = True
    after = cgroupfs.dying_memcgs(host_root)
    out["dying_after"] = after.get("dying")
    log("drop_caches: done in %.2fs; dying memcgs %s right after (were %s; more are freed "
        "asynchronously)" % (_clock() - started, after.get("dying"), counts.get("dying")))
    return out
