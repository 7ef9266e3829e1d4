"""Swagger UI and ReDoc work offline: every asset they load is served by the app itself."""

import base64
import json
import re
from typing import Any, cast

import pytest
from fastapi.testclient import TestClient
from mangum import Mangum

from referrals.api.app import create_app
from referrals.aws.api import StagePrefix
from referrals.bootstrap import Services
from tests.aws.conftest import LambdaContext, rest_event

DOC_PAGES = ["/docs", "/redoc"]
# The attributes and the Swagger UI option through which a page loads something.
LOADED = re.compile(r"""(?:\bsrc|\bhref|\bspec-url)="([^"]*)"|\burl: '([^']*)'""")
CONTENT_TYPES = {
    ".js": "text/javascript",
    ".css": "text/css",
    ".png": "image/png",
    ".json": "application/json",
}
EXECUTE_API_HOST = "a1b2c3d4e5.execute-api.us-east-2.amazonaws.com"


def loaded_urls(html: str) -> list[str]:
    return [a or b for a, b in LOADED.findall(html)]


def expected_type(url: str) -> str:
    return next(kind for suffix, kind in CONTENT_TYPES.items() if url.endswith(suffix))


@pytest.mark.parametrize("page", DOC_PAGES)
def test_a_docs_page_names_no_other_host(client: TestClient, page: str) -> None:
    response = client.get(page)  # public: no key
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/html")
    assert not re.search(r"https?:|//[a-z]", response.text, re.IGNORECASE)
    urls = loaded_urls(response.text)
    assert any(url.endswith(".js") for url in urls)
    assert all(url.startswith("/") and not url.startswith("//") for url in urls)


@pytest.mark.parametrize("page", DOC_PAGES)
def test_everything_a_docs_page_loads_is_served_here(client: TestClient, page: str) -> None:
    for url in loaded_urls(client.get(page).text):
        asset = client.get(url)
        assert asset.status_code == 200, url
        assert asset.headers["content-type"].startswith(expected_type(url)), url
        assert len(asset.content) > 1000, url


def test_swagger_ui_does_not_call_the_online_validator(client: TestClient) -> None:
    # Swagger UI's default sends the spec's URL to swagger.io from any non-local host.
    assert '"validatorUrl": null' in client.get("/docs").text


def _through_api_gateway(app: Mangum, path: str) -> tuple[dict[str, str], bytes]:
    event = rest_event("GET", path, None, {"Host": EXECUTE_API_HOST})
    response = app(event, cast(Any, LambdaContext()))
    assert response["statusCode"] == 200, path
    headers = {k.lower(): v for k, v in response["headers"].items()}
    body = response["body"]
    return headers, base64.b64decode(body) if response["isBase64Encoded"] else body.encode()


@pytest.mark.parametrize("page", DOC_PAGES)
def test_the_docs_work_under_the_api_gateway_stage(services: Services, page: str) -> None:
    app = Mangum(StagePrefix(create_app(services)), lifespan="off")
    _, html = _through_api_gateway(app, page)
    urls = loaded_urls(html.decode())
    assert urls and all(url.startswith("/prod/") for url in urls)
    for url in urls:
        # API Gateway hands the Lambda the path without its stage.
        headers, body = _through_api_gateway(app, url.removeprefix("/prod"))
        assert headers["content-type"].startswith(expected_type(url)), url
        assert len(body) > 1000, url


def test_the_schema_under_the_stage_sends_try_it_out_to_the_stage(services: Services) -> None:
    app = Mangum(StagePrefix(create_app(services)), lifespan="off")
    _, body = _through_api_gateway(app, "/openapi.json")
    assert json.loads(body)["servers"] == [{"url": "/prod"}]
