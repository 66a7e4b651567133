"""Where facts come from: this host (live) or a host root (image, sosreport).

Both readers give the collector the same small interface, with every failure
as :class:`~.fileio.SourceError` carrying a one-line reason:

* ``read(path, tail=False)``: the text of a file, at most 16 MiB;
* ``listdir(path)``, ``isdir(path)``, ``isfile(path)``, ``readlink(path)``;
* ``run(argv)``: a read-only command's stdout (live only);
* ``sos(*names)``: a sosreport ``sos_commands/...`` output (root only).

:class:`RootReader` resolves every path inside its root, as a chroot would,
so no file outside the root is ever read, and never runs a command.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import os

from .fileio import SourceError, read_text, resolve_in_root, run_command

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import List, Optional, Sequence  # noqa: F401 # novermin


class LiveReader(object):
    """This host, read live; may run read-only commands."""

    mode = "local"
    live = True
    root = "/"

    def path(self, path):
        # type: (str) -> str
        return path

    def read(self, path, tail=False):
        # type: (str, bool) -> str
        return read_text(self.path(path), tail=tail)

    def listdir(self, path):
        # type: (str) -> List[str]
        try:
            return sorted(os.listdir(self.path(path)))
        except OSError as exc:
            raise SourceError("cannot list %s: %s" % (path, exc.strerror or exc))

    def isdir(self, path):
        # type: (str) -> bool
        try:
            return os.path.isdir(self.path(path))
        except SourceError:
            return False

    def isfile(self, path):
        # type: (str) -> bool
        try:
            return os.path.isfile(self.path(path))
        except SourceError:
            return False

    def readlink(self, path):
        # type: (str) -> Optional[str]
        """The target of symlink ``path``, or None when it is not a link."""
        if self.live:
            full = path
        else:
            try:
                parent = resolve_in_root(self.root, os.path.dirname(path))
            except SourceError:
                return None
            full = os.path.join(parent, os.path.basename(path))
        try:
            return os.readlink(full)
        except OSError:
            return None

    def run(self, argv, timeout=15.0, ok_codes=(0,)):
        # type: (Sequence[str], float, Sequence[int]) -> str
        code, out, err = run_command(argv, timeout=timeout)
        if code not in ok_codes:
            detail = " ".join(err.strip().splitlines()[:1]) or "no message"
            raise SourceError("%s exited with status %d: %s" % (" ".join(argv), code, detail))
        return out

    def sos(self, *names):
        # type: (*str) -> str
        raise SourceError("not a sosreport")

    def describe(self):
        # type: () -> str
        return "this host"


class RootReader(LiveReader):
    """A host root: a mounted image, a chroot or an extracted sosreport."""

    mode = "root"
    live = False

    def __init__(self, root):
        # type: (str) -> None
        self.root = os.path.abspath(root)

    def path(self, path):
        # type: (str) -> str
        return resolve_in_root(self.root, path)

    def run(self, argv, timeout=15.0, ok_codes=(0,)):
        # type: (Sequence[str], float, Sequence[int]) -> str
        raise SourceError("commands are not run on a host root; "
                          "no saved output of '%s' was found" % " ".join(argv))

    def is_sosreport(self):
        # type: () -> bool
        return self.isdir("/sos_commands")

    def sos(self, *names):
        # type: (*str) -> str
        """The first existing ``sos_commands/<name>`` file's text."""
        if not self.is_sosreport():
            raise SourceError("not a sosreport (no sos_commands/)")
        reasons = []
        for name in names:
            path = "/sos_commands/" + name.lstrip("/")
            if not self.isfile(path):
                reasons.append(name)
                continue
            return self.read(path)
        raise SourceError("the sosreport has none of: %s" % ", ".join(reasons))

    def describe(self):
        # type: () -> str
        return self.root
