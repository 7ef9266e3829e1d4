"""The DynamoDB capacity a signup and a paid reward cost, priced as bench/dynamodb_capacity.py
prices them (DynamoDB's published rules): a change that writes more fails here.

Issue 26 asks for at most 8 WCU per signup and 6 per paid reward. A paid reward is
within it; a signup is not yet (see BENCHMARKS.md: five facts committed together
in one transaction cost 10 WCU before any index), so its bound here is what the
design reaches today, to be lowered as the signup's transaction shrinks.
"""

from typing import Any

import pytest

from bench.dynamodb_capacity import gsi_writes, measure

SIGNUP_WCU = 16.0  # issue 26's goal: 8
PAID_REWARD_WCU = 6.0  # issue 26's goal


@pytest.fixture(scope="module")
def priced() -> dict[str, Any]:
    # 60 rewards: the run's own writes (claim, fences, completion) spread over them.
    return measure(signups=60, referrers=6)


def test_a_signup_costs_at_most_16_wcu_in_one_transaction(priced: dict[str, Any]) -> None:
    signup = priced["per_signup"]
    assert signup["requests"]["transact_write_items"] == 1.0
    assert signup["requests"]["put_item"] == 1.0  # the id claim, on its own
    assert signup["wcu"] <= SIGNUP_WCU


def test_a_paid_reward_costs_at_most_6_wcu(priced: dict[str, Any]) -> None:
    assert priced["per_paid_reward"]["wcu"] <= PAID_REWARD_WCU


def s(value: str) -> dict[str, str]:
    return {"S": value}


GSIS = {
    "keys": (("a", "S"), ("b", "S")),
    "all": (("c", "S"), ("d", "S")),
}
BEFORE = {"pk": s("1"), "a": s("x"), "b": s("y"), "c": s("x"), "d": s("y"), "state": s("old")}


def test_an_index_of_keys_only_is_not_written_when_other_attributes_change() -> None:
    after = {**BEFORE, "state": s("new")}
    assert gsi_writes(BEFORE, after, GSIS, frozenset({"keys"})) == 1  # the ALL index only
    assert gsi_writes(BEFORE, after, GSIS) == 2  # both, when both project everything


def test_an_index_key_that_changes_costs_two_writes_and_leaving_one() -> None:
    moved = {**BEFORE, "b": s("z")}
    # A delete and a put in the one whose key moved; a copy re-written in the other.
    assert gsi_writes(BEFORE, moved, GSIS, frozenset({"keys"})) == 2 + 1
    left = {k: v for k, v in BEFORE.items() if k != "d"}
    assert gsi_writes(BEFORE, left, GSIS, frozenset({"keys"})) == 1
