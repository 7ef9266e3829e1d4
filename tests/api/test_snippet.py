"""The snippet over HTTP: a small, cacheable, hand-minified script whose Subresource
Integrity hash in the README is the served file's."""

import base64
import hashlib
import re
from pathlib import Path

from fastapi.testclient import TestClient

README = Path(__file__).resolve().parents[2] / "README.md"
STATIC = Path(__file__).resolve().parents[2] / "src/referrals/web/static"


def test_the_snippet_is_served_as_cacheable_javascript(client: TestClient) -> None:
    response = client.get("/v1/snippet.js")
    assert response.status_code == 200
    assert response.headers["content-type"].startswith("text/javascript")
    assert response.headers["cache-control"] == "public, max-age=604800"
    assert response.headers["access-control-allow-origin"] == "*"  # SRI across origins
    assert response.headers["x-content-type-options"] == "nosniff"
    assert response.content == (STATIC / "snippet.js").read_bytes()
    assert len(response.content) < 2048
    assert b"window.referrals" not in response.content  # minified: `w.referrals`
    assert b"w.referrals={consent:" in response.content


def test_a_known_etag_is_answered_304_without_a_body(client: TestClient) -> None:
    etag = client.get("/v1/snippet.js").headers["etag"]
    again = client.get("/v1/snippet.js", headers={"If-None-Match": etag})
    assert (again.status_code, again.content, again.headers["etag"]) == (304, b"", etag)
    assert client.get("/v1/snippet.js", headers={"If-None-Match": '"other"'}).status_code == 200


def test_the_readme_tag_carries_the_served_files_integrity_hash(client: TestClient) -> None:
    served = client.get("/v1/snippet.js").content
    digest = base64.b64encode(hashlib.sha384(served).digest()).decode()
    documented = re.findall(r'integrity="(sha384-[A-Za-z0-9+/=]+)"', README.read_text())
    assert documented == [f"sha384-{digest}"]


def test_the_snippet_loads_nothing_and_sends_nothing(client: TestClient) -> None:
    body = client.get("/v1/snippet.js").text
    for sign in ("import", "require(", "fetch(", "XMLHttpRequest", "sendBeacon", "://"):
        assert sign not in body, sign
