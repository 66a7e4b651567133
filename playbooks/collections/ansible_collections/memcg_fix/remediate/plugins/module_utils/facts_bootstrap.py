# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+): stdlib only.
"""Run the host-side collector from a compressed copy, in one process.

The ``memcg_facts_raw`` action runs this file's text with the target's
Python, in the one shell command it sends to the host::

    PYTHON -E -S -c "<this file>" PAYLOAD ROOT [CACHE]

or, where the connection carries stdin (the usual case), with a one-line
``-c`` stub that reads ``PAYLOAD`` and this file from stdin and runs it the
same way, so that the command (which sudo logs) stays short.

``PAYLOAD`` is base64 of zlib of ``name NUL source NUL name NUL source ...``:
the modules of ``plugins/module_utils/hostside`` that the collector imports.
They are imported from memory as the package ``memcg_fix_host`` (the
collector only uses relative imports), so the collector itself needs no
file on the host: a read-only or ``noexec`` /tmp, or no writable directory
at all, does not matter.

``CACHE`` (optional) is ``DIRECTORY/KEY``, ``KEY`` the controller's digest of
the payload. Compiling the collector's sources is the largest part of a run
on a small host (about 16 ms of 60-80), so their code objects are kept in
``DIRECTORY/KEY-TAG.code`` (``TAG``: this Python's version) and loaded from
there by later runs of the same payload and Python. The cache is only
believed when the directory and file belong to this user and nobody else
can write them (nor the directory's parent, unless it is sticky), and the
file's checksum matches; anything else (a read-only or missing /var, a
foreign or corrupt file) means compiling, as without a cache. A new entry
is written to a temporary file and renamed; entries of older payloads for
this Python are removed.

The same directory keeps, under the same checks, ``tool-versions-1``: what
``runc``, ``docker`` and ``kubelet --version`` printed, each with the
identity of the binary that printed it (``hostside/tool_versions.py``), so
that a tool runs again only when its file changed. On a host with the
container tools these were a third of a run.

It prints one line, ``MEMCG-FIX-FACTS {json}`` with what the ``memcg_facts``
module returns (``schema_version``, ``facts``, ``unknown``), or
``MEMCG-FIX-ERROR reason`` and exits 1. Everything else a login shell may
print (a banner, a warning) is ignored by the controller.
"""

from __future__ import absolute_import, division, print_function

import base64
import json
import marshal
import os
import stat
import sys
import zlib

__metaclass__ = type

PACKAGE = "memcg_fix_host"
FACTS_MARK = "MEMCG-FIX-FACTS "
ERROR_MARK = "MEMCG-FIX-ERROR "
SCHEMA_VERSION = 1
CACHE_MAGIC = b"memcg-fix-code-1\n"
VERSIONS_MAGIC = b"memcg-fix-tool-versions-1\n"
VERSIONS_FILE = "tool-versions-1"
MAX_CACHE_BYTES = 16 * 1024 * 1024


def unpack(payload):
    """``{module name: source bytes}`` from a payload string."""
    parts = zlib.decompress(base64.b64decode(payload)).split(b"\0")
    sources = {}
    for index in range(0, len(parts) - 1, 2):
        name = parts[index].decode("ascii")
        sources[PACKAGE + "." + name] = parts[index + 1]
    return sources


def compile_sources(sources):
    """``{module name: code object}`` of ``sources``, as an import compiles them."""
    return dict((name, compile(source, module_file(name), "exec", 0, True))
                for name, source in sources.items())


def module_file(name):
    return "<memcg-fix>/%s.py" % name.replace(".", "/")


def _cache_tag():
    """Which Python the code objects are for: marshal's format and the
    bytecode change between versions."""
    implementation = getattr(sys, "implementation", None)
    name = getattr(implementation, "cache_tag", None) or (
        "cpython-%d%d" % sys.version_info[:2])
    return "%s-%x-m%d" % (name, sys.hexversion, marshal.version)


def _private_dir(path, uid):
    """Whether ``path`` is a real directory of ``uid`` that nobody else can
    write, in a parent that others cannot write either (unless sticky)."""
    try:
        info = os.lstat(path)
        parent = os.lstat(os.path.dirname(path) or "/")
    except OSError:
        return False
    if not stat.S_ISDIR(info.st_mode) or info.st_uid != uid or info.st_mode & 0o022:
        return False
    return bool(stat.S_ISDIR(parent.st_mode) and parent.st_uid in (0, uid)
                and (not parent.st_mode & 0o022 or parent.st_mode & stat.S_ISVTX))


def _cache_path(spec):
    """(directory, file) of a ``DIRECTORY/KEY`` cache argument, or None."""
    directory, key = spec.rsplit("/", 1) if "/" in spec else ("", "")
    if not directory.startswith("/") or not key.isalnum():
        return None
    return directory, os.path.join(directory, "%s-%s.code" % (key, _cache_tag()))


def _read_private(directory, path, magic):
    """The body of ``path`` (``magic``, CRC-32, body), or None unless the
    directory and file are this user's and nobody else can write them, and
    the checksum matches."""
    uid = os.geteuid()
    if not _private_dir(directory, uid):
        return None
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return None
    try:
        info = os.fstat(fd)
        if (not stat.S_ISREG(info.st_mode) or info.st_uid != uid or info.st_mode & 0o022
                or info.st_size > MAX_CACHE_BYTES):
            return None
        chunks = []
        while True:
            chunk = os.read(fd, 1024 * 1024)
            if not chunk:
                break
            chunks.append(chunk)
    except OSError:
        return None
    finally:
        os.close(fd)
    data = b"".join(chunks)
    head = len(magic)
    if data[:head] != magic or data[head:head + 8] != (
            "%08x" % (zlib.crc32(data[head + 8:]) & 0xFFFFFFFF)).encode("ascii"):
        return None
    return data[head + 8:]


def _write_private(directory, path, magic, body):
    """Write ``path`` (0600, through a temporary file and a rename) in
    ``directory`` (made 0700 if missing); False if it cannot be trusted or written."""
    try:
        os.mkdir(directory, 0o700)
    except OSError:
        pass  # there already, or cannot be made: then the check below says no
    if not _private_dir(directory, os.geteuid()):
        return False
    data = magic + ("%08x" % (zlib.crc32(body) & 0xFFFFFFFF)).encode("ascii") + body
    temporary = os.path.join(directory, ".%s.%d.tmp" % (os.path.basename(path), os.getpid()))
    try:
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL
                     | getattr(os, "O_NOFOLLOW", 0), 0o600)
        try:
            while data:
                data = data[os.write(fd, data):]
        finally:
            os.close(fd)
        os.rename(temporary, path)
    except OSError:
        try:
            os.unlink(temporary)
        except OSError:
            pass
        return False
    return True


def load_cached(spec):
    """The code objects kept under ``spec``, or None when there are none to
    believe (see the module's docstring)."""
    where = _cache_path(spec)
    body = _read_private(where[0], where[1], CACHE_MAGIC) if where else None
    if body is None:
        return None
    try:
        # this user's own file, that nobody else can write (checked above)
        codes = marshal.loads(body)  # noqa: S302
    except (EOFError, ValueError, TypeError):
        return None
    return codes if isinstance(codes, dict) else None


def store_cached(spec, codes):
    """Keep ``codes`` under ``spec`` for the next run; never fails the run."""
    where = _cache_path(spec)
    if where is None:
        return
    directory, path = where
    if not _write_private(directory, path, CACHE_MAGIC, marshal.dumps(codes)):
        return
    suffix = "-%s.code" % _cache_tag()
    try:
        stale = [name for name in os.listdir(directory)
                 if name.endswith(suffix) and name != os.path.basename(path)]
        for name in stale:  # older payloads for this Python
            os.unlink(os.path.join(directory, name))
    except OSError:
        pass


def _versions_path(spec):
    """(directory, file) of the tools' versions beside the code cache, or None."""
    where = _cache_path(spec)
    return (where[0], os.path.join(where[0], VERSIONS_FILE)) if where else None


def load_versions(spec):
    """The tools' ``--version`` texts kept in the cache directory (see
    ``hostside/tool_versions.py``), or None."""
    where = _versions_path(spec)
    body = _read_private(where[0], where[1], VERSIONS_MAGIC) if where else None
    if body is None:
        return None
    try:
        entries = json.loads(body.decode("utf-8"))
    except ValueError:
        return None
    return entries if isinstance(entries, dict) else None


def store_versions(spec, memo):
    """Keep the texts this run used, when they differ from those it found."""
    where = _versions_path(spec)
    if where is None or not memo.changed():
        return
    _write_private(where[0], where[1], VERSIONS_MAGIC,
                   json.dumps(memo.used, sort_keys=True).encode("utf-8"))


def load_codes(payload, cache):
    """The collector's code objects: from the cache, else compiled (and kept)."""
    codes = load_cached(cache) if cache else None
    if codes is None:
        codes = compile_sources(unpack(payload))
        if cache:
            store_cached(cache, codes)
    return codes


class MemoryImporter(object):
    """Imports ``memcg_fix_host.*`` from code objects held in memory.

    Python 2.7 asks ``find_module``/``load_module`` (PEP 302); Python 3.4+
    asks ``find_spec``/``exec_module`` (PEP 451; 3.12 no longer asks the
    former).
    """

    def __init__(self, codes):
        self.codes = codes

    def _known(self, name):
        return name == PACKAGE or name in self.codes

    def _execute(self, module):
        name = module.__name__
        module.__file__ = module_file(name)
        if name == PACKAGE:
            module.__path__ = []
            module.__package__ = PACKAGE
            return
        module.__package__ = PACKAGE
        exec(self.codes[name], module.__dict__)  # noqa: S102 - the shipped collector, as an import would

    # PEP 302, Python 2.7
    def find_module(self, name, path=None):
        return self if self._known(name) else None

    def load_module(self, name):
        if name in sys.modules:
            return sys.modules[name]
        import imp  # novermin - Python 2 only; Python 3 uses exec_module

        module = imp.new_module(name)
        module.__loader__ = self
        sys.modules[name] = module
        try:
            self._execute(module)
        except BaseException:
            del sys.modules[name]
            raise
        return module

    # PEP 451, Python 3.4+
    def find_spec(self, name, path=None, target=None):
        if not self._known(name):
            return None
        # only Python 3 asks find_spec; 2.7 has no ModuleSpec
        from importlib.machinery import ModuleSpec  # novermin

        return ModuleSpec(name, self, is_package=name == PACKAGE)

    def create_module(self, spec):
        return None

    def exec_module(self, module):
        self._execute(module)


def collect_document(payload, root, cache=""):
    """What the ``memcg_facts`` module returns, collected by the shipped code."""
    sys.meta_path.insert(0, MemoryImporter(load_codes(payload, cache)))
    collect = __import__(PACKAGE + ".collect", fromlist=["collect"]).collect
    reader_module = __import__(PACKAGE + ".reader", fromlist=["LiveReader"])
    # as the module's option of type "path": ~ and $VARS expanded on the host
    root = os.path.expanduser(os.path.expandvars(root))
    versions = None
    if root in ("", "/"):
        reader = reader_module.LiveReader()
        if cache:
            memo = __import__(PACKAGE + ".tool_versions", fromlist=["VersionMemo"]).VersionMemo
            versions = memo(load_versions(cache))
    else:
        reader = reader_module.RootReader(root)
    result = collect(reader, versions)
    if versions is not None:
        store_versions(cache, versions)
    return {"schema_version": SCHEMA_VERSION, "facts": result["facts"],
            "unknown": result["unknown"]}


def main(argv):
    if len(argv) not in (3, 4):
        sys.stdout.write(ERROR_MARK + "usage: python -c BOOTSTRAP PAYLOAD ROOT [CACHE]\n")
        return 1
    try:
        document = collect_document(argv[1], argv[2], argv[3] if len(argv) == 4 else "")
        text = json.dumps(document, sort_keys=True)
    except Exception as exc:  # the controller needs the reason, not a traceback
        reason = " ".join(("%s: %s" % (type(exc).__name__, exc)).split())
        sys.stdout.write(ERROR_MARK + reason[:500] + "\n")
        return 1
    sys.stdout.write(FACTS_MARK + text + "\n")
    sys.stdout.flush()
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv))
