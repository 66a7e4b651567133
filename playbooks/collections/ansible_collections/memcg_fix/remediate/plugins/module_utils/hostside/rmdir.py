"""memcg-fix-rmdir: reclaim a memory cgroup's pages, then remove it.

A memory cgroup removed while page cache is still charged to it stays in
kernel memory as a zombie until those pages are reclaimed (seed 003; the
kernel's cgroup-v1 memory documentation gives ``memory.force_empty`` as the
way to empty a group "before rmdir"). This helper does what its owner's
plain ``rmdir`` should have done, depth-first (children before parents):

1. reclaim: v1 writes ``0`` to ``memory.force_empty``; v2 writes to
   ``memory.reclaim`` in steps of at most the current usage, where EAGAIN
   means "reclaimed less than asked" (partial progress, koordinator#3186).
   Both writes can block, so each runs in a forked child of ours that is
   killed with SIGKILL at the deadline (the kernel's reclaim loops stop on a
   pending fatal signal);
2. rmdir.

It refuses paths outside a mounted memory hierarchy, the hierarchy root,
paths with a symbolic link anywhere on them or with ``..``, and cgroups with
tasks (unless ``--populated-ok``). Exit codes: 0 done, 1 partly failed, 2 bad
usage (nothing was touched).

Runs on the target's own Python (2.7, 3.6+), stdlib only; the role installs
this package as ``memcg_fix_host`` with a wrapper script, so imports stay
relative.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import argparse
import errno
import json
import os
import select
import signal
import stat
import sys
import time

from . import cgroupfs

PROG = "memcg-fix-rmdir"

EXIT_OK = 0
EXIT_PARTIAL = 1
EXIT_USAGE = 2

DEFAULT_TIMEOUT = 30.0

# v2: one memory.reclaim write asks for at most this much (and never more
# than the current usage), so a single write stays short and the deadline is
# checked often.
RECLAIM_STEP_MAX = 256 * 1024 * 1024

# v2: stop after this many writes in a row that freed nothing.
RECLAIM_MAX_STALLS = 2

# After SIGKILL, how long to wait for the writer child to go away.
KILL_WAIT = 5.0

_clock = getattr(time, "monotonic", time.time)

_OPEN_FLAGS = (os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
               | getattr(os, "O_NOCTTY", 0))


class UsageError(Exception):
    """The command line names something this tool will never act on."""


# ---------------------------------------------------------------- small reads


def _read_small(path):
    """Text of a small control file (no symlink followed), or None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        chunks = []
        while True:
            chunk = os.read(fd, 65536)
            if not chunk:
                break
            chunks.append(chunk)
            if sum(len(c) for c in chunks) > 4 * 1024 * 1024:
                break
        return b"".join(chunks).decode("utf-8", "replace")
    except OSError:
        return None
    finally:
        os.close(fd)


def usage_file(path):
    """The file that holds a cgroup's charged bytes: v1 or v2 name, or None."""
    for name in ("memory.usage_in_bytes", "memory.current"):
        candidate = os.path.join(path, name)
        if os.path.lexists(candidate):
            return candidate
    return None


def usage_bytes(path):
    """Bytes charged to the cgroup at ``path`` (hierarchical), or None."""
    source = usage_file(path)
    text = _read_small(source) if source else None
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def populated(path):
    """``(True|False|None, detail)``: does the cgroup itself hold tasks?

    v2 answers for the whole subtree through ``cgroup.events``; v1 lists the
    cgroup's own tasks in ``cgroup.procs`` (callers check every descendant).
    None means it cannot be told, which callers treat as populated.
    """
    events = _read_small(os.path.join(path, "cgroup.events"))
    if events is not None:
        for line in events.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == "populated":
                if fields[1] == "1":
                    return True, "cgroup.events says populated 1"
                return False, ""
    procs = _read_small(os.path.join(path, "cgroup.procs"))
    if procs is None:
        return None, "cannot read cgroup.procs"
    pids = procs.split()
    if pids:
        shown = " ".join(pids[:5]) + (" ..." if len(pids) > 5 else "")
        return True, "%d task(s) in cgroup.procs: %s" % (len(pids), shown)
    return False, ""


def subtree_post_order(path):
    """Cgroup directories under ``path`` (inclusive), children before parents.

    Never follows symlinks; a directory that vanishes during the walk is
    left out. Siblings come in name order so runs are reproducible.
    """
    order = []
    stack = [(path, False)]
    while stack:
        current, expanded = stack.pop()
        if expanded:
            order.append(current)
            continue
        stack.append((current, True))
        try:
            names = sorted(os.listdir(current), reverse=True)
        except OSError:
            continue
        for name in names:
            child = os.path.join(current, name)
            try:
                if stat.S_ISDIR(os.lstat(child).st_mode):
                    stack.append((child, False))
            except OSError:
                continue
    return order


# ------------------------------------------------------- bounded control writes


def _wait_readable(fd, timeout):
    """True when ``fd`` becomes readable (or hits EOF) within ``timeout``."""
    deadline = _clock() + timeout
    while True:
        remaining = deadline - _clock()
        if remaining <= 0:
            return False
        try:
            ready, _w, _x = select.select([fd], [], [], remaining)
        except (select.error, OSError) as exc:  # Python 2.7 does not retry on EINTR
            code = exc.args[0] if exc.args else None
            if code == errno.EINTR:
                continue
            raise
        return bool(ready)


def _reap(pid, wait):
    """waitpid with a bounded wait; the exit status or None if still running."""
    deadline = _clock() + wait
    while True:
        try:
            done, status = os.waitpid(pid, os.WNOHANG)
        except OSError as exc:
            if exc.errno == errno.EINTR:
                continue
            return None
        if done:
            return status
        if _clock() >= deadline:
            return None
        time.sleep(0.01)


def write_control(path, data, timeout):
    """Write ``data`` to control file ``path`` from a child process.

    The child is killed with SIGKILL after ``timeout`` seconds: a thread
    could not be interrupted, a child's pending fatal signal ends the
    kernel's reclaim loop (force_empty and memory.reclaim both check it).
    Returns ``{"errno": int, "timed_out": bool, "seconds": float}``; errno
    0 means the write succeeded.
    """
    if not isinstance(data, bytes):
        data = data.encode("ascii")
    started = _clock()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        return {"errno": exc.errno or errno.EIO, "timed_out": False, "seconds": 0.0}
    if pid == 0:  # the child: one open and one write, then _exit
        code = 255
        try:
            os.close(read_end)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            fd = os.open(path, _OPEN_FLAGS)
            try:
                os.write(fd, data)
            finally:
                os.close(fd)
            code = 0
        except OSError as exc:
            code = (exc.errno or 254) & 0xFF
        except BaseException:  # nothing may escape a forked child
            code = 255
        os._exit(code)
    os.close(write_end)
    try:
        # The child's end of the pipe closes when it exits: EOF wakes us.
        finished = _wait_readable(read_end, timeout)
    finally:
        os.close(read_end)
    if not finished:
        try:
            os.kill(pid, signal.SIGKILL)
        except OSError:
            pass
        _reap(pid, KILL_WAIT)
        return {"errno": errno.ETIMEDOUT, "timed_out": True, "seconds": _clock() - started}
    status = _reap(pid, KILL_WAIT)
    seconds = _clock() - started
    if status is None:
        return {"errno": errno.ETIMEDOUT, "timed_out": True, "seconds": seconds}
    if os.WIFEXITED(status):
        code = os.WEXITSTATUS(status)
        return {"errno": 0 if code == 0 else code, "timed_out": False, "seconds": seconds}
    return {"errno": errno.EINTR, "timed_out": False, "seconds": seconds}


def _strerror(code):
    if code == 255:
        return "unexpected error in the writer process"
    try:
        return os.strerror(code)
    except (ValueError, OverflowError):
        return "error %d" % code


# ------------------------------------------------------------------- reclaim


def stepped_reclaim(read_usage, write_amount, timeout, clock=_clock,
                    step_max=RECLAIM_STEP_MAX, max_stalls=RECLAIM_MAX_STALLS):
    """The cgroup v2 ``memory.reclaim`` loop, free of I/O so it can be tested.

    ``read_usage()`` returns the charged bytes (or None); ``write_amount(n,
    seconds_left)`` writes ``n`` and returns a :func:`write_control` result.
    Each step asks for at most the current usage (and ``step_max``). EAGAIN
    is the kernel saying it reclaimed less than asked: progress counts, and
    the loop goes on until the usage is 0, ``max_stalls`` steps in a row free
    nothing, an error other than EAGAIN occurs, or the deadline passes.

    Returns ``{"status", "detail", "steps"}`` with status ``ok`` (usage 0 or
    the last step fully succeeded), ``partial`` (the rest would not go),
    ``timeout`` or ``error``.
    """
    deadline = clock() + timeout
    current = read_usage()
    steps = 0
    stalls = 0
    last_errno = 0
    while current is not None and current > 0:
        remaining = deadline - clock()
        if remaining <= 0:
            return {"status": "timeout", "steps": steps,
                    "detail": "deadline of %gs reached after %d step(s)" % (timeout, steps)}
        outcome = write_amount(min(current, step_max), remaining)
        steps += 1
        if outcome["timed_out"]:
            return {"status": "timeout", "steps": steps,
                    "detail": "a memory.reclaim write was still running at the %gs deadline"
                    % timeout}
        last_errno = outcome["errno"]
        if last_errno not in (0, errno.EAGAIN):
            return {"status": "error", "steps": steps,
                    "detail": "memory.reclaim: %s" % _strerror(last_errno)}
        after = read_usage()
        if after is not None and after < current:
            stalls = 0
        else:
            stalls += 1
        current = after
        if stalls >= max_stalls:
            break
    if current == 0 or (last_errno == 0 and stalls == 0):
        return {"status": "ok", "steps": steps, "detail": ""}
    return {"status": "partial", "steps": steps,
            "detail": "%s bytes would not go after %d step(s)" % (current, steps)}


def reclaim(path, timeout):
    """Reclaim what is charged to the cgroup at ``path``, within ``timeout``.

    Returns ``{"method", "status", "detail", "before_bytes", "after_bytes",
    "reclaimed_bytes", "seconds"}``. ``method`` is ``force_empty`` (v1),
    ``memory.reclaim`` (v2) or None when the cgroup has neither (a v2 cgroup
    without the memory controller, or a kernel before 5.19): status is then
    ``unavailable`` and there is nothing to pin, or nothing we can do.
    """
    started = _clock()
    before = usage_bytes(path)
    force_empty = os.path.join(path, "memory.force_empty")
    reclaim_file = os.path.join(path, "memory.reclaim")
    result = {"method": None, "status": "unavailable", "detail": "", "before_bytes": before,
              "after_bytes": before, "reclaimed_bytes": 0, "seconds": 0.0}
    if os.path.lexists(force_empty):
        result["method"] = "force_empty"
        outcome = write_control(force_empty, b"0", timeout)
        if outcome["timed_out"]:
            result["status"] = "timeout"
            result["detail"] = "memory.force_empty still running at the %gs deadline" % timeout
        elif outcome["errno"]:
            result["status"] = "error"
            result["detail"] = "memory.force_empty: %s" % _strerror(outcome["errno"])
        else:
            result["status"] = "ok"
    elif os.path.lexists(reclaim_file):
        result["method"] = "memory.reclaim"

        def write_amount(amount, seconds_left):
            return write_control(reclaim_file, str(int(amount)).encode("ascii"), seconds_left)

        loop = stepped_reclaim(lambda: usage_bytes(path), write_amount, timeout)
        result["status"] = loop["status"]
        result["detail"] = loop["detail"]
    else:
        result["detail"] = "no memory.force_empty or memory.reclaim in this cgroup"
    after = usage_bytes(path)
    result["after_bytes"] = after
    if before is not None and after is not None:
        result["reclaimed_bytes"] = max(before - after, 0)
    result["seconds"] = round(_clock() - started, 3)
    return result


# ------------------------------------------------------------ target checks


def _components(path):
    return [part for part in path.split("/") if part and part != "."]


def _host(root, path):
    """``path`` (absolute, as on the host) seen from here: lexical, no links."""
    if root in ("/", ""):
        return path
    return os.path.join(root, path.lstrip("/"))


def check_target(path, layout, root="/", cwd=None):
    """Validate one PATH argument; return its host path and hierarchy path.

    Raises :class:`UsageError` for a path this tool will never act on: not
    absolute after joining ``cwd``, containing ``..``, outside the memory
    hierarchy, the hierarchy root, on another filesystem, or with a symbolic
    link anywhere on it. A path that does not exist is not a usage error
    (the cgroup may be gone already): it returns ``exists`` False.
    """
    if not path:
        raise UsageError("an empty path was given")
    if not path.startswith("/"):
        path = os.path.join(cwd or os.getcwd(), path)
    if ".." in path.split("/"):
        raise UsageError("%s: paths with '..' are refused" % path)
    clean = "/" + "/".join(_components(path))
    mount = layout.get("memory_mount")
    if not mount:
        raise UsageError("no memory cgroup hierarchy is mounted here (%s)"
                         % (layout.get("memory_controller") or "controller unknown"))
    if not cgroupfs.is_inside_memory_hierarchy(clean, layout, strict=False):
        raise UsageError("%s is not inside the memory cgroup hierarchy mounted at %s"
                         % (clean, mount))
    if not cgroupfs.is_inside_memory_hierarchy(clean, layout, strict=True):
        raise UsageError("%s is the root of the memory cgroup hierarchy; it is never touched"
                         % clean)
    # every prefix from / down: no symbolic link anywhere on the path
    walked = ""
    exists = True
    for part in _components(clean):
        walked += "/" + part
        try:
            mode = os.lstat(_host(root, walked)).st_mode
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                exists = False
                break
            raise UsageError("%s: %s" % (walked, exc.strerror or exc))
        if stat.S_ISLNK(mode):
            raise UsageError("%s: %s is a symbolic link; links are never followed"
                             % (clean, walked))
    host_path = _host(root, clean)
    if exists:
        if not stat.S_ISDIR(os.lstat(host_path).st_mode):
            raise UsageError("%s is not a directory" % clean)
        try:
            same_fs = os.lstat(host_path).st_dev == os.lstat(_host(root, mount)).st_dev
        except OSError as exc:
            raise UsageError("%s: %s" % (mount, exc.strerror or exc))
        if not same_fs:
            raise UsageError("%s is on another filesystem than the hierarchy at %s"
                             % (clean, mount))
    return {"path": clean, "host_path": host_path, "exists": exists}


def own_memory_cgroup(layout, root="/"):
    """The memory cgroup this process runs in, as a host path, from
    ``/proc/self/cgroup`` (``4:memory:/system.slice/x.service`` on v1,
    ``0::/system.slice/x.service`` on v2)."""
    text = _read_small(_host(root, "/proc/self/cgroup"))
    if text is None:
        raise UsageError("cannot read /proc/self/cgroup")
    wanted = None
    for line in text.splitlines():
        fields = line.split(":", 2)
        if len(fields) != 3:
            continue
        controllers = fields[1].split(",")
        if layout.get("memory_controller") == "v1" and "memory" in controllers:
            wanted = fields[2]
        elif layout.get("memory_controller") == "v2" and fields[0] == "0" and fields[1] == "":
            wanted = fields[2]
    if wanted is None:
        raise UsageError("/proc/self/cgroup names no memory cgroup for this process")
    mount_root = layout.get("memory_mount_root")
    if mount_root not in (None, "", "/") and (wanted == mount_root
                                              or wanted.startswith(mount_root + "/")):
        wanted = wanted[len(mount_root):] or "/"
    return (layout.get("memory_mount") or "").rstrip("/") + "/" + wanted.strip("/")


# ------------------------------------------------------------------- the work


def process_target(target, timeout, populated_ok=False, reclaim_only=False):
    """Reclaim and remove one checked target, children first.

    Returns a list of per-cgroup results: ``{"path", "status", "reason",
    "reclaim"}`` where status is ``removed``, ``reclaimed`` (with
    ``--reclaim-only``), ``refused`` (populated), ``failed``, ``skipped`` (a
    child remains) or ``missing``.
    """
    host_root_len = len(target["host_path"]) - len(target["path"])

    def shown(host_path):
        return host_path[host_root_len:] if host_root_len > 0 else host_path

    if not target["exists"] or not os.path.isdir(target["host_path"]):
        return [{"path": target["path"], "status": "missing",
                 "reason": "no such cgroup", "reclaim": None}]
    order = subtree_post_order(target["host_path"])
    if not populated_ok:
        for host_path in order:
            busy, detail = populated(host_path)
            if busy or busy is None:
                where = shown(host_path)
                reason = "populated: %s" % detail if busy else "cannot tell whether it is populated"
                if where != target["path"]:
                    reason = "%s (in %s)" % (reason, where)
                return [{"path": target["path"], "status": "refused",
                         "reason": reason + "; nothing was touched", "reclaim": None}]
    results = []
    kept = set()  # cgroups left in place, so their parents cannot go
    for host_path in order:
        entry = {"path": shown(host_path), "status": None, "reason": "", "reclaim": None}
        results.append(entry)
        if not reclaim_only and any(k.startswith(host_path + "/") for k in kept):
            entry["status"] = "skipped"
            entry["reason"] = "a child cgroup remains"
            kept.add(host_path)
            continue
        entry["reclaim"] = reclaim(host_path, timeout)
        if entry["reclaim"]["status"] in ("error", "timeout"):
            entry["reason"] = entry["reclaim"]["detail"]
        if reclaim_only:
            entry["status"] = "reclaimed"
            continue
        try:
            os.rmdir(host_path)
        except OSError as exc:
            entry["status"] = "failed"
            why = "rmdir: %s" % (exc.strerror or exc)
            entry["reason"] = "; ".join(r for r in (entry["reason"], why) if r)
            kept.add(host_path)
            continue
        entry["status"] = "removed"
    return results


def summarise(results):
    summary = {"removed": 0, "reclaimed": 0, "refused": 0, "failed": 0, "skipped": 0,
               "missing": 0, "reclaimed_bytes": 0, "reclaim_incomplete": 0}
    for entry in results:
        summary[entry["status"]] += 1
        rec = entry.get("reclaim")
        if rec:
            summary["reclaimed_bytes"] += rec.get("reclaimed_bytes") or 0
            if rec["status"] in ("error", "timeout"):
                summary["reclaim_incomplete"] += 1
    return summary


def exit_code_for(summary):
    bad = (summary["refused"] + summary["failed"] + summary["skipped"] + summary["missing"]
           + summary["reclaim_incomplete"])
    return EXIT_PARTIAL if bad else EXIT_OK


def human_bytes(count):
    """``1536`` -> ``1.5 KiB``."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % count  # pragma: no cover


def format_text(results, summary):
    lines = []
    for entry in results:
        parts = []
        rec = entry.get("reclaim")
        if rec and rec["method"]:
            parts.append("reclaimed %s by %s in %.2fs (%s)" % (
                human_bytes(rec["reclaimed_bytes"]), rec["method"], rec["seconds"],
                rec["status"]))
        elif rec:
            parts.append("no reclaim interface")
        parts.append(entry["status"])
        if entry["reason"]:
            parts.append(entry["reason"])
        lines.append("%s: %s" % (entry["path"], ", ".join(parts)))
    lines.append("%d removed, %d reclaimed only, %d refused, %d failed, %d skipped, %d missing; "
                 "%s reclaimed" % (summary["removed"], summary["reclaimed"], summary["refused"],
                                   summary["failed"], summary["skipped"], summary["missing"],
                                   human_bytes(summary["reclaimed_bytes"])))
    return "\n".join(lines) + "\n"


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        raise UsageError("%s (see --help)" % message)


def build_parser():
    parser = _Parser(
        prog=PROG,
        description="Reclaim the memory charged to memory cgroups, then remove them, "
                    "children first, so that no zombie (dying) memcg is left behind.",
        epilog="exit codes: 0 done, 1 partly failed (see the report), 2 bad usage "
               "(nothing was touched).")
    parser.add_argument("paths", nargs="*", metavar="PATH",
                        help="cgroup directories in the memory hierarchy, e.g. "
                             "/sys/fs/cgroup/memory/app/job42")
    parser.add_argument("--populated-ok", action="store_true",
                        help="act on cgroups that still hold tasks (the kernel refuses to "
                             "remove those; reclaim still runs)")
    parser.add_argument("--reclaim-only", action="store_true",
                        help="reclaim but leave the cgroups in place, for hooks that run "
                             "before their owner removes them")
    parser.add_argument("--self", action="store_true", dest="own",
                        help="the memory cgroup this process runs in (for ExecStopPost=); "
                             "implies --reclaim-only and --populated-ok")
    parser.add_argument("--timeout", type=float, default=DEFAULT_TIMEOUT, metavar="SECONDS",
                        help="longest reclaim per cgroup (default %(default)s)")
    parser.add_argument("--format", choices=("text", "json"), default="text")
    parser.add_argument("--root", default="/", metavar="DIR",
                        help="act on the host tree mounted at DIR (tests, rescue images)")
    return parser


def run(argv=None):
    """Parse, check and act; returns ``(exit_code, report_text)``.

    Raises :class:`UsageError` for bad usage.
    """
    parser = build_parser()
    args = parser.parse_args(argv)
    if not args.paths and not args.own:
        raise UsageError("no PATH given (see --help)")
    if not args.timeout > 0:
        raise UsageError("--timeout must be a positive number of seconds")
    root = args.root
    if root not in ("/", "") and not os.path.isdir(root):
        raise UsageError("--root %s is not a directory" % root)
    if root in ("/", ""):
        layout = cgroupfs.memory_layout("/", live=True)
    else:
        layout = cgroupfs.memory_layout(root, live=False)
    paths = list(args.paths)
    populated_ok, reclaim_only = args.populated_ok, args.reclaim_only
    if args.own:
        paths.append(own_memory_cgroup(layout, root))
        populated_ok = reclaim_only = True
    # every path is checked before any is touched
    targets = [check_target(p, layout, root) for p in paths]
    results = []
    for target in targets:
        results.extend(process_target(target, args.timeout, populated_ok, reclaim_only))
    summary = summarise(results)
    code = exit_code_for(summary)
    if args.format == "json":
        text = json.dumps({"cgroups": results, "summary": summary, "exit_code": code},
                          sort_keys=True, indent=2) + "\n"
    else:
        text = format_text(results, summary)
    return code, text


def main(argv=None):
    """Entry point of ``memcg-fix-rmdir``; returns the exit code."""
    try:
        code, text = run(argv)
    except UsageError as exc:
        sys.stderr.write("%s: %s\n" % (PROG, exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help and --version
        return exc.code if isinstance(exc.code, int) else EXIT_OK
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % PROG)
        return 130
    sys.stdout.write(text)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    # the command line (python -m ...): its exit status, not a module's exit_json
    raise SystemExit(main())
