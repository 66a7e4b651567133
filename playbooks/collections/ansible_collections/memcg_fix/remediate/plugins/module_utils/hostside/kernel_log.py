"""Signatures of leaking memcgs in kernel and system logs.

Each signature gets a count and the last matching line. The lines are the
ones quoted in the reports memcg-fix acts on:

* ``SLUB: Unable to allocate memory on node -1 (gfp=0xd0)``: slab
  allocation failures of the el7 kmem leak (runc#1725, kubernetes#61937);
* ``BUG slab_test (...): Objects remaining in slab_test on
  kmem_cache_close()`` (3.10) or ``... on __kmem_cache_shutdown()`` (4.6 and
  later: RHEL 8/9, Ubuntu, Debian): a cache destroyed with live objects,
  which then shows up twice in /proc/slabinfo;
* ``Memory cgroup out of memory: Killed process 4045 (bigleak2)`` with the
  ``oom_memcg=`` path of the preceding ``oom-kill:`` line (3.10 kernels say
  ``Kill process`` and ``killed as a result of limit of <memcg>``);
* cgroup mkdir failures with ENOSPC ("no space left on device", the 65535
  memcg IDs are used up) or ENOMEM ("cannot allocate memory"), as logged by
  runc, dockerd, kubelet or systemd (moby#29638, kubernetes#112940).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, Iterator, List, Sequence, Set  # noqa: F401 # novermin

_LAST_MAX = 500
_LIST_MAX = 50

# Every scan here is linear in the size of the log (docs/benchmarks.md, S1):
# lines are found with str.find of a few fixed needles (C speed, like grep),
# and only the lines holding one are looked at; every regex below is
# anchored on a literal and has no nested or unbounded-then-backtracking
# quantifier over the line; what is collected is kept in sets, never searched
# in lists. A kernel log is read by anyone who can run logger(1).
_SLUB = "SLUB: Unable to allocate memory on node"
# 3.10 (el7) says kmem_cache_close(); from 4.6 (52b4b950b507, "mm: slab: free
# kmem_cache_node after destroy sysfs file") SLUB says __kmem_cache_shutdown()
_CACHE_CLOSE = re.compile(
    r"Objects remaining in (\S+) on (?:__)?kmem_cache_(?:close|shutdown)\(\)")
_OOM = re.compile(r"Memory cgroup out of memory: Kill(?:ed)? process")
_OOM_MEMCG = re.compile(r"oom_memcg=([^,\s]+)")
_OOM_MEMCG_OLD = re.compile(r"killed as a result of limit of (\S+)")
# A cgroup mkdir failure: an errno, and "<verb> ... cgroup" or "cgroup ... mkdir"
# (runc, dockerd, kubelet and systemd word it differently). The verbs end at a
# word boundary ("failed to create" ends in "create").
_MKDIR_VERB = re.compile(r"(?:mkdir|create|creating)\b", re.I)
_MKDIR_WORD = re.compile(r"\bmkdir", re.I)
_CGROUP_ANY_CASE = re.compile("cgroup", re.I)
_MKDIR_ERRNO = re.compile(r"(?i)no space left on device|cannot allocate memory|ENOSPC|ENOMEM")

# A line can match a signature only if it holds one of these ("Memory cgroup
# out of memory" and every mkdir failure hold "cgroup").
_NEEDLES = ("SLUB", "kmem_cache_close", "kmem_cache_shutdown", "oom_memcg=",
            "as a result of limit of", "cgroup")

SIGNATURES = ("slub_alloc_failure", "kmem_cache_close", "memcg_oom", "cgroup_mkdir_failure")


def _clip(line):
    # type: (str) -> str
    line = line.strip()
    return line if len(line) <= _LAST_MAX else line[:_LAST_MAX] + "..."


def candidate_lines(text, needles=_NEEDLES):
    # type: (str, Sequence[str]) -> Iterator[str]
    """The lines of ``text`` (split at ``\\n``) that hold any of ``needles``,
    in order, each once.

    One forward ``str.find`` per needle and occurrence: every byte is looked
    at a bounded number of times per needle, whatever the lines look like.

    >>> list(candidate_lines("a\\nx cgroup SLUB\\nb\\nSLUB\\n"))
    ['x cgroup SLUB', 'SLUB']
    """
    size = len(text)
    positions = [text.find(needle) for needle in needles]
    while True:
        found = [p for p in positions if p >= 0]
        if not found:
            return
        first = min(found)
        start = text.rfind("\n", 0, first) + 1
        end = text.find("\n", first)
        if end < 0:
            end = size
        yield text[start:end]
        for index, position in enumerate(positions):
            if 0 <= position <= end:  # on this line: its next one comes after it
                positions[index] = text.find(needles[index], end)


def _is_mkdir_failure(line):
    # type: (str) -> bool
    if not _MKDIR_ERRNO.search(line):
        return False
    verb = _MKDIR_VERB.search(line)
    if verb and _CGROUP_ANY_CASE.search(line, verb.end()):
        return True
    first = _CGROUP_ANY_CASE.search(line)
    return first is not None and _MKDIR_WORD.search(line, first.end()) is not None


class _Recent(object):
    """Distinct values in order of first appearance; keeps the last ``_LIST_MAX``."""

    def __init__(self):
        # type: () -> None
        self.seen = set()  # type: Set[str]
        self.order = []  # type: List[str]

    def add(self, value):
        # type: (str) -> None
        if value not in self.seen:
            self.seen.add(value)
            self.order.append(value)

    def last(self):
        # type: () -> List[str]
        return self.order[-_LIST_MAX:]


def scan_kernel_log(text):
    # type: (str) -> Dict[str, Dict[str, Any]]
    """Count each signature in ``text`` (dmesg, ``journalctl -k`` or
    /var/log/messages); return ``{signature: {count, last, ...}}``.

    Samples, from the reports in this project's seed documents (CentOS 7
    /var/log/messages, and ``dmesg`` on Debian 12 arm64)::

        Feb  7 05:23:41 centos7 kernel: SLUB: Unable to allocate memory on node -1
        Jul 29 09:27:39 cpe kernel: [  997.113474] BUG slab_test (Tainted: G           OE  ------------  ): Objects remaining in slab_test on kmem_cache_close()
        oom-kill:constraint=CONSTRAINT_MEMCG,nodemask=(null),cpuset=user.slice,mems_allowed=0,oom_memcg=/user.slice/user-1000.slice/dans-slice,task_memcg=/user.slice/user-1000.slice/dans-slice,task=bigleak2,pid=4045,uid=1000
        Memory cgroup out of memory: Killed process 4045 (bigleak2) total-vm:53392kB, anon-rss:20020kB, file-rss:1172kB, shmem-rss:0kB, UID:1000 pgtables:88kB oom_score_adj:0

    >>> s = scan_kernel_log("kernel: SLUB: Unable to allocate memory on node -1\\nkernel: SLUB: Unable to allocate memory on node -1\\n")
    >>> s["slub_alloc_failure"]["count"], s["memcg_oom"]["count"]
    (2, 0)
    >>> scan_kernel_log('mkdir /sys/fs/cgroup/memory/docker/x: no space left on device')["cgroup_mkdir_failure"]["count"]
    1
    """  # noqa: E501 (real sample lines)
    result = {
        "slub_alloc_failure": {"count": 0, "last": None},
        "kmem_cache_close": {"count": 0, "last": None, "caches": []},
        "memcg_oom": {"count": 0, "last": None, "memcgs": []},
        "cgroup_mkdir_failure": {"count": 0, "last": None},
    }  # type: Dict[str, Dict[str, Any]]
    oom_memcgs = _Recent()
    caches = _Recent()
    for line in candidate_lines(text):
        if _SLUB in line:
            result["slub_alloc_failure"]["count"] += 1
            result["slub_alloc_failure"]["last"] = _clip(line)
            continue
        if "Objects remaining" in line:
            match = _CACHE_CLOSE.search(line)
            if match:
                result["kmem_cache_close"]["count"] += 1
                result["kmem_cache_close"]["last"] = _clip(line)
                caches.add(match.group(1))
                continue
        if "oom_memcg=" in line or "as a result of limit of" in line:
            memcg = _OOM_MEMCG.search(line) or _OOM_MEMCG_OLD.search(line)
            if memcg:
                oom_memcgs.add(memcg.group(1))
            continue
        if "Memory cgroup out of memory" in line and _OOM.search(line):
            result["memcg_oom"]["count"] += 1
            result["memcg_oom"]["last"] = _clip(line)
            continue
        if "cgroup" in line and _is_mkdir_failure(line):
            result["cgroup_mkdir_failure"]["count"] += 1
            result["cgroup_mkdir_failure"]["last"] = _clip(line)
    # keep the lists short: the most recent memcgs and caches are what matter
    result["memcg_oom"]["memcgs"] = oom_memcgs.last()
    result["kmem_cache_close"]["caches"] = caches.last()
    return result
