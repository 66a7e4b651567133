"""Read a policy file into plain data, remembering the line of every value.

Validation errors must name the file, the line and the JSON path, so the
YAML node tree (from ``yaml.SafeLoader``, never a loader that can build
objects) is walked by hand and each JSON path is mapped to its line.

Refused with a one-line message: files over :data:`MAX_BYTES`, bytes that
are not UTF-8, YAML syntax errors, several documents, tags other than the
plain YAML ones, anchors and aliases (a policy is small; aliases only buy
"billion laughs" expansion), duplicate keys (YAML would silently keep the
last one), keys that are not strings, and nesting deeper than
:data:`MAX_DEPTH`.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, Final

import yaml

from ..errors import PolicyError
from ..inputs import open_input
from ..resources import default_policy_path

MAX_BYTES: Final = 1024 * 1024
MAX_DEPTH: Final = 32

JsonPath = tuple[str | int, ...]

_PLAIN_TAGS: Final = {
    "tag:yaml.org,2002:map",
    "tag:yaml.org,2002:seq",
    "tag:yaml.org,2002:str",
    "tag:yaml.org,2002:int",
    "tag:yaml.org,2002:float",
    "tag:yaml.org,2002:bool",
    "tag:yaml.org,2002:null",
}


# Implicitly resolved YAML 1.1 types that a policy has no use for.
_KEPT_AS_TEXT: Final = {"tag:yaml.org,2002:timestamp", "tag:yaml.org,2002:value"}


def json_path(path: JsonPath) -> str:
    """``("rules", 0, "when")`` -> ``$.rules[0].when``."""
    out = "$"
    for part in path:
        if isinstance(part, int):
            out += f"[{part}]"
        elif part.replace("_", "a").replace("-", "a").isalnum() and part.isascii():
            out += f".{part}"
        else:
            out += "[" + repr(part) + "]"
    return out


class Located:
    """A parsed policy document and the line of each JSON path in it."""

    def __init__(self, name: str, data: Any, lines: dict[JsonPath, int], raw: bytes) -> None:
        self.name = name
        self.data = data
        self.lines = lines
        self.raw = raw

    def line_of(self, path: JsonPath) -> int:
        """The line of ``path``, or of its nearest ancestor that has one."""
        path = tuple(path)
        while path not in self.lines and path:
            path = path[:-1]
        return self.lines.get(path, 1)

    def where(self, path: JsonPath) -> str:
        return f"{self.name}:{self.line_of(path)}: {json_path(path)}"


class _Loader(yaml.SafeLoader):
    """SafeLoader that refuses aliases (checked while composing, before any expansion)."""

    def compose_node(self, parent: Any, index: Any) -> Any:
        if self.check_event(yaml.AliasEvent):
            event = self.peek_event()
            raise yaml.MarkedYAMLError(
                problem="YAML aliases (*name) are not allowed in a policy; write the value out",
                problem_mark=event.start_mark,
            )
        return super().compose_node(parent, index)


class _Refused(Exception):
    def __init__(self, node: yaml.Node, message: str) -> None:
        super().__init__(message)
        self.line = node.start_mark.line + 1
        self.message = message


def _build(
    loader: _Loader, node: yaml.Node, path: JsonPath, lines: dict[JsonPath, int], depth: int
) -> Any:
    if depth > MAX_DEPTH:
        raise _Refused(node, f"nested deeper than {MAX_DEPTH} levels")
    lines.setdefault(path, node.start_mark.line + 1)  # a key's own line wins
    if isinstance(node, yaml.ScalarNode) and node.tag in _KEPT_AS_TEXT and node.style is None:
        # "2024-01-01" or "=" resolved implicitly: keep the text; the schema judges it
        return str(node.value)
    if node.tag not in _PLAIN_TAGS:
        raise _Refused(node, f"YAML tag {node.tag!r} is not allowed in a policy")
    if isinstance(node, yaml.MappingNode):
        result: dict[str, Any] = {}
        for key_node, value_node in node.value:
            if not isinstance(key_node, yaml.ScalarNode) or key_node.tag != "tag:yaml.org,2002:str":
                shown = getattr(key_node, "value", "?")
                raise _Refused(
                    key_node,
                    f"key {shown!r} must be a plain string (quote it if YAML reads it as "
                    "a number, a boolean or null)",
                )
            key = str(key_node.value)
            key_path = (*path, key)
            if key in result:
                raise _Refused(
                    key_node,
                    f"duplicate key {key!r} (first at line {lines[key_path]}); YAML would "
                    "silently keep only the last one",
                )
            lines[key_path] = key_node.start_mark.line + 1
            result[key] = _build(loader, value_node, key_path, lines, depth + 1)
        return result
    if isinstance(node, yaml.SequenceNode):
        return [
            _build(loader, item, (*path, index), lines, depth + 1)
            for index, item in enumerate(node.value)
        ]
    return loader.construct_object(node, deep=True)


def read(path: str | Path, display: str | None = None) -> Located:
    """Read and parse ``path``; raise :class:`PolicyError` naming file and line."""
    name = display or str(path)
    try:
        with open_input(path) as handle:  # a FIFO nobody writes to reads as empty
            raw = handle.read(MAX_BYTES + 1)
    except IsADirectoryError:
        raise PolicyError(f"{name}: is a directory, not a policy file") from None
    except FileNotFoundError:
        raise PolicyError(
            f"{name}: no such policy file (the shipped default policy is "
            f"{default_policy_path()}; 'memcg-fix policy path' prints where it is)"
        ) from None
    except OSError as exc:
        raise PolicyError(f"{name}: cannot read: {exc.strerror or exc}") from None
    return parse(raw, name)


def parse(raw: bytes, name: str) -> Located:
    if len(raw) > MAX_BYTES:
        raise PolicyError(
            f"{name}: larger than {MAX_BYTES // 1024} KiB; a policy is a short list of rules"
        )
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise PolicyError(
            f"{name}:{line}: not UTF-8 (byte 0x{raw[exc.start]:02x} at offset {exc.start}); "
            "save the policy as UTF-8"
        ) from None
    if text.startswith("\ufeff"):
        text = text[1:]  # a UTF-8 byte order mark is harmless
    if "\x00" in text:
        line = text[: text.index("\x00")].count("\n") + 1
        raise PolicyError(f"{name}:{line}: contains a NUL byte; this is not a text file")
    loader: _Loader | None = None
    try:
        try:
            loader = _Loader(text)
            node = loader.get_single_node()
            if node is None:
                raise PolicyError(
                    f"{name}:1: empty policy; a policy needs id, version, description and rules"
                )
            lines: dict[JsonPath, int] = {}
            data = _build(loader, node, (), lines, 0)
        except yaml.reader.ReaderError as exc:
            line = text[: exc.position].count("\n") + 1
            raise PolicyError(
                f"{name}:{line}: YAML error: character U+{exc.character:04X} is not allowed"
            ) from None
        except yaml.MarkedYAMLError as exc:
            mark = exc.problem_mark or exc.context_mark
            where = f"{name}:{mark.line + 1}:{mark.column + 1}" if mark else name
            problem = exc.problem or exc.context or "invalid YAML"
            context = f" ({exc.context})" if exc.context and exc.problem else ""
            raise PolicyError(f"{where}: YAML error: {problem}{context}") from None
        except yaml.YAMLError as exc:
            raise PolicyError(f"{name}: YAML error: {' '.join(str(exc).split())}") from None
        except _Refused as exc:
            raise PolicyError(f"{name}:{exc.line}: {exc.message}") from None
        except RecursionError:
            line = loader.get_mark().line + 1 if loader is not None else 1
            raise PolicyError(
                f"{name}:{line}: nested too deeply for a policy (more than {MAX_DEPTH} levels)"
            ) from None
    finally:
        if loader is not None:
            loader.dispose()
    return Located(name, data, lines, raw)
