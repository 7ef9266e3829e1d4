"""Requests in plain Python values, rendered for the boto3 client by boto3's own tools.

The store speaks the client's API (it is handed a client, and one client serves
both tables), so it does the resource layer's conversions itself, with the same
public pieces: `TypeSerializer` and `TypeDeserializer` for values (an int is a
number, a str a string, a bool a boolean; None is an absent attribute), and
`ConditionExpressionBuilder` for conditions written with `Key` and `Attr`. Update
expressions, which boto3 does not build, come from `set`, `remove` and `add`
mappings here; every attribute goes through a placeholder, so reserved words
(`status`, `error`) need no care.

A write is the element of a TransactWriteItems (`{"Put": {...}}`): the unit of
work collects them, and the same element sent alone is a PutItem, UpdateItem or
DeleteItem.
"""

from collections.abc import Iterable, Mapping
from functools import reduce
from operator import and_
from typing import Any

from boto3.dynamodb.conditions import ConditionBase, ConditionExpressionBuilder
from boto3.dynamodb.types import TypeDeserializer, TypeSerializer

Values = dict[str, Any]  # an item, a key or a placeholder's values, as Python values
Write = dict[str, Any]  # one element of TransactWriteItems: {"Put" | "Update" | ...: {...}}

_serializer = TypeSerializer()
_deserializer = TypeDeserializer()


def to_item(values: Mapping[str, Any]) -> dict[str, Any]:
    """The client's typed form of an item or a key; a None value is an attribute left out."""
    return {name: _serializer.serialize(v) for name, v in values.items() if v is not None}


def from_item(item: Mapping[str, Any]) -> Values:
    """Plain values of the client's typed item (numbers come back as Decimal)."""
    return {name: _deserializer.deserialize(value) for name, value in item.items()}


def all_of(*conditions: ConditionBase | None) -> ConditionBase | None:
    """The conjunction of the conditions given (None ones skipped), or None if none is."""
    present = [c for c in conditions if c is not None]
    return reduce(and_, present) if present else None


def expression(
    *,
    key: ConditionBase | None = None,
    filter: ConditionBase | None = None,
    condition: ConditionBase | None = None,
    update: str | None = None,
    names: Mapping[str, str] | None = None,
    values: Mapping[str, Any] | None = None,
) -> dict[str, Any]:
    """The expression parameters of one request: its key condition, filter, condition and
    update expression, with the names and (typed) values of all their placeholders."""
    builder = ConditionExpressionBuilder()  # one per request: placeholders stay distinct
    params: dict[str, Any] = {}
    all_names, all_values = dict(names or {}), dict(values or {})
    for param, built_from, is_key in (
        ("KeyConditionExpression", key, True),
        ("FilterExpression", filter, False),
        ("ConditionExpression", condition, False),
    ):
        if built_from is not None:
            built = builder.build_expression(built_from, is_key_condition=is_key)
            params[param] = built.condition_expression
            all_names |= built.attribute_name_placeholders
            all_values |= built.attribute_value_placeholders
    if update is not None:
        params["UpdateExpression"] = update
    if all_names:  # DynamoDB refuses empty (and unused) placeholder maps
        params["ExpressionAttributeNames"] = all_names
    if all_values:
        params["ExpressionAttributeValues"] = to_item(all_values)
    return params


def put(table: str, item: Mapping[str, Any], condition: ConditionBase | None = None) -> Write:
    return {"Put": {"TableName": table, "Item": to_item(item), **expression(condition=condition)}}


def update(
    table: str,
    key: Mapping[str, Any],
    *,
    set: Mapping[str, Any] | None = None,
    remove: Iterable[str] = (),
    add: Mapping[str, int] | None = None,
    condition: ConditionBase | None = None,
) -> Write:
    """An UpdateItem: `set` attributes to values (None removes one), `remove` others, `add`
    to numbers."""
    clauses: list[str] = []
    names: dict[str, str] = {}
    values: Values = {}

    def name(attribute: str) -> str:
        placeholder = f"#u{len(names)}"
        names[placeholder] = attribute
        return placeholder

    def value(v: Any) -> str:
        placeholder = f":u{len(values)}"
        values[placeholder] = v
        return placeholder

    set = set or {}
    removed = [*remove, *(a for a, v in set.items() if v is None)]
    assigned = [f"{name(a)} = {value(v)}" for a, v in set.items() if v is not None]
    if assigned:
        clauses.append("SET " + ", ".join(assigned))
    if removed:
        clauses.append("REMOVE " + ", ".join(name(a) for a in removed))
    if add:
        clauses.append("ADD " + ", ".join(f"{name(a)} {value(v)}" for a, v in add.items()))
    params = expression(condition=condition, update=" ".join(clauses), names=names, values=values)
    return {"Update": {"TableName": table, "Key": to_item(key), **params}}


def update_with(
    table: str,
    key: Mapping[str, Any],
    update: str,
    values: Mapping[str, Any],
    condition: ConditionBase | None = None,
) -> Write:
    """An UpdateItem whose update expression is written out, for DynamoDB's functions
    (`if_not_exists`); its value placeholders must not look like a built condition's
    (`:v0`)."""
    params = expression(condition=condition, update=update, values=values)
    return {"Update": {"TableName": table, "Key": to_item(key), **params}}


def delete(table: str, key: Mapping[str, Any], condition: ConditionBase | None = None) -> Write:
    return {"Delete": {"TableName": table, "Key": to_item(key), **expression(condition=condition)}}


def check(table: str, key: Mapping[str, Any], condition: ConditionBase) -> Write:
    params = expression(condition=condition)
    return {"ConditionCheck": {"TableName": table, "Key": to_item(key), **params}}
