"""Reward details, fraud review, reversals and the audit log (admin only)."""

from typing import Annotated

from fastapi import APIRouter, Depends, Path

from referrals.api import auth
from referrals.api.routes import PROBLEMS, Cursor, Limit, ServicesDep
from referrals.api.schemas import (
    AuditPage,
    Decision,
    ReasonRequired,
    ReferralDetail,
    ReviewPage,
)
from referrals.domain.errors import NotFound
from referrals.domain.model import ApiKey
from referrals.services import audit, reviews

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
    """A referral with its reward's receipt: the tier that priced it and every check."""
    with svc.store.read() as uow:
        referral = uow.referrals.get(referral_id)
    if referral is None:
        raise NotFound(f"no referral {referral_id!r}")
    return ReferralDetail.of(referral)


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
    """Cancel a reward that is not paid yet (pending or held)."""
    referral = reviews.reverse(svc.store, svc.clock, key.id, referral_id, body.reason)
    return ReferralDetail.of(referral)


@router.get("/v1/reviews", response_model=ReviewPage, responses=PROBLEMS)
def review_queue(
    svc: ServicesDep, limit: Limit = 50, cursor: Cursor = None, _: ApiKey = Depends(auth.admin)
) -> ReviewPage:
    """Rewards held by a fraud check, oldest first, with the checks that failed."""
    return ReviewPage.of(reviews.review_queue(svc.store, limit, cursor))


@router.post("/v1/reviews/{referral_id}/approve", response_model=ReferralDetail, responses=CHANGES)
def approve(
    referral_id: ReferralId,
    body: Decision,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> ReferralDetail:
    """Release a held reward: the next payout run pays it (once its hold period ends)."""
    return ReferralDetail.of(
        reviews.approve(svc.store, svc.clock, key.id, referral_id, body.reason)
    )


@router.post("/v1/reviews/{referral_id}/reject", response_model=ReferralDetail, responses=CHANGES)
def reject(
    referral_id: ReferralId,
    body: ReasonRequired,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> ReferralDetail:
    """Refuse a held reward for good."""
    return ReferralDetail.of(reviews.reject(svc.store, svc.clock, key.id, referral_id, body.reason))


@router.get("/v1/audit", response_model=AuditPage, tags=["audit"], responses=PROBLEMS)
def audit_log(
    svc: ServicesDep, limit: Limit = 50, cursor: Cursor = None, _: ApiKey = Depends(auth.admin)
) -> AuditPage:
    """Every admin action, newest first: the acting key, the action, its target, the reason."""
    return AuditPage.of(audit.audit_log(svc.store, limit, cursor))
