"""The compiled facts-schema checker agrees with jsonschema (the reference)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from remediate.facts import collect_local, document, schema
from remediate.facts.schema import _Compiler

NAME = "facts.schema.json"
REPO = Path(__file__).resolve().parents[3]

json_values = st.recursive(
    st.none() | st.booleans() | st.integers(-5, 70000) | st.floats(allow_nan=False)
    | st.text(max_size=5) | st.sampled_from(["v1", "v2", "hybrid", "rhel", "absent", "layout"]),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=4), inner,
                                                                 max_size=3),
    max_leaves=6,
)


@pytest.fixture(scope="module")
def valid_doc() -> dict[str, Any]:
    return document([collect_local("reference")], "0.1.0")


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    out = [prefix]
    if isinstance(node, dict):
        for key, value in node.items():
            out += _paths(value, (*prefix, key))
    elif isinstance(node, list):
        for i, value in enumerate(node):
            out += _paths(value, (*prefix, i))
    return out


def _set(doc: Any, path: tuple[Any, ...], value: Any) -> Any:
    if not path:
        return value
    node = doc
    for part in path[:-1]:
        node = node[part]
    node[path[-1]] = value
    return doc


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(data=st.data(), value=json_values)
def test_fast_checker_agrees_with_jsonschema(valid_doc: dict[str, Any], data: st.DataObject,
                                             value: Any) -> None:
    paths = _paths(valid_doc)
    path = data.draw(st.sampled_from(paths))
    doc = _set(copy.deepcopy(valid_doc), path, value)
    fast = schema.fast_checker(NAME)(doc)
    reference = schema.reference_validator(NAME).is_valid(doc)
    assert fast == reference, (path, value)


def test_the_collected_document_is_valid(valid_doc: dict[str, Any]) -> None:
    assert schema.first_error(NAME, valid_doc) is None
    assert schema.first_error(NAME, json.loads(json.dumps(valid_doc))) is None


def test_first_error_names_the_json_path(valid_doc: dict[str, Any]) -> None:
    doc = copy.deepcopy(valid_doc)
    doc["hosts"][0]["facts"]["memcg"]["dying"] = "many"
    assert schema.first_error(NAME, doc) == (
        "$.hosts[0].facts.memcg.dying", "'many' is not of type 'integer', 'null'")


def test_booleans_are_not_integers_and_integral_floats_are() -> None:
    check = _Compiler({}).compile({"type": "integer", "minimum": 0})
    assert check(3) and check(3.0) and not check(True) and not check(-1) and not check("3")
    enum = _Compiler({}).compile({"enum": [1, None]})
    assert enum(1) and enum(1.0) and enum(None) and not enum(True)


def test_unsupported_keywords_fail_compilation() -> None:
    with pytest.raises(ValueError, match="not supported"):
        _Compiler({}).compile({"type": "object", "patternProperties": {}})
    with pytest.raises(ValueError, match="only local"):
        _Compiler({}).compile({"$ref": "https://example.org/x.json"})


def test_shipped_schema_is_draft_2020_12_and_pins_version_1() -> None:
    shipped = json.loads((REPO / "remediate/schemas/facts.schema.json").read_text())
    assert shipped["$schema"] == "https://json-schema.org/draft/2020-12/schema"
    assert shipped["properties"]["schema_version"] == {"const": 1}
