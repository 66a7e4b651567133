"""The JSON Schemas shipped in the package, compiled once per process."""

from __future__ import annotations

import json
from functools import cache
from typing import Any

from jsonschema import Draft202012Validator

from ..resources import schema_path


@cache
def _schema(name: str) -> dict[str, Any]:
    with open(schema_path(name), encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    return schema


@cache
def policy_validator() -> Draft202012Validator:
    return Draft202012Validator(_schema("policy.schema.json"))


@cache
def plan_validator() -> Draft202012Validator:
    return Draft202012Validator(_schema("plan.schema.json"))


def policy_schema() -> dict[str, Any]:
    return _schema("policy.schema.json")


def plan_schema() -> dict[str, Any]:
    return _schema("plan.schema.json")
