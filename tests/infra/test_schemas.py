"""pydantic request schemas as the JSON Schema draft 4 API Gateway validates with."""

from typing import Annotated

import pytest
from pydantic import BaseModel, ConfigDict, Field

from infra.schemas import DRAFT_04, draft4, json_schema, request_schema
from referrals.api.schemas import LegacySignupRequest


class Address(BaseModel):
    model_config = ConfigDict(extra="forbid")
    city: Annotated[str, Field(max_length=10)]


class Order(BaseModel):
    model_config = ConfigDict(extra="forbid")
    ship_to: Address
    note: Annotated[str, Field(max_length=5, json_schema_extra={"format": "ipv4"})] | None = None
    tags: list[Annotated[str, Field(pattern="^[a-z]+$")]] = []


def test_references_are_inlined() -> None:
    schema = draft4(Order.model_json_schema())
    assert schema["properties"]["ship_to"] == {
        "type": "object",
        "title": "Address",
        "properties": {"city": {"type": "string", "title": "City", "maxLength": 10}},
        "required": ["city"],
        "additionalProperties": False,
    }
    assert "$defs" not in schema


def test_an_optional_field_allows_null_and_keeps_its_constraints() -> None:
    note = draft4(Order.model_json_schema())["properties"]["note"]
    assert note == {"type": ["string", "null"], "maxLength": 5, "title": "Note"}


def test_array_items_are_converted() -> None:
    tags = draft4(Order.model_json_schema())["properties"]["tags"]
    assert tags == {
        "type": "array",
        "title": "Tags",
        "items": {"type": "string", "pattern": "^[a-z]+$"},
    }


def test_the_schema_declares_draft_4() -> None:
    assert request_schema(LegacySignupRequest)["$schema"] == DRAFT_04


def test_a_union_of_two_types_is_refused() -> None:
    with pytest.raises(ValueError, match=r"X \| None"):
        draft4({"anyOf": [{"type": "string"}, {"type": "integer"}]})


def test_an_unknown_keyword_is_refused() -> None:
    with pytest.raises(ValueError, match="'const'"):
        draft4({"type": "string", "const": "x"})


def test_the_cdk_struct_keeps_every_constraint() -> None:
    struct = json_schema(request_schema(LegacySignupRequest))
    assert struct.additional_properties is False
    assert struct.required == ["userId", "referralCode"]
    assert struct.properties is not None
    user_id = struct.properties["userId"]
    assert (user_id.max_length, user_id.min_length, user_id.pattern) == (
        128,
        1,
        "^[A-Za-z0-9._:@+-]+$",
    )
