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


class LiveReader(object):
    """This host, read live; may run read-only commands."""

    mode = "local"
    live = True
    root = "/"

    def path(self, path):
        return path

    def read(self, path, tail=False):
        return read_text(self.path(path), tail=tail)

    def listdir(self, path):
        try:
            return sorted(os.listdir(self.path(path)))
        except OSError as exc:
            raise SourceError("cannot list %s: %s" % (path, exc.strerror or exc))

    def isdir(self, path):
        try:
            return os.path.isdir(self.path(path))
        except SourceError:
            return False

    def isfile(self, path):
        try:
            return os.path.isfile(self.path(path))
        except SourceError:
            return False

    def readlink(self, path):
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
        code, out, err = run_command(argv, timeout=timeout)
        if code not in ok_codes:
            detail = " ".join(err.strip().splitlines()[:1]) or "no message"
            raise SourceError("%s exited with status %d: %s" % (" ".join(argv), code, detail))
        return out

    def sos(self, *names):
        raise SourceError("not a sosreport")

    def describe(self):
        return "this host"


class RootReader(LiveReader):
    """A host root: a mounted image, a chroot or an extracted sosreport."""

    mode = "root"
    live = False

    def __init__(self, root):
        self.root = os.path.abspath(root)

    def path(self, path):
        return resolve_in_root(self.root, path)

    def run(self, argv, timeout=15.0, ok_codes=(0,)):
        raise SourceError("commands are not run on a host root; "
                          "no saved output of '%s' was found" % " ".join(argv))

    def is_sosreport(self):
        return self.isdir("/sos_commands")

    def sos(self, *names):
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
        return self.root
