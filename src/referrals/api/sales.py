"""Sales and refunds reported by the product's backend (ingest and admin keys)."""

from fastapi import APIRouter, Depends, Response, status
from pydantic import BaseModel

from referrals.api import auth
from referrals.api.deps import PROBLEMS, ServicesDep, default_program
from referrals.api.schemas.sales import RefundOut, RefundRequest, SaleOut, SaleRequest
from referrals.domain.model import ApiKey
from referrals.services.sales import record_refund, record_sale

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
