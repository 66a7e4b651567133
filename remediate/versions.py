"""Version ordering for the controller: ``compare(a, b, scheme)``.

There is one comparator, :mod:`remediate.hostside.vercmp` (stdlib only),
and this module only turns its errors into :class:`InputError`. The same
code runs inside the role's modules on the targets (``memcg_package_status``),
so a plan and the host that carries it out order every version alike:
``runc 1.0.0_rc94`` is below ``1.0.0`` on both sides.

Why not the libraries this module used before (rpm-version, python-debian,
packaging)? A host cannot import them (CentOS 7's Python 2.7, RHEL 8's
platform-python), so the controller and the host would run two algorithms
that can drift, which is how ``1.0.0_rc94`` came to be "too old" on the
controller and "new enough" on the host. The libraries and the real ``rpm``
and ``dpkg`` binaries remain, in tests only, as independent oracles
(tests/unit/test_versions.py, tests/unit/test_version_corpus.py).
"""

from __future__ import annotations

from typing import Final

from .errors import InputError
from .hostside import vercmp

SCHEMES: Final = vercmp.SCHEMES


def dpkg_syntax(text: str) -> tuple[str | None, str | None]:
    """``(error, warning)`` for ``text`` as dpkg's ``parseversion()`` judges it."""
    error, warning = vercmp.dpkg_syntax(text)
    return error, warning


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
    try:
        result: int = vercmp.compare(a, b, scheme)
    except vercmp.VersionError as exc:
        raise InputError(str(exc)) from None
    return result


def check(text: object, scheme: str) -> str | None:
    """Why ``text`` is not a well-formed version bound under ``scheme``, or None.

    Stricter than :func:`compare`, which must cope with whatever a host
    reports: a bound written in a policy has to be a clean version, so dpkg
    warnings, stray characters and trailing words are refused here.
    """
    found: str | None = vercmp.problem(text, scheme)
    return found


def is_valid(text: str, scheme: str) -> bool:
    """True when ``text`` is a well-formed version bound under ``scheme``."""
    return check(text, scheme) is None
