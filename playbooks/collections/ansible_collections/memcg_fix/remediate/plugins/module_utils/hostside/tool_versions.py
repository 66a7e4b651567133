# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+): stdlib only.
"""What ``TOOL --version`` printed, remembered for the same binary.

On a container host the collector's costliest work is running ``runc
--version``, ``docker --version`` and ``kubelet --version``: each is a Go
program whose runtime starts threads before it prints a line (10-15 ms of
CPU each, a third of a run on such a host). What they print is compiled
into the binary, so for the same file it never changes. The raw detection
path keeps these texts on the host, next to its compiled code, and runs a
tool again only when its file is not the one remembered.

"The same file" is the path and the file's device, inode, size, mtime and
ctime (``os.stat``, links followed): a package upgrade writes a new inode,
an edit in place changes mtime and ctime, and ctime cannot be set back from
user space. Only ELF executables are remembered: a script (podman's
``docker`` wrapper) prints what another program says, which can change
without the script changing.

This module only decides and holds texts in memory; the bootstrap that runs
the collector loads and stores them, with the checks it applies to its
code cache (``module_utils/facts_bootstrap.py``).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os
import stat

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional, Tuple, Type  # noqa: F401 # novermin

_STRING_TYPES = (str,)  # type: Tuple[Type[str], ...]
try:  # Python 2.7: JSON strings load as unicode
    _STRING_TYPES = (str, unicode)  # type: ignore[name-defined] # novermin
except NameError:
    pass

_ELF_MAGIC = b"\x7fELF"
MAX_TEXT = 4096  # a --version text longer than this is not remembered


def binary_identity(path):
    # type: (str) -> Optional[List[Any]]
    """``[dev, ino, size, mtime, ctime]`` of the ELF executable at ``path``,
    or None for anything else (a script, a missing or unreadable file)."""
    try:
        info = os.stat(path)
        if not stat.S_ISREG(info.st_mode):
            return None
        with open(path, "rb") as handle:
            if handle.read(len(_ELF_MAGIC)) != _ELF_MAGIC:
                return None
    except (OSError, IOError):
        return None
    # repr of the float: the same on Python 2.7 and 3 (shortest repr)
    return [info.st_dev, info.st_ino, info.st_size, repr(info.st_mtime), repr(info.st_ctime)]


class VersionMemo(object):
    """Texts by path, each with the identity of the binary that printed it.

    ``entries`` is what an earlier run kept (``{path: {"id": [...], "text":
    "..."}}``); malformed entries are ignored. ``used`` is what this run
    looked up or learned, which is all the next run needs to keep.
    """

    def __init__(self, entries=None):
        # type: (Any) -> None
        self.entries = {}  # type: Dict[str, Dict[str, Any]]
        if isinstance(entries, dict):
            for path, entry in entries.items():
                if (isinstance(entry, dict) and isinstance(entry.get("id"), list)
                        and isinstance(entry.get("text"), _STRING_TYPES)):
                    self.entries[path] = {"id": entry["id"], "text": entry["text"]}
        self.used = {}  # type: Dict[str, Dict[str, Any]]
        self.learned = False

    def changed(self):
        # type: () -> bool
        """Whether what the next run needs differs from what this one found."""
        return self.learned or set(self.used) != set(self.entries)

    def recall(self, path, identity):
        # type: (str, Optional[List[Any]]) -> Optional[str]
        """The text remembered for this binary, or None."""
        entry = self.entries.get(path)
        if identity is None or entry is None or entry["id"] != identity:
            return None
        self.used[path] = entry
        return entry["text"]

    def remember(self, path, identity, text):
        # type: (str, Optional[List[Any]], str) -> None
        """Keep ``text`` for the binary whose identity was taken before it ran."""
        if identity is None or len(text) > MAX_TEXT:
            return
        self.used[path] = {"id": identity, "text": text}
        self.learned = True
