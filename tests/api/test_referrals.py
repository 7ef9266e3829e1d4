from fastapi.testclient import TestClient


def test_list_filters_by_referrer_and_status(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    dave = client.post("/v1/referrers", json={"user_id": "dave"}, headers=admin).json()["code"]
    for user, code in [("u1", alice_code), ("u2", dave), ("u3", alice_code)]:
        client.post("/v1/signups", json={"user_id": user, "referral_code": code}, headers=admin)
    mine = client.get("/v1/referrals?referrer_id=alice", headers=admin).json()
    assert [r["referee_id"] for r in mine["items"]] == ["u1", "u3"]
    pending = client.get("/v1/referrals?status=pending", headers=admin).json()
    assert len(pending["items"]) == 3
    assert client.get("/v1/referrals?status=paid", headers=admin).json()["items"] == []


def test_list_pages_through_everything_once(
    client: TestClient, admin: dict[str, str], alice_code: str
) -> None:
    for i in range(7):
        client.post(
            "/v1/signups", json={"user_id": f"u{i}", "referral_code": alice_code}, headers=admin
        )
    seen, url = [], "/v1/referrals?limit=3"
    while url:
        page = client.get(url, headers=admin).json()
        seen += [r["referee_id"] for r in page["items"]]
        url = f"/v1/referrals?limit=3&cursor={page['next_cursor']}" if page["next_cursor"] else ""
    assert sorted(seen) == sorted(f"u{i}" for i in range(7)) and len(seen) == 7


def test_unknown_status_is_400(client: TestClient, admin: dict[str, str]) -> None:
    response = client.get("/v1/referrals?status=lost", headers=admin)
    assert response.status_code == 400
    assert response.json()["code"] == "validation_error"


def test_limit_bounds(client: TestClient, admin: dict[str, str]) -> None:
    assert client.get("/v1/referrals?limit=0", headers=admin).status_code == 400
    assert client.get("/v1/referrals?limit=501", headers=admin).status_code == 400
    assert client.get("/v1/referrals?limit=500", headers=admin).status_code == 200
