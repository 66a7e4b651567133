"""The reclaim engine: empty a memory cgroup within a deadline, then remove it.

A memory cgroup removed while page cache is still charged to it stays in
kernel memory as a zombie until those pages are reclaimed (the kernel's
cgroup-v1 memory documentation gives ``memory.force_empty`` as the way to
empty a group "before rmdir"; Documentation/admin-guide/cgroup-v1/memory.rst).
``memcg-fix-rmdir`` and ``memcg-fix-reaper`` are two command lines over this
one engine:

* :func:`run_in_child` runs an action that may block in the kernel in a
  forked child, killed with SIGKILL at the deadline (a thread could not be
  interrupted; a pending fatal signal ends the kernel's reclaim loops and
  sync's wait). :func:`write_control` is one control-file write run so;
* :func:`reclaim_cgroup`: v1 writes ``0`` to ``memory.force_empty``; v2
  writes to ``memory.reclaim`` in steps of at most the current usage
  (:func:`stepped_reclaim`), where EAGAIN means "reclaimed less than asked"
  (partial progress, koordinator#3186);
* :func:`reclaim_and_remove`: a subtree, children first, reclaimed and (unless
  asked only to reclaim) removed.

Runs on the target's own Python (2.7, 3.6+), stdlib only.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import select
import signal
import stat
import time

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Callable, Dict, List, Optional, Set, Tuple  # noqa: F401 # novermin

    ChildOutcome = Dict[str, Any]  # {"errno": int, "timed_out": bool, "seconds": float}
    ReclaimResult = Dict[str, Any]

# v2: one memory.reclaim write asks for at most this much (and never more
# than the current usage), so a single write stays short and the deadline is
# checked often.
RECLAIM_STEP_MAX = 256 * 1024 * 1024

# v2: stop after this many writes in a row that freed nothing.
RECLAIM_MAX_STALLS = 2

# After SIGKILL, how long to wait for the child to go away.
KILL_WAIT = 5.0

# The exit code of a child whose action raised something other than OSError.
CHILD_UNEXPECTED = 255

_clock = getattr(time, "monotonic", time.time)

_WRITE_FLAGS = (os.O_WRONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_CLOEXEC", 0)
                | getattr(os, "O_NOCTTY", 0))


# ---------------------------------------------------------------- small reads


def read_control(path):
    # type: (str) -> Optional[str]
    """Text of a small control file (no symlink followed), or None."""
    flags = os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0) | getattr(os, "O_NONBLOCK", 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        return None
    try:
        chunks = []  # type: List[bytes]
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
    # type: (str) -> Optional[str]
    """The file that holds a cgroup's charged bytes: v1 or v2 name, or None."""
    for name in ("memory.usage_in_bytes", "memory.current"):
        candidate = os.path.join(path, name)
        if os.path.lexists(candidate):
            return candidate
    return None


def usage_bytes(path):
    # type: (str) -> Optional[int]
    """Bytes charged to the cgroup at ``path`` (hierarchical), or None."""
    source = usage_file(path)
    text = read_control(source) if source else None
    if text is None:
        return None
    try:
        return int(text.strip())
    except ValueError:
        return None


def populated(path):
    # type: (str) -> Tuple[Optional[bool], str]
    """``(True|False|None, detail)``: does the cgroup itself hold tasks?

    v2 answers for the whole subtree through ``cgroup.events``; v1 lists the
    cgroup's own tasks in ``cgroup.procs`` (callers check every descendant).
    None means it cannot be told, which callers treat as populated.
    """
    events = read_control(os.path.join(path, "cgroup.events"))
    if events is not None:
        for line in events.splitlines():
            fields = line.split()
            if len(fields) == 2 and fields[0] == "populated":
                if fields[1] == "1":
                    return True, "cgroup.events says populated 1"
                return False, ""
    procs = read_control(os.path.join(path, "cgroup.procs"))
    if procs is None:
        return None, "cannot read cgroup.procs"
    pids = procs.split()
    if pids:
        shown = " ".join(pids[:5]) + (" ..." if len(pids) > 5 else "")
        return True, "%d task(s) in cgroup.procs: %s" % (len(pids), shown)
    return False, ""


def subtree_post_order(path):
    # type: (str) -> List[str]
    """Cgroup directories under ``path`` (inclusive), children before parents.

    Never follows symlinks; a directory that vanishes during the walk is
    left out. Siblings come in name order so runs are reproducible.
    """
    order = []  # type: List[str]
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


def human_bytes(count):
    # type: (Optional[int]) -> str
    """``1536`` -> ``1.5 KiB``."""
    if count is None:
        return "?"
    value = float(count)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return ("%d %s" % (value, unit)) if unit == "B" else ("%.1f %s" % (value, unit))
        value /= 1024
    return "%d B" % count  # pragma: no cover


# ------------------------------------------------------- bounded child actions


def _wait_readable(fd, timeout):
    # type: (int, float) -> bool
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
    # type: (int, float) -> Optional[int]
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


def run_in_child(action, timeout):
    # type: (Callable[[], Any], float) -> ChildOutcome
    """Run ``action()`` in a forked child, killed with SIGKILL after ``timeout``.

    A thread could not be interrupted; a child's pending fatal signal ends
    the kernel's reclaim loops (force_empty and memory.reclaim both check
    it). Returns ``{"errno": int, "timed_out": bool, "seconds": float}``:
    errno 0 means the action returned, an OSError's errno that it raised it
    (:data:`CHILD_UNEXPECTED` for anything else).
    """
    started = _clock()
    read_end, write_end = os.pipe()
    try:
        pid = os.fork()
    except OSError as exc:
        os.close(read_end)
        os.close(write_end)
        return {"errno": exc.errno or errno.EIO, "timed_out": False, "seconds": 0.0}
    if pid == 0:  # the child: the action, then _exit
        code = CHILD_UNEXPECTED
        try:
            os.close(read_end)
            signal.signal(signal.SIGINT, signal.SIG_DFL)
            action()
            code = 0
        except OSError as exc:
            code = (exc.errno or 254) & 0xFF
        except BaseException:  # nothing may escape a forked child
            code = CHILD_UNEXPECTED
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


def write_control(path, data, timeout):
    # type: (str, Any, float) -> ChildOutcome
    """Write ``data`` to control file ``path`` (one open, one write, no
    symlink followed) from a child killed at ``timeout``: see
    :func:`run_in_child`."""
    if not isinstance(data, bytes):
        data = data.encode("ascii")

    def write_once():
        # type: () -> None
        fd = os.open(path, _WRITE_FLAGS)
        try:
            os.write(fd, data)
        finally:
            os.close(fd)

    return run_in_child(write_once, timeout)


def strerror(code):
    # type: (int) -> str
    """The reason for a :func:`run_in_child` errno."""
    if code == CHILD_UNEXPECTED:
        return "unexpected error in the writer process"
    try:
        return os.strerror(code)
    except (ValueError, OverflowError):
        return "error %d" % code


# ------------------------------------------------------------------- reclaim


def stepped_reclaim(read_usage, write_amount, timeout, clock=_clock,
                    step_max=RECLAIM_STEP_MAX, max_stalls=RECLAIM_MAX_STALLS):
    # type: (Callable[[], Optional[int]], Callable[[int, float], ChildOutcome], float, Callable[[], float], int, int) -> Dict[str, Any]
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
                    "detail": "memory.reclaim: %s" % strerror(last_errno)}
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


def reclaim_cgroup(path, timeout):
    # type: (str, float) -> ReclaimResult
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
              "after_bytes": before, "reclaimed_bytes": 0,
              "seconds": 0.0}  # type: ReclaimResult
    if os.path.lexists(force_empty):
        result["method"] = "force_empty"
        outcome = write_control(force_empty, b"0", timeout)
        if outcome["timed_out"]:
            result["status"] = "timeout"
            result["detail"] = "memory.force_empty still running at the %gs deadline" % timeout
        elif outcome["errno"]:
            result["status"] = "error"
            result["detail"] = "memory.force_empty: %s" % strerror(outcome["errno"])
        else:
            result["status"] = "ok"
    elif os.path.lexists(reclaim_file):
        result["method"] = "memory.reclaim"

        def write_amount(amount, seconds_left):
            # type: (int, float) -> ChildOutcome
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


def reclaim_and_remove(local_path, shown_path, timeout, populated_ok=False, remove=True):
    # type: (str, str, float, bool, bool) -> List[Dict[str, Any]]
    """Reclaim and (with ``remove``) remove the subtree at ``local_path``,
    children first.

    ``shown_path`` is the same cgroup as its host names it, for the results.
    Unless ``populated_ok``, a subtree with a task anywhere in it is refused
    and nothing is touched. Returns a list of per-cgroup results: ``{"path",
    "status", "reason", "reclaim"}`` where status is ``removed``,
    ``reclaimed`` (without ``remove``), ``refused`` (populated), ``failed``,
    ``skipped`` (a child remains) or ``missing``.
    """
    prefix_len = len(local_path) - len(shown_path)

    def shown(path):
        # type: (str) -> str
        return path[prefix_len:] if prefix_len > 0 else path

    if not os.path.isdir(local_path):
        return [{"path": shown_path, "status": "missing",
                 "reason": "no such cgroup", "reclaim": None}]
    order = subtree_post_order(local_path)
    if not populated_ok:
        for path in order:
            busy, detail = populated(path)
            if busy or busy is None:
                where = shown(path)
                reason = "populated: %s" % detail if busy else "cannot tell whether it is populated"
                if where != shown_path:
                    reason = "%s (in %s)" % (reason, where)
                return [{"path": shown_path, "status": "refused",
                         "reason": reason + "; nothing was touched", "reclaim": None}]
    results = []  # type: List[Dict[str, Any]]
    kept = set()  # type: Set[str]  # cgroups left in place, so their parents cannot go
    for path in order:
        entry = {"path": shown(path), "status": None, "reason": "",
                 "reclaim": None}  # type: Dict[str, Any]
        results.append(entry)
        if remove and any(k.startswith(path + "/") for k in kept):
            entry["status"] = "skipped"
            entry["reason"] = "a child cgroup remains"
            kept.add(path)
            continue
        entry["reclaim"] = reclaim_cgroup(path, timeout)
        if entry["reclaim"]["status"] in ("error", "timeout"):
            entry["reason"] = entry["reclaim"]["detail"]
        if not remove:
            entry["status"] = "reclaimed"
            continue
        try:
            os.rmdir(path)
        except OSError as exc:
            entry["status"] = "failed"
            why = "rmdir: %s" % (exc.strerror or exc)
            entry["reason"] = "; ".join(r for r in (entry["reason"], why) if r)
            kept.add(path)
            continue
        entry["status"] = "removed"
    return results
