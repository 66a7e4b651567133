"""memcg-fix-reaper: one pass of idle-cgroup reclaim and the drop_caches guard.

A systemd timer runs one pass every few minutes. Each pass:

* **reclaim**: memory cgroups with no tasks in their subtree, still charged
  above ``min_charge_bytes`` and idle for at least ``grace_seconds`` (the
  first time each was seen idle is kept in the state file, keyed by path and
  inode so a re-created cgroup starts over) get their pages reclaimed, as
  ``memcg-fix-rmdir`` does it. They are not removed: their owner removes
  them later, and then no zombie is left behind;
* **drop_caches guard**: when the dying (zombie) memcg count is at least
  ``dying_threshold`` and, with ``require_growth``, higher than at the last
  pass of this boot, it runs ``sync`` and writes ``1`` to
  /proc/sys/vm/drop_caches, at most once per ``min_interval_seconds``, and
  logs why. The time of the run is persisted (atomically, under an exclusive
  flock held for the whole pass) *before* the write, so neither repeated nor
  concurrent starts, nor a crash mid-pass, can run it twice in an interval;
* **metrics**: a Prometheus node_exporter textfile, replaced atomically.

``dry_run`` in a config section observes: the pass keeps its bookkeeping and
metrics and logs what it would do, but writes to no cgroup and never drops
caches. ``--dry-run`` on the command line previews: it also leaves the state
file and the textfile alone.

Exit codes: 0 pass done, 1 pass done with errors (logged), 2 bad usage or
configuration. Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import errno
import fcntl
import fnmatch
import json
import os
import signal
import stat
import sys
import time

from . import cgroupfs
from . import rmdir as rmdir_mod
from .fileio import SourceError, run_command
from .reaper_config import DEFAULT_CONFIG, ConfigError, load_config
from .safeedit import EditError, atomic_write

PROG = "memcg-fix-reaper"
STATE_NAME = "reaper-state.json"
LOCK_NAME = "reaper.lock"
TEXTFILE_NAME = "memcg_fix.prom"
STATE_VERSION = 1

EXIT_OK = 0
EXIT_ERRORS = 1
EXIT_USAGE = 2

# A recorded drop_caches time this far in the future means the wall clock
# was set back; the guard then restarts its interval from now.
CLOCK_SLACK = 60.0

_clock = getattr(time, "monotonic", time.time)


class UsageError(Exception):
    """Bad command line."""


# ------------------------------------------------------------------ state


def fresh_state():
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
    data = json.dumps(state, sort_keys=True, indent=1).encode("utf-8")
    atomic_write(path, data, mode=0o600)


class Lock(object):
    """An exclusive flock on ``path``, waited for up to ``timeout`` seconds."""

    def __init__(self, path, timeout):
        self.path = path
        self.timeout = timeout
        self.fd = None

    def acquire(self):
        self.fd = os.open(self.path, os.O_RDWR | os.O_CREAT | getattr(os, "O_CLOEXEC", 0),
                          0o600)
        deadline = _clock() + self.timeout
        while True:
            try:
                fcntl.flock(self.fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
                return True
            except (IOError, OSError) as exc:
                if exc.errno not in (errno.EAGAIN, errno.EACCES, errno.EWOULDBLOCK):
                    raise
            if _clock() >= deadline:
                os.close(self.fd)
                self.fd = None
                return False
            time.sleep(0.05)

    def release(self):
        if self.fd is not None:
            os.close(self.fd)  # closing drops the flock
            self.fd = None


# ------------------------------------------------------------------ passes


def _host(root, path):
    if root in ("/", ""):
        return path
    return os.path.join(root, path.lstrip("/"))


def _shown(value):
    return "unknown" if value is None else str(value)


def _read_first_line(path):
    try:
        with open(path, "rb") as handle:
            return handle.readline(256).decode("utf-8", "replace").strip() or None
    except (IOError, OSError):
        return None


def _has_symlink_below(base, rel):
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
    host_mount = _host(host_root, mount)
    idle = state["idle"]
    seen = set()
    due = []
    for subtree in settings["subtrees"] or [""]:
        top = os.path.join(host_mount, subtree) if subtree else host_mount
        if subtree and _has_symlink_below(host_mount, subtree):
            log("reclaim: subtree %s is a symbolic link; skipped" % subtree)
            stats["errors"] += 1
            continue
        if not os.path.isdir(top):
            log("reclaim: subtree %s does not exist; skipped" % (subtree or "/"))
            continue
        busy_below = {}
        for host_path in rmdir_mod.subtree_post_order(top):
            own, _detail = rmdir_mod.populated(host_path)
            busy = own is not False or busy_below.get(host_path, False)
            parent = os.path.dirname(host_path)
            busy_below[parent] = busy_below.get(parent, False) or busy
            rel = host_path[len(host_mount):].strip("/")
            if not rel or any(fnmatch.fnmatch(rel, pat) for pat in settings["exclude"]):
                continue
            if busy:
                continue
            usage = rmdir_mod.usage_bytes(host_path)
            if usage is None or usage < settings["min_charge_bytes"] or usage == 0:
                continue
            try:
                inode = os.lstat(host_path).st_ino
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
            due.append((host_path, rel, entry))
    for rel in list(idle):
        if rel not in seen:
            del idle[rel]
    stats["candidates"] = len(due)
    for host_path, rel, entry in due[:settings["max_per_pass"]]:
        usage = rmdir_mod.usage_bytes(host_path)
        if usage is None or usage < settings["min_charge_bytes"] or usage == 0:
            continue  # its children's reclaim already emptied it
        busy, _detail = rmdir_mod.populated(host_path)
        if busy is not False:
            continue  # a task arrived since the walk
        idle_for = now - float(entry["since"])
        if not act:
            log("reclaim: would reclaim %s (%s charged, idle for %ds)"
                % (rel, rmdir_mod.human_bytes(usage), idle_for))
            continue
        result = rmdir_mod.reclaim(host_path, settings["timeout_seconds"])
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
                rmdir_mod.human_bytes(result["reclaimed_bytes"])))
        else:
            log("reclaim: %s: reclaimed %s by %s in %.2fs (idle for %ds, %s left)" % (
                rel, rmdir_mod.human_bytes(result["reclaimed_bytes"]), result["method"],
                result["seconds"], idle_for, rmdir_mod.human_bytes(result["after_bytes"])))
    if len(due) > settings["max_per_pass"]:
        log("reclaim: %d more due cgroup(s) wait for the next pass (max_per_pass %d)"
            % (len(due) - settings["max_per_pass"], settings["max_per_pass"]))
    return stats


def _sync(timeout):
    """sync(2) in a child with a deadline (it can block on slow storage)."""
    if hasattr(os, "sync"):
        return _run_child(os.sync, timeout)  # novermin - guarded by hasattr
    try:  # Python 2.7 has no os.sync: run sync(1)
        return run_command(["sync"], timeout=timeout)[0] == 0
    except SourceError:
        return False


def _run_child(action, timeout):
    """Run ``action`` in a forked child; True when it finished in time."""
    pid = os.fork()
    if pid == 0:
        code = 1
        try:
            action()
            code = 0
        except BaseException:  # nothing may escape a forked child
            code = 1
        os._exit(code)
    deadline = _clock() + timeout
    while True:
        done, status = os.waitpid(pid, os.WNOHANG)
        if done:
            return os.WIFEXITED(status) and os.WEXITSTATUS(status) == 0
        if _clock() >= deadline:
            try:
                os.kill(pid, signal.SIGKILL)
            except OSError:
                pass
            rmdir_mod._reap(pid, rmdir_mod.KILL_WAIT)
            return False
        time.sleep(0.02)


def drop_caches_decision(settings, dying, previous, last_run, now):
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
    """Apply the guard. ``mode`` is ``act``, ``observe`` or ``preview``.

    In ``act`` mode the run is recorded and persisted (``persist()``) before
    the write; when persisting fails, nothing is dropped. Returns
    ``{"ran", "reason", "errors", "dying_after"}``.
    """
    out = {"ran": False, "reason": "", "errors": 0, "dying_after": None}
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
    path = _host(host_root, "/proc/sys/vm/drop_caches")
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
    outcome = rmdir_mod.write_control(path, b"1", settings["timeout_seconds"])
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


# ----------------------------------------------------------------- metrics


def metrics_text(snapshot):
    """The node_exporter textfile for one pass: one HELP and TYPE line per
    family, its samples together, no timestamps (the textfile collector
    rejects them). A value that is unknown is left out, not written as 0."""
    families = []

    def family(name, kind, help_text, samples):
        samples = [(labels, value) for labels, value in samples if value is not None]
        if samples:
            families.append((name, kind, help_text, samples))

    def flag(value):
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
    """Replace ``directory/name`` atomically (temp file in the same directory,
    fsync, rename), mode 0644. The temp file's name does not end in .prom,
    so node_exporter never reads it."""
    atomic_write(os.path.join(directory, name), text.encode("utf-8"), mode=0o644)


# -------------------------------------------------------------------- main


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s (see --help)" % message)


def build_parser():
    parser = _Parser(
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
        boot_id = _read_first_line(_host(host_root, "/proc/sys/kernel/random/boot_id"))
        if state.get("boot_id") and boot_id and state["boot_id"] != boot_id:
            log("first pass since a reboot: earlier counts and idle times are forgotten")
            state["last_dying"] = None
            state["idle"] = {}
        state["boot_id"] = boot_id

        if host_root in ("/", ""):
            layout = cgroupfs.memory_layout("/", live=True)
        else:
            layout = cgroupfs.memory_layout(host_root, live=False)
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
        drop = {"ran": False, "reason": "disabled"}
        if drop_cfg["enabled"]:
            mode = "preview" if preview else ("observe" if drop_cfg["dry_run"] else "act")

            def persist():
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
        reboot = any(os.path.lexists(_host(host_root, p)) for p in reaper["reboot_required_files"])
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
    """Entry point of ``memcg-fix-reaper``; returns the exit code."""

    def log(line):
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
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    if note:
        log(note)
    try:
        return run_pass(config, args.dry_run, log)
    except KeyboardInterrupt:
        log("interrupted")
        return 130


if __name__ == "__main__":
    # the command line (python -m ...): its exit status, not a module's exit_json
    raise SystemExit(main())
