"""Where the shipped playbooks, the collection and the policies live.

In a wheel they are bundled under ``remediate/_bundled/`` (see pyproject's
force-include); in a checkout or an editable install they are the top-level
``playbooks/`` and ``policies/`` folders next to the package.

The role and its modules are the collection ``memcg_fix.remediate``, kept
playbook-adjacent in ``playbooks/collections/`` so that a playbook in
``playbooks/`` (and AWX, with this repository as its project) finds it
without an install step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Final

_PACKAGE = Path(__file__).resolve().parent

COLLECTION_NAMESPACE: Final = "memcg_fix"
COLLECTION_NAME: Final = "remediate"
COLLECTION: Final = f"{COLLECTION_NAMESPACE}.{COLLECTION_NAME}"
ROLE_NAME: Final = "memcg_remediate"
ROLE_FQCN: Final = f"{COLLECTION}.{ROLE_NAME}"


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


def collections_path() -> Path:
    """The directory to put on ``ANSIBLE_COLLECTIONS_PATH`` (it holds ``ansible_collections/``)."""
    return playbooks_dir() / "collections"


def collection_dir() -> Path:
    """The collection's root (galaxy.yml, plugins/, roles/)."""
    return collections_path() / "ansible_collections" / COLLECTION_NAMESPACE / COLLECTION_NAME


def role_dir() -> Path:
    return collection_dir() / "roles" / ROLE_NAME


def modules_dir() -> Path:
    return collection_dir() / "plugins" / "modules"


def schema_path(name: str) -> Path:
    """A JSON Schema shipped inside the package (``remediate/schemas/``)."""
    return _PACKAGE / "schemas" / name
