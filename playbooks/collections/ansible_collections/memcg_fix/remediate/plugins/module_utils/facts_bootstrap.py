# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+): stdlib only.
"""Run the host-side collector from a compressed copy, in one process.

The ``memcg_facts_raw`` action runs this file's text with the target's
Python, in the one shell command it sends to the host::

    PYTHON -E -S -c "<this file>" PAYLOAD ROOT

or, where the connection carries stdin (the usual case), with a one-line
``-c`` stub that reads ``PAYLOAD`` and this file from stdin and runs it the
same way, so that the command (which sudo logs) stays short.

``PAYLOAD`` is base64 of zlib of ``name NUL source NUL name NUL source ...``:
the modules of ``plugins/module_utils/hostside`` that the collector imports.
They are imported from memory as the package ``memcg_fix_host`` (the
collector only uses relative imports), so nothing is written on the host: a
read-only or ``noexec`` /tmp, or no writable directory at all, does not
matter, and nothing is left behind.

It prints one line, ``MEMCG-FIX-FACTS {json}`` with what the ``memcg_facts``
module returns (``schema_version``, ``facts``, ``unknown``), or
``MEMCG-FIX-ERROR reason`` and exits 1. Everything else a login shell may
print (a banner, a warning) is ignored by the controller.
"""

from __future__ import absolute_import, division, print_function

import base64
import json
import os
import sys
import zlib

__metaclass__ = type

PACKAGE = "memcg_fix_host"
FACTS_MARK = "MEMCG-FIX-FACTS "
ERROR_MARK = "MEMCG-FIX-ERROR "
SCHEMA_VERSION = 1


def unpack(payload):
    """``{module name: source bytes}`` from a payload string."""
    parts = zlib.decompress(base64.b64decode(payload)).split(b"\0")
    sources = {}
    for index in range(0, len(parts) - 1, 2):
        name = parts[index].decode("ascii")
        sources[PACKAGE + "." + name] = parts[index + 1]
    return sources


class MemoryImporter(object):
    """Imports ``memcg_fix_host.*`` from sources held in memory.

    Python 2.7 asks ``find_module``/``load_module`` (PEP 302); Python 3.4+
    asks ``find_spec``/``exec_module`` (PEP 451; 3.12 no longer asks the
    former).
    """

    def __init__(self, sources):
        self.sources = sources

    def _known(self, name):
        return name == PACKAGE or name in self.sources

    def _execute(self, module):
        name = module.__name__
        module.__file__ = "<memcg-fix>/%s.py" % name.replace(".", "/")
        if name == PACKAGE:
            module.__path__ = []
            module.__package__ = PACKAGE
            return
        module.__package__ = PACKAGE
        code = compile(self.sources[name], module.__file__, "exec", 0, True)
        exec(code, module.__dict__)  # noqa: S102 - the shipped collector, as an import would

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


def collect_document(payload, root):
    """What the ``memcg_facts`` module returns, collected by the shipped code."""
    sys.meta_path.insert(0, MemoryImporter(unpack(payload)))
    collect = __import__(PACKAGE + ".collect", fromlist=["collect"]).collect
    reader_module = __import__(PACKAGE + ".reader", fromlist=["LiveReader"])
    # as the module's option of type "path": ~ and $VARS expanded on the host
    root = os.path.expanduser(os.path.expandvars(root))
    if root in ("", "/"):
        reader = reader_module.LiveReader()
    else:
        reader = reader_module.RootReader(root)
    result = collect(reader)
    return {"schema_version": SCHEMA_VERSION, "facts": result["facts"],
            "unknown": result["unknown"]}


def main(argv):
    if len(argv) != 3:
        sys.stdout.write(ERROR_MARK + "usage: python -c BOOTSTRAP PAYLOAD ROOT\n")
        return 1
    try:
        document = collect_document(argv[1], argv[2])
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
