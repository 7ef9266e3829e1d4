"""The FastAPI application factory."""

from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

from fastapi import FastAPI

from referrals import __version__
from referrals.api import payouts, problems
from referrals.api.limits import BodySizeLimit
from referrals.api.routes import router
from referrals.bootstrap import Services, build


def create_app(services: Services | None = None, *, background: bool = False) -> FastAPI:
    """Build the app; with `background`, deliver notifications and run the schedule too."""
    svc = services or build()

    @asynccontextmanager
    async def lifespan(_: FastAPI) -> AsyncIterator[None]:
        if not background:
            yield
            return
        from referrals.worker import BackgroundWorker

        worker = BackgroundWorker(svc)
        worker.start()
        try:
            yield
        finally:
            worker.stop()

    app = FastAPI(
        title="referrals",
        version=__version__,
        description="Referral codes, tiered rewards and exactly-once monthly payouts.",
        lifespan=lifespan,
    )
    app.state.services = svc
    problems.install(app)
    app.include_router(router)
    app.include_router(payouts.router)
    app.add_middleware(BodySizeLimit, max_bytes=svc.settings.max_body_bytes)
    return app


def serve_app() -> FastAPI:
    """The app `referrals serve` runs in each worker process (uvicorn --factory)."""
    return create_app(build(), background=True)
