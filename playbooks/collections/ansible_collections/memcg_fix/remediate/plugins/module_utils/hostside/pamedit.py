"""Rewriting pam_lastlog session lines so they stop writing wtmp/lastlog.

Runs on the target's own Python (2.7, 3.6+), stdlib only. Reading PAM files
is :mod:`pam`'s job; this module only rewrites, line by line, leaving every
other byte as it was.

Methods (a policy parameter of the ``pam-lastlog`` mitigation):

* ``noupdate``: add ``noupdate`` (pam_lastlog(8): "Don't update any file",
  neither lastlog nor wtmp); the last-login message is still shown;
* ``nowtmp``: add ``nowtmp`` (stops wtmp only; lastlog is still written);
* ``comment``: comment the line out (no message, no writes).

The same function rewrites authselect profile templates, whose lines may
carry ``{if "feature":...}`` operators: we only ever append a word or prefix
a ``#``, so the operators are kept intact.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

from .pam import parse_pam_lines

METHODS = ("noupdate", "nowtmp", "comment")
COMMENT_PREFIX = "# disabled by memcg-fix: "


def _rule_of(line):
    """The parsed session rule on ``line`` (template operators removed), or None."""
    plain = line
    while "{" in plain and "}" in plain[plain.index("{"):]:
        start = plain.index("{")
        end = plain.index("}", start)
        plain = plain[:start] + plain[end + 1:]
    rules = parse_pam_lines(plain)
    if len(rules) != 1 or rules[0]["type"] != "session":
        return None
    if rules[0]["module"] != "pam_lastlog.so":
        return None
    return rules[0]


def line_writes(line, method):
    """True when this line writes what ``method`` is meant to stop."""
    rule = _rule_of(line)
    if rule is None:
        return False
    args = rule["args"]
    if "noupdate" in args:
        return False
    if method == "nowtmp":
        return "nowtmp" not in args
    return True


def rewrite(text, method):
    """``text`` with each writing pam_lastlog session line fixed by ``method``.

    >>> rewrite("session required pam_lastlog.so showfailed\\n", "noupdate")
    'session required pam_lastlog.so showfailed noupdate\\n'
    >>> rewrite("session [default=1] pam_lastlog.so nowtmp showfailed\\n", "nowtmp")
    'session [default=1] pam_lastlog.so nowtmp showfailed\\n'
    >>> rewrite("session optional pam_lastlog.so\\n", "comment")
    '# disabled by memcg-fix: session optional pam_lastlog.so\\n'
    """
    if method not in METHODS:
        raise ValueError("unknown method %r; expected one of %s" % (method, ", ".join(METHODS)))
    out = []
    for line in text.splitlines(True):
        body = line.rstrip("\r\n")
        ending = line[len(body):]
        if not line_writes(body, method):
            out.append(line)
            continue
        if method == "comment":
            out.append(COMMENT_PREFIX + body + ending)
        else:
            word = "noupdate" if method == "noupdate" else "nowtmp"
            out.append(body.rstrip() + " " + word + ending)
    return "".join(out)


def writing_lines(text, method):
    """The lines :func:`rewrite` would change."""
    return [line for line in text.splitlines() if line_writes(line, method)]
