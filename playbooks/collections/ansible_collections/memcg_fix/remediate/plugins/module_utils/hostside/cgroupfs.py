"""The cgroup filesystem: mount layout, memcg counts, dying (zombie) memcgs.

Parsers here are pure functions of text; the functions that touch the host
(:func:`memory_layout`, :func:`count_memcg_dirs`, :func:`dying_memcgs`) take
a ``root`` so that a mounted image or an extracted sosreport can be read the
same way as ``/``, never reading outside that root.

How the modes are told apart (Documentation/admin-guide/cgroup-v2.rst and
systemd's cgroup-util.c): statfs(2) of /sys/fs/cgroup reports
CGROUP2_SUPER_MAGIC on a v2-only host and tmpfs on v1 or hybrid; hybrid is
when /sys/fs/cgroup/unified is itself cgroup2.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat

from .fileio import SourceError, read_text, resolve_in_root

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

CGROUP2_SUPER_MAGIC = 0x63677270
CGROUP_SUPER_MAGIC = 0x27E0EB
TMPFS_MAGIC = 0x01021994

# v1 memcg IDs are 16 bit: a kernel can hand out at most this many at once,
# live plus dying (mem_cgroup_idr, MEM_CGROUP_ID_MAX).
MEMCG_ID_LIMIT = 65535

CGROUP_ROOT = "/sys/fs/cgroup"
UNIFIED_MOUNT = "/sys/fs/cgroup/unified"

# Host-root trees keep the mount table in one of these (the live ones first;
# sosreport's filesys plugin copies /proc/mounts and /proc/self/mountinfo).
_MOUNT_TABLES = ("proc/self/mountinfo", "proc/1/mountinfo", "proc/mounts", "etc/mtab")

# How many times dying_memcgs re-reads /proc/cgroups around the walk when
# cgroups come and go during it.
_V1_ATTEMPTS = 3

# libc for statfs(2), loaded on first use
_LIBC = []  # type: List[Any]

# Filesystems whose directory link count is 2 plus the number of subdirectories.
_LINK_COUNT_MAGICS = (CGROUP_SUPER_MAGIC, CGROUP2_SUPER_MAGIC)


def _decode_octal(field):
    # type: (str) -> str
    r"""Undo the kernel's octal escapes of space, tab, newline and backslash.

    >>> _decode_octal("/mnt/my\\040disk")
    '/mnt/my disk'
    """
    if "\\" not in field:
        return field
    out = []
    i = 0
    while i < len(field):
        chunk = field[i:i + 4]
        if (len(chunk) == 4 and chunk[0] == "\\" and chunk[1] in "0123"
                and chunk[2] in "01234567" and chunk[3] in "01234567"):
            out.append(chr(int(chunk[1:], 8)))
            i += 4
        else:
            out.append(field[i])
            i += 1
    return "".join(out)


def parse_mountinfo(text):
    # type: (str) -> List[Dict[str, Any]]
    r"""Parse /proc/<pid>/mountinfo (or, line by line, /proc/mounts).

    Sample, from proc(5) (https://man7.org/linux/man-pages/man5/proc_pid_mountinfo.5.html)
    and from this project's Debian 12 hybrid host::

        36 35 98:0 /mnt1 /mnt2 rw,noatime master:1 - ext3 /dev/root rw,errors=continue
        35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory

    Lines that are not mountinfo but have the six fields of /proc/mounts
    (``cgroup /sys/fs/cgroup/memory cgroup rw,memory 0 0``) are read as such,
    so one parser covers both tables. Garbage lines are skipped.

    >>> m = parse_mountinfo("35 31 0:32 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory")
    >>> m[0]["mount_point"], m[0]["fstype"], m[0]["super_options"]
    ('/sys/fs/cgroup/memory', 'cgroup', ['rw', 'memory'])
    >>> parse_mountinfo("cgroup2 /sys/fs/cgroup cgroup2 rw,nosuid 0 0")[0]["fstype"]
    'cgroup2'
    >>> parse_mountinfo("36 35 98:0 /mnt1 /my\\040mnt rw - ext3 /dev/root rw")[0]["mount_point"]
    '/my mnt'
    """  # noqa: E501 (real sample lines)
    mounts = []  # type: List[Dict[str, Any]]
    for line in text.splitlines():
        fields = line.split()
        if not fields:
            continue
        if " - " in line and len(fields) >= 10 and fields[0].isdigit():
            sep = fields.index("-", 6) if "-" in fields[6:] else -1
            if sep < 0 or len(fields) < sep + 3:
                continue
            mounts.append({
                "mount_point": _decode_octal(fields[4]),
                "root": _decode_octal(fields[3]),
                "fstype": fields[sep + 1],
                "source": _decode_octal(fields[sep + 2]),
                "mount_options": fields[5].split(","),
                "super_options": fields[sep + 3].split(",") if len(fields) > sep + 3 else [],
            })
        elif len(fields) == 6 and fields[4].isdigit() and fields[5].isdigit():
            options = fields[3].split(",")
            mounts.append({
                "mount_point": _decode_octal(fields[1]),
                "root": None,
                "fstype": fields[2],
                "source": _decode_octal(fields[0]),
                "mount_options": options,
                "super_options": options,
            })
    return mounts


def parse_proc_cgroups(text):
    # type: (str) -> Dict[str, Dict[str, Any]]
    """Parse /proc/cgroups: ``{subsys: {hierarchy, num_cgroups, enabled}}``.

    Sample, from this project's Debian 12 host (kernel 6.18, hybrid)::

        #subsys_name    hierarchy       num_cgroups     enabled
        cpuset  3       1       1
        memory  4       12      1
        hugetlb 0       1       1

    ``num_cgroups`` of a v1 controller counts its live and dying cgroups;
    ``hierarchy`` 0 means the controller is on cgroup2 (or unmounted).

    >>> parse_proc_cgroups("#subsys_name hierarchy num_cgroups enabled\\nmemory 4 12 1\\n")
    {'memory': {'hierarchy': 4, 'num_cgroups': 12, 'enabled': True}}
    >>> parse_proc_cgroups("garbage\\nmemory x 1 1\\n")
    {}
    """
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 4 or fields[0].startswith("#"):
            continue
        try:
            hierarchy, count, enabled = int(fields[1]), int(fields[2]), int(fields[3])
        except ValueError:
            continue
        result[fields[0]] = {"hierarchy": hierarchy, "num_cgroups": count,
                             "enabled": enabled != 0}
    return result


def parse_cgroup_stat(text):
    # type: (str) -> Dict[str, int]
    """Parse a cgroup2 ``cgroup.stat`` into ``{key: int}``.

    Sample, /sys/fs/cgroup/unified/cgroup.stat on this project's Debian 12
    host (kernel 6.18; ``nr_subsys_*`` and ``nr_dying_subsys_*`` appeared in
    6.11)::

        nr_descendants 0
        nr_subsys_perf_event 1
        nr_dying_descendants 0
        nr_dying_subsys_perf_event 0

    >>> sorted(parse_cgroup_stat("nr_descendants 3\\nnr_dying_descendants 7\\nbad line here\\n").items())
    [('nr_descendants', 3), ('nr_dying_descendants', 7)]
    """  # noqa: E501 (real sample lines)
    result = {}
    for line in text.splitlines():
        fields = line.split()
        if len(fields) != 2:
            continue
        try:
            result[fields[0]] = int(fields[1])
        except ValueError:
            continue
    return result


def parse_controllers(text):
    # type: (str) -> List[str]
    """Parse a cgroup2 ``cgroup.controllers`` line into a list of names.

    Sample (a v2-only Fedora host): ``cpuset cpu io memory hugetlb pids rdma misc``

    >>> parse_controllers("cpuset cpu io memory\\n")
    ['cpuset', 'cpu', 'io', 'memory']
    """
    return text.split()


def statfs_magic(path):
    # type: (str) -> Optional[int]
    """The ``f_type`` of statfs(2) on ``path``, or None when it cannot be had.

    The standard library has no statfs, so this calls libc through ctypes.
    ``f_type`` is the first member of ``struct statfs`` on Linux: a long,
    except on s390x where it is an unsigned int.
    """
    import ctypes  # only here: the import costs a short-lived collector a few ms

    if not _LIBC:
        _LIBC.append(_load_libc(ctypes))
    try:
        statfs = _LIBC[0].statfs
    except AttributeError:
        return None
    buf = ctypes.create_string_buffer(512)  # larger than struct statfs on every arch
    raw_path = path.encode("utf-8") if not isinstance(path, bytes) else path
    try:
        if statfs(ctypes.c_char_p(raw_path), buf) != 0:
            return None
    except (OSError, TypeError, ValueError):
        return None
    if os.uname()[4].startswith("s390"):
        value = ctypes.c_uint.from_buffer_copy(buf.raw[:ctypes.sizeof(ctypes.c_uint)]).value
    else:
        value = ctypes.c_long.from_buffer_copy(buf.raw[:ctypes.sizeof(ctypes.c_long)]).value
    return value & 0xFFFFFFFF


def _load_libc(ctypes):
    # type: (Any) -> Any
    """libc, or None. The symbols the running Python already has (dlopen(NULL):
    Python is linked against libc) come first; ``ctypes.util.find_library``,
    which runs ``ldconfig -p`` (a process), only where they lack statfs."""
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        if hasattr(libc, "statfs"):
            return libc
    except (OSError, TypeError):
        pass
    import ctypes.util

    try:
        return ctypes.CDLL(ctypes.util.find_library("c") or None, use_errno=True)
    except OSError:
        return None


def _resolved_in_root(root, path):
    # type: (str, str) -> str
    """``path`` (absolute on the host) as seen from here, links resolved as
    inside ``root`` (:func:`.fileio.resolve_in_root`), never leaving it."""
    if root in ("/", ""):
        return path
    return resolve_in_root(root, path)


def _isfile(root, path):
    # type: (str, str) -> bool
    try:
        return os.path.isfile(_resolved_in_root(root, path))
    except SourceError:
        return False


def _isdir(root, path):
    # type: (str, str) -> bool
    try:
        return os.path.isdir(_resolved_in_root(root, path))
    except SourceError:
        return False


def _read_optional(root, path):
    # type: (str, str) -> Optional[str]
    try:
        return read_text(_resolved_in_root(root, path))
    except SourceError:
        return None


def _mount_table(root, live):
    # type: (str, bool) -> Optional[str]
    """The text of the first mount table found for ``root``, or None."""
    if live:
        return _read_optional("/", "/proc/self/mountinfo")
    for rel in _MOUNT_TABLES:
        text = _read_optional(root, "/" + rel)
        if text:
            return text
    return None


def _layout_from_mounts(mounts):
    # type: (List[Dict[str, Any]]) -> Tuple[Optional[str], Optional[Dict[str, Any]], Optional[str]]
    """(mode, memory mount dict or None, unified mount point or None)."""
    v1_mounts = [m for m in mounts if m["fstype"] == "cgroup"]
    v2_mounts = [m for m in mounts if m["fstype"] == "cgroup2"]
    memory = [m for m in v1_mounts if "memory" in m["super_options"]]
    # several mounts of one hierarchy: prefer the canonical place
    memory.sort(key=lambda m: (not m["mount_point"].startswith(CGROUP_ROOT + "/"),
                               len(m["mount_point"])))
    v2_points = [m["mount_point"] for m in v2_mounts]
    if CGROUP_ROOT in v2_points and not v1_mounts:
        mode, unified = "v2", CGROUP_ROOT
    elif v1_mounts and v2_points:
        mode = "hybrid"
        unified = UNIFIED_MOUNT if UNIFIED_MOUNT in v2_points else v2_points[0]
    elif v1_mounts:
        mode, unified = "v1", None
    elif v2_points:
        mode = "v2"
        unified = CGROUP_ROOT if CGROUP_ROOT in v2_points else v2_points[0]
    else:
        mode, unified = None, None
    return mode, (memory[0] if memory else None), unified


def _memory_on_v2(root, unified):
    # type: (str, Optional[str]) -> Optional[bool]
    """True/False when cgroup.controllers of the cgroup2 root tells, else None."""
    if not unified:
        return None
    text = _read_optional(root, unified.rstrip("/") + "/cgroup.controllers")
    if text is None:
        return None
    return "memory" in parse_controllers(text)


def _memory_from_proc_cgroups(root):
    # type: (str) -> Optional[str]
    """'absent' when /proc/cgroups says memory is disabled, 'v2' when it is on
    no v1 hierarchy, None when /proc/cgroups is unreadable or has no row."""
    text = _read_optional(root, "/proc/cgroups")
    row = parse_proc_cgroups(text).get("memory") if text else None
    if row is None:
        return None
    if not row["enabled"]:
        return "absent"
    return "v2" if row["hierarchy"] == 0 else None


def memory_layout(root="/", mountinfo_text=None, live=True):
    # type: (str, Optional[str], bool) -> Dict[str, Any]
    """Where cgroups and the memory controller live on the host at ``root``.

    Returns ``{mode, memory_controller, memory_mount, unified_mount,
    memory_mount_root, evidence}``:

    * ``mode``: ``v1``, ``hybrid`` (v1 controllers plus cgroup2, usually at
      /sys/fs/cgroup/unified), ``v2`` or None when nothing tells;
    * ``memory_controller``: ``v1``, ``v2``, ``absent`` or None;
    * ``memory_mount``: where the memory hierarchy is mounted (a host path);
    * ``memory_mount_root``: the hierarchy path mounted there; anything but
      ``/`` means only a subtree is visible (inside a container);
    * ``evidence``: ``statfs`` (live: the filesystem magic of
      /sys/fs/cgroup), ``mountinfo`` (a mount table) or ``layout`` (only the
      directory layout of ``<root>/sys/fs/cgroup``).

    ``live`` applies only to ``root == "/"``; a ``mountinfo_text`` given by
    the caller is used instead of reading one.
    """
    live = bool(live) and root in ("/", "")
    if mountinfo_text is None:
        mountinfo_text = _mount_table(root, live)
    mounts = parse_mountinfo(mountinfo_text) if mountinfo_text else []
    mode, memory, unified = _layout_from_mounts(mounts)
    evidence = "mountinfo" if mode else None

    if live:
        magic = statfs_magic(CGROUP_ROOT)
        if magic == CGROUP2_SUPER_MAGIC:
            mode, unified, evidence = "v2", CGROUP_ROOT, "statfs"
        elif magic == TMPFS_MAGIC:
            if statfs_magic(UNIFIED_MOUNT) == CGROUP2_SUPER_MAGIC:
                mode, unified = "hybrid", UNIFIED_MOUNT
            else:
                mode = "v1"
            evidence = "statfs"

    memory_mount = memory["mount_point"] if memory else None
    memory_root = memory["root"] if memory else None
    controller = "v1" if memory else None

    if mode is None and not live:
        # no mount table: a plain image or a partial copy of /sys
        if _isfile(root, CGROUP_ROOT + "/cgroup.controllers"):
            mode, unified, evidence = "v2", CGROUP_ROOT, "layout"
        elif _isdir(root, CGROUP_ROOT + "/memory"):
            memory_mount, memory_root, controller = CGROUP_ROOT + "/memory", "/", "v1"
            if _isfile(root, UNIFIED_MOUNT + "/cgroup.controllers"):
                mode, unified = "hybrid", UNIFIED_MOUNT
            else:
                mode = "v1"
            evidence = "layout"

    if controller is None and mode is not None:
        on_v2 = _memory_on_v2(root, unified)
        if on_v2:
            controller, memory_mount, memory_root = "v2", unified, "/"
        else:
            from_proc = _memory_from_proc_cgroups(root)
            if from_proc == "v2" and unified:
                controller, memory_mount, memory_root = "v2", unified, "/"
            elif from_proc == "absent" or on_v2 is False:
                controller = "absent"

    return {
        "mode": mode,
        "memory_controller": controller,
        "memory_mount": memory_mount,
        "memory_mount_root": memory_root,
        "unified_mount": unified,
        "evidence": evidence,
    }


# memory.reclaim, the only way to reclaim a v2 memory cgroup on demand, came with
# 5.19 (94968384dde1, "memcg: introduce per-memcg reclaim interface"); vendor
# kernels may carry it earlier, so the file is what counts when it can be seen.
RECLAIM_UPSTREAM = (5, 19)


def host_memory_layout(root):
    # type: (str) -> Dict[str, Any]
    """:func:`memory_layout` of the host at ``root``: this one, read live,
    when ``root`` is ``/``; a host tree mounted there otherwise."""
    if root in ("/", ""):
        return memory_layout("/", live=True)
    return memory_layout(root, live=False)


def reclaim_interface(root, layout, release_numbers=None):
    # type: (str, Dict[str, Any], Optional[Sequence[int]]) -> Tuple[Optional[str], str]
    """How the memory cgroups of the host at ``root`` can be reclaimed on demand:
    ``(interface, evidence)`` with interface ``memory.force_empty`` (v1),
    ``memory.reclaim`` (v2 that has it), ``none`` (v2 without it) or None.

    ``release_numbers`` (``(5, 15)``) is the running kernel's, used only when
    the hierarchy's files cannot be seen (a host root without /sys).

    >>> reclaim_interface("/nonexistent", {"memory_controller": "v1"})[0]
    'memory.force_empty'
    >>> reclaim_interface("/nonexistent", {"memory_controller": "v2",
    ...                   "memory_mount": "/sys/fs/cgroup"}, (5, 15))[0]
    'none'
    """
    controller = (layout or {}).get("memory_controller")
    if controller == "v1":
        return "memory.force_empty", "cgroup v1 has memory.force_empty in every memory cgroup"
    if controller != "v2":
        return None, "the memory controller is not on cgroup v1 or v2"
    mount = layout.get("memory_mount")
    seen = []
    if mount:
        candidates = [mount]
        try:
            names = os.listdir(_resolved_in_root(root, mount))
            candidates += sorted(mount + "/" + name for name in names
                                 if _isdir(root, mount + "/" + name))[:3]
        except (OSError, SourceError):
            pass
        for directory in candidates:
            if _isfile(root, directory + "/memory.reclaim"):
                return "memory.reclaim", "%s/memory.reclaim exists" % directory
            if (_isfile(root, directory + "/memory.max")
                    or _isfile(root, directory + "/memory.stat")):
                seen.append(directory)
    if seen:
        return "none", ("%s has memory files but no memory.reclaim (added in 5.19)" % seen[0])
    if release_numbers:
        has = tuple(release_numbers[:2]) >= RECLAIM_UPSTREAM
        return ("memory.reclaim" if has else "none",
                "no cgroup files to probe; kernel %s is %s 5.19, which added memory.reclaim"
                % (".".join(str(n) for n in release_numbers[:2]), ">=" if has else "<"))
    return None, "no v2 memory cgroup files to probe and the running kernel is unknown"


def count_memcg_dirs(path, link_counts=None, unlisted=None):
    # type: (str, Optional[bool], Optional[List[Tuple[str, str]]]) -> int
    """Directories in the tree at ``path``, counting ``path`` itself.

    One ``os.scandir`` walk (``os.listdir`` plus ``lstat`` on Python 2.7),
    iterative, never following symlinks. A directory that vanishes during the
    walk (its cgroup was removed) is not counted; unreadable ones (no
    permission, or a path longer than PATH_MAX in a tree nested that deep)
    are counted but not entered, and each is added to the list ``unlisted``
    as ``(path, reason)`` when one is given: the count is then a lower bound.
    Raises OSError only when ``path`` itself is missing.

    On a cgroup filesystem a directory's link count is 2 plus its
    subdirectories (kernfs: ``kernfs_refresh_inode()`` sets
    ``kn->dir.subdirs + 2``; the pre-kernfs cgroupfs of 3.10 raises the
    parent's count in ``cgroup_create_dir()``), so a directory with a count
    of 2 is a leaf and is counted without being listed. Most memcgs are
    leaves, and listing each one's thirty-odd control files is what a walk
    costs. ``link_counts`` forces (True) or forbids (False) that shortcut; by
    default it is taken when statfs(2) says ``path`` is cgroup or cgroup2,
    never elsewhere (a host root on disk: FUSE or network filesystems may
    report 2 for any directory, as find(1)'s -noleaf notes).
    """
    top = os.lstat(path)
    if not stat.S_ISDIR(top.st_mode):
        return 0
    if link_counts is None:
        link_counts = statfs_magic(path) in _LINK_COUNT_MAGICS
    scandir = getattr(os, "scandir", None)
    count = 0
    stack = [(path, top.st_nlink)]
    while stack:
        current, links = stack.pop()
        count += 1
        if link_counts and links == 2:
            continue  # a leaf: nothing below it to count
        try:
            if scandir is not None:
                iterator = scandir(current)
                try:
                    for entry in iterator:
                        try:
                            if entry.is_dir(follow_symlinks=False):
                                child_links = (entry.stat(follow_symlinks=False).st_nlink
                                               if link_counts else 0)
                                stack.append((entry.path, child_links))
                        except OSError:
                            continue
                finally:
                    close = getattr(iterator, "close", None)
                    if close is not None:
                        close()
            else:  # Python 2.7
                for name in os.listdir(current):
                    child = os.path.join(current, name)
                    try:
                        info = os.lstat(child)
                        if stat.S_ISDIR(info.st_mode):
                            stack.append((child, info.st_nlink))
                    except OSError:
                        continue
        except OSError as exc:
            if getattr(exc, "errno", None) == errno.ENOENT and current != path:
                count -= 1
            elif unlisted is not None:
                unlisted.append((current, exc.strerror or str(exc)))
    return count


def _empty_dying(method=None, reason=None):
    # type: (Optional[str], Optional[str]) -> Dict[str, Any]
    return {"live": None, "total": None, "dying": None, "method": method,
            "nr_dying_descendants": None, "nr_dying_subsys_memory": None,
            "nr_subsys_memory": None, "reason": reason}


def _dying_v1(root, layout):
    # type: (str, Dict[str, Any]) -> Dict[str, Any]
    result = _empty_dying("v1:num_cgroups-minus-dirs")
    if layout.get("memory_mount_root") not in (None, "/"):
        result["reason"] = ("only the subtree %s of the memory hierarchy is mounted here, "
                            "so its directories are not all memcgs"
                            % layout["memory_mount_root"])
        return result
    try:
        proc_cgroups = _resolved_in_root(root, "/proc/cgroups")
        mount = _resolved_in_root(root, layout["memory_mount"])
    except SourceError as exc:
        result["reason"] = str(exc)
        return result
    total = live = None  # type: Optional[int]
    for _attempt in range(_V1_ATTEMPTS):
        # /proc/cgroups and the walk as close together as possible, then a
        # second read: if the total moved, cgroups came or went mid-walk.
        try:
            before = parse_proc_cgroups(read_text(proc_cgroups)).get("memory")
        except SourceError as exc:
            result["reason"] = str(exc)
            return result
        if before is None:
            result["reason"] = "/proc/cgroups has no memory row"
            return result
        unlisted = []  # type: List[Tuple[str, str]]
        try:
            live = count_memcg_dirs(mount, unlisted=unlisted)
        except OSError as exc:
            result["reason"] = "cannot walk %s: %s" % (layout["memory_mount"],
                                                       exc.strerror or exc)
            return result
        total = before["num_cgroups"]
        try:
            after = parse_proc_cgroups(read_text(proc_cgroups)).get("memory")
        except SourceError:
            after = None
        if after is None or after["num_cgroups"] == total:
            break
    if unlisted:
        # the walk saw only part of the tree: live is a lower bound, dying a guess
        where, why = unlisted[0]
        shown = where[len(mount):][:200] or "/"
        result["reason"] = ("%d director%s of the memory hierarchy could not be listed, so "
                            "the live memcgs cannot be counted (first: %s%s: %s)"
                            % (len(unlisted), "y" if len(unlisted) == 1 else "ies",
                               layout["memory_mount"], shown, why))
        return result
    if live is None or total is None:  # pragma: no cover - the loop ran at least once
        return result
    if live > total:
        # a kernel counts every memcg it has; a tree with more is not this kernel's
        result["reason"] = ("the memory hierarchy has %d directories but /proc/cgroups "
                            "counts only %d memcgs: they do not describe the same "
                            "kernel" % (live, total))
        return result
    result.update({"live": live, "total": total, "dying": total - live})
    return result


def _dying_v2(root, layout):
    # type: (str, Dict[str, Any]) -> Dict[str, Any]
    result = _empty_dying()
    mount = layout["memory_mount"]
    try:
        stat_file = _resolved_in_root(root, mount.rstrip("/") + "/cgroup.stat")
        stats = parse_cgroup_stat(read_text(stat_file))
    except SourceError as exc:
        result["reason"] = str(exc)
        return result
    result["nr_dying_descendants"] = stats.get("nr_dying_descendants")
    result["nr_dying_subsys_memory"] = stats.get("nr_dying_subsys_memory")
    result["nr_subsys_memory"] = stats.get("nr_subsys_memory")
    if result["nr_dying_subsys_memory"] is not None:
        result["method"] = "v2:nr_dying_subsys_memory"
        dying = result["nr_dying_subsys_memory"]
    elif result["nr_dying_descendants"] is not None:
        result["method"] = "v2:nr_dying_descendants"
        dying = result["nr_dying_descendants"]
    else:
        result["reason"] = "cgroup.stat of %s has no nr_dying_descendants" % mount
        return result
    descendants = stats.get("nr_descendants")
    if descendants is not None:
        # the same read counts the live cgroups below the root: no walk
        live = descendants + 1
    else:
        try:
            live = count_memcg_dirs(_resolved_in_root(root, mount))
        except SourceError as exc:
            result["reason"] = str(exc)
            return result
        except OSError as exc:
            result["reason"] = "cannot walk %s: %s" % (mount, exc.strerror or exc)
            return result
    result.update({"live": live, "dying": dying, "total": live + dying})
    return result


def dying_memcgs(root="/", layout=None):
    # type: (str, Optional[Dict[str, Any]]) -> Dict[str, Any]
    """Live, total and dying (zombie) memory cgroups of the host at ``root``.

    Returns ``{live, total, dying, method, nr_dying_descendants,
    nr_dying_subsys_memory, nr_subsys_memory, reason}``; ``reason`` says why
    the counts are None, and nothing is raised.

    * v1 and hybrid: ``total`` is ``num_cgroups`` of the memory row of
      /proc/cgroups (it includes dying memcgs), ``live`` the directories of
      the memory hierarchy, ``dying`` their difference (never below 0).
    * v2: ``dying`` is ``nr_dying_subsys_memory`` of the root cgroup.stat
      where the kernel has it (6.11+), else ``nr_dying_descendants`` (4.14+,
      which counts dying cgroups of every controller); ``live`` the
      directories; ``total`` their sum.
    """
    if layout is None:
        layout = memory_layout(root, live=root in ("/", ""))
    controller = layout.get("memory_controller")
    if controller == "v1" and layout.get("memory_mount"):
        return _dying_v1(root, layout)
    if controller == "v2" and layout.get("memory_mount"):
        return _dying_v2(root, layout)
    if controller == "absent":
        return _empty_dying(reason="the memory controller is not enabled")
    return _empty_dying(reason="the memory cgroup hierarchy was not found")


def is_inside_memory_hierarchy(path, layout, strict=False):
    # type: (str, Dict[str, Any], bool) -> bool
    """True when ``path`` lies in the memory hierarchy of ``layout``.

    Purely lexical: no symlink is followed and nothing is read. The path must
    be absolute and may not contain ``..``; with ``strict`` the mount point
    itself does not count (it is the root memcg, never to be removed).

    >>> lay = {"memory_mount": "/sys/fs/cgroup/memory"}
    >>> is_inside_memory_hierarchy("/sys/fs/cgroup/memory/app/x", lay)
    True
    >>> is_inside_memory_hierarchy("/sys/fs/cgroup/memory/../cpu", lay)
    False
    >>> is_inside_memory_hierarchy("/sys/fs/cgroup/memoryx", lay)
    False
    >>> is_inside_memory_hierarchy("/sys/fs/cgroup/memory/", lay, strict=True)
    False
    """
    mount = (layout or {}).get("memory_mount")
    if not mount or not path or not path.startswith("/") or not mount.startswith("/"):
        return False
    if ".." in path.split("/"):
        return False
    path = os.path.normpath(path)
    mount = os.path.normpath(mount)
    if path == mount:
        return not strict
    return path.startswith(mount.rstrip("/") + "/")
