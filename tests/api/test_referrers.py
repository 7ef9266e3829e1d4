from fastapi.testclient import TestClient


def test_enroll_creates_a_referrer_with_zero_stats(
    client: TestClient, admin: dict[str, str]
) -> None:
    # An ingest key reads no earnings: see test_ingest_answers.py.
    response = client.post("/v1/referrers", json={"user_id": "alice"}, headers=admin)
    assert response.status_code == 201
    body = response.json()
    assert body["user_id"] == "alice" and len(body["code"]) == 8
    assert body["referral_count"] == body["earned_cents"] == body["paid_cents"] == 0
    assert body["next_tier"] == {"at_count": 1, "reward_cents": 1000}


def test_enroll_again_returns_200_and_the_same_referrer(
    client: TestClient, ingest: dict[str, str]
) -> None:
    first = client.post("/v1/referrers", json={"user_id": "alice"}, headers=ingest)
    again = client.post("/v1/referrers", json={"user_id": "alice"}, headers=ingest)
    assert again.status_code == 200
    assert again.json() == first.json()


def test_enroll_with_vanity_code(client: TestClient, ingest: dict[str, str]) -> None:
    body = {"user_id": "alice", "code": "Alice-2026"}
    assert client.post("/v1/referrers", json=body, headers=ingest).json()["code"] == "Alice-2026"


def test_code_taken_by_another_user(client: TestClient, ingest: dict[str, str]) -> None:
    client.post("/v1/referrers", json={"user_id": "alice", "code": "SUMMER"}, headers=ingest)
    response = client.post(
        "/v1/referrers", json={"user_id": "bob", "code": "summer"}, headers=ingest
    )
    assert response.status_code == 409
    assert response.json()["code"] == "code_taken"


def test_same_user_with_another_code(client: TestClient, ingest: dict[str, str]) -> None:
    client.post("/v1/referrers", json={"user_id": "alice", "code": "SUMMER"}, headers=ingest)
    response = client.post(
        "/v1/referrers", json={"user_id": "alice", "code": "WINTER"}, headers=ingest
    )
    assert response.status_code == 409
    assert response.json()["code"] == "referrer_exists"


def test_get_referrer_shows_earnings_and_next_tier(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    for i in range(5):
        body = {"user_id": f"u{i}", "referral_code": alice_code}
        assert client.post("/v1/signups", json=body, headers=admin).status_code == 201
    body = client.get("/v1/referrers/alice", headers=admin).json()
    assert body["referral_count"] == 5
    assert body["earned_cents"] == body["payable_cents"] == 4 * 1000 + 1500
    assert body["paid_cents"] == 0
    assert body["next_tier"] == {"at_count": 10, "reward_cents": 2000}
    assert body["email"] == "alice@example.com"


def test_get_unknown_referrer_is_404(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get("/v1/referrers/nobody", headers=admin)
    assert response.status_code == 404
    assert response.json()["code"] == "not_found"


def test_referrals_of_a_referrer_page_with_cursor(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    for i in range(5):
        client.post(
            "/v1/signups", json={"user_id": f"u{i}", "referral_code": alice_code}, headers=admin
        )
    first = client.get("/v1/referrers/alice/referrals?limit=3", headers=admin).json()
    assert [r["ordinal"] for r in first["items"]] == [1, 2, 3]
    rest = client.get(
        f"/v1/referrers/alice/referrals?limit=3&cursor={first['next_cursor']}", headers=admin
    ).json()
    assert [r["ordinal"] for r in rest["items"]] == [4, 5]
    assert rest["next_cursor"] is None


def test_referrals_of_unknown_referrer_is_404(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/v1/referrers/nobody/referrals", headers=admin).status_code == 404


def test_bad_cursor_is_400(client: TestClient, admin: dict[str, str], alice_code: str) -> None:
    response = client.get("/v1/referrers/alice/referrals?cursor=QUJD", headers=admin)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_cursor_past_any_ordinal_is_400_not_500(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    cursor = "OTk5OTk5OTk5OTk5OTk5OTk5OQ"  # base64 of nineteen 9s: no column holds it
    response = client.get(f"/v1/referrers/alice/referrals?cursor={cursor}", headers=admin)
    assert response.status_code == 400
