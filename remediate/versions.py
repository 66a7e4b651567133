"""Version ordering for kernels and packages: ``compare(a, b, scheme)``.

Each scheme delegates to a library that implements the reference algorithm,
so we never hand-write a comparator that drifts from the package manager:

* ``rpm``: rpm-version (rpm-rs), which sorts identically to rpm's
  ``rpmvercmp`` including ``~`` (pre-release) and ``^`` (post-release), and
  ``[epoch:]version[-release]`` splitting.
* ``dpkg``: python-debian's ``Version``, which follows Debian policy 5.6.12
  (epochs, ``~``, upstream version and Debian revision).
* ``upstream``: dotted ``X.Y.Z`` numbers with an optional pre-release tail
  (``1.0.0-rc94``), ordered by :mod:`packaging` after PEP 440 normalisation.
"""

from __future__ import annotations

import re
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


def _sign(value: int) -> int:
    return (value > 0) - (value < 0)


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
        return _sign(evr_compare(a.strip(), b.strip()))
    if scheme == "dpkg":
        try:
            left, right = DebianVersion(a.strip()), DebianVersion(b.strip())
        except ValueError as exc:
            raise InputError(f"not a dpkg version: {exc}") from exc
        return _sign((left > right) - (left < right))
    if scheme == "upstream":
        ka, kb = _upstream_key(a), _upstream_key(b)
        return _sign((ka > kb) - (ka < kb))
    raise InputError(f"unknown version scheme {scheme!r}; expected one of {', '.join(SCHEMES)}")


def is_valid(text: str, scheme: str) -> bool:
    """True when ``text`` can be compared under ``scheme`` (used by policy validation)."""
    try:
        compare(text, text, scheme)
    except InputError:
        return False
    return True
