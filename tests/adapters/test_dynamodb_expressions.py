"""Plain values to the client's typed requests and back, and the Queries the tables send."""

from collections.abc import Iterator
from decimal import Decimal
from typing import Any

import boto3
import pytest
from boto3.dynamodb.conditions import Attr, Key
from moto import mock_aws

from referrals.adapters.dynamodb.access import ConditionFailed, Tables
from referrals.adapters.dynamodb.expressions import all_of, from_item, put, to_item, update
from referrals.adapters.dynamodb.tables import main_table
from tests.adapters.conftest import AWS_REGION


def test_none_is_an_attribute_left_out_and_numbers_come_back_as_decimal() -> None:
    item = to_item({"pk": "A", "count": 3, "flag": True, "note": None})
    assert item == {"pk": {"S": "A"}, "count": {"N": "3"}, "flag": {"BOOL": True}}
    assert from_item(item) == {"pk": "A", "count": Decimal(3), "flag": True}


def test_an_update_sets_removes_a_none_and_adds_through_placeholders() -> None:
    body = update(
        "t",
        {"pk": "A"},
        set={"status": "paid", "error": None},
        remove=("lease_owner",),
        add={"attempts": 1},
        condition=Attr("status").eq("running"),
    )["Update"]
    names, values = body["ExpressionAttributeNames"], body["ExpressionAttributeValues"]
    expression = body["UpdateExpression"]
    for placeholder, name in names.items():  # every name is a placeholder, reserved or not
        expression = expression.replace(placeholder, name)
    assert expression.replace(":u0", "'paid'").replace(":u1", "1") == (
        "SET status = 'paid' REMOVE lease_owner, error ADD attempts 1"
    )
    condition = body["ConditionExpression"]
    assert [names[n] for n in names if n in condition] == ["status"]
    assert values == {":u0": {"S": "paid"}, ":u1": {"N": "1"}, ":v0": {"S": "running"}}
    assert body["Key"] == {"pk": {"S": "A"}}


def test_all_of_skips_missing_conditions() -> None:
    assert all_of(None, None) is None
    one = Attr("a").eq(1)
    assert all_of(None, one) is one


@pytest.fixture
def tables() -> Iterator[Tables]:
    with mock_aws():
        client = boto3.client("dynamodb", region_name=AWS_REGION)
        client.create_table(**main_table("expr"))
        yield Tables(client, "expr")


def sent_queries(tables: Tables) -> list[dict[str, Any]]:
    """The parameters of every Query the client sends from now on, paginated or not."""
    sent: list[dict[str, Any]] = []

    def record(params: dict[str, Any], **_: Any) -> None:
        sent.append(dict(params))

    tables.client.meta.events.register("provide-client-params.dynamodb.Query", record)
    return sent


def fill(tables: Tables, count: int) -> None:
    for n in range(count):
        tables.send(put(tables.main, {"pk": "P", "sk": f"{n:03d}", "n": n}))


def test_a_query_with_a_limit_asks_for_that_many_and_stops(tables: Tables) -> None:
    fill(tables, 5)
    sent = sent_queries(tables)
    found = list(tables.query(tables.main, Key("pk").eq("P"), limit=3, consistent=True))
    assert [item["sk"] for item in found] == ["000", "001", "002"]
    assert [q["Limit"] for q in sent] == [3]  # one request: no page past the limit


def test_a_filtered_query_pages_on_until_it_has_its_limit(tables: Tables) -> None:
    fill(tables, 6)
    sent = sent_queries(tables)
    even = Attr("n").is_in([0, 2, 4])
    found = tables.query(tables.main, Key("pk").eq("P"), filter=even, limit=3)
    assert [item["n"] for item in found] == [0, 2, 4]
    # A page reads `Limit` items before the filter: 0-2 keep two, 3-5 the third.
    assert [q["Limit"] for q in sent] == [3, 3]


def test_newest_first_projection_and_count(tables: Tables) -> None:
    fill(tables, 5)
    sent = sent_queries(tables)
    newest = tables.query(tables.main, Key("pk").eq("P"), newest_first=True, project="sk")
    assert list(newest) == [{"sk": f"{n:03d}"} for n in (4, 3, 2, 1, 0)]
    assert tables.count(tables.main, Key("pk").eq("P") & Key("sk").gt("001")) == 3
    assert [q.get("Select") for q in sent] == [None, "COUNT"]


def test_a_write_sent_alone_whose_condition_fails_raises_condition_failed(
    tables: Tables,
) -> None:
    fill(tables, 1)
    with pytest.raises(ConditionFailed):
        tables.send(put(tables.main, {"pk": "P", "sk": "000"}, Attr("pk").not_exists()))
    assert tables.get(tables.main, {"pk": "P", "sk": "000"}) == {"pk": "P", "sk": "000", "n": 0}
