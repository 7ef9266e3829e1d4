"""Reward details, fraud review, reversals and the audit log (admin only)."""

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Path

from referrals.api import auth
from referrals.api.deps import PROBLEMS, Cursor, Limit, ServicesDep
from referrals.api.schemas.reviews import (
    AuditPage,
    Decision,
    HeldSharePage,
    ReasonRequired,
    ReferralDetail,
    ReviewPage,
)
from referrals.bootstrap import Services
from referrals.domain.model import ApiKey
from referrals.services import audit, queries, reviews, sales

router = APIRouter(tags=["reviews"])
ReferralId = Annotated[str, Path(pattern=r"^[0-9A-Z]{26}$")]
CHANGES = PROBLEMS | {404: {}, 409: {"description": "not_held or not_reversible"}}


@router.get(
    "/v1/referrals/{referral_id}",
    response_model=ReferralDetail,
    tags=["referrals"],
    responses=PROBLEMS | {404: {}},
)
def get_referral(
    referral_id: ReferralId, svc: ServicesDep, _: ApiKey = Depends(auth.admin)
) -> ReferralDetail:
    """A referral with its reward's receipt (the tier that priced it and every check) and
    the entries that came from it: the referee's reward, clawbacks."""
    return _detail(svc, referral_id)


@router.post(
    "/v1/referrals/{referral_id}/reverse",
    response_model=ReferralDetail,
    tags=["referrals"],
    responses=CHANGES,
)
def reverse_referral(
    referral_id: ReferralId,
    body: ReasonRequired,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> ReferralDetail:
    """Cancel a referral's rewards: an unpaid one is reversed, a paid one clawed back
    (a negative entry in the next run)."""
    reviews.reverse(svc.store, svc.clock, key.id, referral_id, body.reason)
    return _detail(svc, referral_id)


def _detail(svc: Services, referral_id: str) -> ReferralDetail:
    return ReferralDetail.of(*queries.referral_with_entries(svc.store, referral_id))


@router.get("/v1/reviews", response_model=ReviewPage, responses=PROBLEMS)
def review_queue(
    svc: ServicesDep, limit: Limit = 50, cursor: Cursor = None, _: ApiKey = Depends(auth.admin)
) -> ReviewPage:
    """Rewards held by a fraud check, oldest first, with the checks that failed."""
    return ReviewPage.of(reviews.review_queue(svc.store, limit, cursor))


@router.get("/v1/reviews/shares", response_model=HeldSharePage, responses=PROBLEMS)
def held_shares(
    svc: ServicesDep, limit: Limit = 50, cursor: Cursor = None, _: ApiKey = Depends(auth.admin)
) -> HeldSharePage:
    """Revenue shares of sales held for review, oldest first: by a dispute (decide each
    with `POST /v1/sales/{sale_id}/share/{approve|reject}`), or with their referral."""
    return HeldSharePage.of(sales.held_shares(svc.store, limit, cursor))


@router.post("/v1/reviews/{referral_id}/approve", response_model=ReferralDetail, responses=CHANGES)
def approve(
    referral_id: ReferralId,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
    body: Annotated[Decision | None, Body()] = None,
) -> ReferralDetail:
    """Release a held reward: the next payout run pays it (once its hold period ends).
    The body, and its reason, are optional."""
    reason = body.reason if body is not None else None
    reviews.approve(svc.store, svc.clock, key.id, referral_id, reason)
    return _detail(svc, referral_id)


@router.post("/v1/reviews/{referral_id}/reject", response_model=ReferralDetail, responses=CHANGES)
def reject(
    referral_id: ReferralId,
    body: ReasonRequired,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> ReferralDetail:
    """Refuse a held reward for good."""
    reviews.reject(svc.store, svc.clock, key.id, referral_id, body.reason)
    return _detail(svc, referral_id)


@router.get("/v1/audit", response_model=AuditPage, tags=["audit"], responses=PROBLEMS)
def audit_log(
    svc: ServicesDep, limit: Limit = 50, cursor: Cursor = None, _: ApiKey = Depends(auth.admin)
) -> AuditPage:
    """Every admin action, newest first: the acting key, the action, its target, the reason."""
    return AuditPage.of(audit.audit_log(svc.store, limit, cursor))
