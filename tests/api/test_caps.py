"""Monthly and lifetime caps over HTTP: cut rewards, receipts that say so, room given back."""

from typing import Any

import pytest
from fastapi.testclient import TestClient
from pydantic import ValidationError

from referrals.config import Settings
from tests.api.common import signup

Headers = dict[str, str]


@pytest.fixture
def settings_overrides() -> dict[str, Any]:
    return {"monthly_cap_cents": 1500, "check_disposable_email": False}


def test_a_capped_reward_is_cut_and_its_receipt_names_the_cap(
    client: TestClient, admin: Headers, alice_code: str
) -> None:
    first, second = (signup(client, admin, user, alice_code) for user in ("bob", "carol"))
    assert (first["reward_cents"], second["reward_cents"]) == (1000, 500)
    receipt = client.get(f"/v1/referrals/{second['id']}", headers=admin).json()["receipt"]
    assert receipt["cap"] == "monthly"
    assert receipt["tier"] == {"threshold": 1, "reward_cents": 1000}
    alice = client.get("/v1/referrers/alice", headers=admin).json()
    assert (alice["referral_count"], alice["earned_cents"]) == (2, 1500)


def test_a_reversed_reward_gives_its_room_back(
    client: TestClient, admin: Headers, alice_code: str
) -> None:
    first = signup(client, admin, "bob", alice_code)
    signup(client, admin, "carol", alice_code)
    reversed_ = client.post(
        f"/v1/referrals/{first['id']}/reverse", json={"reason": "refund"}, headers=admin
    )
    assert reversed_.status_code == 200
    assert signup(client, admin, "dave", alice_code)["reward_cents"] == 1000


@pytest.mark.parametrize("name", ["monthly_cap_cents", "lifetime_cap_cents"])
def test_a_negative_cap_is_refused_at_start(name: str) -> None:
    with pytest.raises(ValidationError):
        Settings(**{name: -1})
