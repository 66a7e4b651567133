"""Bounded, failure-tolerant access to files and commands on a host.

Every read is capped (a 1 GB log must not exhaust memory), refuses what is
not a regular file (a FIFO would block forever), and reports problems as
:class:`SourceError` with a one-line reason that collectors turn into
"unknown, because ...".

:func:`resolve_in_root` resolves a path the way the kernel would inside a
chroot, so that reading ``<root>/etc/os-release`` can never leave ``<root>``,
even through an absolute symlink or ``..``.

Commands run without a shell, with a timeout (on Python 2.7, whose
``subprocess`` has none, a watchdog thread), a C locale and a capped output.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import errno
import os
import stat
import sys

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

MAX_READ_BYTES = 16 * 1024 * 1024
MAX_SYMLINKS = 40
COMMAND_TIMEOUT = 15.0

# Where tools live on EL and Debian, in case PATH (under Ansible, cron...) is thin.
_SYSTEM_PATH = ("/usr/local/sbin", "/usr/local/bin", "/usr/sbin", "/usr/bin", "/sbin", "/bin")


class SourceError(Exception):
    """A source could not be read; ``str(exc)`` is the reason, one line."""


def _reason(exc):
    # type: (BaseException) -> str
    """A short reason for an OSError: ``No such file or directory``."""
    text = getattr(exc, "strerror", None) or str(exc)
    return " ".join(str(text).split())


def path_under_root(root, path):
    # type: (str, str) -> str
    """``path`` (absolute, as the host names it) under ``root``, joined as
    text: no link is resolved, so callers that must not follow links check
    each component with lstat. :func:`resolve_in_root` resolves them instead.
    """
    if root in ("/", ""):
        return path
    return os.path.join(root, path.lstrip("/"))


def resolve_in_root(root, path, max_links=MAX_SYMLINKS):
    # type: (str, str, int) -> str
    """Resolve ``path`` as if ``root`` were ``/``, never leaving ``root``.

    Absolute symlinks restart at ``root``; ``..`` stops at ``root``. A missing
    component ends the resolution (the caller's open then fails with ENOENT).
    Raises :class:`SourceError` on a symlink loop.
    """
    root = os.path.abspath(root)
    pending = [p for p in path.split("/") if p and p != "."]
    resolved = []  # type: List[str]
    links = 0
    while pending:
        part = pending.pop(0)
        if part == "..":
            if resolved:
                resolved.pop()
            continue
        candidate = os.path.join(root, *(resolved + [part]))
        try:
            mode = os.lstat(candidate).st_mode
        except OSError:
            return os.path.join(root, *(resolved + [part] + pending))
        if stat.S_ISLNK(mode):
            links += 1
            if links > max_links:
                raise SourceError("too many levels of symbolic links in %s" % path)
            try:
                target = os.readlink(candidate)
            except OSError as exc:
                raise SourceError("cannot read link %s: %s" % (candidate, _reason(exc)))
            if target.startswith("/"):
                resolved = []
            pending = [p for p in target.split("/") if p and p != "."] + pending
            continue
        resolved.append(part)
    return os.path.join(root, *resolved)


def read_bytes(path, cap=MAX_READ_BYTES, tail=False):
    # type: (str, int, bool) -> bytes
    """The content of regular file ``path``, at most ``cap`` bytes.

    A larger file raises :class:`SourceError`, unless ``tail`` is set: then its
    last ``cap`` bytes are returned, from the first full line (for logs).
    """
    flags = os.O_RDONLY | getattr(os, "O_NONBLOCK", 0) | getattr(os, "O_NOCTTY", 0)
    try:
        fd = os.open(path, flags)
    except OSError as exc:
        if exc.errno == errno.ELOOP:
            raise SourceError("too many levels of symbolic links: %s" % path)
        raise SourceError("cannot open %s: %s" % (path, _reason(exc)))
    try:
        try:
            info = os.fstat(fd)
            if not stat.S_ISREG(info.st_mode):
                raise SourceError("%s is not a regular file" % path)
            skipped = False
            if info.st_size > cap:
                if not tail:
                    raise SourceError(
                        "%s is larger than %d MiB" % (path, cap // (1024 * 1024)))
                os.lseek(fd, info.st_size - cap, os.SEEK_SET)
                skipped = True
            chunks = []
            remaining = cap + 1
            while remaining > 0:
                chunk = os.read(fd, min(remaining, 1024 * 1024))
                if not chunk:
                    break
                chunks.append(chunk)
                remaining -= len(chunk)
            data = b"".join(chunks)
        except OSError as exc:
            raise SourceError("cannot read %s: %s" % (path, _reason(exc)))
    finally:
        os.close(fd)
    if len(data) > cap:
        # procfs and sysfs files report size 0: the cap is only seen while reading
        if not tail:
            raise SourceError("%s is larger than %d MiB" % (path, cap // (1024 * 1024)))
        data = data[-cap:]
        skipped = True
    if skipped:
        newline = data.find(b"\n")
        data = data[newline + 1:] if newline >= 0 else data
    return data


def decode_text(data, what):
    # type: (bytes, str) -> str
    """Bytes to text; NUL bytes mean the source is binary, not text."""
    if b"\x00" in data:
        raise SourceError("%s holds binary data, not text" % what)
    return data.decode("utf-8", "replace")


def read_text(path, cap=MAX_READ_BYTES, tail=False):
    # type: (str, int, bool) -> str
    """:func:`read_bytes` decoded as UTF-8 (invalid bytes replaced)."""
    return decode_text(read_bytes(path, cap, tail), path)


def which(name, extra_dirs=_SYSTEM_PATH):
    # type: (str, Sequence[str]) -> Optional[str]
    """The absolute path of executable ``name`` on PATH or in the system dirs."""
    dirs = [d for d in os.environ.get("PATH", "").split(os.pathsep) if d]
    for directory in dirs + [d for d in extra_dirs if d not in dirs]:
        candidate = os.path.join(directory, name)
        if os.path.isfile(candidate) and os.access(candidate, os.X_OK):
            return candidate
    return None


def _communicate_with_watchdog(proc, timeout, expired):
    # type: (Any, float, List[bool]) -> Tuple[bytes, bytes]
    """``proc.communicate()`` for Python 2.7, which has no timeout: a thread
    kills ``proc`` after ``timeout`` seconds and appends to ``expired``."""
    import threading

    def _kill():
        # type: () -> None
        expired.append(True)
        try:
            proc.kill()
        except OSError:
            pass

    watchdog = threading.Timer(timeout, _kill)
    watchdog.daemon = True
    watchdog.start()
    try:
        return proc.communicate()
    finally:
        watchdog.cancel()


def run_command(argv, timeout=COMMAND_TIMEOUT, cap=MAX_READ_BYTES):
    # type: (Sequence[str], float, int) -> Tuple[int, str, str]
    """Run ``argv`` (a list, never a shell string); return ``(rc, stdout, stderr)``.

    The command is killed after ``timeout`` seconds. Raises
    :class:`SourceError` when it is not installed, cannot start or timed out.
    """
    executable = argv[0] if os.path.isabs(argv[0]) else which(argv[0])
    if not executable:
        raise SourceError("%s is not installed" % argv[0])
    env = dict(os.environ)
    env.update({"LC_ALL": "C", "LANG": "C", "PAGER": "cat", "SYSTEMD_PAGER": ""})
    env["PATH"] = os.pathsep.join(
        [d for d in env.get("PATH", "").split(os.pathsep) if d] + list(_SYSTEM_PATH))
    # imported here: a collector that runs no command (most containers) saves
    # their import
    import subprocess

    devnull = open(os.devnull, "rb")
    try:
        try:
            proc = subprocess.Popen(
                [executable] + list(argv[1:]), stdin=devnull, stdout=subprocess.PIPE,
                stderr=subprocess.PIPE, close_fds=True, env=env)
        except OSError as exc:
            raise SourceError("cannot run %s: %s" % (argv[0], _reason(exc)))
        expired = []
        if sys.version_info[0] >= 3:
            # communicate's own timeout: no watchdog thread to start
            try:
                out, err = proc.communicate(timeout=timeout)  # novermin - Python 3 only
            except subprocess.TimeoutExpired:  # novermin - Python 3 only
                expired.append(True)
                proc.kill()
                out, err = proc.communicate()
        else:
            out, err = _communicate_with_watchdog(proc, timeout, expired)
    finally:
        devnull.close()
    if expired:
        raise SourceError("%s timed out after %ss" % (" ".join(argv), timeout))
    stdout = out[-cap:] if len(out) > cap else out
    return (proc.returncode, stdout.decode("utf-8", "replace"),
            err[-4096:].decode("utf-8", "replace"))
