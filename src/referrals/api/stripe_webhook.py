"""`POST /v1/integrations/stripe/webhook`: Stripe's events, verified by their signature.

A public route: it takes no API key, but Stripe's `Stripe-Signature` header, checked
with the official `stripe` library against the endpoint's signing secret
(`REFERRALS_STRIPE_WEBHOOK_SECRET`) and the library's tolerance (300 s) for the
signed time. A bad, missing or stale signature is a 400 `invalid_signature`, and
nothing is read or written. Without a secret the route is off: 404, as for a path
that does not exist, with a detail naming the setting (not a 503: nothing is down,
and no retry will turn it on).

`stripe` is imported on the first event, not with the app: its import (~0.2 s, with
`requests`) would otherwise lengthen every cold start of the API function.
"""

import json
from typing import Any

from fastapi import APIRouter, Depends, Request
from fastapi.concurrency import run_in_threadpool

from referrals.api.deps import ServicesDep, default_program
from referrals.api.problems import ApiError
from referrals.bootstrap import Services
from referrals.domain.errors import InvalidInput
from referrals.services.stripe_sync import apply_event

router = APIRouter(tags=["integrations"])

PATH = "/v1/integrations/stripe/webhook"
PROBLEM = {"application/problem+json": {"schema": {"$ref": "#/components/schemas/Problem"}}}
RESPONSES: dict[int | str, dict[str, Any]] = {
    200: {
        "description": "The event was taken: what each of its sales, refunds, holds and links did "
        "(recorded, replayed, or ignored and why); an event of a type not read here is "
        "taken with no outcome",
    },
    400: {
        "description": "A bad, missing or stale `Stripe-Signature` (code invalid_signature), "
        "or a signed body that is not an event this route can read (validation_error, "
        "naming the field); nothing was written",
        "content": PROBLEM,
    },
    404: {
        "description": "The webhook is off: REFERRALS_STRIPE_WEBHOOK_SECRET is not set",
        "content": PROBLEM,
    },
}


def verify(payload: bytes, header: str | None, secret: str) -> None:
    """Raise ApiError `invalid_signature` unless Stripe signed `payload` with `secret`
    within the library's tolerance."""
    import stripe  # see the module's docstring

    try:
        stripe.WebhookSignature.verify_header(
            payload, header, secret, tolerance=stripe.Webhook.DEFAULT_TOLERANCE
        )
    except stripe.SignatureVerificationError as error:
        detail = f"Stripe-Signature: {error.user_message or 'not valid'}"
        raise ApiError("invalid_signature", detail) from None
    except ValueError:  # a body that is not UTF-8 cannot be what Stripe signed
        raise ApiError("invalid_signature", "Stripe-Signature: the body is not UTF-8") from None


def _parse(payload: bytes) -> Any:
    try:
        return json.loads(payload)
    except ValueError:
        raise InvalidInput("the body is not JSON", field="body") from None


def _handle(request_body: bytes, header: str | None, svc: Services) -> dict[str, Any]:
    settings = svc.settings
    verify(request_body, header, settings.stripe_webhook_secret.get_secret_value())
    applied = apply_event(svc.store, svc.clock, _parse(request_body), settings.stripe_program)
    return {
        "received": True,
        "id": applied.event_id,
        "type": applied.type,
        "outcomes": [outcome.to_dict() for outcome in applied.outcomes],
    }


@router.post(
    PATH,
    responses=RESPONSES,
    summary="Stripe webhook",
    dependencies=[Depends(default_program)],
)
async def stripe_webhook(request: Request, svc: ServicesDep) -> dict[str, Any]:
    """Sales from `invoice.paid` and `checkout.session.completed` (payment mode),
    refunds from `charge.refunded`, a hold from `charge.dispute.created`, links from
    `invoice_payment.paid`; see the README's Stripe section. The body is the event as
    Stripe sends it, read raw (the signature is over its bytes): signed by Stripe in
    the `Stripe-Signature` header (`t=<unix time>,v1=<hex HMAC-SHA256 of
    '<t>.<body>'>`), not by an API key."""
    if not svc.settings.stripe_webhook_secret.get_secret_value():
        raise ApiError(
            "not_found", "the Stripe webhook is off: set REFERRALS_STRIPE_WEBHOOK_SECRET"
        )
    body = await request.body()
    header = request.headers.get("stripe-signature")
    # The stores block: off the event loop, as the routes declared with `def` are.
    return await run_in_threadpool(_handle, body, header, svc)
