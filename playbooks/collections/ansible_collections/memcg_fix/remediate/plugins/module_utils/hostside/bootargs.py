"""Editing kernel boot arguments: pure text transformations.

Runs on the target's own Python (2.7, 3.6+), stdlib only. The Ansible module
``memcg_kernel_args`` uses these to compute the "after" state (also in check
mode, where nothing is run) and to edit the files grubby leaves alone.

Reading boot entries is :mod:`boot`'s job; this module only rewrites.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Callable, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

# GRUB_CMDLINE_LINUX="..." / '...' / bare, optionally after "export "
_ASSIGNMENT = re.compile(
    r"^(?P<lead>\s*(?:export\s+)?)(?P<name>[A-Za-z_][A-Za-z0-9_]*)=(?P<value>.*)$")


def tokens(text):
    # type: (str) -> List[str]
    """Split a kernel command line into arguments, keeping their quotes.

    Unlike :func:`cmdline.split_args` (what the kernel sees), this keeps
    ``foo="a b"`` as written, so that rewriting a line changes only the
    argument we add or remove.

    >>> tokens('ro root=/dev/vda1 foo="a b" quiet')
    ['ro', 'root=/dev/vda1', 'foo="a b"', 'quiet']
    """
    args = []
    current = []
    quoted = False
    for char in text or "":
        if char == '"':
            quoted = not quoted
            current.append(char)
        elif char in " \t\n" and not quoted:
            if current:
                args.append("".join(current))
                current = []
        else:
            current.append(char)
    if current:
        args.append("".join(current))
    return args


def has_arg(args_text, arg):
    # type: (str, str) -> bool
    """True when ``arg`` (exactly, e.g. ``cgroup.memory=nokmem``) is present."""
    return arg in tokens(args_text)


def add_arg(args_text, arg):
    # type: (str, str) -> str
    """``args_text`` with ``arg`` appended unless it is already there."""
    args = tokens(args_text)
    if arg in args:
        return args_text
    return " ".join(args + [arg])


def remove_arg(args_text, arg):
    # type: (str, str) -> str
    """``args_text`` without any exact occurrence of ``arg``."""
    args = tokens(args_text)
    if arg not in args:
        return args_text
    return " ".join(a for a in args if a != arg)


def _unquote_shell(value):
    # type: (str) -> Tuple[Optional[str], Optional[str]]
    """The value of a simple shell assignment's right-hand side.

    Handles the forms found in /etc/default/grub: "double", 'single' and bare
    words. Returns (value, quote_char) or (None, None) for anything more
    complex (command substitution, concatenations), which we refuse to edit.
    """
    value = value.strip()
    if not value:
        return "", '"'
    if len(value) >= 2 and value[0] == value[-1] and value[0] in "\"'":
        inner = value[1:-1]
        if value[0] == '"' and ('"' in inner.replace('\\"', "") or "`" in inner or "$(" in inner):
            return None, None
        if value[0] == "'" and "'" in inner:
            return None, None
        return inner, value[0]
    if re.match(r"^[A-Za-z0-9_./=,:+-]+$", value):
        return value, '"'
    return None, None


def shell_assignment_value(text, name):
    # type: (str, str) -> Optional[str]
    """The value of the last ``name=...`` line of ``text`` (unquoted), or None.

    >>> shell_assignment_value('A=1\\nGRUB_CMDLINE_LINUX="ro quiet"\\n', "GRUB_CMDLINE_LINUX")
    'ro quiet'
    """
    value = None
    for line in text.splitlines():
        match = _ASSIGNMENT.match(line)
        if match and match.group("name") == name:
            value = _unquote_shell(match.group("value"))[0]
    return value


def edit_shell_assignment(text, name, transform):
    # type: (str, str, Callable[[str], str]) -> str
    """Rewrite the last ``name=...`` assignment in ``text`` with ``transform(value)``.

    Only that line changes; comments, order and the other variables stay
    byte for byte. When ``name`` is not assigned, a line is appended. Raises
    ValueError for a value too complex to edit safely.
    """
    lines = text.splitlines(True)
    index = None
    for position, line in enumerate(lines):
        match = _ASSIGNMENT.match(line.rstrip("\r\n"))
        if match and match.group("name") == name:
            index = position
    if index is None:
        new_value = transform("")
        suffix = "" if not text or text.endswith("\n") else "\n"
        return text + suffix + '%s="%s"\n' % (name, new_value)
    line = lines[index]
    ending = line[len(line.rstrip("\r\n")):]
    match = _ASSIGNMENT.match(line.rstrip("\r\n"))
    if match is None:  # pragma: no cover - the line was found by this pattern
        raise ValueError("%s: cannot parse %s" % (name, line.strip()))
    value, quote = _unquote_shell(match.group("value"))
    if value is None:
        raise ValueError("%s is assigned a value too complex to edit safely: %s"
                         % (name, line.strip()))
    new_value = transform(value)
    if new_value == value:
        return text
    if quote == "'" and "'" in new_value:
        quote = '"'
    lines[index] = "%s%s=%s%s%s%s" % (match.group("lead"), name, quote, new_value, quote, ending)
    return "".join(lines)


DROPIN_HEADER = (
    "# Managed by memcg-fix: do not edit. It appends to GRUB_CMDLINE_LINUX so that\n"
    "# every boot entry, recovery ones included, gets the argument below. It is\n"
    "# read after /etc/default/grub and the cloud image's own drop-ins.\n"
    "# To undo: memcg-fix rollback, or remove this file and run update-grub.\n"
)


def dropin_text(args):
    # type: (Sequence[str]) -> str
    """The content of /etc/default/grub.d/99-memcg-fix.cfg for ``args``."""
    return DROPIN_HEADER + 'GRUB_CMDLINE_LINUX="${GRUB_CMDLINE_LINUX} %s"\n' % " ".join(args)
