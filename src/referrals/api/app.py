"""The FastAPI application factory."""

from fastapi import FastAPI

from referrals import __version__
from referrals.api import problems
from referrals.api.limits import BodySizeLimit
from referrals.api.routes import router
from referrals.bootstrap import Services, build


def create_app(services: Services | None = None) -> FastAPI:
    """Build the app; with no services given, from settings (used by `uvicorn --factory`)."""
    services = services or build()
    app = FastAPI(
        title="referrals",
        version=__version__,
        description="Referral codes, tiered rewards and exactly-once monthly payouts.",
    )
    app.state.services = services
    problems.install(app)
    app.include_router(router)
    app.add_middleware(BodySizeLimit, max_bytes=services.settings.max_body_bytes)
    return app
