"""Version ordering: the one comparator of memcg-fix, controller and hosts alike.

``compare(a, b, scheme)`` returns -1, 0 or 1. It runs on the target's own
Python (2.7, 3.6+) inside the modules and on the controller
(``remediate.versions`` is a thin wrapper), so a plan and the host that
carries it out can never order two versions differently.

* ``rpm``: rpm's own algorithm. ``rpmvercmp()`` of rpm's lib/rpmvercmp.c
  (segments of ASCII digits or letters, numbers newer than letters, ``~``
  sorting before anything, ``^`` after the end but before more segments),
  applied to ``[epoch:]version[-release]`` split as lib/rpmds.c ``parseEVR()``
  does it (the epoch is the leading digits before ``:``, the release starts
  after the last ``-``) and compared as lib/rpmver.c ``rpmverCmp()`` does:
  a missing epoch is 0, and a missing release sorts before any release.
* ``dpkg``: dpkg's ``verrevcmp()`` of lib/dpkg/version.c (Debian policy
  5.6.12: ``~`` before everything, letters before other characters, digit
  runs compared as numbers) on epoch, upstream version and revision as
  ``parseversion()`` splits them (the revision starts after the last ``-``).
  What ``parseversion()`` refuses is refused here too (:func:`dpkg_problem`).
* ``upstream``: dotted numbers with an optional pre-release tail, as runc
  and the kernel spell their releases: ``1.0.0-rc94``, ``1.0.0_rc94``,
  ``1.0.0~rc94``, ``v1.1.12``, ``6.1.0-18-amd64`` (read as ``6.1.0``).
  Ordered as PEP 440 orders the same text: trailing zero components do not
  count (``5.9`` = ``5.9.0``), ``a``/``alpha`` < ``b``/``beta`` <
  ``c``/``rc``/``pre``/``preview`` < the release. Anything after the
  recognised head (``+ds1``, ``-dev``) is ignored.

tests/unit/test_versions.py runs the package managers' own test cases
through this module and, where installed, the real ``rpm`` and ``dpkg``
binaries on the same and on random versions.
"""

from __future__ import absolute_import, division, print_function

__metaclass__ = type

import re

MYPY = False
if MYPY:  # typing is for mypy only: Python 2.7 has no typing module
    from typing import Any, Optional, Tuple, Type  # noqa: F401 # novermin

SCHEMES = ("rpm", "dpkg", "upstream")

_DIGITS = "0123456789"
_LETTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
_ALNUM = frozenset(_DIGITS + _LETTERS)


_STRING_TYPES = (str,)  # type: Tuple[Type[str], ...]
try:  # Python 2.7: module parameters may arrive as unicode
    _STRING_TYPES = (str, unicode)  # type: ignore[name-defined] # novermin
except NameError:
    pass


class VersionError(ValueError):
    """A version that cannot be ordered in the requested scheme; one-line reason."""


def _sign(value):
    # type: (int) -> int
    return (value > 0) - (value < 0)


# -- rpm ----------------------------------------------------------------------

def rpmvercmp(a, b):
    # type: (str, str) -> int
    """rpm's ``rpmvercmp()`` on two version (or release) strings: -1, 0 or 1.

    >>> rpmvercmp("1.0~rc1", "1.0"), rpmvercmp("1.0^git1", "1.0"), rpmvercmp("1.0a", "1.0.1")
    (-1, 1, -1)
    """
    if a == b:
        return 0
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        while i < la and a[i] not in _ALNUM and a[i] not in "~^":
            i += 1
        while j < lb and b[j] not in _ALNUM and b[j] not in "~^":
            j += 1
        ca = a[i] if i < la else ""
        cb = b[j] if j < lb else ""
        if ca == "~" or cb == "~":
            if ca != "~":
                return 1
            if cb != "~":
                return -1
            i += 1
            j += 1
            continue
        if ca == "^" or cb == "^":
            if not ca:
                return -1
            if not cb:
                return 1
            if ca != "^":
                return 1
            if cb != "^":
                return -1
            i += 1
            j += 1
            continue
        if not (ca and cb):
            break
        numeric = ca in _DIGITS
        kind = _DIGITS if numeric else _LETTERS
        start_a, start_b = i, j
        while i < la and a[i] in kind:
            i += 1
        while j < lb and b[j] in kind:
            j += 1
        seg_a, seg_b = a[start_a:i], b[start_b:j]
        if not seg_b:
            # different kinds of segment: a number is newer than letters
            return 1 if numeric else -1
        if numeric:
            seg_a = seg_a.lstrip("0")
            seg_b = seg_b.lstrip("0")
            if len(seg_a) != len(seg_b):
                return 1 if len(seg_a) > len(seg_b) else -1
        if seg_a != seg_b:
            return 1 if seg_a > seg_b else -1
    if i >= la and j >= lb:
        return 0
    return -1 if i >= la else 1


def rpm_split(evr):
    # type: (str) -> Tuple[Optional[str], str, Optional[str]]
    """``(epoch, version, release)`` as rpm's ``parseEVR()`` splits them; a
    missing epoch or release is None.

    >>> rpm_split("1:3.10.0-1160.el7"), rpm_split("1.0.0")
    (('1', '3.10.0', '1160.el7'), (None, '1.0.0', None))
    """
    head = 0
    while head < len(evr) and evr[head] in _DIGITS:
        head += 1
    if head < len(evr) and evr[head] == ":":
        epoch = evr[:head] or "0"
        rest = evr[head + 1:]
    else:
        epoch = None
        rest = evr
    dash = rest.rfind("-")
    if dash >= 0:
        return epoch, rest[:dash], rest[dash + 1:]
    return epoch, rest, None


def _rpm_compare(a, b):
    # type: (str, str) -> int
    ea, va, ra = rpm_split(a)
    eb, vb, rb = rpm_split(b)
    result = rpmvercmp(ea or "0", eb or "0") or rpmvercmp(va, vb)
    if result:
        return result
    if ra is not None and rb is not None:
        return rpmvercmp(ra, rb)
    if ra is not None:
        return 1
    if rb is not None:
        return -1
    return 0


# -- dpkg ---------------------------------------------------------------------

_DPKG_UPSTREAM_CHARS = frozenset(_DIGITS + _LETTERS + ".+~-:")
_DPKG_REVISION_CHARS = frozenset(_DIGITS + _LETTERS + ".+~")
_DPKG_MAX_EPOCH = 2 ** 31 - 1  # dpkg stores the epoch in an int


def dpkg_syntax(text):
    # type: (str) -> Tuple[Optional[str], Optional[str]]
    """``(error, warning)`` for ``text`` as dpkg's ``parseversion()`` judges it.

    An error is what dpkg refuses ("revision number is empty"); a warning is
    what ``dpkg --compare-versions`` only warns about ("invalid character in
    revision number"). The cases are dpkg's own (tests/data/versions/).

    >>> dpkg_syntax("1:2.3-1"), dpkg_syntax("1.0-")[0]
    ((None, None), 'revision number is empty')
    """
    stripped = text.strip(" \t")
    if not stripped:
        return "version string is empty", None
    if " " in stripped or "\t" in stripped:
        return "version string has embedded spaces", None
    epoch, colon, rest = stripped.partition(":")
    if colon:
        if not epoch:
            return "epoch in version is empty", None
        # strtol(): an optional sign, then digits
        sign, digits = (epoch[0], epoch[1:]) if epoch[0] in "+-" else ("", epoch)
        if not digits or not all(ch in _DIGITS for ch in digits):
            return "epoch in version is not number", None
        if sign == "-" and int(digits):
            return "epoch in version is negative", None
        if int(epoch) > _DPKG_MAX_EPOCH:
            return "epoch in version is too big", None
        if not rest:
            return "nothing after colon in version number", None
    else:
        rest = stripped
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    if hyphen and not revision:
        return "revision number is empty", None
    if not upstream:
        return "version number is empty", None
    if upstream[0] not in _DIGITS:
        return None, "version number does not start with digit"
    if any(ch not in _DPKG_UPSTREAM_CHARS for ch in upstream):
        return None, "invalid character in version number"
    if any(ch not in _DPKG_REVISION_CHARS for ch in revision):
        return None, "invalid character in revision number"
    return None, None


def _dpkg_order(ch):
    # type: (str) -> int
    if ch in _DIGITS:
        return 0
    if ch in _LETTERS:
        return ord(ch)
    if ch == "~":
        return -1
    if ch:
        return ord(ch) + 256
    return 0


def verrevcmp(a, b):
    # type: (str, str) -> int
    """dpkg's ``verrevcmp()`` on two upstream versions or revisions.

    >>> verrevcmp("1.0~rc1", "1.0"), verrevcmp("1.0a", "1.0+"), verrevcmp("007", "7")
    (-1, -1, 0)
    """
    i = j = 0
    la, lb = len(a), len(b)
    while i < la or j < lb:
        first_diff = 0
        while (i < la and a[i] not in _DIGITS) or (j < lb and b[j] not in _DIGITS):
            ca = _dpkg_order(a[i] if i < la else "")
            cb = _dpkg_order(b[j] if j < lb else "")
            if ca != cb:
                return _sign(ca - cb)
            i += 1
            j += 1
        while i < la and a[i] == "0":
            i += 1
        while j < lb and b[j] == "0":
            j += 1
        while i < la and j < lb and a[i] in _DIGITS and b[j] in _DIGITS:
            if not first_diff:
                first_diff = ord(a[i]) - ord(b[j])
            i += 1
            j += 1
        if i < la and a[i] in _DIGITS:
            return 1
        if j < lb and b[j] in _DIGITS:
            return -1
        if first_diff:
            return _sign(first_diff)
    return 0


def dpkg_split(text):
    # type: (str) -> Tuple[int, str, str]
    """``(epoch, upstream, revision)`` as dpkg's ``parseversion()`` splits them.

    >>> dpkg_split("1:1.0.0~rc94+dfsg1-1")
    (1, '1.0.0~rc94+dfsg1', '1')
    """
    text = text.strip(" \t")
    epoch, colon, rest = text.partition(":")
    if not colon:
        epoch, rest = "0", text
    upstream, hyphen, revision = rest.rpartition("-")
    if not hyphen:
        upstream, revision = rest, ""
    return int(epoch), upstream, revision


def _dpkg_compare(a, b):
    # type: (str, str) -> int
    for text in (a, b):
        error, _warning = dpkg_syntax(text)
        if error:
            raise VersionError("not a dpkg version: %r: %s" % (text, error))
    ea, ua, ra = dpkg_split(a)
    eb, ub, rb = dpkg_split(b)
    if ea != eb:
        return 1 if ea > eb else -1
    return verrevcmp(ua, ub) or verrevcmp(ra, rb)


# -- upstream -----------------------------------------------------------------

# "6.1.0-18-amd64" -> 6.1.0; "1.0.0-rc94", "1.0.0_rc94", "1.0.0~rc94" -> 1.0.0 rc94
_UPSTREAM = re.compile(
    r"^\s*v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.~]?(?P<stage>alpha|a|beta|b|c|rc|preview|pre)[-_.]?(?P<number>\d*))?"
)
_UPSTREAM_STRICT = re.compile(
    r"^v?\d+(?:\.\d+)*(?:[-_.~]?(?:alpha|a|beta|b|c|rc|preview|pre)[-_.]?\d*)?$"
)
_STAGES = {"a": 0, "alpha": 0, "b": 1, "beta": 1, "c": 2, "rc": 2, "pre": 2, "preview": 2}
_FINAL = 3


def upstream_key(text):
    # type: (str) -> Tuple[Tuple[int, ...], int, int]
    """The sort key of an upstream version; VersionError when it has none.

    >>> upstream_key("1.0.0_rc94") == upstream_key("1.0.0-rc94") < upstream_key("1.0")
    True
    """
    match = _UPSTREAM.match(text)
    if not match:
        raise VersionError("not a dotted upstream version: %r" % (text,))
    release = [int(part) for part in match.group("release").split(".")]
    while len(release) > 1 and release[-1] == 0:
        release.pop()
    stage = match.group("stage")
    if stage is None:
        return (tuple(release), _FINAL, 0)
    return (tuple(release), _STAGES[stage], int(match.group("number") or 0))


# -- the one entry point ------------------------------------------------------

def compare(a, b, scheme):
    # type: (str, str, str) -> int
    """-1, 0 or 1 as version ``a`` sorts before, equal to or after ``b``.

    Raises VersionError (a ValueError) for an unknown scheme or a version
    the scheme cannot order.

    >>> compare("3.10.0-1062.4.1.el7", "3.10.0-1062.1.2.el7", "rpm")
    1
    >>> compare("1:1.0-1", "2.0-1", "dpkg")
    1
    >>> compare("1.0.0_rc94", "1.0.0", "upstream")
    -1
    """
    if not isinstance(a, _STRING_TYPES) or not isinstance(b, _STRING_TYPES):
        raise VersionError("versions must be strings, got %r and %r" % (a, b))
    if scheme == "rpm":
        if not a.strip() or not b.strip():
            raise VersionError("empty rpm version in comparison of %r and %r" % (a, b))
        return _rpm_compare(a.strip(), b.strip())
    if scheme == "dpkg":
        return _dpkg_compare(a, b)
    if scheme == "upstream":
        ka, kb = upstream_key(a), upstream_key(b)
        return (ka > kb) - (ka < kb)
    raise VersionError("unknown version scheme %r; expected one of %s"
                       % (scheme, ", ".join(SCHEMES)))


# A bound in rpm ordering: [epoch:]version[-release] with the characters
# rpmbuild allows in Version and Release.
_RPM_STRICT = re.compile(r"^(?:\d+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$")


def problem(text, scheme):
    # type: (Any, str) -> Optional[str]
    """Why ``text`` is not a clean version in ``scheme`` (a bound a policy or a
    plan may name), or None.

    Stricter than :func:`compare`, which must cope with whatever a host
    reports: dpkg warnings, stray characters and trailing words are refused.

    >>> problem("1.0.0-rc94", "upstream") is None, problem("5.9 or later", "upstream") is None
    (True, False)
    """
    if scheme not in SCHEMES:
        return "unknown version scheme %r; expected one of %s" % (scheme, ", ".join(SCHEMES))
    if not isinstance(text, _STRING_TYPES):
        return "a version must be a string, not %s" % type(text).__name__
    if scheme == "rpm":
        if not _RPM_STRICT.match(text):
            return "not an rpm [epoch:]version[-release] (letters, digits and ._+~^ only)"
        return None
    if scheme == "dpkg":
        error, warning = dpkg_syntax(text)
        if error or warning or text != text.strip():
            return error or warning or "leading or trailing spaces"
        return None
    if not _UPSTREAM_STRICT.match(text):
        return "not a dotted upstream version such as 5.9 or 1.0.0-rc94"
    return None
