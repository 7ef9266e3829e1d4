"""StepFunctionsPayoutStarter on moto: one execution per period however often it is
started, and a new one only once the period's execution has ended."""

import json
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import boto3
import pytest
from botocore.exceptions import ClientError
from moto import mock_aws

from referrals.adapters import stepfunctions
from referrals.adapters.stepfunctions import StepFunctionsPayoutStarter
from referrals.domain.errors import Unavailable

REGION = "us-east-2"
# A definition moto stores: the executions are what these tests look at, not its states.
DEFINITION = {"StartAt": "Paid", "States": {"Paid": {"Type": "Succeed"}}}


@dataclass(frozen=True)
class Machine:
    client: Any
    arn: str

    def executions(self, status: str | None = None) -> list[dict[str, Any]]:
        filters = {"statusFilter": status} if status else {}
        found: list[dict[str, Any]] = self.client.list_executions(
            stateMachineArn=self.arn, **filters
        )["executions"]
        return found


@pytest.fixture
def machine(monkeypatch: pytest.MonkeyPatch) -> Iterator[Machine]:
    monkeypatch.setenv("AWS_ACCESS_KEY_ID", "testing")
    monkeypatch.setenv("AWS_SECRET_ACCESS_KEY", "testing")
    with mock_aws():
        client = boto3.client("stepfunctions", region_name=REGION)
        arn = client.create_state_machine(
            name="referrals-test-payout",
            definition=json.dumps(DEFINITION),
            roleArn="arn:aws:iam::123456789012:role/referrals-test-states",
        )["stateMachineArn"]
        yield Machine(client, arn)


def test_start_runs_an_execution_named_for_the_period_with_the_period_as_input(
    machine: Machine,
) -> None:
    started = StepFunctionsPayoutStarter(machine.client, machine.arn).start("2026-10")
    execution = machine.client.describe_execution(executionArn=started)
    assert execution["name"] == "payout-2026-10"
    assert json.loads(execution["input"]) == {"period": "2026-10"}
    assert execution["status"] == "RUNNING"


def test_starting_again_while_it_runs_finds_the_same_execution(machine: Machine) -> None:
    first = StepFunctionsPayoutStarter(machine.client, machine.arn).start("2026-10")
    # Another instance of the API function, with a client of its own.
    other = boto3.client("stepfunctions", region_name=REGION)
    again = StepFunctionsPayoutStarter(other, machine.arn).start("2026-10")
    assert again == first
    assert len(machine.executions()) == 1


def test_each_period_has_its_own_execution(machine: Machine) -> None:
    starter = StepFunctionsPayoutStarter(machine.client, machine.arn)
    assert starter.start("2026-09") != starter.start("2026-10")
    assert sorted(e["name"] for e in machine.executions()) == [
        "payout-2026-09",
        "payout-2026-10",
    ]


def test_once_the_periods_execution_ended_the_next_start_is_a_new_one(machine: Machine) -> None:
    starter = StepFunctionsPayoutStarter(machine.client, machine.arn)
    first = starter.start("2026-10")
    machine.client.stop_execution(executionArn=first)  # it failed, timed out, was stopped
    second = starter.start("2026-10")
    assert second != first
    assert machine.client.describe_execution(executionArn=second)["name"] == "payout-2026-10-2"
    # Started again while the second runs: the second, not a third.
    assert starter.start("2026-10") == second
    assert [e["name"] for e in machine.executions("RUNNING")] == ["payout-2026-10-2"]


def test_an_error_other_than_an_existing_name_is_unavailable(machine: Machine) -> None:
    # A 503 to the API's caller, whose request was fine; the cause stays chained.
    missing = machine.arn.replace("referrals-test-payout", "no-such-machine")
    with pytest.raises(Unavailable, match="StateMachineDoesNotExist") as raised:
        StepFunctionsPayoutStarter(machine.client, missing).start("2026-10")
    assert isinstance(raised.value.__cause__, ClientError)


def test_a_period_whose_executions_all_ended_stops_trying(
    machine: Machine, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr(stepfunctions, "MAX_ATTEMPTS", 3)  # the same loop, shorter
    starter = StepFunctionsPayoutStarter(machine.client, machine.arn)
    for _ in range(3):
        machine.client.stop_execution(executionArn=starter.start("2026-10"))
    with pytest.raises(RuntimeError, match=r"3 executions .* have ended without completing"):
        starter.start("2026-10")
    assert len(machine.executions()) == 3
