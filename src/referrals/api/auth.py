"""Bearer API keys with two roles: `ingest` enrolls and signs up, `admin` does everything."""

from collections.abc import Callable

from fastapi import Depends, Request
from fastapi.security import HTTPAuthorizationCredentials, HTTPBearer

from referrals.api.problems import ApiError
from referrals.bootstrap import Services
from referrals.domain.model import ApiKey, Role
from referrals.services.keys import authenticate

bearer = HTTPBearer(auto_error=False, description="An API key from `referrals keys create`.")


def services(request: Request) -> Services:
    app_services: Services = request.app.state.services
    return app_services


def require(*roles: Role) -> Callable[..., ApiKey]:
    """A dependency that admits keys of `roles` (admin is always admitted)."""
    allowed = {Role.ADMIN, *roles}

    def dependency(
        request: Request, credentials: HTTPAuthorizationCredentials | None = Depends(bearer)
    ) -> ApiKey:
        if credentials is None:
            raise ApiError("unauthorized", "an API key is required: Authorization: Bearer <key>")
        key = authenticate(services(request).store, credentials.credentials)
        if key is None:
            raise ApiError("unauthorized", "the API key is not valid")
        if key.role not in allowed:
            raise ApiError("forbidden", f"a {key.role} key may not do this")
        return key

    return dependency


admin = require(Role.ADMIN)
ingest = require(Role.INGEST)
