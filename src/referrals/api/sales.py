"""Sales and refunds reported by the product's backend (ingest and admin keys)."""

from typing import Annotated, Literal

from fastapi import APIRouter, Depends, Path, Response, status
from pydantic import BaseModel

from referrals.api import auth
from referrals.api.deps import PROBLEMS, ServicesDep, default_program
from referrals.api.schemas.reviews import EntryOut, ReasonRequired
from referrals.api.schemas.sales import EXTERNAL_ID, RefundOut, RefundRequest, SaleOut, SaleRequest
from referrals.domain.model import ApiKey
from referrals.services.sales import record_refund, record_sale, review_share

router = APIRouter(tags=["sales"])


def _answer(answer: BaseModel, status_code: int) -> Response:
    # Serialised here, in the request's worker thread, as the signup routes answer.
    return Response(answer.model_dump_json(), status_code, media_type="application/json")


@router.post(
    "/v1/sales",
    response_model=SaleOut,
    status_code=status.HTTP_201_CREATED,
    responses=PROBLEMS
    | {200: {"model": SaleOut, "description": "Replay of a recorded sale"}}
    | {
        400: {"description": "validation_error or currency_mismatch"},
        404: {"description": "program_not_found"},
        409: {"description": "sale_conflict"},
    },
    dependencies=[Depends(default_program)],
)
def create_sale(body: SaleRequest, svc: ServicesDep, _: ApiKey = Depends(auth.ingest)) -> Response:
    """Record a sale to a user. If the user was referred in the program, their referrer
    earns the revenue share its rules pay (none by default); a sale of a user nobody
    referred is kept unattributed."""
    outcome = record_sale(svc.store, svc.clock, body.sale())
    status_code = status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED
    return _answer(SaleOut.of(outcome.sale), status_code)


@router.post(
    "/v1/refunds",
    response_model=RefundOut,
    status_code=status.HTTP_201_CREATED,
    responses=PROBLEMS
    | {200: {"model": RefundOut, "description": "Replay of a recorded refund"}}
    | {
        404: {"description": "sale_not_found"},
        409: {"description": "refund_exceeds_sale or refund_conflict"},
    },
)
def create_refund(
    body: RefundRequest, svc: ServicesDep, _: ApiKey = Depends(auth.ingest)
) -> Response:
    """Record a refund of part or all of a sale; its share of the referrer's reward is
    taken back (lowered while unpaid, by a clawback line once paid)."""
    outcome = record_refund(svc.store, svc.clock, body.refund())
    status_code = status.HTTP_200_OK if outcome.replayed else status.HTTP_201_CREATED
    return _answer(RefundOut.of(outcome.refund), status_code)


@router.post(
    "/v1/sales/{external_id}/share/{decision}",
    response_model=EntryOut,
    tags=["reviews"],
    responses=PROBLEMS | {404: {"description": "sale_not_found"}, 409: {"description": "not_held"}},
)
def decide_share(
    external_id: Annotated[str, Path(max_length=128, pattern=EXTERNAL_ID)],
    decision: Literal["approve", "reject"],
    body: ReasonRequired,
    svc: ServicesDep,
    key: ApiKey = Depends(auth.admin),
) -> EntryOut:
    """Approve (payable again) or reject (never paid; the caps give it back) the revenue
    share of a sale held by a dispute, with the reason; logged in the audit log. A share
    held with its referral is decided with the referral (`/v1/reviews/...`)."""
    share = review_share(
        svc.store, svc.clock, key.id, external_id, decision == "approve", body.reason
    )
    return EntryOut.model_validate(share)
