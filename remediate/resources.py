"""Where the shipped playbooks and policies live.

In a wheel they are bundled under ``remediate/_bundled/`` (see pyproject's
force-include); in a checkout or an editable install they are the top-level
``playbooks/`` and ``policies/`` folders next to the package.
"""

from __future__ import annotations

from pathlib import Path

_PACKAGE = Path(__file__).resolve().parent


def _shipped(name: str) -> Path:
    bundled = _PACKAGE / "_bundled" / name
    if bundled.is_dir():
        return bundled
    return _PACKAGE.parent / name


def playbooks_dir() -> Path:
    return _shipped("playbooks")


def policies_dir() -> Path:
    return _shipped("policies")


def default_policy_path() -> Path:
    return policies_dir() / "default.yaml"


def role_dir() -> Path:
    return playbooks_dir() / "roles" / "memcg_remediate"


def schema_path(name: str) -> Path:
    """A JSON Schema shipped inside the package (``remediate/schemas/``)."""
    return _PACKAGE / "schemas" / name
