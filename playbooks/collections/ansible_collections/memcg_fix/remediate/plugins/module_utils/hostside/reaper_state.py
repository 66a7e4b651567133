"""The reaper's state between passes, and the lock that makes passes exclusive.

The state file (JSON, replaced atomically) keeps what one pass must know of
the last: the boot it ran on, the dying count it saw (for ``require_growth``),
when drop_caches last ran, the lifetime counters of the metrics, and the idle
cgroups with the time each was first seen idle. A pass holds an exclusive
flock for its whole run, so concurrent starts run one after the other.
Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import fcntl
import json
import os
import time

from .safeedit import atomic_write

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, Optional, Tuple  # noqa: F401 # novermin

STATE_NAME = "reaper-state.json"
LOCK_NAME = "reaper.lock"
STATE_VERSION = 1

_clock = getattr(time, "monotonic", time.time)


def fresh_state():
    # type: () -> Dict[str, Any]
    return {
        "version": STATE_VERSION,
        "boot_id": None,
        "last_pass": None,
        "last_dying": None,
        "last_drop_caches": None,
        "last_drop_caches_dry_run": None,
        "counters": {"reclaimed_bytes": 0, "reclaimed_cgroups": 0, "drop_caches_runs": 0},
        "idle": {},
    }


def load_state(path, now):
    # type: (str, float) -> Tuple[Dict[str, Any], Optional[str]]
    """``(state, note)``. A missing file gives a fresh state. An unreadable
    or corrupt one also does, but with ``last_drop_caches`` set to ``now``:
    without a trustworthy record the guard assumes it just ran."""
    try:
        with open(path, "rb") as handle:
            raw = handle.read(16 * 1024 * 1024)
    except (IOError, OSError) as exc:
        if exc.errno == errno.ENOENT:
            return fresh_state(), None
        state = fresh_state()
        state["last_drop_caches"] = now
        return state, "cannot read %s (%s); drop_caches waits a full interval" % (
            path, exc.strerror or exc)
    try:
        loaded = json.loads(raw.decode("utf-8"))
        if not isinstance(loaded, dict) or loaded.get("version") != STATE_VERSION:
            raise ValueError("unknown state version")
        state = fresh_state()
        for key in state:
            if key in loaded:
                state[key] = loaded[key]
        if not isinstance(state["idle"], dict) or not isinstance(state["counters"], dict):
            raise ValueError("bad idle or counters")
        counters = fresh_state()["counters"]
        counters.update(state["counters"])
        state["counters"] = counters
        for key in ("last_pass", "last_drop_caches", "last_drop_caches_dry_run"):
            if state[key] is not None:
                state[key] = float(state[key])
        if state["last_dying"] is not None:
            state["last_dying"] = int(state["last_dying"])
        return state, None
    except (ValueError, TypeError, UnicodeDecodeError) as exc:
        state = fresh_state()
        state["last_drop_caches"] = now
        return state, "%s is corrupt (%s); starting over, drop_caches waits a full interval" % (
            path, exc)


def save_state(path, state):
    # type: (str, Dict[str, Any]) -> None
    data = json.dumps(state, sort_keys=True, indent=1).encode("utf-8")
    atomic_write(path, data, mode=0o600)


class Lock(object):
    """An exclusive flock on ``path``, waited for up to ``timeout`` seconds."""

    def __init__(self, path, timeout):
        # type: (str, float) -> None
        self.path = path
        self.timeout = timeout
        self.fd = None  # type: Optional[int]

    def acquire(self):
        # type: () -> bool
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0), 0o600)
        self.fd = fd
        deadline = _clock() + self.timeout
        while True:
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if _clock() >= deadline:
                os.close(fd)
                self.fd = None
                return False
            time.sleep(0.05)

    def release(self):
        # type: () -> None
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None
