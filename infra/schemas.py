"""API Gateway request models generated from the service's own pydantic schemas.

API Gateway validates request bodies against JSON Schema draft 4. pydantic emits
draft 2020-12, so the schema is rewritten into the subset both agree on: `$ref`s
are inlined, an optional field's `anyOf [X, null]` becomes `type: [X, "null"]`,
and keywords the gateway would apply differently from the service are dropped.
The gateway is only a first, cheap filter: the service validates every body
again, so dropping a keyword can let a bad body through to a 400 from the app,
never reject a good one.
"""

from collections.abc import Mapping
from typing import Any

from aws_cdk import aws_apigateway as apigw
from pydantic import BaseModel

DRAFT_04 = "http://json-schema.org/draft-04/schema#"

# `format` (email, date-time): the gateway's checks are not the service's (e.g.
# internationalised addresses), and a mismatch would refuse good requests.
# `default`, `examples`: documentation only.
_DROPPED = frozenset({"format", "default", "examples"})
_KEPT = frozenset(
    {
        "type",
        "title",
        "description",
        "properties",
        "required",
        "additionalProperties",
        "minLength",
        "maxLength",
        "pattern",
        "enum",
        "items",
        "minimum",
        "maximum",
        "minItems",
        "maxItems",
    }
)


def draft4(schema: Mapping[str, Any]) -> dict[str, Any]:
    """The draft-04 form of a pydantic `model_json_schema()`."""
    definitions: Mapping[str, Any] = schema.get("$defs", {})
    converted = _convert(schema, definitions)
    return {"$schema": DRAFT_04, **converted}


def _convert(node: Mapping[str, Any], definitions: Mapping[str, Any]) -> dict[str, Any]:
    if "$ref" in node:
        name = str(node["$ref"]).removeprefix("#/$defs/")
        return _convert({**definitions[name], **_without(node, "$ref")}, definitions)
    if "anyOf" in node:
        if all("required" in branch for branch in node["anyOf"]):
            # "One of these fields is required" (a signup's code or click id): dropped,
            # the app checks it.
            return _convert(_without(node, "anyOf"), definitions)
        if {"type": "null"} not in node["anyOf"]:
            return _convert(_one_type(node), definitions)
        return _convert(_nullable(node), definitions)
    out: dict[str, Any] = {}
    for key, value in node.items():
        if key in _DROPPED or key == "$defs":
            continue
        if key not in _KEPT:
            raise ValueError(f"JSON Schema keyword {key!r} has no draft-04 conversion")
        if key == "properties":
            out[key] = {name: _convert(prop, definitions) for name, prop in value.items()}
        elif key == "items" or (key == "additionalProperties" and isinstance(value, Mapping)):
            out[key] = _convert(value, definitions)
        else:
            out[key] = value
    return out


def _nullable(node: Mapping[str, Any]) -> dict[str, Any]:
    """`anyOf: [X, {type: null}]` (an optional pydantic field) as X that also allows null."""
    branches = [b for b in node["anyOf"] if b != {"type": "null"}]
    if len(branches) == 1 and "anyOf" in branches[0]:
        branches = [_one_type(branches[0])]
    if len(branches) != 1 or len(node["anyOf"]) != 2 or "type" not in branches[0]:
        raise ValueError(f"only `X | None` unions convert to draft-04, got {node['anyOf']!r}")
    (branch,) = branches
    return {**_without(node, "anyOf"), **branch, "type": [branch["type"], "null"]}


def _one_type(node: Mapping[str, Any]) -> dict[str, Any]:
    """`anyOf` of branches of one type (an IPv4 or IPv6 string) as that type: the gateway's
    model is a coarse first check, the app checks the value itself."""
    types = {branch.get("type") for branch in node["anyOf"]}
    if len(types) != 1 or None in types:
        raise ValueError(f"only `X | None` unions convert to draft-04, got {node['anyOf']!r}")
    return {**_without(node, "anyOf"), "type": types.pop()}


def _without(node: Mapping[str, Any], key: str) -> dict[str, Any]:
    return {k: v for k, v in node.items() if k != key}


_TYPES = {t.name.lower(): t for t in apigw.JsonSchemaType}
_STRUCT_FIELDS = {
    "title": "title",
    "description": "description",
    "required": "required",
    "additionalProperties": "additional_properties",
    "minLength": "min_length",
    "maxLength": "max_length",
    "pattern": "pattern",
    "enum": "enum",
    "minimum": "minimum",
    "maximum": "maximum",
    "minItems": "min_items",
    "maxItems": "max_items",
}


def json_schema(schema: Mapping[str, Any]) -> apigw.JsonSchema:
    """A draft-04 schema dict as the CDK struct API Gateway models are built from."""
    kwargs: dict[str, Any] = {}
    for key, value in schema.items():
        if key == "$schema":
            kwargs["schema"] = apigw.JsonSchemaVersion.DRAFT4
        elif key == "type":
            kwargs["type"] = (
                [_TYPES[t] for t in value] if isinstance(value, list) else _TYPES[value]
            )
        elif key == "properties":
            kwargs["properties"] = {name: json_schema(p) for name, p in value.items()}
        elif key == "items":
            kwargs["items"] = json_schema(value)
        elif key == "additionalProperties" and isinstance(value, Mapping):
            kwargs["additional_properties"] = json_schema(value)
        else:
            kwargs[_STRUCT_FIELDS[key]] = value
    return apigw.JsonSchema(**kwargs)


def request_schema(model: type[BaseModel]) -> dict[str, Any]:
    """The draft-04 request schema of a pydantic request model."""
    return draft4(model.model_json_schema())
