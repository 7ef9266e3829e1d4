"""Events POSTed to a webhook, signed by the Standard Webhooks scheme and by our own header.

Each delivery carries `webhook-id` (the event's id, the same on every retry),
`webhook-timestamp` and `webhook-signature` (https://www.standardwebhooks.com/,
signed with the maintained `standardwebhooks` package), so a receiver verifies it
with any Standard Webhooks library. `Referrals-Signature` (`t=..,v1=..`) is kept
for receivers written before; both are keyed by the same bytes (`signing_key`).
Without a secret (only when the settings say `unsigned` explicitly) neither
signature is sent.
"""

import base64
import hashlib
import hmac
import re
import time
from collections.abc import Callable
from datetime import UTC, datetime

import httpx
from standardwebhooks import Webhook

from referrals.domain.events import envelope
from referrals.domain.model import Event

SIGNATURE_HEADER = "Referrals-Signature"
SECRET_PREFIX = "whsec_"


def signing_key(secret: str) -> bytes:
    """The HMAC key a secret stands for: a `whsec_<base64>` value (the Standard Webhooks
    form) is its decoded bytes; any other text is its UTF-8 bytes, as before the
    Standard Webhooks headers, so an existing secret keeps its signatures."""
    if secret.startswith(SECRET_PREFIX):
        encoded = secret.removeprefix(SECRET_PREFIX)
        # validate=True: the library's own decoding skips stray characters silently.
        return base64.b64decode(encoded + "=" * (-len(encoded) % 4), validate=True)
    return secret.encode()


def sign(secret: str, timestamp: int, body: bytes) -> str:
    """`t=<unix>,v1=<hex HMAC-SHA256 of "t.body">`: the timestamp lets receivers refuse replays."""
    mac = hmac.new(signing_key(secret), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={mac.hexdigest()}"


def verify(secret: str, header: str, body: bytes, now: float, tolerance: float = 300) -> bool:
    """What a receiver does with the `Referrals-Signature` header (and what the tests check).
    New receivers verify the Standard Webhooks headers instead (see the README)."""
    # [0-9], not \d or isdigit(): the header is untrusted and may carry Unicode digits.
    match = re.fullmatch(r"t=([0-9]{1,12}),v1=([0-9a-f]{64})", header)
    if match is None:
        return False
    timestamp = int(match[1])
    if abs(now - timestamp) > tolerance:
        return False
    return hmac.compare_digest(sign(secret, timestamp, body).encode(), header.encode())


class WebhookNotifier:
    """POSTs each event, signed; a non-2xx answer raises so the outbox retries it.

    `secret` None sends unsigned deliveries (the operator's explicit choice, checked
    by the settings); an empty secret is refused rather than used as a key.
    """

    def __init__(
        self,
        url: str,
        secret: str | None,
        client: httpx.Client,
        clock: Callable[[], float] = time.time,
    ) -> None:
        if secret == "":
            raise ValueError("an empty webhook secret signs nothing: pass None for unsigned")
        self.url = url
        self.secret = secret
        self.client = client
        self.clock = clock
        self._webhook = Webhook(signing_key(secret)) if secret is not None else None

    def deliver(self, event: Event) -> None:
        body = envelope(event)
        timestamp = int(self.clock())
        headers = {
            "Content-Type": "application/json",
            "Referrals-Event-Id": event.id,
            "webhook-id": event.id,
            "webhook-timestamp": str(timestamp),
        }
        if self.secret is not None and self._webhook is not None:
            signed_at = datetime.fromtimestamp(timestamp, UTC)
            headers["webhook-signature"] = self._webhook.sign(event.id, signed_at, body)
            headers[SIGNATURE_HEADER] = sign(self.secret, timestamp, body)
        response = self.client.post(self.url, content=body, headers=headers)
        response.raise_for_status()
