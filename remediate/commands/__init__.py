"""One module per ``memcg-fix`` verb; each exposes ``register(subparsers)``."""

from __future__ import annotations

import sys

from ..text import shown


def tell(message: object) -> None:
    """One line on stderr, ``memcg-fix: MESSAGE``, with host text made inert."""
    print(f"memcg-fix: {shown(message)}", file=sys.stderr)
