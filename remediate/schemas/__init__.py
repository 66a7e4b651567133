"""The JSON Schemas shipped in the package (facts, policy, plan), loaded once per process.

Every layer reads them from here: :mod:`remediate.plan` checks a plan file,
:mod:`remediate.policy` a policy, :mod:`remediate.facts` a facts document.
This module imports nothing of memcg-fix but where the files are, so none of
them has to import a layer above it.
"""

from __future__ import annotations

import json
from functools import cache
from typing import Any

import jsonschema

from ..resources import schema_path

FACTS: str = "facts.schema.json"
POLICY: str = "policy.schema.json"
PLAN: str = "plan.schema.json"


@cache
def load(name: str) -> dict[str, Any]:
    """Shipped schema ``name``, itself checked against its metaschema."""
    with open(schema_path(name), encoding="utf-8") as handle:
        schema: dict[str, Any] = json.load(handle)
    jsonschema.validators.validator_for(schema).check_schema(schema)
    return schema


@cache
def validator(name: str) -> Any:
    """The jsonschema validator of shipped schema ``name``."""
    schema = load(name)
    return jsonschema.validators.validator_for(schema)(schema)


def policy_validator() -> Any:
    return validator(POLICY)


def plan_validator() -> Any:
    return validator(PLAN)


def policy_schema() -> dict[str, Any]:
    return load(POLICY)


def plan_schema() -> dict[str, Any]:
    return load(PLAN)


def short_message(error: jsonschema.exceptions.ValidationError, limit: int = 200) -> str:
    """The error's message with the offending value shortened: a wrong ``hosts``
    would otherwise quote the whole fleet in a one-line error."""
    message = error.message
    if len(message) <= limit:
        return message
    value = repr(error.instance)
    if value in message:
        return message.replace(value, value[:60] + "..." + value[-1:], 1)
    return message[: limit - 3] + "..."
