"""The injection corpus (tests/data/injection/strings.txt), read one way for
the unit and the target tests."""

from __future__ import annotations

import re
from pathlib import Path

STRINGS = Path(__file__).resolve().parent / "data" / "injection" / "strings.txt"


def injection_strings(marker: str) -> list[tuple[str, str]]:
    """``[(name, string)]`` from the corpus, with MARKER replaced by ``marker``
    (lines are ``name: string``; ``\\n`` and ``\\\\`` are escapes)."""
    out = []
    for line in STRINGS.read_text(encoding="utf-8").splitlines():
        if not line.strip() or line.startswith("#"):
            continue
        name, _sep, raw = line.partition(": ")
        text = re.sub(r"\\(n|\\)", lambda m: "\n" if m.group(1) == "n" else "\\", raw)
        out.append((name, text.replace("MARKER", marker)))
    return out
