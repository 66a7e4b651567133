# -*- coding: utf-8 -*-
# Part of memcg-fix. Runs on the target's own Python (2.7, 3.6+).
"""What every memcg_fix.remediate module shares: the Ansible side.

The host-side package (``hostside``) is shared with the memcg-fix controller
and knows nothing of Ansible. This is the thin layer between it and
``AnsibleModule`` that each module used to carry a copy of: one failure type,
reading a file that may be missing, running a command, a diff entry, and one
way to end a run (a one-line error, never a traceback).
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.fileio import (
    SourceError,
    read_text,
    run_command,
)
from ansible_collections.memcg_fix.remediate.plugins.module_utils.hostside.safeedit import EditError

# how much of a failed command's stderr a message quotes
STDERR_CHARS = 400


class ModuleFailure(Exception):
    """Stops the module with this one-line message; ``result`` goes into the failed result."""

    def __init__(self, msg, **result):
        super(ModuleFailure, self).__init__(msg)
        self.result = result


# Errors whose text is already the one-line reason a user reads.
ONE_LINE_ERRORS = (ModuleFailure, SourceError, EditError)


def one_line(text, limit=STDERR_CHARS):
    """``text`` on one line (whitespace and newlines folded), at most ``limit`` characters."""
    return " ".join(str(text).split())[:limit]


def read_optional(path):
    """The text of ``path``, or None when it is missing or unreadable."""
    try:
        return read_text(path)
    except SourceError:
        return None


def run(argv, timeout):
    """``(rc, stdout, stderr)`` of ``argv``; ModuleFailure when it cannot run or times out."""
    try:
        return run_command(argv, timeout=timeout)
    except SourceError as exc:
        raise ModuleFailure(str(exc))


def command_output(argv, timeout):
    """The stdout of ``argv``; ModuleFailure (quoting its stderr) unless it exits 0."""
    rc, out, err = run(argv, timeout)
    if rc != 0:
        raise ModuleFailure("%s failed (rc=%s): %s" % (" ".join(argv), rc, one_line(err)))
    return out


def file_diff(header, before, after):
    """One entry of a module's ``diff`` (what ``--diff`` shows) for ``header``."""
    return {"before_header": header, "after_header": header, "before": before, "after": after}


def finish(module, work):
    """End the run with ``work()``'s result dict, or fail with the one-line reason it raised."""
    try:
        result = work()
    except ONE_LINE_ERRORS as exc:
        module.fail_json(msg=one_line(exc, limit=2000), **getattr(exc, "result", {}))
    module.exit_json(**result)
