"""What zombie memcgs cost: per-cpu memory and the slab that holds them.

Each memcg allocates per-cpu statistics (the ``Percpu`` line of
/proc/meminfo) and a ``struct mem_cgroup`` of a few KiB, allocated from a
kmalloc cache (kmalloc-4k on 5.4 x86_64; kmalloc-4096 on 3.10). On an idle
host with many zombies, that cache's active objects track the zombie count.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Tuple  # noqa: F401 # novermin

# Caches a struct mem_cgroup lands in, in the order we look for them.
MEMCG_CACHES = ("kmalloc-4k", "kmalloc-4096", "kmalloc-8k", "kmalloc-8192", "kmalloc-2k",
                "kmalloc-2048")


def parse_meminfo(text):
    # type: (str) -> Dict[str, int]
    """Parse /proc/meminfo into ``{key: kB}``.

    Sample, /proc/meminfo of this project's Debian 12 host (kernel 6.18)::

        MemTotal:       24684092 kB
        MemFree:        24424188 kB
        Percpu:              976 kB

    >>> parse_meminfo("MemTotal:  100 kB\\nPercpu:   1674240 kB\\nHugePages_Total: 0\\nbad\\n")["Percpu"]
    1674240
    """  # noqa: E501 (real sample lines)
    values = {}
    for line in text.splitlines():
        key, sep, rest = line.partition(":")
        if not sep:
            continue
        fields = rest.split()
        if not fields:
            continue
        try:
            values[key.strip()] = int(fields[0])
        except ValueError:
            continue
    return values


def parse_slabinfo(text):
    # type: (str) -> List[Dict[str, Any]]
    """Parse /proc/slabinfo (version 2.1) into a list of caches.

    Each item is ``{name, active_objs, num_objs, objsize}``. A name can occur
    twice: a cache destroyed with objects still in it stays (Linux 3.10's
    kmem_cache_destroy() in mm/slab_common.c puts it back on the cache list
    after SLUB's "Objects remaining in ... on kmem_cache_close()"), and its
    replacement is added: two ``slab_test`` rows after a module is reloaded.

    Sample, /proc/slabinfo of this project's Debian 12 host, and the
    duplicate rows of such a reloaded module on 3.10.0-514.26.2.el7::

        slabinfo - version: 2.1
        # name            <active_objs> <num_objs> <objsize> <objperslab> <pagesperslab> : tunables <limit> <batchcount> <sharedfactor> : slabdata <active_slabs> <num_slabs> <sharedavail>
        kmalloc-4k           292    384   4096    8    8 : tunables    0    0    0 : slabdata     48     48      0
        slab_test    320    320    128   32    1 : tunables    0    0    0 : slabdata     10     10      0
        slab_test      1     32    128   32    1 : tunables    0    0    0 : slabdata      1      1      0

    >>> rows = parse_slabinfo("slabinfo - version: 2.1\\n# name ...\\nkmalloc-4k 246 312 4096 8 8 : tunables 0 0 0 : slabdata 39 39 0\\n")
    >>> rows[0]["name"], rows[0]["active_objs"], rows[0]["objsize"]
    ('kmalloc-4k', 246, 4096)
    """  # noqa: E501 (real sample lines)
    caches = []
    for line in text.splitlines():
        if not line or line.startswith("#") or line.startswith("slabinfo"):
            continue
        fields = line.split()
        if len(fields) < 4:
            continue
        try:
            active, total, size = int(fields[1]), int(fields[2]), int(fields[3])
        except ValueError:
            continue
        caches.append({"name": fields[0], "active_objs": active, "num_objs": total,
                       "objsize": size})
    return caches


def duplicate_caches(caches):
    # type: (List[Dict[str, Any]]) -> List[str]
    """Cache names that occur more than once, sorted.

    >>> duplicate_caches([{"name": "a"}, {"name": "b"}, {"name": "a"}])
    ['a']
    """
    seen = {}  # type: Dict[str, int]
    for cache in caches:
        seen[cache["name"]] = seen.get(cache["name"], 0) + 1
    return sorted(name for name, count in seen.items() if count > 1)


def memcg_cache(caches):
    # type: (List[Dict[str, Any]]) -> Tuple[Optional[str], Optional[int]]
    """``(name, active_objs)`` of the kmalloc cache that holds mem_cgroup,
    or ``(None, None)`` when none of the usual caches is listed."""
    by_name = {}  # type: Dict[str, Dict[str, Any]]
    for cache in caches:
        by_name.setdefault(cache["name"], cache)
    for name in MEMCG_CACHES:
        if name in by_name:
            return name, by_name[name]["active_objs"]
    return None, None


# "... root root 0 Feb  7 05:23 NAME" and "... Dec  6  2019 NAME": what follows
# ls -l's date is the entry's name ("NAME -> TARGET" for a symlink).
_LS_DATE = re.compile(r"\s[A-Z][a-z][a-z] +\d{1,2} +(?:\d{1,2}:\d\d|\d{4}) ")
SOS_SLAB_LISTINGS = ("kernel/ls_-lt_.sys.kernel.slab", "kernel/ls_-alZ_.sys.kernel.slab")


def parse_ls_names(text):
    # type: (str) -> List[str]
    """Entry names of an ``ls -l`` listing of one directory, in its order.

    sosreport keeps /sys/kernel/slab only as a listing: ``ls -lt
    /sys/kernel/slab`` (``sos_commands/kernel/ls_-lt_.sys.kernel.slab``;
    sos 4.8 and later list it with ``ls -alZ``). Sample lines of a 3.10 SLUB
    host, where a per-memcg cache is a symlink to a merged cache::

        total 0
        lrwxrwxrwx 1 root root 0 Feb  7 05:23 dentry(602:docker.socket) -> :t-0000192
        drwxr-xr-x 2 root root 0 Feb  7 05:23 :t-0000192

    >>> parse_ls_names("total 0\\n"
    ...                "lrwxrwxrwx 1 root root 0 Feb  7 05:23 dentry(6:a) -> :t-0000192\\n"
    ...                "drwxr-xr-x. 2 root root system_u:object_r:sysfs_t:s0 0 Dec  6  2019 .\\n")
    ['dentry(6:a)']
    """
    names = []
    for line in text.splitlines():
        if not line or line[0] not in "-dlcbps":  # "total 0", errors, blank lines
            continue
        match = _LS_DATE.search(line)
        if not match:
            continue
        name = line[match.end():].partition(" -> ")[0]
        if name and name not in (".", ".."):
            names.append(name)
    return names
