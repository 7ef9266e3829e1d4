from fastapi.testclient import TestClient


def test_errors_are_documented_as_problem_documents(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    signup = schema["paths"]["/v1/signups"]["post"]["responses"]
    for status in ("400", "401", "403", "404", "409", "422"):
        content = signup[status]["content"]
        assert list(content) == ["application/problem+json"], status
    problem = schema["components"]["schemas"]["Problem"]
    assert set(problem["required"]) == {"type", "title", "status", "detail", "code"}


def test_no_route_documents_fastapis_default_422(client: TestClient) -> None:
    schema = client.get("/openapi.json").json()
    assert "HTTPValidationError" not in schema["components"]["schemas"]
    referrers = schema["paths"]["/v1/referrers"]["post"]["responses"]
    assert "422" not in referrers and "400" in referrers
