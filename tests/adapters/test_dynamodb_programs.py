"""Programs on DynamoDB: the items they make and the requests that read them (the
behaviour every store shares is in tests/contract/test_program_store.py)."""

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import boto3
import pytest
from moto import mock_aws

from referrals.adapters.dynamodb.expressions import from_item, to_item
from referrals.adapters.dynamodb.store import DynamoStore
from referrals.domain.errors import Conflict
from referrals.domain.program import Program, ProgramStatus, RuleVersion
from referrals.domain.tiers import Tier, TierSchedule
from tests.adapters.conftest import AWS_REGION

T0 = datetime(2026, 3, 1, 12, 0, 0, 123456, tzinfo=UTC)
PREFIX = "programs"


@pytest.fixture
def store() -> Iterator[DynamoStore]:
    with mock_aws():
        store = DynamoStore(boto3.client("dynamodb", region_name=AWS_REGION), PREFIX)
        store.create_tables()
        yield store


def sent(store: DynamoStore) -> list[tuple[str, dict[str, Any]]]:
    """The operation and parameters of every request the client sends from now on."""
    requests: list[tuple[str, dict[str, Any]]] = []

    def record(params: dict[str, Any], event_name: str, **_: Any) -> None:
        requests.append((event_name.rsplit(".", 1)[-1], dict(params)))

    store.tables.client.meta.events.register("provide-client-params.dynamodb.*", record)
    return requests


def raw(store: DynamoStore, pk: str, sk: str) -> dict[str, Any] | None:
    key = to_item({"pk": pk, "sk": sk})
    found = store.tables.client.get_item(TableName=store.tables.main, Key=key)
    return from_item(found["Item"]) if "Item" in found else None


def add(store: DynamoStore, program_id: str) -> None:
    with store.unit_of_work() as uow:
        uow.programs.add(
            Program(program_id, program_id.title(), created_at=T0),
            RuleVersion(program_id=program_id, effective_from=T0, created_at=T0),
        )
        uow.commit()


def test_a_program_is_one_transaction_of_its_item_listing_and_first_version(
    store: DynamoStore,
) -> None:
    requests = sent(store)
    add(store, "partners")
    [(operation, params)] = requests
    assert operation == "TransactWriteItems"
    keys = [from_item(write["Put"]["Item"]) for write in params["TransactItems"]]
    assert [(k["pk"], k["sk"]) for k in keys] == [
        ("PROGRAM#partners", "PROGRAM"),
        ("PROGRAMS", "partners"),
        ("PROGRAM#partners", "RULES#000001"),
    ]
    assert all(
        "attribute_not_exists" in w["Put"]["ConditionExpression"] for w in params["TransactItems"]
    )


def test_a_rule_version_item_keeps_its_rules_as_compact_json_and_times_in_micros(
    store: DynamoStore,
) -> None:
    add(store, "partners")
    item = raw(store, "PROGRAM#partners", "RULES#000001")
    assert item is not None
    assert item["effective_from"] == item["created_at"] == 1772366400123456
    assert item["rules"] == json.dumps(
        RuleVersion().to_dict(), sort_keys=True, separators=(",", ":")
    )
    assert raw(store, "PROGRAMS", "partners") == {"pk": "PROGRAMS", "sk": "partners"}


def test_listing_queries_the_listing_partition_and_never_scans(store: DynamoStore) -> None:
    for program_id in ("zeta", "alpha"):
        add(store, program_id)
    requests = sent(store)
    with store.read() as uow:
        assert [p.id for p in uow.programs.list()] == ["alpha", "zeta"]
    assert [operation for operation, _ in requests] == ["Query", "GetItem", "GetItem"]
    query = requests[0][1]
    assert query["ConsistentRead"] is True
    assert query["ExpressionAttributeValues"] == {":v0": {"S": "PROGRAMS"}}


def test_versions_are_one_consistent_query_in_number_order_past_nine(
    store: DynamoStore,
) -> None:
    add(store, "partners")
    for n in range(2, 13):
        with store.unit_of_work() as uow:
            uow.programs.add_version(
                RuleVersion(
                    tiers=TierSchedule((Tier(1, n),)),
                    program_id="partners",
                    version=n,
                    effective_from=T0 + timedelta(days=n),
                )
            )
            uow.commit()
    requests = sent(store)
    with store.read() as uow:
        versions = uow.programs.versions("partners")
    assert [v.version for v in versions] == list(range(1, 13))
    [(operation, query)] = requests
    assert (operation, query["ConsistentRead"]) == ("Query", True)
    assert "begins_with" in query["KeyConditionExpression"]


def test_updating_a_missing_program_conflicts_and_creates_no_item(store: DynamoStore) -> None:
    with pytest.raises(Conflict), store.unit_of_work() as uow:
        uow.programs.update(Program("ghost", "Ghost", created_at=T0), ProgramStatus.ACTIVE)
        uow.commit()
    assert raw(store, "PROGRAM#ghost", "PROGRAM") is None


def test_a_program_is_written_once_per_unit_of_work(store: DynamoStore) -> None:
    with store.unit_of_work() as uow:
        uow.programs.add(
            Program("partners", "Partners", created_at=T0), RuleVersion(program_id="partners")
        )
        with pytest.raises(ValueError, match="already written"):
            uow.programs.update(Program("partners", "Renamed", created_at=T0), ProgramStatus.ACTIVE)
        with pytest.raises(Conflict):
            uow.programs.add_version(RuleVersion(program_id="partners"))
        uow.commit()
    with store.read() as uow:
        program = uow.programs.get("partners")
        assert program is not None and program.name == "Partners"
        assert len(uow.programs.versions("partners")) == 1
