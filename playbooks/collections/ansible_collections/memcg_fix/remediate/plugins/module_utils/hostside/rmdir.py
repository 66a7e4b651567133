"""memcg-fix-rmdir: reclaim a memory cgroup's pages, then remove it.

The command line over the reclaim engine (:mod:`.reclaim`), for an owner
whose plain ``rmdir`` would leave a zombie memcg behind: it checks each PATH
argument, has the engine reclaim and remove the subtree children first, and
reports. It refuses paths outside a mounted memory hierarchy, the hierarchy
root, paths with a symbolic link anywhere on them or with ``..``, and
cgroups with tasks (unless ``--populated-ok``). Exit codes: 0 done, 1 partly
failed, 2 bad usage (nothing was touched).

Runs on the target's own Python (2.7, 3.6+), stdlib only; the role installs
this package as ``memcg_fix_host`` with a wrapper script, so imports stay
relative.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import json
import os
import stat
import sys

from . import cgroupfs
from .command import EXIT_INTERRUPTED, EXIT_USAGE, ArgumentParser, UsageError, exit_code_of
from .fileio import path_under_root
from .reclaim import human_bytes, read_control, reclaim_and_remove

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

PROG = "memcg-fix-rmdir"

EXIT_OK = 0
EXIT_PARTIAL = 1

DEFAULT_TIMEOUT = 30.0


# ------------------------------------------------------------ target checks


def _components(path):
    # type: (str) -> List[str]
    return [part for part in path.split("/") if part and part != "."]


def check_target(path, layout, root="/", cwd=None):
    # type: (str, Dict[str, Any], str, Optional[str]) -> Dict[str, Any]
    """Validate one PATH argument: ``{"path": as the host names it,
    "local_path": where it is seen from here (under ``root``), "exists"}``.

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
            mode = os.lstat(path_under_root(root, walked)).st_mode
        except OSError as exc:
            if exc.errno in (errno.ENOENT, errno.ENOTDIR):
                exists = False
                break
            raise UsageError("%s: %s" % (walked, exc.strerror or exc))
        if stat.S_ISLNK(mode):
            raise UsageError("%s: %s is a symbolic link; links are never followed"
                             % (clean, walked))
    local_path = path_under_root(root, clean)
    if exists:
        if not stat.S_ISDIR(os.lstat(local_path).st_mode):
            raise UsageError("%s is not a directory" % clean)
        try:
            same_fs = os.lstat(local_path).st_dev == os.lstat(path_under_root(root, mount)).st_dev
        except OSError as exc:
            raise UsageError("%s: %s" % (mount, exc.strerror or exc))
        if not same_fs:
            raise UsageError("%s is on another filesystem than the hierarchy at %s"
                             % (clean, mount))
    return {"path": clean, "local_path": local_path, "exists": exists}


def own_memory_cgroup(layout, root="/"):
    # type: (Dict[str, Any], str) -> str
    """The memory cgroup this process runs in, as a host path, from
    ``/proc/self/cgroup`` (``4:memory:/system.slice/x.service`` on v1,
    ``0::/system.slice/x.service`` on v2)."""
    text = read_control(path_under_root(root, "/proc/self/cgroup"))
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
    # type: (Dict[str, Any], float, bool, bool) -> List[Dict[str, Any]]
    """Reclaim and remove one checked target, children first: see
    :func:`.reclaim.reclaim_and_remove` for the results."""
    if not target["exists"]:
        return [{"path": target["path"], "status": "missing",
                 "reason": "no such cgroup", "reclaim": None}]
    return reclaim_and_remove(target["local_path"], target["path"], timeout,
                              populated_ok=populated_ok, remove=not reclaim_only)


def summarise(results):
    # type: (List[Dict[str, Any]]) -> Dict[str, int]
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
    # type: (Dict[str, int]) -> int
    bad = (summary["refused"] + summary["failed"] + summary["skipped"] + summary["missing"]
           + summary["reclaim_incomplete"])
    return EXIT_PARTIAL if bad else EXIT_OK


def format_text(results, summary):
    # type: (List[Dict[str, Any]], Dict[str, int]) -> str
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


def build_parser():
    # type: () -> ArgumentParser
    parser = ArgumentParser(
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
    # type: (Optional[Sequence[str]]) -> Tuple[int, str]
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
    layout = cgroupfs.host_memory_layout(root)
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
    # type: (Optional[Sequence[str]]) -> int
    """Entry point of ``memcg-fix-rmdir``; returns the exit code."""
    try:
        code, text = run(argv)
    except UsageError as exc:
        sys.stderr.write("%s: %s\n" % (PROG, exc))
        return EXIT_USAGE
    except SystemExit as exc:  # --help
        return exit_code_of(exc)
    except KeyboardInterrupt:
        sys.stderr.write("%s: interrupted\n" % PROG)
        return EXIT_INTERRUPTED
    sys.stdout.write(text)
    sys.stdout.flush()
    return code


if __name__ == "__main__":
    # the command line (python -m ...): its exit status, not a module's exit_json
    raise SystemExit(main())
