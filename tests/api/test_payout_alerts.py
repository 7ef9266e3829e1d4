"""What an operator is told when a payout run fails or its report is not published: the
409 refusing a later month, the run's fields, the alert gauges and the dashboard banner."""

import re
from dataclasses import replace

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.domain.model import Role
from referrals.domain.periods import Period
from referrals.domain.reports import report_key
from referrals.services.keys import create_key
from tests.fakes import MemoryReports

Headers = dict[str, str]
PAGES = [
    "/dashboard",
    "/dashboard/payouts",
    "/dashboard/reviews",
    "/dashboard/notifications",
    "/dashboard/programs",
]


@pytest.fixture
def reports() -> MemoryReports:
    return MemoryReports()


@pytest.fixture
def client(services: Services, reports: MemoryReports) -> TestClient:
    return TestClient(create_app(replace(services, reports=reports)))


@pytest.fixture
def rewards(client: TestClient, admin: Headers, alice_code: str) -> None:
    """Two rewards in October 2026, one in November."""
    for n, moment in enumerate(
        ["2026-10-03T00:00:00Z", "2026-10-20T00:00:00Z", "2026-11-05T00:00:00Z"]
    ):
        body = {"user_id": f"u{n}", "referral_code": alice_code, "signed_up_at": moment}
        assert client.post("/v1/signups", json=body, headers=admin).status_code == 201


def pay(client: TestClient, admin: Headers, period: str) -> tuple[int, dict[str, object]]:
    response = client.post("/v1/payouts", json={"period": period}, headers=admin)
    body: dict[str, object] = response.json()
    return response.status_code, body


def fail_october(client: TestClient, admin: Headers, reports: MemoryReports) -> None:
    reports.failing = True
    status, body = pay(client, admin, "2026-10")
    assert (status, body["code"]) == (503, "payout_failed")
    reports.failing = False


def gauges(client: TestClient, admin: Headers) -> dict[str, float]:
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200
    wanted = ("referrals_payout_runs_failed", "referrals_payout_reports_unpublished")
    return {
        sample.name: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name in wanted
    }


def sign_in(client: TestClient, services: Services) -> None:
    plaintext, _ = create_key(services.store, services.clock, Role.ADMIN)
    response = client.post("/dashboard/login", data={"key": plaintext}, follow_redirects=False)
    assert response.status_code == 303


def banners(client: TestClient, page: str) -> list[str]:
    response = client.get(page)
    assert response.status_code == 200
    found = re.findall(r'<p class="payout-alert"[^>]*>(.*?)</p>', response.text, re.S)
    return [" ".join(re.sub(r"<[^>]+>", " ", text).split()) for text in found]


def test_a_later_month_is_refused_while_an_earlier_run_is_failed(
    client: TestClient, admin: Headers, reports: MemoryReports, rewards: None
) -> None:
    fail_october(client, admin, reports)
    status, body = pay(client, admin, "2026-11")
    assert (status, body["code"]) == (409, "earlier_run_failed")
    assert "2026-10" in str(body["detail"]) and "OSError" in str(body["detail"])
    assert client.get("/v1/payouts/2026-11", headers=admin).status_code == 404

    failed = client.get("/v1/payouts/2026-10", headers=admin).json()
    assert failed["status"] == "failed" and failed["report_published"] is False
    # The failed month first, then the later one: each reward paid once.
    assert pay(client, admin, "2026-10")[1]["referral_count"] == 2
    november = pay(client, admin, "2026-11")[1]
    assert november["referral_count"] == 1 and november["report_published"] is True


def test_the_gauges_count_failed_runs_and_unpublished_reports(
    client: TestClient, admin: Headers, reports: MemoryReports, rewards: None
) -> None:
    assert gauges(client, admin) == {
        "referrals_payout_runs_failed": 0,
        "referrals_payout_reports_unpublished": 0,
    }
    fail_october(client, admin, reports)
    assert gauges(client, admin)["referrals_payout_runs_failed"] == 1

    reports.refused = {report_key("2026-10")}  # the run completes, the report stays out
    status, run = pay(client, admin, "2026-10")
    assert status == 200 and run["status"] == "completed" and run["report_published"] is False
    assert str(run["error"]).startswith("report not published: OSError")
    assert gauges(client, admin) == {
        "referrals_payout_runs_failed": 0,
        "referrals_payout_reports_unpublished": 1,
    }

    reports.refused = set()
    again = pay(client, admin, "2026-10")[1]  # the next run of the period publishes it
    assert again["report_published"] is True and again["error"] is None
    assert gauges(client, admin)["referrals_payout_reports_unpublished"] == 0


def test_every_page_shows_a_banner_while_a_run_is_failed(
    client: TestClient,
    admin: Headers,
    services: Services,
    reports: MemoryReports,
    rewards: None,
) -> None:
    sign_in(client, services)
    assert all(banners(client, page) == [] for page in PAGES)
    fail_october(client, admin, reports)
    for page in PAGES:
        (banner,) = banners(client, page)
        assert "Payout run 2026-10 failed" in banner, banner
        assert "OSError: report store unavailable" in banner, banner
        assert "referrals payout run --period 2026-10" in banner, banner

    reports.refused = {report_key("2026-10")}
    pay(client, admin, "2026-10")
    (banner,) = banners(client, "/dashboard")
    assert "The report of payout run 2026-10 is not published" in banner, banner

    reports.refused = set()
    pay(client, admin, "2026-10")
    assert all(banners(client, page) == [] for page in PAGES)


def test_a_banner_escapes_the_error_it_shows(
    client: TestClient, admin: Headers, services: Services, rewards: None
) -> None:
    now = services.clock.now()
    with services.store.unit_of_work() as uow:  # an error naming markup, as a path might
        claimed = uow.payouts.claim("2026-10", Period(2026, 10).cutoff, "x", now, now)
        uow.payouts.fail("2026-10", "x", "<script>alert(1)</script>")
        uow.commit()
    assert claimed
    sign_in(client, services)
    html = client.get("/dashboard").text
    assert "<script>alert(1)</script>" not in html and "&lt;script&gt;" in html
