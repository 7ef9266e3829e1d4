"""Request and response bodies of the JSON API, a module a resource: `common` (field
types, the base of request bodies, health, problems), `signups` (referrers, referrals,
signups, conversions), `reviews`, `payouts`.

The signup bodies are named here too: the AWS stack (infra/) publishes them as API
Gateway models, and validates requests with them before they reach the function.
"""

from referrals.api.schemas.signups import LegacySignupRequest, SignupRequest

__all__ = ["LegacySignupRequest", "SignupRequest"]
