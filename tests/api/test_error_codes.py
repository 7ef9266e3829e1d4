"""Every domain error's code maps to an HTTP status in the one error handler
(`api.problems`): a new error without a mapping fails here, not as a 500 in production."""

import importlib
import pkgutil

import pytest
from fastapi import FastAPI
from fastapi.testclient import TestClient

import referrals
from referrals.api import problems
from referrals.domain.errors import DomainError

# Alembic's migration scripts run only under Alembic; the Lambda handlers set up
# Powertools' logging when imported. Neither is a place for an error class.
NOT_IMPORTED = (".migrations", "referrals.aws")


def _import_all() -> None:
    """Every module of the package, so subclasses defined anywhere are seen."""
    for module in pkgutil.walk_packages(referrals.__path__, "referrals."):
        if not any(part in module.name for part in NOT_IMPORTED):
            importlib.import_module(module.name)


def _subclasses(cls: type[DomainError]) -> list[type[DomainError]]:
    return [sub for direct in cls.__subclasses__() for sub in (direct, *_subclasses(direct))]


_import_all()
ERRORS = sorted(set(_subclasses(DomainError)), key=lambda cls: f"{cls.__module__}.{cls.__name__}")


def _raising(error: type[DomainError]) -> TestClient:
    app = FastAPI()
    problems.install(app)

    @app.get("/")
    async def fail() -> None:
        instance = error.__new__(error)  # whatever its constructor asks for
        DomainError.__init__(instance, "it failed")
        raise instance

    return TestClient(app, raise_server_exceptions=False)


def test_the_domain_errors_are_found() -> None:
    names = {cls.__name__ for cls in ERRORS}
    assert {"NotFound", "CodeNotFound", "SelfReferral", "StorageUnavailable"} <= names
    assert "InvalidLink" in names  # defined outside domain.errors


@pytest.mark.parametrize("error", ERRORS, ids=lambda cls: cls.__name__)
def test_each_domain_error_code_has_its_status(error: type[DomainError]) -> None:
    assert error.code in problems.STATUS_BY_CODE, f"{error.__name__}.code {error.code!r}"
    status = problems.STATUS_BY_CODE[error.code]
    assert 400 <= status < 600


@pytest.mark.parametrize("error", ERRORS, ids=lambda cls: cls.__name__)
def test_the_handler_answers_each_domain_error_with_its_problem(error: type[DomainError]) -> None:
    response = _raising(error).get("/")
    assert response.status_code == problems.STATUS_BY_CODE[error.code]
    assert response.headers["content-type"] == "application/problem+json"
    body = response.json()
    assert (body["code"], body["status"], body["detail"]) == (
        error.code,
        response.status_code,
        "it failed",
    )
