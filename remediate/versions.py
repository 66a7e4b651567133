"""Version ordering for kernels and packages: ``compare(a, b, scheme)``.

Each scheme delegates to a library that implements the reference algorithm,
so we never hand-write a comparator that drifts from the package manager:

* ``rpm``: rpm-version (rpm-rs), which sorts identically to rpm's
  ``rpmvercmp`` including ``~`` (pre-release) and ``^`` (post-release), and
  ``[epoch:]version[-release]`` splitting.
* ``dpkg``: python-debian's ``Version``, which follows Debian policy 5.6.12
  (epochs, ``~``, upstream version and Debian revision). python-debian is
  more lenient than dpkg's own parser, so the syntax errors that dpkg's
  ``parseversion()`` reports (empty parts, bad epochs, embedded spaces) are
  checked first and refused here too.
* ``upstream``: dotted ``X.Y.Z`` numbers with an optional pre-release tail
  (``1.0.0-rc94``), ordered by :mod:`packaging` after PEP 440 normalisation.
"""

from __future__ import annotations

import re
import string
from typing import Final

from debian.debian_support import Version as DebianVersion
from packaging.version import InvalidVersion
from packaging.version import Version as Pep440Version
from rpm_version import evr_compare

from .errors import InputError

SCHEMES: Final = ("rpm", "dpkg", "upstream")

# "6.1.0-18-amd64" -> "6.1.0"; "1.0.0-rc94" -> "1.0.0", "rc94"; "v1.1.12" -> "1.1.12"
_UPSTREAM = re.compile(
    r"^\s*v?(?P<release>\d+(?:\.\d+)*)"
    r"(?:[-_.~]?(?P<pre>(?:a|alpha|b|beta|c|rc|pre|preview)[-_.]?\d*))?"
)


# What dpkg accepts in each part without a warning (deb-version(7)).
_DPKG_UPSTREAM_CHARS: Final = frozenset(string.ascii_letters + string.digits + ".+~-:")
_DPKG_REVISION_CHARS: Final = frozenset(string.ascii_letters + string.digits + ".+~")
_DPKG_MAX_EPOCH: Final = 2**31 - 1  # dpkg stores the epoch in an int

# A policy bound in rpm ordering: [epoch:]version[-release] with the
# characters rpmbuild allows in Version and Release.
_RPM_STRICT: Final = re.compile(r"^(?:\d+:)?[A-Za-z0-9._+~^]+(?:-[A-Za-z0-9._+~^]+)?$")
_UPSTREAM_STRICT: Final = re.compile(
    r"^v?\d+(?:\.\d+)*(?:[-_.~]?(?:a|alpha|b|beta|c|rc|pre|preview)[-_.]?\d*)?$"
)


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


def dpkg_syntax(text: str) -> tuple[str | None, str | None]:
    """``(error, warning)`` for ``text`` as dpkg's ``parseversion()`` judges it.

    An error is what dpkg refuses outright ("revision number is empty"); a
    warning is what ``dpkg --compare-versions`` only warns about ("invalid
    character in revision number"). The cases are dpkg's own tests
    (tests/data/versions/dpkg-version.txt).
    """
    stripped = text.strip(" \t")
    if not stripped:
        return "version string is empty", None
    if any(ch in " \t" for ch in stripped):
        return "version string has embedded spaces", None
    epoch, colon, rest = stripped.partition(":")
    if colon:
        if not epoch:
            return "epoch in version is empty", None
        if not epoch.isdigit() or not epoch.isascii():
            if epoch.startswith("-") and epoch[1:].isdigit():
                return "epoch in version is negative", None
            return "epoch in version is not number", None
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
    if not upstream[0].isdigit() or not upstream[0].isascii():
        return None, "version number does not start with digit"
    if any(ch not in _DPKG_UPSTREAM_CHARS for ch in upstream):
        return None, "invalid character in version number"
    if any(ch not in _DPKG_REVISION_CHARS for ch in revision):
        return None, "invalid character in revision number"
    return None, None


def _upstream_key(text: str) -> Pep440Version:
    match = _UPSTREAM.match(text)
    if not match:
        raise InputError(f"not a dotted upstream version: {text!r}")
    normalised = match.group("release")
    if match.group("pre"):
        normalised += match.group("pre")
    try:
        return Pep440Version(normalised)
    except InvalidVersion as exc:  # pragma: no cover - the regex only admits valid forms
        raise InputError(f"not a dotted upstream version: {text!r}") from exc


def _rpm_compare(a: str, b: str) -> int:
    """rpm's EVR order (``rpm.vercmp``), on top of rpm-version.

    rpm-version reads a missing release as an empty one; rpm keeps it absent,
    and an absent release sorts before any present one, even ``~`` (which
    sorts before an empty string). Found by comparing against the real rpm
    binary on random versions.
    """
    a_rest, a_has_release = a.rpartition(":")[2], "-" in a.rpartition(":")[2]
    b_rest, b_has_release = b.rpartition(":")[2], "-" in b.rpartition(":")[2]
    if a_has_release != b_has_release:
        a_ev = a[: len(a) - len(a_rest)] + a_rest.split("-", 1)[0]
        b_ev = b[: len(b) - len(b_rest)] + b_rest.split("-", 1)[0]
        first = _sign(evr_compare(a_ev, b_ev))
        if first:
            return first
        return -1 if b_has_release else 1
    return _sign(evr_compare(a, b))


def compare(a: str, b: str, scheme: str) -> int:
    """Return -1, 0 or 1 as version ``a`` sorts before, equal to or after ``b``.

    >>> compare("3.10.0-1062.4.1.el7", "3.10.0-1062.1.2.el7", "rpm")
    1
    >>> compare("1.0~rc1", "1.0", "rpm")
    -1
    >>> compare("1:1.0-1", "2.0-1", "dpkg")
    1
    >>> compare("1.0.0-rc94", "1.0.0-rc10", "upstream")
    1
    """
    if not isinstance(a, str) or not isinstance(b, str):
        raise InputError(f"versions must be strings, got {a!r} and {b!r}")
    if scheme == "rpm":
        if not a.strip() or not b.strip():
            raise InputError(f"empty rpm version in comparison of {a!r} and {b!r}")
        return _rpm_compare(a.strip(), b.strip())
    if scheme == "dpkg":
        for text in (a, b):
            error, _warning = dpkg_syntax(text)
            if error:
                raise InputError(f"not a dpkg version: {text!r}: {error}")
        try:
            left, right = DebianVersion(a.strip(" \t")), DebianVersion(b.strip(" \t"))
        except ValueError as exc:
            # dpkg only warns about these characters; we refuse to guess an order.
            raise InputError(f"not a dpkg version: {exc}") from exc
        return _sign((left > right) - (left < right))
    if scheme == "upstream":
        ka, kb = _upstream_key(a), _upstream_key(b)
        return _sign((ka > kb) - (ka < kb))
    raise InputError(f"unknown version scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def check(text: object, scheme: str) -> str | None:
    """Why ``text`` is not a well-formed version bound under ``scheme``, or None.

    Stricter than :func:`compare`, which must cope with whatever a host
    reports: a bound written in a policy has to be a clean version, so dpkg
    warnings, stray characters and trailing words are refused here.
    """
    if scheme not in SCHEMES:
        return f"unknown version scheme {scheme!r}; expected one of {', '.join(SCHEMES)}"
    if not isinstance(text, str):
        return f"a version must be a string, not {type(text).__name__}"
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


def is_valid(text: str, scheme: str) -> bool:
    """True when ``text`` is a well-formed version bound under ``scheme``."""
    return check(text, scheme) is None
