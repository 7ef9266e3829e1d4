import io
import json
import logging
from collections.abc import Iterator

import pytest
from fastapi.testclient import TestClient

from referrals.api.app import create_app
from referrals.bootstrap import Services
from referrals.logs import ContextFilter, JsonFormatter


@pytest.fixture
def logged() -> Iterator[io.StringIO]:
    """What the `referrals.test` logger writes, as `referrals serve` formats it."""
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.addFilter(ContextFilter())
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("referrals.test")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield stream
    logger.removeHandler(handler)


@pytest.fixture
def logging_client(services: Services) -> TestClient:
    """The app with one more route, which logs (in the thread pool, like the real routes)."""
    app = create_app(services)

    def log_something() -> dict[str, str]:
        logging.getLogger("referrals.test").info("inside the route")
        return {}

    app.add_api_route("/test/log", log_something)
    return TestClient(app)


def test_a_line_logged_in_a_request_carries_the_id_sent_back(
    logging_client: TestClient, logged: io.StringIO
) -> None:
    response = logging_client.get("/test/log")

    assert response.status_code == 200
    (line,) = logged.getvalue().splitlines()
    entry = json.loads(line)
    assert entry["message"] == "inside the route"
    assert entry["request_id"] == response.headers["X-Request-ID"]


def test_each_request_gets_its_own_generated_id(
    logging_client: TestClient, logged: io.StringIO
) -> None:
    first = logging_client.get("/test/log").headers["X-Request-ID"]
    second = logging_client.get("/test/log").headers["X-Request-ID"]

    assert first != second
    assert len(first) == 32 and int(first, 16) >= 0
    ids = [json.loads(line)["request_id"] for line in logged.getvalue().splitlines()]
    assert ids == [first, second]


def test_a_sane_incoming_request_id_is_kept_and_echoed(
    logging_client: TestClient, logged: io.StringIO
) -> None:
    response = logging_client.get("/test/log", headers={"X-Request-ID": "lb-1234.abc_DEF-9"})

    assert response.headers["X-Request-ID"] == "lb-1234.abc_DEF-9"
    assert json.loads(logged.getvalue())["request_id"] == "lb-1234.abc_DEF-9"


@pytest.mark.parametrize(
    "given", ["a" * 65, "has space", 'quote"d', "bob@example.com", "new\\nline", ""]
)
def test_an_unusable_incoming_request_id_is_replaced(client: TestClient, given: str) -> None:
    response = client.get("/healthz", headers={"X-Request-ID": given})

    echoed = response.headers["X-Request-ID"]
    assert echoed != given
    assert len(echoed) == 32 and int(echoed, 16) >= 0


def test_error_responses_carry_the_request_id_too(client: TestClient) -> None:
    response = client.get("/v1/referrals", headers={"X-Request-ID": "req-401"})

    assert response.status_code == 401
    assert response.headers["X-Request-ID"] == "req-401"


def test_a_body_refused_before_routing_carries_the_request_id(
    client: TestClient, ingest: dict[str, str]
) -> None:
    headers = {**ingest, "X-Request-ID": "req-413"}
    response = client.post("/v1/signups", content=b"x" * (64 * 1024 + 1), headers=headers)

    assert response.status_code == 413
    assert response.headers["X-Request-ID"] == "req-413"
