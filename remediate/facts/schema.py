"""The facts JSON Schema, compiled once into a fast checker.

``jsonschema`` walks a schema anew for every value it checks, which is about
0.8 ms per host of facts: 8 s for a 10,000-host facts file. The facts schema
uses a small subset of draft 2020-12, so it is compiled here, once, into
plain Python closures (microseconds per host). ``jsonschema`` stays the
reference: it checks the schema itself, and it explains the first problem
(message and JSON path) whenever the fast check says "invalid". A keyword
outside the subset makes compilation fail, so the two cannot drift apart
silently; tests compare both on valid and fuzzed documents.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from functools import cache, partial
from typing import Any

import jsonschema

from ..schemas import load, short_message
from ..schemas import validator as reference_validator

Check = Callable[[Any], bool]

# Keywords the compiler understands; annotations are accepted and ignored.
_ANNOTATIONS = {"$schema", "$id", "title", "description", "$defs", "$comment"}
_KEYWORDS = {"type", "properties", "required", "items", "enum", "const", "minimum",
             "minLength", "$ref"}


def _is_type(value: Any, name: str) -> bool:
    if name == "null":
        return value is None
    if name == "boolean":
        return value is True or value is False
    if isinstance(value, bool):
        return False
    if name == "object":
        return isinstance(value, dict)
    if name == "array":
        return isinstance(value, list)
    if name == "string":
        return isinstance(value, str)
    if name == "integer":
        return isinstance(value, int) or (isinstance(value, float) and value.is_integer())
    if name == "number":
        return isinstance(value, (int, float))
    raise ValueError(f"unsupported JSON Schema type {name!r}")


_PY_TYPES: dict[str, tuple[type, ...]] = {
    "null": (type(None),), "boolean": (bool,), "object": (dict,), "array": (list,),
    "string": (str,), "integer": (int,), "number": (int, float),
}


def _type_check(types: list[str]) -> Check:
    """A check of JSON types by exact Python type (what json.load produces)."""
    exact: set[type] = set()
    for name in types:
        if name not in _PY_TYPES:
            raise ValueError(f"unsupported JSON Schema type {name!r}")
        exact.update(_PY_TYPES[name])
    integral_floats = "integer" in types and "number" not in types

    def check(value: Any) -> bool:
        kind = type(value)
        if kind in exact:
            return True
        if kind is bool or kind in (int, float, str, list, dict, type(None)):
            return integral_floats and kind is float and float(value).is_integer()
        return any(_is_type(value, name) for name in types)  # subclasses: the slow path

    return check


def _json_equal(a: Any, b: Any) -> bool:
    """Equality as JSON Schema defines it: true is not 1, 1.0 is 1."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    return bool(a == b)


def _in_enum(value: Any, options: tuple[Any, ...]) -> bool:
    return any(_json_equal(value, option) for option in options)


def _at_least(value: Any, minimum: float) -> bool:
    return not _is_type(value, "number") or bool(value >= minimum)


def _long_enough(value: Any, minimum: int) -> bool:
    return not isinstance(value, str) or len(value) >= minimum


def _has_keys(value: Any, keys: tuple[str, ...]) -> bool:
    return not isinstance(value, dict) or all(key in value for key in keys)


class _Compiler:
    def __init__(self, root: Mapping[str, Any]) -> None:
        self.root = root
        self.refs: dict[str, Check] = {}
        self.done: dict[str, Check] = {}

    def ref(self, pointer: str) -> Check:
        if not pointer.startswith("#/"):
            raise ValueError(f"only local $ref is supported, not {pointer!r}")
        if pointer not in self.refs:
            node: Any = self.root
            for part in pointer[2:].split("/"):
                node = node[part]
            holder: list[Check] = []
            self.refs[pointer] = lambda value: holder[0](value)  # allows recursion
            holder.append(self.compile(node))
            self.done[pointer] = holder[0]
        # once compiled, call it directly; the indirection only serves recursion
        return self.done.get(pointer, self.refs[pointer])

    def compile(self, node: Mapping[str, Any]) -> Check:
        unknown = set(node) - _KEYWORDS - _ANNOTATIONS
        if unknown:
            raise ValueError(f"JSON Schema keywords {sorted(unknown)} are not supported")
        checks: list[Check] = []
        if "$ref" in node:
            checks.append(self.ref(node["$ref"]))
        if "type" in node:
            types = node["type"] if isinstance(node["type"], list) else [node["type"]]
            checks.append(_type_check(types))
        if "enum" in node:
            checks.append(partial(_in_enum, options=tuple(node["enum"])))
        if "const" in node:
            checks.append(partial(_json_equal, node["const"]))
        if "minimum" in node:
            checks.append(partial(_at_least, minimum=node["minimum"]))
        if "minLength" in node:
            checks.append(partial(_long_enough, minimum=node["minLength"]))
        if "required" in node:
            checks.append(partial(_has_keys, keys=tuple(node["required"])))
        if "properties" in node:
            props = [(key, self.compile(sub)) for key, sub in node["properties"].items()]

            def properties(value: Any, props: list[tuple[str, Check]] = props) -> bool:
                if type(value) is not dict:
                    return True
                for key, check in props:
                    if key in value and not check(value[key]):
                        return False
                return True

            checks.append(properties)
        if "items" in node:
            item = self.compile(node["items"])

            def items(value: Any, check: Check = item) -> bool:
                if type(value) is not list:
                    return True
                for element in value:
                    if not check(element):
                        return False
                return True

            checks.append(items)
        if not checks:
            return lambda value: True
        if len(checks) == 1:
            return checks[0]

        def every(value: Any, checks: tuple[Check, ...] = tuple(checks)) -> bool:
            for check in checks:
                if not check(value):
                    return False
            return True

        return every


@cache
def fast_checker(name: str) -> Check:
    """The compiled checker of shipped schema ``name`` (True = valid)."""
    schema = load(name)
    return _Compiler(schema).compile(schema)


def first_error(name: str, document: Any) -> tuple[str, str] | None:
    """``(json_path, message)`` of the first problem, or None when valid."""
    if fast_checker(name)(document):
        return None
    error = jsonschema.exceptions.best_match(reference_validator(name).iter_errors(document))
    if error is None:  # pragma: no cover - the compiled subset and jsonschema disagree
        return ("$", "does not match the schema")
    return (error.json_path, short_message(error))
