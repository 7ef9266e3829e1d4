"""Concurrent signups against a real server: exact ordinals, tier prices, idempotent replays."""

import threading
from collections import Counter
from concurrent.futures import ThreadPoolExecutor
from typing import Any

import httpx
import pytest

from referrals.domain.tiers import DEFAULT_TIERS

pytestmark = pytest.mark.e2e

THREADS = 32
SIGNUPS = 200
REFERRERS = 4


def literal_reward_cents(ordinal: int) -> int:
    """The default schedule written out by hand, so a wrong DEFAULT_TIERS cannot hide itself."""
    if ordinal >= 25:
        return 2500
    if ordinal >= 10:
        return 2000
    if ordinal >= 5:
        return 1500
    return 1000


class ThreadClients:
    """One httpx client per worker thread: a client's connection pool is not shared."""

    def __init__(self, server: Any, key: str) -> None:
        self._server = server
        self._key = key
        self._local = threading.local()

    def get(self) -> httpx.Client:
        if not hasattr(self._local, "client"):
            self._local.client = self._server.client(self._key)
        return self._local.client


def test_literal_schedule_matches_default_tiers_at_every_boundary() -> None:
    # The assertions below trust DEFAULT_TIERS; pin it to the documented schedule first.
    boundaries = {1: 1000, 4: 1000, 5: 1500, 9: 1500, 10: 2000, 24: 2000, 25: 2500, 1000: 2500}
    for ordinal, cents in boundaries.items():
        assert literal_reward_cents(ordinal) == cents
        assert DEFAULT_TIERS.reward_for(ordinal) == cents, ordinal


@pytest.fixture
def server(module_server: Any) -> Any:
    # Both scenarios use their own referrers, so they can share one server process.
    return module_server


def test_concurrent_signups_get_exact_ordinals_and_tier_rewards(
    server: Any, admin: httpx.Client, all_referrals: Any
) -> None:
    referrers: dict[str, str] = {}
    for n in range(REFERRERS):
        response = admin.post("/v1/referrers", json={"user_id": f"referrer-{n}"})
        assert response.status_code == 201, response.text
        referrers[f"referrer-{n}"] = response.json()["code"]
    names = sorted(referrers)
    referees = {f"referee-{i}": names[i % REFERRERS] for i in range(SIGNUPS)}
    clients = ThreadClients(server, server.printed_key)

    def sign_up(user_id: str) -> tuple[str, int, str]:
        body = {"user_id": user_id, "referral_code": referrers[referees[user_id]]}
        try:
            response = clients.get().post("/v1/signups", json=body)
        except httpx.TransportError as error:
            # A dropped connection is a failed signup too; list it with the others.
            return user_id, 0, repr(error)
        return user_id, response.status_code, response.text

    # Interleave the referrers so every referrer's counter is contended at once.
    with ThreadPoolExecutor(max_workers=THREADS) as pool:
        results = list(pool.map(sign_up, referees))

    failed = [(user, status, text) for user, status, text in results if status != 201]
    assert failed == [], failed[:5]

    for name in names:
        stats = admin.get(f"/v1/referrers/{name}")
        assert stats.status_code == 200, stats.text
        # A small page makes the ordinal check span cursor boundaries as well.
        items = all_referrals(admin, f"/v1/referrers/{name}/referrals", limit=16)
        ordinals = [item["ordinal"] for item in items]
        n = stats.json()["referral_count"]
        assert n == SIGNUPS // REFERRERS
        assert sorted(ordinals) == list(range(1, n + 1)), Counter(ordinals).most_common(3)
        assert ordinals == sorted(ordinals), "a referrer's referrals are listed by ordinal"
        assert {item["referee_id"] for item in items} == {
            user for user, owner in referees.items() if owner == name
        }
        for item in items:
            expected = DEFAULT_TIERS.reward_for(item["ordinal"])
            assert item["reward_cents"] == expected == literal_reward_cents(item["ordinal"]), item
        assert stats.json()["earned_cents"] == sum(item["reward_cents"] for item in items)


def test_concurrent_replays_of_one_signup_record_one_referral(
    server: Any, admin: httpx.Client, all_referrals: Any
) -> None:
    enrolled = admin.post("/v1/referrers", json={"user_id": "sam"})
    assert enrolled.status_code == 201, enrolled.text
    code = enrolled.json()["code"]
    # Earlier referrals put the contested one at a non-trivial ordinal.
    for n in range(3):
        response = admin.post("/v1/signups", json={"user_id": f"early-{n}", "referral_code": code})
        assert response.status_code == 201, response.text
    before = admin.get("/v1/referrers/sam").json()["referral_count"]

    copies = 50
    clients = ThreadClients(server, server.printed_key)
    start = threading.Barrier(copies)

    def replay(_: int) -> httpx.Response:
        client = clients.get()
        start.wait(timeout=30)  # release every copy together, as a retrying client would
        return client.post("/v1/signups", json={"user_id": "newbie", "referral_code": code})

    with ThreadPoolExecutor(max_workers=copies) as pool:
        responses = list(pool.map(replay, range(copies)))

    statuses = Counter(r.status_code for r in responses)
    errors = [r.text for r in responses if r.status_code >= 300]
    assert statuses == {201: 1, 200: copies - 1}, errors
    bodies = [r.json() for r in responses]
    assert all(body == bodies[0] for body in bodies), "a replay must return the original result"
    assert bodies[0]["referral"]["ordinal"] == before + 1

    after = admin.get("/v1/referrers/sam").json()["referral_count"]
    assert after == before + 1
    listed = all_referrals(admin, "/v1/referrals", referrer_id="sam")
    mine = [item for item in listed if item["referee_id"] == "newbie"]
    assert [item["id"] for item in mine] == [bodies[0]["referral"]["id"]]
    assert len(listed) == after
