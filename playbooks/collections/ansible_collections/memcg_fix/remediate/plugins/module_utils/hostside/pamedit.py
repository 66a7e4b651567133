"""Rewriting pam_lastlog session lines so they stop writing wtmp/lastlog.

Runs on the target's own Python (2.7, 3.6+), stdlib only. Reading PAM files
is :mod:`pam`'s job; this module only rewrites, line by line, leaving every
other byte as it was.

Methods (a policy parameter of the ``pam-lastlog`` mitigation):

* ``noupdate``: add ``noupdate`` (pam_lastlog(8): "Don't update any file",
  neither lastlog nor wtmp); the last-login message is still shown;
* ``nowtmp``: add ``nowtmp`` (stops wtmp only; lastlog is still written);
* ``comment``: the line is kept as a comment, and the rule itself becomes
  ``pam_permit.so`` with the same type and control (no message, no writes).

Why ``comment`` does not just put a ``#`` in front: a jump such as
``[success=1 default=ignore]`` or ``[default=1]`` skips the next N *rules*
of the stack (pam.conf(5), "actions": "jump over the next N modules in the
stack"), and a comment is no rule. The stock postlogin of authselect and of
authconfig has::

    session [success=1 default=ignore] pam_succeed_if.so service !~ gdm* service !~ su* quiet
    session [default=1]                pam_lastlog.so nowtmp showfailed
    session optional                   pam_lastlog.so silent noupdate showfailed

Removing the middle rule makes the jump of the first one skip the last one,
so sshd and login lose ``showfailed``; and the middle rule's own
``default=1`` would no longer skip the last one for gdm and su. pam_permit
(which only returns PAM_SUCCESS) under the same control keeps every jump
where it was: rules keep their count and position.

The same function rewrites authselect profile templates, whose lines may
carry ``{if "feature":...}`` operators: we only append a word, or (comment)
keep the line-level ``{include if ...}``/``{exclude if ...}`` operators on
the replacement rule, so authselect keeps or drops both lines together.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

from .pam import parse_pam_lines

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Dict, List, Optional  # noqa: F401 # novermin

METHODS = ("noupdate", "nowtmp", "comment")
COMMENT_PREFIX = "# disabled by memcg-fix: "
PERMIT = "pam_permit.so"
# type, control (a [...] list or one word) and module of a rule line
_RULE = re.compile(r"^(\s*-?\w+\s+)(\[[^\]]*\]|[^\s{]+)(\s+)(\S+)")
# authselect operators that keep or drop the whole line
_LINE_OPERATOR = re.compile(r"\{(?:include|exclude) if [^{}]*\}")


class RewriteError(ValueError):
    """A line cannot be rewritten safely; one-line reason."""


def _rule_of(line):
    # type: (str) -> Optional[Dict[str, Any]]
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
    # type: (str, str) -> bool
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


def _disabled(body):
    # type: (str) -> str
    """``body`` (a pam_lastlog rule) as pam_permit.so with the same type and control."""
    match = _RULE.match(body)
    if not match or match.group(4).rsplit("/", 1)[-1] != "pam_lastlog.so":
        raise RewriteError("cannot disable this PAM line without moving a jump, use method "
                           "noupdate: %s" % body.strip())
    if body.endswith("\\"):
        # a "#" line ending in a backslash would not hide the continuation
        raise RewriteError("cannot comment out a PAM rule continued on the next line, use "
                           "method noupdate: %s" % body.strip())
    operators = _LINE_OPERATOR.findall(body[match.end():])
    rule = match.group(1) + match.group(2) + match.group(3) + PERMIT
    return rule + "".join(" " + operator for operator in operators)


def rewrite(text, method):
    # type: (str, str) -> str
    """``text`` with each writing pam_lastlog session line fixed by ``method``.

    >>> rewrite("session required pam_lastlog.so showfailed\\n", "noupdate")
    'session required pam_lastlog.so showfailed noupdate\\n'
    >>> rewrite("session [default=1] pam_lastlog.so nowtmp showfailed\\n", "nowtmp")
    'session [default=1] pam_lastlog.so nowtmp showfailed\\n'
    >>> print(rewrite("session [default=1] pam_lastlog.so nowtmp showfailed\\n", "comment"))
    # disabled by memcg-fix: session [default=1] pam_lastlog.so nowtmp showfailed
    session [default=1] pam_permit.so
    <BLANKLINE>
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
            rule = _disabled(body)
            out.append(COMMENT_PREFIX + body + (ending or "\n"))
            out.append(rule + ending)
            continue
        word = "noupdate" if method == "noupdate" else "nowtmp"
        if body.endswith("\\"):  # a continued rule: the word goes before the backslash
            out.append(body[:-1].rstrip() + " " + word + " \\" + ending)
        else:
            out.append(body.rstrip() + " " + word + ending)
    return "".join(out)


def writing_lines(text, method):
    # type: (str, str) -> List[str]
    """The lines :func:`rewrite` would change."""
    return [line for line in text.splitlines() if line_writes(line, method)]
