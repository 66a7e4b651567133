"""The files that repeat the mitigation catalogue, written from it.

``remediate/catalogue.py`` is the one source of the mitigation ids, their
order, parameters, reboot and risk. Files that Ansible, JSON Schema tools or
readers need as static text keep a copy: the JSON Schemas' enums, the role's
argument specs and private vars, and the catalogue tables of docs/design.md
and README.md.
:func:`expected` says what each should hold; ``tests/unit/test_catalogue_drift.py``
fails when one differs, and ::

    python -m tests.catalogue_files --write

rewrites them (docs/extending.md). Only the generated parts are touched:
the rest of each file is hand-written.
"""

from __future__ import annotations

import json
import re
import sys
from collections.abc import Callable, Iterable
from pathlib import Path
from typing import Any

from remediate import catalogue

REPO = Path(__file__).resolve().parents[1]
ROLE = "playbooks/collections/ansible_collections/memcg_fix/remediate/roles/memcg_remediate"
WRITE_COMMAND = "python -m tests.catalogue_files --write"


def _flow_list(items: Iterable[str]) -> str:
    """A YAML flow sequence of plain scalars: ``[a, b]``."""
    return "[" + ", ".join(items) + "]"


def _json_list(items: Iterable[str]) -> str:
    return json.dumps(list(items))


def _replace(pattern: str, text: str, replacement: Callable[[re.Match[str]], str],
             where: str) -> str:
    """Replace the one match of ``pattern``; a file whose anchor is gone is a drift too."""
    new, count = re.subn(pattern, replacement, text, count=1, flags=re.M)
    if count != 1:
        raise ValueError(f"{where}: the generated part ({pattern!r}) is missing")
    return new


def _policy_schema(text: str) -> str:
    return _replace(
        r'("mitigation_id": \{\n\s*"enum": )\[.*\]',
        text, lambda m: m[1] + _json_list(catalogue.ORDER), "policy.schema.json",
    )


def _plan_schema(text: str) -> str:
    text = _replace(r'^(\s*"id": \{"enum": )\[.*\](\},?)$', text,
                    lambda m: m[1] + _json_list(catalogue.ORDER) + m[2], "plan.schema.json")
    text = _replace(r'^(\s*"risk": \{"enum": )\[.*\](\},?)$', text,
                    lambda m: m[1] + _json_list(catalogue.RISKS) + m[2], "plan.schema.json")
    return _replace(r'^(\s*"disruption": \{"enum": )\[.*\](\},?)$', text,
                    lambda m: m[1] + _json_list(catalogue.DISRUPTIONS) + m[2],
                    "plan.schema.json")


def _argument_specs(text: str) -> str:
    # the choices of memcg_remediate_mitigations[].id
    return _replace(
        r"^(          id:\n(?:            .*\n)*?            choices: )\[.*\]$",
        text, lambda m: m[1] + _flow_list(catalogue.ORDER), "meta/argument_specs.yml",
    )


def _role_vars(text: str) -> str:
    order = "".join(f"  - {mid}\n" for mid in catalogue.ORDER)
    text = _replace(r"^(__memcg_remediate_order:\n)(?:  - .*\n)+", text,
                    lambda m: m[1] + order, "vars/main.yml")
    params = "".join(
        f"  {m.id}: {_flow_list(p.name for p in m.params)}\n"
        for m in catalogue.CATALOGUE.values()
    )
    return _replace(r"^(__memcg_remediate_params:\n)(?:  .*\n)+", text,
                    lambda m: m[1] + params, "vars/main.yml")


def _shown(value: Any) -> str:
    if isinstance(value, bool):
        return str(value).lower()
    if isinstance(value, int):
        return str(value)
    return f"`{value}`"


def _param_cell(param: catalogue.Param) -> str:
    if param.required:
        what = "required"
    elif param.default is not None:
        what = _shown(param.default)
    else:
        what = "left to the role"
    if param.choices:
        what += "; one of " + ", ".join(f"`{c}`" for c in param.choices)
    return f"`{param.name}` ({what})"


def design_table_rows() -> list[str]:
    """The rows of the catalogue table in docs/design.md."""
    rows = []
    for m in catalogue.CATALOGUE.values():
        params = ", ".join(_param_cell(p) for p in m.params) or "none"
        reboot = "yes" if m.needs_reboot else "no"
        rows.append(f"| `{m.id}` | {params} | {reboot} | {m.risk} | `tasks/{m.id}.yml` |")
    return rows


_DESIGN_HEADER = "| id | params (default) | reboot | risk | task file |\n|---|---|---|---|---|\n"


def _design(text: str) -> str:
    table = _DESIGN_HEADER + "".join(row + "\n" for row in design_table_rows())
    return _replace(
        r"^(## The mitigation catalogue \(closed\)\n(?:(?!\|).*\n)*)(?:\|.*\n)+",
        text, lambda m: m[1] + table, "docs/design.md",
    )


def _readme(text: str) -> str:
    rows = "".join(
        f"| `{m.id}` | {m.summary} | {'yes' if m.needs_reboot else 'no'} |\n"
        for m in catalogue.CATALOGUE.values()
    )
    return _replace(
        r"^(### The mitigation catalogue\n\n\| id \| what it does \| reboot \|\n"
        r"\|---\|---\|---\|\n)(?:\|.*\n)+",
        text, lambda m: m[1] + rows, "README.md",
    )


# repository path -> how its generated parts are written from the catalogue
GENERATED: dict[str, Callable[[str], str]] = {
    "remediate/schemas/policy.schema.json": _policy_schema,
    "remediate/schemas/plan.schema.json": _plan_schema,
    f"{ROLE}/meta/argument_specs.yml": _argument_specs,
    f"{ROLE}/vars/main.yml": _role_vars,
    "docs/design.md": _design,
    "README.md": _readme,
}


def expected(repo: Path = REPO) -> dict[str, tuple[str, str]]:
    """Each generated file: (its text now, the text the catalogue asks for)."""
    out = {}
    for relative, write in GENERATED.items():
        text = (repo / relative).read_text(encoding="utf-8")
        out[relative] = (text, write(text))
    return out


def main(argv: list[str]) -> int:
    write = argv == ["--write"]
    if argv and not write:
        print(f"usage: {WRITE_COMMAND}  (without --write: list the files that drifted)",
              file=sys.stderr)
        return 2
    drifted = {path: wanted for path, (now, wanted) in expected().items() if now != wanted}
    for path, wanted in drifted.items():
        if write:
            (REPO / path).write_text(wanted, encoding="utf-8")
        print(("wrote " if write else "drifted: ") + path)
    return 1 if drifted and not write else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
