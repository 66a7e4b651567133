"""memcg-fix-reaper: one pass of idle-cgroup reclaim and the drop_caches guard.

A systemd timer runs one pass every few minutes. The command line and the
order of a pass live here; each part has a module of its own:

* the configuration, /etc/memcg-fix/reaper.conf (:mod:`.reaper_config`,
  which the collector reads too);
* the state between passes and the exclusive lock (:mod:`.reaper_state`):
  the pass holds the lock for its whole run;
* **reclaim** of idle, charged memory cgroups past their grace period
  (:mod:`.reaper_idle`, over the reclaim engine :mod:`.reclaim`);
* the **drop_caches guard** (:mod:`.reaper_drop_caches`);
* the **metrics**: a Prometheus node_exporter textfile (:mod:`.reaper_metrics`).

``dry_run`` in a config section observes: the pass keeps its bookkeeping and
metrics and logs what it would do, but writes to no cgroup and never drops
caches. ``--dry-run`` on the command line previews: it also leaves the state
file and the textfile alone.

Exit codes: 0 pass done, 1 pass done with errors (logged), 2 bad usage or
configuration. Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import sys
import time

from . import cgroupfs
from .command import EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, UsageError, exit_code_of
from .fileio import path_under_root
from .reaper_config import DEFAULT_CONFIG, ConfigError, load_config
from .reaper_drop_caches import drop_caches_pass
from .reaper_idle import reclaim_pass
from .reaper_metrics import metrics_text, write_textfile
from .reaper_state import LOCK_NAME, STATE_NAME, Lock, load_state, save_state
from .safeedit import EditError

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Callable, Dict, Optional, Sequence  # noqa: F401 # novermin

PROG = "memcg-fix-reaper"

EXIT_OK = 0
EXIT_ERRORS = 1

_clock = getattr(time, "monotonic", time.time)


def _read_first_line(path):
    # type: (str) -> Optional[str]
    try:
        with open(path, "rb") as handle:
            return handle.readline(256).decode("utf-8", "replace").strip() or None
    except (IOError, OSError):
        return None


def _shown(value):
    # type: (Any) -> str
    return "unknown" if value is None else str(value)


# -------------------------------------------------------------------- main


def build_parser():
    # type: () -> ArgumentParser
    parser = ArgumentParser(
        prog=PROG,
        description="One pass: reclaim idle, unpopulated memory cgroups, and run "
                    "drop_caches when the zombie memcg count passes its threshold and grows. "
                    "A systemd timer schedules the passes.",
        epilog="exit codes: 0 pass done, 1 pass done with errors, 2 bad usage or configuration.")
    parser.add_argument("--config", default=None, metavar="FILE",
                        help="INI configuration (default %s; built-in defaults when that "
                             "file does not exist)" % DEFAULT_CONFIG)
    parser.add_argument("--dry-run", action="store_true",
                        help="log what the pass would do; change nothing, not even the "
                             "state file or the metrics")
    parser.add_argument("--once", action="store_true",
                        help="run one pass and exit (what every run does; the timer "
                             "schedules the next)")
    return parser


def run_pass(config, preview, log):
    # type: (Dict[str, Dict[str, Any]], bool, Callable[[str], None]) -> int
    """One pass; returns the exit code. Logs through ``log(line)``."""
    reaper = config["reaper"]
    host_root = reaper["host_root"]
    state_dir = reaper["state_dir"]
    errors = 0
    lock = None
    if not preview:
        if not os.path.isdir(state_dir):
            try:
                os.makedirs(state_dir, 0o755)
            except OSError as exc:
                log("cannot create the state directory %s: %s" % (state_dir, exc.strerror))
                return EXIT_ERRORS
        lock = Lock(os.path.join(state_dir, LOCK_NAME), reaper["lock_timeout_seconds"])
        try:
            if not lock.acquire():
                log("another pass holds %s; gave up after %gs"
                    % (lock.path, reaper["lock_timeout_seconds"]))
                return EXIT_ERRORS
        except OSError as exc:
            log("cannot lock %s: %s" % (lock.path, exc.strerror))
            return EXIT_ERRORS
    try:
        # the pass's time is taken once it holds the lock: a pass that waited
        # for another must judge the interval from after that one's run
        started_wall = time.time()
        started = _clock()
        state_path = os.path.join(state_dir, STATE_NAME)
        state, note = load_state(state_path, started_wall)
        if note:
            log(note)
            errors += 1
        boot_id = _read_first_line(path_under_root(host_root, "/proc/sys/kernel/random/boot_id"))
        if state.get("boot_id") and boot_id and state["boot_id"] != boot_id:
            log("first pass since a reboot: earlier counts and idle times are forgotten")
            state["last_dying"] = None
            state["idle"] = {}
        state["boot_id"] = boot_id

        layout = cgroupfs.host_memory_layout(host_root)
        counts = cgroupfs.dying_memcgs(host_root, layout)
        if counts.get("dying") is None:
            log("dying memcg count unknown: %s" % counts.get("reason"))

        reclaim_cfg = config["reclaim"]
        if reclaim_cfg["enabled"]:
            act = not (preview or reclaim_cfg["dry_run"])
            stats = reclaim_pass(reclaim_cfg, layout, host_root, state, started_wall, act, log)
            errors += stats["errors"]
            state["counters"]["reclaimed_bytes"] = (
                int(state["counters"].get("reclaimed_bytes", 0)) + stats["reclaimed_bytes"])
            state["counters"]["reclaimed_cgroups"] = (
                int(state["counters"].get("reclaimed_cgroups", 0)) + stats["reclaimed_cgroups"])
        drop_cfg = config["drop_caches"]
        drop = {"ran": False, "reason": "disabled"}  # type: Dict[str, Any]
        if drop_cfg["enabled"]:
            mode = "preview" if preview else ("observe" if drop_cfg["dry_run"] else "act")

            def persist():
                # type: () -> Optional[str]
                try:
                    save_state(state_path, state)
                except EditError as exc:
                    return str(exc)
                return None

            drop = drop_caches_pass(drop_cfg, counts, state, started_wall, mode, host_root,
                                    persist, log)
            errors += drop["errors"]
        state["last_dying"] = counts.get("dying")
        state["last_pass"] = started_wall
        if not preview:
            try:
                save_state(state_path, state)
            except EditError as exc:
                log("cannot save the state: %s" % exc)
                errors += 1
        duration = _clock() - started
        reboot = any(os.path.lexists(path_under_root(host_root, p))
                     for p in reaper["reboot_required_files"])
        snapshot = {
            "dying": counts.get("dying"), "live": counts.get("live"),
            "counters": state["counters"], "last_drop_caches": state.get("last_drop_caches"),
            "started": started_wall, "duration": duration, "errors": errors,
            "reboot_required": reboot,
            "dry_run": {"reclaim": preview or reclaim_cfg["dry_run"],
                        "drop_caches": preview or drop_cfg["dry_run"]},
            "enabled": {"reclaim": reclaim_cfg["enabled"], "drop_caches": drop_cfg["enabled"]},
        }
        textfile_dir = reaper["textfile_dir"]
        if preview or not textfile_dir:
            pass
        elif not os.path.isdir(textfile_dir):
            log("metrics not written: %s does not exist (is node_exporter's textfile "
                "collector set up?)" % textfile_dir)
        else:
            try:
                write_textfile(textfile_dir, metrics_text(snapshot))
            except EditError as exc:
                log("metrics not written: %s" % exc)
                errors += 1
        log("pass done in %.2fs%s: dying memcgs %s, live %s; drop_caches %s; %d error(s)" % (
            duration, " (dry run)" if preview else "", _shown(counts.get("dying")),
            _shown(counts.get("live")),
            "ran" if drop["ran"] else "not run (%s)" % drop["reason"], errors))
    finally:
        if lock is not None:
            lock.release()
    return EXIT_ERRORS if errors else EXIT_OK


def main(argv=None):
    # type: (Optional[Sequence[str]]) -> int
    """Entry point of ``memcg-fix-reaper``; returns the exit code."""

    def log(line):
        # type: (str) -> None
        sys.stderr.write("%s: %s\n" % (PROG, line))
        sys.stderr.flush()

    try:
        args = build_parser().parse_args(argv)
        path = args.config or DEFAULT_CONFIG
        config, note = load_config(path, explicit=args.config is not None)
    except (UsageError, ConfigError) as exc:
        log(str(exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exit_code_of(exc)
    if note:
        log(note)
    try:
        return run_pass(config, args.dry_run, log)
    except KeyboardInterrupt:
        log("interrupted")
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    # the command line (python -m ...): its exit status, not a module's exit_json
    raise SystemExit(main())
