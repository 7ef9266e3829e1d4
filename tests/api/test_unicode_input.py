"""Input in other scripts' digits is refused with a 400, never read as a number."""

import pytest
from fastapi.testclient import TestClient


@pytest.mark.parametrize("period", ["\u0662\u0660\u0662\u0666-11", "\uff12\uff10\uff12\uff16-11"])
def test_a_period_in_other_digits_is_a_400_on_every_payout_route(
    client: TestClient, admin: dict[str, str], period: str
) -> None:
    for response in (
        client.get(f"/v1/payouts/{period}", headers=admin),
        client.get(f"/v1/payouts/{period}/report", headers=admin),
        client.post("/v1/payouts", json={"period": period}, headers=admin),
        client.post("/v1/payouts", json={"period": period, "dry_run": True}, headers=admin),
    ):
        assert response.status_code == 400, response.text
        assert response.json()["code"] == "validation_error"
    assert client.get("/v1/payouts", headers=admin).json()["items"] == []  # nothing was run


def test_the_schema_states_the_years_accepted(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    pattern = schema["paths"]["/v1/payouts/{period}"]["get"]["parameters"][0]["schema"]["pattern"]
    assert "[0-9]" in pattern and "\\d" not in pattern
