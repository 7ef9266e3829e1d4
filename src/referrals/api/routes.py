"""Routes: parse, call one use case, shape the answer. No rules live here."""

import logging
import threading
from typing import Annotated, Any

from anyio import CapacityLimiter, fail_after, to_thread
from fastapi import APIRouter, Depends, Query, Request, Response, status
from fastapi.responses import RedirectResponse
from pydantic import BaseModel
from starlette.requests import Request as StarletteRequest

from referrals.api import auth
from referrals.api.deps import (
    PROBLEMS,
    PROGRAM_NOT_FOUND,
    Cursor,
    InProgram,
    Limit,
    ServicesDep,
    default_program,
    metrics_of,
    mount_point,
)
from referrals.api.problems import ApiError
from referrals.api.schemas.common import Health, ProgramId, UserId
from referrals.api.schemas.signups import (
    ConversionOut,
    ConversionRequest,
    EnrollRequest,
    IngestAnswer,
    LegacySignupRequest,
    LegacySignupResponse,
    ReferralOut,
    ReferralPage,
    ReferrerCount,
    ReferrerOut,
    ReferrerSummary,
    SignupOut,
    SignupRequest,
)
from referrals.domain.model import ApiKey, ReferralStatus, Role
from referrals.domain.money import cents_to_dollars
from referrals.domain.program import DEFAULT_PROGRAM
from referrals.ports import Store
from referrals.services import queries
from referrals.services.conversions import record_conversion
from referrals.services.referrers import enroll
from referrals.services.signups import sign_up

router = APIRouter()
logger = logging.getLogger("referrals.api")


@router.get(
    "/healthz",
    response_model=Health,
    tags=["health"],
    responses={503: {"description": "The database cannot be reached (code unavailable)"}},
)
async def healthz(svc: ServicesDep) -> Health:
    """200 when the service can reach its database; 503 otherwise, so a balancer moves on.

    On PostgreSQL the round trip is made on the event loop (`Services.health_probe`):
    under full load a request thread can wait seconds for the GIL, and the balancer
    would take a healthy server out of rotation (BENCHMARKS.md, issue 27)."""
    try:
        if svc.health_probe is not None:
            await svc.health_probe.check()
        else:
            await to_thread.run_sync(svc.store.check)
    except Exception as error:
        logger.warning("health check failed: %s", type(error).__name__)
        raise ApiError("unavailable", "the database cannot be reached") from None
    return Health(status="ok")


LIVE = b'{"status":"ok"}'


async def livez(_: StarletteRequest) -> Response:
    """200 while the process serves requests: a liveness probe, which must not fail
    (and restart the process) because the database is away. Touches nothing, on the
    event loop: the cheapest answer the server gives.

    A plain Starlette route (`app.py` adds it; `app._openapi` documents it): FastAPI's
    per-route work (dependency solving, response model) would cost twice what the
    rest of the request does (docs/decisions/api-request-path.md)."""
    return Response(LIVE, media_type="application/json")


# How long a readiness check may take before it answers 503. Orchestrators give a
# probe a second or a few (Kubernetes: 1 s by default); a write path that needs
# longer than this is not ready for the requests a balancer would send.
READY_TIMEOUT_S = 2.0


class StillChecking(Exception):
    """An earlier readiness check is still waiting for the database."""


class Readiness:
    """At most one readiness check waits for the database at a time.

    A check that times out is abandoned, not stopped: its thread waits on until the
    store lets it through (on SQLite behind this process's writers, then up to the
    busy timeout). Meanwhile further checks answer 503 at once instead of piling up
    threads. The check takes `checking` in its own thread, so one that never got to
    run leaves nothing held; its own thread limiter keeps it from queueing behind
    the requests, and them behind it.
    """

    def __init__(self) -> None:
        self.checking = threading.Lock()
        self.threads = CapacityLimiter(1)

    def check(self, store: Store) -> None:
        if not self.checking.acquire(blocking=False):
            raise StillChecking
        try:
            store.check_write()
        finally:
            self.checking.release()


@router.get(
    "/readyz",
    response_model=Health,
    tags=["health"],
    responses={503: {"description": "The database cannot take a write now (code unavailable)"}},
)
async def readyz(request: Request, svc: ServicesDep) -> Health:
    """200 when a write can begin and end now: on SQLite this takes and releases the
    write lock, on PostgreSQL it runs a write transaction; 503 after 2 s, or while
    an earlier check is still waiting. `/healthz` only reads."""
    readiness: Readiness = request.app.state.readiness
    try:
        with fail_after(READY_TIMEOUT_S):
            await to_thread.run_sync(
                readiness.check, svc.store, abandon_on_cancel=True, limiter=readiness.threads
            )
    except StillChecking:
        raise ApiError("unavailable", "an earlier readiness check is still waiting") from None
    except TimeoutError:
        logger.warning("readiness check timed out after %s s", READY_TIMEOUT_S)
        raise ApiError("unavailable", "the database cannot take a write now") from None
    except Exception as error:
        logger.warning("readiness check failed: %s", type(error).__name__)
        raise ApiError("unavailable", "the database cannot take a write now") from None
    return Health(status="ok")


@router.get("/", include_in_schema=False)
async def index(request: Request) -> RedirectResponse:
    """A browser opening the server's address lands on the dashboard (its sign-in)."""
    return RedirectResponse(f"{mount_point(request)}/dashboard", status.HTTP_307_TEMPORARY_REDIRECT)


# Program routes: a referrer is a user in a program. The routes without a program in
# their path act on the default program, as before programs existed.


@router.post(
    "/signup",
    response_model=LegacySignupResponse,
    tags=["signups"],
    summary="Record a signup (compatible with the original API)",
    responses=PROBLEMS | {404: {"description": "code_not_found"}, 409: {}, 422: {}},
    dependencies=[Depends(default_program)],
)
def legacy_signup(
    body: LegacySignupRequest, svc: ServicesDep, request: Request, _: ApiKey = Depends(auth.ingest)
) -> Response:
    result = sign_up(
        svc.store,
        svc.clock,
        svc.rules.for_signup,
        body.userId,
        body.referralCode,
        body.email,
        click_id=body.clickId,
    )
    metrics_of(request).signed_up(result)
    answer = LegacySignupResponse(
        rewardAmount=cents_to_dollars(result.referral.reward_cents),
        referralCount=result.referral_count,
        referralId=result.referral.id,
        rewardCents=result.referral.reward_cents,
        refereeCode=result.referee_code,
    )
    return json_response(answer, status.HTTP_200_OK)


def shown_to(key: ApiKey, answer: IngestAnswer, sent_email: str | None = None) -> BaseModel:
    """All of `answer` for an admin key; for an ingest key, only what it may read of it:
    a leaked backend key must not read other users' emails or money back."""
    return answer if key.role is Role.ADMIN else answer.for_ingest(sent_email)


# An admin key gets the referrer with earnings, an ingest key the summary.
Enrolled = ReferrerOut | ReferrerSummary


ENROLLED: dict[int | str, dict[str, Any]] = {
    200: {"model": Enrolled, "description": "Already enrolled"},
    409: {"description": "code_taken, referrer_exists, program_archived"},
}


@router.post(
    "/v1/referrers",
    response_model=Enrolled,
    status_code=status.HTTP_201_CREATED,
    tags=["referrers"],
    responses=PROBLEMS | ENROLLED,
    dependencies=[Depends(default_program)],
)
def enroll_referrer(
    body: EnrollRequest, svc: ServicesDep, key: ApiKey = Depends(auth.ingest)
) -> Response:
    """Enroll in the default program. Admin keys get the referrer with their earnings
    (`ReferrerOut`); ingest keys get `ReferrerSummary`: no money, and the email only if
    this request sent it."""
    return _enroll(DEFAULT_PROGRAM, body, svc, key)


@router.post(
    "/v1/programs/{program_id}/referrers",
    response_model=Enrolled,
    status_code=status.HTTP_201_CREATED,
    tags=["referrers"],
    responses=PROBLEMS | ENROLLED | PROGRAM_NOT_FOUND,
    dependencies=[Depends(default_program)],
)
def enroll_program_referrer(
    program_id: InProgram, body: EnrollRequest, svc: ServicesDep, key: ApiKey = Depends(auth.ingest)
) -> Response:
    """Enroll in a program: a user may be a referrer of several, with a code in each
    (codes are unique across programs, so a signup's code finds its program)."""
    return _enroll(program_id, body, svc, key)


def _enroll(program_id: str, body: EnrollRequest, svc: ServicesDep, key: ApiKey) -> Response:
    enrollment = enroll(
        svc.store,
        svc.clock,
        body.user_id,
        body.email,
        body.code,
        body.ip,
        body.device_id,
        fingerprints=svc.fingerprints,
        program=program_id,
    )
    rules = svc.rules.current(svc.clock, program_id)
    stats = queries.referrer_stats(svc.store, svc.clock, rules, body.user_id)
    answer = shown_to(key, ReferrerOut.of(stats), body.email)
    status_code = status.HTTP_201_CREATED if enrollment.created else status.HTTP_200_OK
    return json_response(answer, status_code)


@router.get(
    "/v1/referrers/{user_id}",
    response_model=ReferrerOut,
    tags=["referrers"],
    responses=PROBLEMS | {404: {}},
    dependencies=[Depends(default_program)],
)
def get_referrer(user_id: UserId, svc: ServicesDep, _: ApiKey = Depends(auth.admin)) -> ReferrerOut:
    """The user as a referrer of the default program."""
    rules = svc.rules.current(svc.clock)
    return ReferrerOut.of(queries.referrer_stats(svc.store, svc.clock, rules, user_id))


@router.get(
    "/v1/programs/{program_id}/referrers/{user_id}",
    response_model=ReferrerOut,
    tags=["referrers"],
    responses=PROBLEMS | {404: {"description": "not_found, program_not_found"}},
    dependencies=[Depends(default_program)],
)
def get_program_referrer(
    program_id: InProgram, user_id: UserId, svc: ServicesDep, _: ApiKey = Depends(auth.admin)
) -> ReferrerOut:
    """The user as a referrer of the program: its count, caps and earnings."""
    rules = svc.rules.current(svc.clock, program_id)
    return ReferrerOut.of(queries.referrer_stats(svc.store, svc.clock, rules, user_id))


@router.get(
    "/v1/referrers/{user_id}/referrals",
    response_model=ReferralPage,
    tags=["referrers"],
    responses=PROBLEMS | {404: {}},
)
def list_referrer_referrals(
    user_id: UserId,
    svc: ServicesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    _: ApiKey = Depends(auth.admin),
) -> ReferralPage:
    """The user's referrals in the default program, by ordinal."""
    return ReferralPage.of(queries.referrals_of(svc.store, user_id, limit, cursor))


@router.get(
    "/v1/programs/{program_id}/referrers/{user_id}/referrals",
    response_model=ReferralPage,
    tags=["referrers"],
    responses=PROBLEMS | {404: {}},
)
def list_program_referrer_referrals(
    program_id: InProgram,
    user_id: UserId,
    svc: ServicesDep,
    limit: Limit = 50,
    cursor: Cursor = None,
    _: ApiKey = Depends(auth.admin),
) -> ReferralPage:
    """The user's referrals in the program, by ordinal."""
    page = queries.referrals_of(svc.store, user_id, limit, cursor, program=program_id)
    return ReferralPage.of(page)


@router.post(
    "/v1/signups",
    response_model=SignupOut,
    status_code=status.HTTP_201_CREATED,
    tags=["signups"],
    responses=PROBLEMS
    | {200: {"model": SignupOut, "description": "Replay of a recorded signup"}}
    | {404: {"description": "code_not_found, click_not_found"}}
    | {409: {"description": "already_referred, program_paused, click_mismatch"}, 422: {}},
    dependencies=[Depends(default_program)],
)
def create_signup(
    body: SignupRequest, svc: ServicesDep, request: Request, key: ApiKey = Depends(auth.ingest)
) -> Response:
    """Record a signup with a referrer's code, or the click id of their tracked link: in
    the code's program, priced by its rules in force (a paused program refuses it with
    409 `program_paused`)."""
    if body.signed_up_at is not None and key.role is not Role.ADMIN:
        raise ApiError("forbidden", "only admin keys may import signups with signed_up_at")
    result = sign_up(
        svc.store,
        svc.clock,
        svc.rules.for_signup,
        body.user_id,
        body.referral_code,
        body.email,
        body.signed_up_at,
        body.ip,
        body.device_id,
        fingerprints=svc.fingerprints,
        click_id=body.click_id,
    )
    metrics_of(request).signed_up(result)
    referral = result.referral
    answer = SignupOut(
        referral=ReferralOut.of(referral),
        referrer=ReferrerCount(user_id=referral.referrer_id, referral_count=result.referral_count),
        referee_code=result.referee_code,
    )
    status_code = status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
    return json_response(shown_to(key, answer, body.email), status_code)


@router.post(
    "/v1/conversions",
    response_model=ConversionOut,
    status_code=status.HTTP_201_CREATED,
    tags=["signups"],
    responses=PROBLEMS
    | {200: {"model": ConversionOut, "description": "Replay of a recorded conversion"}}
    | {404: {"description": "program_not_found"}, 409: {"description": "conversion_conflict"}},
    dependencies=[Depends(default_program)],
)
def create_conversion(
    body: ConversionRequest, svc: ServicesDep, key: ApiKey = Depends(auth.ingest)
) -> Response:
    """Report a referee's event, in `program_id` (default: the default program). In a
    program that pays on conversion, the first qualifying event of a referred user
    earns their referral its reward."""
    result = record_conversion(
        svc.store,
        svc.clock,
        svc.rules.current(svc.clock, body.program_id),
        body.user_id,
        body.event,
        body.external_id,
        body.value_cents,
    )
    c = result.conversion
    answer = ConversionOut(
        external_id=c.external_id,
        user_id=c.user_id,
        event=c.event,
        value_cents=c.value_cents,
        created_at=c.created_at,
        referral=ReferralOut.of(result.referral) if result.referral else None,
    )
    status_code = status.HTTP_200_OK if result.replayed else status.HTTP_201_CREATED
    return json_response(shown_to(key, answer), status_code)


def json_response(answer: BaseModel, status_code: int) -> Response:
    """The hot routes' answer, serialised here in the request's worker thread.

    Returned as a Response, FastAPI passes it through instead of validating the
    model again and serialising it on the event loop's thread, which every request
    shares: under signup load it is the busiest thread.
    """
    return Response(answer.model_dump_json(), status_code, media_type="application/json")


@router.get("/v1/referrals", response_model=ReferralPage, tags=["referrals"], responses=PROBLEMS)
def list_referrals(
    svc: ServicesDep,
    status: ReferralStatus | None = None,
    referrer_id: Annotated[UserId | None, Query()] = None,
    program: Annotated[ProgramId | None, Query()] = None,
    limit: Limit = 50,
    cursor: Cursor = None,
    _: ApiKey = Depends(auth.admin),
) -> ReferralPage:
    """Referrals in creation order: of every program, or of `program`. A `referrer_id`
    is a referrer of `program` (of the default program if none is given)."""
    page = queries.search_referrals(svc.store, limit, cursor, status, referrer_id, program=program)
    return ReferralPage.of(page)
