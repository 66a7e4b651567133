"""Which PAM session lines run for a service: Linux-PAM's control flow, evaluated.

A pam_lastlog line in /etc/pam.d/postlogin writes nothing for sshd when the
line before it jumps over it: the stock EL postlogin (authconfig on EL7,
authselect's sssd profile on EL8/9) has

    session [success=1 default=ignore] pam_succeed_if.so service !~ gdm* service !~ su* quiet
    session [default=1]                pam_lastlog.so nowtmp showfailed
    session optional                   pam_lastlog.so silent noupdate showfailed

so sshd and login reach only the ``noupdate`` line, while su and gdm run the
writing one. This module walks a service's ``session`` stack as libpam does
(pam.conf(5), libpam's pam_dispatch.c):

* ``include`` and Debian's ``@include`` insert the other file's lines in
  place, so a jump counts across them; ``substack`` runs the other file as a
  stack of its own, whose ``done``/``die`` and jumps end inside it;
* ``required``, ``requisite``, ``sufficient`` and ``optional`` are their
  ``[value=action]`` equivalents; an action ``N`` skips the next N lines,
  ``done`` and ``die`` end the stack;
* every module returns success, except ``pam_succeed_if``, whose conditions on
  ``service`` are evaluated for the service asked about; a condition on
  anything else (user, uid, rhost...) is not known here, so both outcomes are
  followed, and a line reached on some paths only is reported as such.

Besides whether a pam_lastlog line runs, the walk records whether
``pam_systemd`` ran before it: pam_systemd moves the process into the new
session's scope, so a write after it is charged to the session's memcg.

Runs on the target's own Python (2.7, 3.6+), stdlib only. Bounded: at most
``MAX_DEPTH`` nested files, ``MAX_RULES`` lines, ``MAX_PATHS`` paths,
``MAX_STEPS`` lines walked in all and ``MAX_NESTING`` open branches (beyond
them the answer is "sometimes").
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import fnmatch

from .pam import parse_pam_lines

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Callable, Dict, Iterator, List, Optional, Sequence, Tuple  # noqa: F401 # novermin

    # what a path has run so far, newest first: (entry, the rest) or None
    Ran = Tuple[Dict[str, Any], Any]

MAX_DEPTH = 16  # libpam's own substack limit (PAM_SUBSTACK_MAX_LEVEL)
MAX_RULES = 2000
MAX_PATHS = 256
MAX_STEPS = 50000  # lines stepped over, all paths together; real stacks need a few hundred
MAX_NESTING = 64  # branches and substacks open at once (each is a level of recursion)

# pam.conf(5): the historical keywords as [value=action] lists
_KEYWORDS = {
    "required": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore", "default": "bad"},
    "requisite": {"success": "ok", "new_authtok_reqd": "ok", "ignore": "ignore",
                  "default": "die"},
    "sufficient": {"success": "done", "new_authtok_reqd": "done", "default": "ignore"},
    "optional": {"success": "ok", "new_authtok_reqd": "ok", "default": "ignore"},
}
_SUCCEED_IF_FLAGS = ("debug", "use_uid", "quiet", "quiet_fail", "quiet_success", "audit")
SERVICES = ("sshd", "login", "su", "gdm-password")


class PamStackError(Exception):
    """The stack cannot be walked (a cycle, too deep, too large); one-line reason."""


def _actions(control):
    # type: (str) -> Optional[Dict[str, Any]]
    """``{value: action}`` of a control field (``required`` or ``[success=1 default=ignore]``)."""
    if control in _KEYWORDS:
        return _KEYWORDS[control]
    if control.startswith("[") and control.endswith("]"):
        actions = {}
        for item in control[1:-1].split():
            value, _sep, action = item.partition("=")
            if value and action:
                actions[value.lower()] = action.lower()
        return actions
    return None


def _action_for(actions, result):
    # type: (Dict[str, Any], str) -> Any
    return actions.get(result, actions.get("default", "ignore"))


def load(read, service, kind="session"):
    # type: (Callable[[str], Optional[str]], str, str) -> List[Dict[str, Any]]
    """The ``kind`` stack of ``service``: a list of entries, each
    ``{"file", "module", "args", "actions"}`` or ``{"file", "substack": [...]}``.

    ``read(name)`` returns the text of /etc/pam.d/<name> (``name`` may be an
    absolute path) or None when it does not exist. Raises PamStackError.
    """
    counter = [0]
    return _load(read, service, kind, (), counter)


def _load(read, name, kind, chain, counter):
    # type: (Callable[[str], Optional[str]], str, str, Tuple[str, ...], List[int]) -> List[Dict[str, Any]]
    if len(chain) >= MAX_DEPTH:
        raise PamStackError("PAM files nest deeper than %d: %s" % (MAX_DEPTH, " -> ".join(chain)))
    if name in chain:
        raise PamStackError("PAM files include each other: %s -> %s" % (" -> ".join(chain), name))
    text = read(name)
    if text is None:
        if chain:  # a missing included file: libpam logs it and goes on
            return []
        raise PamStackError("/etc/pam.d/%s does not exist" % name)
    chain = chain + (name,)
    stack = []
    for rule in parse_pam_lines(text):
        counter[0] += 1
        if counter[0] > MAX_RULES:
            raise PamStackError("more than %d PAM lines below %s" % (MAX_RULES, chain[0]))
        if rule["type"] == "@include":
            if rule["module"]:
                stack.extend(_load(read, rule["module"], kind, chain, counter))
            continue
        if rule["type"] != kind:
            continue
        control = rule["control"]
        if control in ("include", "substack"):
            # relative to /etc/pam.d (parse_pam_lines keeps the last path component)
            nested = _load(read, rule["module"], kind, chain, counter)
            if control == "include":
                stack.extend(nested)
            else:
                stack.append({"file": name, "substack": nested})
            continue
        actions = _actions(control)
        if actions is None:
            continue  # libpam ignores a line whose control it cannot parse
        stack.append({"file": name, "module": rule["module"], "args": rule["args"],
                      "actions": actions})
    return stack


def succeed_if(args, service):
    # type: (Sequence[str], str) -> Optional[bool]
    """pam_succeed_if's verdict for ``service``: True, False or None (unknown).

    >>> succeed_if(["service", "!~", "gdm*", "service", "!~", "su*", "quiet"], "sshd")
    True
    >>> succeed_if(["service", "!~", "gdm*", "service", "!~", "su*", "quiet"], "su-l")
    False
    >>> succeed_if(["uid", ">=", "1000", "quiet_success"], "sshd") is None
    True
    """
    words = [w for w in args if w not in _SUCCEED_IF_FLAGS]
    verdict = True  # type: Optional[bool]
    for start in range(0, len(words) - len(words) % 3, 3):
        field, op, value = words[start:start + 3]
        holds = _service_condition(service, op, value) if field == "service" else None
        if holds is False:
            return False  # the conditions are ANDed: one false settles it
        if holds is None:
            verdict = None
    return verdict


def _service_condition(service, op, value):
    # type: (str, str, str) -> Optional[bool]
    if op in ("=", "eq"):
        return service == value
    if op in ("!=", "ne"):
        return service != value
    if op == "=~":
        return fnmatch.fnmatchcase(service, value)
    if op == "!~":
        return not fnmatch.fnmatchcase(service, value)
    if op == "in":
        return service in value.split(":")
    if op == "notin":
        return service not in value.split(":")
    return None


def walk(stack, service):
    # type: (List[Dict[str, Any]], str) -> Tuple[List[List[Dict[str, Any]]], bool]
    """Every path through ``stack`` for ``service``.

    Returns ``(paths, complete)``: each path is the list of entries run, in
    order; ``complete`` is False when more than MAX_PATHS paths exist (the
    rest were not followed).
    """
    paths = []  # type: List[List[Dict[str, Any]]]
    state = {"complete": True, "steps": 0, "nesting": 0}  # type: Dict[str, Any]
    _walk(stack, 0, None, service, paths, state, lambda done: paths.append(_unwind(done)))
    return paths, state["complete"]


def _unwind(ran):
    # type: (Optional[Ran]) -> List[Dict[str, Any]]
    """The entries of the cons list ``ran`` (``(entry, rest)`` or None), first run first."""
    entries = []
    while ran is not None:
        entry, ran = ran
        entries.append(entry)
    entries.reverse()
    return entries


def _walk(stack, index, ran, service, paths, state, finish):
    # type: (List[Dict[str, Any]], int, Optional[Ran], str, List[List[Dict[str, Any]]], Dict[str, Any], Callable[[Optional[Ran]], None]) -> None
    """Run ``stack`` from ``index`` with ``ran`` so far (a cons list, so that a
    step copies nothing); call ``finish(ran)`` per path."""
    while index < len(stack):
        state["steps"] += 1
        if len(paths) >= MAX_PATHS or state["steps"] > MAX_STEPS \
                or state["nesting"] > MAX_NESTING:
            state["complete"] = False
            return
        entry = stack[index]
        if "substack" in entry:
            # the substack ends on its own; the caller carries on after it
            def after(sub_ran, index=index):
                # type: (Optional[Ran], int) -> None
                _walk(stack, index + 1, sub_ran, service, paths, state, finish)
            state["nesting"] += 1
            _walk(entry["substack"], 0, ran, service, paths, state, after)
            state["nesting"] -= 1
            return
        outcomes = ["success"]
        if entry["module"] == "pam_succeed_if.so":
            verdict = succeed_if(entry["args"], service)
            outcomes = ["success"] if verdict else ["auth_err"] if verdict is False \
                else ["success", "auth_err"]
        ran = (entry, ran)
        if len(outcomes) > 1:
            state["nesting"] += 1
            for outcome in outcomes:
                following = _next(stack, index, entry, outcome)
                if following is None:
                    finish(ran)
                else:
                    _walk(stack, following, ran, service, paths, state, finish)
            state["nesting"] -= 1
            return
        following = _next(stack, index, entry, outcomes[0])
        if following is None:
            break
        index = following
    finish(ran)


def _next(stack, index, entry, outcome):
    # type: (List[Dict[str, Any]], int, Dict[str, Any], str) -> Optional[int]
    """The index run after ``entry`` returned ``outcome``; None ends the stack."""
    action = _action_for(entry["actions"], outcome)
    if action in ("done", "die"):
        return None
    if action.isdigit():
        return index + 1 + int(action)
    return index + 1


def lastlog_for(read, service):
    # type: (Callable[[str], Optional[str]], str) -> Dict[str, Any]
    """What pam_lastlog does in ``service``'s session stack.

    ``{service, lines: [{file, args, runs, after_pam_systemd, writes_wtmp,
    writes_lastlog}], writes_wtmp, writes_lastlog, writes_in_session, error}``
    where ``runs`` is ``always``, ``sometimes`` or ``never`` (on the paths
    libpam can take; ``unknown`` when the walk reached its bounds first) and
    the ``writes_*`` are True, False or None (only on some paths).
    ``writes_in_session`` is about writes made after pam_systemd moved the
    process into the session's scope (charged to its memcg).
    """
    result = {"service": service, "lines": [], "writes_wtmp": None, "writes_lastlog": None,
              "writes_in_session": None, "error": None}  # type: Dict[str, Any]
    try:
        stack = load(read, service)
    except PamStackError as exc:
        result["error"] = str(exc)
        return result
    paths, complete = walk(stack, service)
    seen = [entry for entry in _entries(stack)
            if entry.get("module") in ("pam_lastlog.so", "pam_lastlog2.so")]
    # per path: where each entry ran, and where pam_systemd first ran (one pass
    # over each path, so many pam_lastlog lines cost no more than a few)
    positions = [_positions(path) for path in paths]
    for entry in seen:
        hits = [(where, systemd) for where, systemd in positions if id(entry) in where]
        if not hits:  # on no path walked: never, unless the walk stopped at its bounds
            runs = "never" if complete else "unknown"
        else:
            runs = "always" if len(hits) == len(paths) and complete else "sometimes"
        scoped = [systemd is not None and systemd < where[id(entry)] for where, systemd in hits]
        after = None if not scoped or (any(scoped) and not all(scoped)) else scoped[0]
        lastlog2 = entry["module"] == "pam_lastlog2.so"
        args = entry["args"]
        result["lines"].append({
            "file": entry["file"], "module": entry["module"], "args": args, "runs": runs,
            "after_pam_systemd": after,
            "writes_wtmp": not lastlog2 and "nowtmp" not in args and "noupdate" not in args,
            "writes_lastlog": "noupdate" not in args,
        })
    for key in ("writes_wtmp", "writes_lastlog"):
        result[key] = _verdict([(line["runs"], line[key]) for line in result["lines"]])
    result["writes_in_session"] = _verdict([
        (line["runs"], (line["writes_wtmp"] or line["writes_lastlog"])
         and line["after_pam_systemd"] is not False)
        for line in result["lines"]])
    return result


def _verdict(pairs):
    # type: (Sequence[Tuple[str, Optional[bool]]]) -> Optional[bool]
    """True if a line that writes always runs; False if none can; else None."""
    if any(runs == "always" and writes for runs, writes in pairs):
        return True
    if any(runs in ("sometimes", "unknown") and writes for runs, writes in pairs):
        return None
    return False


def _entries(stack):
    # type: (List[Dict[str, Any]]) -> Iterator[Dict[str, Any]]
    for entry in stack:
        if "substack" in entry:
            for inner in _entries(entry["substack"]):
                yield inner
        else:
            yield entry


def _positions(path):
    # type: (List[Dict[str, Any]]) -> Tuple[Dict[int, int], Optional[int]]
    """``({id(entry): first index in path}, index of the first pam_systemd or None)``."""
    where = {}  # type: Dict[int, int]
    systemd = None
    for index, ran in enumerate(path):
        where.setdefault(id(ran), index)
        if systemd is None and ran.get("module") == "pam_systemd.so":
            systemd = index
    return where, systemd
