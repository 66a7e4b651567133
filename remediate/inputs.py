"""Opening the files a user names (facts, plans, policies, playbooks) without hanging.

``open(path)`` of a FIFO blocks until something opens it for writing, so
``memcg-fix policy validate some-fifo`` would wait forever. Here the file is
opened non-blocking (which returns at once for a FIFO), then switched back to
blocking reads: a pipe with a writer (``--facts /dev/stdin``, a shell's
``<(...)``) is read to its end as usual, and a FIFO nobody writes to reads as
empty, which the callers report as they report an empty file.
"""

from __future__ import annotations

import fcntl
import os
import stat
from typing import BinaryIO


def open_input(path: str | os.PathLike[str]) -> BinaryIO:
    """``path`` opened for reading in binary mode; raises OSError like ``open``."""
    fd = os.open(path, os.O_RDONLY | os.O_NONBLOCK | os.O_NOCTTY | os.O_CLOEXEC)
    try:
        if stat.S_ISDIR(os.fstat(fd).st_mode):
            raise IsADirectoryError(21, "Is a directory", str(path))
        flags = fcntl.fcntl(fd, fcntl.F_GETFL)
        fcntl.fcntl(fd, fcntl.F_SETFL, flags & ~os.O_NONBLOCK)
        return open(fd, "rb", closefd=True)
    except BaseException:
        os.close(fd)
        raise
