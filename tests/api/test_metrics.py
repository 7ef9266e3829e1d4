from datetime import UTC, datetime, timedelta

import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.domain.errors import PayoutFailed, PayoutInProgress
from referrals.domain.model import (
    CurrencyTotal,
    EventStatus,
    PayoutRun,
    RunStatus,
)
from referrals.domain.run_totals import with_totals
from referrals.metrics import Metrics

Samples = dict[tuple[str, frozenset[tuple[str, str]]], float]


def scrape(client: TestClient, admin: dict[str, str]) -> Samples:
    response = client.get("/metrics", headers=admin)
    assert response.status_code == 200, response.text
    assert response.headers["content-type"].startswith("text/plain")
    return {
        (sample.name, frozenset(sample.labels.items())): sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
    }


def value(samples: Samples, name: str, **labels: str) -> float | None:
    return samples.get((name, frozenset(labels.items())))


def test_metrics_count_known_traffic_by_route_template(
    client: TestClient, admin: dict[str, str], ingest: dict[str, str], alice_code: str
) -> None:
    for user in ("bob", "carol"):
        body = {"user_id": user, "referral_code": alice_code, "email": f"{user}@example.com"}
        assert client.post("/v1/signups", json=body, headers=ingest).status_code == 201
    replay = {"user_id": "bob", "referral_code": alice_code, "email": "bob@example.com"}
    assert client.post("/v1/signups", json=replay, headers=ingest).status_code == 200
    legacy = {"userId": "dave", "referralCode": alice_code}
    assert client.post("/signup", json=legacy, headers=ingest).status_code == 200
    assert client.get("/v1/referrers/eve@example.com", headers=admin).status_code == 404
    assert client.get("/no/such/route", headers=admin).status_code == 404
    assert client.post("/v1/payouts", json={}, headers=admin).status_code == 200
    assert client.post("/v1/payouts", json={}, headers=admin).status_code == 200  # no-op

    samples = scrape(client, admin)

    requests = "referrals_http_requests_total"
    assert value(samples, requests, method="POST", route="/v1/referrers", status="201") == 1
    assert value(samples, requests, method="POST", route="/v1/signups", status="201") == 2
    assert value(samples, requests, method="POST", route="/v1/signups", status="200") == 1
    assert value(samples, requests, method="POST", route="/signup", status="200") == 1
    referrer = "/v1/referrers/{user_id}"
    assert value(samples, requests, method="GET", route=referrer, status="404") == 1
    assert value(samples, requests, method="GET", route="unmatched", status="404") == 1
    assert value(samples, requests, method="POST", route="/v1/payouts", status="200") == 2
    latency = "referrals_http_request_duration_seconds_count"
    assert value(samples, latency, method="POST", route="/v1/signups") == 3
    # Raw paths never become labels: no user id or email in any of them.
    routes = {dict(labels).get("route") for _, labels in samples} - {None}
    assert not any("@" in route or "eve" in route for route in routes if route)

    # The replay earned nothing new: three signups at the first tier's $10.
    assert value(samples, "referrals_signups_total") == 3
    assert value(samples, "referrals_reward_cents_total", currency="USD") == 3 * 1000
    # The second POST returned the completed run: one run, timed once.
    assert value(samples, "referrals_payout_runs_total", status="completed") == 1
    assert value(samples, "referrals_payout_runs_total", status="failed") is None
    assert value(samples, "referrals_payout_run_duration_seconds_count", status="completed") == 1
    # Last month paid nothing: no currency has a paid amount.
    assert not [name for name, _ in samples if name == "referrals_payout_cents_total"]
    # Nothing delivers in-process: three referral.created and one payout.completed wait.
    assert value(samples, "referrals_outbox_backlog") == 4
    assert value(samples, "referrals_outbox_dead_letters") == 0


def test_dead_letters_are_read_from_the_store_at_each_scrape(
    client: TestClient,
    services: Services,
    admin: dict[str, str],
    ingest: dict[str, str],
    alice_code: str,
) -> None:
    body = {"user_id": "bob", "referral_code": alice_code}
    assert client.post("/v1/signups", json=body, headers=ingest).status_code == 201
    with services.store.unit_of_work() as uow:
        (event,) = uow.outbox.list(EventStatus.PENDING, 10)
        uow.outbox.attempt_failed(event.id, "refused", services.clock.now(), dead=True)
        uow.commit()

    samples = scrape(client, admin)

    assert value(samples, "referrals_outbox_dead_letters") == 1
    assert value(samples, "referrals_outbox_backlog") == 0


def test_the_docs_are_counted_under_their_routes(client: TestClient, admin: dict[str, str]) -> None:
    for path in ("/docs", "/openapi.json", "/redoc"):
        assert client.get(path).status_code == 200

    samples = scrape(client, admin)

    for path in ("/docs", "/openapi.json", "/redoc"):
        requests = "referrals_http_requests_total"
        assert value(samples, requests, method="GET", route=path, status="200") == 1
    assert (
        value(
            samples, "referrals_http_requests_total", method="GET", route="unmatched", status="200"
        )
        is None
    )


def test_metrics_refuse_a_request_without_a_key(client: TestClient) -> None:
    response = client.get("/metrics")
    assert response.status_code == 401
    assert response.json()["code"] == "unauthorized"


def test_metrics_refuse_an_ingest_key(client: TestClient, ingest: dict[str, str]) -> None:
    response = client.get("/metrics", headers=ingest)
    assert response.status_code == 403
    assert response.json()["code"] == "forbidden"


def test_metrics_are_not_in_the_openapi_document(client: TestClient) -> None:
    assert "/metrics" not in client.get("/openapi.json").json()["paths"]


def test_each_app_counts_its_own_requests(services: Services, admin: dict[str, str]) -> None:
    first, second = TestClient(create_app(services)), TestClient(create_app(services))
    assert first.get("/healthz").status_code == 200

    samples = scrape(second, admin)

    assert (
        value(
            samples, "referrals_http_requests_total", method="GET", route="/healthz", status="200"
        )
        is None
    )


def test_a_failed_payout_run_is_counted_and_timed(services: Services) -> None:
    metrics = Metrics(services.store)

    def fail() -> PayoutRun:
        raise PayoutFailed("the report store is down")

    with pytest.raises(PayoutFailed):
        metrics.payout(services.clock, fail)

    runs = metrics.registry.get_sample_value("referrals_payout_runs_total", {"status": "failed"})
    assert runs == 1
    timed = "referrals_payout_run_duration_seconds_count"
    assert metrics.registry.get_sample_value(timed, {"status": "failed"}) == 1


def test_a_run_refused_as_in_progress_is_not_counted(services: Services) -> None:
    metrics = Metrics(services.store)

    def refused() -> PayoutRun:
        raise PayoutInProgress("a payout run for 2026-10 is in progress elsewhere")

    with pytest.raises(PayoutInProgress):
        metrics.payout(services.clock, refused)

    for status in RunStatus:
        labels = {"status": status.value}
        assert metrics.registry.get_sample_value("referrals_payout_runs_total", labels) is None


def test_a_run_completed_earlier_is_not_counted_again(services: Services) -> None:
    metrics = Metrics(services.store)
    earlier = datetime(2026, 11, 1, tzinfo=UTC)
    stored = PayoutRun("2026-10", RunStatus.COMPLETED, earlier, started_at=earlier)

    assert metrics.payout(services.clock, lambda: stored) is stored

    labels = {"status": "completed"}
    assert metrics.registry.get_sample_value("referrals_payout_runs_total", labels) is None


def test_a_completed_run_counts_what_it_paid_per_currency(services: Services) -> None:
    metrics = Metrics(services.store)
    now = services.clock.now() + timedelta(seconds=1)  # started once the call began
    paid = with_totals(
        PayoutRun("2026-10", RunStatus.COMPLETED, now, started_at=now),
        (CurrencyTotal("USD", 1, 2, 2500), CurrencyTotal("JPY", 1, 1, 1500)),
    )

    metrics.payout(services.clock, lambda: paid)

    cents = "referrals_payout_cents_total"
    assert metrics.registry.get_sample_value(cents, {"currency": "USD"}) == 2500
    assert metrics.registry.get_sample_value(cents, {"currency": "JPY"}) == 1500


def test_an_unhandled_error_is_counted_as_a_500_of_its_route(
    services: Services, admin: dict[str, str]
) -> None:
    app = create_app(services)

    def broken() -> None:
        raise RuntimeError("a bug")

    app.add_api_route("/test/broken/{thing}", broken)
    client = TestClient(app, raise_server_exceptions=False)
    assert client.get("/test/broken/1").status_code == 500

    samples = scrape(client, admin)

    labels = {"method": "GET", "route": "/test/broken/{thing}", "status": "500"}
    assert value(samples, "referrals_http_requests_total", **labels) == 1
