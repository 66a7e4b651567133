"""What the EL image step adds besides the layout: the real grubby
(tests/targets/el_grubby.py) and rpm, dnf and the test repository
(tests/targets/el_packages.py). build.py calls these two functions."""

from __future__ import annotations

from pathlib import Path

from tests.targets import el_grubby, el_packages
from tests.targets.common import short_hash


def el_tools_hash(kind: str) -> str:
    """Part of an EL image's recipe hash: a change to either rebuilds it."""
    return short_hash("el-tools-v1", el_grubby.recipe_hash(), el_packages.recipe_hash(kind))


def install_el_tools(root: Path, kind: str) -> None:
    el_grubby.install_grubby(root, kind)
    el_packages.install_el_packages(root, kind)
