"""Creating and checking the DynamoDB tables: idempotent, and clear about a table that differs."""

from typing import Any

import pytest

from referrals.adapters.clock import SystemClock
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.adapters.dynamodb.tables import (
    MAIN_GSIS,
    REPLACED_BY,
    RETIRED_GSIS,
    TTL_ATTRIBUTE,
    DynamoSetupError,
    main_table,
    outbox_table,
)
from referrals.domain.model import Role
from referrals.domain.program import RuleVersion
from referrals.services.keys import create_key
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up

PREFIX = "tables-test"


def tables(dynamodb_client: Any) -> list[str]:
    names: list[str] = dynamodb_client.list_tables()["TableNames"]
    return names


def test_create_tables_again_keeps_the_tables_and_their_items(dynamodb_client: Any) -> None:
    store = DynamoStore(dynamodb_client, PREFIX)
    store.create_tables()
    _, key = create_key(store, SystemClock(), Role.ADMIN)
    store.create_tables()
    with store.read() as uow:
        assert uow.api_keys.by_hash(key.key_hash) == key
    assert tables(dynamodb_client) == [f"{PREFIX}-main", f"{PREFIX}-outbox"]


def test_require_tables_names_the_missing_table_and_region_and_creates_nothing(
    dynamodb_client: Any,
) -> None:
    with pytest.raises(DynamoSetupError, match=f"{PREFIX}-main does not exist in region us-east-2"):
        DynamoStore(dynamodb_client, PREFIX).require_tables()
    assert tables(dynamodb_client) == []


def test_require_tables_accepts_tables_made_by_create_tables(dynamodb_client: Any) -> None:
    DynamoStore(dynamodb_client, PREFIX).create_tables()
    DynamoStore(dynamodb_client, PREFIX).require_tables()


def without_attributes(definition: dict[str, Any], *names: str) -> dict[str, Any]:
    """CreateTable refuses attribute definitions no key uses."""
    attributes = [a for a in definition["AttributeDefinitions"] if a["AttributeName"] not in names]
    return {**definition, "AttributeDefinitions": attributes}


def test_a_table_with_other_keys_names_it_and_both_key_schemas(dynamodb_client: Any) -> None:
    definition = main_table(PREFIX)
    definition["KeySchema"] = [{"AttributeName": "pk", "KeyType": "HASH"}]
    dynamodb_client.create_table(**without_attributes(definition, "sk"))
    with pytest.raises(DynamoSetupError) as raised:
        DynamoStore(dynamodb_client, PREFIX).create_tables()
    assert str(raised.value) == (
        f"DynamoDB table {PREFIX}-main in region us-east-2 is not the table referrals "
        "expects: its keys are (pk S), expected (pk S, sk S)"
    )
    assert tables(dynamodb_client) == [f"{PREFIX}-main"]  # stopped there: no outbox either


def test_a_missing_index_and_an_index_projecting_less_are_named(dynamodb_client: Any) -> None:
    indexes = main_table(PREFIX)["GlobalSecondaryIndexes"]
    kept = [i for i in indexes if i["IndexName"] != "by_period"]
    for index in kept:
        if index["IndexName"] == "by_id":
            index["Projection"] = {"ProjectionType": "KEYS_ONLY"}
    definition = {**main_table(PREFIX), "GlobalSecondaryIndexes": kept}
    dynamodb_client.create_table(**without_attributes(definition, "period_pk", "period_sk"))
    with pytest.raises(DynamoSetupError) as raised:
        DynamoStore(dynamodb_client, PREFIX).require_tables()
    assert str(raised.value).endswith(
        "expects: index by_id projects KEYS_ONLY, expected ALL; it has no index by_period"
    )


def test_an_index_beyond_the_design_is_accepted(dynamodb_client: Any) -> None:
    definition = main_table(PREFIX)
    definition["GlobalSecondaryIndexes"].append(
        {
            "IndexName": "by_email",
            "KeySchema": [{"AttributeName": "email", "KeyType": "HASH"}],
            "Projection": {"ProjectionType": "KEYS_ONLY"},
        }
    )
    definition["AttributeDefinitions"].append({"AttributeName": "email", "AttributeType": "S"})
    dynamodb_client.create_table(**definition)
    DynamoStore(dynamodb_client, PREFIX).create_tables()
    assert tables(dynamodb_client) == [f"{PREFIX}-main", f"{PREFIX}-outbox"]


def time_to_live(dynamodb_client: Any, table: str) -> dict[str, Any]:
    described: dict[str, Any] = dynamodb_client.describe_time_to_live(TableName=table)
    return described["TimeToLiveDescription"]


def test_create_tables_turns_on_time_to_live_as_the_stack_does(dynamodb_client: Any) -> None:
    DynamoStore(dynamodb_client, PREFIX).create_tables()
    assert time_to_live(dynamodb_client, f"{PREFIX}-main") == {
        "TimeToLiveStatus": "ENABLED",
        "AttributeName": TTL_ATTRIBUTE,
    }


def test_create_tables_turns_it_on_for_a_table_made_without_it(dynamodb_client: Any) -> None:
    dynamodb_client.create_table(**main_table(PREFIX))  # as an earlier `db upgrade` made it
    assert time_to_live(dynamodb_client, f"{PREFIX}-main")["TimeToLiveStatus"] == "DISABLED"
    DynamoStore(dynamodb_client, PREFIX).create_tables()
    assert time_to_live(dynamodb_client, f"{PREFIX}-main")["TimeToLiveStatus"] == "ENABLED"


EARLIER = {"keep": RETIRED_GSIS, "defer": REPLACED_BY}  # the indexes of the earlier design


def index_names(dynamodb_client: Any) -> set[str]:
    described = dynamodb_client.describe_table(TableName=f"{PREFIX}-main")["Table"]
    return {i["IndexName"] for i in described["GlobalSecondaryIndexes"]}


def test_a_table_of_the_earlier_design_is_accepted_and_read_while_it_migrates(
    dynamodb_client: Any,
) -> None:
    dynamodb_client.create_table(**main_table(PREFIX, **EARLIER))
    dynamodb_client.create_table(**outbox_table(PREFIX))
    store = DynamoStore(dynamodb_client, PREFIX)
    store.require_tables()  # the keys-only indexes are not built yet: their twins serve
    clock = SystemClock()
    code = enroll(store, clock, "alice").referrer.code
    sign_up(store, clock, RuleVersion(), "bob", code)
    with store.read() as uow:  # each of these queries an index the table does not have
        assert [r.referee_id for r in uow.referrals.for_referrer("alice", None, 10)] == ["bob"]
        assert [r.referee_id for r in uow.referrals.search(None, "alice", None, 10)] == ["bob"]
        assert uow.referrers.earnings("alice", clock.now()).earned_cents == 1000


def test_db_upgrade_adds_the_new_indexes_to_a_table_of_the_earlier_design(
    dynamodb_client: Any,
) -> None:
    dynamodb_client.create_table(**main_table(PREFIX, **EARLIER))
    dynamodb_client.create_table(**outbox_table(PREFIX))
    store = DynamoStore(dynamodb_client, PREFIX)
    clock = SystemClock()
    code = enroll(store, clock, "alice").referrer.code
    sign_up(store, clock, RuleVersion(), "bob", code)
    store.create_tables()
    # Added beside the retired ones, which servers of the earlier release may still read.
    assert index_names(dynamodb_client) == {*MAIN_GSIS, *RETIRED_GSIS}
    store.require_tables()
    with store.read() as uow:  # an item written before is in the new index
        assert [r.referee_id for r in uow.referrals.for_referrer("alice", None, 10)] == ["bob"]


def test_the_stack_may_keep_retired_indexes_and_defer_new_ones_by_name() -> None:
    names = {
        i["IndexName"]
        for i in main_table(PREFIX, keep={"unpaid"}, defer={"by_id"})["GlobalSecondaryIndexes"]
    }
    assert names == {*MAIN_GSIS, "unpaid"} - {"by_id"}
    with pytest.raises(ValueError, match="no such index to keep or defer: by_ids"):
        main_table(PREFIX, defer={"by_ids"})
